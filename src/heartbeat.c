/* Restart-loop arithmetic, the sample history format and the metrics text (see
 * heartbeat.h for how restarts are counted). Pure: no I/O, no clock reads, no logging. */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "heartbeat.h"
#include "util.h"

void ap_hb_history_free(struct ap_hb_history *h)
{
	free(h->v);
	*h = (struct ap_hb_history){ 0 };
}

int ap_hb_history_append(struct ap_hb_history *h, const struct ap_hb_sample *s)
{
	struct ap_hb_sample *v = realloc(h->v, (h->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	h->v = v;
	v[h->n++] = *s;
	return 0;
}

/* Empty strings are stored as "-" so that every field is one word. */
static const char *word(const char *s)
{
	return *s ? s : "-";
}

static void unword(char *s)
{
	if (strcmp(s, "-") == 0)
		*s = '\0';
}

#define LINE_FMT "v1 %255s %32s %" SCNu64 " %" SCNu64 " %32s %u %23s %31s %31s %d %" SCNu64 " %" SCNu64 " %" SCNu64

static int parse_line(const char *l, struct ap_hb_sample *s)
{
	*s = (struct ap_hb_sample){ 0 };
	if (sscanf(l, LINE_FMT, s->unit, s->boot_id, &s->mono_usec, &s->real_usec, s->invocation_id,
		   &s->n_restarts, s->active_state, s->sub_state, s->result, &s->exec_main_status,
		   &s->active_enter_real_usec, &s->last_trigger_real_usec, &s->interval_usec) != 13)
		return -EBADMSG;
	unword(s->boot_id);
	unword(s->invocation_id);
	unword(s->active_state);
	unword(s->sub_state);
	unword(s->result);
	return 0;
}

int ap_hb_history_parse(const char *text, struct ap_hb_history *ret)
{
	struct ap_hb_history h = { 0 };

	for (const char *l = text; l && *l;) {
		const char *e = strchrnul(l, '\n');
		char line[1024];
		struct ap_hb_sample s;

		if ((size_t)(e - l) < sizeof(line)) {
			memcpy(line, l, (size_t)(e - l));
			line[e - l] = '\0';
			if (parse_line(line, &s) == 0 && ap_hb_history_append(&h, &s) < 0) {
				ap_hb_history_free(&h);
				return -ENOMEM;
			}
		}
		l = *e ? e + 1 : e;
	}
	*ret = h;
	return 0;
}

int ap_hb_history_format(const struct ap_hb_history *h, char **ret)
{
	struct ap_buf b = { 0 };
	int r = ap_buf_append(&b, "", 0);

	for (size_t i = 0; r >= 0 && i < h->n; i++) {
		const struct ap_hb_sample *s = &h->v[i];
		r = ap_buf_printf(&b, "v1 %s %s %" PRIu64 " %" PRIu64 " %s %u %s %s %s %d %" PRIu64
				  " %" PRIu64 " %" PRIu64 "\n",
				  s->unit, word(s->boot_id), s->mono_usec, s->real_usec,
				  word(s->invocation_id), s->n_restarts, word(s->active_state),
				  word(s->sub_state), word(s->result), s->exec_main_status,
				  s->active_enter_real_usec, s->last_trigger_real_usec, s->interval_usec);
	}
	if (r < 0) {
		ap_buf_free(&b);
		return r;
	}
	*ret = b.data;
	return 0;
}

/* True when s was taken after "now" by the clock that dates it: monotonic within the current
 * boot, realtime across boots (the realtime clock was stepped back, or another boot's clock
 * ran ahead). Such a sample says nothing about the window before now; kept, it would sit in
 * every window (age 0) and keep the guard refusing until the clock caught up with it. */
static bool in_future(const struct ap_hb_sample *s, const char *boot_id, uint64_t now_mono,
		      uint64_t now_real)
{
	if (strcmp(s->boot_id, boot_id) == 0)
		return s->mono_usec > now_mono;
	return s->real_usec > now_real;
}

/* Age of sample s at "now", for samples not in_future(): monotonic within the current boot
 * (immune to clock steps), realtime across boots. */
static uint64_t age(const struct ap_hb_sample *s, const char *boot_id, uint64_t now_mono,
		    uint64_t now_real)
{
	if (strcmp(s->boot_id, boot_id) == 0)
		return now_mono - s->mono_usec;
	return now_real - s->real_usec;
}

static bool same_state(const struct ap_hb_sample *a, const struct ap_hb_sample *b)
{
	return strcmp(a->unit, b->unit) == 0 && strcmp(a->boot_id, b->boot_id) == 0 &&
	       strcmp(a->invocation_id, b->invocation_id) == 0 && a->n_restarts == b->n_restarts &&
	       strcmp(a->active_state, b->active_state) == 0 &&
	       strcmp(a->sub_state, b->sub_state) == 0;
}

/* Index of the next sample of the same unit after i, or n. */
static size_t next_of_unit(const struct ap_hb_history *h, size_t i)
{
	for (size_t j = i + 1; j < h->n; j++)
		if (strcmp(h->v[j].unit, h->v[i].unit) == 0)
			return j;
	return h->n;
}

/* A sample between two of the same state adds nothing: the restarts between its
 * neighbours are the same without it, and only a unit's first and last samples are read
 * otherwise. Dropping it keeps a steady unit at two samples, so the history (parsed on every
 * heartbeat) grows with changes, not with time. */
static void compact(struct ap_hb_history *h)
{
	size_t k = 0;

	for (size_t i = 0; i < h->n; i++) {
		size_t next = next_of_unit(h, i);
		bool middle = false;

		for (size_t p = k; p-- > 0;)
			if (strcmp(h->v[p].unit, h->v[i].unit) == 0) {
				middle = next < h->n && same_state(&h->v[p], &h->v[i]) &&
					 same_state(&h->v[i], &h->v[next]);
				break;
			}
		if (!middle)
			h->v[k++] = h->v[i];
	}
	h->n = k;
}

void ap_hb_history_prune(struct ap_hb_history *h, const char *boot_id, uint64_t now_mono,
			 uint64_t now_real, uint64_t keep_usec, size_t max_samples)
{
	size_t k = 0;

	/* Future samples go before compact() can let one stand in for its neighbours. */
	for (size_t i = 0; i < h->n; i++)
		if (!in_future(&h->v[i], boot_id, now_mono, now_real))
			h->v[k++] = h->v[i];
	h->n = k;
	compact(h);
	k = 0;
	for (size_t i = 0; i < h->n; i++)
		if (age(&h->v[i], boot_id, now_mono, now_real) <= keep_usec)
			h->v[k++] = h->v[i];
	if (k > max_samples) {
		memmove(h->v, h->v + (k - max_samples), max_samples * sizeof(*h->v));
		k = max_samples;
	}
	h->n = k;
}

/* Automatic restarts between two consecutive samples of one unit. */
static unsigned restarts_between(const struct ap_hb_sample *a, const struct ap_hb_sample *b)
{
	if (strcmp(a->boot_id, b->boot_id) == 0 && b->n_restarts >= a->n_restarts)
		return b->n_restarts - a->n_restarts;
	return b->n_restarts; /* reset in between (explicit restart, manager restart, reboot) */
}

/* The first sample of a unit has no predecessor to subtract. Its NRestarts count unless the
 * unit has been up since before the window (each automatic restart re-enters "active", so
 * then every one of them is older than the window). Errs towards refusing once. */
static unsigned first_restarts(const struct ap_hb_sample *s, uint64_t now_real, uint64_t window_usec)
{
	bool settled = strcmp(s->active_state, "active") == 0 && s->active_enter_real_usec &&
		       now_real > s->active_enter_real_usec &&
		       now_real - s->active_enter_real_usec > window_usec;

	return settled ? 0 : s->n_restarts;
}

int ap_hb_judge(const struct ap_hb_history *h, const char *unit, const char *boot_id,
		uint64_t now_mono, uint64_t now_real, uint64_t window_usec, unsigned max_restarts,
		struct ap_hb_verdict *ret)
{
	const struct ap_hb_sample *prev = NULL, *last = NULL;
	struct ap_hb_verdict v = { 0 };

	snprintf(v.unit, sizeof(v.unit), "%s", unit);
	for (size_t i = 0; i < h->n; i++) {
		const struct ap_hb_sample *s = &h->v[i];

		if (strcmp(s->unit, unit) != 0 || in_future(s, boot_id, now_mono, now_real))
			continue;
		if (age(s, boot_id, now_mono, now_real) <= window_usec)
			v.restarts += prev ? restarts_between(prev, s) : first_restarts(s, now_real, window_usec);
		prev = last = s;
	}
	if (!last) {
		*ret = v;
		return -ENOENT;
	}
	if (v.restarts > max_restarts) {
		v.looping = true;
		snprintf(v.why, sizeof(v.why), "%u automatic restarts in the last %" PRIu64 "s (max %u)",
			 v.restarts, window_usec / 1000000, max_restarts);
	} else if (strcmp(last->sub_state, "auto-restart") == 0) {
		v.looping = true;
		snprintf(v.why, sizeof(v.why), "waiting to restart again (NRestarts=%u, result %s)",
			 last->n_restarts, word(last->result));
	} else if (strcmp(last->active_state, "failed") == 0 && last->n_restarts > 0) {
		v.looping = true;
		snprintf(v.why, sizeof(v.why), "failed after %u automatic restarts (result %s, status %d)",
			 last->n_restarts, word(last->result), last->exec_main_status);
	}
	if (ap_endswith(unit, ".timer") && strcmp(last->active_state, "active") != 0) {
		/* A stopped timer never fires again (and the manager forgets its last trigger). */
		v.stale = true;
		if (!v.looping)
			snprintf(v.why, sizeof(v.why), "timer is %s: it will not fire", word(last->active_state));
	} else if (last->interval_usec && last->last_trigger_real_usec &&
	    now_real > last->last_trigger_real_usec &&
	    now_real - last->last_trigger_real_usec > 2 * last->interval_usec) {
		v.stale = true;
		if (!v.looping)
			snprintf(v.why, sizeof(v.why), "last triggered %" PRIu64 "s ago, interval %" PRIu64 "s",
				 (now_real - last->last_trigger_real_usec) / 1000000,
				 last->interval_usec / 1000000);
	}
	*ret = v;
	return 0;
}

bool ap_hb_watch_matches(char *const *watch, const char *unit)
{
	for (size_t i = 0; watch && watch[i]; i++)
		if (fnmatch(watch[i], unit, 0) == 0)
			return true;
	return false;
}

/* Prometheus label values escape backslash, double quote and newline. */
static int label(struct ap_buf *b, const char *name, const char *value, bool first)
{
	int r = ap_buf_printf(b, "%s%s=\"", first ? "" : ",", name);

	for (const char *c = value; r >= 0 && *c; c++)
		r = *c == '\\' ? ap_buf_append(b, "\\\\", 2)
		    : *c == '"' ? ap_buf_append(b, "\\\"", 2)
		    : *c == '\n' ? ap_buf_append(b, "\\n", 2)
				 : ap_buf_append(b, c, 1);
	return r < 0 ? r : ap_buf_append(b, "\"", 1);
}

static const struct ap_hb_sample *latest(const struct ap_hb_history *h, const char *unit)
{
	for (size_t i = h->n; i > 0; i--)
		if (strcmp(h->v[i - 1].unit, unit) == 0)
			return &h->v[i - 1];
	return NULL;
}

enum metric { M_ACTIVE, M_RESTARTS, M_STATUS, M_SINCE, M_LOOPING, M_STALE, M_MAX };

static const struct {
	const char *name, *type, *help;
} metrics[M_MAX] = {
	[M_ACTIVE] = { "systemd_unit_active", "gauge", "Whether the unit is active (1) or not (0)." },
	[M_RESTARTS] = { "systemd_unit_restart_count_total", "counter",
			 "Automatic restarts of the unit (NRestarts) since its last explicit start." },
	[M_STATUS] = { "systemd_unit_last_exit_status", "gauge", "Exit status of the main process." },
	[M_SINCE] = { "systemd_unit_seconds_since_active", "gauge",
		      "Seconds since the unit last entered the active state." },
	[M_LOOPING] = { "autopull_unit_looping", "gauge", "Whether the guard sees a restart loop." },
	[M_STALE] = { "autopull_timer_stale", "gauge",
		      "Whether the timer last triggered more than twice its interval ago." },
};

static int metric_line(struct ap_buf *b, enum metric m, const struct ap_hb_sample *s,
		       const struct ap_hb_verdict *v, const char *host, uint64_t now_real)
{
	double value;
	int r;

	switch (m) {
	case M_ACTIVE: value = strcmp(s->active_state, "active") == 0; break;
	case M_RESTARTS: value = s->n_restarts; break;
	case M_STATUS: value = s->exec_main_status; break;
	case M_SINCE:
		if (!s->active_enter_real_usec || now_real < s->active_enter_real_usec)
			return 0;
		value = (double)(now_real - s->active_enter_real_usec) / 1e6;
		break;
	case M_LOOPING: value = v->looping; break;
	default:
		if (!ap_endswith(s->unit, ".timer"))
			return 0;
		value = v->stale;
	}
	r = ap_buf_printf(b, "%s{", metrics[m].name);
	if (r >= 0)
		r = label(b, "unit", s->unit, true);
	if (r >= 0 && m == M_ACTIVE)
		r = label(b, "sub_state", s->sub_state, false);
	if (r >= 0)
		r = label(b, "host", host, false);
	return r < 0 ? r : ap_buf_printf(b, "} %.3f\n", value);
}

static int own_metrics(struct ap_buf *b, const struct ap_hb_facts *f)
{
	int r = 0;

	if (*f->applied_commit) {
		r = ap_buf_printf(b, "# HELP autopull_applied_commit_info The commit autopull applied last.\n"
				     "# TYPE autopull_applied_commit_info gauge\nautopull_applied_commit_info{");
		if (r >= 0)
			r = label(b, "commit", f->applied_commit, true);
		if (r >= 0)
			r = label(b, "host", f->host, false);
		if (r >= 0)
			r = ap_buf_printf(b, "} 1\n");
	}
	if (r >= 0 && f->last_apply_real_usec)
		r = ap_buf_printf(b, "# HELP autopull_last_apply_timestamp_seconds When the last apply finished.\n"
				     "# TYPE autopull_last_apply_timestamp_seconds gauge\n"
				     "autopull_last_apply_timestamp_seconds %.3f\n",
				  (double)f->last_apply_real_usec / 1e6);
	if (r >= 0 && f->last_apply_success >= 0)
		r = ap_buf_printf(b, "# HELP autopull_last_apply_success Whether the last apply succeeded.\n"
				     "# TYPE autopull_last_apply_success gauge\n"
				     "autopull_last_apply_success %d\n", f->last_apply_success);
	return r;
}

int ap_hb_render_metrics(const struct ap_hb_history *h, const struct ap_hb_verdict *verdicts,
			 size_t n_verdicts, const struct ap_hb_facts *f, uint64_t now_real,
			 char **ret)
{
	struct ap_buf b = { 0 };
	int r = ap_buf_append(&b, "", 0);

	/* Grouped by metric: the text format wants each family's samples together. */
	for (enum metric m = 0; r >= 0 && m < M_MAX; m++) {
		r = ap_buf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", metrics[m].name, metrics[m].help,
				  metrics[m].name, metrics[m].type);
		for (size_t i = 0; r >= 0 && i < n_verdicts; i++) {
			const struct ap_hb_sample *s = latest(h, verdicts[i].unit);
			if (s)
				r = metric_line(&b, m, s, &verdicts[i], f->host, now_real);
		}
	}
	if (r >= 0)
		r = own_metrics(&b, f);
	if (r < 0) {
		ap_buf_free(&b);
		return r;
	}
	*ret = b.data;
	return 0;
}
