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

/* Returns an exit code; when it is a refusal, *ret_refusal names its kind (events.h results:
 * "invalid", "emptying", "preflight") and *ret_why says it in a few words, for when no error
 * line was logged. */
int ap_checks_run(const struct ap_checks *in, const char **ret_refusal, const char **ret_why);
