/* The HTTP client for the requests autopull makes itself (the metrics push, etcd): the only
 * module that includes libcurl. One POST with a total deadline, http and https only, no
 * redirects, no proxy, no signals; credentials are passed in, never logged and never put in
 * an error message. It does not log: the caller decides what a failure means. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct ap_buf;

enum ap_http_auth { AP_HTTP_AUTH_NONE, AP_HTTP_AUTH_BEARER, AP_HTTP_AUTH_BASIC };

struct ap_http_request {
	const char *url;                  /* http:// or https:// */
	const char *content_type;
	const void *body;
	size_t len;
	enum ap_http_auth auth;
	const char *secret;               /* the token, or "user:password" */
	const char *ca_file;              /* NULL: the system's CA bundle */
	const char *cert_file, *key_file; /* a client certificate and its key, or NULL */
	/* NULL: the answer is dropped. Else it is appended here, whatever the status, at most
	 * answer_max bytes (-EMSGSIZE beyond); only for requests that carry no secret. */
	struct ap_buf *answer;
	size_t answer_max;
	/* > 0: the answer is a stream (etcd's watch) that is complete after this many lines; the
	 * request ends there, successfully, without waiting for the server to close it. */
	unsigned answer_lines;
	unsigned long long timeout_usec;  /* the whole request, connecting included */
	bool get;                         /* a GET without a body (a health probe), not a POST */
};

/* POSTs rq->body to rq->url (GETs rq->url with rq->get). Returns 0 when the answer is 2xx; otherwise a negative errno,
 * with what happened in why (curl's words, or "HTTP 400" and the answer's length: never the
 * answer itself, which could echo the request with its credentials):
 *   -ETIMEDOUT     the deadline passed
 *   -ECONNREFUSED  nothing listens there
 *   -EHOSTUNREACH  the name does not resolve or the host cannot be reached
 *   -ECONNRESET    the connection broke or the answer was empty
 *   -EPROTO        TLS failed (certificate, CA file, handshake)
 *   -EBADMSG       the server answered, but not with 2xx (ret_status has the code)
 *   -EINVAL        a malformed URL or another scheme than http/https
 *   -EMSGSIZE      the answer is longer than answer_max
 *   -ENOMEM, -EIO  out of memory, anything else
 * ret_status (may be NULL) gets the HTTP status, 0 when there was no answer. */
int ap_http_post(const struct ap_http_request *rq, long *ret_status, char *why, size_t why_size);
