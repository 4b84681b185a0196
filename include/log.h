/* Diagnostics go to stderr, one line each, lower case without a full stop. Under systemd
 * (INVOCATION_ID or JOURNAL_STREAM set) lines carry sd-daemon "<N>" priority prefixes.
 * Control characters in a message (from repository strings) are escaped, so one call is
 * always one line of at most about 8 KiB. */
#pragma once
#include "util.h"

enum { AP_LOG_ERR = 3, AP_LOG_WARNING = 4, AP_LOG_NOTICE = 5, AP_LOG_INFO = 6, AP_LOG_DEBUG = 7 };

void ap_log_init(void);
void ap_log_set_max_level(int level);
/* Copies s into out (size bytes, NUL-terminated) with C0 control characters and DEL escaped:
 * "\n", "\t", "\r", else "\xHH". Stops before an escape that would not fit whole. Returns
 * the length written. 4 * strlen(s) + 1 bytes always suffice. */
size_t ap_log_escape(const char *s, char *out, size_t size);
/* Logs and returns err (a negative errno) so that callers can `return ap_log_error(r, …)`. */
int ap_log_full(int level, int err, const char *fmt, ...) _printf_(3, 4);
#define ap_log_error(err, ...) ap_log_full(AP_LOG_ERR, (err), __VA_ARGS__)
#define ap_log_warning(...) ap_log_full(AP_LOG_WARNING, 0, __VA_ARGS__)
#define ap_log_notice(...) ap_log_full(AP_LOG_NOTICE, 0, __VA_ARGS__)
#define ap_log_info(...) ap_log_full(AP_LOG_INFO, 0, __VA_ARGS__)
#define ap_log_debug(...) ap_log_full(AP_LOG_DEBUG, 0, __VA_ARGS__)
