/* Tests for spawn.c with real processes: exit status, output, timeouts, the environment the
 * child starts in (fds, cwd, signals), and that nothing a validator starts outlives
 * ap_spawn_run (setsid()ed and double-forked daemons included). Each test that writes files
 * gets a temp dir under $TMPDIR or /tmp.
 *
 * Not covered here: which validators run for which file (validate.c). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "spawn.h"
#include "util.h"

#define SEC 1000000ULL

/* A process reaped by ap_spawn_run no longer exists. Should the assertion fail, the
 * process is killed first so that a failing run leaves nothing behind either. */
static void assert_gone(pid_t pid)
{
	int alive = kill(pid, 0) == 0 || errno != ESRCH;

	if (alive)
		(void)kill(pid, SIGKILL);
	assert_false(alive);
}

static int setup_dir(void **state)
{
	char tmpl[] = "/tmp/test-spawn-XXXXXX";
	char *d = mkdtemp(tmpl);

	if (!d)
		return -1;
	*state = strdup(d);
	return *state ? 0 : -1;
}

static int teardown_dir(void **state)
{
	char *d = *state, *f = ap_strdupf("%s/pid", d);

	if (!f)
		return -1;
	(void)unlink(f);
	free(f);
	if (rmdir(d) < 0)
		return -1;
	free(d);
	return 0;
}

static pid_t read_pid(const char *dir)
{
	char *f = ap_strdupf("%s/pid", dir), buf[32] = "";
	FILE *fp = f ? fopen(f, "re") : NULL;
	long v = 0;

	assert_non_null(fp);
	assert_non_null(fgets(buf, sizeof(buf), fp));
	(void)fclose(fp);
	free(f);
	v = strtol(buf, NULL, 10);
	assert_true(v > 1);
	return (pid_t)v;
}

static void run_ok(char *const argv[], char *const env[], unsigned long long timeout,
		   struct ap_spawn_result *r)
{
	assert_int_equal(ap_spawn_run(argv, env, timeout, r), 0);
	assert_non_null(r->output);
	assert_int_equal(r->output[r->output_len], '\0');
}

static void test_spawn_exit_codes(void **state)
{
	char *t[] = { (char *)"true", NULL }, *fl[] = { (char *)"/bin/false", NULL };
	char *sig[] = { (char *)"sh", (char *)"-c", (char *)"kill -TERM $$", NULL };
	struct ap_spawn_result r = { 0 };

	run_ok(t, NULL, 10 * SEC, &r);
	assert_int_equal(r.exit_status, 0);
	assert_int_equal(r.timed_out, 0);
	assert_int_equal(r.output_len, 0);
	assert_string_equal(r.output, "");
	ap_spawn_result_clear(&r);
	run_ok(fl, NULL, 10 * SEC, &r);
	assert_int_equal(r.exit_status, 1);
	ap_spawn_result_clear(&r);
	run_ok(sig, NULL, 10 * SEC, &r);
	assert_int_equal(r.exit_status, 128 + SIGTERM);
	ap_spawn_result_clear(&r);
	assert_null(r.output);
	ap_spawn_result_clear(NULL);
}

static void test_spawn_captures_output(void **state)
{
	char *argv[] = { (char *)"sh", (char *)"-c", (char *)"echo out; echo err >&2; exit 3",
			 NULL };
	char *in[] = { (char *)"sh", (char *)"-c", (char *)"cat; echo done", NULL };
	struct ap_spawn_result r = { 0 };

	run_ok(argv, NULL, 10 * SEC, &r);
	assert_int_equal(r.exit_status, 3);
	assert_string_equal(r.output, "out\nerr\n");
	assert_int_equal(r.output_len, 8);
	ap_spawn_result_clear(&r);
	/* stdin is /dev/null: cat sees EOF at once instead of waiting for our terminal. */
	run_ok(in, NULL, 10 * SEC, &r);
	assert_int_equal(r.timed_out, 0);
	assert_string_equal(r.output, "done\n");
	ap_spawn_result_clear(&r);
}

/* The timeout kills the validator and what it put in the background. */
/* The input variant feeds a file to stdin; a missing file is an error, not an empty stdin. */
static void test_spawn_input(void **state)
{
	char *in[] = { (char *)"sh", (char *)"-c", (char *)"cat; echo done", NULL };
	char path[] = "/tmp/test-spawn-input-XXXXXX";
	struct ap_spawn_result r = { 0 };
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "signed bytes\n", 13), 13);
	assert_int_equal(close(fd), 0);
	assert_int_equal(ap_spawn_run_input(in, NULL, 10 * SEC, path, &r), 0);
	assert_int_equal(r.exit_status, 0);
	assert_string_equal(r.output, "signed bytes\ndone\n");
	ap_spawn_result_clear(&r);
	assert_int_equal(unlink(path), 0);
	assert_true(ap_spawn_run_input(in, NULL, 10 * SEC, path, &r) < 0);
}

static void test_spawn_timeout_kills_group(void **state)
{
	char *slp[] = { (char *)"sleep", (char *)"10", NULL };
	char *grp[] = { (char *)"sh", (char *)"-c", (char *)"sleep 1000 & echo $!; wait", NULL };
	struct ap_spawn_result r = { 0 };
	unsigned long long t0 = ap_now_monotonic_usec();
	pid_t bg;

	run_ok(slp, NULL, 200000, &r);
	assert_int_equal(r.timed_out, 1);
	assert_int_equal(r.exit_status, 128 + SIGKILL);
	assert_true(ap_now_monotonic_usec() - t0 < 3 * SEC);
	ap_spawn_result_clear(&r);

	run_ok(grp, NULL, 500000, &r);
	assert_int_equal(r.timed_out, 1);
	bg = (pid_t)strtol(r.output, NULL, 10);
	assert_true(bg > 0);
	assert_gone(bg);
	ap_spawn_result_clear(&r);
}

static void test_spawn_output_capped(void **state)
{
	char *argv[] = { (char *)"sh", (char *)"-c", (char *)"yes | head -c 1048576; echo end >&2",
			 NULL };
	struct ap_spawn_result r = { 0 };

	run_ok(argv, NULL, 60 * SEC, &r);
	assert_int_equal(r.timed_out, 0);
	assert_int_equal(r.exit_status, 0);
	assert_int_equal(r.output_len, AP_SPAWN_MAX_OUTPUT);
	assert_int_equal(strlen(r.output), AP_SPAWN_MAX_OUTPUT);
	assert_memory_equal(r.output, "y\ny\n", 4);
	/* the newest bytes are kept too: a tool's error comes last */
	assert_string_equal(r.output + r.output_len - 4, "end\n");
	ap_spawn_result_clear(&r);
}

static void test_spawn_not_found(void **state)
{
	char *a[] = { (char *)"autopull-test-no-such-command", NULL };
	char *b[] = { (char *)"/nonexistent/cmd", NULL }, *c[] = { (char *)"/tmp", NULL };
	char *d[] = { (char *)"", NULL };
	struct ap_spawn_result r = { .exit_status = 77 };

	assert_int_equal(ap_spawn_run(a, NULL, SEC, &r), -ENOENT);
	assert_int_equal(ap_spawn_run(b, NULL, SEC, &r), -ENOENT);
	assert_int_equal(ap_spawn_run(c, NULL, SEC, &r), -ENOENT);
	assert_int_equal(ap_spawn_run(d, NULL, SEC, &r), -ENOENT);
	assert_int_equal(r.exit_status, 77);
	assert_null(r.output);
}

static void test_spawn_clean_env(void **state)
{
	char *argv[] = { (char *)"env", NULL }, *mine[] = { (char *)"FOO=bar", NULL };
	struct ap_spawn_result r = { 0 };

	assert_int_equal(setenv("AP_TEST_LEAK", "1", 1), 0);
	run_ok(argv, NULL, 10 * SEC, &r);
	assert_string_equal(r.output, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
				      "/sbin:/bin\nLANG=C.UTF-8\n");
	ap_spawn_result_clear(&r);
	run_ok(argv, mine, 10 * SEC, &r);
	assert_string_equal(r.output, "FOO=bar\n");
	ap_spawn_result_clear(&r);
	assert_int_equal(unsetenv("AP_TEST_LEAK"), 0);
}

/* An ignored SIGPIPE or a blocked signal in autopull must not reach the validator. */
static void test_spawn_resets_signals(void **state)
{
	char *argv[] = { (char *)"grep", (char *)"-E", (char *)"^Sig(Blk|Ign)",
			 (char *)"/proc/self/status", NULL };
	struct ap_spawn_result r = { 0 };
	unsigned long long ign;
	sigset_t usr1, old;

	assert_int_equal(sigemptyset(&usr1), 0);
	assert_int_equal(sigaddset(&usr1, SIGUSR1), 0);
	assert_int_equal(sigprocmask(SIG_BLOCK, &usr1, &old), 0);
	assert_true(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
	run_ok(argv, NULL, 10 * SEC, &r);
	assert_true(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
	assert_int_equal(sigprocmask(SIG_SETMASK, &old, NULL), 0);
	assert_true(ap_startswith(r.output, "SigBlk:\t0000000000000000\nSigIgn:\t"));
	ign = strtoull(r.output + strlen("SigBlk:\t0000000000000000\nSigIgn:\t"), NULL, 16);
	/* glibc's posix_spawn leaves its two internal real-time signals (32, 33) ignored in the
	 * child by design and refuses to put them in a sigset; the classic ones must be clear. */
	assert_int_equal(ign & 0x7fffffffULL, 0);
	ap_spawn_result_clear(&r);
}

/* A validator that starts a daemon the classic way (setsid, fork, parent exits) and then
 * exits 0. The daemon holds no fd of ours, so only the reaping can catch it. */
static void test_spawn_reaps_setsid_daemon(void **state)
{
	const char *dir = *state;
	char *script = ap_strdupf("setsid sh -c 'sleep 1000 </dev/null >/dev/null 2>&1 & "
				  "echo $! > %s/pid' </dev/null >/dev/null 2>&1; echo started",
				  dir);
	char *argv[] = { (char *)"sh", (char *)"-c", script, NULL };
	struct ap_spawn_result r = { 0 };
	int sub = -1;

	assert_non_null(script);
	run_ok(argv, NULL, 30 * SEC, &r);
	assert_int_equal(r.timed_out, 0);
	assert_int_equal(r.exit_status, 0);
	assert_string_equal(r.output, "started\n");
	assert_gone(read_pid(dir));
	/* The subreaper flag is ours only for the run. */
	assert_int_equal(prctl(PR_GET_CHILD_SUBREAPER, &sub), 0);
	assert_int_equal(sub, 0);
	ap_spawn_result_clear(&r);
	free(script);
}

/* A daemon that keeps the validator's stdout open does not hold ap_spawn_run until the
 * timeout: the validator's own exit ends the run, with its status and its output. */
static void test_spawn_daemon_holding_output(void **state)
{
	const char *dir = *state;
	char *script = ap_strdupf("setsid sh -c 'sleep 1000 & echo $! > %s/pid'; "
				  "echo checked; exit 3", dir);
	char *argv[] = { (char *)"sh", (char *)"-c", script, NULL };
	struct ap_spawn_result r = { 0 };

	assert_non_null(script);
	run_ok(argv, NULL, 30 * SEC, &r);
	assert_int_equal(r.timed_out, 0);
	assert_int_equal(r.exit_status, 3);
	assert_string_equal(r.output, "checked\n");
	assert_gone(read_pid(dir));
	ap_spawn_result_clear(&r);
	free(script);
}

/* Closing stdout and stderr does not take a validator out of the timeout. */
static void test_spawn_timeout_with_output_closed(void **state)
{
	char *argv[] = { (char *)"sh", (char *)"-c", (char *)"exec >&- 2>&-; sleep 30", NULL };
	struct ap_spawn_result r = { 0 };
	unsigned long long t0 = ap_now_monotonic_usec();

	run_ok(argv, NULL, 300000, &r);
	assert_int_equal(r.timed_out, 1);
	assert_int_equal(r.exit_status, 128 + SIGKILL);
	assert_true(ap_now_monotonic_usec() - t0 < 10 * SEC);
	ap_spawn_result_clear(&r);
}

/* A timeout also reaches a setsid()ed process that left the validator's process group. */
static void test_spawn_timeout_kills_other_session(void **state)
{
	const char *dir = *state;
	char *script = ap_strdupf("setsid sh -c 'echo $$ > %s/pid; exec sleep 1000'", dir);
	char *argv[] = { (char *)"sh", (char *)"-c", script, NULL };
	struct ap_spawn_result r = { 0 };

	assert_non_null(script);
	run_ok(argv, NULL, 500000, &r);
	assert_int_equal(r.timed_out, 1);
	assert_gone(read_pid(dir));
	ap_spawn_result_clear(&r);
	free(script);
}

static void test_spawn_cwd_is_root(void **state)
{
	const char *dir = *state;
	char *argv[] = { (char *)"readlink", (char *)"/proc/self/cwd", NULL };
	struct ap_spawn_result r = { 0 };
	int old = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	assert_true(old >= 0);
	assert_int_equal(chdir(dir), 0);
	run_ok(argv, NULL, 10 * SEC, &r);
	assert_int_equal(fchdir(old), 0);
	(void)close(old);
	assert_string_equal(r.output, "/\n");
	ap_spawn_result_clear(&r);
}

/* An fd opened without O_CLOEXEC (by us or a library) does not reach the validator. */
static void test_spawn_no_inherited_fds(void **state)
{
	int fd = open("/dev/null", O_RDONLY), high;
	char *script, *argv[] = { (char *)"sh", (char *)"-c", NULL, NULL };
	struct ap_spawn_result r = { 0 };

	assert_true(fd >= 0);
	high = fcntl(fd, F_DUPFD, 100); /* above the fds a shell uses for itself */
	assert_true(high >= 100);
	script = ap_strdupf("for f in %d %d; do test -e /proc/$$/fd/$f && echo leak $f; done; "
			    "echo done", fd, high);
	assert_non_null(script);
	argv[2] = script;
	run_ok(argv, NULL, 10 * SEC, &r);
	(void)close(high);
	(void)close(fd);
	assert_string_equal(r.output, "done\n");
	assert_int_equal(r.exit_status, 0);
	ap_spawn_result_clear(&r);
	free(script);
}

/* ---- ap_spawn_expand_argv ---- */

static void assert_expands(char *const tmpl[], const char *path, char *const want[])
{
	_cleanup_strv_free_ char **v = NULL;

	assert_int_equal(ap_spawn_expand_argv(tmpl, path, &v), 0);
	assert_int_equal(ap_strv_length(v), ap_strv_length(want));
	for (size_t i = 0; want[i]; i++)
		assert_string_equal(v[i], want[i]);
}

static void test_expand_argv(void **state)
{
	char *t1[] = { (char *)"visudo", (char *)"-cf", (char *)"%s", NULL };
	char *w1[] = { (char *)"visudo", (char *)"-cf", (char *)"/tmp/x y", NULL };
	char *t2[] = { (char *)"caddy", (char *)"--config=%s", (char *)"%s%s", NULL };
	char *w2[] = { (char *)"caddy", (char *)"--config=/p", (char *)"/p/p", NULL };
	char *t3[] = { (char *)"x", (char *)"100%%", (char *)"%%s", (char *)"%d%", (char *)"",
		       (char *)"%%%s", NULL };
	char *w3[] = { (char *)"x", (char *)"100%", (char *)"%s", (char *)"%d%", (char *)"",
		       (char *)"%/p", NULL };
	char *empty[] = { NULL };
	char **v = NULL;

	assert_expands(t1, "/tmp/x y", w1);
	assert_expands(t2, "/p", w2);
	assert_expands(t3, "/p", w3);
	assert_int_equal(ap_spawn_expand_argv(empty, "/p", &v), -EINVAL);
	assert_int_equal(ap_spawn_expand_argv(t1, NULL, &v), -EINVAL);
	assert_null(v);
}

/* --- a child started now and joined later ------------------------------------------------ */

/* 1 while pid has not exited (a zombie counts as exited); the zombie is left to its owner. */
static bool still_running(pid_t pid)
{
	siginfo_t si = { 0 };

	assert_int_equal(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT), 0);
	return si.si_pid == 0;
}

/* Reads dir/pid once the child has written it (it runs while we wait). */
static pid_t wait_pid_file(const char *dir)
{
	char *f = ap_strdupf("%s/pid", dir);
	struct stat st;

	assert_non_null(f);
	for (int i = 0; i < 500 && (stat(f, &st) < 0 || st.st_size == 0); i++)
		(void)usleep(10000);
	free(f);
	return read_pid(dir);
}

/* The child's output is kept for the join, whatever the parent did meanwhile. */
static void test_spawn_join_after_other_work(void **state)
{
	char *argv[] = { (char *)"sh", (char *)"-c", (char *)"echo early; echo late >&2; exit 4",
			 NULL };
	struct ap_spawn_result r = { 0 };
	struct ap_spawn *s = NULL;

	assert_int_equal(ap_spawn_start(argv, NULL, 10 * SEC, &s), 0);
	assert_non_null(s);
	(void)usleep(300000); /* the parent's other work; the child exits meanwhile */
	assert_int_equal(ap_spawn_join(s, &r), 0);
	assert_int_equal(r.exit_status, 4);
	assert_int_equal(r.timed_out, 0);
	assert_string_equal(r.output, "early\nlate\n");
	ap_spawn_result_clear(&r);
}

/* The deadline runs from the start: a join after it kills the child and says so at once. */
static void test_spawn_join_after_deadline(void **state)
{
	char *slp[] = { (char *)"sleep", (char *)"10", NULL };
	struct ap_spawn_result r = { 0 };
	struct ap_spawn *s = NULL;
	unsigned long long t0;

	assert_int_equal(ap_spawn_start(slp, NULL, 100000, &s), 0);
	(void)usleep(300000);
	t0 = ap_now_monotonic_usec();
	assert_int_equal(ap_spawn_join(s, &r), 0);
	assert_int_equal(r.timed_out, 1);
	assert_int_equal(r.exit_status, 128 + SIGKILL);
	assert_true(ap_now_monotonic_usec() - t0 < 2 * SEC);
	ap_spawn_result_clear(&r);
}

/* An abort (the run failed between start and join) kills the child, what it put in the
 * background and what it setsid()ed away, and reaps them all. */
static void test_spawn_abort_kills_everything(void **state)
{
	const char *dir = *state;
	char *script = ap_strdupf("setsid sleep 1000 & echo $! > %s/pid; exec sleep 1000", dir);
	char *argv[] = { (char *)"sh", (char *)"-c", script, NULL };
	struct ap_spawn *s = NULL;
	pid_t bg;
	int sub = -1;

	assert_non_null(script);
	assert_int_equal(ap_spawn_start(argv, NULL, 30 * SEC, &s), 0);
	bg = wait_pid_file(dir);
	ap_spawn_abort(s);
	assert_gone(bg);
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* no child, no zombie left */
	assert_int_equal(errno, ECHILD);
	assert_int_equal(prctl(PR_GET_CHILD_SUBREAPER, &sub), 0);
	assert_int_equal(sub, 0);
	ap_spawn_abort(NULL);
	free(script);
}

/* A run while a started child is out there cleans up after its own child only: the started
 * one still runs, and is joined (or aborted) by its owner. */
static void test_spawn_run_spares_started(void **state)
{
	const char *dir = *state;
	char *script = ap_strdupf("echo $$ > %s/pid; exec sleep 1000", dir);
	char *argv[] = { (char *)"sh", (char *)"-c", script, NULL };
	char *t[] = { (char *)"true", NULL };
	struct ap_spawn_result r = { 0 };
	struct ap_spawn *s = NULL;
	pid_t pid;

	assert_non_null(script);
	assert_int_equal(ap_spawn_start(argv, NULL, 30 * SEC, &s), 0);
	pid = wait_pid_file(dir);
	run_ok(t, NULL, 10 * SEC, &r);
	assert_int_equal(r.exit_status, 0);
	ap_spawn_result_clear(&r);
	assert_true(still_running(pid));
	ap_spawn_abort(s);
	assert_gone(pid);
	free(script);
}

#define D(fn) cmocka_unit_test_setup_teardown(fn, setup_dir, teardown_dir)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spawn_exit_codes),
		cmocka_unit_test(test_spawn_captures_output),
		cmocka_unit_test(test_spawn_input),
		cmocka_unit_test(test_spawn_timeout_kills_group),
		cmocka_unit_test(test_spawn_output_capped),
		cmocka_unit_test(test_spawn_not_found),
		cmocka_unit_test(test_spawn_clean_env),
		cmocka_unit_test(test_spawn_resets_signals),
		D(test_spawn_reaps_setsid_daemon),
		D(test_spawn_daemon_holding_output),
		cmocka_unit_test(test_spawn_timeout_with_output_closed),
		D(test_spawn_timeout_kills_other_session),
		D(test_spawn_cwd_is_root),
		cmocka_unit_test(test_spawn_no_inherited_fds),
		cmocka_unit_test(test_expand_argv),
		cmocka_unit_test(test_spawn_join_after_other_work),
		cmocka_unit_test(test_spawn_join_after_deadline),
		D(test_spawn_abort_kills_everything),
		D(test_spawn_run_spares_started),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
