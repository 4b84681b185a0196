/* The engine's sequence alone: every stage it calls (source, planning, guard, checks, effects,
 * record, report, state, drift) is replaced at link time by a stub here that logs one word
 * and returns what the test says. The tests compare the whole call log, so they pin down the
 * order of the stages, what a refusal or failure at each stage skips, what is recorded once,
 * and what a dry run never does. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "checks.h"
#include "drift.h"
#include "effects.h"
#include "engine.h"
#include "exitcode.h"
#include "guard.h"
#include "plan.h"
#include "planning.h"
#include "record.h"
#include "report.h"
#include "rollout.h"
#include "source.h"
#include "state.h"
#include "util.h"

#define OID_A "0123456789abcdef0123456789abcdef01234567"
#define OID_B "89abcdef0123456789abcdef0123456789abcdef"

/* What the stubs answer, and the log of what was called. */
static struct {
	struct ap_buf log;
	int load;                 /* ap_state_load's return */
	const char *applied;      /* the snapshot's applied commit */
	bool journal_files_in;    /* the snapshot holds a journal with all files written */
	bool journal_rollback;    /* ... in rollback mode */
	int source_code;          /* ap_source_choose's exit code */
	const char *source_refused;
	int bad;                  /* ap_source_is_bad */
	int planning;             /* ap_planning_build's return */
	bool noop;                /* the plan does nothing */
	int guard;                /* ap_guard_check's decision */
	int checks;               /* ap_checks_run's exit code */
	const char *checks_refused;
	enum ap_apply_outcome outcome;
	int events;               /* ap_record_event calls */
	const char *last_result;  /* the last event's result */
	size_t drift;             /* drifted files ap_drift_tick finds */
	bool fleet;               /* fleet: configured */
	int gate_bad, gate_start; /* ap_rollout_gate's exit code before planning / after checks */
	bool ended_bad, ended_start; /* ... and whether the run ends there */
	bool no_slot;             /* ap_effects_execute gets no fleet slot */
	bool override_fails;      /* ap_record_guard_override cannot record it */
} t;

static void called(const char *fmt, ...) _printf_(1, 2);
static void called(const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ap_buf_printf(&t.log, "%s%s", t.log.len ? " " : "", buf);
}

/* --- context -------------------------------------------------------------------------------- */
static int fake_bus;
int ap_ctx_lock(struct ap_ctx *c) { return AP_EXIT_OK; }
struct ap_repo *ap_ctx_repo(struct ap_ctx *c) { return c->repo = (struct ap_repo *)&fake_bus; }
struct ap_bus *ap_ctx_bus(struct ap_ctx *c) { return c->bus = (struct ap_bus *)&fake_bus; }
struct ap_fleet *ap_ctx_fleet(struct ap_ctx *c) { return t.fleet ? (struct ap_fleet *)&fake_bus : NULL; }

/* --- fleet ---------------------------------------------------------------------------------- */
int ap_rollout_gate(struct ap_fleet *f, struct ap_record *rec, const char *commit, bool start,
		    bool dry_run, bool *ended)
{
	if (!f)
		return *ended = false, AP_EXIT_OK;
	called("fleet(%s)", start ? "start" : "bad");
	if (start && t.ended_start)
		ap_record_fleet(rec, true, 0, "waiting");
	*ended = start ? t.ended_start : t.ended_bad;
	return start ? t.gate_start : t.gate_bad;
}

/* --- state ---------------------------------------------------------------------------------- */
int ap_state_load(struct ap_state *s, struct ap_state_snapshot *ret)
{
	called("load");
	if (t.load < 0)
		return t.load;
	snprintf(ret->applied, sizeof(ret->applied), "%s", t.applied ? t.applied : "");
	ret->has_journal = t.journal_files_in || t.journal_rollback;
	if (ret->has_journal) {
		snprintf(ret->journal.to, sizeof(ret->journal.to), "%s", OID_B);
		ret->journal.mode = t.journal_rollback ? AP_JOURNAL_ROLLBACK : AP_JOURNAL_APPLY;
		for (int p = 0; t.journal_files_in && p <= AP_PHASE_FILES; p++)
			ret->journal.done |= 1u << p;
	}
	return 0;
}
void ap_state_snapshot_clear(struct ap_state_snapshot *snap) { ap_journal_clear(&snap->journal); }
int ap_state_read_applied(struct ap_state *s, char ret[AP_OID_HEXSZ + 1])
{
	snprintf(ret, AP_OID_HEXSZ + 1, "%s", OID_B);
	return 0;
}

/* --- source --------------------------------------------------------------------------------- */
int ap_source_choose(const struct ap_source_in *in, struct ap_source *out)
{
	called("source");
	snprintf(out->target, sizeof(out->target), "%s", OID_B);
	out->refused = t.source_refused;
	if (out->refused)
		snprintf(out->why, sizeof(out->why), "signed by nobody");
	return t.source_code;
}
int ap_source_is_bad(const struct ap_state_snapshot *s, const char *target, bool chosen, bool warn)
{
	return t.bad;
}

/* --- planning -------------------------------------------------------------------------------- */
int ap_planning_build(const struct ap_planning *in, const char *from, const char *to,
		      struct ap_changes *changes, struct ap_plan **ret)
{
	called("plan");
	if (t.planning < 0)
		return t.planning;
	*ret = calloc(1, sizeof(**ret));
	assert_non_null(*ret);
	snprintf((*ret)->to, sizeof((*ret)->to), "%s", to);
	return 0;
}
void ap_planning_source(struct ap_repo *repo, struct ap_install_source *ret) { *ret = (struct ap_install_source){ 0 }; }
bool ap_plan_is_noop(const struct ap_plan *p) { return t.noop; }
int ap_plan_add_owed_journal(struct ap_plan *p, const struct ap_journal *j) { called("owed"); return 0; }

/* --- guard and checks ------------------------------------------------------------------------ */
int ap_guard_check(const struct ap_guard_check *in, struct ap_guard_result *ret, bool *ret_sampled)
{
	called("guard%s", in->dry_run ? "(dry)" : "");
	*ret_sampled = false;
	return t.guard;
}
int ap_guard_sample(struct ap_bus *b, struct ap_state *st, const struct ap_config *c, bool record,
		    const struct ap_plan *plan, struct ap_guard_result *ret)
{
	called("sample%s", record ? "(record)" : "");
	return -ENOTCONN;
}
void ap_guard_result_clear(struct ap_guard_result *g) {}
void ap_guard_after_apply(struct ap_bus *b, struct ap_state *st, const struct ap_config *c) { called("metrics"); }
/* A validation in flight: any non-NULL pointer; the stubs never look inside. */
static char pending_validation;
void ap_checks_start(const struct ap_checks *in, struct ap_checks_pending *ret)
{
	called("start-checks");
	*ret = (struct ap_checks_pending){ .v = (struct ap_validation *)&pending_validation };
}
void ap_checks_abort(struct ap_checks_pending *pending)
{
	if (pending->v)
		called("abort-checks");
	pending->v = NULL;
}
int ap_checks_run(const struct ap_checks *in, struct ap_checks_pending *pending,
		  const char **ret_refusal, const char **ret_why)
{
	called("checks");
	pending->v = NULL; /* finished, whatever the outcome */
	*ret_refusal = t.checks_refused;
	*ret_why = t.checks_refused ? "a file or unit failed validation" : NULL;
	return t.checks;
}

/* --- effects ---------------------------------------------------------------------------------- */
int ap_effects_execute(struct ap_effects *e, struct ap_journal *j, const struct ap_plan *p,
		       enum ap_apply_outcome *ret)
{
	called("execute");
	*ret = t.outcome;
	if (t.no_slot && e->fleet)
		return *ret = AP_APPLY_FAILED, -EAGAIN;
	return t.outcome == AP_APPLY_OK ? 0 : -EIO;
}
int ap_effects_finish(struct ap_effects *e, struct ap_journal *j, bool *ret_has_journal)
{
	called("finish");
	ap_journal_clear(j);
	*ret_has_journal = false;
	return 0;
}
int ap_effects_resolve_owed(struct ap_bus *b, struct ap_journal *j) { called("resolve"); return 0; }
int ap_apply_journal_new(const struct ap_plan *p, const char *base, const struct ap_journal *prev,
			 struct ap_journal *ret)
{
	return 0;
}

/* --- record ------------------------------------------------------------------------------------ */
void ap_record_begin(struct ap_record *rec, struct ap_ctx *c, const char *applied) { *rec = (struct ap_record){ .c = c }; }
bool ap_record_commit(struct ap_record *rec) { called("commit(%d)", t.events); return t.events > 0; }
void ap_record_done(struct ap_record *rec) {}
void ap_record_event(struct ap_record *rec, enum ap_event_kind kind, const char *result,
		     const char *to, const char *reason, const struct ap_journal *j)
{
	called("event(%s)", result);
	t.events++;
	t.last_result = result;
}
void ap_record_override(struct ap_record *rec, const char *kind, const char *to, const char *reason)
{
	called("override(%s)", kind);
	t.events++;
}
void ap_record_last_apply(struct ap_record *rec, bool ok) { called("last-apply(%s)", ok ? "ok" : "failed"); }
void ap_record_tick(struct ap_record *rec, const struct ap_tick *tick) { called("tick"); }
void ap_record_fleet(struct ap_record *rec, bool blocked, uint64_t wait_usec, const char *why) { called("fleet-fact(%s)", blocked ? "blocked" : "ran"); }
int ap_record_pin(struct ap_record *rec, const char *commit, const char *reason, struct ap_pin *inforce)
{
	called("pin");
	return 0;
}
int ap_record_noop(struct ap_state *st, const char *applied, const char *to) { called("noop"); return 0; }
int ap_record_guard_override(struct ap_record *rec, const char *to, const char *reason,
			     bool tripped)
{
	called("override(guard)");
	if (t.override_fails)
		return -EIO;
	t.events++;
	return 0;
}
void ap_record_outcome(struct ap_record *rec, bool revert, enum ap_apply_outcome out,
		       const struct ap_journal *j, const char *pinned)
{
	const char *name = out == AP_APPLY_OK ? "ok" : "failed";

	called("last-apply(%s) event(%s)", name, name);
	t.events++;
}

/* --- report ------------------------------------------------------------------------------------ */
int ap_report_plan(struct ap_report *rp, const char *result, const struct ap_journal *j) { return 0; }
int ap_report_plan_before(struct ap_report *rp) { called("print"); return 0; }
int ap_report_checked(struct ap_report *rp, int code)
{
	return (code == AP_EXIT_OK || rp->dry_run) ? (called("print"), code) : code;
}
int ap_report_nothing_to_do(struct ap_report *rp, const struct ap_pin *pin) { called("nothing"); return 0; }
void ap_report_outcome(const struct ap_report *rp, int code) {}
const char *ap_apply_outcome_to_string(enum ap_apply_outcome out) { return out == AP_APPLY_OK ? "ok" : "failed"; }
void ap_report_result(struct ap_report *rp, const struct ap_journal *j, enum ap_apply_outcome out,
		      int k, const char *applied) {}
void ap_report_refused(struct ap_report *rp, const char *kind, const char *why,
		       const char *fallback)
{
	rp->refused = kind;
	snprintf(rp->why, sizeof(rp->why), "%s", why ? why : fallback ? fallback : "");
}

/* --- drift and repo ------------------------------------------------------------------------------ */
void ap_drift_tick(struct ap_ctx *c, const char *applied, const char *tip, struct ap_tick *tick,
		   struct ap_drift *d)
{
	called("drift");
	d->n = t.drift;
}
int ap_drift_check(struct ap_ctx *c, const char *commit, struct ap_drift *ret) { return 0; }
void ap_drift_clear(struct ap_drift *d) {}
int ap_drift_revert_changes(struct ap_ctx *c, const char *applied, const struct ap_drift *d,
			    struct ap_changes *ret)
{
	called("revert");
	return 0;
}
int ap_repo_resolve(struct ap_repo *r, const char *rev, char ret[AP_OID_HEXSZ + 1]) { return 0; }

/* --- the tests ------------------------------------------------------------------------------------ */

static struct ap_config cfg;
static struct ap_opts opts;

static int setup(void **state)
{
	ap_buf_clear(&t.log);
	memset(&t, 0, sizeof(t));
	t.applied = OID_A;
	memset(&opts, 0, sizeof(opts));
	memset(&cfg, 0, sizeof(cfg));
	return 0;
}

static int run(void)
{
	struct ap_ctx c = { .o = &opts, .cfg = &cfg };

	return ap_engine_apply(&c);
}

static void expect_log(const char *want)
{
	assert_string_equal(t.log.data ? t.log.data : "", want);
}

/* A state directory that cannot be read decides nothing: no fetch, no plan, nothing recorded. */
static void test_state_unreadable(void **state)
{
	t.load = -EBADMSG;
	assert_int_equal(run(), AP_EXIT_FAILED);
	expect_log("load commit(0)");
}

/* A refused source is recorded once and nothing is planned. */
static void test_source_refused(void **state)
{
	t.source_code = AP_EXIT_INVALID;
	t.source_refused = "untrusted";
	assert_int_equal(run(), AP_EXIT_INVALID);
	expect_log("load source event(untrusted) commit(1) metrics");
}

/* A dry run reports the refusal with the same exit code and records nothing. */
static void test_source_refused_dry_run(void **state)
{
	opts.dry_run = true;
	t.source_code = AP_EXIT_INVALID;
	t.source_refused = "untrusted";
	assert_int_equal(run(), AP_EXIT_INVALID);
	expect_log("load source commit(0)");
}

/* No manager to plan against: try later, nothing checked or changed. */
static void test_planning_no_manager(void **state)
{
	t.planning = -ENOTCONN;
	assert_int_equal(run(), AP_EXIT_TEMPFAIL);
	expect_log("load source plan commit(0)");
}

/* The repository asks for what the configuration refuses: refused, not retried. */
static void test_planning_invalid(void **state)
{
	t.planning = -EINVAL;
	assert_int_equal(run(), AP_EXIT_INVALID);
	expect_log("load source plan commit(0)");
}

/* A looping unit refuses the apply before any check or change. */
static void test_guard_refuses(void **state)
{
	t.guard = AP_GUARD_REFUSED;
	assert_int_equal(run(), AP_EXIT_GUARD);
	expect_log("load source plan start-checks guard abort-checks event(guard) commit(1) metrics");
}

/* An override is recorded, and the apply goes on. */
static void test_guard_overridden(void **state)
{
	opts.override_guard = true;
	opts.reason = "incident 7";
	t.guard = AP_GUARD_OVERRIDDEN;
	assert_int_equal(run(), AP_EXIT_OK);
	expect_log("load source plan start-checks guard override(guard) checks print execute last-apply(ok) "
		   "event(ok) drift tick commit(2) metrics");
}

/* The guard cannot decide (its override is not recorded): the verify started for the checks
 * is killed, nothing checked or executed. */
static void test_guard_fails_aborts_checks(void **state)
{
	opts.override_guard = true;
	opts.reason = "incident 7";
	t.guard = AP_GUARD_OVERRIDDEN;
	t.override_fails = true;
	assert_int_equal(run(), AP_EXIT_FAILED);
	expect_log("load source plan start-checks guard override(guard) abort-checks commit(0)");
}

/* A file that fails validation (its verify started before the guard): refused, nothing
 * executed, so nothing installed. */
static void test_checks_refuse(void **state)
{
	t.checks = AP_EXIT_INVALID;
	t.checks_refused = "invalid";
	assert_int_equal(run(), AP_EXIT_INVALID);
	expect_log("load source plan start-checks guard checks event(invalid) commit(1) metrics");
}

/* A dry run runs the same checks, prints the plan, and changes and records nothing. */
static void test_dry_run(void **state)
{
	opts.dry_run = true;
	assert_int_equal(run(), AP_EXIT_OK);
	expect_log("load source plan start-checks guard(dry) checks print commit(0)");
}

/* Nothing moved: nothing executed, no event, the tick still measured. */
static void test_nothing_to_do(void **state)
{
	t.noop = true;
	assert_int_equal(run(), AP_EXIT_OK);
	expect_log("load source plan noop nothing drift tick commit(0)");
}

/* A rolled-back commit is skipped until the branch moves on. */
static void test_bad_commit_skipped(void **state)
{
	t.bad = 1;
	assert_int_equal(run(), AP_EXIT_OK);
	expect_log("load source drift tick commit(0)");
}

/* The apply's outcome is one event and one last-apply fact, written at the end. */
static void test_apply_fails(void **state)
{
	t.outcome = AP_APPLY_FAILED;
	assert_int_equal(run(), AP_EXIT_FAILED);
	expect_log("load source plan start-checks guard checks print execute last-apply(failed) event(failed) "
		   "commit(1) metrics");
}

/* An apply killed before all its files were written is undone before anything else. */
static void test_interrupted_undone_first(void **state)
{
	t.journal_rollback = true;
	assert_int_equal(run(), AP_EXIT_FAILED);
	expect_log("load finish commit(0)");
}

/* A journal whose files are in: what is owed is done, guarded, before the branch's tip. */
static void test_resume_forward(void **state)
{
	t.journal_files_in = true;
	assert_int_equal(run(), AP_EXIT_OK);
	expect_log("load source plan resolve guard owed print execute last-apply(ok) event(ok) "
		   "drift tick commit(1) metrics");
}

/* drift: revert puts drifted files back with the same checks as any apply. */
static void test_drift_revert(void **state)
{
	cfg.drift_revert = true;
	t.drift = 2;
	assert_int_equal(run(), AP_EXIT_OK);
	expect_log("load source plan start-checks guard checks print execute last-apply(ok) event(ok) drift "
		   "revert plan start-checks guard checks print execute last-apply(ok) event(ok) tick commit(2) "
		   "metrics");
}

/* apply --commit pins only a source that passed its checks. */
static void test_pin_after_source(void **state)
{
	opts.commit = OID_B;
	opts.pin = true;
	t.source_code = AP_EXIT_INVALID;
	t.source_refused = "untrusted";
	assert_int_equal(run(), AP_EXIT_INVALID);
	expect_log("load source event(untrusted) commit(1) metrics");
}

/* The fleet marked the commit bad: it is not planned, nothing recorded, exit 0. */
static void test_fleet_bad(void **state)
{
	t.fleet = true;
	t.ended_bad = true;
	assert_int_equal(run(), AP_EXIT_OK);
	expect_log("load source fleet(bad) drift tick commit(0)");
}

/* Its canaries have not reported it healthy: checked, not executed, exit 0. */
static void test_fleet_waits(void **state)
{
	t.fleet = true;
	t.ended_start = true;
	assert_int_equal(run(), AP_EXIT_OK);
	expect_log("load source fleet(bad) plan start-checks guard checks print fleet(start) fleet-fact(blocked) "
		   "drift tick commit(0)");
}

/* etcd unreachable: try later, nothing planned. */
static void test_fleet_unreachable(void **state)
{
	t.fleet = true;
	t.gate_bad = AP_EXIT_TEMPFAIL;
	assert_int_equal(run(), AP_EXIT_TEMPFAIL);
	expect_log("load source fleet(bad) commit(0)");
}

/* No slot within the lock timeout: nothing was done, so nothing is recorded as applied or
 * failed; the next tick tries again. */
static void test_fleet_no_slot(void **state)
{
	t.fleet = true;
	t.no_slot = true;
	assert_int_equal(run(), AP_EXIT_TEMPFAIL);
	expect_log("load source fleet(bad) plan start-checks guard checks print fleet(start) execute "
		   "fleet-fact(blocked) commit(0)");
}

/* A chosen commit is the operator's: the fleet is not asked about it (stubbed: f NULL). */
static void test_fleet_chosen_commit(void **state)
{
	t.fleet = true;
	t.ended_bad = true;
	opts.commit = OID_B;
	assert_int_equal(run(), AP_EXIT_OK);
	expect_log("load source plan start-checks guard checks print execute fleet-fact(ran) last-apply(ok) "
		   "event(ok) drift tick commit(1) metrics");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_state_unreadable, setup),
		cmocka_unit_test_setup(test_source_refused, setup),
		cmocka_unit_test_setup(test_source_refused_dry_run, setup),
		cmocka_unit_test_setup(test_planning_no_manager, setup),
		cmocka_unit_test_setup(test_planning_invalid, setup),
		cmocka_unit_test_setup(test_guard_refuses, setup),
		cmocka_unit_test_setup(test_guard_overridden, setup),
		cmocka_unit_test_setup(test_guard_fails_aborts_checks, setup),
		cmocka_unit_test_setup(test_checks_refuse, setup),
		cmocka_unit_test_setup(test_dry_run, setup),
		cmocka_unit_test_setup(test_nothing_to_do, setup),
		cmocka_unit_test_setup(test_bad_commit_skipped, setup),
		cmocka_unit_test_setup(test_apply_fails, setup),
		cmocka_unit_test_setup(test_interrupted_undone_first, setup),
		cmocka_unit_test_setup(test_resume_forward, setup),
		cmocka_unit_test_setup(test_drift_revert, setup),
		cmocka_unit_test_setup(test_pin_after_source, setup),
		cmocka_unit_test_setup(test_fleet_bad, setup),
		cmocka_unit_test_setup(test_fleet_waits, setup),
		cmocka_unit_test_setup(test_fleet_unreachable, setup),
		cmocka_unit_test_setup(test_fleet_no_slot, setup),
		cmocka_unit_test_setup(test_fleet_chosen_commit, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
