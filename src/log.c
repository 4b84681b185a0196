/* stderr logging with sd-daemon priority prefixes when running under systemd, and entries
 * with fields sent to the journal natively. Without journald, sd_journal_sendv() drops a
 * message and returns 0 (it swallows ENOENT), so an entry goes to the journal only when its
 * socket is there, and to stderr otherwise: never lost silently.
 *
 * Messages carry strings from the repository (paths, unit names, validator output), so the
 * formatted message is escaped before it is written (ap_escape, the same as every human
 * output): control characters and bytes that are not UTF-8 become C-style escapes ("\n",
 * "\t", "\r", else "\xHH"). One call is then always one line of valid UTF-8, and no
 * repository string can forge a second log line or send escape sequences to a terminal. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
/* CODE_FILE=src/log.c on every entry would say nothing. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "log.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"
#define ENTRY_FIELDS_MAX 64

/* The message as formatted; longer ones are cut and end in "...". */
#define MSG_MAX 2048

static int max_level = AP_LOG_INFO;
static bool use_prefix, journal_ok;

/* The first error since ap_log_reason_begin(): what a refusal records as its reason. */
static char reason[MSG_MAX];
static bool reason_open;

void ap_log_init(void)
{
	struct stat st;

	use_prefix = secure_getenv("INVOCATION_ID") || secure_getenv("JOURNAL_STREAM");
	journal_ok = stat(JOURNAL_SOCKET, &st) == 0 && S_ISSOCK(st.st_mode);
}

bool ap_log_stdout_is_journal(void)
{
	const char *v = secure_getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int n = -1;

	if (!journal_ok || !v || sscanf(v, "%llu:%llu%n", &dev, &ino, &n) != 2 || v[n] != '\0')
		return false;
	return fstat(STDOUT_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void ap_log_set_max_level(int level)
{
	max_level = level;
}

/* Formats into msg (MSG_MAX), cut with "..." when longer. */
static void format_msg(char *msg, const char *fmt, va_list ap) _printf_(2, 0);
static void format_msg(char *msg, const char *fmt, va_list ap)
{
	int n = vsnprintf(msg, MSG_MAX, fmt, ap);

	if (n < 0)
		(void)snprintf(msg, MSG_MAX, "(unprintable message)");
	else if ((size_t)n >= MSG_MAX)
		memcpy(msg + MSG_MAX - 4, "...", 4);
}

static void write_line(int level, const char *msg)
{
	char line[4 * MSG_MAX];

	(void)ap_escape(msg, 0, line, sizeof(line));
	if (use_prefix)
		fprintf(stderr, "<%d>autopull: %s\n", level, line);
	else
		fprintf(stderr, "autopull: %s\n", line);
}

int ap_log_full(int level, int err, const char *fmt, ...)
{
	char msg[MSG_MAX];
	va_list ap;
	bool keep = reason_open && level <= AP_LOG_ERR && !*reason;

	if (level > max_level && !keep)
		return err;
	va_start(ap, fmt);
	format_msg(msg, fmt, ap);
	va_end(ap);
	if (keep)
		memcpy(reason, msg, sizeof(reason));
	if (level <= max_level)
		write_line(level, msg);
	return err;
}

void ap_log_reason_begin(void)
{
	reason[0] = '\0';
	reason_open = true;
}

void ap_log_reason_end(char *ret, size_t size)
{
	if (size > 0)
		(void)snprintf(ret, size, "%s", reason);
	reason[0] = '\0';
	reason_open = false;
}

static bool valid_key(const char *f, size_t n)
{
	if (n == 0 || n > 64 || f[0] == '_')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((f[i] >= 'A' && f[i] <= 'Z') || (f[i] >= '0' && f[i] <= '9') || f[i] == '_'))
			return false;
	return true;
}

/* "KEY=" and the value, cut to MSG_MAX and escaped (caller frees); NULL for a bad field. */
static char *escaped_field(const char *f)
{
	const char *eq = strchr(f, '=');
	char value[MSG_MAX], *out;
	size_t k, size;

	if (!eq || !valid_key(f, (size_t)(eq - f)))
		return NULL;
	k = (size_t)(eq - f) + 1;
	(void)snprintf(value, sizeof(value), "%s", eq + 1);
	size = k + 4 * strlen(value) + 1;
	out = malloc(size);
	if (!out)
		return NULL;
	memcpy(out, f, k);
	(void)ap_escape(value, 0, out + k, size - k);
	return out;
}

static int send_entry(int level, const char *message_id, char *const *fields, const char *msg)
{
	char head[3][MSG_MAX / 4 + 64], body[4 * MSG_MAX + 16];
	char *own[ENTRY_FIELDS_MAX] = { 0 };
	struct iovec iov[ENTRY_FIELDS_MAX + 4];
	size_t n = 0, k = 0;
	int r;

	memcpy(body, "MESSAGE=", 8);
	(void)ap_escape(msg, 0, body + 8, sizeof(body) - 8);
	(void)snprintf(head[0], sizeof(head[0]), "PRIORITY=%d", level);
	(void)snprintf(head[1], sizeof(head[1]), "MESSAGE_ID=%.32s", message_id);
	(void)snprintf(head[2], sizeof(head[2]), "SYSLOG_IDENTIFIER=autopull");
	iov[n++] = (struct iovec){ body, strlen(body) };
	for (size_t i = 0; i < 3; i++)
		iov[n++] = (struct iovec){ head[i], strlen(head[i]) };
	for (size_t i = 0; fields && fields[i] && k < ENTRY_FIELDS_MAX; i++)
		if ((own[k] = escaped_field(fields[i])))
			iov[n++] = (struct iovec){ own[k], strlen(own[k]) }, k++;
	r = sd_journal_sendv(iov, (int)n);
	for (size_t i = 0; i < k; i++)
		free(own[i]);
	return r;
}

void ap_log_entry(int level, const char *message_id, char *const *fields, const char *fmt, ...)
{
	char msg[MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	format_msg(msg, fmt, ap);
	va_end(ap);
	if (journal_ok && send_entry(level, message_id, fields, msg) >= 0)
		return;
	if (level <= max_level)
		write_line(level, msg);
}
