/* The journal of an apply under way, as data: which commit range, which phases are done, and
 * every unit action with its own state. Pure: parse and format only (state.c stores it, apply.c
 * keeps it current). A run that finds a journal knows exactly what is owed and what was done.
 *
 *   autopull-journal 2
 *   from <sha|->            the commit the host's files were at when this apply began
 *   to <sha>                the commit being applied
 *   base <sha|->            the applied commit (differs from "from" when this apply superseded
 *                           an unfinished one whose files were all installed)
 *   mode apply|rollback
 *   done <phase> ...        the phases that finished
 *   why <text>              rollback only: why
 *   unit <action> <pending|done|failed> <new|owed> <name>
 *
 * The format of earlier versions ("from/to/installed/reload/unit <action> <name>") is read too.
 *
 * What a journal found at the start of a run means (engine.c):
 *   rollback mode         a rollback was interrupted: finish it.
 *   files not all written the run was killed before all its files were written: put them back
 *                         (the host returns to the state before it) and plan afresh.
 *   files written         the host's files are at the journal's commit: if the branch still
 *                         points there, do what is owed; if it moved on, plan from the
 *                         journal's commit to the new tip and do what is owed with it, so that
 *                         a fix always applies and nothing owed is lost. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "model.h"

#define AP_JOURNAL_MAX_UNITS 100000

/* In the order an apply runs them. */
enum ap_phase {
	AP_PHASE_BACKUP,       /* the previous bytes of every touched path are saved */
	AP_PHASE_DISABLE,      /* units whose files go away are disabled while the files exist */
	AP_PHASE_STOP,
		/* ...and stopped, before their files go (and their failed state reset) */
	AP_PHASE_FILES,        /* files installed and removed */
	AP_PHASE_ENABLE,       /* new units enabled, units whose [Install] changed re-enabled */
	AP_PHASE_RELOAD,       /* one daemon-reload */
	AP_PHASE_RESTART,      /* try-restart of changed units */
	AP_PHASE_RELOAD_UNITS, /* reload-or-try-restart */
	AP_PHASE_START,        /* start of new and owed units */
	AP_PHASE_SETTLE,       /* the restarted units stayed up for guard.settle */
	AP_PHASE_RECORD,       /* the commit is recorded as applied */
	AP_PHASE_MAX,
};
const char *ap_phase_to_string(enum ap_phase p);

enum ap_step { AP_STEP_PENDING, AP_STEP_DONE, AP_STEP_FAILED };
const char *ap_step_to_string(enum ap_step s);

enum ap_journal_mode { AP_JOURNAL_APPLY, AP_JOURNAL_ROLLBACK };

struct ap_journal_unit {
	char *unit;
	enum ap_unit_action_kind action;
	enum ap_step state;
	bool owed; /* carried over from an earlier apply: part of the state this apply starts from */
};

struct ap_journal {
	char from[AP_OID_HEXSZ + 1], to[AP_OID_HEXSZ + 1], base[AP_OID_HEXSZ + 1];
	enum ap_journal_mode mode;
	uint32_t done; /* one bit per enum ap_phase */
	char *why;     /* rollback: why; NULL otherwise */
	struct ap_journal_unit *units;
	size_t n_units;
};
void ap_journal_clear(struct ap_journal *j);

static inline bool ap_journal_is_done(const struct ap_journal *j, enum ap_phase p)
{
	return (j->done >> p) & 1u;
}
static inline void ap_journal_set_done(struct ap_journal *j, enum ap_phase p)
{
	j->done |= UINT32_C(1) << p;
}

/* Adds a unit action (or, when the unit is there, keeps the stronger action and the owed
 * flag of either). */
int ap_journal_add_unit(struct ap_journal *j, const char *unit, enum ap_unit_action_kind a,
			enum ap_step state, bool owed);
struct ap_journal_unit *ap_journal_find_unit(const struct ap_journal *j, const char *unit);
/* True when no unit action is pending or failed. */
bool ap_journal_units_finished(const struct ap_journal *j);

/* -EBADMSG (with a short reason in *ret_error when given) for anything malformed. */
int ap_journal_parse(const char *text, struct ap_journal *ret, const char **ret_error);
/* The same, with the number of the line found malformed in *ret_line (0: something is
 * missing rather than wrong). */
int ap_journal_parse_at(const char *text, struct ap_journal *ret, const char **ret_error,
			unsigned *ret_line);
int ap_journal_format(const struct ap_journal *j, char **ret);
