/* The verbs. apply: lock → state → finish what an interrupted run left → fetch → diff → plan
 * → guard → validate → preflight → execute (apply.c) → exit code. The only place that
 * combines the layer-1 modules, and the place where errors become exit codes (exitcode.h).
 *
 * What a journal found at the start means (journal.h):
 *   rollback mode         a rollback was interrupted: finish it.
 *   files not all written the run was killed before all its files were written: put them back
 *                         (the host returns to the state before it) and plan afresh.
 *   files written         the host's files are at the journal's commit: if the branch still
 *                         points there, do what is owed; if it moved on, plan from the
 *                         journal's commit to the new tip and do what is owed with it, so that
 *                         a fix always applies and nothing owed is lost. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "apply.h"
#include "bus.h"
#include "config.h"
#include "context.h"
#include "drift.h"
#include "effects.h"
#include "engine.h"
#include "exitcode.h"
#include "install.h"
#include "log.h"
#include "plan.h"
#include "preflight.h"
#include "print.h"
#include "repo.h"
#include "spawn.h"
#include "state.h"
#include "trust.h"
#include "unitfile.h"
#include "unitpolicy.h"
#include "util.h"
#include "validate.h"
#include "watch.h"

struct run {
	struct ap_ctx *c;
	const struct ap_opts *o;
	struct ap_changes changes; /* the plan borrows file contents from here */
	struct ap_plan *plan;
	struct ap_guard_result guard;
	bool have_guard;
	char **owned;
	char applied[AP_OID_HEXSZ + 1]; /* "" when nothing was applied yet */
	struct ap_journal j;
	bool journal;
	unsigned long long start;  /* monotonic, for the duration of the event */
	struct ap_pin pin;         /* the pin in force (pin.commit "" when none) */
	bool printed;              /* --json: the one document is out */
	bool noted;                /* an event was recorded: the metrics must follow */
	bool reverting;            /* this apply puts drifted files back */
	char tip[AP_OID_HEXSZ + 1]; /* the branch tip, once fetched */
	const char *refused;       /* this run's refusal (events.h results), NULL when none */
	char why[1024];            /* and its reason: the history, the journal, --json */
};

static void run_done(struct run *r)
{
	ap_pin_clear(&r->pin);
	ap_journal_clear(&r->j);
	ap_strv_free(r->owned);
	ap_guard_result_free(&r->guard);
	if (r->plan)
		ap_plan_free(r->plan);
	ap_changes_free(&r->changes);
}

static struct ap_bus *get_bus(struct run *r)
{
	return ap_ctx_bus(r->c);
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

#define HOOK_TIMEOUT_USEC (60ULL * 1000000)

/* The operator's hook for an event (hooks: in the configuration), run like a validator: its
 * argv, a clean environment with the event in it, a deadline. A hook that fails is a
 * warning: it must not change what the apply did. */
static void run_hook(struct run *r, char *const *argv, const char *event, const struct ap_event *e)
{
	_cleanup_strv_free_ char **env = NULL;
	struct ap_spawn_result res = { 0 };
	char *vars[] = {
		ap_strdupf("AUTOPULL_EVENT=%s", event), ap_strdupf("AUTOPULL_RESULT=%s", e->result),
		ap_strdupf("AUTOPULL_COMMIT=%s", e->to), ap_strdupf("AUTOPULL_FROM=%s", e->from),
		ap_strdupf("AUTOPULL_REASON=%s", e->reason ? e->reason : ""),
		ap_strdupf("AUTOPULL_UNITS=%s", e->units ? e->units : ""),
		ap_strdupf("AUTOPULL_CONFIG=%s", r->c->cfg->path),
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

static void hooks_for(struct run *r, const struct ap_event *e)
{
	const struct ap_hooks *h = &r->c->cfg->hooks;

	if (e->kind == AP_EVENT_REFUSED)
		run_hook(r, h->on_refused, "refused", e);
	else if ((e->kind == AP_EVENT_APPLY || e->kind == AP_EVENT_REVERT) &&
		 ap_startswith(e->result, "roll"))
		run_hook(r, h->on_rollback, "rollback", e);
	else if ((e->kind == AP_EVENT_APPLY || e->kind == AP_EVENT_REVERT) &&
		 (strcmp(e->result, "failed") == 0 || strcmp(e->result, "restored") == 0))
		run_hook(r, h->on_failure, "failure", e);
}

/* Records what this run did in the history and the counters. Best effort: a state dir that
 * cannot take the line must not turn a done apply into a failed one (state.c logs it). */
static void note(struct run *r, enum ap_event_kind kind, const char *result, const char *to,
		 const char *reason, const struct ap_journal *j)
{
	_cleanup_free_ char *units = units_of(j), *counter = NULL;
	struct ap_event e = { .realtime_usec = ap_now_realtime_usec(), .kind = kind,
			      .duration_ms = (ap_now_monotonic_usec() - r->start) / 1000,
			      .units = units, .reason = (char *)reason };

	snprintf(e.from, sizeof(e.from), "%s", r->applied);
	snprintf(e.to, sizeof(e.to), "%s", to ? to : "");
	snprintf(e.result, sizeof(e.result), "%s", result);
	snprintf(e.trigger, sizeof(e.trigger), "%s", trigger());
	ap_ctx_event(r->c, &e);
	r->noted = true;
	counter = ap_strdupf("%s:%s", ap_event_kind_to_string(kind), result);
	if (counter)
		(void)ap_state_count(r->c->st, counter);
	if (kind == AP_EVENT_APPLY && ap_startswith(result, "roll"))
		(void)ap_state_count(r->c->st, "rollback");
	hooks_for(r, &e);
}

/* A refusal, with why as its reason, or (why NULL) the error line that decided it (log.h),
 * or fallback when nothing was logged. An apply records it; a dry run reports it the same way
 * (--json: "refused") and exits with the same code, but records nothing. */
static void refuse(struct run *r, const char *kind, const char *to, const char *why,
		   const char *fallback)
{
	char logged[sizeof(r->why)];

	ap_log_reason_end(logged, sizeof(logged));
	r->refused = kind;
	snprintf(r->why, sizeof(r->why), "%s", why ? why : *logged ? logged : fallback);
	if (!r->o->dry_run)
		note(r, AP_EVENT_REFUSED, kind, to, r->why, NULL);
}

/* --- planning ------------------------------------------------------------------------ */

/* Loads the blob contents the planner needs: unit files (for [Install] and
 * X-AutoPull-OnChange=), and the old version of modified ones. Other files are only checked
 * for size here and read one at a time when staged or installed (read_source). */
static int load_blobs(struct run *r)
{
	for (size_t i = 0; i < r->changes.n; i++) {
		struct ap_change *ch = &r->changes.v[i];
		struct ap_path_map m = { 0 };
		bool mapped, blob;
		size_t size = 0;
		int k;

		if (ch->kind == AP_CHANGE_DELETE || ap_plan_map_path(r->c->cfg, ch->path, &m) < 0)
			continue;
		mapped = m.kind == AP_MAP_UNIT || m.kind == AP_MAP_DROPIN || m.kind == AP_MAP_FILE;
		blob = ch->new_mode == AP_GIT_MODE_BLOB || ch->new_mode == AP_GIT_MODE_EXEC;
		k = mapped && blob ? ap_repo_blob_size(r->c->repo, ch->new_oid, &size) : 0;
		if (k >= 0 && size > AP_MAX_BLOB_SIZE)
			k = -EFBIG;
		if (k >= 0 && blob && (m.kind == AP_MAP_UNIT || m.kind == AP_MAP_DROPIN))
			k = ap_repo_read_blob(r->c->repo, ch->new_oid, AP_MAX_BLOB_SIZE, &ch->new_data,
					      &ch->new_len);
		if (k >= 0 && (m.kind == AP_MAP_UNIT || m.kind == AP_MAP_DROPIN) &&
		    ch->kind == AP_CHANGE_MODIFY && !ch->old_data)
			k = ap_repo_read_blob(r->c->repo, ch->old_oid, AP_MAX_BLOB_SIZE, &ch->old_data,
					      &ch->old_len);
		ap_path_map_clear(&m);
		if (k == -EFBIG)
			return ap_log_error(k, "'%s' is larger than %u bytes; refusing to install it",
					    ch->path, AP_MAX_BLOB_SIZE);
		if (k < 0)
			return k;
	}
	return 0;
}

static int read_source(void *userdata, const struct ap_change *ch, char **ret, size_t *ret_len)
{
	struct run *r = userdata;

	return ap_repo_read_blob(r->c->repo, ch->new_oid, AP_MAX_BLOB_SIZE, ret, ret_len);
}

static int size_source(void *userdata, const struct ap_change *ch, size_t *ret)
{
	struct run *r = userdata;

	if (ch->new_data) {
		*ret = ch->new_len;
		return 0;
	}
	return ap_repo_blob_size(r->c->repo, ch->new_oid, ret);
}

static int query_states(struct run *r, const char *to, struct ap_unit_states *states)
{
	_cleanup_strv_free_ char **patterns = NULL;
	int k = ap_plan_units_needed(r->c->cfg, &r->changes, &patterns);

	if (k < 0 || !patterns)
		return k;
	if (!get_bus(r)) {
		if (!r->o->dry_run)
			return -ENOTCONN;
		ap_log_warning("no service manager reachable: unit actions are conditional");
		return 0;
	}
	k = ap_bus_list_units(r->c->bus, patterns, states);
	if (k >= 0)
		k = ap_bus_read_refusals(r->c->bus, states);
	if (k >= 0)
		k = ap_unitpolicy_read(r->c->repo, r->c->cfg, to, states);
	if (k < 0)
		return k;
	states->known = true;
	return 0;
}

/* Diff, blobs, unit states, plan. Returns an exit code. */
static int make_plan(struct run *r, const char *from, const char *to)
{
	struct ap_unit_states states = { 0 };
	_cleanup_strv_free_ char **prefixes = NULL;
	_cleanup_free_ char *error = NULL;
	int k;

	ap_changes_free(&r->changes);
	if (r->plan) {
		ap_plan_free(r->plan);
		r->plan = NULL;
	}
	k = ap_plan_prefixes(r->c->cfg, &prefixes);
	if (k >= 0)
		k = ap_repo_diff_paths(r->c->repo, *from ? from : NULL, to, prefixes, &r->changes);
	if (k >= 0)
		k = load_blobs(r);
	if (k == -EFBIG)
		return AP_EXIT_INVALID;
	if (k >= 0)
		k = query_states(r, to, &states);
	if (k >= 0)
		k = ap_plan_build(r->c->cfg, &r->changes, &states, from, to, &r->plan, &error);
	ap_unit_states_free(&states);
	if (k == -EINVAL && error) {
		ap_log_error(k, "%s", error);
		return AP_EXIT_INVALID;
	}
	/* No manager to ask (a user without a session yet, a system still booting): later. */
	if (k == -ENOTCONN)
		return AP_EXIT_TEMPFAIL;
	return k < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
}

static bool needs_bus(const struct ap_plan *p)
{
	for (size_t i = 0; i < p->n_units; i++)
		if (p->units[i].action != AP_ACTION_NONE)
			return true;
	return p->daemon_reload;
}

static bool plan_is_noop(const struct ap_plan *p)
{
	return p->n_files == 0 && !needs_bus(p);
}

/* --- checks before the first change ------------------------------------------------------ */

/* repo.h says which fetch failures pass by themselves and which need an operator. */
static int fetch_exit_code(int k, bool no_fetch)
{
	if (k == -EHOSTUNREACH || no_fetch)
		return AP_EXIT_TEMPFAIL;
	if (k == -EPERM || k == -EINVAL)
		return AP_EXIT_USAGE;
	if (k == -EACCES || k == -EKEYREJECTED || k == -ENOENT || k == -EREMOTEIO)
		return AP_EXIT_REMOTE;
	if (k == -EBADMSG)
		return AP_EXIT_INVALID; /* the source is refused; a retry gets the same objects */
	return AP_EXIT_FAILED;
}

/* `, "refused": {"kind": …, "reason": …}` when this run was refused. */
static int refused_json(const struct run *r, struct ap_buf *b)
{
	int k;

	if (!r->refused)
		return 0;
	k = ap_buf_printf(b, ", \"refused\": {\"kind\": \"%s\", \"reason\": ", r->refused);
	if (k >= 0)
		k = ap_buf_json_string(b, r->why);
	return k < 0 ? k : ap_buf_printf(b, "}");
}

/* The plan, for people before it runs, or for programs as one JSON document once the result
 * is known (result NULL: a dry run). */
static int print_plan_result(struct run *r, const char *result, const struct ap_journal *j)
{
	struct ap_buf b = { 0 }, g = { 0 };
	int k = ap_buf_printf(&g, r->o->json ? "\"guard\": " : "");

	if (k >= 0 && r->have_guard)
		k = ap_watch_format(&r->guard, r->o->json, &g);
	else if (k >= 0 && r->o->json)
		k = ap_buf_printf(&g, "null");
	if (k >= 0 && r->o->json && result)
		k = ap_buf_printf(&g, ", \"result\": \"%s\", \"duration_ms\": %llu", result,
				  (ap_now_monotonic_usec() - r->start) / 1000);
	if (k >= 0 && r->o->json && j)
		k = ap_print_journal_units_json(j, &g);
	if (k >= 0 && r->o->json)
		k = refused_json(r, &g);
	if (k >= 0)
		k = r->o->json ? ap_print_plan_json(r->plan, g.data, &b) : ap_print_plan_human(r->plan, &b);
	if (k >= 0 && !r->o->json && r->have_guard)
		k = ap_buf_append(&b, g.data, g.len);
	/* the reason quotes the repository: the line is escaped */
	if (k >= 0 && !r->o->json && r->refused)
		k = ap_buf_linef(&b, "refused (%s): %s", r->refused, r->why);
	ap_buf_free(&g);

	if (k >= 0 && fwrite(b.data, 1, b.len, stdout) != b.len)
		k = -EIO;
	fflush(stdout);
	ap_buf_free(&b);
	r->printed |= r->o->json;
	return k;
}

static int print_plan(struct run *r)
{
	/* --json prints one document, with the result, at the end. */
	return r->o->json && !r->o->dry_run ? 0 : print_plan_result(r, NULL, NULL);
}

static int check_not_emptying(struct run *r)
{
	size_t removed, remaining;

	if (r->o->allow_empty)
		return AP_EXIT_OK;
	ap_install_count(r->plan, r->owned, &removed, &remaining);
	if (removed > 0 && remaining == 0) {
		ap_log_error(-EPERM, "refusing to remove every installed file (%zu); pass "
				     "--allow-empty if the repository is meant to be empty", removed);
		return AP_EXIT_INVALID;
	}
	return AP_EXIT_OK;
}

static int validate(struct run *r)
{
	const struct ap_install_source src = { .read = read_source, .size = size_source, .userdata = r };
	_cleanup_free_ char *stage = NULL;
	int k = ap_state_scratch_dir(r->c->st, &stage);

	if (k >= 0)
		k = ap_validate_plan(r->plan, &src, r->c->cfg->scope, r->c->cfg->unit_dir, stage);
	return k == -EINVAL ? AP_EXIT_INVALID : k < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
}

/* Every destination writable, nothing in the way, room for files and backups: a problem
 * found here leaves the host as it was. */
static int preflight(struct run *r)
{
	const struct ap_install_source src = { .read = read_source, .size = size_source, .userdata = r };
	struct ap_preflight pf = { 0 };
	int k = ap_preflight_check(r->plan, r->owned, &src,
				     r->o->dry_run ? AP_PREFLIGHT_CHECK_ONLY : 0, &pf);

	if (k >= 0 && !r->o->dry_run)
		k = ap_state_check_space(r->c->st, pf.backup_bytes, pf.backup_files);
	ap_preflight_clear(&pf);
	if (k == -EINVAL)
		ap_log_error(k, "refusing to apply %.12s; the host is unchanged", r->plan->to);
	else if (k < 0)
		ap_log_error(k, "cannot apply %.12s now; the host is unchanged", r->plan->to);
	return k == -EINVAL ? AP_EXIT_INVALID : k < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
}

/* A timer this apply is about to enable and start has never fired: not stale. */
static void forget_new_units_stale(struct run *r)
{
	for (size_t i = 0; r->plan && i < r->guard.n; i++)
		for (size_t k = 0; k < r->plan->n_units; k++)
			if (r->plan->units[k].action == AP_ACTION_ENABLE_START &&
			    strcmp(r->plan->units[k].unit, r->guard.v[i].unit) == 0) {
				r->guard.v[i].stale = false;
				snprintf(r->guard.v[i].why, sizeof(r->guard.v[i].why),
					 "this apply enables and starts it");
			}
}

static void sample_guard(struct run *r, bool record)
{
	if (get_bus(r))
		r->have_guard = ap_watch_heartbeat(r->c->bus, r->c->st, r->c->cfg, record, &r->guard) >= 0;
	if (r->have_guard)
		forget_new_units_stale(r);
}

/* Refuses to pile a deploy onto a sick host (exit 3). Fails closed: a guard that cannot take
 * its sample, or that a failed rollback left tripped, refuses too, until --override-guard
 * says why. */
static int check_guard(struct run *r)
{
	_cleanup_free_ char *tripped = NULL;
	int k = ap_state_read_tripped(r->c->st, &tripped), sampled = -ENOTCONN;
	struct ap_buf b = { 0 };
	const char *to = r->plan ? r->plan->to : r->j.to;

	if (k < 0 && k != -ENOENT && !(tripped = strdup("the guard's state cannot be read")))
		return AP_EXIT_FAILED;
	/* A dry run without a manager (the repository's own CI) plans with conditional unit
	 * actions (query_states); the guard has nothing to sample there either. */
	if (r->o->dry_run && !tripped && !get_bus(r))
		return AP_EXIT_OK;
	if (get_bus(r))
		sampled = ap_watch_heartbeat(r->c->bus, r->c->st, r->c->cfg, !r->o->dry_run,
					     &r->guard);
	r->have_guard = sampled >= 0;
	if (r->have_guard)
		forget_new_units_stale(r);
	if (!tripped && sampled >= 0 && r->guard.ok)
		return AP_EXIT_OK;
	if (r->o->override_guard) {
		ap_log_warning("guard overridden for %.12s: %s", to, r->o->reason);
		if (r->o->dry_run)
			return AP_EXIT_OK;
		note(r, AP_EVENT_OVERRIDE, "guard", to, r->o->reason, NULL);
		k = ap_state_add_override(r->c->st, "guard", to, r->o->reason);
		if (k >= 0 && tripped)
			k = ap_state_clear_tripped(r->c->st);
		return k < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
	}
	if (sampled < 0)
		ap_log_error(sampled, "refusing to apply %.12s: the guard cannot sample the watched "
				      "units (%s)", to, strerror(-sampled));
	if (sampled >= 0 && ap_watch_format(&r->guard, false, &b) >= 0)
		fputs(b.data, stderr);
	ap_buf_free(&b);
	for (size_t i = 0; sampled >= 0 && i < r->guard.n; i++) {
		if (!r->guard.v[i].looping)
			continue;
		if (ap_watch_clear_hint(&r->guard, i, r->c->cfg->scope, ap_now_realtime_usec(), &b) < 0)
			return AP_EXIT_FAILED;
		ap_log_error(-EBUSY, "refusing to apply %.12s: unit '%s' is looping: %s; %s", to,
			     r->guard.v[i].unit, r->guard.v[i].why, b.data);
		ap_buf_free(&b);
	}
	if (tripped)
		ap_log_error(-EBUSY, "refusing to apply %.12s: the guard is tripped: %s", to,
			     tripped);
	ap_log_error(-EBUSY, "to apply anyway: autopull apply --override-guard --reason TEXT");
	return AP_EXIT_GUARD;
}

/* --- executing --------------------------------------------------------------------------- */

static const char *outcome_name(enum ap_apply_outcome out)
{
	static const char *const names[] = {
		[AP_APPLY_OK] = "ok", [AP_APPLY_FAILED] = "failed", [AP_APPLY_RESTORED] = "restored",
		[AP_APPLY_ROLLED_BACK] = "rolled-back", [AP_APPLY_ROLLBACK_FAILED] = "rollback-failed",
	};
	return (unsigned)out < ELEMENTSOF(names) ? names[out] : "failed";
}

/* "applied 1a2b3c4d5e6f in 1.2 s: 2 restarted, 1 reloaded, 1 started" */
static void closing_line(struct run *r, const struct ap_journal *j)
{
	unsigned n[AP_ACTION_REENABLE + 1] = { 0 };

	for (size_t i = 0; i < j->n_units; i++)
		if (j->units[i].state == AP_STEP_DONE && j->units[i].action <= AP_ACTION_REENABLE)
			n[j->units[i].action]++;
	if (r->o->json)
		return;
	/* Under the timer the journal entry of the apply already says it, with its fields. */
	if (!ap_log_stdout_is_journal())
		printf("applied %.12s in %.1f s: %u restarted, %u reloaded, %u started, %u stopped\n",
		       j->to, (ap_now_monotonic_usec() - r->start) / 1e6, n[AP_ACTION_RESTART],
		       n[AP_ACTION_RELOAD], n[AP_ACTION_START] + n[AP_ACTION_ENABLE_START],
		       n[AP_ACTION_STOP] + n[AP_ACTION_DISABLE_STOP]);
	/* The plan started these because they were failed: did the new files bring them back?
	 * The settle's verdict, not a look now: a crashing unit is "active" for a moment. */
	for (size_t i = 0; r->plan && i < r->plan->n_units; i++) {
		const struct ap_unit_action *u = &r->plan->units[i];
		const struct ap_journal_unit *ju = ap_journal_find_unit(j, u->unit);
		_cleanup_free_ char *named = ap_strdupf("unit '%s' ", u->unit);

		if (u->action != AP_ACTION_START || !ap_streq_ptr(u->state, "failed") || !ju ||
		    ju->state != AP_STEP_DONE)
			continue;
		if (named && j->why && ap_startswith(j->why, named))
			printf("  %s was failed: still failing after the settle: %s\n", u->unit, j->why);
		else
			printf("  %s was failed: came back, up after the settle\n", u->unit);
	}
	fflush(stdout);
}

static int execute(struct run *r, struct ap_journal *j, const struct ap_plan *p)
{
	const struct ap_install_source src = { .read = read_source, .size = size_source, .userdata = r };
	struct ap_effects e = { .cfg = r->c->cfg, .st = r->c->st, .bus = get_bus(r), .src = &src,
				.owned = TAKE_PTR(r->owned), .quiet_jobs = r->o->json,
				.crash = secure_getenv("AUTOPULL_TEST_CRASH") };
	enum ap_apply_outcome out = AP_APPLY_FAILED;
	struct ap_apply_ops ops;
	int k;

	ap_effects_ops(&e, &ops);
	k = e.bus || (j->n_units == 0 && ap_journal_is_done(j, AP_PHASE_RELOAD)) ? 0 : -ENOTCONN;
	if (k >= 0)
		k = ap_apply_run(j, p, &ops, &out);
	r->owned = e.owned;
	if (k < 0)
		out = AP_APPLY_FAILED;
	(void)ap_state_write_last_apply(r->c->st, &(struct ap_last_apply){
		.realtime_usec = ap_now_realtime_usec(), .ok = out == AP_APPLY_OK });
	/* Why it failed (the settle's verdict) says more than why it was pinned. */
	note(r, r->reverting ? AP_EVENT_REVERT : AP_EVENT_APPLY, outcome_name(out), j->to,
	     out != AP_APPLY_OK && j->why ? j->why : r->pin.commit[0] ? r->pin.reason : NULL, j);
	if (r->o->json && r->plan)
		(void)print_plan_result(r, outcome_name(out), j);
	switch (out) {
	case AP_APPLY_OK:
		closing_line(r, j);
		return AP_EXIT_OK;
	case AP_APPLY_RESTORED:
		ap_log_error(-EIO, "apply of %.12s failed: its files were put back; the applied "
				   "commit stays %.12s", j->to, *r->applied ? r->applied : "(none)");
		return AP_EXIT_FAILED;
	case AP_APPLY_FAILED:
		for (size_t i = 0; i < j->n_units; i++)
			if (j->units[i].state != AP_STEP_DONE)
				ap_log_error(-EIO, "owed for the next run: %s %s",
					     ap_unit_action_to_string(j->units[i].action), j->units[i].unit);
		ap_log_error(k < 0 ? k : -EIO, "apply of %.12s failed; the applied commit stays %.12s",
			     j->to, *r->applied ? r->applied : "(none)");
		return AP_EXIT_FAILED;
	default:
		return AP_EXIT_FAILED; /* rolled back: logged by the rollback */
	}
}

/* A rollback that was interrupted is finished; an apply killed before all its files were
 * written is undone (and an older journal it had superseded comes back, apply.c). */
static int finish_interrupted(struct run *r)
{
	struct ap_effects e = { .cfg = r->c->cfg, .st = r->c->st, .bus = get_bus(r),
				.owned = TAKE_PTR(r->owned), .crash = secure_getenv("AUTOPULL_TEST_CRASH") };
	bool rollback = r->j.mode == AP_JOURNAL_ROLLBACK;
	enum ap_apply_outcome out;
	struct ap_apply_ops ops;
	int k;

	ap_effects_ops(&e, &ops);
	if (rollback)
		ap_log_notice("finishing the interrupted rollback of %.12s", r->j.to);
	else
		ap_log_notice("the apply of %.12s was interrupted before all its files were written; "
			      "putting them back", r->j.to);
	k = e.bus || r->j.n_units == 0 ? ap_apply_undo(&r->j, &ops, rollback, r->j.why, &out)
				       : -ENOTCONN;
	r->owned = e.owned;
	ap_journal_clear(&r->j);
	r->journal = false;
	if (k >= 0)
		k = ap_state_read_journal(r->c->st, &r->j);
	r->journal = k >= 0;
	if (k < 0 && k != -ENOENT)
		return ap_log_error(k, "failed to finish the interrupted run: %s", strerror(-k)),
		       AP_EXIT_FAILED;
	return rollback ? AP_EXIT_FAILED : AP_EXIT_OK;
}

/* --- trusting the source (trust.h) ---------------------------------------------------
 * Everything about "may these commits be applied at all" is in this block: check_source()
 * runs once the target is known and before anything is planned, for apply and dry-run
 * alike, and returns an exit code. A refusal changes nothing; it is recorded like any. */

/* The one way a source is refused, whatever refused it: the message naming the commit and
 * the reason, then (unless a dry run) the `refused` event, its counter and on_refused hook.
 * reason is the event's result and the metric's label; why goes to the event and the hook.
 * Returns the exit code of a refused source. */
static int refuse_source(struct run *r, const char *reason, const char *commit, const char *why,
			 const char *fmt, ...) _printf_(5, 6);
static int refuse_source(struct run *r, const char *reason, const char *commit, const char *why,
			 const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	ap_log_error(-EPERM, "refusing %.12s: %s; nothing was changed", commit,
		     msg ? msg : why);
	/* a dry run reports it the same way (--json: "refused") and records nothing */
	r->refused = reason;
	snprintf(r->why, sizeof(r->why), "%s", why);
	if (!r->o->dry_run)
		note(r, AP_EVENT_REFUSED, reason, commit, why, NULL);
	return AP_EXIT_INVALID;
}

struct source_walk {
	struct ap_trust *trust;
	bool dry_run;
	FILE *out;                  /* where a dry run lists every verdict */
	bool has_applied_time;
	long long applied_time;     /* the applied commit's date, when moving forward from it */
	const char *target;         /* its own signature is never skipped */
	struct ap_bad *skips;       /* commits 'autopull trust skip' lets through */
	size_t n_skips;
	char current[AP_OID_HEXSZ + 1]; /* the commit being verified */
	char bad[AP_OID_HEXSZ + 1]; /* the first commit that failed */
	char line[512];             /* its verdict, for people */
	char reason[320];           /* the same without what the repository says (the author) */
};

static const struct ap_bad *find_skip(const struct source_walk *w, const char *id)
{
	for (size_t i = 0; strcmp(id, w->target) != 0 && i < w->n_skips; i++)
		if (strcmp(w->skips[i].commit, id) == 0)
			return &w->skips[i];
	return NULL;
}

static int source_commit(void *userdata, const struct ap_repo_commit *rc)
{
	struct source_walk *w = userdata;
	struct ap_trust_commit c = { .id = rc->id, .author = rc->author, .time = rc->time,
				     .has_floor = rc->parents > 0 && rc->parent_time != LLONG_MIN,
				     .floor = rc->parent_time, .signature = rc->signature,
				     .signature_len = rc->signature_len,
				     .payload = rc->signed_data, .payload_len = rc->signed_len };
	struct ap_trust_verdict v;
	struct ap_buf b = { 0 };
	const struct ap_bad *skip;
	int k;

	if (w->has_applied_time && (!c.has_floor || w->applied_time > c.floor))
		c.has_floor = true, c.floor = w->applied_time;
	memcpy(w->current, rc->id, sizeof(w->current));
	k = ap_trust_verify(w->trust, &c, &v);
	if (k >= 0)
		k = ap_trust_format_verdict(&c, &v, &b);
	if (k >= 0 && w->dry_run)
		fprintf(w->out, "source: %s", b.data);
	skip = k >= 0 && v.status != AP_TRUST_GOOD ? find_skip(w, rc->id) : NULL;
	if (skip)
		ap_log_warning("letting commit %.*s through: 'autopull trust skip' (%s)",
			       (int)b.len - 1, b.data, skip->why);
	else if (k >= 0 && v.status != AP_TRUST_GOOD && !*w->bad) {
		memcpy(w->bad, rc->id, sizeof(w->bad));
		snprintf(w->line, sizeof(w->line), "%.*s", (int)b.len - 1, b.data);
		snprintf(w->reason, sizeof(w->reason), "%s %s: %s", rc->id,
			 ap_trust_status_to_string(v.status), v.why);
	}
	ap_buf_free(&b);
	return k < 0 ? k : *w->bad && !w->dry_run;
}

/* A rewritten history is applied only when the operator said so, with a reason. */
static int allow_rewind(struct run *r, const char *applied, const char *target)
{
	if (!r->o->allow_rewind && !r->c->cfg->allow_rewind)
		return refuse_source(r, "rewind", target, "history was rewritten",
				     "it does not descend from the applied commit %.12s: history "
				     "was rewritten (force-push or rewind). To apply it anyway: "
				     "autopull apply --allow-rewind --reason TEXT (or "
				     "repo.allow_rewind: true)", applied);
	ap_log_warning("history was rewritten: %.12s does not descend from the applied commit "
		       "%.12s; applying it (%s)", target, applied,
		       r->o->allow_rewind ? r->o->reason : "repo.allow_rewind: true");
	if (!r->o->allow_rewind || r->o->dry_run)
		return AP_EXIT_OK;
	note(r, AP_EVENT_OVERRIDE, "rewind", target, r->o->reason, NULL);
	return ap_state_add_override(r->c->st, "rewind", target, r->o->reason) >= 0 ? AP_EXIT_OK
										    : AP_EXIT_FAILED;
}

/* A walk that gave no verdict. The operator's side (a verifier not installed or not
 * executable) is configuration, a verifier that hangs may pass, the machine running out is a failure; any
 * other failure while reading or checking a commit refuses the source, recorded like a bad
 * signature, so that a crafted commit cannot stop deploys without an alert. */
static int walk_failed(struct run *r, const struct source_walk *w, const char *target, int k)
{
	if (k == -ENOENT || k == -EACCES)
		return AP_EXIT_USAGE;
	if (k == -ETIMEDOUT)
		return AP_EXIT_TEMPFAIL;
	if (k == -ENOMEM || k == -ENOSPC || k == -EDQUOT || k == -EMFILE || k == -ENFILE)
		return AP_EXIT_FAILED;
	return refuse_source(r, "untrusted", target, "the signature could not be checked",
			     "commit %.12s: its signature could not be checked (%s)",
			     *w->current ? w->current : target, strerror(-k));
}

/* The applied commit's date bounds the dates of the commits that follow it. */
static void applied_time(struct run *r, enum ap_source_move m, const char *applied,
			 struct source_walk *w)
{
	struct ap_commit_info info = { 0 };

	if (m != AP_MOVE_FORWARD || ap_repo_commit_info(r->c->repo, applied, &info) < 0)
		return;
	w->has_applied_time = true;
	w->applied_time = (long long)info.time;
	ap_commit_info_clear(&info);
}

static int check_signatures(struct run *r, const struct ap_trust_range *range, enum ap_source_move m,
			    const char *applied, const char *target)
{
	const struct ap_trust_config *t = &r->c->cfg->trust;
	/* stdout stays one JSON document with --json */
	struct source_walk w = { .dry_run = r->o->dry_run, .out = r->o->json ? stderr : stdout,
				 .target = target };
	int k;

	/* ap_trust_range() hands out trust.since itself on a first run */
	if (range->from && range->from == t->since &&
	    ap_repo_is_ancestor(r->c->repo, t->since, target) != 1) {
		ap_log_error(-EINVAL, "trust.since %.12s is not an ancestor of %.12s on branch '%s'",
			     t->since, target, r->c->cfg->branch);
		return AP_EXIT_USAGE;
	}
	if (ap_trust_open(t, r->c->cfg->state_dir, (long long)(ap_now_realtime_usec() / 1000000),
			  &w.trust) < 0)
		return AP_EXIT_USAGE;
	applied_time(r, m, applied, &w);
	if (ap_state_list_overrides(r->c->st, "trust-skip", &w.skips, &w.n_skips) < 0) {
		ap_trust_free(w.trust);
		return AP_EXIT_FAILED;
	}
	k = ap_repo_walk(r->c->repo, range->from, target, range->first_parent, source_commit, &w);
	if (k >= 0 && !r->o->dry_run)
		(void)ap_trust_save(w.trust); /* the good ones stay good, whatever came after */
	ap_trust_free(w.trust);
	ap_bad_free(w.skips, w.n_skips);
	if (k < 0)
		return walk_failed(r, &w, target, k);
	if (!*w.bad)
		return AP_EXIT_OK;
	k = refuse_source(r, "untrusted", target, w.reason, "commit %s", w.line);
	if (strcmp(w.bad, target) != 0)
		ap_log_error(-EPERM, "a signed commit on top does not vouch for %.12s; to let this one "
			     "commit through: autopull trust skip %.12s --reason TEXT (recorded, shown "
			     "in status; see autopull(8))", w.bad, w.bad);
	return k;
}

static int check_source(struct run *r, const char *applied, const char *target)
{
	char from[AP_OID_HEXSZ + 1] = "";
	int fwd = 1, back = 0, code = AP_EXIT_OK;
	struct ap_trust_range range;
	enum ap_source_move m;

	/* --from plans between two commits of the infra repo's own CI: its range is checked,
	 * but it has no applied commit to have rewritten. */
	if (r->o->from && ap_repo_resolve_on_branch(r->c->repo, r->c->cfg->branch, r->o->from, from) < 0)
		return AP_EXIT_USAGE;
	if (*from)
		applied = from;
	if (*applied && strcmp(applied, target) != 0 &&
	    ((fwd = ap_repo_is_ancestor(r->c->repo, applied, target)) < 0 ||
	     (back = ap_repo_is_ancestor(r->c->repo, target, applied)) < 0))
		return AP_EXIT_FAILED;
	/* a pin is a chosen commit, like --commit: going back to it is a rollback */
	m = ap_trust_classify(applied, target, fwd > 0, back > 0,
			      r->o->commit != NULL || r->pin.commit[0]);
	if (m == AP_MOVE_REWIND && !*from && (code = allow_rewind(r, applied, target)) != AP_EXIT_OK)
		return code;
	ap_trust_range(&r->c->cfg->trust, m, applied, &range);
	if (range.check)
		code = check_signatures(r, &range, m, applied, target);
	return code;
}

/* --- apply ----------------------------------------------------------------------------- */

/* A manual apply of a chosen commit (and autopull pin) freezes deploys there, so that the next
 * tick does not undo a rollback. */
static int pin(struct run *r, const char *commit)
{
	struct ap_pin p = { .realtime_usec = ap_now_realtime_usec(),
			    .reason = (char *)(r->o->reason ? r->o->reason : "apply --commit") };

	memcpy(p.commit, commit, sizeof(p.commit));
	if (ap_state_write_pin(r->c->st, &p) < 0)
		return AP_EXIT_FAILED;
	note(r, AP_EVENT_PIN, "ok", commit, p.reason, NULL);
	ap_log_notice("pinned at %.12s (%s): ticks keep this commit until 'autopull unpin'",
		      commit, p.reason);
	ap_pin_clear(&r->pin);
	r->pin = (struct ap_pin){ .realtime_usec = p.realtime_usec, .reason = strdup(p.reason) };
	memcpy(r->pin.commit, commit, sizeof(p.commit));
	return r->pin.reason ? AP_EXIT_OK : AP_EXIT_FAILED;
}

static int find_target(struct run *r, char ret[AP_OID_HEXSZ + 1])
{
	const struct ap_opts *o = r->o;
	const struct ap_remote_opts ro = { .url = r->c->cfg->repo_url, .branch = r->c->cfg->branch,
					   .ssh_key = r->c->cfg->ssh_key,
					   .known_hosts = r->c->cfg->known_hosts,
					   .ca_file = r->c->cfg->ca_file,
					   .trust_owner = r->c->cfg->trust_owner,
					   .connect_timeout_usec = r->c->cfg->connect_timeout_usec,
					   .io_timeout_usec = r->c->cfg->io_timeout_usec };
	char tip[AP_OID_HEXSZ + 1];
	int k = o->no_fetch ? ap_repo_branch_tip(r->c->repo, r->c->cfg->branch, tip)
			    : ap_repo_fetch(r->c->repo, &ro, tip);

	if (k == -ENOENT && o->no_fetch)
		ap_log_error(k, "--no-fetch: nothing was fetched into '%s/repo.git' yet",
			     ap_state_path(r->c->st));
	if (k < 0)
		return fetch_exit_code(k, o->no_fetch);
	memcpy(r->tip, tip, sizeof(tip));
	if (!o->commit && r->pin.commit[0]) {
		memcpy(ret, r->pin.commit, sizeof(r->pin.commit));
		return AP_EXIT_OK;
	}
	if (!o->commit) {
		memcpy(ret, tip, sizeof(tip));
		return AP_EXIT_OK;
	}
	if (ap_repo_resolve_on_branch(r->c->repo, r->c->cfg->branch, o->commit, ret) < 0)
		return AP_EXIT_USAGE;
	k = ap_repo_is_ancestor(r->c->repo, ret, tip);
	if (k == 0)
		ap_log_error(-EINVAL, "commit '%s' is not on branch '%s'", o->commit, r->c->cfg->branch);
	if (k <= 0)
		return k == 0 ? AP_EXIT_USAGE : AP_EXIT_FAILED;
	return AP_EXIT_OK;
}

/* A commit whose apply was rolled back is skipped until the branch moves on or --commit
 * names it. Returns 1 (skip it), 0, or <0 when the list cannot be read: then nobody can tell
 * whether the commit was rolled back, and applying it again is what the list exists to stop
 * (state.c names the file, the line and the repair). */
static int is_bad(struct run *r, const char *target, bool warn)
{
	_cleanup_free_ char *why = NULL;
	int k;

	if (r->o->commit || strcmp(target, r->applied) == 0)
		return 0;
	k = ap_state_find_bad(r->c->st, target, &why);
	if (k < 0)
		ap_log_error(k, "refusing to apply %.12s: the list of rolled-back commits cannot be "
			     "read; nothing was changed", target);
	if (k > 0 && warn)
		ap_log_warning("skipping %.12s: its apply was rolled back (%s); push a newer commit, "
			       "or run 'autopull apply --commit %.12s' to retry it", target, why,
			       target);
	return k;
}

static int read_state(struct run *r)
{
	int k = ap_state_read_applied(r->c->st, r->applied);

	if (k == -ENOENT)
		r->applied[0] = '\0';
	else if (k < 0)
		return AP_EXIT_FAILED;
	if (ap_state_read_owned(r->c->st, &r->owned) < 0)
		return AP_EXIT_FAILED;
	k = ap_state_read_pin(r->c->st, &r->pin);
	if (k < 0 && k != -ENOENT)
		return AP_EXIT_FAILED;
	k = ap_state_read_journal(r->c->st, &r->j);
	r->journal = k >= 0;
	return k < 0 && k != -ENOENT ? AP_EXIT_FAILED : AP_EXIT_OK;
}

/* The checks of a plan that is about to run, for an apply and a dry run alike (a dry run
 * exits with the code the apply would have); a refusal is recorded with the error that
 * decided it. */
static int prepare(struct run *r)
{
	const char *refusal = NULL, *why = NULL;
	int code;

	ap_log_reason_begin();
	if ((code = check_guard(r)) == AP_EXIT_GUARD)
		refusal = "guard", why = "a watched unit loops or is stale; 'autopull status' names it";
	if (code == AP_EXIT_OK && (code = validate(r)) == AP_EXIT_INVALID)
		refusal = "invalid", why = "a file or unit failed validation";
	if (code == AP_EXIT_OK && (code = check_not_emptying(r)) == AP_EXIT_INVALID)
		refusal = "emptying", why = "the commit removes every managed file";
	if (code == AP_EXIT_OK && (code = preflight(r)) != AP_EXIT_OK)
		refusal = "preflight", why = "a destination cannot be written";
	if (refusal)
		refuse(r, refusal, r->plan->to, NULL, why);
	else
		ap_log_reason_end(NULL, 0);
	if (refusal && r->o->json && !r->o->dry_run)
		(void)print_plan_result(r, "refused", NULL);
	if ((code == AP_EXIT_OK || r->o->dry_run) && print_plan(r) < 0 && code == AP_EXIT_OK)
		code = AP_EXIT_FAILED;
	return code;
}

/* Owed restarts and reloads depend on what became of their units (apply.h). */
static int resolve_owed(struct run *r, struct ap_journal *j)
{
	for (size_t i = 0; i < j->n_units; i++) {
		struct ap_journal_unit *u = &j->units[i];
		struct ap_unit_props p = { 0 };
		int k;

		if (u->state == AP_STEP_DONE ||
		    (u->action != AP_ACTION_RESTART && u->action != AP_ACTION_RELOAD))
			continue;
		if (!get_bus(r))
			return -ENOTCONN;
		k = ap_bus_get_unit_props(r->c->bus, u->unit, &p);
		if (k >= 0)
			ap_apply_resolve_unit(u, p.active_state);
		ap_unit_props_clear(&p);
		if (k < 0)
			return k;
	}
	return 0;
}

/* Adds the journal's owed actions to the plan, so that a dry run shows them. */
static int show_owed(struct run *r)
{
	_cleanup_free_ char *reason = ap_strdupf("journal of %.12s", r->j.to);
	int k = reason ? 0 : -ENOMEM;

	for (size_t i = 0; k >= 0 && i < r->j.n_units; i++)
		if (r->j.units[i].state != AP_STEP_DONE)
			k = ap_plan_add_owed(r->plan, r->j.units[i].unit, r->j.units[i].action, reason);
	return k;
}

/* The files are at the journal's commit: do what is owed, with a plan to the new target when
 * the branch moved on. */
static int resume(struct run *r, const char *target)
{
	int bad = strcmp(target, r->j.to) == 0 ? 0 : is_bad(r, target, false);
	bool forward = strcmp(target, r->j.to) == 0 || bad > 0;
	struct ap_journal next = { 0 };
	int code = bad < 0 ? AP_EXIT_FAILED : make_plan(r, r->j.to, forward ? r->j.to : target), k;

	if (code != AP_EXIT_OK)
		return code;
	if (r->o->dry_run) {
		sample_guard(r, false);
		return show_owed(r) < 0 || print_plan(r) < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
	}
	ap_log_notice("resuming the unfinished apply of %.12s%s%.12s", r->j.to,
		      forward ? "" : " on the way to ", forward ? "" : target);
	if (forward) {
		k = resolve_owed(r, &r->j);
		code = k < 0 ? AP_EXIT_FAILED : check_guard(r);
		if (code == AP_EXIT_OK && (show_owed(r) < 0 || print_plan(r) < 0))
			code = AP_EXIT_FAILED;
		return code == AP_EXIT_OK ? execute(r, &r->j, NULL) : code;
	}
	k = ap_apply_journal_new(r->plan, r->j.base, &r->j, &next);
	if (k >= 0)
		k = resolve_owed(r, &next);
	code = k < 0 ? AP_EXIT_FAILED : show_owed(r) < 0 ? AP_EXIT_FAILED : prepare(r);
	if (code == AP_EXIT_OK)
		code = execute(r, &next, r->plan);
	ap_journal_clear(&next);
	return code;
}

static int record_noop(struct run *r)
{
	/* A tick where nothing moved writes nothing: no fsync on the hot path. */
	if (strcmp(r->applied, r->plan->to) != 0 &&
	    ap_state_write_applied(r->c->st, r->plan->to) < 0)
		return AP_EXIT_FAILED;
	if (r->o->json)
		return print_plan_result(r, "nothing-to-do", NULL) < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
	if (r->pin.commit[0] && !r->o->commit) {
		struct ap_buf b = { 0 };
		char ago[32];

		/* the reason is whatever the pin's author typed: escaped like all human output */
		ap_format_ago(r->pin.realtime_usec, ap_now_realtime_usec(), ago, sizeof(ago));
		if (ap_buf_linef(&b, "pinned at %.12s since %s: %s; 'autopull unpin' resumes deploys",
				 r->pin.commit, ago, r->pin.reason) >= 0)
			fputs(b.data, stdout);
		ap_buf_free(&b);
	} else
		printf("nothing to do: %.12s is applied\n", r->plan->to);
	return AP_EXIT_OK;
}

static int apply_fresh(struct run *r, const char *target)
{
	char base[AP_OID_HEXSZ + 1];
	struct ap_journal j = { 0 };
	int code;

	if (!r->o->from && (code = is_bad(r, target, true)) != 0)
		return code > 0 ? AP_EXIT_OK : AP_EXIT_FAILED;
	if (r->o->from && ap_repo_resolve(r->c->repo, r->o->from, base) < 0)
		return AP_EXIT_USAGE;
	if (!r->o->from)
		memcpy(base, r->applied, sizeof(base));
	if ((code = make_plan(r, base, target)) != AP_EXIT_OK)
		return code;
	if (r->o->dry_run && plan_is_noop(r->plan)) {
		sample_guard(r, false);
		return print_plan(r) < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
	}
	if (plan_is_noop(r->plan))
		return record_noop(r);
	if ((code = prepare(r)) != AP_EXIT_OK || r->o->dry_run)
		return code;
	if (ap_apply_journal_new(r->plan, r->applied, NULL, &j) < 0)
		return AP_EXIT_FAILED;
	code = execute(r, &j, r->plan);
	ap_journal_clear(&j);
	return code;
}

static int apply_locked(struct run *r)
{
	char target[AP_OID_HEXSZ + 1];
	int code = read_state(r);

	r->start = ap_now_monotonic_usec();

	if (code != AP_EXIT_OK)
		return code;
	/* A dry run changes nothing: it shows the plan as if the undo had happened. */
	if (r->journal && !r->o->dry_run &&
	    (r->j.mode == AP_JOURNAL_ROLLBACK || !ap_journal_is_done(&r->j, AP_PHASE_FILES)) &&
	    (code = finish_interrupted(r)) != AP_EXIT_OK)
		return code;
	if ((code = find_target(r, target)) != AP_EXIT_OK)
		return code;
	/* What the host's files are at: an unfinished apply's commit once its files are in. */
	if ((code = check_source(r, r->journal && ap_journal_is_done(&r->j, AP_PHASE_FILES)
					    ? r->j.to : r->applied, target)) != AP_EXIT_OK)
		return code;
	/* Only a source that passed its checks is pinned: a refused one would be refused again
	 * on every tick until someone unpins. */
	if (r->o->commit && r->o->pin && (code = pin(r, target)) != AP_EXIT_OK)
		return code;
	if (r->journal && ap_journal_is_done(&r->j, AP_PHASE_FILES) && !r->o->from)
		return resume(r, target);
	return apply_fresh(r, target);
}

/* --- after the apply: what the tick saw, and drift -------------------------------------- */

/* The drifted files as changes from the host's bytes to the applied commit's, so that the
 * planner decides what a put-back asks of units (a unit file that drifted restarts). */
static int drift_changes(struct run *r, const struct ap_drift *d, const struct ap_expected_set *set)
{
	r->changes.v = calloc(d->n, sizeof(*r->changes.v));
	if (!r->changes.v)
		return -ENOMEM;
	for (size_t i = 0; i < d->n; i++)
		for (size_t k = 0; k < set->n; k++) {
			const struct ap_expected *e = &set->v[k];
			struct ap_change *ch = &r->changes.v[r->changes.n];
			struct ap_host_file hf = { 0 };

			if (strcmp(e->path, d->v[i].path) != 0)
				continue;
			*ch = (struct ap_change){ .kind = AP_CHANGE_MODIFY, .path = strdup(e->repo_path),
						  .new_mode = e->mode & 0111 ? AP_GIT_MODE_EXEC
									     : AP_GIT_MODE_BLOB };
			ch->old_mode = ch->new_mode;
			snprintf(ch->new_oid, sizeof(ch->new_oid), "%s", e->oid);
			r->changes.n++;
			if (!ch->path)
				return -ENOMEM;
			if (ap_install_read_host(e->path, e->root_len, true, &hf) >= 0 && hf.present) {
				ch->old_data = TAKE_PTR(hf.data);
				ch->old_len = hf.len;
			}
			ap_host_file_clear(&hf);
			break;
		}
	return 0;
}

/* drift: revert — an apply from the applied commit to itself whose changes are the drifted
 * files: the same checks, journal, rollback and record as any apply. */
static int revert_drift(struct run *r, const struct ap_drift *d)
{
	struct ap_expected_set set = { 0 };
	struct ap_unit_states states = { 0 };
	struct ap_journal j = { 0 };
	_cleanup_free_ char *error = NULL;
	int code = AP_EXIT_FAILED, k = ap_drift_expected(r->c, r->applied, &set);

	ap_log_warning("putting back %zu drifted file(s) (drift: revert), the first '%s' (%s)", d->n,
		       d->v[0].path, d->v[0].what);
	if (r->plan)
		ap_plan_free(r->plan);
	r->plan = NULL;
	ap_changes_free(&r->changes);
	r->reverting = true;
	if (k >= 0)
		k = drift_changes(r, d, &set);
	if (k >= 0)
		k = load_blobs(r);
	if (k >= 0)
		k = query_states(r, r->applied, &states);
	if (k >= 0)
		k = ap_plan_build(r->c->cfg, &r->changes, &states, r->applied, r->applied, &r->plan,
				  &error);
	if (k >= 0 && (code = prepare(r)) == AP_EXIT_OK &&
	    ap_apply_journal_new(r->plan, r->applied, NULL, &j) >= 0)
		code = execute(r, &j, r->plan);
	if (k < 0)
		ap_log_error(k, "failed to put back the drifted files: %s", error ? error : strerror(-k));
	ap_journal_clear(&j);
	ap_unit_states_free(&states);
	ap_expected_set_clear(&set);
	return k < 0 ? AP_EXIT_FAILED : code;
}

/* Records what this tick saw for the metrics (commits pending, drift) and, with
 * drift: revert, puts drifted files back. */
static int after_tick(struct run *r)
{
	struct ap_tick t = { -1, -1 };
	struct ap_drift d = { 0 };
	size_t n;
	int code = AP_EXIT_OK;

	if (ap_state_read_applied(r->c->st, r->applied) < 0)
		return AP_EXIT_OK;
	if (*r->tip && ap_repo_count_commits(r->c->repo, r->applied, r->tip, &n) >= 0)
		t.pending = (long)n;
	if (ap_drift_check(r->c, r->applied, &d) >= 0)
		t.drift = (long)d.n;
	if (d.n > 0 && !r->c->cfg->drift_revert)
		ap_log_warning("%zu managed file(s) differ from %.12s, the first '%s' (%s); "
			       "'autopull diff' shows how", d.n, r->applied, d.v[0].path, d.v[0].what);
	if (d.n > 0 && r->c->cfg->drift_revert)
		code = revert_drift(r, &d);
	if (code == AP_EXIT_OK && r->reverting && ap_drift_check(r->c, r->applied, &d) >= 0)
		t.drift = (long)d.n;
	(void)ap_state_write_tick(r->c->st, &t);
	ap_drift_clear(&d);
	return code;
}

/* The one JSON document of a run that ended before a plan could be printed. */
static void print_outcome(struct run *r, int code)
{
	struct ap_buf b = { 0 };
	int k = ap_buf_printf(&b, "{\"result\": \"%s\", \"exit\": %d",
			      r->refused ? "refused" : code == AP_EXIT_OK ? "ok"
					 : code == AP_EXIT_TEMPFAIL ? "try-later" : "failed", code);

	if (k >= 0)
		k = refused_json(r, &b);
	if (k >= 0)
		k = ap_buf_printf(&b, "}\n");
	if (k >= 0)
		fputs(b.data, stdout);
	ap_buf_free(&b);
}

int ap_engine_apply(struct ap_ctx *c)
{
	struct run r = { .c = c, .o = c->o };
	int code = ap_ctx_lock(c);

	if (code == AP_EXIT_OK)
		code = ap_ctx_repo(c) ? apply_locked(&r) : AP_EXIT_FAILED;
	if (code == AP_EXIT_OK && !c->o->dry_run)
		code = after_tick(&r);
	/* The metrics (and guard.push) carry this run's result at once. */
	if (r.noted && ap_ctx_bus(c))
		ap_watch_after_apply(c->bus, c->st, c->cfg);
	/* --json promises one document whatever happened; the log says why. */
	if (c->o->json && !r.printed)
		print_outcome(&r, code);
	run_done(&r);
	return code;
}
