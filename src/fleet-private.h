/* What the fleet module's files share: the handle and its limits; from fleet-etcd.c the
 * etcd operations (its v3 JSON gateway: json-c stays inside fleet-etcd.c), from fleet.c the
 * checks and reads the status uses. Only the fleet module's files include it. */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet.h"

#define USEC_PER_SEC 1000000ULL
#define KEY_MAX 512                          /* a key, before base64 */
#define VALUE_MAX 1024                       /* a value, before base64 */
#define NAME_MAX_LEN 128                     /* group and host names */
#define PARALLEL_MAX 1024
#define WHY_MAX 512

struct ap_fleet {
	const struct ap_fleet_config *c;
	char prefix[NAME_MAX_LEN + 16]; /* "/autopull/GROUP/" */
	size_t n_endpoints;
	size_t endpoint;                /* the one that answered last: tried first */
	int64_t lease;                  /* 0: none */
	int slot;                       /* -1: none */
	/* the keep-alive thread */
	pthread_t keepalive;
	bool keepalive_running;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;                      /* under lock */
	int keepalive_error;            /* under lock: the last keep-alive's result */
	size_t keepalive_endpoint;      /* the thread's own: f->endpoint is the caller's */
	bool quiet;                     /* etcd away while waiting: said once already */
	int64_t seen_rev;               /* the revision the last read of the keys saw */
};

/* fleet.c */

/* A commit id: lower-case hex (SHA-1 or SHA-256). */
bool fleet_commit_ok(const char *s);
/* The host names under WHAT/COMMIT/ (started, healthy), or with values true the values
 * (canary/COMMIT/); *ret is a NULL-terminated list (possibly empty) on success. */
int fleet_names_of(struct ap_fleet *f, const char *what, const char *commit, bool values,
		   char ***ret);

/* fleet-etcd.c: keys are relative to the group's prefix; each logs its failure once (as
 * "fleet: cannot WHAT 'KEY': WHY"), -EHOSTUNREACH not while f->quiet. */

/* Logs "fleet: cannot WHAT 'KEY': WHY" unless r is -EHOSTUNREACH while f->quiet; returns r. */
int fleet_failed(const struct ap_fleet *f, int r, const char *what, const char *key,
		 const char *why);

typedef int (*fleet_kv_fn)(const char *key, const char *value, int64_t lease, void *userdata);

/* Calls fn for each key under prefix (prefix true) or for key itself. key is relative to
 * the group's prefix, and so is the key fn gets. Notes the revision read in f->seen_rev. */
int fleet_range(struct ap_fleet *f, const char *key, bool prefix, fleet_kv_fn fn, void *userdata);
int fleet_put(struct ap_fleet *f, const char *key, const char *value);
/* Creates key = value (on lease, 0 for none) only if key does not exist, and then also
 * key2 = value2 when key2 is not NULL. 1 when created, 0 when key existed. -ENOLINK: the lease
 * is gone (not logged: the caller takes a new one). */
int fleet_create(struct ap_fleet *f, const char *key, const char *value, int64_t lease,
		 const char *key2, const char *value2);
/* Deletes key if it is attached to lease. */
int fleet_delete_if_leased(struct ap_fleet *f, const char *key, int64_t lease);

/* A lease of f->c->lease_ttl_usec (rounded up to seconds). */
int fleet_lease_grant(struct ap_fleet *f, int64_t *ret);
/* 0 when the lease is alive, -ENOLINK when etcd no longer knows it. Not logged; touches only
 * *endpoint and the configuration, so the keep-alive thread may call it. */
int fleet_lease_keepalive(const struct ap_fleet *f, size_t *endpoint, int64_t lease,
			  uint64_t timeout_usec);
/* 0 also when etcd no longer knows the lease. */
int fleet_lease_revoke(struct ap_fleet *f, int64_t lease);
/* Waits until a slot key changes after f->seen_rev, at most timeout_usec: 1 when one changed,
 * 0 when none did, <0 when the watch cannot be used. Not logged. */
int fleet_watch_slots(struct ap_fleet *f, uint64_t timeout_usec);
