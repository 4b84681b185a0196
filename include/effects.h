/* The executor's real effects: struct ap_apply_ops filled with install.c for files, bus.c for
 * the manager, state.c for the journal, backups and records, watch.c for settling. Layer 2,
 * like engine.c, which owns everything the context borrows. */
#pragma once
#include <stdbool.h>
#include "apply.h"
#include "bus.h"
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
};

void ap_effects_ops(struct ap_effects *e, struct ap_apply_ops *ret);

/* The test-only hook: kills the process with SIGKILL when point (or "point:N") is the one
 * AUTOPULL_TEST_CRASH names. */
void ap_effects_crash_point(const char *want, const char *point);
