/* What every verb works with: the options, the configuration, the state directory, and the
 * mirror and the service manager, opened on first use. Layer 2 (like engine.c); owns what it
 * opens and frees it in ap_ctx_done. */
#pragma once
#include <stdbool.h>

#include "bus.h"
#include "config.h"
#include "fleet.h"
#include "repo.h"
#include "state.h"

#define AP_OPTS_MAX_HOSTS 64

struct ap_opts {
	const char *config_path; /* NULL: the scope's default */
	bool user;               /* --user: force user scope */
	bool dry_run, json;
	const char *commit;      /* --commit REV: target instead of the branch tip */
	const char *from;        /* --from REV: plan from here instead of the applied commit */
	bool no_fetch, allow_empty;
	unsigned wait_sec;       /* --wait: how long to wait for the lock */
	bool override_guard;     /* --override-guard: apply although a watched unit loops */
	const char *reason;      /* --reason: recorded with an override or a pin */
	unsigned lines;          /* log -n */
	bool pin;                /* the apply pins its target (pin, apply --commit) */
	bool allow_rewind;       /* --allow-rewind: apply a tip that rewrote the history */
	/* plan: the repository checkout (--repo), the output (--format markdown|json) and
	 * the hosts to plan for (--host, repeated; none: this host). */
	const char *repo, *format;
	const char *hosts[AP_OPTS_MAX_HOSTS];
	size_t n_hosts;
};

struct ap_ctx {
	const struct ap_opts *o;
	struct ap_config *cfg;
	struct ap_state *st;
	struct ap_repo *repo;
	struct ap_bus *bus;
	bool bus_tried;
	struct ap_fleet *fleet;
	bool fleet_tried;
};

/* Loads the configuration (with a hint when there is none) and opens the state directory
 * (creating it) unless CONFIG_ONLY. DECRYPTS: the verb may decrypt secrets, so a missing or
 * insecure identity is a configuration error (exit 2) before anything starts. Returns an
 * exit code. */
enum { AP_CTX_CONFIG_ONLY = 1 << 0, AP_CTX_DECRYPTS = 1 << 1 };
int ap_ctx_open(const struct ap_opts *o, unsigned flags, struct ap_ctx *ret);
void ap_ctx_done(struct ap_ctx *c);
/* Takes the run lock (exit code: 75 when another run holds it). */
int ap_ctx_lock(struct ap_ctx *c);
/* The manager (NULL when it cannot be reached, logged once) and the mirror (NULL, logged). */
/* The fleet handle when fleet: is configured (no network until used), else NULL. */
struct ap_fleet *ap_ctx_fleet(struct ap_ctx *c);
struct ap_bus *ap_ctx_bus(struct ap_ctx *c);
struct ap_repo *ap_ctx_repo(struct ap_ctx *c);
