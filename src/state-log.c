/* The two logs of the state directory (see state.h): the heartbeat history and the event
 * history. Both are rewritten whole through the state directory's atomic write; neither can
 * stop an apply: a history that cannot be read is moved aside, an event line that cannot be
 * parsed is skipped.
 *
 * Deliberately not here: the formats of their lines (heartbeat.c, events.c). */
#include <errno.h>
#include <string.h>

#include "fsutil.h"
#include "log.h"
#include "state-private.h"
#include "state.h"
#include "util.h"

#define HISTORY_MAX_FILE (16u * 1024 * 1024)

/* --- heartbeat history ------------------------------------------------------------------ */

int ap_state_discard_history(struct ap_state *s, const char *why)
{
	int r = ap_fs_move_aside(s->dirfd, "heartbeat", ".old");

	if (r < 0 && r != -ENOENT)
		return ap_log_error(r, "failed to move '%s/heartbeat' aside: %s", s->path,
				    strerror(-r));
	ap_log_warning("heartbeat history '%s/heartbeat' %s; moved it to heartbeat.old and started "
		       "a new one", s->path, why);
	return 0;
}

int ap_state_read_history(struct ap_state *s, char **ret)
{
	size_t len;
	int r = ap_fs_read_beneath(s->dirfd, "heartbeat", HISTORY_MAX_FILE, ret, &len);

	if (r == -EFBIG || r == -EISDIR || r == -EINVAL || r == -ELOOP) {
		/* A history we cannot read must not switch the guard off, or block it forever. */
		int k = ap_state_discard_history(s, r == -EFBIG ? "is too large to read"
								 : "is not a regular file");
		return k < 0 ? k : -ENOENT;
	}
	if (r < 0 && r != -ENOENT)
		ap_log_error(r, "failed to read '%s/heartbeat': %s", s->path, strerror(-r));
	return r;
}

int ap_state_write_history(struct ap_state *s, const char *text)
{
	return ap_state_file_report(s, "heartbeat", text);
}

/* --- events ------------------------------------------------------------------------------- */

#define EVENTS_MAX_FILE (2u * 1024 * 1024)

void ap_events_free(struct ap_event *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ap_event_clear(&v[i]);
	free(v);
}

/* The lines of text, the oldest first; keeps at most max (the newest). */
static int last_lines(char *text, size_t max, char ***ret)
{
	_cleanup_strv_free_ char **v = NULL;
	size_t n = 0;
	int r = 0;

	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && r >= 0;
	     l = strtok_r(NULL, "\n", &save), n++)
		r = ap_strv_push(&v, l);
	if (r < 0)
		return r;
	if (n > max) {
		for (size_t i = 0; i < n - max; i++)
			free(v[i]);
		memmove(v, v + (n - max), (max + 1) * sizeof(char *));
	}
	*ret = TAKE_PTR(v);
	return 0;
}

int ap_state_add_event(struct ap_state *s, const struct ap_event *e)
{
	_cleanup_free_ char *old = NULL, *line = NULL;
	_cleanup_strv_free_ char **keep = NULL;
	struct ap_buf b = { 0 };
	int r = ap_state_file_read(s, "events", EVENTS_MAX_FILE, &old);

	if (r == -EFBIG)
		r = -ENOENT; /* start over rather than stop recording */
	if (r < 0 && r != -ENOENT)
		return r;
	r = ap_event_format(e, &line);
	if (r >= 0 && old)
		r = last_lines(old, AP_EVENTS_MAX - 1, &keep);
	for (size_t i = 0; r >= 0 && keep && keep[i]; i++)
		r = ap_buf_printf(&b, "%s\n", keep[i]);
	if (r >= 0)
		r = ap_buf_append(&b, line, strlen(line) + 1);
	if (r >= 0)
		r = ap_state_file_report(s, "events", b.data);
	ap_buf_clear(&b);
	return r;
}

int ap_state_read_events(struct ap_state *s, struct ap_event **ret, size_t *ret_n)
{
	_cleanup_free_ char *text = NULL;
	struct ap_event *v = NULL;
	size_t n = 0, lineno = 0;
	int r = ap_state_file_read(s, "events", EVENTS_MAX_FILE, &text);

	*ret = NULL;
	*ret_n = 0;
	if (r == -ENOENT)
		return 0;
	for (char *save = NULL, *l = r < 0 ? NULL : strtok_r(text, "\n", &save); l && r >= 0;
	     l = strtok_r(NULL, "\n", &save)) {
		struct ap_event e;
		struct ap_event *w;

		lineno++;
		if (ap_event_parse(l, &e) < 0) {
			ap_log_warning("'%s/events' line %zu is malformed; skipped", s->path,
				       lineno);
			continue;
		}
		w = realloc(v, (n + 1) * sizeof(*v));
		if (!w) {
			ap_event_clear(&e);
			r = -ENOMEM;
			break;
		}
		v = w;
		v[n++] = e;
	}
	if (r < 0) {
		ap_events_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}
