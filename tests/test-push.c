/* The metrics push around the HTTP call: unusable credential files and a dead endpoint are
 * errors (record.c counts them); no push configured is no push. (The push that lands, and the
 * count of those that failed, are tested against a real VictoriaMetrics in
 * tests/integration/t-60.) */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "fsutil.h"
#include "log.h"
#include "push.h"
#include "util.h"

struct fixture {
	char *dir;
	char url[64]; /* a loopback port nothing listens on */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (!f || fd < 0 || ap_fs_mkdtemp("test-push", &f->dir) < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		return -1;
	close(fd);
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/api/v1/import/prometheus",
		 ntohs(a.sin_port));
	ap_log_set_max_level(AP_LOG_ERR); /* the warnings are expected */
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ap_fs_rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static char *put(struct fixture *f, const char *name, const char *content)
{
	char *path = ap_strdupf("%s/%s", f->dir, name);
	FILE *fp = path ? fopen(path, "w") : NULL;

	assert_non_null(fp);
	assert_true(fputs(content, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
	return path;
}

static void test_no_push_configured(void **state)
{
	const struct ap_guard_config g = { .push_timeout_usec = 1000000 };

	assert_int_equal(ap_push_metrics(&g, "a 1\n"), 0);
}

static void test_dead_endpoint(void **state)
{
	struct fixture *f = *state;
	struct ap_guard_config g = { .push_url = f->url, .push_timeout_usec = 2000000 };
	assert_int_equal(ap_push_metrics(&g, "a 1\n"), -ECONNREFUSED);
	assert_int_equal(ap_push_metrics(&g, "a 1\n"), -ECONNREFUSED);
}

/* A credential that cannot be used is a failed push, before anything is sent. */
static void test_bad_credentials(void **state)
{
	struct fixture *f = *state;
	struct ap_guard_config g = { .push_url = f->url, .push_timeout_usec = 2000000 };
	char *empty = put(f, "empty", "\n"), *ctl = put(f, "ctl", "to\x01ken\n"),
	     *missing = ap_strdupf("%s/missing", f->dir), *link = ap_strdupf("%s/link", f->dir);

	assert_int_equal(symlink(ctl, link), 0);
	g.push_token_file = empty;
	assert_int_equal(ap_push_metrics(&g, "a 1\n"), -ENODATA);
	g.push_token_file = ctl;
	assert_int_equal(ap_push_metrics(&g, "a 1\n"), -EBADMSG);
	g.push_token_file = NULL;
	g.push_basic_auth_file = missing;
	assert_int_equal(ap_push_metrics(&g, "a 1\n"), -ENOENT);
	g.push_basic_auth_file = link;
	assert_int_equal(ap_push_metrics(&g, "a 1\n"), -ELOOP);
	free(empty);
	free(ctl);
	free(missing);
	free(link);
}

/* Only the first line is the secret: a trailing newline or a comment line is not sent. */
static void test_token_first_line(void **state)
{
	struct fixture *f = *state;
	char *tok = put(f, "tok", "secret\r\nsecond line\n");
	struct ap_guard_config g = { .push_url = f->url, .push_token_file = tok,
				     .push_timeout_usec = 2000000 };

	/* read fine, so the failure is the connection's */
	assert_int_equal(ap_push_metrics(&g, "a 1\n"), -ECONNREFUSED);
	free(tok);
}


int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_push_configured, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_endpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_credentials, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_first_line, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
