/* The guard at run time: samples units over the bus, keeps the heartbeat history in
 * state_dir (its own memory, under the history lock), judges it (heartbeat.c), decides
 * whether an apply may go on, and watches freshly restarted units for the settle window.
 * The metrics file is written by record.c from what it samples. Layer 2: it combines bus,
 * state and heartbeat for the engine, the effects and the read-only verbs. */
#pragma once
#include <stdbool.h>
#include "bus.h"
#include "config.h"
#include "heartbeat.h"
#include "model.h"
#include "state.h"
#include "util.h"

struct ap_guard_result {
	struct ap_hb_verdict *v;
	size_t n;
	bool ok;       /* nothing looping or unhealthy and not tripped (stale timers do not block) */
	char *tripped; /* why an earlier rollback left the guard tripped, or NULL */
	unsigned long long window_s;
	/* per verdict: when the window stops counting the newest restart seen (realtime usec;
	 * 0 when not looping): with no more restarts, the guard lets applies through then */
	unsigned long long *clears;
	/* recorded: some verdict differs from the one of the heartbeat before (a unit began or
	 * stopped looping or being stale, or is new); false when not recording */
	bool changed;
};
void ap_guard_result_clear(struct ap_guard_result *g);

/* Takes one sample of every watched unit (guard.watch names and globs, plus the units the
 * last apply restarted) and judges it together with the stored history. With record, the
 * samples are added to the history, the units in state failed are sampled too (exported,
 * not judged), and the metrics are written and pushed (guard.push); a dry run passes false
 * and writes nothing. */
int ap_guard_heartbeat(struct ap_bus *b, struct ap_state *st, const struct ap_config *c,
		       bool record, struct ap_guard_result *ret);

/* ap_guard_heartbeat, then: a timer the plan (when not NULL) is about to enable and start has
 * never fired, so it is not stale. */
int ap_guard_sample(struct ap_bus *b, struct ap_state *st, const struct ap_config *c, bool record,
		    const struct ap_plan *plan, struct ap_guard_result *ret);

/* Whether an apply of to may go on. Fails closed: a guard that cannot take its sample, or
 * that a failed rollback left tripped, refuses too, until an override says why; each reason
 * to refuse is logged, with what clears it. A dry run records no sample. */
struct ap_guard_check {
	struct ap_bus *bus;         /* NULL: no manager (a dry run then passes, unless tripped) */
	struct ap_state *st;
	const struct ap_config *cfg;
	const struct ap_plan *plan; /* NULL when resuming a journal */
	const char *to;
	bool dry_run;
	bool override;              /* --override-guard, with reason */
	const char *reason;
	const char *tripped;        /* why a failed rollback tripped the guard, or NULL */
	int tripped_error;          /* the tripped state cannot be read: refuse as if tripped */
};
enum ap_guard_decision { AP_GUARD_PASS, AP_GUARD_OVERRIDDEN, AP_GUARD_REFUSED };
/* A refusal's reason when no error line says more (the event, --json). */
#define AP_GUARD_REFUSAL "a watched unit loops or is stale; 'autopull status' names it"
/* Returns a decision; *ret_sampled: ret holds a verdict. */
int ap_guard_check(const struct ap_guard_check *in, struct ap_guard_result *ret, bool *ret_sampled);

/* After an apply: one more heartbeat, so that the metrics file and the push (guard.push)
 * carry the apply's result and the units' state after it. Errors are logged there and do not
 * change the apply's outcome; without a bus (b NULL) it does nothing. */
void ap_guard_after_apply(struct ap_bus *b, struct ap_state *st, const struct ap_config *c);

/* Watches units for settle_usec after autopull (re)started them. 0 when all stay up;
 * -EIO with *ret_why naming the first unit that failed, looped or never became active. */
int ap_guard_settle(struct ap_bus *b, char *const *units, unsigned long long settle_usec,
		    char **ret_why);

/* What lets applies through again for the looping verdict i: for a failed unit what clears
 * it (it will not restart by itself), else when the window forgets its restarts. One
 * sentence, no newline, appended to out. */
int ap_guard_clear_hint(const struct ap_guard_result *g, size_t i, enum ap_scope scope,
			unsigned long long now_real, struct ap_buf *out);

/* "LOOPING", "UNHEALTHY", "STALE" or "ok". */
const char *ap_guard_verdict_word(const struct ap_hb_verdict *v);

/* The verdict as one line: "guard: ok", or REFUSING and each unit looping or stale. */
int ap_guard_format_line(const struct ap_guard_result *g, struct ap_buf *out);

/* The verdict as text lines or as a JSON object (the value of "guard"). */
int ap_guard_format(const struct ap_guard_result *g, bool json, struct ap_buf *out);
