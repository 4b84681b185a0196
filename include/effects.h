/* The executor's real effects: struct ap_apply_ops filled with install.c for files, bus.c for
 * the manager, state.c for the journal and the owned list, state-fileset.c for backups,
 * record.c for the applied or rolled-back commit, guard.c for settling. Layer 2, like
 * engine.c, which owns everything the context borrows. */
#pragma once
#include <stdbool.h>
#include "apply.h"
#include "bus.h"
#include "fleet.h"
#include "config.h"
#include "install.h"
#include "state.h"

struct ap_effects {
	const struct ap_config *cfg;
	struct ap_state *st;
	struct ap_bus *bus;
	const struct ap_install_source *src;
	char **owned;        /* the inventory, kept current by install and restore */
	bool quiet_jobs;     /* job results go to the log, not to stdout (--json) */
	const char *crash;   /* AUTOPULL_TEST_CRASH, or NULL */
	unsigned files_done; /* for the "after-file:N" crash points */
	struct ap_fleet *fleet;    /* fleet: the slot around the run (rollout.h), or NULL */
	uint64_t fleet_wait_usec;  /* how long the run waited for its slot */
};

void ap_effects_ops(struct ap_effects *e, struct ap_apply_ops *ret);

/* The test-only hook: kills the process with SIGKILL when point (or "point:N") is the one
 * AUTOPULL_TEST_CRASH names. */
void ap_effects_crash_point(const char *want, const char *point);

/* Runs a journal (apply.h) with the real effects: -ENOTCONN without a manager when units are
 * owed; *ret is the outcome (AP_APPLY_FAILED on any error). e->owned stays current. With a
 * fleet, the run holds a slot throughout: -EAGAIN when it got none, and nothing was done. */
int ap_effects_execute(struct ap_effects *e, struct ap_journal *j, const struct ap_plan *p,
		       enum ap_apply_outcome *ret);
/* Finishes an interrupted rollback, or puts back the files of an apply killed before all its
 * files were written (ap_apply_undo); j is then the journal left in state (an older one the
 * undone one had superseded), *ret_has_journal whether there is one. Errors logged. */
int ap_effects_finish(struct ap_effects *e, struct ap_journal *j, bool *ret_has_journal);
/* Owed restarts and reloads depend on what became of their units (apply.h): asks the manager. */
int ap_effects_resolve_owed(struct ap_bus *b, struct ap_journal *j);
