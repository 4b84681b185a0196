/* The guard's arithmetic on recorded sample sequences: resets by explicit restarts,
 * reboots, clock steps, window edges; the history format; the metrics text. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "heartbeat.h"
#include "util.h"

#define S 1000000ULL
#define MIN (60 * S)
#define WINDOW (5 * MIN)
#define BOOT_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define BOOT_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* unit, boot, mono, real, invocation, NRestarts, active, sub */
static struct ap_hb_sample smp(const char *boot, uint64_t mono, uint64_t real, const char *inv,
			       unsigned n, const char *active, const char *sub)
{
	/* active since long before any window, unless a test says otherwise */
	struct ap_hb_sample s = { .mono_usec = mono, .real_usec = real, .n_restarts = n,
				  .active_enter_real_usec = 1 };

	snprintf(s.unit, sizeof(s.unit), "web.service");
	snprintf(s.boot_id, sizeof(s.boot_id), "%s", boot);
	snprintf(s.invocation_id, sizeof(s.invocation_id), "%s", inv);
	snprintf(s.active_state, sizeof(s.active_state), "%s", active);
	snprintf(s.sub_state, sizeof(s.sub_state), "%s", sub);
	snprintf(s.result, sizeof(s.result), "success");
	return s;
}

static struct ap_hb_verdict judge(const struct ap_hb_sample *v, size_t n, const char *boot,
				  uint64_t now_mono, uint64_t now_real)
{
	struct ap_hb_history h = { 0 };
	struct ap_hb_verdict out;

	for (size_t i = 0; i < n; i++)
		assert_int_equal(ap_hb_history_append(&h, &v[i]), 0);
	assert_int_equal(ap_hb_judge(&h, "web.service", boot, now_mono, now_real, WINDOW, 3, &out), 0);
	ap_hb_history_clear(&h);
	return out;
}

#define R(x) (1700000000ULL * S + (x))

static void test_first_sample(void **s)
{
	/* never sampled before: a loop already under way counts ... */
	struct ap_hb_sample a = smp(BOOT_A, 10 * S, R(10 * S), "i9", 7, "activating", "start");
	/* ... old restarts of a unit that has been up for an hour do not */
	struct ap_hb_sample b = smp(BOOT_A, 10 * S, R(7200 * S), "i9", 7, "active", "running");
	struct ap_hb_verdict out;

	out = judge(&a, 1, BOOT_A, 11 * S, R(11 * S));
	assert_int_equal(out.restarts, 7);
	assert_true(out.looping);
	b.active_enter_real_usec = R(3600 * S);
	out = judge(&b, 1, BOOT_A, 11 * S, R(7201 * S));
	assert_int_equal(out.restarts, 0);
	assert_false(out.looping);
}

static void test_steady_unit(void **s)
{
	const struct ap_hb_sample v[] = {
		smp(BOOT_A, 10 * S, R(10 * S), "i1", 0, "active", "running"),
		smp(BOOT_A, 40 * S, R(40 * S), "i1", 0, "active", "running"),
		smp(BOOT_A, 70 * S, R(70 * S), "i1", 0, "active", "running"),
	};
	struct ap_hb_verdict out = judge(v, 3, BOOT_A, 80 * S, R(80 * S));
	assert_false(out.looping);
	assert_int_equal(out.restarts, 0);
}

static void test_climbing_restarts_loop(void **s)
{
	const struct ap_hb_sample v[] = {
		smp(BOOT_A, 10 * S, R(10 * S), "i1", 0, "active", "running"),
		smp(BOOT_A, 40 * S, R(40 * S), "i2", 2, "active", "running"),
		smp(BOOT_A, 70 * S, R(70 * S), "i5", 4, "activating", "start"),
	};
	struct ap_hb_verdict out = judge(v, 3, BOOT_A, 80 * S, R(80 * S));
	assert_true(out.looping);
	assert_int_equal(out.restarts, 4);
	assert_non_null(strstr(out.why, "4 automatic restarts"));
}

static void test_explicit_restart_is_not_a_loop(void **s)
{
	/* our own deploy restarted the unit: NRestarts 2 -> 0 with a new invocation */
	const struct ap_hb_sample v[] = {
		smp(BOOT_A, 10 * S, R(10 * S), "i1", 2, "active", "running"),
		smp(BOOT_A, 40 * S, R(40 * S), "i2", 0, "active", "running"),
		smp(BOOT_A, 70 * S, R(70 * S), "i3", 0, "active", "running"),
	};
	struct ap_hb_verdict out = judge(v, 3, BOOT_A, 80 * S, R(80 * S));
	assert_false(out.looping);
	assert_int_equal(out.restarts, 0);
}

static void test_restarts_after_reset_are_counted(void **s)
{
	/* 3 before an explicit restart, reset to 0, then 2 more: 0->3 + (reset) 1 + 1->2 */
	const struct ap_hb_sample v[] = {
		smp(BOOT_A, 10 * S, R(10 * S), "i1", 0, "active", "running"),
		smp(BOOT_A, 20 * S, R(20 * S), "i4", 3, "active", "running"),
		smp(BOOT_A, 30 * S, R(30 * S), "i6", 1, "active", "running"),
		smp(BOOT_A, 40 * S, R(40 * S), "i7", 2, "active", "running"),
	};
	struct ap_hb_verdict out = judge(v, 4, BOOT_A, 50 * S, R(50 * S));
	assert_int_equal(out.restarts, 5);
	assert_true(out.looping);
}

static void test_reboot_resets_counter(void **s)
{
	/* NRestarts 4 before the reboot, 1 after: one restart since boot, measured by realtime */
	const struct ap_hb_sample v[] = {
		smp(BOOT_A, 900 * S, R(10 * S), "i1", 4, "active", "running"),
		smp(BOOT_B, 5 * S, R(60 * S), "j1", 1, "active", "running"),
	};
	struct ap_hb_verdict out = judge(v, 2, BOOT_B, 10 * S, R(65 * S));
	assert_int_equal(out.restarts, 1);
	assert_false(out.looping);
}

static void test_clock_step_uses_monotonic(void **s)
{
	/* realtime was stepped back an hour between samples; monotonic says 30 s apart */
	const struct ap_hb_sample v[] = {
		smp(BOOT_A, 10 * S, R(3600 * S), "i1", 0, "active", "running"),
		smp(BOOT_A, 40 * S, R(30 * S), "i2", 5, "active", "running"),
	};
	struct ap_hb_verdict out = judge(v, 2, BOOT_A, 50 * S, R(40 * S));
	assert_int_equal(out.restarts, 5);
	assert_true(out.looping);
}

/* A sample dated after "now" (the history outlived a clock step, or another boot's realtime
 * clock ran ahead) must not sit in every window and keep the guard refusing. */
static void test_future_samples_ignored(void **s)
{
	/* same boot: monotonic in the future, a loop recorded there */
	const struct ap_hb_sample same[] = {
		smp(BOOT_A, 10 * S, R(10 * S), "i1", 0, "active", "running"),
		smp(BOOT_A, 900 * S, R(900 * S), "i2", 9, "activating", "auto-restart"),
	};
	/* another boot whose realtime clock was an hour ahead of ours */
	const struct ap_hb_sample other[] = {
		smp(BOOT_A, 500 * S, R(3600 * S), "i1", 7, "activating", "auto-restart"),
		smp(BOOT_B, 5 * S, R(60 * S), "j1", 0, "active", "running"),
	};
	struct ap_hb_history h = { 0 };
	struct ap_hb_verdict out = judge(same, 2, BOOT_A, 50 * S, R(50 * S));

	assert_int_equal(out.restarts, 0);
	assert_false(out.looping);
	out = judge(other, 2, BOOT_B, 10 * S, R(65 * S));
	assert_int_equal(out.restarts, 0);
	assert_false(out.looping);
	/* only future samples: no current state at all */
	assert_int_equal(ap_hb_history_append(&h, &other[0]), 0);
	assert_int_equal(ap_hb_judge(&h, "web.service", BOOT_B, 10 * S, R(65 * S), WINDOW, 3, &out),
			 -ENOENT);
	assert_false(out.looping);
	ap_hb_history_clear(&h);
}

/* Pruning drops future samples for good, so they cannot come back into the window once the
 * clock passes them. */
static void test_prune_drops_future_samples(void **s)
{
	const struct ap_hb_sample v[] = {
		smp(BOOT_A, 500 * S, R(3600 * S), "i1", 7, "activating", "auto-restart"),
		smp(BOOT_B, 5 * S, R(60 * S), "j1", 0, "active", "running"),
		smp(BOOT_B, 900 * S, R(900 * S), "j2", 4, "activating", "auto-restart"),
		smp(BOOT_B, 8 * S, R(63 * S), "j1", 0, "active", "running"),
	};
	struct ap_hb_history h = { 0 };
	struct ap_hb_verdict out;

	for (size_t i = 0; i < 4; i++)
		assert_int_equal(ap_hb_history_append(&h, &v[i]), 0);
	ap_hb_history_prune(&h, BOOT_B, 10 * S, R(65 * S), WINDOW, 100);
	assert_int_equal(h.n, 2);
	assert_string_equal(h.v[0].boot_id, BOOT_B);
	assert_int_equal(h.v[0].mono_usec, 5 * S);
	assert_int_equal(h.v[1].mono_usec, 8 * S);
	/* an hour later (one more sample taken meanwhile) the loop recorded ahead is not counted */
	assert_int_equal(ap_hb_history_append(&h, &v[3]), 0);
	h.v[2].mono_usec = 3601 * S;
	h.v[2].real_usec = R(3656 * S);
	assert_int_equal(ap_hb_judge(&h, "web.service", BOOT_B, 3602 * S, R(3657 * S), WINDOW, 3,
				     &out), 0);
	assert_int_equal(out.restarts, 0);
	assert_false(out.looping);
	ap_hb_history_clear(&h);
}

static void test_window_edges(void **s)
{
	const struct ap_hb_sample v[] = {
		smp(BOOT_A, 0, R(0), "i1", 0, "active", "running"),
		smp(BOOT_A, 100 * S, R(100 * S), "i2", 4, "active", "running"),
		smp(BOOT_A, 200 * S, R(200 * S), "i3", 5, "active", "running"),
	};
	/* second sample exactly at the window's edge: counted */
	struct ap_hb_verdict out = judge(v, 3, BOOT_A, 100 * S + WINDOW, R(100 * S + WINDOW));
	assert_int_equal(out.restarts, 5);
	/* one microsecond later: only the last pair remains */
	out = judge(v, 3, BOOT_A, 100 * S + WINDOW + 1, R(100 * S + WINDOW + 1));
	assert_int_equal(out.restarts, 1);
	assert_false(out.looping);
}

static void test_failed_and_auto_restart_states(void **s)
{
	struct ap_hb_sample a = smp(BOOT_A, 10 * S, R(10 * S), "i1", 5, "failed", "failed");
	struct ap_hb_sample b = smp(BOOT_A, 10 * S, R(10 * S), "i1", 0, "failed", "failed");
	struct ap_hb_sample c = smp(BOOT_A, 10 * S, R(10 * S), "i1", 1, "activating", "auto-restart");
	struct ap_hb_verdict out;

	out = judge(&a, 1, BOOT_A, 20 * S, R(20 * S));
	assert_true(out.looping); /* 5 restarts, and failed */
	assert_int_equal(out.restarts, 5);
	struct ap_hb_sample d = smp(BOOT_A, 10 * S, R(10 * S), "i1", 2, "failed", "failed");
	out = judge(&d, 1, BOOT_A, 20 * S, R(20 * S)); /* 2 restarts (<= 3), then failed */
	assert_true(out.looping);
	assert_non_null(strstr(out.why, "failed after 2 automatic restarts"));
	out = judge(&b, 1, BOOT_A, 20 * S, R(20 * S)); /* failed once, never restarted */
	assert_false(out.looping);
	/* waiting in auto-restart after a clean exit (Restart=always on a short job): not a loop */
	out = judge(&c, 1, BOOT_A, 20 * S, R(20 * S));
	assert_false(out.looping);
	/* ... after a failure it is */
	snprintf(c.result, sizeof(c.result), "exit-code");
	c.exec_main_status = 1;
	out = judge(&c, 1, BOOT_A, 20 * S, R(20 * S));
	assert_true(out.looping);
	assert_non_null(strstr(out.why, "waiting to restart again"));
	/* a clean exit with a non-zero status recorded is not clean */
	snprintf(c.result, sizeof(c.result), "success");
	assert_true(judge(&c, 1, BOOT_A, 20 * S, R(20 * S)).looping);
	assert_false(out.failed);
}

/* Out of "failed" by a start (the fix) or reset-failed: the loop before it is over. */
static void test_failed_then_started_counts_anew(void **s)
{
	const struct ap_hb_sample started[] = {
		smp(BOOT_A, 10 * S, R(10 * S), "i1", 0, "active", "running"),
		smp(BOOT_A, 20 * S, R(20 * S), "i5", 4, "failed", "failed"),
		smp(BOOT_A, 30 * S, R(30 * S), "i6", 0, "active", "running"),
	};
	const struct ap_hb_sample reset[] = {
		smp(BOOT_A, 20 * S, R(20 * S), "i5", 8, "failed", "failed"),
		smp(BOOT_A, 30 * S, R(30 * S), "i5", 0, "inactive", "dead"),
	};
	const struct ap_hb_sample again[] = {
		smp(BOOT_A, 20 * S, R(20 * S), "i5", 8, "failed", "failed"),
		smp(BOOT_A, 30 * S, R(30 * S), "i6", 0, "active", "running"),
		smp(BOOT_A, 40 * S, R(40 * S), "i9", 4, "activating", "auto-restart"),
	};
	/* before the start: failed, whatever the count in the window, and never clears by itself */
	struct ap_hb_verdict out = judge(started, 3, BOOT_A, 25 * S, R(25 * S));

	assert_true(out.looping);
	assert_true(out.failed);
	assert_non_null(strstr(out.why, "failed after 4 automatic restarts"));
	out = judge(started, 3, BOOT_A, 40 * S, R(40 * S));
	assert_false(out.looping);
	assert_int_equal(out.restarts, 0);
	out = judge(reset, 2, BOOT_A, 40 * S, R(40 * S));
	assert_false(out.looping);
	out = judge(again, 3, BOOT_A, 50 * S, R(50 * S)); /* a new loop after it counts */
	assert_true(out.looping);
	assert_false(out.failed);
	assert_int_equal(out.restarts, 4);
}

static void test_stale_timer(void **s)
{
	struct ap_hb_sample t = smp(BOOT_A, 10 * S, R(10 * S), "i1", 0, "active", "waiting");
	struct ap_hb_verdict out;

	t.interval_usec = 60 * S;
	t.last_trigger_real_usec = R(0);
	out = judge(&t, 1, BOOT_A, 20 * S, R(120 * S)); /* exactly 2x: not yet */
	assert_false(out.stale);
	out = judge(&t, 1, BOOT_A, 20 * S, R(121 * S));
	assert_true(out.stale);
	assert_false(out.looping);
}

static void test_stopped_timer_is_stale(void **s)
{
	struct ap_hb_history h = { 0 };
	struct ap_hb_sample t = smp(BOOT_A, 10 * S, R(10 * S), "", 0, "inactive", "dead");
	struct ap_hb_verdict out;

	snprintf(t.unit, sizeof(t.unit), "tick.timer");
	assert_int_equal(ap_hb_history_append(&h, &t), 0);
	assert_int_equal(ap_hb_judge(&h, "tick.timer", BOOT_A, 20 * S, R(20 * S), WINDOW, 3, &out), 0);
	assert_true(out.stale);
	assert_non_null(strstr(out.why, "inactive"));
	ap_hb_history_clear(&h);
}

static void test_unknown_unit(void **s)
{
	struct ap_hb_history h = { 0 };
	struct ap_hb_verdict out;

	assert_int_equal(ap_hb_judge(&h, "x.service", BOOT_A, 0, 0, WINDOW, 3, &out), -ENOENT);
	assert_false(out.looping);
}

static void test_history_roundtrip_and_prune(void **s)
{
	struct ap_hb_history h = { 0 }, back = { 0 };
	struct ap_hb_sample a = smp(BOOT_A, 10 * S, R(10 * S), "", 1, "active", "");
	char *text = NULL, *bad = NULL;

	assert_int_equal(ap_hb_history_append(&h, &a), 0);
	a.mono_usec = 20 * S;
	assert_int_equal(ap_hb_history_append(&h, &a), 0);
	assert_int_equal(ap_hb_history_format(&h, &text), 0);
	bad = ap_strdupf("garbage line\n%sv1 short\n", text);
	assert_int_equal(ap_hb_history_parse(bad, &back), 0);
	assert_int_equal(back.n, 2);
	assert_string_equal(back.v[0].invocation_id, "");
	assert_string_equal(back.v[1].active_state, "active");
	assert_int_equal(back.v[1].mono_usec, 20 * S);
	ap_hb_history_prune(&back, BOOT_A, 25 * S, R(25 * S), 10 * S, 100);
	assert_int_equal(back.n, 1);
	ap_hb_history_prune(&back, BOOT_A, 25 * S, R(25 * S), 10 * S, 0);
	assert_int_equal(back.n, 0);
	free(text);
	free(bad);
	ap_hb_history_clear(&h);
	ap_hb_history_clear(&back);
}

static void test_prune_compacts_steady_runs(void **s)
{
	struct ap_hb_history h = { 0 };
	struct ap_hb_verdict before, after;

	/* 10 steady samples, 3 restarts, 10 steady samples */
	for (unsigned i = 0; i < 23; i++) {
		struct ap_hb_sample x = smp(BOOT_A, i * S, R(i * S), i < 10 ? "i1" : "i2",
					    i < 10 ? 0 : i < 13 ? i - 9 : 3, "active", "running");
		assert_int_equal(ap_hb_history_append(&h, &x), 0);
	}
	assert_int_equal(ap_hb_judge(&h, "web.service", BOOT_A, 30 * S, R(30 * S), WINDOW, 3, &before), 0);
	ap_hb_history_prune(&h, BOOT_A, 30 * S, R(30 * S), WINDOW, 1000);
	/* first and last of each steady run, plus the changing samples */
	assert_int_equal(h.n, 6);
	assert_int_equal(ap_hb_judge(&h, "web.service", BOOT_A, 30 * S, R(30 * S), WINDOW, 3, &after), 0);
	assert_int_equal(after.restarts, before.restarts);
	assert_int_equal(after.restarts, 3);
	ap_hb_history_clear(&h);
}

static void test_watch_globs(void **s)
{
	char *watch[] = { "caddy.service", "app-*.service", NULL };

	assert_true(ap_hb_watch_matches(watch, "app-1.service"));
	assert_true(ap_hb_watch_matches(watch, "caddy.service"));
	assert_false(ap_hb_watch_matches(watch, "app.service"));
	assert_false(ap_hb_watch_matches(NULL, "x.service"));
}

static char *render(const struct ap_hb_sample *v, size_t n, const struct ap_hb_verdict *verdicts,
		    size_t n_verdicts, const struct ap_hb_facts *f, uint64_t now_real)
{
	struct ap_hb_history h = { 0 };
	char *text = NULL;

	for (size_t i = 0; i < n; i++)
		assert_int_equal(ap_hb_history_append(&h, &v[i]), 0);
	assert_int_equal(ap_hb_render_metrics(&h, verdicts, n_verdicts, f, now_real, &text), 0);
	ap_hb_history_clear(&h);
	return text;
}

static size_t count(const char *text, const char *needle)
{
	size_t n = 0;

	for (const char *p = text; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

#define HAS(text, line) assert_non_null(strstr(text, line))
#define LACKS(text, part) assert_null(strstr(text, part))

static void test_metrics_text(void **s)
{
	struct ap_hb_sample a = smp(BOOT_A, 10 * S, R(10 * S), "i1", 2, "active", "running");
	struct ap_hb_verdict v = { .unit = "web.service", .looping = true };
	const struct ap_hb_facts f = { .host = "h\"1", .applied_commit = "abc",
				       .last_apply_real_usec = R(0), .last_apply_success = 1,
				       .guard_ok = true };
	char *text;

	a.active_enter_real_usec = R(0);
	a.exec_main_status = 3;
	text = render(&a, 1, &v, 1, &f, R(10 * S));
	HAS(text, "systemd_unit_active{unit=\"web.service\",host=\"h\\\"1\"} 1.000\n");
	HAS(text, "systemd_unit_sub_state_info{unit=\"web.service\",sub_state=\"running\",host=\"h\\\"1\"} 1.000\n");
	/* one series per ActiveState: a change of state changes values, not series */
	HAS(text, "systemd_unit_state{unit=\"web.service\",state=\"active\",host=\"h\\\"1\"} 1.000\n");
	HAS(text, "systemd_unit_state{unit=\"web.service\",state=\"failed\",host=\"h\\\"1\"} 0.000\n");
	assert_int_equal(count(text, "systemd_unit_state{unit=\"web.service\""), 7);
	HAS(text, "# TYPE systemd_unit_restart_count_total counter\n");
	HAS(text, "systemd_unit_restart_count_total{unit=\"web.service\",host=\"h\\\"1\"} 2.000\n");
	HAS(text, "systemd_unit_last_exit_status{unit=\"web.service\",host=\"h\\\"1\"} 3.000\n");
	HAS(text, "systemd_unit_seconds_since_active{unit=\"web.service\",host=\"h\\\"1\"} 10.000\n");
	HAS(text, "autopull_unit_looping{unit=\"web.service\",host=\"h\\\"1\"} 1.000\n");
	LACKS(text, "autopull_timer_stale{"); /* not a timer */
	LACKS(text, "systemd_timer_last_trigger_seconds{");
	HAS(text, "autopull_applied_commit_info{commit=\"abc\",host=\"h\\\"1\"} 1.000\n");
	HAS(text, "autopull_last_apply_success{host=\"h\\\"1\"} 1.000\n");
	HAS(text, "autopull_last_apply_timestamp_seconds{host=\"h\\\"1\"} 1700000000.000\n");
	HAS(text, "autopull_guard_ok{host=\"h\\\"1\"} 1.000\n");
	HAS(text, "autopull_guard_tripped{host=\"h\\\"1\"} 0.000\n");
	HAS(text, "autopull_last_rollback_timestamp_seconds{host=\"h\\\"1\"} 0.000\n");
	HAS(text, "# TYPE autopull_push_failures_total counter\nautopull_push_failures_total{host=\"h\\\"1\"} 0.000\n");
	free(text);
}

/* A unit name may hold '\' (systemd's \x2d escapes) and '"'; the text format escapes both. */
static void test_metrics_label_escaping(void **s)
{
	struct ap_hb_sample a = smp(BOOT_A, 10 * S, R(10 * S), "i1", 0, "active", "running");
	struct ap_hb_verdict v = { .unit = "a\\x2d\"b\".service" };
	const struct ap_hb_facts f = { .host = "h\nx", .applied_commit = "", .last_apply_success = -1 };
	char *text;

	snprintf(a.unit, sizeof(a.unit), "%s", v.unit);
	text = render(&a, 1, &v, 1, &f, R(10 * S));
	HAS(text, "autopull_unit_looping{unit=\"a\\\\x2d\\\"b\\\".service\",host=\"h\\nx\"} 0.000\n");
	LACKS(text, "autopull_applied_commit_info");
	LACKS(text, "autopull_last_apply_success{"); /* unknown */
	free(text);
}

/* Timers: what the stale-timer rule reads is the last trigger and the interval, and the
 * "seconds since active" of a timer counts from its last trigger, not from its start. */
static void test_metrics_timers(void **s)
{
	struct ap_hb_sample t[2] = {
		smp(BOOT_A, 10 * S, R(100 * S), "i1", 0, "active", "waiting"),
		smp(BOOT_A, 10 * S, R(100 * S), "i2", 0, "inactive", "dead"),
	};
	struct ap_hb_verdict v[2] = { { .unit = "run.timer" }, { .unit = "stop.timer", .stale = true } };
	const struct ap_hb_facts f = { .host = "h", .applied_commit = "" };
	char *text;

	snprintf(t[0].unit, sizeof(t[0].unit), "run.timer");
	snprintf(t[1].unit, sizeof(t[1].unit), "stop.timer");
	t[0].active_enter_real_usec = R(0);
	t[0].last_trigger_real_usec = R(73 * S);
	t[0].interval_usec = 30 * S;
	t[1].interval_usec = 30 * S; /* the manager forgets the last trigger of a stopped timer */
	text = render(t, 2, v, 2, &f, R(100 * S));
	HAS(text, "systemd_unit_seconds_since_active{unit=\"run.timer\",host=\"h\"} 27.000\n");
	HAS(text, "systemd_timer_last_trigger_seconds{unit=\"run.timer\",host=\"h\"} 1700000073.000\n");
	HAS(text, "systemd_timer_interval_seconds{unit=\"run.timer\",host=\"h\"} 30.000\n");
	HAS(text, "autopull_timer_stale{unit=\"run.timer\",host=\"h\"} 0.000\n");
	HAS(text, "systemd_unit_active{unit=\"stop.timer\",host=\"h\"} 0.000\n");
	HAS(text, "systemd_unit_state{unit=\"stop.timer\",state=\"inactive\",host=\"h\"} 1.000\n");
	HAS(text, "systemd_timer_interval_seconds{unit=\"stop.timer\",host=\"h\"} 30.000\n");
	HAS(text, "autopull_timer_stale{unit=\"stop.timer\",host=\"h\"} 1.000\n");
	LACKS(text, "systemd_timer_last_trigger_seconds{unit=\"stop.timer\"");
	LACKS(text, "systemd_unit_seconds_since_active{unit=\"stop.timer\"");
	free(text);
}

/* Failed units outside guard.watch are exported with the unit metrics, but the guard's
 * verdicts stay with the watched units; a failed watched unit appears once. */
static void test_metrics_failed_units(void **s)
{
	struct ap_hb_sample w = smp(BOOT_A, 10 * S, R(10 * S), "i1", 4, "failed", "failed");
	struct ap_hb_sample failed[2] = {
		smp(BOOT_A, 10 * S, R(10 * S), "i2", 0, "failed", "failed"),
		w,
	};
	struct ap_hb_verdict v = { .unit = "web.service", .looping = true };
	struct ap_hb_facts f = { .host = "h", .applied_commit = "" };
	char *text;

	snprintf(failed[0].unit, sizeof(failed[0].unit), "backup.service");
	failed[0].exec_main_status = 2;
	f.failed = failed;
	f.n_failed = 2;
	text = render(&w, 1, &v, 1, &f, R(10 * S));
	HAS(text, "systemd_unit_active{unit=\"backup.service\",host=\"h\"} 0.000\n");
	HAS(text, "systemd_unit_state{unit=\"backup.service\",state=\"failed\",host=\"h\"} 1.000\n");
	HAS(text, "systemd_unit_last_exit_status{unit=\"backup.service\",host=\"h\"} 2.000\n");
	HAS(text, "systemd_unit_restart_count_total{unit=\"backup.service\",host=\"h\"} 0.000\n");
	LACKS(text, "autopull_unit_looping{unit=\"backup.service\"");
	HAS(text, "autopull_unit_looping{unit=\"web.service\",host=\"h\"} 1.000\n");
	assert_int_equal(count(text, "systemd_unit_active{unit=\"web.service\""), 1);
	free(text);
}

static void test_metrics_guard_facts(void **s)
{
	const struct ap_hb_facts f = { .host = "h", .applied_commit = "", .last_apply_success = 0,
				       .guard_ok = false, .guard_tripped = true, .bad_commits = 2,
				       .last_rollback_real_usec = R(5 * S), .overrides = 1,
				       .last_override_real_usec = R(7 * S), .push_failures = 12 };
	char *text = render(NULL, 0, NULL, 0, &f, R(10 * S));

	HAS(text, "autopull_last_apply_success{host=\"h\"} 0.000\n");
	HAS(text, "autopull_guard_ok{host=\"h\"} 0.000\n");
	HAS(text, "autopull_guard_tripped{host=\"h\"} 1.000\n");
	HAS(text, "autopull_bad_commits_total{host=\"h\"} 2.000\n");
	HAS(text, "autopull_last_rollback_timestamp_seconds{host=\"h\"} 1700000005.000\n");
	HAS(text, "autopull_guard_overrides_total{host=\"h\"} 1.000\n");
	HAS(text, "autopull_last_guard_override_timestamp_seconds{host=\"h\"} 1700000007.000\n");
	HAS(text, "autopull_push_failures_total{host=\"h\"} 12.000\n");
	/* every family is announced even when no unit has a sample */
	HAS(text, "# TYPE systemd_unit_active gauge\n");
	free(text);
}


int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_steady_unit),
		cmocka_unit_test(test_first_sample),
		cmocka_unit_test(test_climbing_restarts_loop),
		cmocka_unit_test(test_explicit_restart_is_not_a_loop),
		cmocka_unit_test(test_restarts_after_reset_are_counted),
		cmocka_unit_test(test_reboot_resets_counter),
		cmocka_unit_test(test_failed_then_started_counts_anew),
		cmocka_unit_test(test_clock_step_uses_monotonic),
		cmocka_unit_test(test_window_edges),
		cmocka_unit_test(test_future_samples_ignored),
		cmocka_unit_test(test_prune_drops_future_samples),
		cmocka_unit_test(test_failed_and_auto_restart_states),
		cmocka_unit_test(test_stale_timer),
		cmocka_unit_test(test_stopped_timer_is_stale),
		cmocka_unit_test(test_unknown_unit),
		cmocka_unit_test(test_history_roundtrip_and_prune),
		cmocka_unit_test(test_prune_compacts_steady_runs),
		cmocka_unit_test(test_watch_globs),
		cmocka_unit_test(test_metrics_text),
		cmocka_unit_test(test_metrics_label_escaping),
		cmocka_unit_test(test_metrics_timers),
		cmocka_unit_test(test_metrics_failed_units),
		cmocka_unit_test(test_metrics_guard_facts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
