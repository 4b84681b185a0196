/* The apply, as a sequence of stages: lock → state → finish what an interrupted run left →
 * source (source.c) → planning (planning.c) → guard (guard.c) → checks (checks.c) → execute
 * (effects.c, apply.c) → record (record.c) → report (report.c). Each stage takes typed input
 * and returns an exit code (exitcode.h); this file only orders them and carries their results.
 * A journal found at the start is finished or resumed as journal.h says. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "apply.h"
#include "checks.h"
#include "drift.h"
#include "effects.h"
#include "engine.h"
#include "exitcode.h"
#include "guard.h"
#include "log.h"
#include "plan.h"
#include "planning.h"
#include "record.h"
#include "report.h"
#include "rollout.h"
#include "source.h"
#include "state.h"
#include "util.h"

struct run {
	struct ap_ctx *c;
	const struct ap_opts *o;
	struct ap_changes changes; /* the plan borrows file contents from here */
	struct ap_plan *plan;
	struct ap_guard_result guard;
	struct ap_state_snapshot s; /* what the run decides on, loaded once (state.h) */
	struct ap_record rec;      /* what this run did, written once at its end */
	bool reverting;            /* this apply puts drifted files back */
	char tip[AP_OID_HEXSZ + 1]; /* the branch tip, once fetched */
	struct ap_report rep;      /* what it prints */
};

static void run_done(struct run *r)
{
	ap_state_snapshot_clear(&r->s);
	ap_guard_result_clear(&r->guard);
	ap_plan_free(r->plan);
	ap_changes_clear(&r->changes);
	ap_record_done(&r->rec);
}

/* A refusal, with why as its reason, or (why NULL) the error line that decided it (log.h),
 * or fallback when nothing was logged. An apply records it; a dry run reports it the same way
 * (--json: "refused") and exits with the same code, but records nothing. */
static void refuse(struct run *r, const char *kind, const char *to, const char *why,
		   const char *fallback)
{
	ap_report_refused(&r->rep, kind, why, fallback);
	if (!r->o->dry_run)
		ap_record_event(&r->rec, AP_EVENT_REFUSED, kind, to, r->rep.why, NULL);
}

/* Plans from → to (planning.h), with changes already in r->changes when given (drift). */
static int make_plan(struct run *r, const char *from, const char *to)
{
	const struct ap_planning in = { .cfg = r->c->cfg, .repo = r->c->repo,
					.bus = ap_ctx_bus(r->c),
					.dry_run = r->o->dry_run };
	int k;

	ap_plan_free(TAKE_PTR(r->plan));
	k = ap_planning_build(&in, from, to, &r->changes, &r->plan);
	r->rep.plan = r->plan;
	return ap_exit_code_of(k);
}

static void sample_guard(struct run *r, bool record)
{
	if (ap_ctx_bus(r->c))
		r->rep.guard = ap_guard_sample(r->c->bus, r->c->st, r->c->cfg, record, r->plan,
					       &r->guard) >= 0 ? &r->guard : NULL;
}

/* Refuses to pile a deploy onto a sick host (guard.h); an override is recorded. */
static int check_guard(struct run *r)
{
	const struct ap_guard_check in = {
		.bus = ap_ctx_bus(r->c), .st = r->c->st, .cfg = r->c->cfg, .plan = r->plan,
		.to = r->plan ? r->plan->to : r->s.journal.to, .dry_run = r->o->dry_run,
		.override = r->o->override_guard, .reason = r->o->reason, .tripped = r->s.tripped,
		.tripped_error = r->s.tripped_error };
	bool sampled = false;
	int k = ap_guard_check(&in, &r->guard, &sampled);

	r->rep.guard = sampled ? &r->guard : NULL;
	if (k == AP_GUARD_OVERRIDDEN && !r->o->dry_run &&
	    ap_record_guard_override(&r->rec, in.to, r->o->reason, in.tripped || in.tripped_error) < 0)
		return AP_EXIT_FAILED;
	return k == AP_GUARD_REFUSED ? AP_EXIT_GUARD : k < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
}

static struct ap_effects effects_of(struct run *r, const struct ap_install_source *src)
{
	return (struct ap_effects){ .cfg = r->c->cfg, .st = r->c->st, .bus = ap_ctx_bus(r->c),
				    .src = src, .owned = TAKE_PTR(r->s.owned), .quiet_jobs = r->o->json,
				    .crash = secure_getenv("AUTOPULL_TEST_CRASH"),
				    .fleet = ap_ctx_fleet(r->c) };
}

static int execute(struct run *r, struct ap_journal *j, const struct ap_plan *p)
{
	struct ap_install_source src;
	struct ap_effects e = effects_of(r, (ap_planning_source(r->c->repo, &src), &src));
	enum ap_apply_outcome out;
	int k = ap_effects_execute(&e, j, p, &out);

	r->s.owned = e.owned;
	if (e.fleet)
		ap_record_fleet(&r->rec, k == -EAGAIN, e.fleet_wait_usec,
				k == -EAGAIN ? "no fleet slot was free in time" : NULL);
	if (k == -EAGAIN) /* no fleet slot: nothing was done */
		return AP_EXIT_TEMPFAIL;
	ap_record_outcome(&r->rec, r->reverting, out, j,
			  r->s.pin.commit[0] ? r->s.pin.reason : NULL);
	ap_report_result(&r->rep, j, out, k, r->s.applied);
	return out == AP_APPLY_OK ? AP_EXIT_OK : AP_EXIT_FAILED;
}

/* A rollback that was interrupted is finished; an apply killed before all its files were
 * written is undone (and an older journal it had superseded comes back, apply.c). */
static int finish_interrupted(struct run *r)
{
	struct ap_effects e = effects_of(r, NULL);
	bool rollback = r->s.journal.mode == AP_JOURNAL_ROLLBACK;
	int k = ap_effects_finish(&e, &r->s.journal, &r->s.has_journal);

	r->s.owned = e.owned;
	return k < 0 || rollback ? AP_EXIT_FAILED : AP_EXIT_OK;
}

/* The target, checked (source.h); a refusal or an override is recorded like any. */
static int choose_source(struct run *r, char target[AP_OID_HEXSZ + 1])
{
	/* What the host's files are at: an unfinished apply's commit once its files are in. */
	const struct ap_source_in in = {
		.cfg = r->c->cfg, .repo = r->c->repo, .st = r->c->st, .o = r->o, .s = &r->s,
		.applied = ap_state_snapshot_files_in(&r->s) ? r->s.journal.to : r->s.applied };
	struct ap_source out = { 0 };
	int code = ap_source_choose(&in, &out);

	memcpy(r->tip, out.tip, sizeof(r->tip));
	memcpy(target, out.target, sizeof(out.target));
	if (out.rewind_override && !r->o->dry_run)
		ap_record_override(&r->rec, "rewind", target, r->o->reason);
	if (out.refused)
		refuse(r, out.refused, target, out.why, NULL);
	return code;
}

/* The checks of a plan that is about to run, for an apply and a dry run alike (a dry run
 * exits with the code the apply would have); a refusal is recorded with the error that
 * decided it. The unit files' verify, the slowest check, runs while the guard samples the
 * manager: neither needs the other, and a guard that refuses ends it unreported. */
static int prepare(struct run *r)
{
	struct ap_install_source src;
	const struct ap_checks in = { .cfg = r->c->cfg, .st = r->c->st, .src = &src, .plan = r->plan,
				      .owned = r->s.owned, .dry_run = r->o->dry_run,
				      .allow_empty = r->o->allow_empty };
	const char *refusal = NULL, *why = NULL;
	struct ap_checks_pending pending;
	int code;

	ap_planning_source(r->c->repo, &src);
	ap_log_reason_begin();
	ap_checks_start(&in, &pending);
	if ((code = check_guard(r)) == AP_EXIT_GUARD)
		refusal = "guard", why = AP_GUARD_REFUSAL;
	if (code == AP_EXIT_OK)
		code = ap_checks_run(&in, &pending, &refusal, &why);
	ap_checks_abort(&pending);
	if (refusal)
		refuse(r, refusal, r->plan->to, NULL, why);
	else
		ap_log_reason_end(NULL, 0);
	return ap_report_checked(&r->rep, code);
}

/* The plan, with what the journal still owes, before it runs. */
static int show_owed(struct run *r)
{
	int k = ap_plan_add_owed_journal(r->plan, &r->s.journal);

	return k < 0 || ap_report_plan_before(&r->rep) < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
}

/* The files are at the journal's commit: do what is owed, with a plan to the new target when
 * the branch moved on (and that target is not one that was rolled back). */
static int resume(struct run *r, const char *target)
{
	struct ap_journal *j = &r->s.journal, next = { 0 };
	bool same = strcmp(target, j->to) == 0;
	int bad = same ? 0 : ap_source_is_bad(&r->s, target, r->o->commit != NULL, false), k;
	bool forward = same || bad > 0;
	int code = bad < 0 ? AP_EXIT_FAILED : make_plan(r, j->to, forward ? j->to : target);

	if (code != AP_EXIT_OK || r->o->dry_run)
		return code != AP_EXIT_OK ? code : (sample_guard(r, false), show_owed(r));
	ap_log_notice("resuming the unfinished apply of %.12s%s%.12s", j->to,
		      forward ? "" : " on the way to ", forward ? "" : target);
	if (forward) {
		k = ap_effects_resolve_owed(ap_ctx_bus(r->c), j);
		code = k < 0 ? AP_EXIT_FAILED : check_guard(r);
		code = code == AP_EXIT_OK ? show_owed(r) : code;
		return code == AP_EXIT_OK ? execute(r, j, NULL) : code;
	}
	k = ap_apply_journal_new(r->plan, j->base, j, &next);
	if (k >= 0)
		k = ap_effects_resolve_owed(ap_ctx_bus(r->c), &next);
	if (k >= 0)
		k = ap_plan_add_owed_journal(r->plan, j);
	code = k < 0 ? AP_EXIT_FAILED : prepare(r);
	if (code == AP_EXIT_OK)
		code = execute(r, &next, r->plan);
	ap_journal_clear(&next);
	return code;
}

/* A chosen commit (--commit, --from) is the operator's: the fleet only gives it a slot. */
static struct ap_fleet *fleet_of(struct run *r)
{
	return r->o->commit || r->o->from ? NULL : ap_ctx_fleet(r->c);
}

/* A new journal for the plan, from the applied commit, run. */
static int run_plan(struct run *r)
{
	struct ap_journal j = { 0 };
	int code = ap_apply_journal_new(r->plan, r->s.applied, NULL, &j) < 0 ? AP_EXIT_FAILED
									       : execute(r, &j,
											 r->plan);

	ap_journal_clear(&j);
	return code;
}

static int apply_fresh(struct run *r, const char *target)
{
	const struct ap_pin *pinned = r->s.pin.commit[0] && !r->o->commit ? &r->s.pin : NULL;
	char base[AP_OID_HEXSZ + 1];
	bool ended, dry = r->o->dry_run;
	int code = r->o->from ? 0 : ap_source_is_bad(&r->s, target, r->o->commit != NULL, true);

	if (code != 0)
		return code > 0 ? AP_EXIT_OK : AP_EXIT_FAILED;
	if ((code = ap_rollout_gate(fleet_of(r), &r->rec, target, false, dry, &ended)) || ended)
		return code;
	memcpy(base, r->s.applied, sizeof(base));
	if (r->o->from && ap_repo_resolve(r->c->repo, r->o->from, base) < 0)
		return AP_EXIT_USAGE;
	if ((code = make_plan(r, base, target)) != AP_EXIT_OK)
		return code;
	if (r->o->dry_run && ap_plan_is_noop(r->plan))
		return sample_guard(r, false), ap_report_checked(&r->rep, AP_EXIT_OK);
	if (ap_plan_is_noop(r->plan))
		return ap_record_noop(r->c->st, r->s.applied, r->plan->to) < 0
			       ? AP_EXIT_FAILED : ap_report_nothing_to_do(&r->rep, pinned);
	if ((code = prepare(r)) != AP_EXIT_OK || r->o->dry_run)
		return code;
	if ((code = ap_rollout_gate(fleet_of(r), &r->rec, target, true, dry, &ended)) || ended)
		return code;
	return run_plan(r);
}

static int apply_locked(struct run *r)
{
	char target[AP_OID_HEXSZ + 1];
	int code = ap_state_load(r->c->st, &r->s) < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;

	memcpy(r->rec.from, r->s.applied, sizeof(r->rec.from));
	if (code != AP_EXIT_OK)
		return code;
	/* A dry run changes nothing: it shows the plan as if the undo had happened. */
	if (r->s.has_journal && !r->o->dry_run &&
	    (r->s.journal.mode == AP_JOURNAL_ROLLBACK || !ap_state_snapshot_files_in(&r->s)) &&
	    (code = finish_interrupted(r)) != AP_EXIT_OK)
		return code;
	if ((code = choose_source(r, target)) != AP_EXIT_OK)
		return code;
	/* Only a source that passed its checks is pinned: a refused one would be refused again
	 * on every tick until someone unpins. */
	if (r->o->commit && r->o->pin &&
	    ap_record_pin(&r->rec, target, r->o->reason ? r->o->reason : "apply --commit",
			  &r->s.pin) < 0)
		return AP_EXIT_FAILED;
	if (ap_state_snapshot_files_in(&r->s) && !r->o->from)
		return resume(r, target);
	return apply_fresh(r, target);
}

/* drift: revert — an apply from the applied commit to itself whose changes are the drifted
 * files: the same checks, journal, rollback and record as any apply. */
static int revert_drift(struct run *r, const struct ap_drift *d)
{
	int code;

	ap_changes_clear(&r->changes);
	r->reverting = true;
	if (ap_drift_revert_changes(r->c, r->s.applied, d, &r->changes) < 0)
		return AP_EXIT_FAILED;
	if ((code = make_plan(r, r->s.applied, r->s.applied)) != AP_EXIT_OK ||
	    (code = prepare(r)) != AP_EXIT_OK)
		return code;
	return run_plan(r);
}

/* Records what this tick saw for the metrics (commits pending, drift) and, with
 * drift: revert, puts drifted files back. */
static int after_tick(struct run *r)
{
	struct ap_tick t = { -1, -1 };
	struct ap_drift d = { 0 };
	int code = AP_EXIT_OK;

	if (ap_state_read_applied(r->c->st, r->s.applied) < 0)
		return AP_EXIT_OK;
	ap_drift_tick(r->c, r->s.applied, r->tip, &t, &d);
	if (d.n > 0 && r->c->cfg->drift_revert)
		code = revert_drift(r, &d);
	if (code == AP_EXIT_OK && r->reverting && ap_drift_check(r->c, r->s.applied, &d) >= 0)
		t.drift = (long)d.n;
	ap_record_tick(&r->rec, &t);
	ap_drift_clear(&d);
	return code;
}

int ap_engine_apply(struct ap_ctx *c)
{
	struct run r = { .c = c, .o = c->o };
	int code = ap_ctx_lock(c);

	ap_record_begin(&r.rec, c, NULL);
	r.rep = (struct ap_report){ .json = c->o->json, .dry_run = c->o->dry_run,
				    .start = r.rec.start };
	if (code == AP_EXIT_OK)
		code = ap_ctx_repo(c) ? apply_locked(&r) : AP_EXIT_FAILED;
	if (code == AP_EXIT_OK && !c->o->dry_run)
		code = after_tick(&r);
	/* The metrics (and guard.push) carry this run's result at once. */
	if (ap_record_commit(&r.rec) && ap_ctx_bus(c))
		ap_guard_after_apply(c->bus, c->st, c->cfg);
	/* --json promises one document whatever happened; the log says why. */
	if (c->o->json && !r.rep.printed)
		ap_report_outcome(&r.rep, code);
	run_done(&r);
	return code;
}
