/* The guard at run time: samples units over the bus, keeps the heartbeat history in
 * state_dir, judges it (heartbeat.c), writes the metrics file and hands it to the push
 * (push.c), watches freshly restarted units for the settle window, and formats a verdict.
 * Layer 2 like engine: it combines bus, state and heartbeat. Called by the engine (the guard
 * before an apply, a sample after it), the executor's effects (settling, effects.c) and the
 * heartbeat and status verbs. */
#pragma once
#include <stdbool.h>
#include "bus.h"
#include "config.h"
#include "heartbeat.h"
#include "state.h"
#include "util.h"

struct ap_guard_result {
	struct ap_hb_verdict *v;
	size_t n;
	bool ok;       /* nothing looping and not tripped (stale timers do not block) */
	char *tripped; /* why an earlier rollback left the guard tripped, or NULL */
	unsigned long long window_s;
	/* per verdict: when the window stops counting the newest restart seen (realtime usec;
	 * 0 when not looping): with no more restarts, the guard lets applies through then */
	unsigned long long *clears;
	/* recorded: some verdict differs from the one of the heartbeat before (a unit began or
	 * stopped looping or being stale, or is new); false when not recording */
	bool changed;
};
void ap_guard_result_free(struct ap_guard_result *g);

/* Takes one sample of every watched unit (guard.watch names and globs, plus the units the
 * last apply restarted) and judges it together with the stored history. With record, the
 * samples are added to the history, the units in state failed are sampled too (exported,
 * not judged), and the metrics are written and pushed (guard.push); a dry run passes false
 * and writes nothing. */
int ap_watch_heartbeat(struct ap_bus *b, struct ap_state *st, const struct ap_config *c,
		       bool record, struct ap_guard_result *ret);

/* After an apply: one more heartbeat, so that the metrics file and the push (guard.push)
 * carry the apply's result and the units' state after it. Errors are logged there and do not
 * change the apply's outcome; without a bus (b NULL) it does nothing. */
void ap_watch_after_apply(struct ap_bus *b, struct ap_state *st, const struct ap_config *c);

/* Watches units for settle_usec after autopull (re)started them. 0 when all stay up;
 * -EIO with *ret_why naming the first unit that failed, looped or never became active. */
int ap_watch_settle(struct ap_bus *b, char *const *units, unsigned long long settle_usec,
		    char **ret_why);

/* What lets applies through again for the looping verdict i: for a failed unit what clears
 * it (it will not restart by itself), else when the window forgets its restarts. One
 * sentence, no newline, appended to out. */
int ap_watch_clear_hint(const struct ap_guard_result *g, size_t i, enum ap_scope scope,
			unsigned long long now_real, struct ap_buf *out);

/* The verdict as one line: "guard: ok", or REFUSING and each unit looping or stale. */
int ap_watch_format_line(const struct ap_guard_result *g, struct ap_buf *out);

/* The verdict as text lines or as a JSON object (the value of "guard"). */
int ap_watch_format(const struct ap_guard_result *g, bool json, struct ap_buf *out);
