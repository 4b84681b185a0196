/* Restart-loop arithmetic, the sample history format and the metrics text (see
 * heartbeat.h for how restarts are counted). Pure: no I/O, no clock reads, no logging. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "heartbeat.h"
#include "util.h"

void ap_hb_history_clear(struct ap_hb_history *h)
{
	free(h->v);
	*h = (struct ap_hb_history){ 0 };
}

int ap_hb_history_append(struct ap_hb_history *h, const struct ap_hb_sample *s)
{
	struct ap_hb_sample *v = ap_grow(h->v, h->n, &h->cap, sizeof(*v));

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
				ap_hb_history_clear(&h);
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
				  s->active_enter_real_usec, s->last_trigger_real_usec,
				  s->interval_usec);
	}
	if (r < 0) {
		ap_buf_clear(&b);
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
static unsigned first_restarts(const struct ap_hb_sample *s, uint64_t now_real,
			       uint64_t window_usec)
{
	bool settled = strcmp(s->active_state, "active") == 0 && s->active_enter_real_usec &&
		       now_real > s->active_enter_real_usec &&
		       now_real - s->active_enter_real_usec > window_usec;

	return settled ? 0 : s->n_restarts;
}

bool ap_hb_sample_exited_clean(const struct ap_hb_sample *s)
{
	return strcmp(s->result, "success") == 0 && s->exec_main_status == 0;
}

static bool is_failed(const struct ap_hb_sample *s)
{
	return strcmp(s->active_state, "failed") == 0;
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
		/* The manager gave up on a failed unit: whatever brought it out of "failed" (a
		 * start, reset-failed) was someone's decision, and the loop before it is over. */
		if (prev && is_failed(prev) && !is_failed(s))
			v.restarts = 0;
		if (age(s, boot_id, now_mono, now_real) <= window_usec)
			v.restarts += prev ? restarts_between(prev, s) : first_restarts(s, now_real, window_usec);
		prev = last = s;
	}
	if (!last) {
		*ret = v;
		return -ENOENT;
	}
	if (is_failed(last) && last->n_restarts > 0) {
		v.looping = v.failed = true;
		snprintf(v.why, sizeof(v.why),
			 "failed after %u automatic restarts (result %s, status %d)",
			 last->n_restarts, word(last->result), last->exec_main_status);
	} else if (v.restarts > max_restarts) {
		v.looping = true;
		snprintf(v.why, sizeof(v.why),
			 "%u automatic restarts in the last %" PRIu64 "s (max %u)",
			 v.restarts, window_usec / 1000000, max_restarts);
	} else if (strcmp(last->sub_state, "auto-restart") == 0 &&
		   !ap_hb_sample_exited_clean(last)) {
		v.looping = true;
		snprintf(v.why, sizeof(v.why), "waiting to restart again (NRestarts=%u, result %s)",
			 last->n_restarts, word(last->result));
	}
	v.failed = v.looping && is_failed(last);
	if (ap_endswith(unit, ".timer") && strcmp(last->active_state, "active") != 0) {
		/* A stopped timer never fires again (and the manager forgets its last trigger). */
		v.stale = true;
		if (!v.looping)
			snprintf(v.why, sizeof(v.why), "timer is %s: it will not fire",
				 word(last->active_state));
	} else if (last->interval_usec && last->last_trigger_real_usec &&
	    now_real > last->last_trigger_real_usec &&
	    now_real - last->last_trigger_real_usec > 2 * last->interval_usec) {
		v.stale = true;
		if (!v.looping)
			snprintf(v.why, sizeof(v.why),
				 "last triggered %" PRIu64 "s ago, interval %" PRIu64 "s",
				 (now_real - last->last_trigger_real_usec) / 1000000,
				 last->interval_usec / 1000000);
	}
	*ret = v;
	return 0;
}

bool ap_hb_watch_matches(char *const *watch, const char *unit)
{
	for (size_t i = 0; watch && watch[i]; i++)
		if (ap_unit_glob_match(watch[i], unit))
			return true;
	return false;
}

/* --- metrics ------------------------------------------------------------------------ */

struct label {
	const char *name, *value;
};

/* Prometheus label values escape backslash, double quote and newline. */
static int label(struct ap_buf *b, const struct label *l, bool first)
{
	int r = ap_buf_printf(b, "%s%s=\"", first ? "" : ",", l->name);

	for (const char *c = l->value; r >= 0 && *c; c++)
		r = *c == '\\' ? ap_buf_append(b, "\\\\", 2)
		    : *c == '"' ? ap_buf_append(b, "\\\"", 2)
		    : *c == '\n' ? ap_buf_append(b, "\\n", 2)
				 : ap_buf_append(b, c, 1);
	return r < 0 ? r : ap_buf_append(b, "\"", 1);
}

/* name{labels...} value */
static int sample_line(struct ap_buf *b, const char *name, const struct label *l, size_t n,
		       double value)
{
	int r = ap_buf_printf(b, "%s{", name);

	for (size_t i = 0; r >= 0 && i < n; i++)
		r = label(b, &l[i], i == 0);
	return r < 0 ? r : ap_buf_printf(b, "} %.3f\n", value);
}

static int family_head(struct ap_buf *b, const char *name, const char *type, const char *help)
{
	return ap_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const struct ap_hb_sample *latest(const struct ap_hb_history *h, const char *unit)
{
	for (size_t i = h->n; i > 0; i--)
		if (strcmp(h->v[i - 1].unit, unit) == 0)
			return &h->v[i - 1];
	return NULL;
}

enum metric {
	M_ACTIVE, M_STATE, M_SUB_STATE, M_RESTARTS, M_STATUS, M_SINCE, M_TRIGGER, M_INTERVAL,
	M_LOOPING, M_STALE, M_MAX
};

static const struct {
	const char *name, *type, *help;
} metrics[M_MAX] = {
	[M_ACTIVE] = { "systemd_unit_active", "gauge",
		       "Whether the unit is active (1) or not (0)." },
	[M_STATE] = { "systemd_unit_state", "gauge",
		      "1 for the unit's ActiveState, 0 for the other states." },
	[M_SUB_STATE] = { "systemd_unit_sub_state_info", "gauge",
			  "The unit's SubState (info: the newest series is the current one)." },
	[M_RESTARTS] = { "systemd_unit_restart_count_total", "counter",
			 "Automatic restarts of the unit (NRestarts) since its last explicit start." },
	[M_STATUS] = { "systemd_unit_last_exit_status", "gauge",
		       "Exit status of the main process." },
	[M_SINCE] = { "systemd_unit_seconds_since_active", "gauge",
		      "Seconds since the unit last entered the active state; for a timer, since it last triggered." },
	[M_TRIGGER] = { "systemd_timer_last_trigger_seconds", "gauge",
			"When the timer last triggered (Unix time)." },
	[M_INTERVAL] = { "systemd_timer_interval_seconds", "gauge",
			 "The timer's interval, or the gap to its next calendar elapse." },
	[M_LOOPING] = { "autopull_unit_looping", "gauge",
			"Whether the guard sees a restart loop." },
	[M_STALE] = { "autopull_timer_stale", "gauge",
		      "Whether the timer is stopped or last triggered more than twice its interval ago." },
};

static bool seconds_since(uint64_t then, uint64_t now_real, double *ret)
{
	if (!then || now_real < then)
		return false;
	*ret = (double)(now_real - then) / 1e6;
	return true;
}

/* The value of metric m for one unit; false when the unit has none. v is NULL for a unit
 * exported only because it failed (the guard did not judge it). */
static bool unit_value(enum metric m, const struct ap_hb_sample *s, const struct ap_hb_verdict *v,
		       uint64_t now_real, double *ret)
{
	bool timer = ap_endswith(s->unit, ".timer");

	switch (m) {
	case M_ACTIVE: *ret = strcmp(s->active_state, "active") == 0; return true;
	case M_STATE: /* one line per state: state_lines() */
	case M_SUB_STATE: *ret = 1; return true;
	case M_RESTARTS: *ret = s->n_restarts; return true;
	case M_STATUS: *ret = s->exec_main_status; return true;
	case M_SINCE:
		/* A timer is active from its start on; what ages is its last trigger. */
		return seconds_since(timer ? s->last_trigger_real_usec : s->active_enter_real_usec,
				     now_real, ret);
	case M_TRIGGER:
		*ret = (double)s->last_trigger_real_usec / 1e6;
		return timer && s->last_trigger_real_usec;
	case M_INTERVAL:
		*ret = (double)s->interval_usec / 1e6;
		return timer && s->interval_usec;
	case M_LOOPING: *ret = v && v->looping; return v != NULL;
	default: *ret = v && v->stale; return v != NULL && timer;
	}
}

/* ActiveState as one series per possible state, so that a change of state changes values,
 * not the set of series (a pushed series that stops being sent lingers in the store). */
static const char *const active_states[] = { "active", "reloading", "inactive", "failed",
					      "activating", "deactivating", "maintenance" };

static int state_lines(struct ap_buf *b, const struct ap_hb_sample *s, const char *host)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < ELEMENTSOF(active_states); i++) {
		const struct label l[] = { { "unit", s->unit }, { "state", active_states[i] },
					   { "host", host } };
		r = sample_line(b, metrics[M_STATE].name, l, ELEMENTSOF(l),
				strcmp(s->active_state, active_states[i]) == 0);
	}
	return r;
}

static int unit_line(struct ap_buf *b, enum metric m, const struct ap_hb_sample *s,
		     const struct ap_hb_verdict *v, const char *host, uint64_t now_real)
{
	const struct label sub[] = { { "unit", s->unit }, { "sub_state", s->sub_state },
				     { "host", host } };
	const struct label plain[] = { { "unit", s->unit }, { "host", host } };
	double value;

	if (m == M_STATE)
		return state_lines(b, s, host);
	if (!unit_value(m, s, v, now_real, &value))
		return 0;
	if (m == M_SUB_STATE)
		return sample_line(b, metrics[m].name, sub, ELEMENTSOF(sub), value);
	return sample_line(b, metrics[m].name, plain, ELEMENTSOF(plain), value);
}

static bool is_watched(const struct ap_hb_verdict *v, size_t n, const char *unit)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].unit, unit) == 0)
			return true;
	return false;
}

/* Grouped by metric: the text format wants each family's samples together. */
static int unit_metrics(struct ap_buf *b, const struct ap_hb_history *h,
			const struct ap_hb_verdict *v, size_t n, const struct ap_hb_facts *f,
			uint64_t now_real)
{
	int r = 0;

	for (enum metric m = 0; r >= 0 && m < M_MAX; m++) {
		r = family_head(b, metrics[m].name, metrics[m].type, metrics[m].help);
		for (size_t i = 0; r >= 0 && i < n; i++) {
			const struct ap_hb_sample *s = latest(h, v[i].unit);
			if (s)
				r = unit_line(b, m, s, &v[i], f->host, now_real);
		}
		for (size_t i = 0; r >= 0 && i < f->n_failed; i++)
			if (!is_watched(v, n, f->failed[i].unit))
				r = unit_line(b, m, &f->failed[i], NULL, f->host, now_real);
	}
	return r;
}

/* One host-wide sample with its HELP and TYPE. */
static int host_metric(struct ap_buf *b, const char *name, const char *type, const char *help,
		       const char *host, double value)
{
	const struct label l[] = { { "host", host } };
	int r = family_head(b, name, type, help);

	return r < 0 ? r : sample_line(b, name, l, ELEMENTSOF(l), value);
}

static int apply_metrics(struct ap_buf *b, const struct ap_hb_facts *f)
{
	const struct label info[] = { { "commit", f->applied_commit }, { "host", f->host } };
	int r = 0;

	if (*f->applied_commit) {
		r = family_head(b, "autopull_applied_commit_info", "gauge",
				"The commit autopull applied last.");
		if (r >= 0)
			r = sample_line(b, "autopull_applied_commit_info", info, ELEMENTSOF(info),
					1);
	}
	if (r >= 0 && f->last_apply_real_usec)
		r = host_metric(b, "autopull_last_apply_timestamp_seconds", "gauge",
				"When the last apply finished (Unix time).", f->host,
				(double)f->last_apply_real_usec / 1e6);
	if (r >= 0 && f->last_apply_success >= 0)
		r = host_metric(b, "autopull_last_apply_success", "gauge",
				"Whether the last apply succeeded.", f->host,
					f->last_apply_success);
	return r;
}

static int guard_metrics(struct ap_buf *b, const struct ap_hb_facts *f)
{
	const struct {
		const char *name, *type, *help;
		double value;
	} rows[] = {
		{ "autopull_guard_ok", "gauge",
		  "Whether the guard lets an apply proceed (nothing looping, not tripped).",
		  f->guard_ok },
		{ "autopull_guard_tripped", "gauge",
		  "Whether a failed rollback left the guard tripped until an override.",
		  f->guard_tripped },
		{ "autopull_bad_commits_total", "counter",
		  "Commits whose apply was rolled back and marked bad.", f->bad_commits },
		{ "autopull_last_rollback_timestamp_seconds", "gauge",
		  "When the last rollback marked a commit bad (Unix time; 0 if never).",
		  (double)f->last_rollback_real_usec / 1e6 },
		{ "autopull_guard_overrides_total", "counter",
		  "Applies that overrode the guard with --override-guard.", f->overrides },
		{ "autopull_last_guard_override_timestamp_seconds", "gauge",
		  "When the guard was last overridden (Unix time; 0 if never).",
		  (double)f->last_override_real_usec / 1e6 },
		{ "autopull_push_failures_total", "counter",
		  "Metrics pushes that failed (guard.push).", (double)f->push_failures },
	};
	int r = 0;

	for (size_t i = 0; r >= 0 && i < ELEMENTSOF(rows); i++)
		r = host_metric(b, rows[i].name, rows[i].type, rows[i].help, f->host,
				rows[i].value);
	return r;
}

static uint64_t counter(const struct ap_hb_facts *f, const char *name)
{
	for (size_t i = 0; i < f->n_counters; i++)
		if (strcmp(f->counter_names[i], name) == 0)
			return f->counter_values[i];
	return 0;
}

/* One family with a sample per value of its label: every known value is exported (0 until
 * it counts), so that increase() sees the first event. */
static int labelled_counter(struct ap_buf *b, const struct ap_hb_facts *f, const char *name,
			    const char *help, const char *label, const char *prefix,
			    const char *const *values, size_t n)
{
	int r = family_head(b, name, "counter", help);

	for (size_t i = 0; r >= 0 && i < n; i++) {
		char key[64];
		const struct label l[] = { { label, values[i] }, { "host", f->host } };

		snprintf(key, sizeof(key), "%s:%s", prefix, values[i]);
		r = sample_line(b, name, l, ELEMENTSOF(l), (double)counter(f, key));
	}
	return r;
}

static int history_metrics(struct ap_buf *b, const struct ap_hb_facts *f)
{
	static const char *const results[] = { "ok", "failed", "restored", "rolled-back",
					       "rollback-failed" };
	static const char *const reasons[] = { "guard", "invalid", "preflight", "emptying",
					       "rewind",
					       "untrusted" };
	int r = labelled_counter(b, f, "autopull_apply_total", "Applies by result.", "result",
				 "apply", results, ELEMENTSOF(results));

	if (r >= 0)
		r = labelled_counter(b, f, "autopull_refused_total",
				     "Applies refused before any change, by reason.", "reason",
				     "refused", reasons, ELEMENTSOF(reasons));
	if (r >= 0)
		r = host_metric(b, "autopull_rollback_total", "counter",
				"Applies rolled back because a unit did not settle.", f->host,
				(double)counter(f, "rollback"));
	if (r >= 0 && f->pinned >= 0)
		r = host_metric(b, "autopull_pinned", "gauge", "Whether deploys are pinned.",
				f->host,
				f->pinned);
	if (r >= 0 && f->pending_commits >= 0)
		r = host_metric(b, "autopull_pending_commits", "gauge",
				"Commits on the branch not applied yet (as of the last apply tick).",
				f->host, (double)f->pending_commits);
	if (r >= 0 && f->drift_files >= 0)
		r = host_metric(b, "autopull_drift_files", "gauge",
				"Managed files whose bytes, mode or owner differ from the applied commit.",
				f->host, (double)f->drift_files);
	if (r >= 0 && f->fleet_known)
		r = host_metric(b, "autopull_fleet_blocked", "gauge",
				"Whether the last run was held back by its fleet (no slot, or canaries).",
				f->host, (double)f->fleet_blocked);
	if (r >= 0 && f->fleet_known)
		r = host_metric(b, "autopull_fleet_slot_wait_seconds", "gauge",
				"How long the last run waited for its fleet slot.", f->host,
				f->fleet_wait_s);
	return r;
}

int ap_hb_render_metrics(const struct ap_hb_history *h, const struct ap_hb_verdict *verdicts,
			 size_t n_verdicts, const struct ap_hb_facts *f, uint64_t now_real,
			 char **ret)
{
	struct ap_buf b = { 0 };
	int r = ap_buf_append(&b, "", 0);

	if (r >= 0)
		r = unit_metrics(&b, h, verdicts, n_verdicts, f, now_real);
	if (r >= 0)
		r = apply_metrics(&b, f);
	if (r >= 0)
		r = guard_metrics(&b, f);
	if (r >= 0)
		r = history_metrics(&b, f);
	if (r < 0) {
		ap_buf_clear(&b);
		return r;
	}
	*ret = b.data;
	return 0;
}
