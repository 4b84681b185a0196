/* What a run prints, once: the plan with the guard's verdict and the result, an apply's
 * closing line, and the one JSON document of a run that ended before its plan. Layer 2: it
 * renders with print.c and guard.c's verdict format; the engine owns what it points to. */
#pragma once
#include <stdbool.h>
#include "apply.h"
#include "journal.h"
#include "model.h"
#include "state.h"
#include "guard.h"

struct ap_report {
	bool json, dry_run;
	unsigned long long start;             /* monotonic: when the run began */
	const struct ap_plan *plan;           /* NULL until planned */
	const struct ap_guard_result *guard;  /* NULL: no verdict */
	const char *refused;                  /* this run's refusal (events.h results), or NULL */
	char why[1024];                       /* and its reason */
	bool printed;                         /* --json: the one document is out */
};

/* The plan, for people before it runs, or for programs as one JSON document once the result
 * is known (result NULL: a dry run). */
int ap_report_plan(struct ap_report *rp, const char *result, const struct ap_journal *j);
/* The plan before it runs (--json prints its one document with the result, at the end). */
int ap_report_plan_before(struct ap_report *rp);
/* "applied 1a2b3c4d5e6f in 1.2 s: 2 restarted, 1 reloaded, 1 started", and what became of
 * the failed units the plan started. */
void ap_report_applied(const struct ap_report *rp, const struct ap_journal *j);
/* Nothing moved: says so, or that deploys are pinned (pin not NULL). Returns an exit code. */
int ap_report_nothing_to_do(struct ap_report *rp, const struct ap_pin *pin);
/* The run is refused (kind: events.h results) with why, or (why NULL) the error line that
 * decided it (log.h's reason), or fallback when nothing was logged. */
void ap_report_refused(struct ap_report *rp, const char *kind, const char *why,
		       const char *fallback);
/* After the checks of a plan (exit code code): the refused run's JSON document, or the plan
 * before it runs (a dry run prints it whatever the checks said). Returns the exit code. */
int ap_report_checked(struct ap_report *rp, int code);
/* The one JSON document of a run that ended before a plan could be printed. */
void ap_report_outcome(const struct ap_report *rp, int code);
/* An apply's end: with --json the one document with the result; else the closing line when it
 * went through, or what failed and what is owed (k: the executor's error, if any). A rollback
 * was logged by the rollback. */
void ap_report_result(struct ap_report *rp, const struct ap_journal *j,
		      enum ap_apply_outcome out, int k, const char *applied);
