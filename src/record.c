/* What a run did, written in one place (record.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "push.h"
#include "record.h"
#include "spawn.h"
#include "util.h"

struct ap_record_override {
	char kind[16];
	char to[AP_OID_HEXSZ + 1];
	char *reason;
};

void ap_record_begin(struct ap_record *rec, struct ap_ctx *c, const char *applied)
{
	*rec = (struct ap_record){ .c = c, .start = ap_now_monotonic_usec() };
	snprintf(rec->from, sizeof(rec->from), "%s", applied ? applied : "");
}

void ap_record_done(struct ap_record *rec)
{
	for (size_t i = 0; i < rec->n_events; i++)
		ap_event_clear(&rec->events[i]);
	free(rec->events);
	for (size_t i = 0; i < rec->n_overrides; i++)
		free(rec->overrides[i].reason);
	free(rec->overrides);
	*rec = (struct ap_record){ 0 };
}

/* Who started this run: the timer (systemd 251+ passes TRIGGER_UNIT), the service started
 * some other way, or a person. */
static const char *trigger(void)
{
	const char *t = secure_getenv("TRIGGER_UNIT");

	if (t && ap_endswith(t, ".timer"))
		return "timer";
	return secure_getenv("INVOCATION_ID") ? "service" : "manual";
}

/* The units a journal acted on, for the event ("restart=a,b;start=c"). */
static char *units_of(const struct ap_journal *j)
{
	_cleanup_free_ enum ap_unit_action_kind *a = j ? calloc(j->n_units + 1, sizeof(*a)) : NULL;
	_cleanup_free_ char **u = j ? calloc(j->n_units + 1, sizeof(*u)) : NULL;
	char *ret = NULL;
	size_t n = 0;

	for (size_t i = 0; a && u && i < j->n_units; i++)
		if (j->units[i].state == AP_STEP_DONE) {
			a[n] = j->units[i].action;
			u[n++] = j->units[i].unit;
		}
	if (a && u)
		(void)ap_event_units(u, a, n, &ret);
	return ret;
}

void ap_record_event(struct ap_record *rec, enum ap_event_kind kind, const char *result,
		     const char *to, const char *reason, const struct ap_journal *j)
{
	struct ap_event *v = reallocarray(rec->events, rec->n_events + 1, sizeof(*v)), *e;

	if (!v) {
		ap_log_error(-ENOMEM, "out of memory for the %s event", result);
		return;
	}
	rec->events = v;
	e = &v[rec->n_events++];
	*e = (struct ap_event){ .realtime_usec = ap_now_realtime_usec(), .kind = kind,
				.duration_ms = (ap_now_monotonic_usec() - rec->start) / 1000,
				.units = units_of(j), .reason = reason ? strdup(reason) : NULL };
	snprintf(e->from, sizeof(e->from), "%s", rec->from);
	snprintf(e->to, sizeof(e->to), "%s", to ? to : "");
	snprintf(e->result, sizeof(e->result), "%s", result);
	snprintf(e->trigger, sizeof(e->trigger), "%s", trigger());
}

void ap_record_outcome(struct ap_record *rec, bool revert, enum ap_apply_outcome out,
		       const struct ap_journal *j, const char *pinned)
{
	ap_record_last_apply(rec, out == AP_APPLY_OK);
	/* Why it failed (the settle's verdict) says more than why it was pinned. */
	ap_record_event(rec, revert ? AP_EVENT_REVERT : AP_EVENT_APPLY,
			ap_apply_outcome_to_string(out), j->to,
			out != AP_APPLY_OK && j->why ? j->why : pinned, j);
}

void ap_record_override(struct ap_record *rec, const char *kind, const char *to,
			const char *reason)
{
	struct ap_record_override *v = reallocarray(rec->overrides, rec->n_overrides + 1,
						    sizeof(*v));

	ap_record_event(rec, AP_EVENT_OVERRIDE, kind, to, reason, NULL);
	if (!v) {
		ap_log_error(-ENOMEM, "out of memory for the %s override", kind);
		return;
	}
	rec->overrides = v;
	v[rec->n_overrides] = (struct ap_record_override){ .reason = strdup(reason ? reason : "") };
	snprintf(v[rec->n_overrides].kind, sizeof(v->kind), "%s", kind);
	snprintf(v[rec->n_overrides].to, sizeof(v->to), "%s", to ? to : "");
	rec->n_overrides++;
}

void ap_record_last_apply(struct ap_record *rec, bool ok)
{
	rec->have_last_apply = true;
	rec->last_apply = (struct ap_last_apply){ .realtime_usec = ap_now_realtime_usec(),
						  .ok = ok };
}

void ap_record_tick(struct ap_record *rec, const struct ap_tick *t)
{
	rec->have_tick = true;
	rec->tick = *t;
}

void ap_record_fleet(struct ap_record *rec, bool blocked, uint64_t wait_usec, const char *why)
{
	rec->have_fleet = true;
	rec->fleet = (struct ap_fleet_tick){ .blocked = blocked,
					     .wait_ms = (long)(wait_usec / 1000) };
	snprintf(rec->fleet.why, sizeof(rec->fleet.why), "%s", why ? why : "");
}

void ap_record_event_now(struct ap_ctx *c, const struct ap_event *e)
{
	struct ap_event_entry x;

	(void)ap_state_add_event(c->st, e);
	if (ap_event_entry(e, c->cfg->scope == AP_SCOPE_USER, &x) < 0) {
		ap_log_error(-ENOMEM, "out of memory for the journal entry of %s %s",
			     ap_event_kind_to_string(e->kind), e->result);
		return;
	}
	ap_log_entry(x.level, x.message_id, x.fields, "%s", x.message);
	ap_event_entry_clear(&x);
}

int ap_record_override_now(struct ap_ctx *c, const char *kind, const char *to, const char *reason)
{
	struct ap_record rec;
	int k = ap_state_add_override(c->st, kind, to, reason);

	if (k < 0)
		return k;
	ap_record_begin(&rec, c, NULL);
	ap_record_event(&rec, AP_EVENT_OVERRIDE, kind, to, reason, NULL);
	(void)ap_record_commit(&rec);
	ap_record_done(&rec);
	return 0;
}

/* --- hooks --------------------------------------------------------------------------------- */

#define HOOK_TIMEOUT_USEC (60ULL * 1000000)

/* The operator's hook for an event (hooks: in the configuration), run like a validator: its
 * argv, a clean environment with the event in it, a deadline. A hook that fails is a
 * warning: it must not change what the apply did. */
static void run_hook(const struct ap_config *cfg, char *const *argv, const char *event,
		     const struct ap_event *e)
{
	_cleanup_strv_free_ char **env = NULL;
	struct ap_spawn_result res = { 0 };
	char *vars[] = {
		ap_strdupf("AUTOPULL_EVENT=%s", event), ap_strdupf("AUTOPULL_RESULT=%s", e->result),
		ap_strdupf("AUTOPULL_COMMIT=%s", e->to), ap_strdupf("AUTOPULL_FROM=%s", e->from),
		ap_strdupf("AUTOPULL_REASON=%s", e->reason ? e->reason : ""),
		ap_strdupf("AUTOPULL_UNITS=%s", e->units ? e->units : ""),
		ap_strdupf("AUTOPULL_CONFIG=%s", cfg->path),
		strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
		strdup("LANG=C.UTF-8"),
	};
	int k = 0;

	for (size_t i = 0; i < ELEMENTSOF(vars); i++) {
		if (k >= 0)
			k = vars[i] ? ap_strv_push(&env, vars[i]) : -ENOMEM;
		free(vars[i]);
	}
	if (!argv || k < 0)
		return;
	k = ap_spawn_run(argv, env, HOOK_TIMEOUT_USEC, &res);
	if (k < 0)
		ap_log_warning("hook %s '%s' could not run: %s", event, argv[0], strerror(-k));
	else if (res.exit_status != 0 || res.timed_out)
		ap_log_warning("hook %s '%s' %s %d: %s", event, argv[0],
			       res.timed_out ? "timed out, status" : "exited with", res.exit_status,
			       res.output && *res.output ? res.output : "(no output)");
	ap_spawn_result_clear(&res);
}

static void hooks_for(const struct ap_config *cfg, const struct ap_event *e)
{
	const struct ap_hooks *h = &cfg->hooks;
	bool apply = e->kind == AP_EVENT_APPLY || e->kind == AP_EVENT_REVERT;

	if (e->kind == AP_EVENT_REFUSED)
		run_hook(cfg, h->on_refused, "refused", e);
	else if (apply && ap_startswith(e->result, "roll"))
		run_hook(cfg, h->on_rollback, "rollback", e);
	else if (apply && (strcmp(e->result, "failed") == 0 || strcmp(e->result, "restored") == 0))
		run_hook(cfg, h->on_failure, "failure", e);
}

/* --- commit -------------------------------------------------------------------------------- */

static void count(struct ap_state *st, const struct ap_event *e)
{
	_cleanup_free_ char *counter = ap_strdupf("%s:%s", ap_event_kind_to_string(e->kind),
						  e->result);

	if (counter)
		(void)ap_state_count(st, counter);
	if (e->kind == AP_EVENT_APPLY && ap_startswith(e->result, "roll"))
		(void)ap_state_count(st, "rollback");
}

bool ap_record_commit(struct ap_record *rec)
{
	struct ap_ctx *c = rec->c;

	/* The outcome in one write: events, counters and the last apply are synced together. */
	ap_state_reports_begin(c->st);
	for (size_t i = 0; i < rec->n_events; i++) {
		ap_record_event_now(c, &rec->events[i]);
		count(c->st, &rec->events[i]);
	}
	for (size_t i = 0; i < rec->n_overrides; i++)
		(void)ap_state_add_override(c->st, rec->overrides[i].kind, rec->overrides[i].to,
					    rec->overrides[i].reason);
	if (rec->have_last_apply)
		(void)ap_state_write_last_apply(c->st, &rec->last_apply);
	if (rec->have_fleet)
		(void)ap_state_write_fleet(c->st, &rec->fleet);
	if (rec->have_tick)
		(void)ap_state_write_tick(c->st, &rec->tick);
	/* Before the hooks, which may read what was recorded. */
	(void)ap_state_reports_commit(c->st);
	for (size_t i = 0; i < rec->n_events; i++)
		hooks_for(c->cfg, &rec->events[i]);
	/* a host held back by its fleet records no event, but its metrics say so at once */
	return rec->n_events > 0 || rec->have_fleet;
}

/* --- written at once ------------------------------------------------------------------------ */

int ap_record_pin(struct ap_record *rec, const char *commit, const char *reason,
		  struct ap_pin *inforce)
{
	struct ap_pin p = { .realtime_usec = ap_now_realtime_usec(), .reason = strdup(reason) };
	int k = p.reason ? 0 : -ENOMEM;

	snprintf(p.commit, sizeof(p.commit), "%s", commit);
	if (k >= 0)
		k = ap_state_write_pin(rec->c->st, &p);
	if (k < 0) {
		ap_pin_clear(&p);
		return k;
	}
	ap_record_event(rec, AP_EVENT_PIN, "ok", commit, reason, NULL);
	ap_log_notice("pinned at %.12s (%s): ticks keep this commit until 'autopull unpin'",
		      commit, reason);
	ap_pin_clear(inforce);
	*inforce = p;
	return 0;
}

int ap_record_unpin(struct ap_ctx *c, const char *commit, const char *reason)
{
	struct ap_event e = { .realtime_usec = ap_now_realtime_usec(), .kind = AP_EVENT_UNPIN,
			      .reason = (char *)reason };
	int k = ap_state_clear_pin(c->st);

	if (k < 0)
		return k;
	snprintf(e.from, sizeof(e.from), "%s", commit);
	snprintf(e.trigger, sizeof(e.trigger), "manual");
	ap_record_event_now(c, &e);
	return 0;
}

/* A tick where nothing moved writes nothing: no fsync on the hot path. */
int ap_record_noop(struct ap_state *st, const char *applied, const char *to)
{
	return strcmp(applied, to) == 0 ? 0 : ap_state_write_applied(st, to);
}

int ap_record_applied(struct ap_state *st, const struct ap_journal *j, char *const *restarted)
{
	int r = ap_state_write_applied(st, j->to);

	/* Restarted units are watched by later heartbeats too; units started for the first time
	 * are not, or a first run would make every heartbeat sample every unit of the repo. */
	return r < 0 ? r : ap_state_write_restarted(st, restarted);
}

int ap_record_rolled_back(struct ap_state *st, const struct ap_journal *j, const char *why,
			  bool settled, const char *settle_why)
{
	_cleanup_free_ char *tripped = NULL;
	int r = ap_state_find_bad(st, j->to, NULL);

	/* A damaged line elsewhere in the list must not lose this entry (it was logged). */
	if (r == 0 || r == -EBADMSG)
		r = ap_state_add_bad(st, j->to, why);
	/* An apply that superseded an unfinished one rolls back to that one's files, whose
	 * actions ran again in this apply: that commit is what the host runs now. */
	if (r >= 0 && settled && *j->from && strcmp(j->from, j->base) != 0)
		r = ap_state_write_applied(st, j->from);
	if (r < 0)
		return r;
	if (settled) {
		ap_log_error(-EIO,
			     "rolled back %.12s and marked it bad (%s); the host runs %.12s again",
			     j->to, why, *j->from ? j->from : "(nothing)");
		return 0;
	}
	tripped = ap_strdupf("rollback of %.12s failed: %s", j->to, settle_why ? settle_why : "?");
	ap_log_error(-EIO, "ROLLBACK FAILED for %.12s: %s; applies refuse until 'autopull apply "
			   "--override-guard --reason TEXT'", j->to, settle_why ? settle_why : "?");
	return tripped ? ap_state_write_tripped(st, tripped) : -ENOMEM;
}

int ap_record_guard_override(struct ap_record *rec, const char *to, const char *reason,
			     bool tripped)
{
	ap_record_override(rec, "guard", to, reason);
	return tripped ? ap_state_clear_tripped(rec->c->st) : 0;
}

/* --- metrics --------------------------------------------------------------------------------- */

static void read_last_apply(struct ap_state *st, struct ap_hb_facts *f)
{
	struct ap_last_apply la;

	f->last_apply_success = -1;
	if (ap_state_read_last_apply(st, &la) >= 0) {
		f->last_apply_real_usec = la.realtime_usec;
		f->last_apply_success = la.ok;
	}
}

/* The guard's facts for the metrics: its verdict, rollbacks, overrides, failed pushes. */
static void read_guard_facts(struct ap_state *st, struct ap_hb_facts *f)
{
	(void)ap_state_summary_bad(st, &f->bad_commits, &f->last_rollback_real_usec);
	(void)ap_state_summary_overrides(st, &f->overrides, &f->last_override_real_usec);
	f->push_failures = ap_state_counter(st, "push_failures");
}

/* The apply history's facts: counters, pin, and what the last tick saw. */
struct history_facts {
	struct ap_counter *counters;
	size_t n;
	char **names;
	uint64_t *values;
};

static void read_history_facts(struct ap_state *st, struct history_facts *hf, struct ap_hb_facts *f)
{
	struct ap_pin pin = { 0 };
	struct ap_fleet_tick ft;
	struct ap_tick t;
	int k = ap_state_read_pin(st, &pin);

	f->pinned = k >= 0 ? 1 : k == -ENOENT ? 0 : -1;
	ap_pin_clear(&pin);
	ap_state_read_tick(st, &t);
	f->pending_commits = t.pending;
	f->drift_files = t.drift;
	f->fleet_known = ap_state_read_fleet(st, &ft) >= 0 && ft.blocked >= 0 && ft.wait_ms >= 0;
	f->fleet_blocked = f->fleet_known ? ft.blocked : 0;
	f->fleet_wait_s = f->fleet_known ? ft.wait_ms / 1000.0 : 0;
	if (ap_state_read_counters(st, &hf->counters, &hf->n) < 0 || hf->n == 0)
		return;
	hf->names = calloc(hf->n, sizeof(char *));
	hf->values = calloc(hf->n, sizeof(uint64_t));
	if (!hf->names || !hf->values)
		return;
	for (size_t i = 0; i < hf->n; i++) {
		hf->names[i] = hf->counters[i].name;
		hf->values[i] = hf->counters[i].value;
	}
	f->counter_names = hf->names;
	f->counter_values = hf->values;
	f->n_counters = hf->n;
}

static void history_facts_clear(struct history_facts *hf)
{
	free(hf->counters);
	free(hf->names);
	free(hf->values);
}

/* --- probes --------------------------------------------------------------------------------- */

/* The probes' record (records.h); a missing file is an empty one, a damaged line is lost. */
static int probes_read(struct ap_state *st, struct ap_probe_line **ret, size_t *ret_n)
{
	_cleanup_free_ char *text = NULL;
	int r = ap_state_read_probes(st, &text);

	if (r == -ENOENT) {
		*ret = NULL;
		*ret_n = 0;
		return 0;
	}
	return r < 0 ? r : ap_records_probes_parse(text, ret, ret_n, NULL);
}

/* in's unit gets its line (a new kind starts its count again); its failure times keep those
 * within the window, the newest AP_RECORDS_PROBE_TIMES_MAX. */
static int probes_update(struct ap_probe_line **v, size_t *n, const struct ap_record_probe_result *in)
{
	unsigned long long now = ap_now_realtime_usec();
	unsigned long long since = now > in->window_usec ? now - in->window_usec : 0;
	struct ap_probe_line *p = NULL, was = { 0 };
	size_t k = 0;

	for (size_t i = 0; i < *n && !p; i++)
		if (strcmp((*v)[i].unit, in->unit) == 0)
			p = &(*v)[i];
	if (!p) {
		struct ap_probe_line *w = realloc(*v, (*n + 1) * sizeof(**v));

		if (!w)
			return -ENOMEM;
		*v = w;
		p = &w[(*n)++];
	} else if (strcmp(p->kind, in->kind) == 0) {
		was = *p;
	}
	*p = (struct ap_probe_line){ .healthy = in->healthy,
				     .failures = was.failures + !in->healthy };
	snprintf(p->kind, sizeof(p->kind), "%s", in->kind);
	snprintf(p->unit, sizeof(p->unit), "%s", in->unit);
	snprintf(p->result, sizeof(p->result), "%s", in->result ? in->result : "");
	for (size_t i = 0; i < was.n_times; i++)
		if (was.times[i] > since)
			was.times[k++] = was.times[i];
	if (!in->healthy)
		was.times[k == AP_RECORDS_PROBE_TIMES_MAX ? k - 1 : k++] = now;
	memcpy(p->times, was.times, k * sizeof(*was.times));
	p->n_times = k;
	return 0;
}

int ap_record_probe(struct ap_state *st, const struct ap_record_probe_result *in)
{
	_cleanup_free_ struct ap_probe_line *v = NULL;
	_cleanup_free_ char *text = NULL;
	size_t n = 0;
	int lock, r;

	if (strpbrk(in->unit, " \t\n") || strlen(in->unit) >= sizeof(v->unit) ||
	    strlen(in->kind) >= sizeof(v->kind))
		return -EINVAL;
	lock = ap_state_lock_history(st, 10);
	if (lock < 0)
		return ap_log_error(lock, "failed to record the probe of '%s': %s", in->unit,
				    strerror(-lock));
	r = probes_read(st, &v, &n);
	if (r >= 0)
		r = probes_update(&v, &n, in);
	if (r >= 0)
		r = ap_records_probes_format(v, n, &text);
	if (r >= 0)
		r = ap_state_write_probes(st, text);
	close(lock);
	if (r < 0)
		ap_log_error(r, "failed to record the probe of '%s': %s", in->unit, strerror(-r));
	return r;
}

int ap_record_probe_read(struct ap_state *st, const char *unit, unsigned long long since_real,
			 unsigned long long mark_real, struct ap_record_probe_state *ret)
{
	_cleanup_free_ struct ap_probe_line *v = NULL;
	size_t n = 0;
	int r = probes_read(st, &v, &n);

	for (size_t i = 0; r >= 0 && i < n; i++) {
		if (strcmp(v[i].unit, unit) != 0)
			continue;
		*ret = (struct ap_record_probe_state){ .healthy = v[i].healthy };
		snprintf(ret->kind, sizeof(ret->kind), "%s", v[i].kind);
		snprintf(ret->result, sizeof(ret->result), "%s", v[i].result);
		for (size_t k = 0; k < v[i].n_times; k++)
			if (v[i].times[k] > since_real) {
				ret->failures_in_window++;
				ret->failures_before += v[i].times[k] < mark_real;
				if (v[i].times[k] > ret->last_failure_real)
					ret->last_failure_real = v[i].times[k];
			}
		return 0;
	}
	return r < 0 ? r : -ENOENT;
}

/* autopull_probe_failures_total{unit,kind} and autopull_unit_healthy{unit}, from the record. */
static int probe_metrics(struct ap_state *st, const char *host, struct ap_buf *b)
{
	_cleanup_free_ struct ap_probe_line *v = NULL;
	size_t n = 0;
	int r = probes_read(st, &v, &n);

	for (int pass = 0; r >= 0 && n && pass < 2; pass++) {
		r = ap_buf_printf(b, pass ? "# HELP autopull_unit_healthy Whether the unit's last "
				  "health probe passed.\n# TYPE autopull_unit_healthy gauge\n"
					  : "# HELP autopull_probe_failures_total Health probes a "
				  "unit failed.\n# TYPE autopull_probe_failures_total counter\n");
		for (size_t i = 0; r >= 0 && i < n; i++) {
			r = ap_buf_printf(b, "%s{unit=", pass ? "autopull_unit_healthy"
						  : "autopull_probe_failures_total");
			if (r >= 0)
				r = ap_buf_json_string(b, v[i].unit);
			if (r >= 0 && !pass)
				r = ap_buf_printf(b, ",kind=");
			if (r >= 0 && !pass)
				r = ap_buf_json_string(b, v[i].kind);
			if (r >= 0)
				r = ap_buf_printf(b, ",host=");
			if (r >= 0)
				r = ap_buf_json_string(b, host);
			if (r >= 0)
				r = ap_buf_printf(b, "} %llu\n", pass ? (unsigned long long)v[i].healthy
						  : (unsigned long long)v[i].failures);
		}
	}
	return r;
}

int ap_record_metrics(struct ap_state *st, const struct ap_config *c, const struct ap_hb_history *h,
		      const struct ap_hb_history *failed, const struct ap_hb_verdict *v, size_t n,
		      bool guard_ok, bool guard_tripped)
{
	_cleanup_free_ char *text = NULL, *path = NULL, *dir = NULL;
	char host[256] = "", applied[AP_OID_HEXSZ + 1] = "";
	struct ap_hb_facts f = { .host = host, .applied_commit = applied, .failed = failed->v,
				 .n_failed = failed->n, .guard_ok = guard_ok,
				 .guard_tripped = guard_tripped };
	struct history_facts hf = { 0 };
	const char *name;
	int dfd, r;

	if (gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "unknown");
	if (ap_state_read_applied(st, applied) < 0)
		applied[0] = '\0';
	read_last_apply(st, &f);
	read_guard_facts(st, &f);
	read_history_facts(st, &hf, &f);
	r = ap_hb_render_metrics(h, v, n, &f, ap_now_realtime_usec(), &text);
	history_facts_clear(&hf);
	if (r >= 0) {
		struct ap_buf b = { .data = TAKE_PTR(text) };

		b.len = strlen(b.data);
		b.cap = b.len + 1;
		r = probe_metrics(st, host, &b);
		text = b.data;
	}
	path = c->guard.metrics_file ? strdup(c->guard.metrics_file)
				     : ap_strdupf("%s/metrics.prom", c->state_dir);
	dir = path ? ap_path_parent(path) : NULL;
	if (r < 0 || !dir)
		return r < 0 ? r : -ENOMEM;
	name = strrchr(path, '/') + 1;
	dfd = ap_fs_open_dir(dir, 1, 0755);
	/* Every writer of the metrics holds the history lock: a temp file here is a killed one's. */
	if (dfd >= 0)
		(void)ap_fs_remove_stale_temps(dfd, name);
	/* A scrape reads either version whole; a power cut may bring back the one before. */
	r = dfd < 0 ? dfd : ap_fs_write_atomic_flags(dfd, name, text, strlen(text), 0644,
						     (uid_t)-1, (gid_t)-1, AP_FS_NO_DIRSYNC);
	if (dfd >= 0)
		close(dfd);
	if (r < 0)
		ap_log_error(r, "failed to write metrics to '%s': %s", path, strerror(-r));
	/* The same samples, whether or not the file could be written; a failed push is only
	 * a warning (push.c). */
	if (ap_push_metrics(&c->guard, text) < 0)
		(void)ap_state_count(st, "push_failures"); /* logged by state.c */
	return r;
}
