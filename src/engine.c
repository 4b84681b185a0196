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
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "apply.h"
#include "bus.h"
#include "config.h"
#include "effects.h"
#include "engine.h"
#include "exitcode.h"
#include "install.h"
#include "log.h"
#include "plan.h"
#include "print.h"
#include "repo.h"
#include "state.h"
#include "unitfile.h"
#include "util.h"
#include "watch.h"

struct run {
	const struct ap_opts *o;
	struct ap_config *cfg;
	struct ap_state *st;
	struct ap_repo *repo;
	struct ap_bus *bus;
	bool bus_tried;
	struct ap_changes changes; /* the plan borrows file contents from here */
	struct ap_plan *plan;
	struct ap_guard_result guard;
	bool have_guard;
	char **owned;
	char applied[AP_OID_HEXSZ + 1]; /* "" when nothing was applied yet */
	struct ap_journal j;
	bool journal;
};

static void run_done(struct run *r)
{
	ap_journal_clear(&r->j);
	ap_strv_free(r->owned);
	ap_guard_result_free(&r->guard);
	if (r->plan)
		ap_plan_free(r->plan);
	ap_changes_free(&r->changes);
	if (r->bus)
		ap_bus_free(r->bus);
	if (r->repo)
		ap_repo_free(r->repo);
	if (r->st)
		ap_state_free(r->st);
	if (r->cfg)
		ap_config_free(r->cfg);
}

static int load_config(const struct ap_opts *o, struct ap_config **ret)
{
	_cleanup_free_ char *def = NULL;
	const char *path = o->config_path;
	int r;

	if (!path) {
		r = ap_config_default_path(o->user ? AP_SCOPE_USER : AP_SCOPE_SYSTEM, &def);
		if (r < 0)
			return ap_log_error(r, "cannot find the configuration file: %s", strerror(-r));
		path = def;
	}
	return ap_config_load(path, o->user, ret);
}

/* The manager is needed for unit states and actions; a dry run goes on without it. */
static struct ap_bus *get_bus(struct run *r)
{
	if (!r->bus_tried) {
		r->bus_tried = true;
		if (ap_bus_open(r->cfg->scope, &r->bus) < 0)
			r->bus = NULL;
	}
	return r->bus;
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

		if (ch->kind == AP_CHANGE_DELETE || ap_plan_map_path(r->cfg, ch->path, &m) < 0)
			continue;
		mapped = m.kind == AP_MAP_UNIT || m.kind == AP_MAP_DROPIN || m.kind == AP_MAP_FILE;
		blob = ch->new_mode == AP_GIT_MODE_BLOB || ch->new_mode == AP_GIT_MODE_EXEC;
		k = mapped && blob ? ap_repo_blob_size(r->repo, ch->new_oid, &size) : 0;
		if (k >= 0 && size > AP_MAX_BLOB_SIZE)
			k = -EFBIG;
		if (k >= 0 && blob && (m.kind == AP_MAP_UNIT || m.kind == AP_MAP_DROPIN))
			k = ap_repo_read_blob(r->repo, ch->new_oid, AP_MAX_BLOB_SIZE, &ch->new_data,
					      &ch->new_len);
		if (k >= 0 && m.kind == AP_MAP_UNIT && ch->kind == AP_CHANGE_MODIFY)
			k = ap_repo_read_blob(r->repo, ch->old_oid, AP_MAX_BLOB_SIZE, &ch->old_data,
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

	return ap_repo_read_blob(r->repo, ch->new_oid, AP_MAX_BLOB_SIZE, ret, ret_len);
}

static int size_source(void *userdata, const struct ap_change *ch, size_t *ret)
{
	struct run *r = userdata;

	if (ch->new_data) {
		*ret = ch->new_len;
		return 0;
	}
	return ap_repo_blob_size(r->repo, ch->new_oid, ret);
}

static int query_states(struct run *r, struct ap_unit_states *states)
{
	_cleanup_strv_free_ char **patterns = NULL;
	int k = ap_plan_units_needed(r->cfg, &r->changes, &patterns);

	if (k < 0 || !patterns)
		return k;
	if (!get_bus(r)) {
		if (!r->o->dry_run)
			return -ENOTCONN;
		ap_log_warning("no service manager reachable: unit actions are conditional");
		return 0;
	}
	k = ap_bus_list_units(r->bus, patterns, states);
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
	k = ap_plan_prefixes(r->cfg, &prefixes);
	if (k >= 0)
		k = ap_repo_diff_paths(r->repo, *from ? from : NULL, to, prefixes, &r->changes);
	if (k >= 0)
		k = load_blobs(r);
	if (k == -EFBIG)
		return AP_EXIT_INVALID;
	if (k >= 0)
		k = query_states(r, &states);
	if (k >= 0)
		k = ap_plan_build(r->cfg, &r->changes, &states, from, to, &r->plan, &error);
	ap_unit_states_free(&states);
	if (k == -EINVAL && error) {
		ap_log_error(k, "%s", error);
		return AP_EXIT_INVALID;
	}
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

static int print_plan(const struct run *r)
{
	struct ap_buf b = { 0 }, g = { 0 };
	int k = ap_buf_printf(&g, r->o->json ? "\"guard\": " : "");

	if (k >= 0 && r->have_guard)
		k = ap_watch_format(&r->guard, r->o->json, &g);
	else if (k >= 0 && r->o->json)
		k = ap_buf_printf(&g, "null");
	if (k >= 0)
		k = r->o->json ? ap_print_plan_json(r->plan, g.data, &b) : ap_print_plan_human(r->plan, &b);
	if (k >= 0 && !r->o->json && r->have_guard)
		k = ap_buf_append(&b, g.data, g.len);
	ap_buf_free(&g);

	if (k >= 0 && fwrite(b.data, 1, b.len, stdout) != b.len)
		k = -EIO;
	fflush(stdout);
	ap_buf_free(&b);
	return k;
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
	int k = ap_state_scratch_dir(r->st, &stage);

	if (k >= 0)
		k = ap_install_validate(r->plan, &src, r->cfg->scope, r->cfg->unit_dir, stage);
	return k == -EINVAL ? AP_EXIT_INVALID : k < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
}

/* Every destination writable, nothing in the way, room for files and backups: a problem
 * found here leaves the host as it was. */
static int preflight(struct run *r)
{
	const struct ap_install_source src = { .read = read_source, .size = size_source, .userdata = r };
	struct ap_preflight pf = { 0 };
	int k = ap_install_preflight(r->plan, r->owned, &src,
				     r->o->dry_run ? AP_PREFLIGHT_CHECK_ONLY : 0, &pf);

	if (k >= 0 && !r->o->dry_run)
		k = ap_state_check_space(r->st, pf.backup_bytes, pf.backup_files);
	ap_preflight_clear(&pf);
	if (k == -EINVAL)
		ap_log_error(k, "refusing to apply %.12s; the host is unchanged", r->plan->to);
	else if (k < 0)
		ap_log_error(k, "cannot apply %.12s now; the host is unchanged", r->plan->to);
	if (r->o->dry_run)
		return AP_EXIT_OK; /* reported; a dry run changes nothing either way */
	return k == -EINVAL ? AP_EXIT_INVALID : k < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
}

/* Refuses to pile a deploy onto a sick host (exit 3). Fails closed: a guard that cannot take
 * its sample, or that a failed rollback left tripped, refuses too, until --override-guard
 * says why. */
static int check_guard(struct run *r)
{
	_cleanup_free_ char *tripped = NULL;
	int k = ap_state_read_tripped(r->st, &tripped), sampled = -ENOTCONN;
	struct ap_buf b = { 0 };
	const char *to = r->plan ? r->plan->to : r->j.to;

	if (k < 0 && k != -ENOENT && !(tripped = strdup("the guard's state cannot be read")))
		return AP_EXIT_FAILED;
	if (get_bus(r))
		sampled = ap_watch_heartbeat(r->bus, r->st, r->cfg, true, &r->guard);
	r->have_guard = sampled >= 0;
	if (!tripped && sampled >= 0 && r->guard.ok)
		return AP_EXIT_OK;
	if (r->o->override_guard) {
		ap_log_warning("guard overridden for %.12s: %s", to, r->o->reason);
		k = ap_state_add_override(r->st, "guard", to, r->o->reason);
		if (k >= 0 && tripped)
			k = ap_state_clear_tripped(r->st);
		return k < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
	}
	if (sampled < 0)
		ap_log_error(sampled, "refusing to apply %.12s: the guard cannot sample the watched "
				      "units (%s)", to, strerror(-sampled));
	if (sampled >= 0 && ap_watch_format(&r->guard, false, &b) >= 0)
		fputs(b.data, stderr);
	ap_buf_free(&b);
	for (size_t i = 0; sampled >= 0 && i < r->guard.n; i++)
		if (r->guard.v[i].looping)
			ap_log_error(-EBUSY, "refusing to apply %.12s: unit '%s' is looping: %s", to,
				     r->guard.v[i].unit, r->guard.v[i].why);
	if (tripped)
		ap_log_error(-EBUSY, "refusing to apply %.12s: the guard is tripped: %s", to,
			     tripped);
	ap_log_error(-EBUSY, "to apply anyway: autopull apply --override-guard --reason TEXT");
	return AP_EXIT_GUARD;
}

/* --- executing --------------------------------------------------------------------------- */

static int execute(struct run *r, struct ap_journal *j, const struct ap_plan *p)
{
	const struct ap_install_source src = { .read = read_source, .size = size_source, .userdata = r };
	struct ap_effects e = { .cfg = r->cfg, .st = r->st, .bus = get_bus(r), .src = &src,
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
	(void)ap_state_write_last_apply(r->st, &(struct ap_last_apply){
		.realtime_usec = ap_now_realtime_usec(), .ok = out == AP_APPLY_OK });
	switch (out) {
	case AP_APPLY_OK:
		ap_log_notice("applied %.12s", j->to);
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
	struct ap_effects e = { .cfg = r->cfg, .st = r->st, .bus = get_bus(r),
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
		k = ap_state_read_journal(r->st, &r->j);
	r->journal = k >= 0;
	if (k < 0 && k != -ENOENT)
		return ap_log_error(k, "failed to finish the interrupted run: %s", strerror(-k)),
		       AP_EXIT_FAILED;
	return rollback ? AP_EXIT_FAILED : AP_EXIT_OK;
}

/* --- apply ----------------------------------------------------------------------------- */

static int find_target(struct run *r, char ret[AP_OID_HEXSZ + 1])
{
	const struct ap_opts *o = r->o;
	const struct ap_remote_opts ro = { .url = r->cfg->repo_url, .branch = r->cfg->branch,
					   .ssh_key = r->cfg->ssh_key,
					   .known_hosts = r->cfg->known_hosts,
					   .ca_file = r->cfg->ca_file };
	char tip[AP_OID_HEXSZ + 1];
	int k = o->no_fetch ? ap_repo_branch_tip(r->repo, r->cfg->branch, tip)
			    : ap_repo_fetch(r->repo, &ro, tip);

	if (k == -ENOENT && o->no_fetch)
		ap_log_error(k, "--no-fetch: nothing was fetched into '%s/repo.git' yet",
			     ap_state_path(r->st));
	if (k < 0)
		return k == -EHOSTUNREACH || o->no_fetch ? AP_EXIT_TEMPFAIL : AP_EXIT_FAILED;
	if (!o->commit) {
		memcpy(ret, tip, sizeof(tip));
		return AP_EXIT_OK;
	}
	if (ap_repo_resolve(r->repo, o->commit, ret) < 0)
		return AP_EXIT_USAGE;
	k = ap_repo_is_ancestor(r->repo, ret, tip);
	if (k == 0)
		ap_log_error(-EINVAL, "commit '%s' is not on branch '%s'", o->commit, r->cfg->branch);
	return k > 0 ? AP_EXIT_OK : k == 0 ? AP_EXIT_USAGE : AP_EXIT_FAILED;
}

/* A commit whose apply was rolled back is skipped until the branch moves on or --commit
 * names it. */
static bool is_bad(struct run *r, const char *target, bool warn)
{
	_cleanup_free_ char *why = NULL;

	if (r->o->commit || strcmp(target, r->applied) == 0 ||
	    ap_state_find_bad(r->st, target, &why) <= 0)
		return false;
	if (warn)
		ap_log_warning("skipping %.12s: its apply was rolled back (%s); push a newer commit, "
			       "or run 'autopull apply --commit %.12s' to retry it", target, why,
			       target);
	return true;
}

static int read_state(struct run *r)
{
	int k = ap_state_read_applied(r->st, r->applied);

	if (k == -ENOENT)
		r->applied[0] = '\0';
	else if (k < 0)
		return AP_EXIT_FAILED;
	if (ap_state_read_owned(r->st, &r->owned) < 0)
		return AP_EXIT_FAILED;
	k = ap_state_read_journal(r->st, &r->j);
	r->journal = k >= 0;
	return k < 0 && k != -ENOENT ? AP_EXIT_FAILED : AP_EXIT_OK;
}

/* The file-level checks of a plan that is about to run. */
static int prepare(struct run *r)
{
	int code = check_guard(r);

	if (code == AP_EXIT_OK)
		code = validate(r);
	if (code == AP_EXIT_OK)
		code = check_not_emptying(r);
	if (code == AP_EXIT_OK)
		code = preflight(r);
	if (code == AP_EXIT_OK && print_plan(r) < 0)
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
		k = ap_bus_get_unit_props(r->bus, u->unit, &p);
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
	bool forward = strcmp(target, r->j.to) == 0 || is_bad(r, target, false);
	struct ap_journal next = { 0 };
	int code = make_plan(r, r->j.to, forward ? r->j.to : target), k;

	if (code != AP_EXIT_OK)
		return code;
	if (r->o->dry_run) {
		if (get_bus(r))
			r->have_guard = ap_watch_heartbeat(r->bus, r->st, r->cfg, false, &r->guard) >= 0;
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
	    ap_state_write_applied(r->st, r->plan->to) < 0)
		return AP_EXIT_FAILED;
	if (!r->o->json)
		printf("nothing to do: %.12s is applied\n", r->plan->to);
	return AP_EXIT_OK;
}

static int apply_fresh(struct run *r, const char *target)
{
	char base[AP_OID_HEXSZ + 1];
	struct ap_journal j = { 0 };
	int code;

	if (!r->o->from && is_bad(r, target, true))
		return AP_EXIT_OK;
	if (r->o->from && ap_repo_resolve(r->repo, r->o->from, base) < 0)
		return AP_EXIT_USAGE;
	if (!r->o->from)
		memcpy(base, r->applied, sizeof(base));
	if ((code = make_plan(r, base, target)) != AP_EXIT_OK)
		return code;
	if (r->o->dry_run) {
		if (get_bus(r))
			r->have_guard = ap_watch_heartbeat(r->bus, r->st, r->cfg, false, &r->guard) >= 0;
		(void)preflight(r);
		return print_plan(r) < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
	}
	if (plan_is_noop(r->plan))
		return record_noop(r);
	if ((code = prepare(r)) != AP_EXIT_OK)
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

	if (code != AP_EXIT_OK)
		return code;
	/* A dry run changes nothing: it shows the plan as if the undo had happened. */
	if (r->journal && !r->o->dry_run &&
	    (r->j.mode == AP_JOURNAL_ROLLBACK || !ap_journal_is_done(&r->j, AP_PHASE_FILES)) &&
	    (code = finish_interrupted(r)) != AP_EXIT_OK)
		return code;
	if ((code = find_target(r, target)) != AP_EXIT_OK)
		return code;
	if (r->journal && ap_journal_is_done(&r->j, AP_PHASE_FILES) && !r->o->from)
		return resume(r, target);
	return apply_fresh(r, target);
}

int ap_engine_apply(const struct ap_opts *o)
{
	struct run r = { .o = o };
	_cleanup_free_ char *mirror = NULL;
	int code = AP_EXIT_FAILED, k;

	if (load_config(o, &r.cfg) < 0)
		return AP_EXIT_USAGE;
	if (ap_state_open(r.cfg->state_dir, &r.st) < 0)
		goto out;
	k = ap_state_lock(r.st, o->wait_sec);
	if (k < 0) {
		code = k == -EAGAIN ? AP_EXIT_TEMPFAIL : AP_EXIT_FAILED;
		goto out;
	}
	mirror = ap_strdupf("%s/repo.git", r.cfg->state_dir);
	if (!mirror || ap_repo_open(mirror, &r.repo) < 0)
		goto out;
	code = apply_locked(&r);
out:
	run_done(&r);
	return code;
}

/* --- the other verbs ---------------------------------------------------------------------- */

int ap_engine_check_config(const struct ap_opts *o)
{
	struct ap_config *c = NULL;

	if (load_config(o, &c) < 0)
		return AP_EXIT_USAGE;
	printf("%s: ok (%s scope, %zu file rule(s), units from", c->path, ap_scope_to_string(c->scope),
	       c->n_files);
	for (size_t i = 0; c->units && c->units[i]; i++)
		printf(" '%s'", *c->units[i] ? c->units[i] : "/");
	printf(")\n");
	ap_config_free(c);
	return AP_EXIT_OK;
}

static void print_journal(const struct ap_journal *j)
{
	printf("journal:   unfinished %s of %.12s -> %.12s (done:", j->mode == AP_JOURNAL_ROLLBACK
									? "rollback" : "apply",
	       *j->from ? j->from : "(none)", j->to);
	for (unsigned p = 0; p < AP_PHASE_MAX; p++)
		if (ap_journal_is_done(j, p))
			printf(" %s", ap_phase_to_string(p));
	printf(")\n");
	for (size_t i = 0; i < j->n_units; i++)
		printf("           %s %s: %s%s\n", ap_unit_action_to_string(j->units[i].action),
		       j->units[i].unit, ap_step_to_string(j->units[i].state),
		       j->units[i].owed ? " (owed by an earlier apply)" : "");
}

int ap_engine_status(const struct ap_opts *o)
{
	struct run r = { .o = o };
	int code = AP_EXIT_FAILED;

	if (load_config(o, &r.cfg) < 0)
		return AP_EXIT_USAGE;
	if (ap_state_open(r.cfg->state_dir, &r.st) < 0 || read_state(&r) != AP_EXIT_OK)
		goto out;
	printf("config:    %s (%s scope)\nrepo:      %s (branch %s)\nstate:     %s\n", r.cfg->path,
	       ap_scope_to_string(r.cfg->scope), r.cfg->repo_url, r.cfg->branch, r.cfg->state_dir);
	printf("applied:   %s\n", *r.applied ? r.applied : "(nothing yet)");
	printf("installed: %zu file(s)\n", ap_strv_length(r.owned));
	if (r.journal)
		print_journal(&r.j);
	code = AP_EXIT_OK;
out:
	run_done(&r);
	return code;
}

int ap_engine_heartbeat(const struct ap_opts *o)
{
	struct run r = { .o = o };
	struct ap_buf b = { 0 };
	int code = AP_EXIT_FAILED;

	if (load_config(o, &r.cfg) < 0)
		return AP_EXIT_USAGE;
	if (ap_state_open(r.cfg->state_dir, &r.st) < 0 || !get_bus(&r) ||
	    ap_watch_heartbeat(r.bus, r.st, r.cfg, true, &r.guard) < 0)
		goto out;
	if (o->json ? ap_buf_printf(&b, "{\"guard\": ") < 0 : false)
		goto out;
	if (ap_watch_format(&r.guard, o->json, &b) < 0 || (o->json && ap_buf_printf(&b, "}\n") < 0))
		goto out;
	fputs(b.data, stdout);
	code = AP_EXIT_OK;
out:
	ap_buf_free(&b);
	run_done(&r);
	return code;
}
