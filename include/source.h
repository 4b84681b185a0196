/* Which commit this run goes to, and whether it may: fetch (or --no-fetch), the target (the
 * tip, a pin, or --commit on the branch), the move from what the host runs (forward, back,
 * rewind) and the signatures of the commits on the way (trust.h). Returns an exit code; a
 * refused source changes nothing and comes back as out->refused with its reason, for the
 * caller to record and report. Layer 2: it combines repo, trust and state. */
#pragma once
#include <stdbool.h>
#include "config.h"
#include "context.h"
#include "repo.h"
#include "state.h"

struct ap_source_in {
	const struct ap_config *cfg;
	struct ap_repo *repo;
	struct ap_state *st;
	const struct ap_opts *o;
	const struct ap_state_snapshot *s; /* what the run loaded: the pin, the trust skips */
	const char *applied;       /* what the host's files are at ("" when nothing yet) */
};

struct ap_source {
	char tip[AP_OID_HEXSZ + 1];     /* the branch tip, once fetched */
	char target[AP_OID_HEXSZ + 1];  /* the commit to apply */
	const char *refused;            /* "untrusted", "rewind" (events.h results), or NULL */
	char why[1024];                 /* and why, for the event and --json */
	bool rewind_override;           /* --allow-rewind let a rewritten history through */
};

int ap_source_choose(const struct ap_source_in *in, struct ap_source *out);

/* A commit whose apply was rolled back is skipped until the branch moves on or a chosen commit
 * (--commit) names it. Returns 1 (skip it; warned about with warn), 0, or <0 when the list
 * cannot be read: then nobody can tell whether the commit was rolled back, and applying it
 * again is what the list exists to stop (state.c names the file, the line and the repair). */
int ap_source_is_bad(const struct ap_state_snapshot *s, const char *target, bool chosen,
		     bool warn);
