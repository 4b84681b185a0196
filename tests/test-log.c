/* Tests for log.c: what reaches stderr (captured in a temp file) is one line per call,
 * whatever control characters the message carries, and bounded in length. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "log.h"

struct capture {
	int saved, fd;
	char path[64];
};

/* Points stderr at a temp file until read_capture. */
static void start_capture(struct capture *c)
{
	snprintf(c->path, sizeof(c->path), "/tmp/test-log-XXXXXX");
	c->fd = mkostemp(c->path, O_CLOEXEC);
	assert_true(c->fd >= 0);
	assert_int_equal(unlink(c->path), 0);
	fflush(stderr);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	assert_int_equal(dup2(c->fd, STDERR_FILENO), STDERR_FILENO);
}

/* Restores stderr and returns what was written (caller frees). */
static char *read_capture(struct capture *c)
{
	static char buf[64 * 1024];
	ssize_t n;

	fflush(stderr);
	assert_int_equal(dup2(c->saved, STDERR_FILENO), STDERR_FILENO);
	(void)close(c->saved);
	n = pread(c->fd, buf, sizeof(buf) - 1, 0);
	(void)close(c->fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return strdup(buf);
}

static size_t count_char(const char *s, char ch)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == ch;
	return n;
}

static void assert_logged(const char *arg, const char *want)
{
	struct capture c;
	char *got;

	start_capture(&c);
	ap_log_error(-EINVAL, "bad '%s'", arg);
	got = read_capture(&c);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_control_chars_escaped(void **state)
{
	assert_logged("a\nb", "autopull: bad 'a\\nb'\n");
	assert_logged("\x1b[31mred\x1b[0m", "autopull: bad '\\x1b[31mred\\x1b[0m'\n");
	assert_logged("t\tr\r", "autopull: bad 't\\tr\\r'\n");
	assert_logged("\x01\x1f\x7f", "autopull: bad '\\x01\\x1f\\x7f'\n");
	/* printable ASCII, UTF-8 and backslashes (unit names: "foo\x2dbar") pass unchanged */
	assert_logged("f\\x2d \xc3\xa9~", "autopull: bad 'f\\x2d \xc3\xa9~'\n");
	/* a C1 control (CSI, U+009B) and a Latin-1 byte: the line stays UTF-8 without them */
	assert_logged("\xc2\x9b" "2J Ren\xe9", "autopull: bad '\\xc2\\x9b2J Ren\\xe9'\n");
}

/* A message of nothing but newlines is still one bounded line. */
static void test_one_line_bounded(void **state)
{
	char *nl = malloc(20000), *got;
	struct capture c;

	assert_non_null(nl);
	memset(nl, '\n', 19999);
	nl[19999] = '\0';
	start_capture(&c);
	ap_log_warning("%s", nl);
	ap_log_warning("%s", nl + 19000);
	got = read_capture(&c);
	assert_int_equal(count_char(got, '\n'), 2);
	assert_true(strlen(got) < 2 * (4 * 2048 + 32));
	assert_true(strstr(got, "\\n\\n...\n") != NULL); /* the first was cut */
	free(got);
	free(nl);
}

static void test_prefix_and_level(void **state)
{
	struct capture c;
	char *got;

	assert_int_equal(setenv("INVOCATION_ID", "0123", 1), 0);
	ap_log_init();
	start_capture(&c);
	ap_log_notice("x\ny");
	ap_log_debug("hidden");
	assert_int_equal(ap_log_error(-ENOENT, "gone"), -ENOENT);
	got = read_capture(&c);
	assert_string_equal(got, "<5>autopull: x\\ny\n<3>autopull: gone\n");
	free(got);
	assert_int_equal(unsetenv("INVOCATION_ID"), 0);
	ap_log_init();
}

/* Without a journal socket an entry is a line on stderr, its fields escaped nowhere (they
 * are for the journal only), its message escaped like any other. */
static void test_entry_without_journal(void **state)
{
	char *fields[] = { "AUTOPULL_COMMIT=abc", "UNIT=a\nb.service", "_BAD=1", "lower=1", NULL };
	struct stat st;
	struct capture c;
	char *got;

	if (stat("/run/systemd/journal/socket", &st) == 0)
		skip(); /* a journald is here: the entry went to it (tests/system covers that) */
	start_capture(&c);
	ap_log_entry(AP_LOG_NOTICE, "a978748bdd5c4aae8e527f2decae3d0c", fields, "applied %s", "x\ny");
	ap_log_set_max_level(AP_LOG_WARNING);
	ap_log_entry(AP_LOG_NOTICE, "a978748bdd5c4aae8e527f2decae3d0c", NULL, "quiet");
	ap_log_entry(AP_LOG_ERR, "3c53a8e61f054cb4a0b141f36449275c", NULL, "failed");
	ap_log_set_max_level(AP_LOG_INFO);
	got = read_capture(&c);
	assert_string_equal(got, "autopull: applied x\\ny\nautopull: failed\n");
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_control_chars_escaped),
		cmocka_unit_test(test_one_line_bounded),
		cmocka_unit_test(test_prefix_and_level),
		cmocka_unit_test(test_entry_without_journal),
	};

	ap_log_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
