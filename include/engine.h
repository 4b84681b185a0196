/* The transaction: lock → state → fetch → diff → plan → validate → install → units →
 * record. The only place that combines the layer-1 modules, and the place where errors
 * become exit codes (exitcode.h). */
#pragma once
#include <stdbool.h>

struct ap_opts {
	const char *config_path; /* NULL: the scope's default */
	bool user;               /* --user: force user scope */
	bool dry_run, json;
	const char *commit;      /* --commit REV: target instead of the branch tip */
	const char *from;        /* --from REV: plan from here instead of the applied commit */
	bool no_fetch, allow_empty;
	unsigned wait_sec;       /* --wait: how long to wait for the lock */
	bool override_guard;     /* --override-guard: apply although a watched unit loops */
	const char *reason;      /* --reason: recorded with an override */
	bool allow_rewind;       /* --allow-rewind: apply a tip that rewrote the history */
};

/* Each returns an exit code. */
int ap_engine_apply(const struct ap_opts *o);
int ap_engine_check_config(const struct ap_opts *o);
int ap_engine_status(const struct ap_opts *o);
int ap_engine_heartbeat(const struct ap_opts *o);
