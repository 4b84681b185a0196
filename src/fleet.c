/* The fleet's slots, marks and canary gate in etcd (see fleet.h), through etcd's v3 JSON
 * gateway: POST /v3/kv/range, /v3/kv/txn, /v3/kv/put, /v3/lease/{grant,keepalive,revoke}.
 *
 * Request bodies are formatted here: every string in them is base64 (keys and values) or a
 * decimal number, so nothing needs JSON escaping. Answers are parsed with json-c (included
 * nowhere else) with a bounded depth and size. The gateway writes 64-bit numbers as strings
 * and leaves out fields whose value is zero, false or empty (proto3), so a missing
 * "succeeded" is false, a missing "kvs" is no key and a missing "TTL" is a lease gone.
 *
 * Threads: the lease keep-alive runs in its own thread while a lease is held; it touches only
 * the lease id, its own endpoint index and the fields under f->lock. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "digest.h"
#include "fleet.h"
#include "http.h"
#include "log.h"
#include "util.h"

#define USEC_PER_SEC 1000000ULL
#define REQUEST_USEC (5 * USEC_PER_SEC)     /* one request, connecting included */
#define ANSWER_MAX (4u * 1024 * 1024)        /* an answer longer than this is refused */
#define KEY_MAX 512                          /* a key, before base64 */
#define VALUE_MAX 1024                       /* a value, before base64 */
#define B64_MAX (4 * ((VALUE_MAX + 2) / 3) + 1)
#define NAME_MAX_LEN 128                     /* group and host names */
#define REASON_MAX 512                       /* what mark_bad keeps of a reason */
#define PARALLEL_MAX 1024
#define BACKOFF_MIN_USEC (100 * 1000ULL)
#define BACKOFF_MAX_USEC (2 * USEC_PER_SEC)
#define WATCH_USEC (10 * USEC_PER_SEC)        /* one watch; the slots are read again after it */
#define KEEPALIVE_RETRY_USEC (200 * 1000ULL)
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

static bool name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > NAME_MAX_LEN)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* A commit id: lower-case hex (SHA-1 or SHA-256). */
static bool commit_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n >= 4 && n <= 64 && strspn(s, "0123456789abcdef") == n;
}

static void short_commit(const char *commit, char out[13])
{
	snprintf(out, 13, "%s", commit);
}

/* --- one request ---------------------------------------------------------------------- */

/* Errors that mean "this endpoint does not answer": try the next one. 503 is etcd without a
 * leader (starting, restarting, lost quorum). */
static bool unreachable(int r, long status)
{
	return r == -ECONNREFUSED || r == -ETIMEDOUT || r == -EHOSTUNREACH || r == -ECONNRESET ||
	       (r == -EBADMSG && status == 503);
}

static int parse_answer(struct ap_buf *a, json_object **ret, char *why, size_t why_size)
{
	json_tokener *tok = json_tokener_new_ex(32);
	json_object *o;

	if (!tok)
		return -ENOMEM;
	o = json_tokener_parse_ex(tok, a->data ? a->data : "", (int)a->len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(o, json_type_object)) {
		snprintf(why, why_size, "the answer is not a JSON object");
		json_object_put(o);
		json_tokener_free(tok);
		return -EPROTO;
	}
	json_tokener_free(tok);
	*ret = o;
	return 0;
}

/* etcd's error message of a non-2xx answer, "lease not found" as -ENOLINK. */
static int answer_error(json_object *o, long status, char *why, size_t why_size)
{
	json_object *m = NULL;
	const char *msg;

	if (!json_object_object_get_ex(o, "error", &m) && !json_object_object_get_ex(o, "message", &m))
		m = NULL;
	msg = m ? json_object_get_string(m) : NULL;
	snprintf(why, why_size, "HTTP %ld: %s", status, msg ? msg : "(no message)");
	if (msg && strstr(msg, "lease not found"))
		return -ENOLINK;
	return -EBADMSG;
}

/* POSTs body to path on the first endpoint that answers, starting at *endpoint (updated to
 * the one that answered). why gets "ENDPOINT: what happened". */
static int request_at(const struct ap_fleet *f, size_t *endpoint, uint64_t timeout_usec,
		      const char *path, const struct ap_buf *body, json_object **ret, char *why,
		      size_t why_size)
{
	struct ap_buf tried = { 0 };
	int r = -EHOSTUNREACH;

	for (size_t k = 0; k < f->n_endpoints; k++) {
		size_t i = (*endpoint + k) % f->n_endpoints;
		const char *ep = f->c->etcd[i];
		size_t eplen = strlen(ep);
		_cleanup_free_ char *url = NULL;
		struct ap_buf answer = { 0 };
		char w[256];
		long status = 0;
		json_object *o = NULL;

		while (eplen > 0 && ep[eplen - 1] == '/')
			eplen--;
		url = ap_strdupf("%.*s%s", (int)eplen, ep, path);
		if (!url) {
			r = -ENOMEM;
			break;
		}
		struct ap_http_request rq = {
			.url = url, .content_type = "application/json", .body = body->data,
			.len = body->len, .ca_file = f->c->ca_file, .cert_file = f->c->cert_file,
			.key_file = f->c->key_file, .timeout_usec = timeout_usec,
			.answer = &answer, .answer_max = ANSWER_MAX,
		};
		r = ap_http_post(&rq, &status, w, sizeof(w));
		if (unreachable(r, status)) {
			ap_buf_clear(&answer);
			if (ap_buf_printf(&tried, "%s%s: %s", tried.len ? "; " : "", ep, w) < 0) {
				r = -ENOMEM;
				break;
			}
			r = -EHOSTUNREACH;
			continue;
		}
		*endpoint = i;
		if (r < 0 && r != -EBADMSG) {
			snprintf(why, why_size, "%s: %s", ep, w);
			ap_buf_clear(&answer);
			break;
		}
		bool not_2xx = r == -EBADMSG;

		r = parse_answer(&answer, &o, w, sizeof(w));
		ap_buf_clear(&answer);
		if (r < 0 && not_2xx) {
			snprintf(w, sizeof(w), "HTTP %ld", status);
			r = -EBADMSG;
		} else if (r >= 0 && not_2xx) {
			r = answer_error(o, status, w, sizeof(w));
			json_object_put(o);
		}
		if (r < 0) {
			snprintf(why, why_size, "%s: %s", ep, w);
			break;
		}
		*ret = o;
		break;
	}
	if (r == -EHOSTUNREACH)
		snprintf(why, why_size, "no etcd endpoint answers (%s)", tried.data ? tried.data : "");
	ap_buf_clear(&tried);
	return r;
}

static int request(struct ap_fleet *f, const char *path, const struct ap_buf *body,
		   json_object **ret, char *why, size_t why_size)
{
	return request_at(f, &f->endpoint, REQUEST_USEC, path, body, ret, why, why_size);
}

static int failed(const struct ap_fleet *f, int r, const char *what, const char *key,
		  const char *why)
{
	if (r == -EHOSTUNREACH && f->quiet)
		return r;
	return ap_log_error(r, "fleet: cannot %s '%s': %s", what, key, why);
}

/* --- JSON pieces ---------------------------------------------------------------------- */

static int64_t get_i64(json_object *o, const char *name)
{
	json_object *v;

	/* json-c reads a number written as a string too, as the gateway writes int64 */
	return json_object_object_get_ex(o, name, &v) ? json_object_get_int64(v) : 0;
}

static bool get_bool(json_object *o, const char *name)
{
	json_object *v;

	return json_object_object_get_ex(o, name, &v) && json_object_get_boolean(v);
}

/* Decodes a base64 field of o into out (size bytes, NUL-terminated); "" when missing.
 * -EPROTO for bad base64, a NUL inside, or a value too long. */
static int get_b64(json_object *o, const char *name, char *out, size_t size)
{
	json_object *v;
	const char *s;
	size_t n = 0;

	out[0] = '\0';
	if (!json_object_object_get_ex(o, name, &v))
		return 0;
	s = json_object_get_string(v);
	if (!s || ap_digest_base64_decode(s, strlen(s), (unsigned char *)out, size - 1, &n) < 0 ||
	    memchr(out, '\0', n))
		return -EPROTO;
	out[n] = '\0';
	return 0;
}

/* Appends fmt to b with each "%b" replaced by the base64 of the next (const char *) argument
 * and each "%l" by the next int64_t in decimal (the gateway's int64 are strings). The only
 * two directives: nothing else in etcd's requests needs formatting or escaping. */
static int jsonf(struct ap_buf *b, const char *fmt, ...)
{
	va_list ap;
	int r = 0;

	va_start(ap, fmt);
	for (const char *p = fmt; r >= 0 && *p; p++) {
		char enc[B64_MAX];
		const char *s;

		if (p[0] != '%' || (p[1] != 'b' && p[1] != 'l')) {
			r = ap_buf_append(b, p, 1);
			continue;
		}
		if (*++p == 'l') {
			r = ap_buf_printf(b, "%" PRId64, va_arg(ap, int64_t));
			continue;
		}
		s = va_arg(ap, const char *);
		r = ap_digest_base64_encode(s, strlen(s), enc, sizeof(enc));
		if (r >= 0)
			r = ap_buf_printf(b, "%s", enc);
	}
	va_end(ap);
	return r;
}

/* The first key after every key starting with prefix (range_end of a prefix range). */
static void prefix_end(const char *prefix, char *out, size_t size)
{
	size_t n = strlen(prefix);

	snprintf(out, size, "%s", prefix);
	/* the prefixes here end in '/', never in 0xff */
	out[n - 1] = (char)(out[n - 1] + 1);
}

/* The key under the group's prefix. */
static int full_key(const struct ap_fleet *f, const char *key, char full[KEY_MAX])
{
	return (size_t)snprintf(full, KEY_MAX, "%s%s", f->prefix, key) >= KEY_MAX ? -ENAMETOOLONG
										    : 0;
}

/* Sends the request body b (freed) to path; logs a failure as "cannot WHAT 'FULL'", except
 * -ENOLINK when quiet_nolink (the caller takes a new lease). */
static int call(struct ap_fleet *f, const char *path, struct ap_buf *b, int r, json_object **ret,
		const char *what, const char *full, bool quiet_nolink)
{
	char why[WHY_MAX] = "out of memory";
	json_object *o = NULL;

	if (r >= 0)
		r = request(f, path, b, &o, why, sizeof(why));
	ap_buf_clear(b);
	if (r < 0)
		return r == -ENOLINK && quiet_nolink ? r : failed(f, r, what, full, why);
	if (ret)
		*ret = o;
	else
		json_object_put(o);
	return 0;
}

/* --- key/value operations --------------------------------------------------------------- */

typedef int (*kv_fn)(const char *key, const char *value, int64_t lease, void *userdata);

/* Calls fn for each key under prefix (prefix true) or for key itself. key is relative to
 * the group's prefix, and so is the key fn gets. */
static int range(struct ap_fleet *f, const char *key, bool prefix, kv_fn fn, void *userdata)
{
	char full[KEY_MAX], end[KEY_MAX];
	struct ap_buf b = { 0 };
	json_object *o = NULL, *kvs;
	size_t plen = strlen(f->prefix);
	int r = full_key(f, key, full);

	if (r < 0)
		return r;
	prefix_end(full, end, sizeof(end));
	r = jsonf(&b, prefix ? "{\"key\":\"%b\",\"range_end\":\"%b\"}" : "{\"key\":\"%b\"}", full,
		  end);
	r = call(f, "/v3/kv/range", &b, r, &o, "read", full, false);
	if (r < 0)
		return r;
	if (json_object_object_get_ex(o, "header", &kvs))
		f->seen_rev = get_i64(kvs, "revision");
	if (json_object_object_get_ex(o, "kvs", &kvs) && json_object_is_type(kvs, json_type_array))
		for (size_t i = 0; r >= 0 && i < json_object_array_length(kvs); i++) {
			json_object *kv = json_object_array_get_idx(kvs, i);
			char k[KEY_MAX], v[VALUE_MAX];

			r = get_b64(kv, "key", k, sizeof(k));
			if (r >= 0)
				r = get_b64(kv, "value", v, sizeof(v));
			if (r < 0)
				r = failed(f, r, "read", full, "a key or value is not base64 of text");
			else if (ap_startswith(k, f->prefix))
				r = fn(k + plen, v, get_i64(kv, "lease"), userdata);
		}
	json_object_put(o);
	return r;
}

static int put(struct ap_fleet *f, const char *key, const char *value)
{
	char full[KEY_MAX];
	struct ap_buf b = { 0 };
	int r = full_key(f, key, full);

	if (r < 0)
		return r;
	r = jsonf(&b, "{\"key\":\"%b\",\"value\":\"%b\"}", full, value);
	return call(f, "/v3/kv/put", &b, r, NULL, "write", full, false);
}

/* Creates key = value (on lease, 0 for none) only if key does not exist, and then also
 * key2 = value2 when key2 is not NULL. 1 when created, 0 when key existed. -ENOLINK: the lease
 * is gone (not logged: the caller takes a new one). */
static int create(struct ap_fleet *f, const char *key, const char *value, int64_t lease,
		  const char *key2, const char *value2)
{
	char full[KEY_MAX], full2[KEY_MAX];
	struct ap_buf b = { 0 };
	json_object *o = NULL;
	int r = full_key(f, key, full);

	if (r >= 0)
		r = full_key(f, key2 ? key2 : "", full2);
	if (r < 0)
		return r;
	r = jsonf(&b, "{\"compare\":[{\"key\":\"%b\",\"target\":\"CREATE\",\"result\":\"EQUAL\","
		  "\"create_revision\":\"0\"}],\"success\":[{\"request_put\":{\"key\":\"%b\","
		  "\"value\":\"%b\",\"lease\":\"%l\"}}", full, full, value, lease);
	if (r >= 0 && key2)
		r = jsonf(&b, ",{\"request_put\":{\"key\":\"%b\",\"value\":\"%b\"}}", full2, value2);
	if (r >= 0)
		r = jsonf(&b, "]}");
	r = call(f, "/v3/kv/txn", &b, r, &o, "create", full, true);
	if (r < 0)
		return r;
	r = get_bool(o, "succeeded");
	json_object_put(o);
	return r;
}

/* Deletes key if it is attached to lease. */
static int delete_if_leased(struct ap_fleet *f, const char *key, int64_t lease)
{
	char full[KEY_MAX];
	struct ap_buf b = { 0 };
	int r = full_key(f, key, full);

	if (r < 0)
		return r;
	r = jsonf(&b, "{\"compare\":[{\"key\":\"%b\",\"target\":\"LEASE\",\"result\":\"EQUAL\","
		  "\"lease\":\"%l\"}],\"success\":[{\"request_delete_range\":{\"key\":\"%b\"}}]}",
		  full, lease, full);
	return call(f, "/v3/kv/txn", &b, r, NULL, "delete", full, false);
}

/* --- the lease and its keep-alive ------------------------------------------------------ */

static int lease_grant(struct ap_fleet *f, int64_t *ret)
{
	int64_t ttl = (int64_t)((f->c->lease_ttl_usec + USEC_PER_SEC - 1) / USEC_PER_SEC), id;
	struct ap_buf b = { 0 };
	json_object *o = NULL;
	int r;

	r = jsonf(&b, "{\"TTL\":\"%l\"}", ttl);
	r = call(f, "/v3/lease/grant", &b, r, &o, "grant", "lease", false);
	if (r < 0)
		return r;
	id = get_i64(o, "ID");
	json_object_put(o);
	if (id <= 0)
		return failed(f, -EPROTO, "grant", "lease", "the answer has no lease ID");
	*ret = id;
	return 0;
}

/* 0 when the lease is alive, -ENOLINK when etcd no longer knows it. */
static int lease_keepalive(const struct ap_fleet *f, size_t *endpoint, int64_t lease,
			   uint64_t timeout_usec)
{
	struct ap_buf b = { 0 };
	json_object *o = NULL, *res;
	char why[WHY_MAX];
	int r;

	r = jsonf(&b, "{\"ID\":\"%l\"}", lease);
	if (r >= 0)
		r = request_at(f, endpoint, timeout_usec, "/v3/lease/keepalive", &b, &o, why,
			       sizeof(why));
	ap_buf_clear(&b);
	if (r < 0)
		return r;
	/* a stream of one message: {"result":{"ID":…,"TTL":…}}; TTL 0 or missing: no lease */
	if (!json_object_object_get_ex(o, "result", &res) || get_i64(res, "TTL") <= 0)
		r = -ENOLINK;
	json_object_put(o);
	return r;
}

static int lease_revoke(struct ap_fleet *f, int64_t lease)
{
	struct ap_buf b = { 0 };
	int r = jsonf(&b, "{\"ID\":\"%l\"}", lease);

	r = call(f, "/v3/lease/revoke", &b, r, NULL, "revoke", "lease", true);
	/* -ENOLINK: expired already, which is what revoking wanted */
	return r == -ENOLINK ? 0 : r;
}

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
		r = lease_keepalive(f, &endpoint, lease, period > 0 ? period : 1);
		pthread_mutex_lock(&f->lock);
		f->keepalive_error = r;
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

static int lease_start(struct ap_fleet *f)
{
	int r = lease_grant(f, &f->lease);

	if (r < 0)
		return r;
	f->stop = false;
	f->keepalive_error = 0;
	f->keepalive_endpoint = f->endpoint;
	r = -pthread_create(&f->keepalive, NULL, keepalive_main, f);
	if (r < 0) {
		(void)lease_revoke(f, f->lease);
		f->lease = 0;
		return ap_log_error(r, "fleet: cannot start the lease keep-alive: %s", strerror(-r));
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
		r = lease_revoke(f, f->lease);
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
			return ap_log_error(-EINVAL, "fleet: canary host '%s' is not a host name", *h);
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
	r = range(f, "slot/", true, note_taken, &t);
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
		r = create(f, key, value, f->lease, NULL, NULL);
		if (r == -ENOLINK) { /* the lease expired (etcd was away too long): a new one */
			(void)lease_stop(f, false);
			r = lease_start(f);
			if (r >= 0)
				r = create(f, key, value, f->lease, NULL, NULL);
			if (r == -ENOLINK)
				r = failed(f, r, "create", key, "the lease expired at once");
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

/* Waits until a slot key changes after the revision the last read saw (a slot released, or
 * its lease expired), through etcd's watch, at most timeout_usec: 1 when one changed, 0 when
 * none did, <0 when the watch cannot be used (the caller then sleeps instead). Not logged:
 * the next round of slots says what is wrong. */
static int watch_slots(struct ap_fleet *f, uint64_t timeout_usec)
{
	char full[KEY_MAX], end[KEY_MAX], why[WHY_MAX];
	const char *ep = f->c->etcd[f->endpoint];
	size_t eplen = strlen(ep);
	_cleanup_free_ char *url = NULL;
	struct ap_buf b = { 0 }, answer = { 0 };
	int r = full_key(f, "slot/", full);

	while (eplen > 0 && ep[eplen - 1] == '/')
		eplen--;
	url = ap_strdupf("%.*s/v3/watch", (int)eplen, ep);

	if (r < 0 || f->seen_rev <= 0 || !url)
		return r < 0 ? r : -ENOENT;
	prefix_end(full, end, sizeof(end));
	r = jsonf(&b, "{\"create_request\":{\"key\":\"%b\",\"range_end\":\"%b\","
		  "\"start_revision\":\"%l\"}}", full, end, f->seen_rev + 1);
	if (r >= 0) {
		/* the stream's first line says the watch exists; a second is an event */
		struct ap_http_request rq = {
			.url = url, .content_type = "application/json", .body = b.data,
			.len = b.len, .ca_file = f->c->ca_file, .cert_file = f->c->cert_file,
			.key_file = f->c->key_file, .timeout_usec = timeout_usec,
			.answer = &answer, .answer_max = ANSWER_MAX, .answer_lines = 2,
		};
		r = ap_http_post(&rq, NULL, why, sizeof(why));
	}
	ap_buf_clear(&b);
	ap_buf_clear(&answer);
	return r == -ETIMEDOUT ? 0 : r < 0 ? r : 1;
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
	if (!commit_ok(commit))
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
			ap_log_warning("fleet: etcd went away while waiting for a slot; trying again "
				       "until the lock timeout");
		away = r == -EHOSTUNREACH;
		reached = true;
		if (waited >= timeout_usec) {
			r = away ? -EHOSTUNREACH : -ETIMEDOUT;
			break;
		}
		/* Watching the slots wakes a waiting host as soon as one is free; a watch that
		 * cannot be used leaves the backoff, which also bounds every wait. */
		if (!away && watch_slots(f, timeout_usec - waited < WATCH_USEC
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
	r = delete_if_leased(f, key, f->lease);
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

	if (!commit_ok(commit))
		return ap_log_error(-EINVAL, "fleet: '%s' is not a commit id", commit);
	snprintf(key, sizeof(key), "%s/%s/%s", what, commit, f->c->host);
	snprintf(value, sizeof(value), "%llu", ap_now_realtime_usec());
	return put(f, key, value);
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

	if (!commit_ok(commit))
		return ap_log_error(-EINVAL, "fleet: '%s' is not a commit id", commit);
	snprintf(key, sizeof(key), "bad/%s", commit);
	snprintf(value, sizeof(value), "%s %.*s", f->c->host, REASON_MAX, reason ? reason : "");
	return put(f, key, value);
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

	if (!commit_ok(commit))
		return ap_log_error(-EINVAL, "fleet: '%s' is not a commit id", commit);
	snprintf(key, sizeof(key), "bad/%s", commit);
	r = range(f, key, false, copy_value, &value);
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

	if (!commit_ok(commit) || !name_ok(result))
		return ap_log_error(-EINVAL, "fleet: bad commit '%s' or result '%s'", commit,
				    result ? result : "");
	snprintf(key, sizeof(key), "host/%s", f->c->host);
	snprintf(value, sizeof(value), "%s %s %llu", commit, result, ap_now_realtime_usec());
	return put(f, key, value);
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

static int names_of(struct ap_fleet *f, const char *what, const char *commit, bool values,
		    char ***ret)
{
	struct names n = { .values = values };
	char key[KEY_MAX];
	int r;

	snprintf(key, sizeof(key), "%s/%s/", what, commit);
	r = range(f, key, true, collect_name, &n);
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
		r = create(f, key, f->c->host, 0, started, now);
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

	if (!commit_ok(commit))
		return ap_log_error(-EINVAL, "fleet: '%s' is not a commit id", commit);
	if (ret_why && size)
		ret_why[0] = '\0';
	if (f->c->canary == 0 && !f->c->canary_hosts)
		return 1;
	r = names_of(f, "started", commit, false, &started);
	if (r < 0)
		return r;
	if (ap_strv_contains(started, f->c->host))
		return 1;
	r = names_of(f, "healthy", commit, false, &healthy);
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
	r = names_of(f, "canary", commit, true, &canaries);
	if (r < 0)
		return r;
	why_waiting(ret_why, size, f->c->canary - n_healthy, f->c->canary, commit, canaries);
	return 0;
}

/* --- status ---------------------------------------------------------------------------- */

/* One more zeroed element at the end of *array (n elements of size bytes), or NULL. */
static void *append_one(void *array, size_t n, size_t size)
{
	char **a = array, *more = realloc(*a, (n + 1) * size);

	if (!more)
		return NULL;
	*a = more;
	return memset(more + n * size, 0, size);
}

/* "HOST REST" into its two parts. */
static int split_host(const char *value, char **ret_host, char **ret_rest)
{
	const char *sp = strchr(value, ' ');

	*ret_host = sp ? strndup(value, (size_t)(sp - value)) : strdup(value);
	*ret_rest = strdup(sp ? sp + 1 : "");
	return *ret_host && *ret_rest ? 0 : -ENOMEM;
}

static int collect_slot(const char *key, const char *value, int64_t lease, void *userdata)
{
	struct ap_fleet_status *s = userdata;
	struct ap_fleet_slot_holder *h;
	unsigned long n;
	char *end;

	errno = 0;
	n = strtoul(key + strlen("slot/"), &end, 10);
	if (errno || *end || n > PARALLEL_MAX)
		return 0;
	h = append_one(&s->slots, s->n_slots, sizeof(*h));
	if (!h)
		return -ENOMEM;
	s->n_slots++;
	h->n = (unsigned)n;
	return split_host(value, &h->host, &h->commit);
}

static int collect_host(const char *key, const char *value, int64_t lease, void *userdata)
{
	struct ap_fleet_status *s = userdata;
	struct ap_fleet_host_state *h;
	char commit[VALUE_MAX], result[VALUE_MAX];
	unsigned long long usec = 0;

	if (sscanf(value, "%1023s %1023s %llu", commit, result, &usec) < 2)
		return 0;
	h = append_one(&s->hosts, s->n_hosts, sizeof(*h));
	if (!h)
		return -ENOMEM;
	s->n_hosts++;
	h->usec = usec;
	h->host = strdup(key + strlen("host/"));
	h->commit = strdup(commit);
	h->result = strdup(result);
	return h->host && h->commit && h->result ? 0 : -ENOMEM;
}

static int collect_bad(const char *key, const char *value, int64_t lease, void *userdata)
{
	struct ap_fleet_status *s = userdata;
	struct ap_fleet_bad *b = append_one(&s->bad, s->n_bad, sizeof(*b));

	if (!b)
		return -ENOMEM;
	s->n_bad++;
	b->commit = strdup(key + strlen("bad/"));
	return b->commit ? split_host(value, &b->host, &b->reason) : -ENOMEM;
}

int ap_fleet_status(struct ap_fleet *f, const char *commit, struct ap_fleet_status *ret)
{
	struct ap_fleet_status s = { 0 };
	int r;

	if (commit && !commit_ok(commit))
		return ap_log_error(-EINVAL, "fleet: '%s' is not a commit id", commit);
	r = range(f, "slot/", true, collect_slot, &s);
	if (r >= 0)
		r = range(f, "host/", true, collect_host, &s);
	if (r >= 0)
		r = range(f, "bad/", true, collect_bad, &s);
	if (r >= 0 && commit)
		r = names_of(f, "started", commit, false, &s.started);
	if (r >= 0 && commit)
		r = names_of(f, "healthy", commit, false, &s.healthy);
	if (r >= 0 && commit && f->c->canary_hosts)
		r = ap_strv_copy(f->c->canary_hosts, &s.canaries);
	else if (r >= 0 && commit)
		r = names_of(f, "canary", commit, true, &s.canaries);
	if (r < 0) {
		ap_fleet_status_clear(&s);
		return r;
	}
	*ret = s;
	return 0;
}

void ap_fleet_status_clear(struct ap_fleet_status *s)
{
	for (size_t i = 0; i < s->n_slots; i++) {
		free(s->slots[i].host);
		free(s->slots[i].commit);
	}
	for (size_t i = 0; i < s->n_hosts; i++) {
		free(s->hosts[i].host);
		free(s->hosts[i].commit);
		free(s->hosts[i].result);
	}
	for (size_t i = 0; i < s->n_bad; i++) {
		free(s->bad[i].commit);
		free(s->bad[i].host);
		free(s->bad[i].reason);
	}
	free(s->slots);
	free(s->hosts);
	free(s->bad);
	ap_strv_free(s->started);
	ap_strv_free(s->healthy);
	ap_strv_free(s->canaries);
	*s = (struct ap_fleet_status){ 0 };
}
