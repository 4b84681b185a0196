/* State files: applied commit, journal, inventory, backups and the lock, in a temp dir. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "fsutil.h"
#include "state.h"
#include "util.h"

#define OID_A "0123456789abcdef0123456789abcdef01234567"
#define OID_B "89abcdef0123456789abcdef0123456789abcdef"

static int setup(void **s)
{
	char *dir = NULL;

	assert_int_equal(ap_fs_mkdtemp("test-state", &dir), 0);
	*s = dir;
	return 0;
}

static int teardown(void **s)
{
	ap_fs_rm_rf(*s);
	free(*s);
	return 0;
}

static struct ap_state *open_state(void **s)
{
	struct ap_state *st = NULL;
	char *sub = ap_strdupf("%s/state", (char *)*s);

	assert_int_equal(ap_state_open(sub, &st), 0);
	free(sub);
	return st;
}

static void test_applied(void **s)
{
	struct ap_state *st = open_state(s);
	char oid[AP_OID_HEXSZ + 1];

	assert_int_equal(ap_state_read_applied(st, oid), -ENOENT);
	assert_int_equal(ap_state_write_applied(st, OID_A), 0);
	assert_int_equal(ap_state_read_applied(st, oid), 0);
	assert_string_equal(oid, OID_A);
	ap_state_free(st);
}

static void test_journal(void **s)
{
	struct ap_state *st = open_state(s);
	char from[AP_OID_HEXSZ + 1], to[AP_OID_HEXSZ + 1], *body = NULL;

	assert_int_equal(ap_state_read_journal(st, from, to, &body), -ENOENT);
	assert_int_equal(ap_state_write_journal(st, "", OID_B, "installed 1\nunit restart a.service\n"), 0);
	assert_int_equal(ap_state_read_journal(st, from, to, &body), 0);
	assert_string_equal(from, "");
	assert_string_equal(to, OID_B);
	assert_string_equal(body, "installed 1\nunit restart a.service\n");
	free(body);
	assert_int_equal(ap_state_clear_journal(st), 0);
	assert_int_equal(ap_state_read_journal(st, from, to, &body), -ENOENT);
	ap_state_free(st);
}

static void test_owned(void **s)
{
	struct ap_state *st = open_state(s);
	char **v = NULL, *in[] = { "/etc/b", "/etc/a", NULL };

	assert_int_equal(ap_state_read_owned(st, &v), 0);
	assert_null(v);
	assert_int_equal(ap_state_write_owned(st, in), 0);
	assert_int_equal(ap_state_read_owned(st, &v), 0);
	assert_int_equal(ap_strv_length(v), 2);
	assert_string_equal(v[0], "/etc/a");
	ap_strv_free(v);
	assert_int_equal(ap_state_write_owned(st, NULL), 0);
	assert_int_equal(ap_state_read_owned(st, &v), 0);
	assert_null(v);
	ap_state_free(st);
}

static void test_backup(void **s)
{
	struct ap_state *st = open_state(s);
	char *host = ap_strdupf("%s/host.conf", (char *)*s), *missing = ap_strdupf("%s/none", (char *)*s);
	char *manifest = ap_strdupf("%s/state/backup/%s/manifest", (char *)*s, OID_A);
	char *copy = ap_strdupf("%s/state/backup/%s/0", (char *)*s, OID_A), buf[256] = "";
	FILE *f = fopen(host, "we");

	fputs("old bytes", f);
	fclose(f);
	chmod(host, 0640);
	assert_int_equal(ap_state_backup_file(st, OID_A, host), 0);
	f = fopen(host, "we"); /* a re-run must keep the first copy */
	fputs("new bytes", f);
	fclose(f);
	assert_int_equal(ap_state_backup_file(st, OID_A, host), 0);
	assert_int_equal(ap_state_backup_file(st, OID_A, missing), 0);
	f = fopen(copy, "re");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "old bytes");
	f = fopen(manifest, "re");
	assert_non_null(f);
	assert_int_equal(fread(buf, 1, sizeof(buf) - 1, f) > 0, 1);
	fclose(f);
	assert_non_null(strstr(buf, "0 present 0640 "));
	assert_non_null(strstr(buf, "1 absent - "));
	assert_null(strstr(buf, "2 "));
	/* pruning keeps only the named commit's backup */
	assert_int_equal(ap_state_backup_file(st, OID_B, host), 0);
	assert_int_equal(ap_state_backup_prune(st, OID_B), 0);
	assert_int_equal(access(manifest, F_OK), -1);
	free(manifest);
	manifest = ap_strdupf("%s/state/backup/%s/manifest", (char *)*s, OID_B);
	assert_int_equal(access(manifest, F_OK), 0);
	free(host), free(missing), free(manifest), free(copy);
	ap_state_free(st);
}

static void test_lock_contention(void **s)
{
	struct ap_state *st = open_state(s), *other = NULL;
	int pipefd[2];
	pid_t pid;
	char c;

	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	if (pid == 0) { /* the holder */
		struct ap_state *h = open_state(s);
		if (ap_state_lock(h, 0) < 0)
			_exit(1);
		(void)!write(pipefd[1], "x", 1);
		pause();
		_exit(0);
	}
	assert_int_equal(read(pipefd[0], &c, 1), 1);
	assert_int_equal(ap_state_lock(st, 0), -EAGAIN);
	assert_int_equal(ap_state_lock(st, 1), -EAGAIN); /* waited, still held */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	other = open_state(s);
	assert_int_equal(ap_state_lock(other, 2), 0);
	ap_state_free(other);
	ap_state_free(st);
	close(pipefd[0]);
	close(pipefd[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_applied, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_owned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_contention, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
