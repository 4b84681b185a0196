/* Tests of bus.c against a REAL systemd user manager: no fakes, every call goes over sd-bus.
 *
 * Environment (the test fails, it does not skip, when a part is missing):
 *   XDG_RUNTIME_DIR   the runtime dir of a running `systemd --user`:
 *                     $XDG_RUNTIME_DIR/systemd/private must exist (the integration harness starts the manager as in
 *                     PLATFORM.md section 0).
 *   AP_TEST_UNIT_DIR  a unit directory that manager reads, normally ~/.config/systemd/user of
 *                     the manager's user. The test writes aptest-*.service/.timer files there
 *                     and removes them again.
 *   HOME              the manager's user's home.
 * Run it as the manager's user, e.g. as root:
 *   setpriv --reuid=U --regid=U --init-groups env -i HOME=/home/NAME XDG_RUNTIME_DIR=/run/user/U \
 *     AP_TEST_UNIT_DIR=/home/NAME/.config/systemd/user ./build/tests/test-bus
 * Unit output goes to a temporary directory under /tmp. Latencies are printed as they are
 * measured. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bus.h"
#include "log.h"
#include "util.h"

#define SEC 1000000ULL
#define JOB_TIMEOUT (30 * SEC)
#define MAX_UNITS 64
#define N_MANY 20

static struct ap_bus *bus;
static const char *unit_dir;
static char tmp_dir[] = "/tmp/aptest-XXXXXX";
static char *written[MAX_UNITS]; /* unit files this test wrote, removed at the end */
static size_t n_written;

/* --- helpers --------------------------------------------------------------------- */

static double ms_since(unsigned long long start)
{
	return (double)(ap_now_monotonic_usec() - start) / 1000.0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	assert_true(fputs(content, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

/* Writes unit_dir/name; "@T@" in the text becomes the temporary directory. */
static void write_unit(const char *name, const char *text)
{
	struct ap_buf content = { 0 };
	_cleanup_free_ char *path = ap_strdupf("%s/%s", unit_dir, name);

	assert_non_null(path);
	for (const char *c = text; *c;) {
		const char *at = strstr(c, "@T@");
		size_t n = at ? (size_t)(at - c) : strlen(c);

		assert_int_equal(ap_buf_append(&content, c, n), 0);
		if (!at)
			break;
		assert_int_equal(ap_buf_printf(&content, "%s", tmp_dir), 0);
		c = at + 3;
	}
	write_file(path, content.data);
	ap_buf_clear(&content);
	for (size_t i = 0; i < n_written; i++)
		if (strcmp(written[i], name) == 0)
			return;
	assert_true(n_written < MAX_UNITS);
	written[n_written] = strdup(name);
	assert_non_null(written[n_written++]);
}

static bool file_contains(const char *name, const char *needle)
{
	_cleanup_free_ char *path = ap_strdupf("%s/%s", tmp_dir, name);
	char buf[4096];
	size_t n;
	FILE *f;

	assert_non_null(path);
	f = fopen(path, "re");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

static int run1(enum ap_job_kind kind, const char *unit, struct ap_job *ret)
{
	*ret = (struct ap_job){ .unit = unit, .kind = kind };
	return ap_bus_run_jobs(bus, ret, 1, JOB_TIMEOUT);
}

static void expect_job(enum ap_job_kind kind, const char *unit, int error, const char *result)
{
	struct ap_job j;

	assert_int_equal(run1(kind, unit, &j), error);
	assert_int_equal(j.error, error);
	assert_string_equal(j.result, result);
}

static void props(const char *unit, struct ap_unit_props *ret)
{
	assert_int_equal(ap_bus_get_unit_props(bus, unit, ret), 0);
}

static void expect_active(const char *unit, const char *active, const char *sub)
{
	_cleanup_(ap_unit_props_clear) struct ap_unit_props p = { 0 };

	props(unit, &p);
	assert_string_equal(p.active_state, active);
	if (sub)
		assert_string_equal(p.sub_state, sub);
}

static char *invocation_id(const char *unit)
{
	struct ap_unit_props p = { 0 };
	char *id;

	props(unit, &p);
	id = TAKE_PTR(p.invocation_id);
	ap_unit_props_clear(&p);
	return id;
}

static void reload(void)
{
	assert_int_equal(ap_bus_reload(bus), 0);
}

#define SLEEP_SERVICE "[Service]\nExecStart=/bin/sleep infinity\n" \
			"StandardOutput=append:@T@/sleep.log\n"
static const char sleep_unit[] = "[Unit]\nStartLimitIntervalSec=0\n" SLEEP_SERVICE;

/* --- setup ----------------------------------------------------------------------- */

static int group_setup(void **state)
{
	if (!mkdtemp(tmp_dir))
		return -1;
	return ap_bus_open(AP_SCOPE_USER, &bus) < 0 ? -1 : 0;
}

/* Stops every aptest-* unit, removes the unit files and reloads, so that a rerun starts
 * clean even after a failed test. */
static int group_teardown(void **state)
{
	struct ap_unit_states s = { 0 };
	char pattern[] = "aptest-*";
	char *patterns[] = { pattern, NULL };
	struct ap_job jobs[MAX_UNITS];
	size_t n = 0;

	if (ap_bus_list_units(bus, patterns, &s) == 0)
		for (size_t i = 0; i < s.n && n < MAX_UNITS; i++)
			jobs[n++] = (struct ap_job){ .unit = s.v[i].name, .kind = AP_JOB_STOP };
	(void)ap_bus_run_jobs(bus, jobs, n, JOB_TIMEOUT);
	ap_unit_states_clear(&s);
	for (size_t i = 0; i < n_written; i++) {
		_cleanup_free_ char *path = ap_strdupf("%s/%s", unit_dir, written[i]);
		if (path)
			(void)unlink(path);
		free(written[i]);
	}
	{
		_cleanup_free_ char *wants = ap_strdupf("%s/default.target.wants", unit_dir);
		if (wants)
			(void)rmdir(wants);
	}
	(void)ap_bus_reload(bus);
	ap_bus_free(bus);
	{
		static const char *const logs[] = { "sleep.log", "reload.log", "false.log" };
		for (size_t i = 0; i < ELEMENTSOF(logs); i++) {
			_cleanup_free_ char *p = ap_strdupf("%s/%s", tmp_dir, logs[i]);
			if (p)
				(void)unlink(p);
		}
	}
	(void)rmdir(tmp_dir);
	return 0;
}

/* --- tests ----------------------------------------------------------------------- */

static void test_kind_to_string(void **state)
{
	assert_string_equal(ap_job_kind_to_string(AP_JOB_START), "start");
	assert_string_equal(ap_job_kind_to_string(AP_JOB_STOP), "stop");
	assert_string_equal(ap_job_kind_to_string(AP_JOB_TRY_RESTART), "try-restart");
	assert_string_equal(ap_job_kind_to_string(AP_JOB_RELOAD_OR_TRY_RESTART),
	                    "reload-or-try-restart");
	assert_string_equal(ap_job_kind_to_string((enum ap_job_kind)42), "?");
}

static void test_open_latency(void **state)
{
	struct ap_bus *b = NULL;
	unsigned long long t = ap_now_monotonic_usec();

	assert_int_equal(ap_bus_open(AP_SCOPE_USER, &b), 0);
	print_message("latency: open (connect + match + Subscribe) %.2f ms\n", ms_since(t));
	ap_bus_free(b);
}

/* No private socket and no user bus behind XDG_RUNTIME_DIR: a clean error, no crash. */
static void test_open_fails_without_manager(void **state)
{
	_cleanup_free_ char *saved = strdup(secure_getenv("XDG_RUNTIME_DIR"));
	struct ap_bus *b = NULL;

	assert_non_null(saved);
	assert_int_equal(setenv("XDG_RUNTIME_DIR", tmp_dir, 1), 0);
	assert_int_equal(unsetenv("DBUS_SESSION_BUS_ADDRESS"), 0);
	assert_true(ap_bus_open(AP_SCOPE_USER, &b) < 0);
	assert_null(b);
	assert_int_equal(setenv("XDG_RUNTIME_DIR", saved, 1), 0);
}

/* The test runs outside every unit of this manager (the harness starts it beside the
 * manager, not under it): no unit holds it, which is no error. Its own unit, found when it
 * does run inside one, is tested against the real manager by t-69-beyond. */
static void test_own_unit_outside(void **state)
{
	char *self = (char *)"unset";

	assert_int_equal(ap_bus_own_unit(bus, &self), 0);
	assert_null(self);
}

/* A run job is a transient oneshot service: done when its command exits 0 (and the unit is
 * gone), failed otherwise (the unit stays failed, with its exit status, until reset). */
static void test_run_transient(void **state)
{
	char *const ok_argv[] = { (char *)"/bin/true", NULL };
	char *const bad_argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)"exit 7", NULL };
	struct ap_job jobs[] = {
		{ .unit = "aptest-run-ok.service", .kind = AP_JOB_RUN, .argv = ok_argv },
		{ .unit = "aptest-run-bad.service", .kind = AP_JOB_RUN, .argv = bad_argv },
	};
	_cleanup_(ap_unit_props_clear) struct ap_unit_props p = { 0 };

	(void)ap_bus_run_jobs(bus, jobs, ELEMENTSOF(jobs), JOB_TIMEOUT);
	assert_int_equal(jobs[0].error, 0);
	assert_string_equal(jobs[0].result, "done");
	assert_int_equal(jobs[1].error, -EIO);
	assert_string_equal(jobs[1].result, "failed");
	props("aptest-run-bad.service", &p);
	assert_string_equal(p.active_state, "failed");
	assert_int_equal(p.exec_main_status, 7);
	assert_int_equal(ap_bus_reset_failed(bus, (char *[]){ (char *)"aptest-run-bad.service",
							       NULL }), 0);
}

static void test_reload(void **state)
{
	_cleanup_(ap_unit_props_clear) struct ap_unit_props p = { 0 };
	unsigned long long t;

	write_unit("aptest-sleep.service", sleep_unit);
	t = ap_now_monotonic_usec();
	reload();
	print_message("latency: Reload %.2f ms\n", ms_since(t));
	props("aptest-sleep.service", &p);
	assert_string_equal(p.load_state, "loaded");
	assert_false(p.need_daemon_reload);
	ap_unit_props_clear(&p);

	/* A changed file is noticed, and Reload's reply means the reload is finished. The unit
	 * must be active: an inactive one is garbage-collected and simply loaded afresh. The
	 * pause makes the file's mtime differ from the one the manager loaded. */
	expect_job(AP_JOB_START, "aptest-sleep.service", 0, "done");
	sleep_ms(20);
	write_unit("aptest-sleep.service",
	           "[Unit]\nDescription=changed\nStartLimitIntervalSec=0\n" SLEEP_SERVICE);
	props("aptest-sleep.service", &p);
	assert_true(p.need_daemon_reload);
	ap_unit_props_clear(&p);
	reload();
	props("aptest-sleep.service", &p);
	assert_false(p.need_daemon_reload);
	expect_job(AP_JOB_STOP, "aptest-sleep.service", 0, "done");
}

static void test_start_stop(void **state)
{
	_cleanup_(ap_unit_props_clear) struct ap_unit_props p = { 0 };

	expect_job(AP_JOB_START, "aptest-sleep.service", 0, "done");
	props("aptest-sleep.service", &p);
	assert_string_equal(p.active_state, "active");
	assert_string_equal(p.sub_state, "running");
	assert_string_equal(p.result, "success");
	assert_int_equal(strlen(p.invocation_id), 32);
	assert_int_equal(strspn(p.invocation_id, "0123456789abcdef"), 32);
	assert_true(p.active_enter_monotonic > 0);
	assert_int_equal(p.n_restarts, 0);
	expect_job(AP_JOB_STOP, "aptest-sleep.service", 0, "done");
	expect_active("aptest-sleep.service", "inactive", "dead");
}

static void test_try_restart_active(void **state)
{
	_cleanup_free_ char *before = NULL, *after = NULL;
	double samples[9], median;
	size_t n = ELEMENTSOF(samples);

	expect_job(AP_JOB_START, "aptest-sleep.service", 0, "done");
	before = invocation_id("aptest-sleep.service");
	for (size_t i = 0; i < n; i++) {
		unsigned long long t = ap_now_monotonic_usec();

		expect_job(AP_JOB_TRY_RESTART, "aptest-sleep.service", 0, "done");
		samples[i] = ms_since(t);
	}
	/* insertion sort for the median */
	for (size_t i = 1; i < n; i++)
		for (size_t k = i; k > 0 && samples[k - 1] > samples[k]; k--) {
			double x = samples[k];
			samples[k] = samples[k - 1];
			samples[k - 1] = x;
		}
	median = samples[n / 2];
	print_message("latency: TryRestartUnit + JobRemoved median %.2f ms (min %.2f, max %.2f)\n",
	              median, samples[0], samples[n - 1]);
	after = invocation_id("aptest-sleep.service");
	assert_string_not_equal(before, after);
	expect_active("aptest-sleep.service", "active", "running");
}

static void test_try_restart_inactive(void **state)
{
	expect_job(AP_JOB_STOP, "aptest-sleep.service", 0, "done");
	expect_job(AP_JOB_TRY_RESTART, "aptest-sleep.service", 0, "done");
	expect_active("aptest-sleep.service", "inactive", "dead");
	/* reload-or-try-restart is a no-op on an inactive unit as well */
	expect_job(AP_JOB_RELOAD_OR_TRY_RESTART, "aptest-sleep.service", 0, "done");
	expect_active("aptest-sleep.service", "inactive", "dead");
}

static void test_start_failing_oneshot(void **state)
{
	_cleanup_(ap_unit_props_clear) struct ap_unit_props p = { 0 };

	write_unit("aptest-false.service", "[Unit]\nStartLimitIntervalSec=0\n"
	                                   "[Service]\nType=oneshot\nExecStart=/bin/false\n"
	                                   "StandardOutput=append:@T@/false.log\n");
	reload();
	expect_job(AP_JOB_START, "aptest-false.service", -EIO, "failed");
	props("aptest-false.service", &p);
	assert_string_equal(p.active_state, "failed");
	assert_string_equal(p.result, "exit-code");
	assert_int_equal(p.exec_main_status, 1);
}

static void test_stop_nonexistent(void **state)
{
	expect_job(AP_JOB_STOP, "aptest-nonexistent.service", 0, "done");
}

static void test_start_nonexistent(void **state)
{
	expect_job(AP_JOB_START, "aptest-nonexistent.service", -ENOENT, "no-such-unit");
	expect_job(AP_JOB_TRY_RESTART, "aptest-nonexistent.service", -ENOENT, "no-such-unit");
}

static void test_reload_or_try_restart(void **state)
{
	_cleanup_free_ char *before = NULL, *after = NULL;

	write_unit("aptest-reload.service",
	           "[Unit]\nStartLimitIntervalSec=0\n"
	           "[Service]\nExecStart=/bin/sleep infinity\n"
	           "ExecReload=/bin/sh -c 'echo reloaded >> @T@/reload.log'\n");
	reload();
	expect_job(AP_JOB_START, "aptest-reload.service", 0, "done");
	before = invocation_id("aptest-reload.service");
	assert_false(file_contains("reload.log", "reloaded"));
	expect_job(AP_JOB_RELOAD_OR_TRY_RESTART, "aptest-reload.service", 0, "done");
	/* The job is removed only after ExecReload exited, so the file is already written. */
	assert_true(file_contains("reload.log", "reloaded"));
	after = invocation_id("aptest-reload.service");
	assert_string_equal(before, after); /* reloaded, not restarted */
}

/* Without ExecReload, reload-or-try-restart restarts an active unit. */
static void test_reload_or_try_restart_restarts(void **state)
{
	_cleanup_free_ char *before = NULL, *after = NULL;

	expect_job(AP_JOB_START, "aptest-sleep.service", 0, "done");
	before = invocation_id("aptest-sleep.service");
	expect_job(AP_JOB_RELOAD_OR_TRY_RESTART, "aptest-sleep.service", 0, "done");
	after = invocation_id("aptest-sleep.service");
	assert_string_not_equal(before, after);
}

static void test_enable_disable(void **state)
{
	_cleanup_free_ char *link = ap_strdupf("%s/default.target.wants/aptest-inst.service",
	                                       unit_dir);
	char inst_name[] = "aptest-inst.service", plain_name[] = "aptest-sleep.service",
	     missing_name[] = "aptest-nonexistent.service";
	char *inst[] = { inst_name, NULL }, *plain[] = { plain_name, NULL },
	     *missing[] = { missing_name, NULL };
	struct stat st;

	assert_non_null(link);
	write_unit("aptest-inst.service", "[Service]\nExecStart=/bin/sleep infinity\n"
	                                  "[Install]\nWantedBy=default.target\n");
	reload();
	assert_int_equal(ap_bus_enable(bus, inst), 0);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(ap_bus_enable(bus, inst), 0); /* again: no changes, no error */
	assert_int_equal(ap_bus_disable(bus, inst), 0);
	assert_int_equal(lstat(link, &st), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(ap_bus_disable(bus, inst), 0);
	/* no [Install]: nothing to do, not an error */
	assert_int_equal(ap_bus_enable(bus, plain), 0);
	assert_int_equal(ap_bus_enable(bus, missing), -ENOENT);
	assert_int_equal(ap_bus_enable(bus, NULL), 0);
}

static void test_list_units(void **state)
{
	struct ap_unit_states s = { 0 };
	char tpl_glob[] = "aptest-tpl@*.service", none_glob[] = "aptest-nomatch-*";
	char *tpl[] = { tpl_glob, NULL }, *none[] = { none_glob, NULL };
	struct ap_job jobs[] = {
		{ .unit = "aptest-tpl@a.service", .kind = AP_JOB_START },
		{ .unit = "aptest-tpl@b.service", .kind = AP_JOB_START },
	};
	const struct ap_unit_state *u;

	write_unit("aptest-tpl@.service", sleep_unit);
	reload();
	assert_int_equal(ap_bus_run_jobs(bus, jobs, ELEMENTSOF(jobs), JOB_TIMEOUT), 0);
	assert_int_equal(ap_bus_list_units(bus, tpl, &s), 0);
	assert_true(s.known);
	assert_int_equal(s.n, 2);
	u = ap_unit_states_find(&s, "aptest-tpl@b.service");
	assert_non_null(u);
	assert_string_equal(u->load_state, "loaded");
	assert_string_equal(u->active_state, "active");
	assert_string_equal(u->sub_state, "running");
	assert_non_null(ap_unit_states_find(&s, "aptest-tpl@a.service"));
	/* appends to what is there */
	assert_int_equal(ap_bus_list_units(bus, none, &s), 0);
	assert_int_equal(s.n, 2);
	ap_unit_states_clear(&s);
	/* no patterns: nothing, rather than every unit */
	assert_int_equal(ap_bus_list_units(bus, NULL, &s), 0);
	assert_true(s.known);
	assert_int_equal(s.n, 0);
	ap_unit_states_clear(&s);
}

static void test_props_n_restarts(void **state)
{
	_cleanup_(ap_unit_props_clear) struct ap_unit_props p = { 0 };
	unsigned long long t;

	write_unit("aptest-loop.service", "[Unit]\nStartLimitIntervalSec=0\n"
	                                  "[Service]\nExecStart=/bin/false\nRestart=always\n"
	                                  "RestartSec=100ms\n");
	reload();
	expect_job(AP_JOB_START, "aptest-loop.service", 0, "done");
	/* Polling a property with a deadline is what the heartbeat does too. */
	for (t = ap_now_monotonic_usec(); ap_now_monotonic_usec() - t < 10 * SEC;) {
		ap_unit_props_clear(&p);
		props("aptest-loop.service", &p);
		if (p.n_restarts >= 2)
			break;
		sleep_ms(50);
	}
	assert_true(p.n_restarts >= 2);
	/* Result and ExecMainStatus are not checked: each automatic restart resets them. */
	expect_job(AP_JOB_STOP, "aptest-loop.service", 0, "done");
}

static void test_timer_props(void **state)
{
	_cleanup_(ap_unit_props_clear) struct ap_unit_props p = { 0 };

	write_unit("aptest-tick.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n");
	write_unit("aptest-tick.timer", "[Timer]\nOnActiveSec=1h\n");
	reload();
	expect_job(AP_JOB_START, "aptest-tick.timer", 0, "done");
	props("aptest-tick.timer", &p);
	assert_string_equal(p.active_state, "active");
	assert_string_equal(p.sub_state, "waiting");
	assert_string_equal(p.result, "success");
	assert_true(p.next_elapse_monotonic > 0);
	assert_int_equal(p.last_trigger_usec, 0);
	assert_int_equal(p.n_restarts, 0);
}

static void test_props_not_found(void **state)
{
	_cleanup_(ap_unit_props_clear) struct ap_unit_props p = { 0 };
	unsigned long long t = ap_now_monotonic_usec();

	props("aptest-nonexistent.service", &p);
	print_message("latency: get_unit_props (10 properties) %.2f ms\n", ms_since(t));
	assert_string_equal(p.load_state, "not-found");
	assert_string_equal(p.active_state, "inactive");
	assert_string_equal(p.invocation_id, "");
}

static void many_jobs(enum ap_job_kind kind, const char *what)
{
	static char names[N_MANY][64];
	struct ap_job jobs[N_MANY];
	unsigned long long t;

	for (size_t i = 0; i < N_MANY; i++) {
		snprintf(names[i], sizeof(names[i]), "aptest-many@%zu.service", i);
		jobs[i] = (struct ap_job){ .unit = names[i], .kind = kind };
	}
	t = ap_now_monotonic_usec();
	assert_int_equal(ap_bus_run_jobs(bus, jobs, N_MANY, JOB_TIMEOUT), 0);
	print_message("latency: %d x %s queued together, then waited: %.2f ms\n", N_MANY, what,
	              ms_since(t));
	for (size_t i = 0; i < N_MANY; i++) {
		assert_int_equal(jobs[i].error, 0);
		assert_string_equal(jobs[i].result, "done");
	}
}

static void test_many_jobs(void **state)
{
	struct ap_unit_states s = { 0 };
	char glob[] = "aptest-many@*.service";
	char *pat[] = { glob, NULL };

	write_unit("aptest-many@.service", sleep_unit);
	reload();
	many_jobs(AP_JOB_START, "StartUnit");
	assert_int_equal(ap_bus_list_units(bus, pat, &s), 0);
	assert_int_equal(s.n, N_MANY);
	for (size_t i = 0; i < s.n; i++)
		assert_string_equal(s.v[i].active_state, "active");
	ap_unit_states_clear(&s);
	many_jobs(AP_JOB_TRY_RESTART, "TryRestartUnit");
	many_jobs(AP_JOB_STOP, "StopUnit");
}

/* Every outcome in one call; the return value is the first error in job order. */
static void test_mixed_batch(void **state)
{
	struct ap_job jobs[] = {
		{ .unit = "aptest-sleep.service", .kind = AP_JOB_START },
		{ .unit = "aptest-nonexistent.service", .kind = AP_JOB_START },
		{ .unit = "aptest-nonexistent.service", .kind = AP_JOB_STOP },
		{ .unit = "aptest-false.service", .kind = AP_JOB_START },
		{ .unit = "aptest-inst.service", .kind = AP_JOB_TRY_RESTART },
		{ .unit = "aptest-sleep.service", .kind = AP_JOB_TRY_RESTART },
	};

	assert_int_equal(ap_bus_run_jobs(bus, jobs, ELEMENTSOF(jobs), JOB_TIMEOUT), -ENOENT);
	assert_int_equal(jobs[0].error, 0);
	assert_string_equal(jobs[0].result, "done");
	assert_int_equal(jobs[1].error, -ENOENT);
	assert_string_equal(jobs[1].result, "no-such-unit");
	assert_int_equal(jobs[2].error, 0);
	assert_string_equal(jobs[2].result, "done");
	assert_int_equal(jobs[3].error, -EIO);
	assert_string_equal(jobs[3].result, "failed");
	assert_int_equal(jobs[4].error, 0);
	assert_string_equal(jobs[4].result, "done");
	assert_int_equal(jobs[5].error, 0);
	assert_string_equal(jobs[5].result, "done");
	assert_int_equal(ap_bus_run_jobs(bus, jobs, 0, JOB_TIMEOUT), 0);
}

/* Two identical jobs in one call are merged by the manager into one job path. */
static void test_duplicate_jobs(void **state)
{
	struct ap_job jobs[] = {
		{ .unit = "aptest-sleep.service", .kind = AP_JOB_TRY_RESTART },
		{ .unit = "aptest-sleep.service", .kind = AP_JOB_TRY_RESTART },
	};

	assert_int_equal(ap_bus_run_jobs(bus, jobs, ELEMENTSOF(jobs), 5 * SEC), 0);
	assert_string_equal(jobs[0].result, "done");
	assert_string_equal(jobs[1].result, "done");
}

/* The stop replaces the running start job, whose JobRemoved ("canceled") arrives while the
 * stop is being queued, before the stop's path is known. */
static void test_canceled(void **state)
{
	struct ap_job jobs[] = {
		{ .unit = "aptest-slow.service", .kind = AP_JOB_START },
		{ .unit = "aptest-slow.service", .kind = AP_JOB_STOP },
	};

	write_unit("aptest-slow.service", "[Unit]\nStartLimitIntervalSec=0\n"
	                                  "[Service]\nType=oneshot\nExecStart=/bin/sleep 5\n");
	reload();
	assert_int_equal(ap_bus_run_jobs(bus, jobs, ELEMENTSOF(jobs), 10 * SEC), -ECANCELED);
	assert_int_equal(jobs[0].error, -ECANCELED);
	assert_string_equal(jobs[0].result, "canceled");
	assert_int_equal(jobs[1].error, 0);
	assert_string_equal(jobs[1].result, "done");
}

/* Our own deadline: the job stays queued in the manager, its late JobRemoved is ignored. */
static void test_timeout(void **state)
{
	struct ap_job j = { .unit = "aptest-slow.service", .kind = AP_JOB_START };
	unsigned long long t = ap_now_monotonic_usec();
	double ms;

	assert_int_equal(ap_bus_run_jobs(bus, &j, 1, 200 * 1000), -ETIME);
	ms = ms_since(t);
	assert_true(ms >= 200 && ms < 2000);
	assert_int_equal(j.error, -ETIME);
	assert_string_equal(j.result, "timeout");
	expect_job(AP_JOB_STOP, "aptest-slow.service", 0, "done");
	/* SIGTERM ends the oneshot's sleep: "failed" (Result=signal), never active again. */
	expect_active("aptest-slow.service", "failed", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kind_to_string),
		cmocka_unit_test(test_open_latency),
		cmocka_unit_test(test_open_fails_without_manager),
		cmocka_unit_test(test_own_unit_outside),
		cmocka_unit_test(test_run_transient),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_start_stop),
		cmocka_unit_test(test_try_restart_active),
		cmocka_unit_test(test_try_restart_inactive),
		cmocka_unit_test(test_start_failing_oneshot),
		cmocka_unit_test(test_stop_nonexistent),
		cmocka_unit_test(test_start_nonexistent),
		cmocka_unit_test(test_reload_or_try_restart),
		cmocka_unit_test(test_reload_or_try_restart_restarts),
		cmocka_unit_test(test_enable_disable),
		cmocka_unit_test(test_list_units),
		cmocka_unit_test(test_props_n_restarts),
		cmocka_unit_test(test_timer_props),
		cmocka_unit_test(test_props_not_found),
		cmocka_unit_test(test_many_jobs),
		cmocka_unit_test(test_mixed_batch),
		cmocka_unit_test(test_duplicate_jobs),
		cmocka_unit_test(test_canceled),
		cmocka_unit_test(test_timeout),
	};
	const char *runtime = secure_getenv("XDG_RUNTIME_DIR");
	_cleanup_free_ char *socket_path = NULL;
	struct stat st;

	ap_log_init();
	unit_dir = secure_getenv("AP_TEST_UNIT_DIR");
	if (!runtime || !unit_dir) {
		fprintf(stderr, "test-bus: needs XDG_RUNTIME_DIR (of a running systemd --user) and "
		                "AP_TEST_UNIT_DIR (its unit directory); see the top of tests/test-bus.c\n");
		return 1;
	}
	socket_path = ap_strdupf("%s/systemd/private", runtime);
	if (!socket_path || stat(socket_path, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "test-bus: no systemd user manager: '%s' does not exist; start one "
		                "(PLATFORM.md section 0) and run this as its user\n",
		        socket_path ? socket_path : "$XDG_RUNTIME_DIR/systemd/private");
		return 1;
	}
	if (stat(unit_dir, &st) < 0 || !S_ISDIR(st.st_mode) || access(unit_dir, W_OK) < 0) {
		fprintf(stderr, "test-bus: AP_TEST_UNIT_DIR '%s' is not a writable directory\n",
		        unit_dir);
		return 1;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
