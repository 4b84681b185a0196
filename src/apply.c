/* The executor (see apply.h). One table holds every phase with how to run it and how to undo
 * it. An apply walks the table forwards, skipping what the journal has done, and rewrites the
 * journal after each phase; an undo walks it backwards over what the journal has done, then
 * reloads the manager and restarts or starts what the undone phases touched.
 *
 * Why the file phases and the unit phases fail differently: nothing of a plan may stay half
 * written (a drop-in without its reload is a host that lies about its config), so a failed
 * write puts every file back. A unit that fails its job is the unit's problem: the files stay,
 * the journal keeps that one action owed, and the next run retries only it. A unit that fails
 * to settle after its restart means the commit broke it: everything is rolled back.
 *
 * Deliberately not here: I/O of any kind (struct ap_apply_ops), logging of effects (the ops do
 * that where the error is known), exit codes (engine.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "apply.h"
#include "log.h"
#include "util.h"

struct exec {
	struct ap_journal *j;
	const struct ap_plan *p;
	const struct ap_apply_ops *ops;
	bool units_failed; /* a job phase left a unit action failed */
};

enum phase_failure {
	FAIL_RESTORE, /* put the files back and stop: nothing of the plan stays */
	FAIL_KEEP,    /* keep the journal: the next run resumes here */
	FAIL_ROLLBACK,
};

struct phase {
	enum ap_phase id;
	int (*run)(struct exec *x);
	int (*undo)(struct exec *x);
	enum ap_phase undo_if; /* the done bit that calls for the undo */
	enum phase_failure on_failure;
	/* A job phase runs again while one of its unit actions (of these kinds) is not done;
	 * AP_ACTION_NONE for the others. */
	enum ap_unit_action_kind unit_a, unit_b;
};

/* The apply's points, then the undo's: "undo-<phase>" after each phase is undone (a rollback
 * undoes every phase up to start), "undo-finish" once the manager runs the old files again;
 * the backup's undo comes last (undo_phases). */
const char *const ap_apply_crash_points[] = {
	"after-journal", "after-backup", "after-disable", "after-stop", "after-file",
	"after-files", "after-enable", "after-reload", "after-restart", "after-reload-units",
	"after-start", "after-settle", "before-record",
	"undo-start", "undo-reload-units", "undo-restart", "undo-reload", "undo-enable",
	"undo-files", "undo-stop", "undo-disable", "undo-finish", "undo-backup", NULL,
};

static void crash(const struct exec *x, const char *point)
{
	if (x->ops->crash_point)
		x->ops->crash_point(x->ops->userdata, point);
}

static int save(struct exec *x)
{
	return x->ops->save_journal(x->ops->userdata, x->j);
}

/* --- selecting units ---------------------------------------------------------------- */

static bool has_action(const struct ap_journal *j, enum ap_unit_action_kind a)
{
	for (size_t i = 0; a != AP_ACTION_NONE && i < j->n_units; i++)
		if (j->units[i].action == a && j->units[i].state != AP_STEP_DONE)
			return true;
	return false;
}

enum { PICK_NOT_DONE = 1 << 0, PICK_DONE = 1 << 1, PICK_NEW = 1 << 2 };

static bool picked(const struct ap_journal_unit *u, enum ap_unit_action_kind a,
		   enum ap_unit_action_kind b, unsigned how)
{
	if (u->action != a && u->action != b)
		return false;
	if ((how & PICK_NOT_DONE) && u->state == AP_STEP_DONE)
		return false;
	if ((how & PICK_DONE) && u->state != AP_STEP_DONE)
		return false;
	return !(how & PICK_NEW) || !u->owed;
}

static int pick(const struct ap_journal *j, enum ap_unit_action_kind a, enum ap_unit_action_kind b,
		unsigned how, char ***ret)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < j->n_units; i++)
		if (picked(&j->units[i], a, b, how))
			r = ap_strv_push(ret, j->units[i].unit);
	return r;
}

static void mark(struct ap_journal *j, char *const *units, enum ap_step st)
{
	for (size_t i = 0; units && units[i]; i++) {
		struct ap_journal_unit *u = ap_journal_find_unit(j, units[i]);
		if (u)
			u->state = st;
	}
}

/* The manager refused the job for a reason that asking again does not change (the unit
 * refuses manual start or stop, is masked, or has no such operation). The plan skips the
 * units it knows of; one it did not know of is let go once, with a warning, rather than owed
 * and asked for again on every run. */
static bool job_refused(const struct ap_job *j)
{
	static const char *const results[] = { "only-by-dependency", "unit-masked",
					       "job-type-not-applicable" };

	for (size_t i = 0; j->error < 0 && i < ELEMENTSOF(results); i++)
		if (strcmp(j->result, results[i]) == 0)
			return true;
	return false;
}

/* Queues one job per picked unit and waits for all; each unit's state follows its job. */
static int jobs(struct exec *x, enum ap_job_kind kind, enum ap_unit_action_kind a,
		enum ap_unit_action_kind b, unsigned how, bool update)
{
	_cleanup_strv_free_ char **units = NULL;
	struct ap_job *v;
	size_t n;
	int r = pick(x->j, a, b, how, &units);

	if (r < 0 || !units)
		return r;
	n = ap_strv_length(units);
	v = calloc(n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		v[i] = (struct ap_job){ .unit = units[i], .kind = kind };
	(void)x->ops->run_jobs(x->ops->userdata, v, n);
	for (size_t i = 0; i < n && update; i++) {
		struct ap_journal_unit *u = ap_journal_find_unit(x->j, units[i]);
		bool refused = job_refused(&v[i]);

		if (refused)
			ap_log_warning("unit '%s' refuses %s by request (%s): not retried; its new "
				       "definition applies at its next start", units[i],
				       ap_job_kind_to_string(kind), v[i].result);
		u->state = v[i].error < 0 && !refused ? AP_STEP_FAILED : AP_STEP_DONE;
		x->units_failed |= v[i].error < 0 && !refused;
	}
	for (size_t i = 0; i < n && !update; i++)
		x->units_failed |= v[i].error < 0 && !job_refused(&v[i]);
	free(v);
	return 0;
}

/* --- the phases ------------------------------------------------------------------------ */

static int run_backup(struct exec *x)
{
	return x->p ? x->ops->backup(x->ops->userdata, x->p, x->j->to) : -ENODATA;
}

/* While their files exist: the manager resolves a unit by its file. */
static int run_disable(struct exec *x)
{
	_cleanup_strv_free_ char **units = NULL;
	int r = pick(x->j, AP_ACTION_DISABLE_STOP, AP_ACTION_DISABLE_STOP, PICK_NOT_DONE, &units);

	return r < 0 || !units ? r : x->ops->disable(x->ops->userdata, units);
}

static int undo_disable(struct exec *x)
{
	_cleanup_strv_free_ char **units = NULL;
	int r = pick(x->j, AP_ACTION_DISABLE_STOP, AP_ACTION_DISABLE_STOP, PICK_NEW, &units);

	return r < 0 || !units ? r : x->ops->enable(x->ops->userdata, units);
}

/* Before the files go and the reload happens, or a timer whose unit file is gone stays
 * "not-found failed" until someone resets it. */
static int run_stop(struct exec *x)
{
	_cleanup_strv_free_ char **todo = NULL, **gone = NULL;
	int r = pick(x->j, AP_ACTION_DISABLE_STOP, AP_ACTION_DISABLE_STOP, PICK_NOT_DONE, &todo);

	if (r >= 0)
		r = jobs(x, AP_JOB_STOP, AP_ACTION_DISABLE_STOP, AP_ACTION_STOP, PICK_NOT_DONE,
			 true);
	for (size_t i = 0; r >= 0 && todo && todo[i]; i++)
		if (ap_journal_find_unit(x->j, todo[i])->state == AP_STEP_DONE)
			r = ap_strv_push(&gone, todo[i]);
	return r < 0 || !gone ? r : x->ops->reset_failed(x->ops->userdata, gone);
}

/* The setup actions (tmpfiles.d, sysusers.d) belong to the file phase: a kill before they ran
 * leaves the files phase not done, so the next run puts the files back and plans afresh, with
 * them; a failure of one puts the files back like a failed write. What a tool created (a
 * directory, a user) stays, as it would after a boot. */
static int run_files(struct exec *x)
{
	int r;

	if (!x->p)
		return -ENODATA;
	r = x->ops->install(x->ops->userdata, x->p);
	if (r >= 0 && x->p->n_setup > 0)
		r = x->ops->setup(x->ops->userdata, x->p);
	return r;
}

static int undo_files(struct exec *x)
{
	return x->ops->restore(x->ops->userdata, x->j->to);
}

static int run_enable(struct exec *x)
{
	_cleanup_strv_free_ char **add = NULL, **again = NULL;
	int r = pick(x->j, AP_ACTION_ENABLE_START, AP_ACTION_ENABLE_START, PICK_NOT_DONE, &add);

	if (r >= 0)
		r = pick(x->j, AP_ACTION_REENABLE, AP_ACTION_REENABLE, PICK_NOT_DONE, &again);
	if (r >= 0 && add)
		r = x->ops->enable(x->ops->userdata, add);
	if (r >= 0 && again)
		r = x->ops->reenable(x->ops->userdata, again);
	if (r >= 0)
		mark(x->j, again, AP_STEP_DONE);
	return r;
}

/* New units go away while their files still exist. */
static int undo_enable(struct exec *x)
{
	_cleanup_strv_free_ char **units = NULL;
	int r = pick(x->j, AP_ACTION_ENABLE_START, AP_ACTION_ENABLE_START, PICK_NEW, &units);

	return r < 0 || !units ? r : x->ops->disable(x->ops->userdata, units);
}

static int run_reload(struct exec *x)
{
	return x->ops->reload(x->ops->userdata);
}

static int run_restart(struct exec *x)
{
	return jobs(x, AP_JOB_TRY_RESTART, AP_ACTION_RESTART, AP_ACTION_RESTART, PICK_NOT_DONE,
		    true);
}

static int run_reload_units(struct exec *x)
{
	return jobs(x, AP_JOB_RELOAD_OR_TRY_RESTART, AP_ACTION_RELOAD, AP_ACTION_RELOAD,
		    PICK_NOT_DONE, true);
}

/* A unit started again is one that was failed: reset-failed first, or the start limit that
 * stopped its loop refuses the start too (start-limit-hit). */
static int run_start(struct exec *x)
{
	_cleanup_strv_free_ char **again = NULL;
	int r = pick(x->j, AP_ACTION_START, AP_ACTION_START, PICK_NOT_DONE, &again);

	if (r >= 0 && again)
		r = x->ops->reset_failed(x->ops->userdata, again);
	return r < 0 ? r : jobs(x, AP_JOB_START, AP_ACTION_ENABLE_START, AP_ACTION_START,
				PICK_NOT_DONE, true);
}

/* New units are stopped first, before they lose their enablement and their files. */
static int undo_start(struct exec *x)
{
	return jobs(x, AP_JOB_STOP, AP_ACTION_ENABLE_START, AP_ACTION_ENABLE_START,
		    PICK_DONE | PICK_NEW, false);
}

/* The units this apply restarted, reloaded or started anew: the settle window watches them. */
static int acted_on(const struct ap_journal *j, char ***ret)
{
	int r = pick(j, AP_ACTION_RESTART, AP_ACTION_RELOAD, PICK_DONE, ret);

	return r < 0 ? r : pick(j, AP_ACTION_ENABLE_START, AP_ACTION_ENABLE_START, PICK_DONE, ret);
}

/* A unit started again ("start": it was failed) was down before this commit: one that stays
 * down was not broken by it, and putting the old files back would not bring it up. So it gets
 * a window of its own, and one that does not settle is reported (j->why of an apply that
 * went through), not rolled back: a commit that also changes other things is not held back. */
static int run_settle(struct exec *x)
{
	_cleanup_strv_free_ char **units = NULL, **again = NULL;
	_cleanup_free_ char *why = NULL;
	int r = acted_on(x->j, &units);

	if (r >= 0 && units)
		r = x->ops->settle(x->ops->userdata, units, &why);
	if (r == -EIO) {
		free(x->j->why);
		x->j->why = TAKE_PTR(why);
	}
	if (r >= 0)
		r = pick(x->j, AP_ACTION_START, AP_ACTION_START, PICK_DONE, &again);
	if (r < 0 || !again)
		return r;
	r = x->ops->settle(x->ops->userdata, again, &why);
	if (r != -EIO)
		return r;
	free(x->j->why);
	x->j->why = TAKE_PTR(why);
	return 0;
}

static int run_record(struct exec *x)
{
	_cleanup_strv_free_ char **restarted = NULL;
	int r = pick(x->j, AP_ACTION_RESTART, AP_ACTION_RELOAD, PICK_DONE, &restarted);

	crash(x, "before-record");
	if (r >= 0)
		r = x->ops->record(x->ops->userdata, x->j, restarted);
	return r < 0 ? r : x->ops->clear_journal(x->ops->userdata);
}

/* In the order an apply runs them; an undo walks it backwards. The file phases restore on
 * failure; the file undo is called for as soon as the backup exists, since a write that
 * failed half-way is not "done". */
#define NO_UNITS AP_ACTION_NONE, AP_ACTION_NONE
static const struct phase phases[] = {
	{ AP_PHASE_BACKUP, run_backup, NULL, AP_PHASE_BACKUP, FAIL_RESTORE, NO_UNITS },
	{ AP_PHASE_DISABLE, run_disable, undo_disable, AP_PHASE_DISABLE, FAIL_RESTORE, NO_UNITS },
	{ AP_PHASE_STOP, run_stop, NULL, AP_PHASE_STOP, FAIL_RESTORE,
	  AP_ACTION_DISABLE_STOP, AP_ACTION_STOP },
	{ AP_PHASE_FILES, run_files, undo_files, AP_PHASE_BACKUP, FAIL_RESTORE, NO_UNITS },
	{ AP_PHASE_ENABLE, run_enable, undo_enable, AP_PHASE_ENABLE, FAIL_KEEP, NO_UNITS },
	{ AP_PHASE_RELOAD, run_reload, NULL, AP_PHASE_RELOAD, FAIL_KEEP, NO_UNITS },
	{ AP_PHASE_RESTART, run_restart, NULL, AP_PHASE_RESTART, FAIL_KEEP,
	  AP_ACTION_RESTART, AP_ACTION_RESTART },
	{ AP_PHASE_RELOAD_UNITS, run_reload_units, NULL, AP_PHASE_RELOAD_UNITS, FAIL_KEEP,
	  AP_ACTION_RELOAD, AP_ACTION_RELOAD },
	{ AP_PHASE_START, run_start, undo_start, AP_PHASE_START, FAIL_KEEP,
	  AP_ACTION_ENABLE_START, AP_ACTION_START },
	{ AP_PHASE_SETTLE, run_settle, NULL, AP_PHASE_SETTLE, FAIL_ROLLBACK, NO_UNITS },
	{ AP_PHASE_RECORD, run_record, NULL, AP_PHASE_RECORD, FAIL_KEEP, NO_UNITS },
};
#undef NO_UNITS

/* Whether a job phase has a unit action of its kinds not done yet. */
static bool owes_jobs(const struct ap_journal *j, const struct phase *ph)
{
	return has_action(j, ph->unit_a) || has_action(j, ph->unit_b);
}
_Static_assert(ELEMENTSOF(phases) == AP_PHASE_MAX, "every phase has a row");

/* --- undo ------------------------------------------------------------------------------ */

/* After the phases were undone: the manager sees the old files, changed units run their old
 * definition again (restart, not try-restart: they may be failed now) and removed ones run
 * again. The unit actions that were owed by an earlier apply belong to the state the host
 * returns to, so they are not reversed, but their units restart on the restored files too. */
static int finish_undo(struct exec *x, bool rollback, bool reload)
{
	_cleanup_strv_free_ char **again = NULL;
	int r = pick(x->j, AP_ACTION_REENABLE, AP_ACTION_REENABLE, PICK_DONE | PICK_NEW, &again);

	if (r >= 0 && again)
		r = x->ops->reenable(x->ops->userdata, again);
	if (r >= 0 && (reload || again))
		r = x->ops->reload(x->ops->userdata);
	if (r < 0)
		return r;
	if (rollback)
		r = jobs(x, AP_JOB_RESTART, AP_ACTION_RESTART, AP_ACTION_RELOAD, PICK_DONE, false);
	if (r >= 0)
		r = jobs(x, AP_JOB_START, AP_ACTION_DISABLE_STOP, AP_ACTION_STOP,
			 PICK_DONE | PICK_NEW,
			 false);
	return r;
}

static int settle_back(struct exec *x, char **ret_why)
{
	_cleanup_strv_free_ char **units = NULL;
	int r = pick(x->j, AP_ACTION_RESTART, AP_ACTION_RELOAD, PICK_DONE, &units);

	if (r >= 0)
		r = pick(x->j, AP_ACTION_DISABLE_STOP, AP_ACTION_STOP, PICK_DONE | PICK_NEW,
			 &units);
	if (r < 0 || !units)
		return r;
	return x->ops->settle(x->ops->userdata, units, ret_why);
}

/* The journal an apply superseded, as it stands once this one is undone: its files are all
 * written (this apply started from them), its owed actions are this one's owed ones. */
static int parent_journal(const struct ap_journal *j, struct ap_journal *ret)
{
	struct ap_journal p = { .mode = AP_JOURNAL_APPLY };
	int r = 0;

	memcpy(p.from, j->base, sizeof(p.from));
	memcpy(p.to, j->from, sizeof(p.to));
	memcpy(p.base, j->base, sizeof(p.base));
	for (unsigned ph = AP_PHASE_BACKUP; ph <= AP_PHASE_ENABLE; ph++)
		ap_journal_set_done(&p, ph);
	for (size_t i = 0; r >= 0 && i < j->n_units; i++)
		if (j->units[i].owed)
			r = ap_journal_add_unit(&p, j->units[i].unit, j->units[i].action,
						j->units[i].state, false);
	if (r < 0) {
		ap_journal_clear(&p);
		return r;
	}
	*ret = p;
	return 0;
}

/* After a restore nothing of this apply is left; an apply it had superseded is owed again. */
static int end_restore(struct exec *x)
{
	struct ap_journal parent = { 0 };
	int r;

	if (!*x->j->from || strcmp(x->j->from, x->j->base) == 0)
		return x->ops->clear_journal(x->ops->userdata);
	r = parent_journal(x->j, &parent);
	if (r >= 0)
		r = x->ops->save_journal(x->ops->userdata, &parent);
	ap_journal_clear(&parent);
	return r;
}

/* Walks the table backwards over what j has done. The backup's bit is left to the caller, to
 * clear once the manager has seen the restored files: while it is set, a resumed undo restores
 * again (writing nothing) and reloads, so a kill between the last undone phase and the reload
 * cannot leave the manager running the new definitions. */
static int undo_phases(struct exec *x, bool *reload)
{
	char point[32];
	int r;

	for (size_t i = ELEMENTSOF(phases); i-- > 0;) {
		const struct phase *ph = &phases[i];

		if (!ap_journal_is_done(x->j, ph->undo_if) && !ap_journal_is_done(x->j, ph->id))
			continue;
		if (ph->undo && ap_journal_is_done(x->j, ph->undo_if) && (r = ph->undo(x)) < 0)
			return r;
		*reload |= ph->id <= AP_PHASE_ENABLE && ph->undo;
		if (ph->id == AP_PHASE_BACKUP)
			continue;
		x->j->done &= ~(UINT32_C(1) << ph->id);
		if ((r = save(x)) < 0)
			return r;
		snprintf(point, sizeof(point), "undo-%s", ap_phase_to_string(ph->id));
		crash(x, point);
	}
	return 0;
}

int ap_apply_undo(struct ap_journal *j, const struct ap_apply_ops *ops, bool rollback,
		  const char *why, enum ap_apply_outcome *ret)
{
	struct exec x = { .j = j, .ops = ops };
	_cleanup_free_ char *settle_why = NULL;
	bool reload = false;
	int r = 0;

	if (rollback && j->mode != AP_JOURNAL_ROLLBACK) {
		char *copy = strdup(why ? why : ""); /* why may be j->why itself */

		if (!copy)
			return -ENOMEM;
		free(j->why);
		j->why = copy;
		j->mode = AP_JOURNAL_ROLLBACK;
		if ((r = save(&x)) < 0)
			return r;
	}
	r = undo_phases(&x, &reload);
	if (r >= 0)
		r = finish_undo(&x, rollback, reload);
	if (r >= 0) {
		crash(&x, "undo-finish");
		j->done &= ~(UINT32_C(1) << AP_PHASE_BACKUP);
		r = save(&x);
	}
	if (r >= 0)
		crash(&x, "undo-backup");
	if (r < 0 || !rollback) {
		*ret = AP_APPLY_RESTORED;
		return r < 0 ? r : end_restore(&x);
	}
	r = settle_back(&x, &settle_why);
	if (r < 0 && r != -EIO)
		return r;
	*ret = r == -EIO ? AP_APPLY_ROLLBACK_FAILED : AP_APPLY_ROLLED_BACK;
	r = ops->record_rollback(ops->userdata, j, j->why ? j->why : "",
				 *ret == AP_APPLY_ROLLED_BACK,
				 settle_why);
	return r < 0 ? r : ops->clear_journal(ops->userdata);
}

/* --- apply ------------------------------------------------------------------------------ */

static int fail_phase(struct exec *x, const struct phase *ph, int r, enum ap_apply_outcome *ret)
{
	enum phase_failure how = ph->on_failure;

	/* A job phase that runs again after the files were all written keeps them. */
	if (how == FAIL_RESTORE && ap_journal_is_done(x->j, AP_PHASE_FILES))
		how = FAIL_KEEP;
	switch (how) {
	case FAIL_RESTORE:
		/* The journal must say the files may have changed, whatever happens next. */
		return ap_apply_undo(x->j, x->ops, false, NULL, ret);
	case FAIL_ROLLBACK:
		if (r == -EIO)
			return ap_apply_undo(x->j, x->ops, true, x->j->why, ret);
		__attribute__((fallthrough));
	case FAIL_KEEP:
	default:
		*ret = AP_APPLY_FAILED;
		r = save(x);
		return r < 0 ? r : 0;
	}
}

int ap_apply_run(struct ap_journal *j, const struct ap_plan *p, const struct ap_apply_ops *ops,
		 enum ap_apply_outcome *ret)
{
	struct exec x = { .j = j, .p = p, .ops = ops };
	char point[32];
	int r = save(&x);

	if (r < 0)
		return r;
	crash(&x, "after-journal");
	for (size_t i = 0; i < ELEMENTSOF(phases); i++) {
		const struct phase *ph = &phases[i];

		/* A job phase retries the unit actions that failed in an earlier run. */
		if (ap_journal_is_done(j, ph->id) && !owes_jobs(j, ph))
			continue;
		/* A unit that failed its job is not watched or recorded: it stays owed. */
		if (ph->id == AP_PHASE_SETTLE && (x.units_failed ||
						  !ap_journal_units_finished(j))) {
			*ret = AP_APPLY_FAILED;
			return save(&x) < 0 ? -EIO : 0;
		}
		r = ph->run(&x);
		if (r < 0)
			return fail_phase(&x, ph, r, ret);
		if (ph->id == AP_PHASE_RECORD)
			break; /* the journal is gone */
		ap_journal_set_done(j, ph->id);
		if ((r = save(&x)) < 0)
			return r;
		snprintf(point, sizeof(point), "after-%s", ap_phase_to_string(ph->id));
		crash(&x, point);
	}
	*ret = AP_APPLY_OK;
	return 0;
}

/* --- building a journal -------------------------------------------------------------------- */

int ap_apply_journal_new(const struct ap_plan *p, const char *base, const struct ap_journal *owed,
			 struct ap_journal *ret)
{
	struct ap_journal j = { 0 };
	bool reload = p->daemon_reload || (owed && !ap_journal_is_done(owed, AP_PHASE_RELOAD));
	int r = 0;

	snprintf(j.from, sizeof(j.from), "%s", p->from);
	snprintf(j.to, sizeof(j.to), "%s", p->to);
	snprintf(j.base, sizeof(j.base), "%s", base ? base : "");
	for (size_t i = 0; r >= 0 && i < p->n_units; i++)
		if (p->units[i].action != AP_ACTION_NONE)
			r = ap_journal_add_unit(&j, p->units[i].unit, p->units[i].action,
						AP_STEP_PENDING, false);
	for (size_t i = 0; r >= 0 && owed && i < owed->n_units; i++)
		if (owed->units[i].state != AP_STEP_DONE)
			r = ap_journal_add_unit(&j, owed->units[i].unit, owed->units[i].action,
						AP_STEP_PENDING, true);
	if (r < 0) {
		ap_journal_clear(&j);
		return r;
	}
	/* Nothing to do is done. */
	if (p->n_files == 0) {
		ap_journal_set_done(&j, AP_PHASE_BACKUP);
		ap_journal_set_done(&j, AP_PHASE_FILES);
	}
	if (!has_action(&j, AP_ACTION_DISABLE_STOP))
		ap_journal_set_done(&j, AP_PHASE_DISABLE);
	if (!has_action(&j, AP_ACTION_ENABLE_START) && !has_action(&j, AP_ACTION_REENABLE))
		ap_journal_set_done(&j, AP_PHASE_ENABLE);
	if (!reload && ap_journal_is_done(&j, AP_PHASE_ENABLE) && ap_journal_is_done(&j, AP_PHASE_DISABLE))
		ap_journal_set_done(&j, AP_PHASE_RELOAD);
	/* A job phase with no job: one journal write (and its fsyncs) less. */
	for (size_t i = 0; i < ELEMENTSOF(phases); i++)
		if (phases[i].unit_a != AP_ACTION_NONE && !owes_jobs(&j, &phases[i]))
			ap_journal_set_done(&j, phases[i].id);
	*ret = j;
	return 0;
}

void ap_apply_resolve_unit(struct ap_journal_unit *u, const char *active_state)
{
	if (u->state == AP_STEP_DONE || (u->action != AP_ACTION_RESTART &&
					 u->action != AP_ACTION_RELOAD))
		return;
	if (strcmp(active_state, "failed") == 0) {
		u->action = AP_ACTION_START;
		u->state = AP_STEP_PENDING;
	} else if (strcmp(active_state, "inactive") == 0) {
		u->state = AP_STEP_DONE;
	}
}

const char *ap_apply_outcome_to_string(enum ap_apply_outcome out)
{
	static const char *const names[] = {
		[AP_APPLY_OK] = "ok", [AP_APPLY_FAILED] = "failed",
			[AP_APPLY_RESTORED] = "restored",
		[AP_APPLY_ROLLED_BACK] = "rolled-back",
			[AP_APPLY_ROLLBACK_FAILED] = "rollback-failed",
	};
	return (unsigned)out < ELEMENTSOF(names) ? names[out] : "failed";
}
