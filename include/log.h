/* Diagnostics go to stderr, one line each, lower case without a full stop. Under systemd
 * (INVOCATION_ID or JOURNAL_STREAM set) lines carry sd-daemon "<N>" priority prefixes.
 * Control characters and bytes that are not UTF-8 in a message (from repository strings)
 * are escaped (ap_escape), so one call is always one line of at most about 8 KiB.
 *
 * Entries (ap_log_entry) are what an operator searches the journal for: an apply, a refusal,
 * a rollback, a pin. They go to the journal natively, with fields, whenever its socket
 * exists, and to stderr only when it does not. */
#pragma once
#include "util.h"

enum { AP_LOG_ERR = 3, AP_LOG_WARNING = 4, AP_LOG_NOTICE = 5, AP_LOG_INFO = 6, AP_LOG_DEBUG = 7 };

void ap_log_init(void);
void ap_log_set_max_level(int level);
/* True when standard output is the journal stream (JOURNAL_STREAM names it) and entries reach
 * the journal natively: a line printed would repeat the entry said beside it. */
bool ap_log_stdout_is_journal(void);
/* One journal entry: message_id is 32 hex digits; fields are "KEY=value" (KEY of [A-Z0-9_],
 * not starting with '_'; NULL-terminated, may be NULL). Values and the message are escaped
 * like diagnostics. Sent whatever the log level (it is the record of what was done); on
 * stderr, like ap_log_full, when the journal is missing or refuses it. */
void ap_log_entry(int level, const char *message_id, char *const *fields, const char *fmt, ...)
	_printf_(4, 5);
/* Logs and returns err (a negative errno) so that callers can `return ap_log_error(r, …)`. */
int ap_log_full(int level, int err, const char *fmt, ...) _printf_(3, 4);
/* A refusal's reason is the error line that decided it, logged where it was decided: between
 * begin and end the first error-level message is kept (whatever the log level) and copied
 * into ret (size bytes; "" when none was logged). */
void ap_log_reason_begin(void);
void ap_log_reason_end(char *ret, size_t size);
#define ap_log_error(err, ...) ap_log_full(AP_LOG_ERR, (err), __VA_ARGS__)
#define ap_log_warning(...) ap_log_full(AP_LOG_WARNING, 0, __VA_ARGS__)
#define ap_log_notice(...) ap_log_full(AP_LOG_NOTICE, 0, __VA_ARGS__)
#define ap_log_info(...) ap_log_full(AP_LOG_INFO, 0, __VA_ARGS__)
#define ap_log_debug(...) ap_log_full(AP_LOG_DEBUG, 0, __VA_ARGS__)
