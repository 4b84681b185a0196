/* Sampling, history, metrics and settling (see watch.h). The arithmetic lives in
 * heartbeat.c; this file only gathers samples and stores results. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "watch.h"

#define HISTORY_FILE "heartbeat"
#define HISTORY_MAX_SAMPLES 50000
#define HISTORY_MIN_KEEP_USEC (3600ULL * 1000000)
#define SETTLE_POLL_USEC (100 * 1000)

void ap_guard_result_free(struct ap_guard_result *g)
{
	free(g->v);
	free(g->tripped);
	*g = (struct ap_guard_result){ 0 };
}

static void read_boot_id(char ret[33])
{
	char buf[64] = "";
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	size_t k = 0;

	if (fd >= 0)
		close(fd);
	for (ssize_t i = 0; i < n && k < 32; i++)
		if (buf[i] != '-' && buf[i] != '\n')
			ret[k++] = buf[i];
	ret[k] = '\0';
}

static void copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

static int sample_unit(struct ap_bus *b, const char *unit, const char *boot_id,
		       struct ap_hb_sample *ret)
{
	struct ap_unit_props p = { 0 };
	int r = ap_bus_get_unit_props(b, unit, &p);

	if (r < 0)
		return r;
	*ret = (struct ap_hb_sample){ .mono_usec = ap_now_monotonic_usec(),
				      .real_usec = ap_now_realtime_usec(),
				      .n_restarts = p.n_restarts,
				      .exec_main_status = p.exec_main_status,
				      .active_enter_real_usec = p.active_enter_realtime,
				      .last_trigger_real_usec = p.last_trigger_usec,
				      .interval_usec = p.timer_interval_usec };
	/* A calendar timer has no monotonic interval: the gap to its next elapse stands in. */
	if (!ret->interval_usec && p.next_elapse_realtime > p.last_trigger_usec && p.last_trigger_usec)
		ret->interval_usec = p.next_elapse_realtime - p.last_trigger_usec;
	copy(ret->unit, sizeof(ret->unit), unit);
	copy(ret->boot_id, sizeof(ret->boot_id), boot_id);
	copy(ret->invocation_id, sizeof(ret->invocation_id), p.invocation_id);
	copy(ret->active_state, sizeof(ret->active_state), p.active_state);
	copy(ret->sub_state, sizeof(ret->sub_state), p.sub_state);
	copy(ret->result, sizeof(ret->result), p.result);
	ap_unit_props_clear(&p);
	return 0;
}

static bool is_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/* guard.watch names, the loaded units its globs match, and the units the last apply
 * restarted (state file "restarted"). */
static int watched_units(struct ap_bus *b, struct ap_state *st, const struct ap_config *c,
			 char ***ret)
{
	_cleanup_strv_free_ char **globs = NULL, **units = NULL;
	_cleanup_strv_free_ char **restarted = NULL;
	struct ap_unit_states loaded = { 0 };
	int r = 0;

	for (size_t i = 0; r >= 0 && c->guard.watch && c->guard.watch[i]; i++)
		r = is_glob(c->guard.watch[i]) ? ap_strv_push(&globs, c->guard.watch[i])
					       : ap_strv_push_unique(&units, c->guard.watch[i]);
	if (r >= 0 && globs)
		r = ap_bus_list_units(b, globs, &loaded);
	for (size_t i = 0; r >= 0 && i < loaded.n; i++)
		r = ap_strv_push_unique(&units, loaded.v[i].name);
	ap_unit_states_free(&loaded);
	if (r >= 0)
		r = ap_state_read_restarted(st, &restarted);
	for (size_t i = 0; r >= 0 && restarted && restarted[i]; i++)
		r = ap_strv_push_unique(&units, restarted[i]);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(units);
	return 0;
}

static void read_last_apply(struct ap_state *st, struct ap_hb_facts *f)
{
	struct ap_last_apply la;

	f->last_apply_success = -1;
	if (ap_state_read_last_apply(st, &la) >= 0) {
		f->last_apply_real_usec = la.realtime_usec;
		f->last_apply_success = la.ok;
	}
}

static int write_metrics(struct ap_state *st, const struct ap_config *c,
			 const struct ap_hb_history *h, const struct ap_guard_result *g)
{
	_cleanup_free_ char *text = NULL, *path = NULL;
	char host[256] = "", applied[AP_OID_HEXSZ + 1] = "";
	struct ap_hb_facts f = { .host = host, .applied_commit = applied };
	char *slash;
	int dfd, r;

	if (gethostname(host, sizeof(host) - 1) < 0)
		copy(host, sizeof(host), "unknown");
	if (ap_state_read_applied(st, applied) < 0)
		applied[0] = '\0';
	read_last_apply(st, &f);
	r = ap_hb_render_metrics(h, g->v, g->n, &f, ap_now_realtime_usec(), &text);
	path = c->guard.metrics_file ? strdup(c->guard.metrics_file)
				     : ap_strdupf("%s/metrics.prom", c->state_dir);
	if (r < 0 || !path)
		return r < 0 ? r : -ENOMEM;
	slash = strrchr(path, '/');
	*slash = '\0';
	dfd = ap_fs_open_dir(*path ? path : "/", 1, 0755);
	/* Every writer of the metrics holds the history lock: a temp file here is a killed one's. */
	if (dfd >= 0)
		(void)ap_fs_remove_stale_temps(dfd, slash + 1);
	r = dfd < 0 ? dfd : ap_fs_write_atomic(dfd, slash + 1, text, strlen(text), 0644, (uid_t)-1, (gid_t)-1);
	if (dfd >= 0)
		close(dfd);
	*slash = '/';
	if (r < 0)
		ap_log_error(r, "failed to write metrics to '%s': %s", path, strerror(-r));
	return r;
}

/* The stored history. One that cannot be read or parses to nothing is moved aside: a guard
 * that stops working on a damaged file is a guard that fails open. */
static int load_history(struct ap_state *st, bool record, struct ap_hb_history *h)
{
	_cleanup_free_ char *text = NULL;
	int r = ap_state_read_history(st, &text);

	if (r == -ENOENT)
		return ap_hb_history_parse("", h);
	if (r < 0)
		return r;
	r = ap_hb_history_parse(text, h);
	if (r >= 0 && h->n == 0 && *text && record)
		r = ap_state_discard_history(st, "holds no sample autopull can read");
	return r;
}

/* Appends the new samples to the stored history and prunes it; h gets the whole history. */
static int update_history(struct ap_state *st, const struct ap_config *c, const char *boot_id,
			  const struct ap_hb_history *fresh, bool record, struct ap_hb_history *h)
{
	_cleanup_free_ char *out = NULL;
	unsigned long long keep = c->guard.window_usec * 2;
	int r = load_history(st, record, h);

	for (size_t i = 0; r >= 0 && i < fresh->n; i++)
		r = ap_hb_history_append(h, &fresh->v[i]);
	if (r >= 0) {
		ap_hb_history_prune(h, boot_id, ap_now_monotonic_usec(), ap_now_realtime_usec(),
				    keep > HISTORY_MIN_KEEP_USEC ? keep : HISTORY_MIN_KEEP_USEC,
				    HISTORY_MAX_SAMPLES);
		r = ap_hb_history_format(h, &out);
	}
	if (r >= 0 && record)
		r = ap_state_write_history(st, out);
	return r;
}

static int judge_all(const struct ap_config *c, const struct ap_hb_history *h,
		     const struct ap_hb_history *fresh, const char *boot_id, struct ap_guard_result *g)
{
	g->v = calloc(fresh->n ? fresh->n : 1, sizeof(*g->v));
	if (!g->v)
		return -ENOMEM;
	g->ok = !g->tripped;
	g->window_s = c->guard.window_usec / 1000000;
	for (size_t i = 0; i < fresh->n; i++) {
		ap_hb_judge(h, fresh->v[i].unit, boot_id, ap_now_monotonic_usec(), ap_now_realtime_usec(),
			    c->guard.window_usec, c->guard.max_restarts, &g->v[g->n]);
		g->ok &= !g->v[g->n].looping;
		g->n++;
	}
	return 0;
}

int ap_watch_heartbeat(struct ap_bus *b, struct ap_state *st, const struct ap_config *c,
		       bool record, struct ap_guard_result *ret)
{
	_cleanup_strv_free_ char **units = NULL;
	struct ap_hb_history fresh = { 0 }, h = { 0 };
	struct ap_guard_result g = { 0 };
	char boot_id[33];
	int lock = -1, r = watched_units(b, st, c, &units);

	read_boot_id(boot_id);
	for (size_t i = 0; r >= 0 && units && units[i]; i++) {
		struct ap_hb_sample s;
		r = sample_unit(b, units[i], boot_id, &s);
		if (r >= 0)
			r = ap_hb_history_append(&fresh, &s);
	}
	lock = r >= 0 ? ap_state_lock_history(st, 10) : r;
	r = lock;
	if (r >= 0)
		r = update_history(st, c, boot_id, &fresh, record, &h);
	if (r >= 0 && ap_state_read_tripped(st, &g.tripped) < 0)
		g.tripped = NULL;
	if (r >= 0)
		r = judge_all(c, &h, &fresh, boot_id, &g);
	/* Metrics are for people and dashboards: a path they cannot be written to is worth a
	 * warning, never a guard that stops judging. */
	if (r >= 0 && record && write_metrics(st, c, &h, &g) < 0)
		ap_log_warning("the guard works on without metrics");
	if (lock >= 0)
		close(lock);
	ap_hb_history_free(&fresh);
	ap_hb_history_free(&h);
	if (r < 0) {
		ap_guard_result_free(&g);
		return r;
	}
	*ret = g;
	return 0;
}

/* Why unit is unhealthy now, or NULL. base_restarts is NRestarts when the window opened
 * (a restart job that merges with a pending automatic restart keeps the counter); final:
 * the window is over, so a unit that is still not up counts too. */
static char *unhealthy(const char *unit, const struct ap_unit_props *p, unsigned base_restarts,
		       bool final)
{
	bool up = strcmp(p->active_state, "active") == 0 ||
		  (strcmp(p->active_state, "inactive") == 0 && ap_streq_ptr(p->result, "success"));
	const char *what = strcmp(p->active_state, "failed") == 0 ? "failed"
			   : strcmp(p->sub_state, "auto-restart") == 0 ? "is restarting in a loop"
			   : p->n_restarts > base_restarts	       ? "restarted by itself"
			   : final && !up			       ? "never became active"
								       : NULL;

	if (!what)
		return NULL;
	return ap_strdupf("unit '%s' %s (ActiveState=%s SubState=%s Result=%s NRestarts=%u "
			  "ExecMainStatus=%d)", unit, what, p->active_state, p->sub_state,
			  p->result ? p->result : "-", p->n_restarts, p->exec_main_status);
}

/* One round over units; base[i] < 0 means "take the baseline now". */
static int check_units(struct ap_bus *b, char *const *units, long long *base, bool final,
		       char **ret_why)
{
	for (size_t i = 0; units && units[i]; i++) {
		struct ap_unit_props p = { 0 };
		int r = ap_bus_get_unit_props(b, units[i], &p);

		if (r < 0)
			return r;
		if (base[i] < 0)
			base[i] = p.n_restarts;
		*ret_why = unhealthy(units[i], &p, (unsigned)base[i], final);
		ap_unit_props_clear(&p);
		if (*ret_why)
			return -EIO;
	}
	return 0;
}

int ap_watch_settle(struct ap_bus *b, char *const *units, unsigned long long settle_usec,
		    char **ret_why)
{
	unsigned long long deadline = ap_now_monotonic_usec() + settle_usec;
	size_t n = ap_strv_length(units);
	long long *base;
	int r = 0;

	*ret_why = NULL;
	if (n == 0)
		return 0;
	base = malloc(n * sizeof(*base));
	if (!base)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		base[i] = -1;
	/* Polling, not a signal match: a crash loop shows as property changes over time, and
	 * the window is short. */
	while (r >= 0 && ap_now_monotonic_usec() < deadline) {
		r = check_units(b, units, base, false, ret_why);
		if (r >= 0)
			usleep(SETTLE_POLL_USEC);
	}
	if (r >= 0)
		r = check_units(b, units, base, true, ret_why);
	free(base);
	return r;
}

static int json_verdicts(const struct ap_guard_result *g, bool stale, struct ap_buf *out)
{
	bool first = true;
	int r = ap_buf_append(out, "[", 1);

	for (size_t i = 0; r >= 0 && i < g->n; i++) {
		const struct ap_hb_verdict *v = &g->v[i];
		if (stale ? !v->stale : !v->looping)
			continue;
		r = ap_buf_printf(out, "%s{\"unit\": ", first ? "" : ", ");
		if (r >= 0)
			r = ap_buf_json_string(out, v->unit);
		if (r >= 0 && !stale)
			r = ap_buf_printf(out, ", \"restarts\": %u, \"window_s\": %llu", v->restarts,
					  g->window_s);
		if (r >= 0)
			r = ap_buf_printf(out, ", \"why\": ");
		if (r >= 0)
			r = ap_buf_json_string(out, v->why);
		if (r >= 0)
			r = ap_buf_append(out, "}", 1);
		first = false;
	}
	return r < 0 ? r : ap_buf_append(out, "]", 1);
}

int ap_watch_format(const struct ap_guard_result *g, bool json, struct ap_buf *out)
{
	int r = 0;

	if (json) {
		r = ap_buf_printf(out, "{\"ok\": %s, \"looping\": ", g->ok ? "true" : "false");
		if (r >= 0)
			r = json_verdicts(g, false, out);
		if (r >= 0)
			r = ap_buf_printf(out, ", \"stale\": ");
		if (r >= 0)
			r = json_verdicts(g, true, out);
		if (r >= 0)
			r = ap_buf_printf(out, ", \"tripped\": ");
		if (r >= 0)
			r = g->tripped ? ap_buf_json_string(out, g->tripped) : ap_buf_append(out, "null", 4);
		return r < 0 ? r : ap_buf_append(out, "}", 1);
	}
	r = ap_buf_printf(out, "guard: %s\n", g->ok ? "ok" : "REFUSING");
	if (r >= 0 && g->tripped)
		r = ap_buf_printf(out, "  tripped: %s\n", g->tripped);
	for (size_t i = 0; r >= 0 && i < g->n; i++) {
		const struct ap_hb_verdict *v = &g->v[i];
		r = ap_buf_printf(out, "  %-28s %s%s%s\n", v->unit,
				  v->looping ? "LOOPING" : v->stale ? "STALE" : "ok",
				  *v->why ? ": " : "", v->why);
	}
	return r;
}
