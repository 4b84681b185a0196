/* One HTTP POST over libcurl (see http.h). Owns libcurl: loading it, its global init, the
 * easy handle, the options that make a request short and predictable, and the translation of
 * curl's results into errno codes. It does not read credential files (the caller does, with
 * the project's bounded readers) and does not log.
 *
 * libcurl is loaded on first use (dlopen), not linked: with its TLS, LDAP, RTMP, IDN and
 * compression libraries it added 3.7 MB of RSS and about 1 ms to every start of autopull
 * (measured on `autopull --help`), and most runs never push. */
#define CURL_DISABLE_TYPECHECK /* the calls go through the pointers below */
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "util.h"

/* The answer of the server is counted and dropped unless the caller asks for it (a request
 * without credentials, such as etcd's): an endpoint that echoes the request (a debugging
 * proxy, a misconfigured gateway) would quote the Authorization header, and a message is
 * logged. Reading it all means the server is not left waiting. A kept answer is bounded by
 * the caller's answer_max. */
struct answer {
	size_t len;
	struct ap_buf *keep;
	size_t max;
	bool too_long;
	unsigned lines;  /* stop after this many lines (0: read to the end) */
	bool enough;     /* ... and they came */
};

static size_t on_data(char *p, size_t size, size_t n, void *userdata)
{
	struct answer *a = userdata;

	a->len += size * n;
	if (a->keep) {
		if (a->len > a->max) {
			a->too_long = true;
			return 0; /* curl stops with CURLE_WRITE_ERROR */
		}
		if (ap_buf_append(a->keep, p, size * n) < 0)
			return 0;
	}
	for (size_t i = 0; a->lines && i < size * n; i++)
		if (p[i] == '\n' && --a->lines == 0) {
			a->enough = true;
			return 0; /* curl stops with CURLE_WRITE_ERROR, which is success here */
		}
	return size * n;
}

/* The functions used, typed by the header's own prototypes. */
static struct {
	__typeof__(curl_global_init) *global_init;
	__typeof__(curl_easy_init) *easy_init;
	__typeof__(curl_easy_setopt) *easy_setopt;
	__typeof__(curl_easy_perform) *easy_perform;
	__typeof__(curl_easy_getinfo) *easy_getinfo;
	__typeof__(curl_easy_cleanup) *easy_cleanup;
	__typeof__(curl_easy_strerror) *easy_strerror;
	__typeof__(curl_slist_append) *slist_append;
	__typeof__(curl_slist_free_all) *slist_free_all;
} curl;

#define SYM(f, slot) { #f, (void **)&curl.slot }

struct curl_sym {
	const char *name;
	void **slot;
};

static int load_locked(const struct curl_sym *syms, size_t n, char *why, size_t why_size)
{
	void *dl = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);

	if (!dl) {
		snprintf(why, why_size, "cannot load libcurl: %s", dlerror());
		return -EOPNOTSUPP;
	}
	for (size_t i = 0; i < n; i++)
		if (!(*syms[i].slot = dlsym(dl, syms[i].name))) {
			snprintf(why, why_size, "libcurl has no %s", syms[i].name);
			dlclose(dl);
			return -EOPNOTSUPP;
		}
	if (curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(why, why_size, "cannot initialise libcurl");
		return -ENOMEM;
	}
	return 0;
}

/* Loads libcurl and runs curl_global_init once (it is not thread-safe: the lock keeps a
 * second thread, fleet's lease keep-alive, out). The library stays loaded until exit. */
static int load(char *why, size_t why_size)
{
	static const struct curl_sym syms[] = {
		SYM(curl_global_init, global_init),     SYM(curl_easy_init, easy_init),
		SYM(curl_easy_setopt, easy_setopt),     SYM(curl_easy_perform, easy_perform),
		SYM(curl_easy_getinfo, easy_getinfo),   SYM(curl_easy_cleanup, easy_cleanup),
		SYM(curl_easy_strerror, easy_strerror), SYM(curl_slist_append, slist_append),
		SYM(curl_slist_free_all, slist_free_all),
	};
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static bool done;
	int r;

	if (pthread_mutex_lock(&lock) != 0) {
		snprintf(why, why_size, "cannot lock libcurl's loading");
		return -EDEADLK;
	}
	r = done ? 0 : load_locked(syms, ELEMENTSOF(syms), why, why_size);
	if (r == 0)
		done = true;
	pthread_mutex_unlock(&lock);
	return r;
}


static int curl_to_errno(CURLcode rc)
{
	switch (rc) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return -ECONNRESET;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ENGINE_INITFAILED:
		return -EPROTO;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return -EINVAL;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

#define SETOPT(h, rc, opt, val)                              \
	do {                                                 \
		if ((rc) == CURLE_OK)                        \
			(rc) = curl.easy_setopt(h, opt, val); \
	} while (0)

/* Everything but the body: deadline, schemes, TLS trust, credentials. */
static CURLcode set_options(CURL *h, const struct ap_http_request *rq, struct curl_slist *headers,
			    struct answer *a, char *errbuf)
{
	long ms = (long)((rq->timeout_usec + 999) / 1000);
	CURLcode rc = CURLE_OK;

	SETOPT(h, rc, CURLOPT_URL, rq->url);
	SETOPT(h, rc, CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(h, rc, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SETOPT(h, rc, CURLOPT_FOLLOWLOCATION, 0L);
	/* The endpoint is named in the config; a proxy from the environment is not. */
	SETOPT(h, rc, CURLOPT_PROXY, "");
	SETOPT(h, rc, CURLOPT_NOSIGNAL, 1L);
	SETOPT(h, rc, CURLOPT_TIMEOUT_MS, ms > 0 ? ms : 1L);
	SETOPT(h, rc, CURLOPT_CONNECTTIMEOUT_MS, ms > 0 ? ms : 1L);
	SETOPT(h, rc, CURLOPT_ERRORBUFFER, errbuf);
	SETOPT(h, rc, CURLOPT_HTTPHEADER, headers);
	SETOPT(h, rc, CURLOPT_WRITEFUNCTION, on_data);
	SETOPT(h, rc, CURLOPT_WRITEDATA, a);
	if (rq->get) {
		SETOPT(h, rc, CURLOPT_HTTPGET, 1L);
	} else {
		SETOPT(h, rc, CURLOPT_POST, 1L);
		SETOPT(h, rc, CURLOPT_POSTFIELDS, rq->body);
		SETOPT(h, rc, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->len);
	}
	if (rq->ca_file)
		SETOPT(h, rc, CURLOPT_CAINFO, rq->ca_file);
	if (rq->cert_file)
		SETOPT(h, rc, CURLOPT_SSLCERT, rq->cert_file);
	if (rq->key_file)
		SETOPT(h, rc, CURLOPT_SSLKEY, rq->key_file);
	if (rq->auth == AP_HTTP_AUTH_BEARER) {
		SETOPT(h, rc, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		SETOPT(h, rc, CURLOPT_XOAUTH2_BEARER, rq->secret);
	} else if (rq->auth == AP_HTTP_AUTH_BASIC) {
		SETOPT(h, rc, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		SETOPT(h, rc, CURLOPT_USERPWD, rq->secret);
	}
	return rc;
}

/* Content-Type, and an empty "Expect:" so that curl does not wait for a 100-continue. */
static struct curl_slist *make_headers(const char *content_type)
{
	struct curl_slist *l, *more;
	char ctype[128];

	/* A GET has no body, so no Content-Type. */
	if (content_type)
		snprintf(ctype, sizeof(ctype), "Content-Type: %s", content_type);
	else
		snprintf(ctype, sizeof(ctype), "Accept: */*");
	l = curl.slist_append(NULL, ctype);
	more = l ? curl.slist_append(l, "Expect:") : NULL;
	if (!more)
		curl.slist_free_all(l);
	return more;
}

static int result(CURLcode rc, long status, struct answer *a, const char *errbuf, char *why,
		  size_t why_size)
{
	if (a->too_long) {
		snprintf(why, why_size, "the answer is longer than %zu bytes", a->max);
		return -EMSGSIZE;
	}
	if (rc != CURLE_OK) {
		snprintf(why, why_size, "%s", *errbuf ? errbuf : curl.easy_strerror(rc));
		return curl_to_errno(rc);
	}
	if (status < 200 || status > 299) {
		snprintf(why, why_size, "HTTP %ld, %zu-byte answer not shown (it could quote the "
			 "request and its credentials)", status, a->len);
		return -EBADMSG;
	}
	snprintf(why, why_size, "HTTP %ld", status);
	return 0;
}

int ap_http_post(const struct ap_http_request *rq, long *ret_status, char *why, size_t why_size)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct answer a = { .keep = rq->answer, .max = rq->answer_max, .lines = rq->answer_lines };
	struct curl_slist *headers;
	long status = 0;
	CURLcode rc;
	CURL *h;
	int r;

	if (ret_status)
		*ret_status = 0;
	r = load(why, why_size);
	if (r < 0)
		return r;
	headers = make_headers(rq->content_type);
	if (!headers) {
		snprintf(why, why_size, "out of memory");
		return -ENOMEM;
	}
	h = curl.easy_init();
	rc = h ? set_options(h, rq, headers, &a, errbuf) : CURLE_OUT_OF_MEMORY;
	if (rc == CURLE_OK)
		rc = curl.easy_perform(h);
	if (rc == CURLE_WRITE_ERROR && a.enough)
		rc = CURLE_OK;
	if (rc == CURLE_OK)
		rc = curl.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	/* The handle goes first: it points at headers and errbuf until then. */
	if (h)
		curl.easy_cleanup(h);
	curl.slist_free_all(headers);
	if (ret_status)
		*ret_status = status;
	return result(rc, status, &a, errbuf, why, why_size);
}
