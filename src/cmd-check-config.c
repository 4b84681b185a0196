/* autopull check-config: the configuration parses (config.c did that, with FILE:LINE:COL),
 * and what it names exists: every validator can be run, and every directory autopull writes
 * to can be written by the user it runs as, and by the shipped system units in their sandbox
 * (generator.c). Nothing is created or changed. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "exitcode.h"
#include "fsutil.h"
#include "generator.h"
#include "install.h"
#include "linger.h"
#include "log.h"
#include "probe.h"
#include "spawn.h"
#include "util.h"

struct check {
	struct ap_buf problems; /* JSON array items */
	size_t n;
	size_t unsafe; /* of n: destinations under a directory another user controls */
	bool json;
};

static void problem(struct check *k, const char *fmt, ...) _printf_(2, 3);
static void problem(struct check *k, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	msg = ap_strdupvf(fmt, ap);
	va_end(ap);
	if (!msg)
		return;
	ap_log_error(-EINVAL, "%s", msg);
	(void)ap_buf_printf(&k->problems, "%s", k->n++ ? ", " : "");
	(void)ap_buf_json_string(&k->problems, msg);
}

/* The nearest directory of path that exists (path itself when it does). */
static char *existing_ancestor(const char *path)
{
	char *p = strdup(path);

	while (p && access(p, F_OK) < 0 && errno == ENOENT) {
		char *slash = strrchr(p, '/');

		if (!slash || slash == p) {
			p[0] = '/';
			p[1] = '\0';
			break;
		}
		*slash = '\0';
	}
	return p;
}

static void check_writable(struct check *k, const char *dir, const char *what)
{
	_cleanup_free_ char *e = existing_ancestor(dir);

	if (e && access(e, W_OK) < 0)
		problem(k, "%s '%s' cannot be written by uid %u (%s: %s)", what, dir,
			(unsigned)geteuid(), e, strerror(errno));
}

/* The directories above a rule's destination: only root's (or the owner: user's). */
static void check_dest_safe(struct check *k, const struct ap_file_rule *r)
{
	_cleanup_free_ char *dir = ap_path_parent(r->dest);
	_cleanup_free_ char *why = NULL;
	struct ap_fs_unsafe u;
	uid_t uid = (uid_t)-1;
	gid_t gid;
	int fd;

	if (!dir || (r->owner && ap_install_owner_ids(r->owner, NULL, &uid, &gid) < 0))
		return;
	fd = ap_fs_open_dir_safe(dir, strlen(dir), uid != (uid_t)-1 ? uid : geteuid(),
				 0, 0, &u);
	if (fd >= 0)
		close(fd);
	if ((fd != -EPERM && fd != -ELOOP) || ap_fs_unsafe_describe(&u, fd, &why) < 0)
		return;
	problem(k, "refusing destination '%s' of the rule for '%s': %s%s", r->dest, r->src, why,
		fd == -EPERM && !(u.mode & (S_IWGRP | S_IWOTH)) && geteuid() == 0
			? "; to install it as that user, set 'owner:' on the rule to them" : "");
	k->unsafe++;
}

static void check_rules(struct check *k, const struct ap_config *cfg)
{
	for (size_t i = 0; i < cfg->n_files; i++) {
		const struct ap_file_rule *r = &cfg->files[i];
		_cleanup_free_ char *dir = strndup(r->dest, strrchr(r->dest, '/') - r->dest + 1);
		_cleanup_free_ char *path = NULL;

		if (r->validate && ap_spawn_find(r->validate[0], &path) < 0)
			problem(k, "validator '%s' of the rule for '%s' is not an executable in "
				   "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				r->validate[0], r->src);
		if (dir)
			check_writable(k, dir, "destination");
		check_dest_safe(k, r);
	}
}

/* fleet: the TLS files can be read (config.c checked who may change them); etcd itself is
 * not asked: check-config stays off the network. */
static void check_fleet(struct check *k, const struct ap_fleet_config *f)
{
	const char *const files[][2] = { { "ca_file", f->ca_file }, { "cert_file", f->cert_file },
					 { "key_file", f->key_file } };

	for (size_t i = 0; f->enabled && i < ELEMENTSOF(files); i++)
		if (files[i][1] && access(files[i][1], R_OK) < 0)
			problem(k, "fleet: %s '%s' cannot be read by uid %u: %s", files[i][0],
				files[i][1], (unsigned)geteuid(), strerror(errno));
}

/* 600s, 1500ms: as the configuration could have said it. */
static int buf_duration(struct ap_buf *b, uint64_t usec)
{
	if (usec % 1000000 == 0)
		return ap_buf_printf(b, "%llus", (unsigned long long)(usec / 1000000));
	return ap_buf_printf(b, "%llums", (unsigned long long)(usec / 1000));
}

/* The fleet settings in effect, defaults filled in: "fleet": {...} or null. */
static int fleet_json(struct ap_buf *b, const struct ap_fleet_config *f)
{
	int r = ap_buf_printf(b, ", \"fleet\": ");

	if (r < 0 || !f->enabled)
		return r < 0 ? r : ap_buf_printf(b, "null");
	r = ap_buf_printf(b, "{\"etcd\": [");
	for (size_t i = 0; r >= 0 && f->etcd[i]; i++)
		if ((r = ap_buf_printf(b, "%s", i ? ", " : "")) >= 0)
			r = ap_buf_json_string(b, f->etcd[i]);
	if (r >= 0 && (r = ap_buf_printf(b, "], \"group\": ")) >= 0)
		r = ap_buf_json_string(b, f->group);
	if (r >= 0 && (r = ap_buf_printf(b, ", \"host\": ")) >= 0)
		r = ap_buf_json_string(b, f->host);
	if (r >= 0)
		r = ap_buf_printf(b, ", \"max_parallel\": %u, \"canary\": %u, \"canary_hosts\": ",
				  f->max_parallel, f->canary);
	for (size_t i = 0; r >= 0 && f->canary_hosts && f->canary_hosts[i]; i++)
		if ((r = ap_buf_printf(b, "%s", i ? ", " : "[")) >= 0)
			r = ap_buf_json_string(b, f->canary_hosts[i]);
	if (r >= 0)
		r = ap_buf_printf(b, "%s, \"lock_timeout_usec\": %llu, \"lease_ttl_usec\": %llu, "
				     "\"ca_file\": ", f->canary_hosts ? "]" : "null",
				  (unsigned long long)f->lock_timeout_usec,
				  (unsigned long long)f->lease_ttl_usec);
	if (r >= 0)
		r = ap_buf_json_string_or_null(b, f->ca_file);
	if (r >= 0 && (r = ap_buf_printf(b, ", \"cert_file\": ")) >= 0)
		r = ap_buf_json_string_or_null(b, f->cert_file);
	if (r >= 0 && (r = ap_buf_printf(b, ", \"key_file\": ")) >= 0)
		r = ap_buf_json_string_or_null(b, f->key_file);
	return r < 0 ? r : ap_buf_printf(b, "}");
}

/* One line: "fleet: group 'web' as host 'web1', max_parallel 2, canary 1, lock_timeout 600s,
 * lease_ttl 30s, etcd http://a:2379 https://b:2379". */
static int fleet_line(struct ap_buf *out, const struct ap_fleet_config *f)
{
	struct ap_buf l = { 0 };
	int r = ap_buf_printf(&l, "fleet: group '%s' as host '%s', max_parallel %u, canary ", f->group,
			      f->host, f->max_parallel);

	for (size_t i = 0; r >= 0 && f->canary_hosts && f->canary_hosts[i]; i++)
		r = ap_buf_printf(&l, "%s'%s'", i ? " " : "", f->canary_hosts[i]);
	if (r >= 0 && !f->canary_hosts)
		r = ap_buf_printf(&l, "%u", f->canary);
	if (r >= 0 && (r = ap_buf_printf(&l, ", lock_timeout ")) >= 0)
		r = buf_duration(&l, f->lock_timeout_usec);
	if (r >= 0 && (r = ap_buf_printf(&l, ", lease_ttl ")) >= 0)
		r = buf_duration(&l, f->lease_ttl_usec);
	if (r >= 0)
		r = ap_buf_printf(&l, ", etcd");
	for (size_t i = 0; r >= 0 && f->etcd[i]; i++)
		r = ap_buf_printf(&l, " %s", f->etcd[i]);
	if (r >= 0 && f->cert_file)
		r = ap_buf_printf(&l, " (client certificate %s)", f->cert_file);
	if (r >= 0)
		r = ap_buf_linef(out, "%s", l.data);
	ap_buf_clear(&l);
	return r;
}

/* The probes of health: as the settle window runs them (probe.h); a URL without its secrets. */
static int health_out(struct ap_buf *b, const struct ap_config *cfg, bool json)
{
	int r = json ? ap_buf_printf(b, ", \"guard_probe\": %s, \"health\": [",
				     cfg->guard.probe ? "true" : "false") : 0;

	for (size_t i = 0; r >= 0 && i < cfg->n_health; i++) {
		const struct ap_probe *p = &cfg->health[i].probe;
		char what[160];

		ap_probe_describe(p, what, sizeof(what));
		if (!json) {
			r = ap_buf_linef(b, "health: %s: %s (timeout %llums, interval %llums, "
					 "successes %u)", cfg->health[i].unit, what,
					 p->timeout_usec / 1000, p->interval_usec / 1000,
					 p->successes);
			continue;
		}
		r = ap_buf_printf(b, "%s{\"unit\": ", i ? ", " : "");
		if (r >= 0)
			r = ap_buf_json_string(b, cfg->health[i].unit);
		if (r >= 0)
			r = ap_buf_printf(b, ", \"probe\": ");
		if (r >= 0)
			r = ap_buf_json_string(b, what);
		if (r >= 0)
			r = ap_buf_printf(b, ", \"timeout_usec\": %llu, \"interval_usec\": %llu, "
					  "\"successes\": %u}", p->timeout_usec, p->interval_usec,
					  p->successes);
	}
	if (r >= 0 && !json && cfg->guard.probe)
		r = ap_buf_linef(b, "guard: the heartbeat runs the watched units' probes");
	return r < 0 || !json ? r : ap_buf_printf(b, "]");
}

static void sandbox_problem(void *userdata, const char *msg)
{
	problem(userdata, "%s", msg);
}

int ap_cmd_check_config(const struct ap_opts *o, char **args)
{
	struct check k = { .json = o->json };
	struct ap_ctx c;
	int linger, code = ap_ctx_open(o, AP_CTX_CONFIG_ONLY | AP_CTX_DECRYPTS, &c);

	/* the checker reports what the verbs that decrypt will refuse (the identity) */
	if (code != AP_EXIT_OK)
		return code;
	check_rules(&k, c.cfg);
	check_writable(&k, c.cfg->unit_dir, "unit directory");
	check_writable(&k, c.cfg->state_dir, "state directory");
	check_fleet(&k, &c.cfg->fleet);
	(void)ap_generator_check(c.cfg, sandbox_problem, &k); /* counted in k.n */
	/* a warning, not a problem: the configuration is fine, the setup may be meant so */
	linger = ap_linger_check(c.cfg->scope);
	if (o->json) {
		struct ap_buf b = { 0 };

		if (ap_buf_printf(&b, "{\"config\": ") >= 0 && ap_buf_json_string(&b, c.cfg->path) >= 0 &&
		    ap_buf_printf(&b, ", \"scope\": \"%s\", \"ok\": %s, \"file_rules\": %zu, "
				      "\"other_host_rules\": %zu, \"problems\": [%s]",
				  ap_scope_to_string(c.cfg->scope), k.n ? "false" : "true",
				  c.cfg->n_files, c.cfg->other_host_rules,
				  k.problems.data ? k.problems.data : "") >= 0 &&
		    fleet_json(&b, &c.cfg->fleet) >= 0 && health_out(&b, c.cfg, true) >= 0 &&
		    (c.cfg->scope != AP_SCOPE_USER || linger < 0 ||
		     ap_buf_printf(&b, ", \"linger\": %s", linger ? "false" : "true") >= 0) &&
		    ap_buf_printf(&b, "}\n") >= 0)
			fputs(b.data, stdout);
		ap_buf_clear(&b);
	} else {
		struct ap_buf l = { 0 }, b = { 0 };
		int r = ap_buf_printf(&l, "%s: %s (%s scope, %zu file rule(s)", c.cfg->path,
				      k.n ? "PROBLEMS" : "ok", ap_scope_to_string(c.cfg->scope),
				      c.cfg->n_files);

		if (r >= 0 && c.cfg->other_host_rules)
			r = ap_buf_printf(&l, " and %zu for other hosts", c.cfg->other_host_rules);
		if (r >= 0)
			r = ap_buf_printf(&l, ", units from");
		for (size_t i = 0; r >= 0 && c.cfg->units && c.cfg->units[i]; i++)
			r = ap_buf_printf(&l, " '%s'", *c.cfg->units[i] ? c.cfg->units[i] : "/");
		if (r >= 0)
			r = ap_buf_linef(&b, "%s)", l.data);
		if (r >= 0 && c.cfg->fleet.enabled)
			r = fleet_line(&b, &c.cfg->fleet);
		if (r >= 0)
			r = health_out(&b, c.cfg, false);
		if (r >= 0)
			fputs(b.data, stdout);
		ap_buf_clear(&l);
		ap_buf_clear(&b);
	}
	ap_buf_clear(&k.problems);
	ap_ctx_done(&c);
	/* A destination another user can steer is a refused source, not a typo. */
	return k.n > k.unsafe ? AP_EXIT_USAGE : k.n ? AP_EXIT_INVALID : AP_EXIT_OK;
}
