/* stderr logging with sd-daemon priority prefixes when running under systemd. The journal
 * is never the only sink: without journald, sd_journal_send() silently drops messages.
 *
 * Messages carry strings from the repository (paths, unit names, validator output), so the
 * formatted message is escaped before it is written: every C0 control character and DEL
 * becomes a C-style escape ("\n", "\t", "\r", else "\xHH"). One call is then always one line,
 * and no repository string can forge a second log line or send escape sequences to a
 * terminal. A backslash is kept as it is (unit names are full of "\x2d"), so the escaping is
 * for reading, not meant to be reversed. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

/* The message as formatted; longer ones are cut and end in "...". */
#define MSG_MAX 2048

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

size_t ap_log_escape(const char *s, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	if (size == 0)
		return 0;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		char e[4] = { (char)*c };
		size_t k = 1;

		if (*c == '\n' || *c == '\t' || *c == '\r') {
			e[0] = '\\', e[1] = *c == '\n' ? 'n' : *c == '\t' ? 't' : 'r', k = 2;
		} else if (*c < 0x20 || *c == 0x7f) {
			e[0] = '\\', e[1] = 'x', e[2] = hex[*c >> 4], e[3] = hex[*c & 15], k = 4;
		}
		if (n + k >= size)
			break; /* whole escapes only */
		memcpy(out + n, e, k);
		n += k;
	}
	out[n] = '\0';
	return n;
}

int ap_log_full(int level, int err, const char *fmt, ...)
{
	char msg[MSG_MAX], line[4 * MSG_MAX];
	va_list ap;
	int n;

	if (level > max_level)
		return err;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		(void)snprintf(msg, sizeof(msg), "(unprintable message)");
	else if ((size_t)n >= sizeof(msg))
		memcpy(msg + sizeof(msg) - 4, "...", 4);
	(void)ap_log_escape(msg, line, sizeof(line));
	if (use_prefix)
		fprintf(stderr, "<%d>autopull: %s\n", level, line);
	else
		fprintf(stderr, "autopull: %s\n", line);
	return err;
}
