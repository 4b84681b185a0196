/* The checks of a plan before the first change on the host, for an apply and a dry run
 * alike: validation (staged files, validators, systemd-analyze verify), not emptying the host
 * by accident, and preflight (every destination writable, nothing in the way, room for the
 * files and their backups). A problem found here leaves the host as it was. Layer 2: it
 * combines install and state for the engine. */
#pragma once
#include <stdbool.h>
#include "config.h"
#include "install.h"
#include "model.h"
#include "state.h"

struct ap_checks {
	const struct ap_config *cfg;
	struct ap_state *st;
	const struct ap_install_source *src;
	const struct ap_plan *plan;
	char *const *owned;        /* the files installed now */
	bool dry_run;              /* probes nothing, needs no room */
	bool allow_empty;          /* --allow-empty */
};

/* The validation of the plan's files, started before the rest (ap_checks_start): its
 * systemd-analyze verify runs while the engine samples the guard. */
struct ap_validation;
struct ap_checks_pending {
	struct ap_validation *v; /* NULL once finished or aborted, or when it could not start */
	int error;               /* why it could not start (logged where it was decided) */
};

/* Stages the plan's files and starts their verify; reports nothing but an error making the
 * stage. Every start is followed by ap_checks_abort, whatever came in between. */
void ap_checks_start(const struct ap_checks *in, struct ap_checks_pending *ret);
/* Finishes the validation pending started, then the other checks. Returns an exit code; when
 * it is a refusal, *ret_refusal names its kind (events.h results: "invalid", "emptying",
 * "preflight") and *ret_why says it in a few words, for when no error line was logged. */
int ap_checks_run(const struct ap_checks *in, struct ap_checks_pending *pending,
		  const char **ret_refusal, const char **ret_why);
/* Kills a verify that was not finished (the guard refused) and removes its stage, silently. */
void ap_checks_abort(struct ap_checks_pending *pending);
