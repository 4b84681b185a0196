/* The fleet's slots, marks and canary gate in etcd (see fleet.h), over the etcd operations
 * of fleet-etcd.c.
 *
 * Threads: the lease keep-alive runs in its own thread while a lease is held; it touches only
 * the lease id, its own endpoint index and the fields under f->lock. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleet-private.h"
#include "log.h"
#include "util.h"

#define REASON_MAX 512                       /* what mark_bad keeps of a reason */
#define BACKOFF_MIN_USEC (100 * 1000ULL)
#define BACKOFF_MAX_USEC (2 * USEC_PER_SEC)
#define WATCH_USEC (10 * USEC_PER_SEC)        /* one watch; the slots are read again after it */
#define KEEPALIVE_RETRY_USEC (200 * 1000ULL)

static bool name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > NAME_MAX_LEN)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* A commit id: lower-case hex (SHA-1 or SHA-256). */
bool fleet_commit_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n >= 4 && n <= 64 && strspn(s, "0123456789abcdef") == n;
}

static void short_commit(const char *commit, char out[13])
{
	snprintf(out, 13, "%s", commit);
}

/* --- the lease and its keep-alive ------------------------------------------------------ */

static struct timespec monotonic_after(uint64_t usec)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	usec += (uint64_t)ts.tv_nsec / 1000;
	ts.tv_sec += (time_t)(usec / USEC_PER_SEC);
	ts.tv_nsec = (long)(usec % USEC_PER_SEC) * 1000;
	return ts;
}

/* Renews the lease every TTL/3 until told to stop; after a failed renewal it tries again
 * sooner (KEEPALIVE_RETRY_USEC), so that one lost request on a loaded machine does not cost
 * the lease. It does not log (a failure is kept in keepalive_error; a lease lost shows when
 * the slot is released). */
static void *keepalive_main(void *userdata)
{
	struct ap_fleet *f = userdata;
	uint64_t period = f->c->lease_ttl_usec / 3;
	size_t endpoint = f->keepalive_endpoint;
	int64_t lease = f->lease;

	pthread_mutex_lock(&f->lock);
	while (!f->stop) {
		bool retry = f->keepalive_error < 0 && f->keepalive_error != -ENOLINK &&
			     period > KEEPALIVE_RETRY_USEC;
		struct timespec at = monotonic_after(retry ? KEEPALIVE_RETRY_USEC : period);
		int r;

		while (!f->stop && pthread_cond_timedwait(&f->wake, &f->lock, &at) != ETIMEDOUT)
			;
		if (f->stop)
			break;
		pthread_mutex_unlock(&f->lock);
		r = fleet_lease_keepalive(f, &endpoint, lease, period > 0 ? period : 1);
		pthread_mutex_lock(&f->lock);
		f->keepalive_error = r;
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

static int lease_start(struct ap_fleet *f)
{
	int r = fleet_lease_grant(f, &f->lease);

	if (r < 0)
		return r;
	f->stop = false;
	f->keepalive_error = 0;
	f->keepalive_endpoint = f->endpoint;
	r = -pthread_create(&f->keepalive, NULL, keepalive_main, f);
	if (r < 0) {
		(void)fleet_lease_revoke(f, f->lease);
		f->lease = 0;
		return ap_log_error(r, "fleet: cannot start the lease keep-alive: %s",
				    strerror(-r));
	}
	f->keepalive_running = true;
	return 0;
}

/* Stops the keep-alive and forgets the lease, revoking it if asked. */
static int lease_stop(struct ap_fleet *f, bool revoke)
{
	int r = 0;

	if (f->keepalive_running) {
		pthread_mutex_lock(&f->lock);
		f->stop = true;
		pthread_cond_signal(&f->wake);
		pthread_mutex_unlock(&f->lock);
		pthread_join(f->keepalive, NULL);
		f->keepalive_running = false;
	}
	if (revoke && f->lease)
		r = fleet_lease_revoke(f, f->lease);
	f->lease = 0;
	return r;
}

/* --- the handle ------------------------------------------------------------------------ */

int ap_fleet_open(const struct ap_fleet_config *c, struct ap_fleet **ret)
{
	_cleanup_free_ struct ap_fleet *f = NULL;
	pthread_condattr_t attr;
	size_t n = ap_strv_length(c->etcd);

	if (n == 0)
		return ap_log_error(-EINVAL, "fleet: no etcd endpoint configured");
	for (size_t i = 0; i < n; i++)
		if (!ap_startswith(c->etcd[i], "http://") && !ap_startswith(c->etcd[i], "https://"))
			return ap_log_error(-EINVAL, "fleet: etcd endpoint '%s' is not http:// or "
					    "https://", c->etcd[i]);
	if (!name_ok(c->group) || !name_ok(c->host))
		return ap_log_error(-EINVAL, "fleet: group and host must be 1-%d characters of "
				    "[A-Za-z0-9_.-]", NAME_MAX_LEN);
	if (c->max_parallel < 1 || c->max_parallel > PARALLEL_MAX)
		return ap_log_error(-EINVAL, "fleet: max_parallel must be 1-%d", PARALLEL_MAX);
	if (c->lease_ttl_usec < USEC_PER_SEC)
		return ap_log_error(-EINVAL, "fleet: lease_ttl must be at least 1s");
	for (char **h = c->canary_hosts; h && *h; h++)
		if (!name_ok(*h))
			return ap_log_error(-EINVAL, "fleet: canary host '%s' is not a host name",
					    *h);
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->c = c;
	f->n_endpoints = n;
	f->slot = -1;
	snprintf(f->prefix, sizeof(f->prefix), "/autopull/%s/", c->group);
	if (pthread_condattr_init(&attr) != 0)
		return -ENOMEM;
	if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&f->wake, &attr) != 0) {
		pthread_condattr_destroy(&attr);
		return -ENOMEM;
	}
	pthread_condattr_destroy(&attr);
	if (pthread_mutex_init(&f->lock, NULL) != 0) {
		pthread_cond_destroy(&f->wake);
		return -ENOMEM;
	}
	*ret = TAKE_PTR(f);
	return 0;
}

void ap_fleet_free(struct ap_fleet *f)
{
	if (!f)
		return;
	(void)lease_stop(f, false);
	pthread_cond_destroy(&f->wake);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

int ap_fleet_slot(const struct ap_fleet *f)
{
	return f->slot;
}

/* --- slots ----------------------------------------------------------------------------- */

struct taken {
	bool *slot;
	unsigned n;
};

static int note_taken(const char *key, const char *value, int64_t lease, void *userdata)
{
	struct taken *t = userdata;
	char *end;
	unsigned long n;

	if (!ap_startswith(key, "slot/") || !key[5])
		return 0;
	errno = 0;
	n = strtoul(key + 5, &end, 10);
	if (errno == 0 && !*end && n < t->n)
		t->slot[n] = true;
	return 0;
}

/* One round: 1 with a slot taken, 0 when all are taken, <0 on error. */
static int try_slots(struct ap_fleet *f, const char *commit)
{
	_cleanup_free_ bool *busy = calloc(f->c->max_parallel, sizeof(bool));
	struct taken t = { busy, f->c->max_parallel };
	char value[VALUE_MAX], key[32];
	int r;

	if (!busy)
		return -ENOMEM;
	r = fleet_range(f, "slot/", true, note_taken, &t);
	if (r < 0)
		return r;
	snprintf(value, sizeof(value), "%s %s", f->c->host, commit);
	for (unsigned n = 0; n < t.n; n++) {
		if (busy[n])
			continue;
		if (!f->lease) {
			r = lease_start(f);
			if (r < 0)
				return r;
		}
		snprintf(key, sizeof(key), "slot/%u", n);
		r = fleet_create(f, key, value, f->lease, NULL, NULL);
		if (r == -ENOLINK) { /* the lease expired (etcd was away too long): a new one */
			(void)lease_stop(f, false);
			r = lease_start(f);
			if (r >= 0)
				r = fleet_create(f, key, value, f->lease, NULL, NULL);
			if (r == -ENOLINK)
				r = fleet_failed(f, r, "create", key, "the lease expired at once");
		}
		if (r < 0)
			return r;
		if (r > 0) {
			f->slot = (int)n;
			return 1;
		}
	}
	return 0;
}

static void sleep_usec(uint64_t usec)
{
	struct timespec at = monotonic_after(usec);

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR)
		;
}

int ap_fleet_slot_acquire(struct ap_fleet *f, const char *commit, uint64_t timeout_usec,
			  uint64_t *ret_waited_usec)
{
	uint64_t start = ap_now_monotonic_usec(), backoff = BACKOFF_MIN_USEC, waited = 0;
	bool reached = false, away = false;
	int r;

	if (ret_waited_usec)
		*ret_waited_usec = 0;
	if (!fleet_commit_ok(commit))
		return ap_log_error(-EINVAL, "fleet: '%s' is not a commit id", commit);
	if (f->slot >= 0)
		return -EBUSY;
	for (;;) {
		/* once etcd answered, its going away (a restart) is waited out, said once */
		f->quiet = reached;
		r = try_slots(f, commit);
		waited = ap_now_monotonic_usec() - start;
		if (r > 0)
			break;
		if (r < 0 && (r != -EHOSTUNREACH || !reached))
			break; /* logged where it failed */
		if (r == -EHOSTUNREACH && !away)
			ap_log_warning("fleet: etcd went away while waiting for a slot; trying "
				       "again until the lock timeout");
		away = r == -EHOSTUNREACH;
		reached = true;
		if (waited >= timeout_usec) {
			r = away ? -EHOSTUNREACH : -ETIMEDOUT;
			break;
		}
		/* Watching the slots wakes a waiting host as soon as one is free; a watch that
		 * cannot be used leaves the backoff, which also bounds every wait. */
		if (!away && fleet_watch_slots(f, timeout_usec - waited < WATCH_USEC
						  ? timeout_usec - waited : WATCH_USEC) >= 0)
			continue;
		sleep_usec(backoff < timeout_usec - waited ? backoff : timeout_usec - waited);
		backoff = backoff * 2 < BACKOFF_MAX_USEC ? backoff * 2 : BACKOFF_MAX_USEC;
	}
	if (ret_waited_usec)
		*ret_waited_usec = waited;
	if (away && r == -EHOSTUNREACH)
		ap_log_error(r, "fleet: no etcd endpoint answered until the lock timeout");
	f->quiet = false;
	if (r > 0)
		return 0;
	(void)lease_stop(f, r != -EHOSTUNREACH);
	return r;
}

int ap_fleet_slot_release(struct ap_fleet *f)
{
	char key[32];
	int r;

	if (f->slot < 0) {
		(void)lease_stop(f, true);
		return 0;
	}
	snprintf(key, sizeof(key), "slot/%d", f->slot);
	pthread_mutex_lock(&f->lock);
	r = f->keepalive_error;
	pthread_mutex_unlock(&f->lock);
	if (r == -ENOLINK)
		ap_log_warning("fleet: the lease of '%s%s' expired while it was held (etcd away "
			       "longer than lease_ttl): another host may have had the slot",
			       f->prefix, key);
	r = fleet_delete_if_leased(f, key, f->lease);
	/* without an answer the lease still frees the slot at its expiry */
	if (r >= 0)
		r = lease_stop(f, true);
	else
		(void)lease_stop(f, false);
	f->slot = -1;
	return r;
}

/* --- marks ----------------------------------------------------------------------------- */

static int put_now(struct ap_fleet *f, const char *what, const char *commit)
{
	char key[KEY_MAX], value[32];

	if (!fleet_commit_ok(commit))
		return ap_log_error(-EINVAL, "fleet: '%s' is not a commit id", commit);
	snprintf(key, sizeof(key), "%s/%s/%s", what, commit, f->c->host);
	snprintf(value, sizeof(value), "%llu", ap_now_realtime_usec());
	return fleet_put(f, key, value);
}

int ap_fleet_mark_healthy(struct ap_fleet *f, const char *commit)
{
	return put_now(f, "healthy", commit);
}

int ap_fleet_mark_started(struct ap_fleet *f, const char *commit)
{
	return put_now(f, "started", commit);
}

int ap_fleet_mark_bad(struct ap_fleet *f, const char *commit, const char *reason)
{
	char key[KEY_MAX], value[VALUE_MAX];

	if (!fleet_commit_ok(commit))
		return ap_log_error(-EINVAL, "fleet: '%s' is not a commit id", commit);
	snprintf(key, sizeof(key), "bad/%s", commit);
	snprintf(value, sizeof(value), "%s %.*s", f->c->host, REASON_MAX, reason ? reason : "");
	return fleet_put(f, key, value);
}

static int copy_value(const char *key, const char *value, int64_t lease, void *userdata)
{
	char **ret = userdata;

	free(*ret);
	*ret = strdup(value);
	return *ret ? 0 : -ENOMEM;
}

int ap_fleet_is_bad(struct ap_fleet *f, const char *commit, char **ret_why)
{
	_cleanup_free_ char *value = NULL;
	char key[KEY_MAX];
	char *sp, *why;
	int r;

	if (!fleet_commit_ok(commit))
		return ap_log_error(-EINVAL, "fleet: '%s' is not a commit id", commit);
	snprintf(key, sizeof(key), "bad/%s", commit);
	r = fleet_range(f, key, false, copy_value, &value);
	if (r < 0)
		return r;
	if (!value)
		return 0;
	sp = strchr(value, ' ');
	why = sp ? ap_strdupf("%.*s: %s", (int)(sp - value), value, sp + 1) : strdup(value);
	if (!why)
		return -ENOMEM;
	if (ret_why)
		*ret_why = why;
	else
		free(why);
	return 1;
}

int ap_fleet_record_host(struct ap_fleet *f, const char *commit, const char *result)
{
	char key[KEY_MAX], value[VALUE_MAX];

	if (!fleet_commit_ok(commit) || !name_ok(result))
		return ap_log_error(-EINVAL, "fleet: bad commit '%s' or result '%s'", commit,
				    result ? result : "");
	snprintf(key, sizeof(key), "host/%s", f->c->host);
	snprintf(value, sizeof(value), "%s %s %llu", commit, result, ap_now_realtime_usec());
	return fleet_put(f, key, value);
}

/* --- the canary gate ------------------------------------------------------------------- */

/* The host names under started/COMMIT/, healthy/COMMIT/ or (values) canary/COMMIT/. */
struct names {
	struct ap_strv_builder b;
	bool values;
};

static int collect_name(const char *key, const char *value, int64_t lease, void *userdata)
{
	struct names *n = userdata;
	const char *slash = strrchr(key, '/');

	return ap_strv_builder_push(&n->b, n->values ? value : slash ? slash + 1 : key);
}

int fleet_names_of(struct ap_fleet *f, const char *what, const char *commit, bool values,
		   char ***ret)
{
	struct names n = { .values = values };
	char key[KEY_MAX];
	int r;

	snprintf(key, sizeof(key), "%s/%s/", what, commit);
	r = fleet_range(f, key, true, collect_name, &n);
	if (r < 0) {
		ap_strv_builder_clear(&n.b);
		return r;
	}
	*ret = ap_strv_builder_take(&n.b);
	return 0;
}

static void why_waiting(char *ret_why, size_t size, size_t missing, size_t of, const char *commit,
			char *const *canaries)
{
	struct ap_buf list = { 0 };
	char c[13];

	short_commit(commit, c);
	for (size_t i = 0; canaries && canaries[i]; i++)
		if (ap_buf_printf(&list, "%s%s", i ? ", " : "", canaries[i]) < 0)
			break;
	snprintf(ret_why, size, "waiting for %zu of %zu canary host(s) to report %s healthy "
		 "(canary: %s)", missing, of, c, list.data ? list.data : "none yet");
	ap_buf_clear(&list);
}

/* canary: [a, b]: the listed hosts go; the others wait for every one of them. */
static int gate_listed(struct ap_fleet *f, const char *commit, char *const *healthy,
		       char *ret_why, size_t size)
{
	char *const *list = f->c->canary_hosts;
	size_t missing = 0;

	if (ap_strv_contains(list, f->c->host))
		return 1;
	for (size_t i = 0; list[i]; i++)
		if (!ap_strv_contains(healthy, list[i]))
			missing++;
	if (missing == 0)
		return 1;
	why_waiting(ret_why, size, missing, ap_strv_length(list), commit, list);
	return 0;
}

/* canary: N: claims one of canary/COMMIT/0..N-1 for this host (with started/COMMIT/HOST in
 * the same transaction). 1 claimed, 0 all claimed. */
static int claim_canary(struct ap_fleet *f, const char *commit)
{
	char key[KEY_MAX], started[KEY_MAX], now[32];
	int r;

	snprintf(started, sizeof(started), "started/%s/%s", commit, f->c->host);
	snprintf(now, sizeof(now), "%llu", ap_now_realtime_usec());
	for (unsigned i = 0; i < f->c->canary; i++) {
		snprintf(key, sizeof(key), "canary/%s/%u", commit, i);
		r = fleet_create(f, key, f->c->host, 0, started, now);
		if (r != 0)
			return r;
	}
	return 0;
}

int ap_fleet_may_start(struct ap_fleet *f, const char *commit, char *ret_why, size_t size)
{
	_cleanup_strv_free_ char **started = NULL, **healthy = NULL, **canaries = NULL;
	size_t n_healthy;
	int r;

	if (!fleet_commit_ok(commit))
		return ap_log_error(-EINVAL, "fleet: '%s' is not a commit id", commit);
	if (ret_why && size)
		ret_why[0] = '\0';
	if (f->c->canary == 0 && !f->c->canary_hosts)
		return 1;
	r = fleet_names_of(f, "started", commit, false, &started);
	if (r < 0)
		return r;
	if (ap_strv_contains(started, f->c->host))
		return 1;
	r = fleet_names_of(f, "healthy", commit, false, &healthy);
	if (r < 0)
		return r;
	if (f->c->canary_hosts)
		return gate_listed(f, commit, healthy, ret_why, size);
	r = claim_canary(f, commit);
	if (r != 0)
		return r;
	n_healthy = ap_strv_length(healthy);
	if (n_healthy >= f->c->canary)
		return 1;
	r = fleet_names_of(f, "canary", commit, true, &canaries);
	if (r < 0)
		return r;
	why_waiting(ret_why, size, f->c->canary - n_healthy, f->c->canary, commit, canaries);
	return 0;
}
