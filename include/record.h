/* The only writer of what a run did: its events (history line, journal entry, counter,
 * operator hook), the overrides it was given, the pin it set, the applied commit and the
 * rolled-back list, the last-apply and tick facts, and the metrics file. A run collects its
 * outcome in a struct ap_record and commits it once at the end (ap_record_commit), like a
 * git ref transaction: one place that writes, fewer fsyncs, and a refusal is a record like any
 * other. The exceptions are the apply's own transaction points (ap_record_applied,
 * ap_record_rolled_back: a kill right after them must find them done) and a pin (it must
 * hold before the apply it freezes). Layer 2, like engine.c. */
#pragma once
#include <stdbool.h>
#include "apply.h"
#include "context.h"
#include "events.h"
#include "heartbeat.h"
#include "journal.h"
#include "state.h"

struct ap_record_override;

struct ap_record {
	struct ap_ctx *c;
	unsigned long long start;       /* monotonic, for each event's duration */
	char from[AP_OID_HEXSZ + 1];    /* the applied commit when the run began */
	struct ap_event *events;
	size_t n_events;
	struct ap_record_override *overrides;
	size_t n_overrides;
	bool have_last_apply, have_tick, have_fleet;
	struct ap_last_apply last_apply;
	struct ap_tick tick;
	struct ap_fleet_tick fleet;
};

void ap_record_begin(struct ap_record *rec, struct ap_ctx *c, const char *applied);
/* Writes what was collected, in order, then runs the operator's hooks. Best effort: a state
 * dir that cannot take a line must not turn a done apply into a failed one (logged there).
 * Returns whether an event or the fleet's facts were written (the metrics must follow). */
bool ap_record_commit(struct ap_record *rec);
void ap_record_done(struct ap_record *rec);

/* One event (events.h); j, when given, names the units the apply acted on. */
void ap_record_event(struct ap_record *rec, enum ap_event_kind kind, const char *result,
		     const char *to, const char *reason, const struct ap_journal *j);
/* An apply's (or a put-back's, revert) outcome: its event, with why it failed or else why it
 * was pinned, and the last-apply fact. */
void ap_record_outcome(struct ap_record *rec, bool revert, enum ap_apply_outcome out,
		       const struct ap_journal *j, const char *pinned);
/* An operator's override (guard, rewind): its event and its line in the overrides list. */
void ap_record_override(struct ap_record *rec, const char *kind, const char *to,
			const char *reason);
void ap_record_last_apply(struct ap_record *rec, bool ok);
void ap_record_tick(struct ap_record *rec, const struct ap_tick *t);
/* What this run saw of its fleet: held back (no slot, canaries), its wait for a slot, and
 * what it waits for (NULL: nothing said). */
void ap_record_fleet(struct ap_record *rec, bool blocked, uint64_t wait_usec, const char *why);

/* Written at once (see above). */
/* Pins deploys at commit (a manual apply of a chosen commit), and makes it the pin in force. */
int ap_record_pin(struct ap_record *rec, const char *commit, const char *reason,
		  struct ap_pin *inforce);
/* autopull unpin: the pin goes, with its event (from: the commit it held). */
int ap_record_unpin(struct ap_ctx *c, const char *commit, const char *reason);
int ap_record_noop(struct ap_state *st, const char *applied, const char *to);
int ap_record_applied(struct ap_state *st, const struct ap_journal *j, char *const *restarted);
int ap_record_rolled_back(struct ap_state *st, const struct ap_journal *j, const char *why,
			  bool settled, const char *settle_why);
/* --override-guard: the override, and a tripped guard cleared at once (an unreadable
 * tripped state counts as tripped). */
int ap_record_guard_override(struct ap_record *rec, const char *to, const char *reason,
			     bool tripped);

/* An override given outside a run (autopull trust skip): its line, event and counter.
 * Unlike a run's, it fails when the line cannot be written: the override is the verb's work. */
int ap_record_override_now(struct ap_ctx *c, const char *kind, const char *to, const char *reason);
/* An event recorded outside a run (cmd-trust, cmd-pin): history line and journal entry. */
void ap_record_event_now(struct ap_ctx *c, const struct ap_event *e);

/* A health probe's verdict for a unit: its line of the probes' record (autopull_unit_healthy,
 * autopull_probe_failures_total, and the failure times the guard counts within window_usec).
 * Takes the history lock; logged on failure. */
struct ap_record_probe_result {
	const char *unit;
	const char *kind;          /* "http", "exec", "tcp" */
	bool healthy;
	const char *result;        /* the last attempt's words (probe.h), or NULL */
	unsigned long long window_usec;
};
int ap_record_probe(struct ap_state *st, const struct ap_record_probe_result *in);
/* What the record says of unit: its last result and its failures after since_real (realtime
 * usec), of which failures_before were before mark_real. -ENOENT when it was never probed. */
struct ap_record_probe_state {
	bool healthy;
	char kind[8];
	char result[256];
	unsigned failures_in_window, failures_before;
	unsigned long long last_failure_real;
};
int ap_record_probe_read(struct ap_state *st, const char *unit, unsigned long long since_real,
			 unsigned long long mark_real, struct ap_record_probe_state *ret);

/* The metrics file (guard.metrics_file or state_dir/metrics.prom) and its push, from the
 * heartbeat's samples and verdicts. The caller holds the history lock. */
int ap_record_metrics(struct ap_state *st, const struct ap_config *c, const struct ap_hb_history *h,
		      const struct ap_hb_history *failed, const struct ap_hb_verdict *v, size_t n,
		      bool guard_ok, bool guard_tripped);
