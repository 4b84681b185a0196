/* Health probes: the X-AutoPull-Health= syntax, the health: section, what a probe is called in
 * messages (no credentials), the consecutive-success arithmetic, and one real attempt of the
 * exec and tcp kinds (a hung exec probe is killed at its timeout). */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "capture.h"
#include "config.h"
#include "probe.h"
#include "unitfile.h"
#include "util.h"

static char tmpdir[] = "/tmp/test-probe-XXXXXX";

static void test_parse_unit(void **s)
{
	static const struct {
		const char *value;
		int r;
		enum ap_probe_kind kind;
	} t[] = {
		{ "http http://127.0.0.1:8080/healthz", 0, AP_PROBE_HTTP },
		{ "http  https://example.org", 0, AP_PROBE_HTTP },
		{ "tcp 127.0.0.1:22", 0, AP_PROBE_TCP },
		{ "tcp [::1]:22", 0, AP_PROBE_TCP },
		{ "tcp localhost:65535", 0, AP_PROBE_TCP },
		{ "exec /usr/bin/true", 0, AP_PROBE_EXEC },
		{ "exec /bin/sh -c  'exit 1'", 0, AP_PROBE_EXEC },
		{ "http ftp://x/", -EINVAL, 0 },
		{ "http http://", -EINVAL, 0 },
		{ "http http://a/ b", -EINVAL, 0 },
		{ "tcp 127.0.0.1", -EINVAL, 0 },
		{ "tcp 127.0.0.1:0", -EINVAL, 0 },
		{ "tcp 127.0.0.1:65536", -EINVAL, 0 },
		{ "tcp :80", -EINVAL, 0 },
		{ "tcp [::1:80", -EINVAL, 0 },
		{ "exec true", -EINVAL, 0 },
		{ "exec", -EINVAL, 0 },
		{ "ping 127.0.0.1", -EINVAL, 0 },
		{ "", -EINVAL, 0 },
	};

	(void)s;
	for (size_t i = 0; i < ELEMENTSOF(t); i++) {
		struct ap_probe p = { 0 };
		const char *err = NULL;
		int r = ap_probe_parse_unit(t[i].value, &p, &err);

		if (r != t[i].r)
			print_error("'%s': %d\n", t[i].value, r);
		assert_int_equal(r, t[i].r);
		if (r < 0) {
			assert_non_null(err);
			continue;
		}
		assert_int_equal(p.kind, t[i].kind);
		assert_int_equal(p.successes, 1);
		assert_true(p.timeout_usec == AP_PROBE_DEFAULT_TIMEOUT_USEC);
		ap_probe_clear(&p);
	}
}

static void test_parse_exec_words(void **s)
{
	struct ap_probe p = { 0 };
	const char *err = NULL;

	(void)s;
	assert_int_equal(ap_probe_parse_unit("exec /usr/bin/test  -e\t/run/x", &p, &err), 0);
	assert_int_equal(ap_strv_length(p.exec), 3);
	assert_string_equal(p.exec[0], "/usr/bin/test");
	assert_string_equal(p.exec[1], "-e");
	assert_string_equal(p.exec[2], "/run/x");
	ap_probe_clear(&p);
}

/* A URL's user:password@ and query are where secrets go: never in a message. */
static void test_describe(void **s)
{
	static const struct { const char *value, *want; } t[] = {
		{ "http http://u:secret@127.0.0.1:8080/healthz?token=secret#x",
		  "http http://127.0.0.1:8080/healthz" },
		{ "http https://h/", "http https://h/" },
		{ "http http://h?k=secret", "http http://h" },
		{ "tcp 127.0.0.1:22", "tcp 127.0.0.1:22" },
		{ "exec /bin/echo a b", "exec /bin/echo a b" },
	};
	char buf[160];

	(void)s;
	for (size_t i = 0; i < ELEMENTSOF(t); i++) {
		struct ap_probe p = { 0 };
		const char *err = NULL;

		assert_int_equal(ap_probe_parse_unit(t[i].value, &p, &err), 0);
		ap_probe_describe(&p, buf, sizeof(buf));
		assert_string_equal(buf, t[i].want);
		assert_null(strstr(buf, "secret"));
		ap_probe_clear(&p);
	}
	/* cut to fit, never past the buffer */
	{
		struct ap_probe p = { 0 };
		const char *err = NULL;

		assert_int_equal(ap_probe_parse_unit("exec /bin/echo aaaaaaaaaaaaaaaaaaaa", &p,
						     &err), 0);
		ap_probe_describe(&p, buf, 12);
		assert_string_equal(buf, "exec /bin/e");
		ap_probe_clear(&p);
	}
}

static void test_sanitize(void **s)
{
	char buf[16];

	(void)s;
	ap_probe_sanitize("a\x1b[31mb\nc\r", 10, buf, sizeof(buf));
	assert_string_equal(buf, "a?[31mb c?");
	ap_probe_sanitize("0123456789abcdefghij", 20, buf, sizeof(buf));
	assert_int_equal(strlen(buf), sizeof(buf) - 1);
}

/* successes: 3, timeout 2, interval 1: a budget of 9; a failure resets the streak. */
static void test_run_steps(void **s)
{
	struct ap_probe p = { .successes = 3, .timeout_usec = 2, .interval_usec = 1 };
	struct ap_probe_run r;

	(void)s;
	ap_probe_run_start(&p, 100, &r);
	assert_true(r.deadline == 109);
	assert_int_equal(ap_probe_run_step(&p, &r, true, 100), AP_PROBE_AGAIN);
	assert_int_equal(ap_probe_run_step(&p, &r, true, 101), AP_PROBE_AGAIN);
	assert_int_equal(ap_probe_run_step(&p, &r, false, 102), AP_PROBE_AGAIN);
	assert_int_equal(r.streak, 0);
	assert_int_equal(r.failures, 1);
	assert_int_equal(ap_probe_run_step(&p, &r, true, 103), AP_PROBE_AGAIN);
	assert_int_equal(ap_probe_run_step(&p, &r, true, 104), AP_PROBE_AGAIN);
	assert_int_equal(ap_probe_run_step(&p, &r, true, 105), AP_PROBE_PASSED);

	/* the next attempt would start at the deadline: failed */
	ap_probe_run_start(&p, 0, &r);
	assert_int_equal(ap_probe_run_step(&p, &r, false, 7), AP_PROBE_AGAIN);
	assert_int_equal(ap_probe_run_step(&p, &r, false, 8), AP_PROBE_FAILED);
	assert_int_equal(r.failures, 2);

	/* one hung attempt of a one-success probe spends the whole budget */
	p = (struct ap_probe){ .successes = 1, .timeout_usec = 5, .interval_usec = 1 };
	ap_probe_run_start(&p, 0, &r);
	assert_int_equal(ap_probe_run_step(&p, &r, false, 5), AP_PROBE_FAILED);
	ap_probe_run_start(&p, 0, &r);
	assert_int_equal(ap_probe_run_step(&p, &r, true, 5), AP_PROBE_PASSED);
}

static void test_unitfile_health(void **s)
{
	static const char text[] = "[Unit]\nDescription=x\nX-AutoPull-Health=tcp 1.2.3.4:5\n"
				   "[Service]\nX-AutoPull-Health=exec /bin/false\n"
				   "[Unit]\nX-AutoPull-Health =  http http://h/  \n";
	char *v = NULL;
	unsigned line = 0;

	(void)s;
	assert_int_equal(ap_unitfile_health(text, strlen(text), &v, &line), 1);
	assert_string_equal(v, "http http://h/");
	assert_int_equal(line, 7);
	free(v);
	assert_int_equal(ap_unitfile_health("[Service]\nX-AutoPull-Health=tcp a:1\n", 35, &v,
					    &line), 0);
	/* an empty assignment resets */
	assert_int_equal(ap_unitfile_health("[Unit]\nX-AutoPull-Health=tcp a:1\n"
					    "X-AutoPull-Health=\n", 52, &v, &line), 0);
}

static struct ap_config *load(const char *yaml, char **ret_err)
{
	_cleanup_free_ char *path = ap_strdupf("%s/autopull.yaml", tmpdir);
	struct ap_config *c = NULL;
	struct capture cap;
	FILE *f;

	assert_non_null(path);
	f = fopen(path, "we");
	assert_non_null(f);
	assert_true(fputs(yaml, f) >= 0);
	assert_int_equal(fclose(f), 0);
	capture_start(&cap, tmpdir);
	(void)ap_config_load(path, false, &c);
	*ret_err = capture_end(&cap);
	return c;
}

#define REPO "repo: {url: /srv/repo}\nstate_dir: /var/lib/x\nunit_dir: /etc/systemd/system\n"

static void test_config(void **s)
{
	char *err = NULL;
	struct ap_config *c = load(REPO "health:\n"
				   "  web.service: {http: \"http://127.0.0.1:8080/healthz\", "
				   "timeout: 2s, successes: 3}\n"
				   "  \"app-*.service\": {exec: [/usr/bin/true, x]}\n"
				   "  db.service: {tcp: \"127.0.0.1:5432\", interval: 500ms}\n"
				   "guard: {probe: true}\n", &err);
	const struct ap_probe *p;

	(void)s;
	assert_string_equal(err, "");
	free(err);
	assert_non_null(c);
	assert_int_equal(c->n_health, 3);
	assert_true(c->guard.probe);
	p = ap_probe_config_find(c, "web.service");
	assert_non_null(p);
	assert_int_equal(p->kind, AP_PROBE_HTTP);
	assert_int_equal(p->successes, 3);
	assert_true(p->timeout_usec == 2000000ULL);
	assert_true(p->interval_usec == AP_PROBE_DEFAULT_INTERVAL_USEC);
	p = ap_probe_config_find(c, "app-one.service");
	assert_non_null(p);
	assert_int_equal(p->kind, AP_PROBE_EXEC);
	assert_string_equal(p->exec[1], "x");
	p = ap_probe_config_find(c, "db.service");
	assert_non_null(p);
	assert_true(p->interval_usec == 500000ULL);
	assert_null(ap_probe_config_find(c, "other.service"));
	ap_config_free(c);
}

static void test_config_bad(void **s)
{
	static const struct { const char *yaml, *want; } t[] = {
		{ "health:\n  web.service: {}\n", ":5:16: a health probe needs exactly one of" },
		{ "health:\n  web.service: {tcp: \"a:1\", http: \"http://a/\"}\n",
		  ":5:16: a health probe needs exactly one of exec, http, tcp (found 2)" },
		{ "health:\n  web: {tcp: \"a:1\"}\n", ":5:3: health: 'web' is not a unit name" },
		{ "health:\n  web.service: {http: \"ftp://a/\"}\n", ":5:23: http: 'ftp://a/'" },
		{ "health:\n  web.service: {tcp: \"a\"}\n", ":5:22: tcp: 'a' is not HOST:PORT" },
		{ "health:\n  web.service: {tcp: \"a:1\", successes: 0}\n",
		  "successes must be from 1 to 100" },
		{ "health:\n  web.service: {tcp: \"a:1\", timeout: 0s}\n", "timeout must be more" },
		{ "health:\n  web.service: {tcp: \"a:1\", interval: 0s}\n", "interval must be more" },
		{ "health:\n  web.service: {tcp: \"a:1\", interval: 11m}\n", "interval must be more" },
		{ "health:\n  web.service: {tcp: \"a:1\", successes: 7, timeout: 10m}\n",
		  ":5:16: a health probe's successes x (timeout + interval) must be at most 1h" },
		{ "health:\n  web.service: {tcp: \"a:1\", retries: 3}\n", ":5:29: unknown key" },
		{ "health:\n  web.service: [x]\n", "expected a mapping" },
		{ "health:\n  web.service: {tcp: \"a:1\"}\n  web.service: {tcp: \"a:2\"}\n",
		  ":6:16: health: 'web.service' is named twice" },
		{ "guard: {probe: yes}\n", "probe: 'yes' is not true or false" },
	};

	(void)s;
	for (size_t i = 0; i < ELEMENTSOF(t); i++) {
		_cleanup_free_ char *yaml = ap_strdupf(REPO "%s", t[i].yaml), *err = NULL;
		struct ap_config *c = load(yaml, &err);

		if (!strstr(err, t[i].want))
			print_error("%s: got '%s'\n", t[i].yaml, err);
		assert_null(c);
		assert_non_null(strstr(err, t[i].want));
	}
}

/* A hung exec probe is killed at its timeout, and so is everything it started. */
static void test_exec_hangs(void **s)
{
	_cleanup_free_ char *pidfile = ap_strdupf("%s/pid", tmpdir);
	_cleanup_free_ char *script = ap_strdupf("echo $$ > %s; sleep 30", pidfile);
	char *argv[] = { "/bin/sh", "-c", script, NULL };
	struct ap_probe p = { .kind = AP_PROBE_EXEC, .exec = argv, .timeout_usec = 300000,
			      .interval_usec = 1, .successes = 1 };
	char result[AP_PROBE_RESULT_MAX];
	char *text = NULL;
	size_t len = 0;

	(void)s;
	assert_int_equal(ap_probe_once(&p, result), -ETIMEDOUT);
	assert_non_null(strstr(result, "killed at its 300ms timeout"));
	assert_int_equal(ap_fs_read_file(pidfile, 64, &text, &len), 0);
	assert_int_equal(kill((pid_t)strtol(text, NULL, 10), 0), -1);
	assert_int_equal(errno, ESRCH);
	free(text);
}

static void test_exec_status(void **s)
{
	char *argv[] = { "/bin/sh", "-c", "printf 'down\\033[2J\\n'; exit 3", NULL };
	char *ok[] = { "/bin/true", NULL };
	struct ap_probe p = { .kind = AP_PROBE_EXEC, .exec = argv, .timeout_usec = 5000000,
			      .interval_usec = 1, .successes = 1 };
	char result[AP_PROBE_RESULT_MAX];

	(void)s;
	assert_int_equal(ap_probe_once(&p, result), -ECHILD);
	assert_string_equal(result, "exit status 3: down?[2J");
	p.exec = ok;
	assert_int_equal(ap_probe_once(&p, result), 0);
}

static void test_tcp(void **s)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char target[32], result[AP_PROBE_RESULT_MAX];
	struct ap_probe p = { .kind = AP_PROBE_TCP, .tcp = target, .timeout_usec = 1000000,
			      .interval_usec = 1, .successes = 1 };

	(void)s;
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	snprintf(target, sizeof(target), "127.0.0.1:%u", ntohs(a.sin_port));
	assert_int_equal(ap_probe_once(&p, result), 0);
	assert_string_equal(result, "connected");
	close(fd);
	assert_int_equal(ap_probe_once(&p, result), -ECONNREFUSED);
	assert_string_equal(result, "connect: Connection refused");
}

static int setup(void **s)
{
	(void)s;
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **s)
{
	_cleanup_free_ char *a = ap_strdupf("%s/autopull.yaml", tmpdir),
			    *b = ap_strdupf("%s/pid", tmpdir),
			    *c = ap_strdupf("%s/captured-stderr", tmpdir);

	(void)s;
	unlink(a);
	unlink(b);
	unlink(c);
	return rmdir(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_unit),   cmocka_unit_test(test_parse_exec_words),
		cmocka_unit_test(test_describe),     cmocka_unit_test(test_sanitize),
		cmocka_unit_test(test_run_steps),    cmocka_unit_test(test_unitfile_health),
		cmocka_unit_test(test_config),       cmocka_unit_test(test_config_bad),
		cmocka_unit_test(test_exec_hangs),   cmocka_unit_test(test_exec_status),
		cmocka_unit_test(test_tcp),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
