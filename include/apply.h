/* The executor: runs the phases of a plan from one table, keeps the journal current after every
 * phase, and undoes what was done — the same table, walked backwards — when a file cannot be
 * written (restore) or the changed units do not settle (rollback). Every effect goes through
 * struct ap_apply_ops, so that its failure paths are tested with fakes; the real effects are in
 * effects.c. It decides nothing about what to change (plan.c) and nothing about exit codes
 * (engine.c). */
#pragma once
#include <stdbool.h>
#include "journal.h"
#include "model.h"

struct ap_apply_ops {
	void *userdata;
	int (*save_journal)(void *u, const struct ap_journal *j);
	int (*clear_journal)(void *u);
	/* Saves the state of every path the plan touches (and the originals it takes over). */
	int (*backup)(void *u, const struct ap_plan *p, const char *commit);
	int (*install)(void *u, const struct ap_plan *p);
	/* Runs the plan's setup actions (systemd-sysusers, systemd-tmpfiles --create), in order. */
	int (*setup)(void *u, const struct ap_plan *p);
	/* Puts back every path saved by the backup of commit (a missing backup: nothing to do). */
	int (*restore)(void *u, const char *commit);
	int (*enable)(void *u, char *const *units);
	int (*reenable)(void *u, char *const *units);
	int (*disable)(void *u, char *const *units);
	int (*reload)(void *u);
	int (*reset_failed)(void *u, char *const *units);
	/* Fills each job's error and result; the return value is not needed. */
	int (*run_jobs)(void *u, struct ap_job *jobs, size_t n);
	/* 0 when the units stayed up for the settle window; -EIO with *ret_why when one did not. */
	int (*settle)(void *u, char *const *units, char **ret_why);
	/* j->to is applied: record it (restarted: the units restarted or reloaded). */
	int (*record)(void *u, const struct ap_journal *j, char *const *restarted);
	/* A rollback of j->to ended; settled: its own units came back up. */
	int (*record_rollback)(void *u, const struct ap_journal *j, const char *why, bool settled,
			       const char *settle_why);
	/* Test hook: AUTOPULL_TEST_CRASH names one of ap_apply_crash_points. */
	void (*crash_point)(void *u, const char *point);
};

enum ap_apply_outcome {
	AP_APPLY_OK,              /* every phase done, the commit recorded */
	AP_APPLY_FAILED,          /* a unit action failed or the manager did not answer: the
				   * journal keeps what is owed, the next run retries only that */
	AP_APPLY_RESTORED,        /* a file could not be written: the host was put back */
	AP_APPLY_ROLLED_BACK,     /* the units did not settle: rolled back, the commit is bad */
	AP_APPLY_ROLLBACK_FAILED, /* ...and the rollback did not settle either: guard tripped */
};

/* Every crash point the executor passes, in order: an apply's ("after-file" is reached after
 * each file as "after-file:N", N from 1, as well), then an undo's ("undo-<phase>"). */
extern const char *const ap_apply_crash_points[];

/* A new journal for plan p: its unit actions, plus the not yet done ones of an earlier
 * journal (owed, may be NULL); phases with nothing to do are marked done. base: the applied
 * commit ("" for none). */
int ap_apply_journal_new(const struct ap_plan *p, const char *base, const struct ap_journal *owed,
			 struct ap_journal *ret);

/* Runs the phases j does not have done. p: the plan of j (NULL when the file phases are done,
 * e.g. when an interrupted apply is resumed). */
int ap_apply_run(struct ap_journal *j, const struct ap_plan *p, const struct ap_apply_ops *ops,
		 enum ap_apply_outcome *ret);

/* Undoes the phases j has done. rollback: the units did not settle (why says so): undo
 * everything, watch the old units settle, record the commit as bad. Otherwise a restore: the
 * files are put back and removed units come back, nothing is recorded. A rollback journal that
 * a kill interrupted is finished the same way. */
int ap_apply_undo(struct ap_journal *j, const struct ap_apply_ops *ops, bool rollback,
		  const char *why, enum ap_apply_outcome *ret);

/* An owed restart or reload depends on what became of the unit since: a unit that failed is
 * started (a try-restart would skip it), an inactive one needs nothing (its next start uses
 * the new files). */
void ap_apply_resolve_unit(struct ap_journal_unit *u, const char *active_state);

/* "ok", "failed", "restored", "rolled-back", "rollback-failed": the event's result. */
const char *ap_apply_outcome_to_string(enum ap_apply_outcome out);
