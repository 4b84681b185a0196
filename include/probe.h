/* Health probes: whether a unit that is "active" also does its job. A probe is an argv run
 * like a validator (spawn.c: no shell, a clean environment, killed at its deadline with all
 * it started), an HTTP GET that must answer 2xx (http.c), or a TCP connect; it comes from the
 * configuration's health: map or the unit file's X-AutoPull-Health=. The parsing, the words
 * a result is reported in and the consecutive-success arithmetic are pure (tested alone);
 * ap_probe_once and ap_probe_wait do the I/O. Layer 2: it combines spawn and http. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* The bounded text of one probe's result ("HTTP 500", "exit status 3: <output>") */
#define AP_PROBE_RESULT_MAX 256

const char *ap_probe_kind_to_string(enum ap_probe_kind k);

/* The value of X-AutoPull-Health=: "http URL", "tcp HOST:PORT" or "exec ARGV..." (split at
 * white space, no quoting), with the default timeout, interval and successes. -EINVAL with
 * *ret_error saying what is wrong; -ENOMEM. */
int ap_probe_parse_unit(const char *value, struct ap_probe *ret, const char **ret_error);

/* "http http://127.0.0.1:8080/healthz": the kind and its target, for messages. A URL loses its
 * user:password@ and its query and fragment (where secrets are put); an argv is cut to fit. */
void ap_probe_describe(const struct ap_probe *p, char *buf, size_t size);

/* The first health: entry whose name or glob matches unit, or NULL. */
const struct ap_probe *ap_probe_config_find(const struct ap_config *c, const char *unit);

/* Consecutive passes within a deadline. A probe starts with its budget, successes ×
 * (timeout + interval): time for each pass it needs and one timeout of slack per pass. */
struct ap_probe_run {
	unsigned streak;               /* consecutive passes so far */
	unsigned failures;             /* attempts that failed */
	unsigned long long deadline;   /* monotonic usec */
	unsigned long long next;       /* when to try again */
};
enum ap_probe_verdict { AP_PROBE_PASSED, AP_PROBE_FAILED, AP_PROBE_AGAIN };
void ap_probe_run_start(const struct ap_probe *p, unsigned long long now, struct ap_probe_run *r);
/* One attempt's result at now: PASSED after successes passes in a row, FAILED when the next
 * attempt would start at or past the deadline, else AGAIN (at r->next). */
enum ap_probe_verdict ap_probe_run_step(const struct ap_probe *p, struct ap_probe_run *r, bool ok,
					unsigned long long now);

/* Replaces control characters and cuts s to at most size-1 bytes (output a probe printed). */
void ap_probe_sanitize(const char *s, size_t len, char *buf, size_t size);

/* --- I/O ------------------------------------------------------------------------------------- */

/* unit's probe: the health: entry, else X-AutoPull-Health= of its unit file in unit_dir (an
 * instance's, else its template's; a symlink there is not read). 1 with *ret filled (the
 * caller clears it), 0 when the unit has none or its file cannot be read (warned), -EINVAL
 * when its unit file's value is malformed (logged, FILE:LINE). */
int ap_probe_for_unit(const struct ap_config *c, const char *unit, struct ap_probe *ret);

/* One attempt: 0 healthy, else -errno with result saying what was seen (-EBADMSG: an HTTP
 * status other than 2xx; -ETIMEDOUT: killed or cut at the timeout; -ECHILD: exit status not
 * 0). result is always set, at most AP_PROBE_RESULT_MAX bytes, without control characters. */
int ap_probe_once(const struct ap_probe *p, char result[static AP_PROBE_RESULT_MAX]);

/* Probes until successes consecutive passes or the budget is spent; result gets the last
 * attempt's words. 0 when it passed; -EIO with *ret_why naming the unit, the probe and its
 * last result. Not logged. */
int ap_probe_wait(const struct ap_probe *p, const char *unit, char result[static AP_PROBE_RESULT_MAX],
		  char **ret_why);
