/* The fleet's etcd transport (see fleet-private.h): etcd's v3 JSON gateway, POST
 * /v3/kv/range, /v3/kv/txn, /v3/kv/put, /v3/lease/{grant,keepalive,revoke} and /v3/watch,
 * on the first of the configured endpoints that answers.
 *
 * Request bodies are formatted here: every string in them is base64 (keys and values) or a
 * decimal number, so nothing needs JSON escaping. Answers are parsed with json-c (included
 * by no file outside the fleet module) with a bounded depth and size. The gateway writes
 * 64-bit numbers as strings and leaves out fields whose value is zero, false or empty
 * (proto3), so a missing "succeeded" is false, a missing "kvs" is no key and a missing "TTL"
 * is a lease gone. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "digest.h"
#include "fleet-private.h"
#include "http.h"
#include "log.h"
#include "util.h"

#define REQUEST_USEC (5 * USEC_PER_SEC)     /* one request, connecting included */
#define ANSWER_MAX (4u * 1024 * 1024)        /* an answer longer than this is refused */
#define B64_MAX (4 * ((VALUE_MAX + 2) / 3) + 1)

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

	if (!json_object_object_get_ex(o, "error", &m) &&
	    !json_object_object_get_ex(o, "message", &m))
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
		snprintf(why, why_size, "no etcd endpoint answers (%s)",
			 tried.data ? tried.data : "");
	ap_buf_clear(&tried);
	return r;
}

static int request(struct ap_fleet *f, const char *path, const struct ap_buf *body,
		   json_object **ret, char *why, size_t why_size)
{
	return request_at(f, &f->endpoint, REQUEST_USEC, path, body, ret, why, why_size);
}

int fleet_failed(const struct ap_fleet *f, int r, const char *what, const char *key,
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
		return r == -ENOLINK && quiet_nolink ? r : fleet_failed(f, r, what, full, why);
	if (ret)
		*ret = o;
	else
		json_object_put(o);
	return 0;
}

/* --- key/value operations --------------------------------------------------------------- */

/* Calls fn for each key under prefix (prefix true) or for key itself. key is relative to
 * the group's prefix, and so is the key fn gets. */
int fleet_range(struct ap_fleet *f, const char *key, bool prefix, fleet_kv_fn fn, void *userdata)
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
				r = fleet_failed(f, r, "read", full,
						 "a key or value is not base64 of text");
			else if (ap_startswith(k, f->prefix))
				r = fn(k + plen, v, get_i64(kv, "lease"), userdata);
		}
	json_object_put(o);
	return r;
}

int fleet_put(struct ap_fleet *f, const char *key, const char *value)
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
int fleet_create(struct ap_fleet *f, const char *key, const char *value, int64_t lease,
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
		r = jsonf(&b, ",{\"request_put\":{\"key\":\"%b\",\"value\":\"%b\"}}",
			  full2, value2);
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
int fleet_delete_if_leased(struct ap_fleet *f, const char *key, int64_t lease)
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

/* --- the lease (kept alive by fleet.c's thread) ---------------------------------------- */

int fleet_lease_grant(struct ap_fleet *f, int64_t *ret)
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
		return fleet_failed(f, -EPROTO, "grant", "lease", "the answer has no lease ID");
	*ret = id;
	return 0;
}

/* 0 when the lease is alive, -ENOLINK when etcd no longer knows it. */
int fleet_lease_keepalive(const struct ap_fleet *f, size_t *endpoint, int64_t lease,
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

int fleet_lease_revoke(struct ap_fleet *f, int64_t lease)
{
	struct ap_buf b = { 0 };
	int r = jsonf(&b, "{\"ID\":\"%l\"}", lease);

	r = call(f, "/v3/lease/revoke", &b, r, NULL, "revoke", "lease", true);
	/* -ENOLINK: expired already, which is what revoking wanted */
	return r == -ENOLINK ? 0 : r;
}

/* --- watch ---------------------------------------------------------------------------- */

/* Waits until a slot key changes after the revision the last read saw (a slot released, or
 * its lease expired), through etcd's watch, at most timeout_usec: 1 when one changed, 0 when
 * none did, <0 when the watch cannot be used (the caller then sleeps instead). Not logged:
 * the next round of slots says what is wrong. */
int fleet_watch_slots(struct ap_fleet *f, uint64_t timeout_usec)
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
