/* The metrics push and its failure counter (see push.h). Owns reading the credential files
 * (bounded, never logged, wiped after use) and the failure counter. The HTTP
 * itself is http.c's; what is pushed is whatever heartbeat.c rendered. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "http.h"
#include "log.h"
#include "push.h"

#define SECRET_MAX 4096

/* The first line of a credential file, without its newline. Anything else on the line
 * that is a control character would end up in an HTTP header: refused. */
static int read_secret(const char *path, char **ret)
{
	char *secret = NULL;
	size_t full = 0, len;
	int r = ap_fs_read_file(path, SECRET_MAX, &secret, &full);

	if (r < 0)
		return r;
	len = strcspn(secret, "\r\n");
	for (size_t i = 0; i < len && r >= 0; i++)
		if ((unsigned char)secret[i] < 0x20 || secret[i] == 0x7f)
			r = -EBADMSG;
	explicit_bzero(secret + len, full - len); /* the rest of the file is not used */
	if (len == 0 || r < 0) {
		explicit_bzero(secret, len);
		free(secret);
		return len == 0 ? -ENODATA : r;
	}
	*ret = secret;
	return 0;
}

static void secret_free(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

static int post(const struct ap_guard_config *g, const char *text, char *why, size_t why_size)
{
	struct ap_http_request rq = { .url = g->push_url,
				      .content_type = "text/plain; version=0.0.4",
				      .body = text, .len = strlen(text), .ca_file = g->push_ca_file,
				      .timeout_usec = g->push_timeout_usec };
	const char *file = g->push_token_file ? g->push_token_file : g->push_basic_auth_file;
	char *secret = NULL;
	int r = 0;

	if (file) {
		r = read_secret(file, &secret);
		if (r < 0) {
			snprintf(why, why_size, "cannot read the credentials '%s': %s", file,
				 r == -ENODATA ? "empty" : strerror(-r));
			return r;
		}
		rq.auth = g->push_token_file ? AP_HTTP_AUTH_BEARER : AP_HTTP_AUTH_BASIC;
		rq.secret = secret;
	}
	r = ap_http_post(&rq, NULL, why, why_size);
	secret_free(secret);
	return r;
}

int ap_push_metrics(const struct ap_guard_config *g, const char *text)
{
	char why[512] = "";
	int r;

	if (!g->push_url)
		return 0;
	r = post(g, text, why, sizeof(why));
	if (r >= 0) {
		ap_log_debug("pushed the metrics to '%s' (%s)", g->push_url, why);
		return 0;
	}
	ap_log_warning("failed to push the metrics to '%s': %s", g->push_url, why);
	return r;
}
