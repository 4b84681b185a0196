/* The fleet: the hosts of one group (config fleet:) take turns through slots kept in etcd,
 * so that at most max_parallel of them are inside the change-and-settle phase at once; the
 * first `canary` hosts to start a commit go first and the rest wait until that many report it
 * healthy; a commit one host rolled back is marked bad for all. Everything lives under
 * /autopull/GROUP/ in etcd (v3 JSON gateway, over http.c); json-c is included only by
 * fleet-etcd.c.
 *
 * Keys: slot/N ("HOST COMMIT", on this host's lease), bad/COMMIT ("HOST REASON"),
 * healthy/COMMIT/HOST and started/COMMIT/HOST (realtime usec), canary/COMMIT/I (HOST: the
 * I-th canary), host/HOST ("COMMIT RESULT USEC").
 *
 * Errors are logged here, once, with the endpoint and the key; -ETIMEDOUT and "wait" answers
 * are outcomes for the caller to word. -EHOSTUNREACH means no etcd endpoint answered (the
 * caller exits 75 with nothing changed). */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct ap_fleet;

/* Checks c and makes a handle; no network. c must outlive the handle. -EINVAL (logged) for a
 * configuration the loader should have refused (no endpoint, bad names, max_parallel 0). */
int ap_fleet_open(const struct ap_fleet_config *c, struct ap_fleet **ret);
/* Stops the lease keep-alive; does NOT release the slot (a killed host's slot is freed when
 * its lease expires, and a rolled-back host keeps its slot the same way). NULL is fine. */
void ap_fleet_free(struct ap_fleet *f);
static inline void ap_fleet_freep(struct ap_fleet **f) { ap_fleet_free(*f); }

/* Waits (polling with backoff from 100 ms up to 2 s) until one of max_parallel slots is free
 * and takes it for commit under a fresh lease, kept alive by a background thread until
 * release. timeout_usec 0 tries once. -ETIMEDOUT: no slot within timeout; -EHOSTUNREACH: no
 * etcd endpoint answers (at the first attempt, or still at the timeout when etcd went away
 * while waiting); -EBUSY: this handle holds a slot already; other -errno: protocol errors.
 * *ret_waited_usec (may be NULL): how long it waited, also on failure. */
int ap_fleet_slot_acquire(struct ap_fleet *f, const char *commit, uint64_t timeout_usec,
			  uint64_t *ret_waited_usec);
/* Deletes the slot key (if it still belongs to this host's lease) and revokes the lease.
 * 0 also when no slot is held. */
int ap_fleet_slot_release(struct ap_fleet *f);
/* The slot held: 0..max_parallel-1, or -1. */
int ap_fleet_slot(const struct ap_fleet *f);

/* A rolled-back commit: bad/COMMIT. The slot is kept (not released) by the caller. */
int ap_fleet_mark_bad(struct ap_fleet *f, const char *commit, const char *reason);
/* 1 with *ret_why (malloc'd "HOST: REASON") when bad/COMMIT exists, 0 when not, <0 on error. */
int ap_fleet_is_bad(struct ap_fleet *f, const char *commit, char **ret_why);
int ap_fleet_mark_healthy(struct ap_fleet *f, const char *commit);
int ap_fleet_mark_started(struct ap_fleet *f, const char *commit);
/* Canary gate for commit: 1 = this host may go (it is a canary, or `canary` hosts reported it
 * healthy, or canary == 0), 0 = wait (ret_why says for what, one line), <0 error. With a
 * canary count (no host list) a host that goes as a canary has claimed canary/COMMIT/I and
 * written started/COMMIT/HOST in one transaction, so two hosts cannot both be the last one. */
int ap_fleet_may_start(struct ap_fleet *f, const char *commit, char *ret_why, size_t size);
/* host/HOST = "COMMIT RESULT USEC"; result is one word of [A-Za-z0-9_.-] ("applied"). */
int ap_fleet_record_host(struct ap_fleet *f, const char *commit, const char *result);

/* For `autopull fleet status [--json]`. Strings are as etcd holds them: escape them for
 * output. */
struct ap_fleet_slot_holder {
	unsigned n;
	char *host, *commit;
};
struct ap_fleet_host_state {
	char *host, *commit, *result;
	uint64_t usec;
};
struct ap_fleet_bad {
	char *commit, *host, *reason;
};
struct ap_fleet_status {
	struct ap_fleet_slot_holder *slots;
	size_t n_slots;
	struct ap_fleet_host_state *hosts;
	size_t n_hosts;
	struct ap_fleet_bad *bad;
	size_t n_bad;
	/* canary progress of the commit asked for (all NULL without one) */
	char **started, **healthy, **canaries;
};
/* commit may be NULL (no canary progress). */
int ap_fleet_status(struct ap_fleet *f, const char *commit, struct ap_fleet_status *ret);
void ap_fleet_status_clear(struct ap_fleet_status *s);
