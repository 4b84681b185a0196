/* autopull status: everything an operator needs at 3 a.m. on one screen — the applied commit,
 * what is pending on the branch, a pin, the last apply, the guard's verdict, bad commits, an
 * unfinished apply and drift — or the same as one JSON document. It changes nothing: the
 * guard is sampled without recording, the branch is as of the last fetch. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "drift.h"
#include "exitcode.h"
#include "log.h"
#include "state.h"
#include "util.h"
#include "guard.h"
#include "linger.h"

struct status {
	struct ap_ctx *c;
	unsigned long long now;
	char applied[AP_OID_HEXSZ + 1], tip[AP_OID_HEXSZ + 1];
	struct ap_commit_info info;
	bool have_info, have_tip, have_pending, have_pin, have_journal, have_guard, have_drift;
	size_t pending;
	struct ap_pin pin;
	struct ap_event *events;
	size_t n_events;
	const struct ap_event *last;
	/* The newest run that did not apply, when nothing was applied since: a stuck branch. */
	const struct ap_event *attempt;
	uint64_t attempt_since; /* the first run of that streak */
	size_t attempt_runs;
	struct ap_guard_result guard;
	struct ap_bad *bad;
	size_t n_bad;
	struct ap_bad *skips; /* autopull trust skip */
	size_t n_skips;
	struct ap_journal j;
	struct ap_drift drift;
	bool have_fleet;
	struct ap_fleet_tick fleet; /* what the last run saw of its fleet */
	struct ap_probe_line *probes; /* each probed unit's last probe (records.h) */
	size_t n_probes;
};

static void status_done(struct status *s)
{
	ap_commit_info_clear(&s->info);
	ap_pin_clear(&s->pin);
	ap_events_free(s->events, s->n_events);
	ap_guard_result_clear(&s->guard);
	ap_bad_free(s->bad, s->n_bad);
	ap_bad_free(s->skips, s->n_skips);
	ap_journal_clear(&s->j);
	ap_drift_clear(&s->drift);
	free(s->probes);
}

/* The probes' record: none when it is missing or unreadable (status only reports). */
static void read_probes(struct ap_state *st, struct status *s)
{
	_cleanup_free_ char *text = NULL;

	if (ap_state_read_probes(st, &text) < 0 ||
	    ap_records_probes_parse(text, &s->probes, &s->n_probes, NULL) < 0) {
		s->probes = NULL;
		s->n_probes = 0;
	}
}

static bool is_attempt(const struct ap_event *e)
{
	return e->kind == AP_EVENT_APPLY || e->kind == AP_EVENT_REVERT ||
		e->kind == AP_EVENT_REFUSED;
}

/* The runs since the last successful apply that refused or failed, newest first. They stop
 * counting once the applied commit moved on (a later commit had nothing to do: no event). */
static void find_attempt(struct status *s)
{
	for (size_t i = s->n_events; i-- > 0;) {
		const struct ap_event *e = &s->events[i];

		if (!is_attempt(e))
			continue;
		if (e->kind != AP_EVENT_REFUSED && strcmp(e->result, "ok") == 0)
			break;
		if (!s->attempt)
			s->attempt = e;
		s->attempt_since = e->realtime_usec;
		s->attempt_runs++;
	}
	if (s->attempt && strcmp(s->attempt->from, s->applied) != 0) {
		s->attempt = NULL;
		s->attempt_runs = 0;
	}
}

/* Each part is best effort: a status that fails because one part cannot be read is no help
 * at 3 a.m. Failures are logged by the modules. */
static void gather(struct status *s)
{
	struct ap_ctx *c = s->c;

	if (ap_state_read_applied(c->st, s->applied) < 0)
		s->applied[0] = '\0';
	if (*s->applied && ap_ctx_repo(c))
		s->have_info = ap_repo_commit_info(c->repo, s->applied, &s->info) >= 0;
	if (ap_ctx_repo(c))
		s->have_tip = ap_repo_branch_tip(c->repo, c->cfg->branch, s->tip) >= 0;
	if (s->have_tip)
		s->have_pending = ap_repo_count_commits(c->repo, s->applied, s->tip,
							&s->pending) >= 0;
	s->have_pin = ap_state_read_pin(c->st, &s->pin) >= 0;
	(void)ap_state_read_events(c->st, &s->events, &s->n_events);
	for (size_t i = s->n_events; i-- > 0 && !s->last;)
		if (s->events[i].kind == AP_EVENT_APPLY || s->events[i].kind == AP_EVENT_REVERT)
			s->last = &s->events[i];
	find_attempt(s);
	if (ap_ctx_bus(c))
		s->have_guard = ap_guard_heartbeat(c->bus, c->st, c->cfg, false, &s->guard) >= 0;
	(void)ap_state_list_bad(c->st, &s->bad, &s->n_bad);
	(void)ap_state_list_overrides(c->st, "trust-skip", &s->skips, &s->n_skips);
	s->have_journal = ap_state_read_journal(c->st, &s->j) >= 0;
	s->have_fleet = c->cfg->fleet.enabled && ap_state_read_fleet(c->st, &s->fleet) >= 0;
	read_probes(c->st, s);
	/* Comparing a secret needs the identity; without one status still answers, the
	 * drift left out and the identity's problem (with its fix) on stderr. */
	if (*s->applied && ap_config_check_identity(c->cfg) >= 0)
		s->have_drift = ap_drift_check(c, s->applied, &s->drift) >= 0;
}

/* --- people ------------------------------------------------------------------------------ */

/* Every line goes through ap_buf_linef: subjects, authors, reasons and paths come from the
 * repository or the state directory and are escaped, never sent to the terminal raw. */

static int human_last(struct ap_buf *b, const struct status *s)
{
	char ago[32];

	if (!s->last)
		return ap_buf_linef(b, "  last:     no apply recorded");
	ap_format_ago(s->last->realtime_usec, s->now, ago, sizeof(ago));
	return ap_buf_linef(b, "  last:     %s %s %s in %.1f s (%s)%s%s",
			    ap_event_kind_to_string(s->last->kind), s->last->result, ago,
			    s->last->duration_ms / 1000.0, s->last->trigger, s->last->units ? ": "
			    : "",
			    s->last->units ? s->last->units : "");
}

static int human_attempt(struct ap_buf *b, const struct status *s)
{
	const struct ap_event *e = s->attempt;
	char since[32], ago[32];

	if (!e)
		return 0;
	ap_format_ago(s->attempt_since, s->now, since, sizeof(since));
	ap_format_ago(e->realtime_usec, s->now, ago, sizeof(ago));
	/* A reason can quote the repository (a path, a validator's words): the line is escaped. */
	return ap_buf_linef(b, "  attempt:  %s %s%s%s %.12s, %zu run(s) since %s, the last %s%s%s",
			    e->kind == AP_EVENT_REFUSED ? "refused"
			    : ap_event_kind_to_string(e->kind),
			    e->kind == AP_EVENT_REFUSED ? "(" : "", e->result,
			    e->kind == AP_EVENT_REFUSED ? ")" : "", *e->to ? e->to : "-",
			    s->attempt_runs, since, ago, e->reason ? ": " : "",
			    e->reason ? e->reason : "");
}

/* The verdict word may be painted; the colour codes are ours and added after escaping. */
static int human_guard(struct ap_buf *b, const struct status *s, bool colour)
{
	const char *word = s->guard.ok ? "ok" : "REFUSING";
	int r;

	if (!s->have_guard)
		return ap_buf_linef(b,
				    "  guard:    unknown (the service manager cannot be reached)");
	r = colour ? ap_buf_printf(b, "  guard:    \033[%sm%s\033[0m", s->guard.ok ? "1;32"
				   : "1;31",
				   word)
		   : ap_buf_printf(b, "  guard:    %s", word);
	if (r >= 0)
		r = ap_buf_linef(b, "%s%s", s->guard.tripped ? ": tripped: " : "",
				 s->guard.tripped ? s->guard.tripped : "");
	for (size_t i = 0; r >= 0 && i < s->guard.n; i++) {
		struct ap_buf hint = { 0 };

		const struct ap_hb_verdict *v = &s->guard.v[i];

		if (!v->looping && !v->stale && !v->unhealthy)
			continue;
		r = ap_buf_linef(b, "            %s %s: %s", v->unit,
				 v->looping || v->unhealthy ? ap_guard_verdict_word(v) : "stale",
				 v->why);
		if (r >= 0 && (v->looping || v->unhealthy) &&
		    ap_guard_clear_hint(&s->guard, i, s->c->cfg->scope, s->now, &hint) >= 0 &&
		    hint.data)
			r = ap_buf_linef(b, "              %s", hint.data);
		ap_buf_clear(&hint);
	}
	return r;
}

static int human_head(struct ap_buf *b, const struct status *s)
{
	const struct ap_ctx *c = s->c;
	char ago[32];
	int r = ap_buf_linef(b, "autopull: %s scope, %s", ap_scope_to_string(c->cfg->scope),
			     c->cfg->path);

	if (r >= 0 && !*s->applied)
		r = ap_buf_linef(b, "  applied:  nothing yet");
	else if (r >= 0 && s->have_info) {
		ap_format_ago((unsigned long long)s->info.time * 1000000, s->now, ago, sizeof(ago));
		r = ap_buf_linef(b, "  applied:  %.12s \"%s\" by %s, committed %s", s->applied,
				 s->info.subject, s->info.author, ago);
	} else if (r >= 0)
		r = ap_buf_linef(b, "  applied:  %.12s", s->applied);
	if (r >= 0 && s->have_tip)
		r = ap_buf_linef(b, "  branch:   %s at %.12s, %zu commit(s) pending (as of the last fetch)",
				 c->cfg->branch, s->tip, s->have_pending ? s->pending : 0);
	if (r >= 0 && s->have_pin) {
		ap_format_ago(s->pin.realtime_usec, s->now, ago, sizeof(ago));
		r = ap_buf_linef(b, "  pinned:   at %.12s since %s: %s ('autopull unpin' resumes deploys)",
				 s->pin.commit, ago, s->pin.reason);
	}
	return r;
}

static int human_rest(struct ap_buf *b, const struct status *s)
{
	char ago[32];
	int r = 0;

	for (size_t i = 0; r >= 0 && i < s->n_bad; i++) {
		ap_format_ago(s->bad[i].realtime_usec, s->now, ago, sizeof(ago));
		r = ap_buf_linef(b, "  bad:      %.12s rolled back %s: %s", s->bad[i].commit, ago,
				 s->bad[i].why);
	}
	for (size_t i = 0; r >= 0 && i < s->n_skips; i++) {
		ap_format_ago(s->skips[i].realtime_usec, s->now, ago, sizeof(ago));
		r = ap_buf_linef(b, "  skipped:  %.12s let through the signature check %s: %s",
				 s->skips[i].commit, ago, s->skips[i].why);
	}
	if (r >= 0 && s->have_journal) {
		r = ap_buf_linef(b, "  journal:  unfinished %s of %.12s",
				 s->j.mode == AP_JOURNAL_ROLLBACK ? "rollback" : "apply", s->j.to);
		for (size_t i = 0; r >= 0 && i < s->j.n_units; i++)
			if (s->j.units[i].state != AP_STEP_DONE)
				r = ap_buf_linef(b, "            owed: %s %s (%s)",
						 ap_unit_action_to_string(s->j.units[i].action),
						 s->j.units[i].unit,
						 ap_step_to_string(s->j.units[i].state));
	}
	/* the same line the run printed; the host names in it come from etcd: escaped */
	if (r >= 0 && s->have_fleet && s->fleet.blocked > 0)
		r = ap_buf_linef(b, "  fleet:    held back at the last run: %s",
				 *s->fleet.why ? s->fleet.why : "no slot");
	else if (r >= 0 && s->have_fleet)
		r = ap_buf_linef(b, "  fleet:    the last run waited %.1f s for its slot",
				 s->fleet.wait_ms / 1000.0);
	for (size_t i = 0; r >= 0 && i < s->n_probes; i++)
		r = ap_buf_linef(b, "  %s %s %s (%s probe, %llu failed so far): %s",
				 i ? "          " : "probes:  ", s->probes[i].unit,
				 s->probes[i].healthy ? "healthy" : "FAILING", s->probes[i].kind,
				 (unsigned long long)s->probes[i].failures, s->probes[i].result);
	if (r >= 0 && s->have_drift && s->drift.n == 0)
		r = ap_buf_linef(b, "  drift:    none");
	for (size_t i = 0; r >= 0 && s->have_drift && i < s->drift.n; i++)
		r = ap_buf_linef(b, "  %s %s (%s): %s", i ? "          " : "drift:   ",
				 s->drift.v[i].path,
				 s->drift.v[i].repo_path, s->drift.v[i].what);
	return r;
}

static int human(const struct status *s)
{
	struct ap_buf b = { 0 };
	int r = human_head(&b, s);

	if (r >= 0)
		r = human_attempt(&b, s);
	if (r >= 0)
		r = human_last(&b, s);
	if (r >= 0)
		r = human_guard(&b, s, ap_use_colour(STDOUT_FILENO));
	if (r >= 0)
		r = human_rest(&b, s);
	if (r >= 0 && fwrite(b.data, 1, b.len, stdout) != b.len)
		r = -EIO;
	ap_buf_clear(&b);
	return r;
}

/* --- programs ------------------------------------------------------------------------------ */

static int json_str(struct ap_buf *b, const char *key, const char *v, bool comma)
{
	int r = ap_buf_printf(b, "%s\"%s\": ", comma ? ", " : "", key);

	return r < 0 ? r : v ? ap_buf_json_string(b, v) : ap_buf_append(b, "null", 4);
}

static int json_head(struct ap_buf *b, const struct status *s)
{
	int r = json_str(b, "config", s->c->cfg->path, false);

	if (r >= 0)
		r = json_str(b, "scope", ap_scope_to_string(s->c->cfg->scope), true);
	if (r >= 0)
		r = json_str(b, "applied", *s->applied ? s->applied : NULL, true);
	if (r >= 0 && s->have_info) {
		r = json_str(b, "subject", s->info.subject, true);
		if (r >= 0)
			r = json_str(b, "author", s->info.author, true);
		if (r >= 0)
			r = ap_buf_printf(b, ", \"commit_time\": %lld", (long long)s->info.time);
	}
	if (r >= 0)
		r = json_str(b, "branch", s->c->cfg->branch, true);
	if (r >= 0)
		r = json_str(b, "tip", s->have_tip ? s->tip : NULL, true);
	if (r >= 0)
		r = s->have_pending ? ap_buf_printf(b, ", \"pending\": %zu", s->pending)
				    : ap_buf_printf(b, ", \"pending\": null");
	if (r >= 0)
		r = ap_buf_printf(b, ", \"pin\": ");
	if (r >= 0 && s->have_pin) {
		r = ap_buf_append(b, "{", 1);
		if (r >= 0)
			r = json_str(b, "commit", s->pin.commit, false);
		if (r >= 0)
			r = ap_buf_printf(b, ", \"since\": %llu",
					  (unsigned long long)(s->pin.realtime_usec / 1000000));
		if (r >= 0)
			r = json_str(b, "reason", s->pin.reason, true);
		if (r >= 0)
			r = ap_buf_append(b, "}", 1);
	} else if (r >= 0)
		r = ap_buf_append(b, "null", 4);
	return r;
}

/* The members an apply and an attempt share: result, from, to. */
static int json_outcome(struct ap_buf *b, const struct ap_event *e)
{
	int r = json_str(b, "result", e->result, true);

	if (r >= 0)
		r = json_str(b, "from", *e->from ? e->from : NULL, true);
	return r < 0 ? r : json_str(b, "to", *e->to ? e->to : NULL, true);
}

static int json_last(struct ap_buf *b, const struct ap_event *e)
{
	int r = ap_buf_printf(b, ", \"last_apply\": ");

	if (r < 0 || !e)
		return r < 0 ? r : ap_buf_append(b, "null", 4);
	r = ap_buf_printf(b, "{\"time\": %llu, \"kind\": \"%s\"",
			  (unsigned long long)(e->realtime_usec / 1000000),
			  ap_event_kind_to_string(e->kind));
	if (r >= 0)
		r = json_outcome(b, e);
	if (r >= 0)
		r = ap_buf_printf(b, ", \"duration_ms\": %llu", (unsigned long long)e->duration_ms);
	if (r >= 0)
		r = json_str(b, "trigger", e->trigger, true);
	if (r >= 0)
		r = json_str(b, "units", e->units, true);
	return r < 0 ? r : ap_buf_append(b, "}", 1);
}

static int json_attempt(struct ap_buf *b, const struct status *s)
{
	const struct ap_event *e = s->attempt;
	int r = ap_buf_printf(b, ", \"last_attempt\": ");

	if (r < 0 || !e)
		return r < 0 ? r : ap_buf_append(b, "null", 4);
	r = ap_buf_printf(b, "{\"time\": %llu, \"since\": %llu, \"runs\": %zu, \"kind\": \"%s\"",
			  (unsigned long long)(e->realtime_usec / 1000000),
			  (unsigned long long)(s->attempt_since / 1000000), s->attempt_runs,
			  ap_event_kind_to_string(e->kind));
	if (r >= 0)
		r = json_outcome(b, e);
	if (r >= 0)
		r = json_str(b, "reason", e->reason, true);
	return r < 0 ? r : ap_buf_append(b, "}", 1);
}

int ap_cmd_json_commits(struct ap_buf *b, const char *key, const struct ap_bad *v, size_t n)
{
	int r = ap_buf_printf(b, ", \"%s\": [", key);

	for (size_t i = 0; r >= 0 && i < n; i++) {
		r = ap_buf_printf(b, "%s{\"commit\": \"%s\", \"time\": %llu", i ? ", " : "",
				  v[i].commit, (unsigned long long)(v[i].realtime_usec / 1000000));
		if (r >= 0)
			r = json_str(b, "why", v[i].why, true);
		if (r >= 0)
			r = ap_buf_append(b, "}", 1);
	}
	return r < 0 ? r : ap_buf_append(b, "]", 1);
}

static int json_rest(struct ap_buf *b, const struct status *s)
{
	int r = ap_buf_printf(b, ", \"guard\": ");

	if (r >= 0)
		r = s->have_guard ? ap_guard_format(&s->guard, true, b) : ap_buf_append(b, "null",
											4);
	if (r >= 0)
		r = ap_cmd_json_commits(b, "bad", s->bad, s->n_bad);
	if (r >= 0)
		r = ap_cmd_json_commits(b, "trust_skips", s->skips, s->n_skips);
	if (r >= 0)
		r = ap_buf_printf(b, ", \"journal\": ");
	if (r >= 0 && s->have_journal) {
		r = ap_buf_printf(b, "{\"mode\": \"%s\"",
				  s->j.mode == AP_JOURNAL_ROLLBACK ? "rollback" : "apply");
		if (r >= 0)
			r = json_str(b, "from", s->j.from, true);
		if (r >= 0)
			r = json_str(b, "to", s->j.to, true);
		if (r >= 0)
			r = ap_buf_printf(b, ", \"owed\": [");
		for (size_t i = 0, k = 0; r >= 0 && i < s->j.n_units; i++) {
			if (s->j.units[i].state == AP_STEP_DONE)
				continue;
			r = ap_buf_printf(b, "%s{", k++ ? ", " : "");
			if (r >= 0)
				r = json_str(b, "unit", s->j.units[i].unit, false);
			if (r >= 0)
				r = ap_buf_printf(b, ", \"action\": \"%s\", \"state\": \"%s\"}",
						  ap_unit_action_to_string(s->j.units[i].action),
						  ap_step_to_string(s->j.units[i].state));
		}
		if (r >= 0)
			r = ap_buf_printf(b, "]}");
	} else if (r >= 0)
		r = ap_buf_append(b, "null", 4);
	if (r >= 0 && s->have_fleet)
		r = ap_buf_printf(b, ", \"fleet\": {\"blocked\": %s, \"slot_wait_s\": %.3f",
				  s->fleet.blocked > 0 ? "true" : "false",
				  s->fleet.wait_ms / 1000.0);
	if (r >= 0 && s->have_fleet)
		r = json_str(b, "why", s->fleet.why, true);
	if (r >= 0 && s->have_fleet)
		r = ap_buf_append(b, "}", 1);
	if (r >= 0)
		r = ap_buf_printf(b, ", \"probes\": [");
	for (size_t i = 0; r >= 0 && i < s->n_probes; i++) {
		r = ap_buf_printf(b, "%s{", i ? ", " : "");
		if (r >= 0)
			r = json_str(b, "unit", s->probes[i].unit, false);
		if (r >= 0)
			r = json_str(b, "kind", s->probes[i].kind, true);
		if (r >= 0)
			r = ap_buf_printf(b, ", \"healthy\": %s, \"failures\": %llu",
					  s->probes[i].healthy ? "true" : "false",
					  (unsigned long long)s->probes[i].failures);
		if (r >= 0)
			r = json_str(b, "result", s->probes[i].result, true);
		if (r >= 0)
			r = ap_buf_append(b, "}", 1);
	}
	if (r >= 0)
		r = ap_buf_printf(b, "], \"drift\": %s", s->have_drift ? "[" : "null");
	for (size_t i = 0; r >= 0 && s->have_drift && i < s->drift.n; i++) {
		r = ap_buf_printf(b, "%s{", i ? ", " : "");
		if (r >= 0)
			r = json_str(b, "path", s->drift.v[i].path, false);
		if (r >= 0)
			r = json_str(b, "repo_path", s->drift.v[i].repo_path, true);
		if (r >= 0)
			r = json_str(b, "what", s->drift.v[i].what, true);
		if (r >= 0)
			r = ap_buf_append(b, "}", 1);
	}
	if (r >= 0 && s->have_drift)
		r = ap_buf_append(b, "]", 1);
	return r;
}

static int json(const struct status *s)
{
	struct ap_buf b = { 0 };
	int r = ap_buf_append(&b, "{", 1);

	if (r >= 0)
		r = json_head(&b, s);
	if (r >= 0)
		r = json_attempt(&b, s);
	if (r >= 0)
		r = json_last(&b, s->last);
	if (r >= 0)
		r = json_rest(&b, s);
	if (r >= 0)
		r = ap_buf_printf(&b, "}\n");
	if (r >= 0)
		fputs(b.data, stdout);
	ap_buf_clear(&b);
	return r;
}

int ap_cmd_status(const struct ap_opts *o, char **args)
{
	struct status s = { .now = ap_now_realtime_usec() };
	struct ap_ctx c;
	int code = ap_ctx_open(o, 0, &c);

	if (code != AP_EXIT_OK)
		return code;
	s.c = &c;
	(void)ap_linger_check(c.cfg->scope); /* logged: a warning beside the status */
	gather(&s);
	code = (o->json ? json(&s) : human(&s)) < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
	status_done(&s);
	ap_ctx_done(&c);
	return code;
}
