/* stderr logging with sd-daemon priority prefixes when running under systemd. The journal
 * is never the only sink: without journald, sd_journal_send() silently drops messages. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static int max_level = AP_LOG_INFO;
static bool use_prefix;

void ap_log_init(void)
{
	use_prefix = secure_getenv("INVOCATION_ID") || secure_getenv("JOURNAL_STREAM");
}

void ap_log_set_max_level(int level)
{
	max_level = level;
}

int ap_log_full(int level, int err, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (level > max_level)
		return err;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (use_prefix)
		fprintf(stderr, "<%d>autopull: %s\n", level, msg);
	else
		fprintf(stderr, "autopull: %s\n", msg);
	return err;
}
