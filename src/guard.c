/* Sampling, history, the apply's verdict and settling (see guard.h). The arithmetic lives in
 * heartbeat.c; this file gathers samples, stores the history and decides. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "sdexit.h"
#include "log.h"
#include "probe.h"
#include "record.h"
#include "guard.h"

#define HISTORY_FILE "heartbeat"
#define HISTORY_MAX_SAMPLES 50000
#define HISTORY_MIN_KEEP_USEC (3600ULL * 1000000)
#define SETTLE_POLL_USEC (100 * 1000)
#define FAILED_UNITS_MAX 256 /* failed units exported beside the watched ones */

void ap_guard_result_clear(struct ap_guard_result *g)
{
	free(g->clears);
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

static void sample_from_props(const char *unit, const struct ap_unit_props *p,
			      const char *boot_id, struct ap_hb_sample *ret)
{
	*ret = (struct ap_hb_sample){ .mono_usec = ap_now_monotonic_usec(),
				      .real_usec = ap_now_realtime_usec(),
				      .n_restarts = p->n_restarts,
				      .exec_main_status = p->exec_main_status,
				      .active_enter_real_usec = p->active_enter_realtime,
				      .last_trigger_real_usec = p->last_trigger_usec,
				      .interval_usec = p->timer_interval_usec };
	/* A calendar timer has no monotonic interval: the gap to its next elapse stands in. */
	if (!ret->interval_usec && p->next_elapse_realtime > p->last_trigger_usec &&
	    p->last_trigger_usec)
		ret->interval_usec = p->next_elapse_realtime - p->last_trigger_usec;
	copy(ret->unit, sizeof(ret->unit), unit);
	copy(ret->boot_id, sizeof(ret->boot_id), boot_id);
	copy(ret->invocation_id, sizeof(ret->invocation_id), p->invocation_id);
	copy(ret->active_state, sizeof(ret->active_state), p->active_state);
	copy(ret->sub_state, sizeof(ret->sub_state), p->sub_state);
	copy(ret->result, sizeof(ret->result), p->result);
}

/* Samples units[0..n) in unit order, read all at once (one round trip, not one per unit).
 * strict: a unit that cannot be read fails the sample (a guard that cannot sample refuses);
 * else such a unit is left out. */
static int sample_units(struct ap_bus *b, char *const *units, size_t n, const char *boot_id,
			bool strict, struct ap_hb_history *ret)
{
	struct ap_unit_props *props = calloc(n ? n : 1, sizeof(*props));
	int *errors = strict ? NULL : calloc(n ? n : 1, sizeof(*errors));
	int r = props && (strict || errors) ? 0 : -ENOMEM;

	if (r >= 0)
		r = ap_bus_get_units_props(b, units, n, AP_BUS_PROPS_TIMEOUT_USEC, props, errors);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		struct ap_hb_sample s;

		if (errors && errors[i] < 0)
			continue;
		sample_from_props(units[i], &props[i], boot_id, &s);
		r = ap_hb_history_append(ret, &s);
	}
	for (size_t i = 0; props && i < n; i++)
		ap_unit_props_clear(&props[i]);
	free(props);
	free(errors);
	return r;
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
	_cleanup_strv_free_ char **globs = NULL, **restarted = NULL;
	_cleanup_strset_ struct ap_strset units = { 0 };
	struct ap_unit_states loaded = { 0 };
	int r = 0;

	for (size_t i = 0; r >= 0 && c->guard.watch && c->guard.watch[i]; i++)
		r = is_glob(c->guard.watch[i]) ? ap_strv_push(&globs, c->guard.watch[i])
					       : ap_strset_add(&units, c->guard.watch[i]);
	if (r >= 0 && globs)
		r = ap_bus_list_units(b, globs, &loaded);
	for (size_t i = 0; r >= 0 && i < loaded.n; i++)
		r = ap_strset_add(&units, loaded.v[i].name);
	ap_unit_states_clear(&loaded);
	if (r >= 0)
		r = ap_state_read_restarted(st, &restarted);
	for (size_t i = 0; r >= 0 && restarted && restarted[i]; i++)
		r = ap_strset_add(&units, restarted[i]);
	if (r < 0)
		return r;
	*ret = ap_strset_take(&units);
	return 0;
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
		     const struct ap_hb_history *fresh, const char *boot_id,
		     struct ap_guard_result *g)
{
	g->v = calloc(fresh->n ? fresh->n : 1, sizeof(*g->v));
	if (!g->v)
		return -ENOMEM;
	g->ok = !g->tripped;
	g->window_s = c->guard.window_usec / 1000000;
	for (size_t i = 0; i < fresh->n; i++) {
		ap_hb_judge(h, fresh->v[i].unit, boot_id, ap_now_monotonic_usec(),
			    ap_now_realtime_usec(),
			    c->guard.window_usec, c->guard.max_restarts, &g->v[g->n]);
		g->ok &= !g->v[g->n].looping;
		g->n++;
	}
	return 0;
}

/* Units in state failed that are not watched, for the metrics only: they are neither
 * judged nor kept in the history. Best effort: a unit may vanish between list and sample. */
static void sample_failed(struct ap_bus *b, char *const *watched, const char *boot_id,
			  struct ap_hb_history *ret)
{
	struct ap_unit_states failed = { 0 };
	_cleanup_strv_free_ char **units = NULL;
	size_t n = 0;

	if (ap_bus_list_failed(b, &failed) < 0)
		return;
	for (size_t i = 0; i < failed.n && n < FAILED_UNITS_MAX; i++)
		if (!ap_strv_contains(watched, failed.v[i].name) &&
		    ap_strv_push(&units, failed.v[i].name) >= 0)
			n++;
	ap_unit_states_clear(&failed);
	(void)sample_units(b, units, n, boot_id, false, ret);
}

/* When each looping unit's newest automatic restart leaves the window: the newest sample of
 * the unit whose counter rose (or that sat in auto-restart), plus the window. */
static int clear_times(const struct ap_config *c, const struct ap_hb_history *h,
		       struct ap_guard_result *g)
{
	g->clears = calloc(g->n ? g->n : 1, sizeof(*g->clears));
	if (!g->clears)
		return -ENOMEM;
	for (size_t i = 0; i < g->n; i++) {
		const struct ap_hb_sample *prev = NULL;
		unsigned long long last = 0;

		if (!g->v[i].looping)
			continue;
		for (size_t k = 0; k < h->n; k++) {
			const struct ap_hb_sample *s = &h->v[k];

			if (strcmp(s->unit, g->v[i].unit) != 0)
				continue;
			if ((strcmp(s->sub_state, "auto-restart") == 0 &&
			     !ap_hb_sample_exited_clean(s)) ||
			    (prev && s->n_restarts > prev->n_restarts) || (!prev && s->n_restarts))
				last = s->real_usec;
			prev = s;
		}
		g->clears[i] = last ? last + c->guard.window_usec : 0;
	}
	return 0;
}

/* The guard's words for a unit the manager cannot start: it restarts, but it is not the
 * program that crashes (216/GROUP: the Group= does not exist). */
static void explain_setup_failures(const struct ap_hb_history *fresh, struct ap_guard_result *g)
{
	for (size_t i = 0; i < g->n && i < fresh->n; i++) {
		struct ap_hb_verdict *v = &g->v[i];
		char status[48], why[sizeof(v->why)];

		if (!v->looping || !ap_exit_status_is_setup(fresh->v[i].exec_main_status))
			continue;
		/* Cut to fit: the reason in front matters more than the counts behind it. */
		if (snprintf(why, sizeof(why), "cannot be started (status %s): %.*s",
			     ap_exit_status_format(fresh->v[i].exec_main_status, status,
						   sizeof(status)),
			     (int)(sizeof(why) - 64), v->why) < 0)
			continue;
		memcpy(v->why, why, sizeof(why));
	}
}

/* Whether a verdict differs from the one as of the unit's previous sample (what the heartbeat
 * before saw): the history judged at that sample's time leaves the new sample out. A unit with
 * no earlier sample in this boot is a change. */
static bool verdicts_changed(const struct ap_config *c, const struct ap_hb_history *h,
			     const char *boot_id, const struct ap_guard_result *g)
{
	for (size_t i = 0; i < g->n; i++) {
		const struct ap_hb_sample *prev = NULL, *last = NULL;
		struct ap_hb_verdict was;

		for (size_t k = 0; k < h->n; k++)
			if (strcmp(h->v[k].unit, g->v[i].unit) == 0) {
				prev = last;
				last = &h->v[k];
			}
		if (!prev || strcmp(prev->boot_id, boot_id) != 0 ||
		    ap_hb_judge(h, g->v[i].unit, boot_id, prev->mono_usec, prev->real_usec,
				c->guard.window_usec, c->guard.max_restarts, &was) < 0)
			return true;
		if (was.looping != g->v[i].looping || was.failed != g->v[i].failed ||
		    was.stale != g->v[i].stale)
			return true;
	}
	return false;
}

/* guard.probe: one attempt of the probe of each watched unit that is active now (one that is
 * not is the loop check's, and the first apply's sample comes before its units exist),
 * recorded for probe_verdicts. Not under the history lock: an attempt may take its whole
 * timeout. A unit file whose probe does not parse is logged and left out (it was refused with
 * the apply that brought it). */
static void probe_watched(struct ap_state *st, const struct ap_config *c,
			  const struct ap_hb_history *fresh)
{
	for (size_t i = 0; i < fresh->n; i++) {
		const char *unit = fresh->v[i].unit;
		char result[AP_PROBE_RESULT_MAX] = "";
		struct ap_probe p = { 0 };
		int r;

		if (strcmp(fresh->v[i].active_state, "active") != 0 ||
		    (r = ap_probe_for_unit(c, unit, &p)) <= 0)
			continue;
		r = ap_probe_once(&p, result);
		ap_log_debug("unit '%s': probe: %s", unit, result);
		(void)ap_record_probe(st, &(struct ap_record_probe_result){
					      .unit = unit, .kind = ap_probe_kind_to_string(p.kind),
					      .healthy = r >= 0, .result = result,
					      .window_usec = c->guard.window_usec });
		ap_probe_clear(&p);
	}
}

/* A watched unit that failed its probe more than max_restarts times within the window is
 * unhealthy: refused like a loop, until the failures leave the window. A unit that became
 * unhealthy with this heartbeat's probes (failed from mark_real on) is a changed verdict. */
static void probe_verdicts(struct ap_state *st, const struct ap_config *c,
			   unsigned long long mark_real, struct ap_guard_result *g)
{
	unsigned long long now = ap_now_realtime_usec();
	unsigned long long since = now > c->guard.window_usec ? now - c->guard.window_usec : 0;

	for (size_t i = 0; i < g->n; i++) {
		struct ap_hb_verdict *v = &g->v[i];
		struct ap_record_probe_state ps;
		unsigned long long clears;

		if (ap_record_probe_read(st, v->unit, since, mark_real, &ps) < 0 ||
		    ps.failures_in_window <= c->guard.max_restarts)
			continue;
		v->unhealthy = true;
		g->changed |= ps.failures_before <= c->guard.max_restarts;
		g->ok = false;
		clears = ps.last_failure_real + c->guard.window_usec;
		if (clears > g->clears[i])
			g->clears[i] = clears;
		if (!v->looping)
			snprintf(v->why, sizeof(v->why), "failed its %s probe %u times in %llus; "
				 "last: %.64s", ps.kind, ps.failures_in_window, g->window_s, ps.result);
	}
}

int ap_guard_heartbeat(struct ap_bus *b, struct ap_state *st, const struct ap_config *c,
		       bool record, struct ap_guard_result *ret)
{
	_cleanup_strv_free_ char **units = NULL;
	struct ap_hb_history fresh = { 0 }, h = { 0 }, failed = { 0 };
	struct ap_guard_result g = { 0 };
	unsigned long long mark_real = ap_now_realtime_usec();
	char boot_id[33];
	int lock = -1, r = watched_units(b, st, c, &units);

	read_boot_id(boot_id);
	if (r >= 0)
		r = sample_units(b, units, ap_strv_length(units), boot_id, true, &fresh);
	if (r >= 0 && record && c->guard.probe)
		probe_watched(st, c, &fresh);
	lock = r >= 0 ? ap_state_lock_history(st, 10) : r;
	r = lock;
	if (r >= 0)
		r = update_history(st, c, boot_id, &fresh, record, &h);
	if (r >= 0 && ap_state_read_tripped(st, &g.tripped) < 0)
		g.tripped = NULL;
	if (r >= 0)
		r = judge_all(c, &h, &fresh, boot_id, &g);
	if (r >= 0)
		explain_setup_failures(&fresh, &g);
	if (r >= 0)
		r = clear_times(c, &h, &g);
	if (r >= 0)
		g.changed = record && verdicts_changed(c, &h, boot_id, &g);
	if (r >= 0 && c->guard.probe)
		probe_verdicts(st, c, mark_real, &g);
	g.changed &= record;
	if (r >= 0 && record) {
		sample_failed(b, units, boot_id, &failed);
		/* Metrics are for people and dashboards: a path they cannot be written to is worth
		 * a warning, never a guard that stops judging. */
		if (ap_record_metrics(st, c, &h, &failed, g.v, g.n, g.ok, g.tripped != NULL) < 0)
			ap_log_warning("the guard works on without metrics");
	}
	if (lock >= 0)
		close(lock);
	ap_hb_history_clear(&fresh);
	ap_hb_history_clear(&h);
	ap_hb_history_clear(&failed);
	if (r < 0) {
		ap_guard_result_clear(&g);
		return r;
	}
	*ret = g;
	return 0;
}

/* A timer this apply is about to enable and start has never fired: not stale. */
static void forget_new_units_stale(const struct ap_plan *plan, struct ap_guard_result *g)
{
	for (size_t i = 0; plan && i < g->n; i++)
		for (size_t k = 0; k < plan->n_units; k++)
			if (plan->units[k].action == AP_ACTION_ENABLE_START &&
			    strcmp(plan->units[k].unit, g->v[i].unit) == 0) {
				g->v[i].stale = false;
				snprintf(g->v[i].why, sizeof(g->v[i].why),
					 "this apply enables and starts it");
			}
}

int ap_guard_sample(struct ap_bus *b, struct ap_state *st, const struct ap_config *c, bool record,
		    const struct ap_plan *plan, struct ap_guard_result *ret)
{
	int k = ap_guard_heartbeat(b, st, c, record, ret);

	if (k >= 0)
		forget_new_units_stale(plan, ret);
	return k;
}

/* Names each looping unit with what clears it, and the tripped guard. */
static int log_refusal(const struct ap_guard_check *in, const struct ap_guard_result *g,
		       int sampled, const char *tripped)
{
	struct ap_buf b = { 0 };

	if (sampled < 0)
		ap_log_error(sampled,
			     "refusing to apply %.12s: the guard cannot sample the watched "
				      "units (%s)", in->to, strerror(-sampled));
	if (sampled >= 0 && ap_guard_format(g, false, &b) >= 0)
		fputs(b.data, stderr);
	ap_buf_clear(&b);
	for (size_t i = 0; sampled >= 0 && i < g->n; i++) {
		if (!g->v[i].looping && !g->v[i].unhealthy)
			continue;
		if (ap_guard_clear_hint(g, i, in->cfg->scope, ap_now_realtime_usec(), &b) < 0)
			return -ENOMEM;
		ap_log_error(-EBUSY, "refusing to apply %.12s: unit '%s' is %s: %s; %s",
			     in->to, g->v[i].unit, g->v[i].looping ? "looping" : "unhealthy",
			     g->v[i].why, b.data);
		ap_buf_clear(&b);
	}
	if (tripped)
		ap_log_error(-EBUSY, "refusing to apply %.12s: the guard is tripped: %s", in->to,
			     tripped);
	ap_log_error(-EBUSY, "to apply anyway: autopull apply --override-guard --reason TEXT");
	return AP_GUARD_REFUSED;
}

int ap_guard_check(const struct ap_guard_check *in, struct ap_guard_result *ret, bool *ret_sampled)
{
	const char *tripped = in->tripped_error < 0 ? "the guard's state cannot be read"
		: in->tripped;
	int sampled = -ENOTCONN;

	*ret_sampled = false;
	/* A dry run without a manager (the repository's own CI) plans with conditional unit
	 * actions (planning.h); the guard has nothing to sample there either. */
	if (in->dry_run && !tripped && !in->bus)
		return AP_GUARD_PASS;
	if (in->bus)
		sampled = ap_guard_sample(in->bus, in->st, in->cfg, !in->dry_run, in->plan, ret);
	*ret_sampled = sampled >= 0;
	if (!tripped && sampled >= 0 && ret->ok)
		return AP_GUARD_PASS;
	if (in->override) {
		ap_log_warning("guard overridden for %.12s: %s", in->to, in->reason);
		return AP_GUARD_OVERRIDDEN;
	}
	return log_refusal(in, ret, sampled, tripped);
}

void ap_guard_after_apply(struct ap_bus *b, struct ap_state *st, const struct ap_config *c)
{
	struct ap_guard_result g = { 0 };

	if (b && ap_guard_heartbeat(b, st, c, true, &g) >= 0)
		ap_guard_result_clear(&g);
}

/* Why unit is unhealthy now, or NULL. base_restarts is NRestarts when the window opened
 * (a restart job that merges with a pending automatic restart keeps the counter); final:
 * the window is over, so a unit that is still not up counts too. */
static char *unhealthy(const char *unit, const struct ap_unit_props *p, unsigned base_restarts,
		       bool final)
{
	/* A clean exit that waits for its Restart=always/on-success restart is how a short job
	 * is meant to run; only a restart counted since the window opened or an unclean exit
	 * says the unit loops. */
	bool clean = ap_streq_ptr(p->result, "success") && p->exec_main_status == 0;
	bool waiting = strcmp(p->sub_state, "auto-restart") == 0;
	bool up = strcmp(p->active_state, "active") == 0 ||
		  (strcmp(p->active_state, "inactive") == 0 && ap_streq_ptr(p->result,
									    "success")) ||
		  (waiting && clean);
	/* A status the manager made itself means the program never ran: not a crash loop. */
	bool setup = ap_exit_status_is_setup(p->exec_main_status);
	const char *what = strcmp(p->active_state, "failed") == 0
				   ? (setup ? "could not be started" : "failed")
			   : waiting && !clean
				   ? (setup ? "could not be started and is retrying"
				      : "is restarting in a loop")
			   : p->n_restarts > base_restarts ? "restarted by itself"
			   : final && !up ? "never became active"
					  : NULL;
	char status[48];

	if (!what)
		return NULL;
	return ap_strdupf("unit '%s' %s (ActiveState=%s SubState=%s Result=%s NRestarts=%u "
			  "ExecMainStatus=%s)", unit, what, p->active_state, p->sub_state,
			  p->result ? p->result : "-", p->n_restarts,
			  ap_exit_status_format(p->exec_main_status, status, sizeof(status)));
}


/* One round over units[0..n), read at once and judged in unit order; base[i] < 0 means "take
 * the baseline now". */
static int check_units(struct ap_bus *b, char *const *units, size_t n, long long *base,
		       bool final, char **ret_why)
{
	struct ap_unit_props *props = calloc(n ? n : 1, sizeof(*props));
	int r = props ? ap_bus_get_units_props(b, units, n, AP_BUS_PROPS_TIMEOUT_USEC, props,
					       NULL) : -ENOMEM;

	for (size_t i = 0; r >= 0 && i < n; i++) {
		if (base[i] < 0)
			base[i] = props[i].n_restarts;
		*ret_why = unhealthy(units[i], &props[i], (unsigned)base[i], final);
		if (*ret_why)
			r = -EIO;
	}
	for (size_t i = 0; props && i < n; i++)
		ap_unit_props_clear(&props[i]);
	free(props);
	return r;
}

int ap_guard_settle(struct ap_bus *b, char *const *units, unsigned long long settle_usec,
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
		r = check_units(b, units, n, base, false, ret_why);
		if (r >= 0)
			usleep(SETTLE_POLL_USEC);
	}
	if (r >= 0)
		r = check_units(b, units, n, base, true, ret_why);
	free(base);
	return r;
}

int ap_guard_clear_hint(const struct ap_guard_result *g, size_t i, enum ap_scope scope,
			unsigned long long now_real, struct ap_buf *out)
{
	const struct ap_hb_verdict *v = &g->v[i];
	char when[32] = "once it stops restarting";

	if (v->failed)
		return ap_buf_printf(out,
				     "it is failed and will not restart by itself: a fix applied "
				     "with 'autopull apply --override-guard --reason TEXT' starts it on the "
				     "new files, or after a repair by hand 'systemctl%s reset-failed %s' "
				     "lets applies through", scope == AP_SCOPE_USER ? " --user"
				     : "",
				     v->unit);
	if (g->clears && g->clears[i])
		ap_format_ago(g->clears[i], now_real, when, sizeof(when));
	return ap_buf_printf(out, "the guard lets applies through again %s if it stops %s "
			     "(window %llus)", when, v->looping ? "restarting" : "failing its probe",
			     g->window_s);
}

enum verdict_list { LIST_LOOPING, LIST_STALE, LIST_UNHEALTHY };

static int json_verdicts(const struct ap_guard_result *g, enum verdict_list which,
			 struct ap_buf *out)
{
	bool first = true, stale = which == LIST_STALE;
	int r = ap_buf_append(out, "[", 1);

	for (size_t i = 0; r >= 0 && i < g->n; i++) {
		const struct ap_hb_verdict *v = &g->v[i];
		if (which == LIST_STALE ? !v->stale : which == LIST_LOOPING ? !v->looping
									: !v->unhealthy)
			continue;
		r = ap_buf_printf(out, "%s{\"unit\": ", first ? "" : ", ");
		if (r >= 0)
			r = ap_buf_json_string(out, v->unit);
		if (r >= 0 && !stale)
			r = ap_buf_printf(out,
					  ", \"restarts\": %u, \"window_s\": %llu, \"failed\": %s",
					  v->restarts, g->window_s, v->failed ? "true" : "false");
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

const char *ap_guard_verdict_word(const struct ap_hb_verdict *v)
{
	return v->looping ? "LOOPING" : v->unhealthy ? "UNHEALTHY" : v->stale ? "STALE" : "ok";
}

int ap_guard_format_line(const struct ap_guard_result *g, struct ap_buf *out)
{
	int r = ap_buf_printf(out, "guard: %s", g->ok ? "ok" : "REFUSING");

	if (r >= 0 && g->tripped)
		r = ap_buf_printf(out, "; tripped: %s", g->tripped);
	for (size_t i = 0; r >= 0 && i < g->n; i++)
		if (g->v[i].looping || g->v[i].stale || g->v[i].unhealthy)
			r = ap_buf_printf(out, "; %s %s: %s", g->v[i].unit, ap_guard_verdict_word(&g->v[i]),
					  g->v[i].why);
	return r < 0 ? r : ap_buf_append(out, "\n", 1);
}

int ap_guard_format(const struct ap_guard_result *g, bool json, struct ap_buf *out)
{
	int width = 20, r = 0;

	if (json) {
		r = ap_buf_printf(out, "{\"ok\": %s, \"looping\": ", g->ok ? "true" : "false");
		if (r >= 0)
			r = json_verdicts(g, LIST_LOOPING, out);
		if (r >= 0)
			r = ap_buf_printf(out, ", \"stale\": ");
		if (r >= 0)
			r = json_verdicts(g, LIST_STALE, out);
		if (r >= 0)
			r = ap_buf_printf(out, ", \"unhealthy\": ");
		if (r >= 0)
			r = json_verdicts(g, LIST_UNHEALTHY, out);
		if (r >= 0)
			r = ap_buf_printf(out, ", \"tripped\": ");
		if (r >= 0)
			r = g->tripped ? ap_buf_json_string(out, g->tripped) : ap_buf_append(out,
				"null", 4);
		return r < 0 ? r : ap_buf_append(out, "}", 1);
	}
	/* Unit names, reasons and the tripped record (a state file) are escaped (ap_buf_linef). */
	r = ap_buf_printf(out, "guard: %s\n", g->ok ? "ok" : "REFUSING");
	if (r >= 0 && g->tripped)
		r = ap_buf_linef(out, "  tripped: %s", g->tripped);
	for (size_t i = 0; i < g->n; i++)
		if (strlen(g->v[i].unit) > (size_t)width)
			width = (int)strlen(g->v[i].unit);
	for (size_t i = 0; r >= 0 && i < g->n; i++) {
		const struct ap_hb_verdict *v = &g->v[i];
		r = ap_buf_linef(out, "  %-*s %s%s%s", width, v->unit, ap_guard_verdict_word(v),
				 *v->why ? ": " : "", v->why);
	}
	return r;
}
