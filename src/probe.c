/* Health probes (see probe.h): their parsing, their description, the consecutive-success
 * arithmetic, and one attempt of each kind. An exec probe runs exactly like a validator
 * (spawn.c); an http probe is one GET through http.c, its answer never read; a tcp probe is one
 * non-blocking connect.
 *
 * Deliberately not here: when probes run (effects.c in the settle window), what a failure
 * does (apply.c rolls back) and the metrics (record.c). */
#include <errno.h>
#include <fnmatch.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fsutil.h"
#include "http.h"
#include "log.h"
#include "probe.h"
#include "spawn.h"
#include "unitfile.h"
#include "util.h"

#define UNIT_FILE_MAX (1024 * 1024)
#define EXEC_ARGS_MAX 64

const char *ap_probe_kind_to_string(enum ap_probe_kind k)
{
	static const char *const names[] = { [AP_PROBE_EXEC] = "exec", [AP_PROBE_HTTP] = "http",
					     [AP_PROBE_TCP] = "tcp" };

	return (unsigned)k < ELEMENTSOF(names) ? names[k] : "unknown";
}

/* --- pure -------------------------------------------------------------------------------- */

static bool has_space_or_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return true;
	return false;
}

static bool url_ok(const char *s)
{
	const char *rest = ap_startswith(s, "http://")	  ? s + strlen("http://")
			   : ap_startswith(s, "https://") ? s + strlen("https://")
							  : NULL;

	return rest && strcspn(rest, "/?#") > 0 && !has_space_or_control(s);
}

/* HOST:PORT, HOST a name or an address, [v6] in brackets, PORT 1-65535. */
static bool split_host_port(const char *s, char *host, size_t host_size, char port[6])
{
	const char *colon = strrchr(s, ':');
	unsigned long v;
	char *end;
	size_t n;

	if (!colon || colon == s || colon[1] < '0' || colon[1] > '9')
		return false;
	errno = 0;
	v = strtoul(colon + 1, &end, 10);
	if (*end || errno || v == 0 || v > 65535)
		return false;
	n = (size_t)(colon - s);
	if (s[0] == '[') {
		if (colon[-1] != ']' || n < 3)
			return false;
		s++;
		n -= 2;
	}
	if (n >= host_size || memchr(s, '[', n) || memchr(s, ']', n))
		return false;
	memcpy(host, s, n);
	host[n] = '\0';
	snprintf(port, 6, "%lu", v);
	return !has_space_or_control(host);
}

/* Splits at spaces and tabs; the words are copies. */
static int split_words(const char *s, char ***ret)
{
	_cleanup_strv_free_ char **v = NULL;

	while (*s) {
		size_t n = strcspn(s, " \t");
		_cleanup_free_ char *w = n ? strndup(s, n) : NULL;
		int r;

		if (n && !w)
			return -ENOMEM;
		if (n && ap_strv_length(v) >= EXEC_ARGS_MAX)
			return -E2BIG;
		if (n && (r = ap_strv_push(&v, w)) < 0)
			return r;
		s += n;
		s += strspn(s, " \t");
	}
	*ret = TAKE_PTR(v);
	return 0;
}

int ap_probe_parse_unit(const char *value, struct ap_probe *ret, const char **ret_error)
{
	struct ap_probe p = { .timeout_usec = AP_PROBE_DEFAULT_TIMEOUT_USEC,
			      .interval_usec = AP_PROBE_DEFAULT_INTERVAL_USEC, .successes = 1 };
	size_t kw = strcspn(value, " \t");
	const char *arg = value + kw + strspn(value + kw, " \t");
	char host[256], port[6];
	int r = 0;

	*ret_error = NULL;
	if (kw == 4 && strncmp(value, "exec", 4) == 0) {
		p.kind = AP_PROBE_EXEC;
		r = split_words(arg, &p.exec);
		if (r == -E2BIG)
			*ret_error = "exec: too many arguments";
		else if (r >= 0 && (!p.exec || p.exec[0][0] != '/'))
			*ret_error = "exec needs an absolute program path";
	} else if (kw == 4 && strncmp(value, "http", 4) == 0) {
		p.kind = AP_PROBE_HTTP;
		if (!url_ok(arg))
			*ret_error = "http needs one http:// or https:// URL";
		else if (!(p.http = strdup(arg)))
			r = -ENOMEM;
	} else if (kw == 3 && strncmp(value, "tcp", 3) == 0) {
		p.kind = AP_PROBE_TCP;
		if (!split_host_port(arg, host, sizeof(host), port))
			*ret_error = "tcp needs HOST:PORT";
		else if (!(p.tcp = strdup(arg)))
			r = -ENOMEM;
	} else
		*ret_error = "the kind is not exec, http or tcp";
	if (r == -E2BIG || (r >= 0 && *ret_error))
		r = -EINVAL;
	if (r < 0) {
		ap_probe_clear(&p);
		return r;
	}
	*ret = p;
	return 0;
}

void ap_probe_sanitize(const char *s, size_t len, char *buf, size_t size)
{
	size_t k = 0;

	if (size == 0)
		return;
	for (size_t i = 0; i < len && k + 1 < size; i++) {
		unsigned char ch = (unsigned char)s[i];

		buf[k++] = ch < 0x20 || ch == 0x7f ? (ch == '\n' || ch == '\t' ? ' ' : '?') : (char)ch;
	}
	while (k > 0 && buf[k - 1] == ' ')
		k--;
	buf[k] = '\0';
}

void ap_probe_describe(const struct ap_probe *p, char *buf, size_t size)
{
	const char *kind = ap_probe_kind_to_string(p->kind);
	struct ap_buf b = { 0 };
	int r = ap_buf_printf(&b, "%s", kind);

	if (p->kind == AP_PROBE_HTTP && p->http) {
		const char *rest = strstr(p->http, "://") + 3;
		size_t auth = strcspn(rest, "/?#");
		const char *at = memchr(rest, '@', auth);
		const char *host = at ? at + 1 : rest;

		/* scheme, host, path: no user:password@, no ?query, no #fragment */
		if (r >= 0)
			r = ap_buf_printf(&b, " %.*s%.*s", (int)(rest - p->http), p->http,
					  (int)strcspn(host, "?#"), host);
	} else if (p->kind == AP_PROBE_TCP && p->tcp && r >= 0) {
		r = ap_buf_printf(&b, " %s", p->tcp);
	}
	for (size_t i = 0; p->kind == AP_PROBE_EXEC && p->exec && p->exec[i] && r >= 0; i++)
		r = ap_buf_printf(&b, " %s", p->exec[i]);
	if (r < 0 || !b.data)
		snprintf(buf, size, "%s", kind);
	else
		ap_probe_sanitize(b.data, strlen(b.data), buf, size);
	ap_buf_clear(&b);
}

const struct ap_probe *ap_probe_config_find(const struct ap_config *c, const char *unit)
{
	for (size_t i = 0; i < c->n_health; i++)
		if (fnmatch(c->health[i].unit, unit, 0) == 0)
			return &c->health[i].probe;
	return NULL;
}

void ap_probe_run_start(const struct ap_probe *p, unsigned long long now, struct ap_probe_run *r)
{
	*r = (struct ap_probe_run){ .deadline = now + (unsigned long long)p->successes *
						      (p->timeout_usec + p->interval_usec),
				    .next = now };
}

enum ap_probe_verdict ap_probe_run_step(const struct ap_probe *p, struct ap_probe_run *r, bool ok,
					unsigned long long now)
{
	if (ok && ++r->streak >= p->successes)
		return AP_PROBE_PASSED;
	if (!ok) {
		r->streak = 0;
		r->failures++;
	}
	r->next = now + p->interval_usec;
	return r->next >= r->deadline ? AP_PROBE_FAILED : AP_PROBE_AGAIN;
}

/* --- I/O ----------------------------------------------------------------------------------- */

static int from_unit_file(const struct ap_config *c, const char *name, struct ap_probe *ret)
{
	_cleanup_free_ char *path = ap_strdupf("%s/%s", c->unit_dir, name), *text = NULL,
			    *value = NULL;
	const char *error = NULL;
	unsigned line = 0;
	size_t len = 0;
	int r;

	if (!path)
		return -ENOMEM;
	r = ap_fs_read_file(path, UNIT_FILE_MAX, &text, &len);
	/* A symlink (systemctl link, a masked unit) is not a unit file autopull installed: its
	 * probe, if any, belongs in health:. */
	if (r == -ENOENT || r == -ELOOP)
		return 0;
	/* A probe is an extra check: a file it cannot read must not fail an apply whose units
	 * came up. */
	if (r < 0) {
		ap_log_warning("not probing '%s': its unit file '%s' cannot be read: %s", name,
			       path, strerror(-r));
		return 0;
	}
	r = ap_unitfile_health(text, len, &value, &line);
	if (r <= 0)
		return r;
	r = ap_probe_parse_unit(value, ret, &error);
	if (r == -EINVAL)
		ap_log_error(r, "%s:%u: X-AutoPull-Health=: %s", path, line, error);
	return r < 0 ? r : 1;
}

int ap_probe_for_unit(const struct ap_config *c, const char *unit, struct ap_probe *ret)
{
	const struct ap_probe *p = ap_probe_config_find(c, unit);
	char tmpl[AP_UNIT_NAME_MAX];
	int r;

	if (p) {
		*ret = (struct ap_probe){ .kind = p->kind, .timeout_usec = p->timeout_usec,
					  .interval_usec = p->interval_usec,
					  .successes = p->successes };
		if ((p->http && !(ret->http = strdup(p->http))) ||
		    (p->tcp && !(ret->tcp = strdup(p->tcp))) ||
		    (p->exec && ap_strv_copy(p->exec, &ret->exec) < 0)) {
			ap_probe_clear(ret);
			return -ENOMEM;
		}
		return 1;
	}
	if (!c->unit_dir || strchr(unit, '/'))
		return 0;
	r = from_unit_file(c, unit, ret);
	if (r == 0 && ap_unit_name_template_of(unit, tmpl, sizeof(tmpl)))
		r = from_unit_file(c, tmpl, ret);
	return r;
}

static int probe_exec(const struct ap_probe *p, char *result)
{
	struct ap_spawn_result res = { 0 };
	char out[160];
	int r = ap_spawn_run(p->exec, NULL, p->timeout_usec, &res);

	if (r < 0) {
		snprintf(result, AP_PROBE_RESULT_MAX, "could not run: %s", strerror(-r));
		return r;
	}
	ap_probe_sanitize(res.output ? res.output : "", res.output_len, out, sizeof(out));
	if (res.timed_out)
		snprintf(result, AP_PROBE_RESULT_MAX, "killed at its %llums timeout%s%s",
			 p->timeout_usec / 1000, *out ? ": " : "", out);
	else if (res.exit_status != 0)
		snprintf(result, AP_PROBE_RESULT_MAX, "exit status %d%s%s", res.exit_status,
			 *out ? ": " : "", out);
	else
		snprintf(result, AP_PROBE_RESULT_MAX, "exit status 0");
	r = res.timed_out ? -ETIMEDOUT : res.exit_status ? -ECHILD : 0;
	ap_spawn_result_clear(&res);
	return r;
}

static int probe_http(const struct ap_probe *p, char *result)
{
	struct ap_http_request rq = { .url = p->http, .get = true,
				      .timeout_usec = p->timeout_usec };
	char why[256];
	long status = 0;
	int r = ap_http_post(&rq, &status, why, sizeof(why));

	/* curl's words can quote the URL (and its query): only the status, or errno's words. */
	if (status)
		snprintf(result, AP_PROBE_RESULT_MAX, "HTTP %ld", status);
	else
		snprintf(result, AP_PROBE_RESULT_MAX, "no answer: %s", strerror(-r));
	return r;
}

static int probe_tcp(const struct ap_probe *p, char *result)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	char host[256], port[6];
	int fd = -1, r, err = 0;
	socklen_t len = sizeof(err);
	struct pollfd pfd;

	if (!split_host_port(p->tcp, host, sizeof(host), port)) {
		snprintf(result, AP_PROBE_RESULT_MAX, "not HOST:PORT");
		return -EINVAL;
	}
	r = getaddrinfo(host, port, &hints, &ai);
	if (r != 0) {
		snprintf(result, AP_PROBE_RESULT_MAX, "cannot resolve: %s", gai_strerror(r));
		return -EHOSTUNREACH;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	r = fd < 0 ? -errno : connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 ? -errno : 0;
	freeaddrinfo(ai);
	if (r == -EINPROGRESS) {
		pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
		r = poll(&pfd, 1, (int)(p->timeout_usec / 1000));
		r = r < 0 ? -errno : r == 0 ? -ETIMEDOUT : 0;
		if (r == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			r = -errno;
		else if (r == 0 && err)
			r = -err;
	}
	if (fd >= 0)
		close(fd);
	if (r == 0)
		snprintf(result, AP_PROBE_RESULT_MAX, "connected");
	else
		snprintf(result, AP_PROBE_RESULT_MAX, "connect: %s", strerror(-r));
	return r;
}

int ap_probe_once(const struct ap_probe *p, char result[static AP_PROBE_RESULT_MAX])
{
	switch (p->kind) {
	case AP_PROBE_EXEC:
		return probe_exec(p, result);
	case AP_PROBE_HTTP:
		return probe_http(p, result);
	case AP_PROBE_TCP:
		return probe_tcp(p, result);
	}
	snprintf(result, AP_PROBE_RESULT_MAX, "unknown probe kind");
	return -EINVAL;
}

int ap_probe_wait(const struct ap_probe *p, const char *unit, char result[static AP_PROBE_RESULT_MAX],
		  char **ret_why)
{
	char what[160];
	struct ap_probe_run run;
	enum ap_probe_verdict v;

	ap_probe_run_start(p, ap_now_monotonic_usec(), &run);
	do {
		unsigned long long now = ap_now_monotonic_usec();
		int r;

		if (run.next > now)
			usleep((useconds_t)(run.next - now));
		r = ap_probe_once(p, result);
		v = ap_probe_run_step(p, &run, r >= 0, ap_now_monotonic_usec());
		ap_log_debug("unit '%s': probe: %s", unit, result);
	} while (v == AP_PROBE_AGAIN);
	if (v == AP_PROBE_PASSED)
		return 0;
	ap_probe_describe(p, what, sizeof(what));
	*ret_why = ap_strdupf("unit '%s' failed its health probe (%s) %u time(s); last: %s",
			      unit, what, run.failures, result);
	return *ret_why ? -EIO : -ENOMEM;
}
