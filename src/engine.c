/* The apply transaction (see engine.h). Order of effects on the host:
 *   validate (staged copies) → journal → disable removed units → install/remove files →
 *   enable new units → one daemon-reload → stop → restart/reload → start → record applied.
 * The journal names the range and the owed unit actions; a run that finds one finishes it
 * first, so a kill at any point converges on the next run. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"
#include "config.h"
#include "engine.h"
#include "exitcode.h"
#include "install.h"
#include "log.h"
#include "plan.h"
#include "print.h"
#include "repo.h"
#include "state.h"
#include "trust.h"
#include "unitfile.h"
#include "util.h"
#include "watch.h"

#define JOB_TIMEOUT_USEC (5ULL * 60 * 1000000)

struct run {
	const struct ap_opts *o;
	struct ap_config *cfg;
	struct ap_state *st;
	struct ap_repo *repo;
	struct ap_bus *bus;
	bool bus_tried;
	struct ap_changes changes; /* the plan borrows file contents from here */
	struct ap_plan *plan;
	char **owned_before;       /* the inventory before this apply, for a rollback */
	struct ap_guard_result guard;
	bool have_guard;
};

static void run_done(struct run *r)
{
	ap_strv_free(r->owned_before);
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
		if (k >= 0 && blob && m.kind == AP_MAP_UNIT)
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
		return ap_log_error(k, "failed to list units: %s", strerror(-k));
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

/* --- the journal ------------------------------------------------------------------ */

/* Body: "installed 0|1\nreload 0|1\n" then "unit <action> <name>" lines. */
static int write_journal(struct run *r, bool installed)
{
	struct ap_buf b = { 0 };
	int k = ap_buf_printf(&b, "installed %d\nreload %d\n", installed, r->plan->daemon_reload);

	for (size_t i = 0; k >= 0 && i < r->plan->n_units; i++)
		if (r->plan->units[i].action != AP_ACTION_NONE)
			k = ap_buf_printf(&b, "unit %s %s\n",
					  ap_unit_action_to_string(r->plan->units[i].action),
					  r->plan->units[i].unit);
	if (k >= 0)
		k = ap_state_write_journal(r->st, r->plan->from, r->plan->to, b.data);
	ap_buf_free(&b);
	return k;
}

struct journal {
	bool present, installed, reload;
	char from[AP_OID_HEXSZ + 1], to[AP_OID_HEXSZ + 1];
	char *body;
};

static int read_journal(struct run *r, struct journal *j)
{
	int k = ap_state_read_journal(r->st, j->from, j->to, &j->body);

	if (k == -ENOENT)
		return 0;
	if (k < 0)
		return k;
	j->present = true;
	j->installed = strstr(j->body, "installed 1\n") != NULL;
	j->reload = strstr(j->body, "reload 1\n") != NULL;
	return 0;
}

/* Owed restarts and reloads depend on what became of the unit since (plan.h). */
static int resolve_owed(struct run *r)
{
	for (size_t i = 0; i < r->plan->n_units; i++) {
		const struct ap_unit_action *u = &r->plan->units[i];
		struct ap_unit_props p = { 0 };
		int k;

		if (!u->owed || !get_bus(r))
			continue;
		k = ap_bus_get_unit_props(r->bus, u->unit, &p);
		if (k >= 0)
			k = ap_plan_resolve_owed(r->plan, u->unit, p.active_state);
		ap_unit_props_clear(&p);
		if (k < 0)
			return k;
	}
	return 0;
}

/* Merges the journal's owed unit actions into the plan. */
static int add_owed(struct run *r, const struct journal *j)
{
	_cleanup_free_ char *body = strdup(j->body), *reason = ap_strdupf("journal of %.12s", j->to);

	if (!body || !reason)
		return -ENOMEM;
	r->plan->daemon_reload |= j->reload;
	for (char *save = NULL, *l = strtok_r(body, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char action[32], unit[256];
		enum ap_unit_action_kind a;
		int k;

		if (sscanf(l, "unit %31s %255s", action, unit) != 2)
			continue;
		if (ap_unit_action_from_string(action, &a) < 0 || !ap_unit_name_is_valid(unit))
			return ap_log_error(-EBADMSG, "bad line in journal: '%s'", l);
		if ((k = ap_plan_add_owed(r->plan, unit, a, reason)) < 0)
			return k;
	}
	return resolve_owed(r);
}

/* Test-only hook, documented in README.md: AUTOPULL_TEST_CRASH=<point> kills the process
 * with SIGKILL at that point, so tests can prove that the next run converges. */
static void test_crash_point(const char *point)
{
	const char *want = secure_getenv("AUTOPULL_TEST_CRASH");

	if (want && strcmp(want, point) == 0)
		raise(SIGKILL);
}

/* --- execution -------------------------------------------------------------------- */

static int units_with(const struct ap_plan *p, enum ap_unit_action_kind a,
		      enum ap_unit_action_kind b, char ***ret)
{
	for (size_t i = 0; i < p->n_units; i++)
		if (p->units[i].action == a || p->units[i].action == b) {
			int k = ap_strv_push(ret, p->units[i].unit);
			if (k < 0)
				return k;
		}
	return 0;
}

/* Enqueues one job per unit whose action is a or b, then waits for all of them together. */
static int run_phase(struct run *r, enum ap_job_kind kind, enum ap_unit_action_kind a,
		     enum ap_unit_action_kind b)
{
	struct ap_job *jobs = calloc(r->plan->n_units ? r->plan->n_units : 1, sizeof(*jobs));
	size_t n = 0;
	int k;

	if (!jobs)
		return -ENOMEM;
	for (size_t i = 0; i < r->plan->n_units; i++)
		if (r->plan->units[i].action == a || r->plan->units[i].action == b)
			jobs[n++] = (struct ap_job){ .unit = r->plan->units[i].unit, .kind = kind };
	k = n ? ap_bus_run_jobs(r->bus, jobs, n, JOB_TIMEOUT_USEC) : 0;
	for (size_t i = 0; i < n; i++)
		printf("%s %s: %s\n", ap_job_kind_to_string(kind), jobs[i].unit,
		       jobs[i].error ? jobs[i].result : "done");
	free(jobs);
	return k;
}

static int change_files(struct run *r)
{
	const struct ap_install_source src = { .read = read_source, .userdata = r };
	_cleanup_strv_free_ char **disable = NULL, **owned = NULL, **touched = NULL;
	int k = ap_install_touched(r->plan, &touched);

	/* The previous bytes of everything this apply touches, before the first change. */
	if (k >= 0)
		k = ap_state_backup_files(r->st, r->plan->to, touched);
	if (k >= 0)
		k = units_with(r->plan, AP_ACTION_DISABLE_STOP, AP_ACTION_DISABLE_STOP, &disable);

	/* Disable while the unit files still exist: the manager resolves them by name. */
	if (k >= 0 && disable && (k = ap_bus_disable(r->bus, disable)) == -ENOENT)
		k = 0;
	if (k >= 0)
		k = ap_state_read_owned(r->st, &owned);
	if (k >= 0 && !r->owned_before)
		k = ap_strv_copy(owned, &r->owned_before);
	if (k >= 0) {
		int w;
		k = ap_install_files(r->plan, &src, &owned);
		w = ap_state_write_owned(r->st, owned); /* record what did get installed */
		k = k < 0 ? k : w;
	}
	return k < 0 ? k : write_journal(r, true);
}

/* --- settle and roll back ------------------------------------------------------------- */

/* The units this apply started or restarted: the settle window watches them. */
static int touched_units(const struct ap_plan *p, char ***ret)
{
	int k = units_with(p, AP_ACTION_RESTART, AP_ACTION_RELOAD, ret);

	return k < 0 ? k : units_with(p, AP_ACTION_ENABLE_START, AP_ACTION_START, ret);
}

static int restore_lookup(void *userdata, const char *host_path, char **ret_data, size_t *ret_len,
			  mode_t *ret_mode)
{
	struct run *r = userdata;

	return ap_state_backup_lookup(r->st, r->plan->to, host_path, ret_data, ret_len, ret_mode);
}

/* Undoes the unit side of the plan after its files were restored: new units go away,
 * removed ones come back, changed ones restart on their old definition. */
static int undo_units(struct run *r)
{
	_cleanup_strv_free_ char **removed = NULL;
	int k = units_with(r->plan, AP_ACTION_DISABLE_STOP, AP_ACTION_DISABLE_STOP, &removed), failed = 0;

	if (k >= 0 && removed)
		k = ap_bus_enable(r->bus, removed);
	if (k >= 0)
		k = ap_bus_reload(r->bus);
	if (k < 0)
		return k;
	failed |= run_phase(r, AP_JOB_STOP, AP_ACTION_ENABLE_START, AP_ACTION_ENABLE_START) < 0;
	/* They ran before this apply; now they may be failed or between automatic restarts,
	 * where a try-restart would do nothing. */
	failed |= run_phase(r, AP_JOB_RESTART, AP_ACTION_RESTART, AP_ACTION_RELOAD) < 0;
	failed |= run_phase(r, AP_JOB_START, AP_ACTION_DISABLE_STOP, AP_ACTION_DISABLE_STOP) < 0;
	return failed ? -EIO : 0;
}

static int mark_bad(struct run *r, const char *why)
{
	_cleanup_free_ char *line = ap_strdupf("%s %llu %s\n", r->plan->to, ap_now_realtime_usec(), why);

	return line ? ap_state_append_text(r->st, "bad", line) : -ENOMEM;
}

static int rollback(struct run *r, const char *why)
{
	const struct ap_restore_hooks hooks = { .lookup = restore_lookup, .userdata = r };
	_cleanup_strv_free_ char **added = NULL, **units = NULL, **owned = NULL;
	_cleanup_free_ char *again = NULL;
	int k = units_with(r->plan, AP_ACTION_ENABLE_START, AP_ACTION_ENABLE_START, &added);

	ap_log_error(-EIO, "rolling back %.12s: %s", r->plan->to, why);
	/* New units are disabled while their files still exist. */
	if (k >= 0 && added && (k = ap_bus_disable(r->bus, added)) == -ENOENT)
		k = 0;
	if (k >= 0)
		k = ap_strv_copy(r->owned_before, &owned);
	if (k >= 0)
		k = ap_install_restore(r->plan, &hooks, &owned);
	if (k >= 0)
		k = ap_state_write_owned(r->st, r->owned_before);
	if (k >= 0)
		k = undo_units(r);
	if (k >= 0)
		k = mark_bad(r, why);
	if (k >= 0)
		k = ap_state_clear_journal(r->st);
	if (k >= 0)
		k = touched_units(r->plan, &units);
	if (k >= 0)
		k = ap_watch_settle(r->bus, units, r->cfg->guard.settle_usec, &again);
	if (k < 0) {
		_cleanup_free_ char *tripped = ap_strdupf("rollback of %.12s failed: %s\n", r->plan->to,
							  again ? again : strerror(-k));
		ap_log_error(k, "ROLLBACK FAILED for %.12s: %s; the guard stays tripped until "
				"'autopull apply --override-guard --reason TEXT'", r->plan->to,
			     again ? again : strerror(-k));
		if (tripped)
			(void)ap_state_write_text(r->st, "guard-tripped", tripped);
		return k;
	}
	ap_log_error(-EIO, "rolled back %.12s and marked it bad; the applied commit stays %.12s",
		     r->plan->to, *r->plan->from ? r->plan->from : "(none)");
	return 0;
}

/* Watches what this apply (re)started for guard.settle; rolls back when one fails. The
 * units it restarted are watched by later heartbeats too (state file "restarted"); units it
 * started for the first time are not, or a first run would make every heartbeat sample
 * every unit of the repository. */
static int settle(struct run *r)
{
	_cleanup_strv_free_ char **units = NULL, **restarted = NULL;
	_cleanup_free_ char *why = NULL;
	struct ap_buf b = { 0 };
	int k = touched_units(r->plan, &units);

	if (k >= 0)
		k = units_with(r->plan, AP_ACTION_RESTART, AP_ACTION_RELOAD, &restarted);
	for (size_t i = 0; k >= 0 && restarted && restarted[i]; i++)
		k = ap_buf_printf(&b, "%s\n", restarted[i]);
	if (k >= 0)
		k = ap_state_write_text(r->st, "restarted", b.data ? b.data : "");
	ap_buf_free(&b);
	if (k < 0 || !units || r->cfg->guard.settle_usec == 0)
		return k;
	k = ap_watch_settle(r->bus, units, r->cfg->guard.settle_usec, &why);
	if (k == -EIO) {
		(void)rollback(r, why);
		return k;
	}
	return k < 0 ? ap_log_error(k, "failed to watch the restarted units: %s", strerror(-k)) : 0;
}

static bool needs_bus(const struct ap_plan *p)
{
	for (size_t i = 0; i < p->n_units; i++)
		if (p->units[i].action != AP_ACTION_NONE)
			return true;
	return p->daemon_reload;
}

static int execute(struct run *r, bool files_done)
{
	_cleanup_strv_free_ char **enable = NULL;
	int k, failed = 0;

	if (needs_bus(r->plan) && !get_bus(r))
		return AP_EXIT_FAILED;
	k = write_journal(r, files_done);
	if (k >= 0 && !files_done)
		k = ap_state_backup_prune(r->st, r->plan->to);
	if (k >= 0 && !files_done)
		k = change_files(r);
	test_crash_point("after-install");
	if (k >= 0)
		k = units_with(r->plan, AP_ACTION_ENABLE_START, AP_ACTION_ENABLE, &enable);
	if (k >= 0 && enable)
		k = ap_bus_enable(r->bus, enable);
	if (k >= 0 && (r->plan->daemon_reload || enable))
		k = ap_bus_reload(r->bus);
	if (k < 0)
		return AP_EXIT_FAILED;
	/* Job failures are logged by bus; later phases still run so one broken unit does
	 * not hold back the others. The journal keeps them owed. */
	failed |= run_phase(r, AP_JOB_STOP, AP_ACTION_DISABLE_STOP, AP_ACTION_STOP) < 0;
	failed |= run_phase(r, AP_JOB_TRY_RESTART, AP_ACTION_RESTART, AP_ACTION_RESTART) < 0;
	failed |= run_phase(r, AP_JOB_RELOAD_OR_TRY_RESTART, AP_ACTION_RELOAD, AP_ACTION_RELOAD) < 0;
	failed |= run_phase(r, AP_JOB_START, AP_ACTION_ENABLE_START, AP_ACTION_START) < 0;
	if (failed) {
		ap_log_error(-EIO, "apply of %.12s failed; the applied commit stays %.12s",
			     r->plan->to, *r->plan->from ? r->plan->from : "(none)");
		return AP_EXIT_FAILED;
	}
	if (settle(r) < 0)
		return AP_EXIT_FAILED;
	if (ap_state_write_applied(r->st, r->plan->to) < 0 || ap_state_clear_journal(r->st) < 0)
		return AP_EXIT_FAILED;
	return AP_EXIT_OK;
}

/* --- the verbs -------------------------------------------------------------------- */

/* repo.h says which fetch failures pass by themselves and which need an operator. */
static int fetch_exit_code(int k, bool no_fetch)
{
	if (k == -EHOSTUNREACH || no_fetch)
		return AP_EXIT_TEMPFAIL;
	if (k == -EPERM || k == -EINVAL)
		return AP_EXIT_USAGE;
	if (k == -EACCES || k == -EKEYREJECTED || k == -ENOENT || k == -EREMOTEIO)
		return AP_EXIT_REMOTE;
	return AP_EXIT_FAILED;
}

static int find_target(struct run *r, char ret[AP_OID_HEXSZ + 1])
{
	const struct ap_opts *o = r->o;
	const struct ap_remote_opts ro = { .url = r->cfg->repo_url, .branch = r->cfg->branch,
					   .ssh_key = r->cfg->ssh_key,
					   .known_hosts = r->cfg->known_hosts,
					   .ca_file = r->cfg->ca_file,
					   .trust_owner = r->cfg->trust_owner,
					   .connect_timeout_usec = r->cfg->connect_timeout_usec,
					   .io_timeout_usec = r->cfg->io_timeout_usec };
	char tip[AP_OID_HEXSZ + 1];
	int k = o->no_fetch ? ap_repo_branch_tip(r->repo, r->cfg->branch, tip)
			    : ap_repo_fetch(r->repo, &ro, tip);

	if (k == -ENOENT && o->no_fetch)
		ap_log_error(k, "--no-fetch: nothing was fetched into '%s/repo.git' yet",
			     ap_state_path(r->st));
	if (k < 0)
		return fetch_exit_code(k, o->no_fetch);
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

/* Finishes the file changes of an apply that was killed before they were all made, so
 * that the host's files are at the journal's target again. */
static int finish_interrupted(struct run *r, struct journal *j)
{
	int code = make_plan(r, j->from, j->to);

	if (code != AP_EXIT_OK)
		return code;
	ap_log_notice("finishing the interrupted apply of %.12s", j->to);
	if ((needs_bus(r->plan) && !get_bus(r)) || change_files(r) < 0)
		return AP_EXIT_FAILED;
	free(j->body);
	*j = (struct journal){ 0 };
	return read_journal(r, j) < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
}

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

static bool plan_is_noop(const struct ap_plan *p)
{
	return p->n_files == 0 && !needs_bus(p);
}

static int check_not_emptying(struct run *r)
{
	_cleanup_strv_free_ char **owned = NULL;
	size_t removed, remaining;

	if (r->o->allow_empty || ap_state_read_owned(r->st, &owned) < 0)
		return r->o->allow_empty ? AP_EXIT_OK : AP_EXIT_FAILED;
	ap_install_count(r->plan, owned, &removed, &remaining);
	if (removed > 0 && remaining == 0) {
		ap_log_error(-EPERM, "refusing to remove every installed file (%zu); pass "
				     "--allow-empty if the repository is meant to be empty", removed);
		return AP_EXIT_INVALID;
	}
	return AP_EXIT_OK;
}

/* For the metrics autopull_last_apply_timestamp_seconds and autopull_last_apply_success. */
static void record_last_apply(struct run *r, bool ok)
{
	char line[64];

	snprintf(line, sizeof(line), "%llu %d\n", ap_now_realtime_usec(), ok);
	(void)ap_state_write_text(r->st, "last-apply", line);
}

static int record_noop(struct run *r, const char *applied, const struct journal *j)
{
	/* A tick where nothing moved writes nothing: no fsync on the hot path. */
	if (strcmp(applied, r->plan->to) != 0) {
		if (ap_state_write_applied(r->st, r->plan->to) < 0)
			return AP_EXIT_FAILED;
		record_last_apply(r, true);
	}
	if (j->present && ap_state_clear_journal(r->st) < 0)
		return AP_EXIT_FAILED;
	if (!r->o->json)
		printf("nothing to do: %.12s is applied\n", r->plan->to);
	return AP_EXIT_OK;
}

static int validate(struct run *r)
{
	const struct ap_install_source src = { .read = read_source, .userdata = r };

	return ap_install_validate(r->plan, &src, r->cfg->scope, r->cfg->unit_dir);
}

/* --- trusting the source (trust.h) ---------------------------------------------------
 * Everything about "may these commits be applied at all" is in this block: check_source()
 * runs once the target is known and before anything is planned, for apply and dry-run
 * alike, and returns an exit code. A refusal changes nothing but the source metrics. */

struct source_walk {
	struct ap_trust *trust;
	bool dry_run;
	FILE *out;                  /* where a dry run lists every verdict */
	char bad[AP_OID_HEXSZ + 1]; /* the first commit that failed */
};

static int source_commit(void *userdata, const struct ap_repo_commit *rc)
{
	struct source_walk *w = userdata;
	const struct ap_trust_commit c = { .id = rc->id, .author = rc->author, .time = rc->time,
					   .signature = rc->signature,
					   .signature_len = rc->signature_len,
					   .payload = rc->signed_data, .payload_len = rc->signed_len };
	struct ap_trust_verdict v;
	struct ap_buf b = { 0 };
	int k = ap_trust_verify(w->trust, &c, &v);

	if (k >= 0)
		k = ap_trust_format_verdict(&c, &v, &b);
	if (k >= 0 && w->dry_run)
		fprintf(w->out, "source: %s", b.data);
	if (k >= 0 && v.status != AP_TRUST_GOOD && !*w->bad) {
		memcpy(w->bad, rc->id, sizeof(w->bad));
		if (!w->dry_run)
			ap_log_error(-EPERM, "refusing: commit %.*s; nothing was changed",
				     (int)b.len - 1, b.data);
	}
	ap_buf_free(&b);
	return k < 0 ? k : *w->bad && !w->dry_run;
}

static void source_report(struct run *r, const char *applied, const char *target,
			  const char *refused, const char *commit)
{
	char host[256] = "unknown";
	_cleanup_free_ char *path = ap_trust_metrics_path(r->cfg->guard.metrics_file,
							  r->cfg->state_dir);
	const struct ap_source_report rep = { .host = host, .applied = applied, .target = target,
					      .refused = refused, .commit = commit };

	if (r->o->dry_run || !path) /* a dry run writes nothing */
		return;
	(void)gethostname(host, sizeof(host) - 1);
	(void)ap_trust_write_metrics(path, &rep);
}

/* A rewritten history is applied only when the operator said so, with a reason. */
static int allow_rewind(struct run *r, const char *applied, const char *target)
{
	_cleanup_free_ char *line = NULL;

	if (!r->o->allow_rewind && !r->cfg->allow_rewind) {
		ap_log_error(-EPERM, "refusing %.12s: it does not descend from the applied commit "
			     "%.12s: history was rewritten (force-push or rewind); nothing was "
			     "changed. To apply it anyway: autopull apply --allow-rewind --reason "
			     "TEXT (or repo.allow_rewind: true)", target, applied);
		return AP_EXIT_INVALID;
	}
	ap_log_warning("history was rewritten: %.12s does not descend from the applied commit "
		       "%.12s; applying it (%s)", target, applied,
		       r->o->allow_rewind ? r->o->reason : "repo.allow_rewind: true");
	if (!r->o->allow_rewind || r->o->dry_run)
		return AP_EXIT_OK;
	line = ap_strdupf("%llu %s allow-rewind from %s: %s\n", ap_now_realtime_usec(), target,
			  applied, r->o->reason);
	return line && ap_state_append_text(r->st, "overrides", line) >= 0 ? AP_EXIT_OK
									  : AP_EXIT_FAILED;
}

/* Which exit code a failed walk gets: a verifier that is not installed or a key file that
 * cannot be read is configuration; a verifier that hangs may pass. */
static int verify_exit_code(int k)
{
	if (k == -ENOENT || k == -EACCES || k == -EINVAL)
		return AP_EXIT_USAGE;
	return k == -ETIMEDOUT ? AP_EXIT_TEMPFAIL : AP_EXIT_FAILED;
}

static int check_signatures(struct run *r, const struct ap_trust_range *range, const char *target,
			    char ret_bad[AP_OID_HEXSZ + 1])
{
	const struct ap_trust_config *t = &r->cfg->trust;
	/* stdout stays one JSON document with --json */
	struct source_walk w = { .dry_run = r->o->dry_run, .out = r->o->json ? stderr : stdout };
	int k;

	/* ap_trust_range() hands out trust.since itself on a first run */
	if (range->from && range->from == t->since &&
	    ap_repo_is_ancestor(r->repo, t->since, target) != 1) {
		ap_log_error(-EINVAL, "trust.since %.12s is not an ancestor of %.12s on branch '%s'",
			     t->since, target, r->cfg->branch);
		return AP_EXIT_USAGE;
	}
	if ((k = ap_trust_open(t, r->cfg->state_dir, &w.trust)) < 0)
		return AP_EXIT_USAGE;
	k = ap_repo_walk(r->repo, range->from, target, range->first_parent, source_commit, &w);
	if (k >= 0 && !r->o->dry_run)
		(void)ap_trust_save(w.trust); /* the good ones stay good, whatever came after */
	ap_trust_free(w.trust);
	if (k < 0)
		return verify_exit_code(k);
	memcpy(ret_bad, w.bad, sizeof(w.bad));
	return *w.bad ? AP_EXIT_INVALID : AP_EXIT_OK;
}

static int check_source(struct run *r, const char *applied, const char *target)
{
	char from[AP_OID_HEXSZ + 1] = "", bad[AP_OID_HEXSZ + 1] = "";
	int fwd = 1, back = 0, code = AP_EXIT_OK;
	struct ap_trust_range range;
	enum ap_source_move m;

	/* --from plans between two commits of the infra repo's own CI: its range is checked,
	 * but it has no applied commit to have rewritten. */
	if (r->o->from && ap_repo_resolve(r->repo, r->o->from, from) < 0)
		return AP_EXIT_USAGE;
	if (*from)
		applied = from;
	if (*applied && strcmp(applied, target) != 0 &&
	    ((fwd = ap_repo_is_ancestor(r->repo, applied, target)) < 0 ||
	     (back = ap_repo_is_ancestor(r->repo, target, applied)) < 0))
		return AP_EXIT_FAILED;
	m = ap_trust_classify(applied, target, fwd > 0, back > 0, r->o->commit != NULL);
	if (m == AP_MOVE_REWIND && !*from && (code = allow_rewind(r, applied, target)) != AP_EXIT_OK) {
		source_report(r, applied, target, "history-rewritten", target);
		return code;
	}
	ap_trust_range(&r->cfg->trust, m, applied, &range);
	if (range.check)
		code = check_signatures(r, &range, target, bad);
	if (code == AP_EXIT_OK || *bad)
		source_report(r, applied, target, *bad ? "signature" : NULL, *bad ? bad : target);
	return code;
}

/* --- the guard ----------------------------------------------------------------------- */

/* A commit whose apply was rolled back is skipped until the branch moves on or --commit
 * names it. */
static bool skip_bad(struct run *r, const char *target, const char *applied)
{
	_cleanup_free_ char *bad = NULL;

	if (strcmp(target, applied) == 0 || ap_state_read_text(r->st, "bad", &bad) < 0)
		return false;
	for (char *save = NULL, *l = strtok_r(bad, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (strncmp(l, target, AP_OID_HEXSZ) == 0 && l[AP_OID_HEXSZ] == ' ') {
			ap_log_warning("skipping %.12s: its apply was rolled back (%s); push a newer "
				       "commit, or run 'autopull apply --commit %.12s' to retry it",
				       target, l + AP_OID_HEXSZ + 1, target);
			return true;
		}
	return false;
}

static int record_override(struct run *r)
{
	_cleanup_free_ char *line = ap_strdupf("%llu %s %s\n", ap_now_realtime_usec(), r->plan->to,
					       r->o->reason);
	int k = line ? ap_state_append_text(r->st, "overrides", line) : -ENOMEM;

	if (k >= 0 && r->guard.tripped)
		k = ap_state_remove(r->st, "guard-tripped");
	return k;
}

/* Refuses to pile a deploy onto a host where a watched unit loops (exit 3), unless
 * --override-guard says why. */
static int check_guard(struct run *r)
{
	struct ap_buf b = { 0 };

	if (!r->have_guard || r->guard.ok)
		return AP_EXIT_OK;
	if (r->o->override_guard) {
		ap_log_warning("guard overridden for %.12s: %s", r->plan->to, r->o->reason);
		return record_override(r) < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
	}
	if (ap_watch_format(&r->guard, false, &b) >= 0)
		fputs(b.data, stderr);
	ap_buf_free(&b);
	for (size_t i = 0; i < r->guard.n; i++)
		if (r->guard.v[i].looping)
			ap_log_error(-EBUSY, "refusing to apply %.12s: unit '%s' is looping: %s",
				     r->plan->to, r->guard.v[i].unit, r->guard.v[i].why);
	if (r->guard.tripped)
		ap_log_error(-EBUSY, "refusing to apply %.12s: %s", r->plan->to, r->guard.tripped);
	return AP_EXIT_GUARD;
}

static int apply_locked(struct run *r, struct journal *j)
{
	char applied[AP_OID_HEXSZ + 1] = "", target[AP_OID_HEXSZ + 1], base[AP_OID_HEXSZ + 1];
	int k = ap_state_read_applied(r->st, applied), code;

	if ((k < 0 && k != -ENOENT) || read_journal(r, j) < 0)
		return AP_EXIT_FAILED;
	if ((code = find_target(r, target)) != AP_EXIT_OK)
		return code;
	if ((code = check_source(r, applied, target)) != AP_EXIT_OK)
		return code;
	if (!j->present && !r->o->commit && !r->o->from && skip_bad(r, target, applied))
		return AP_EXIT_OK;
	if (j->present && !j->installed && !r->o->dry_run && !r->o->from &&
	    (code = finish_interrupted(r, j)) != AP_EXIT_OK)
		return code;
	if (r->o->from && ap_repo_resolve(r->repo, r->o->from, base) < 0)
		return AP_EXIT_USAGE;
	if (!r->o->from)
		memcpy(base, j->present ? (j->installed ? j->to : j->from) : applied, sizeof(base));
	if ((code = make_plan(r, base, target)) != AP_EXIT_OK)
		return code;
	if (j->present && !r->o->from && add_owed(r, j) < 0)
		return AP_EXIT_FAILED;
	if ((r->o->dry_run || !plan_is_noop(r->plan)) && get_bus(r))
		r->have_guard = ap_watch_heartbeat(r->bus, r->st, r->cfg, !r->o->dry_run, &r->guard) >= 0;
	if (r->o->dry_run)
		return print_plan(r) < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
	if (plan_is_noop(r->plan))
		return record_noop(r, applied, j);
	if ((code = check_guard(r)) != AP_EXIT_OK)
		return code;
	if (validate(r) < 0)
		return AP_EXIT_INVALID;
	if ((code = check_not_emptying(r)) != AP_EXIT_OK)
		return code;
	if (print_plan(r) < 0)
		return AP_EXIT_FAILED;
	code = execute(r, false);
	record_last_apply(r, code == AP_EXIT_OK);
	return code;
}

int ap_engine_apply(const struct ap_opts *o)
{
	struct run r = { .o = o };
	struct journal j = { 0 };
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
	code = apply_locked(&r, &j);
out:
	free(j.body);
	run_done(&r);
	return code;
}

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

int ap_engine_status(const struct ap_opts *o)
{
	struct run r = { .o = o };
	struct journal j = { 0 };
	_cleanup_strv_free_ char **owned = NULL;
	char applied[AP_OID_HEXSZ + 1] = "";
	int code = AP_EXIT_FAILED, k;

	if (load_config(o, &r.cfg) < 0)
		return AP_EXIT_USAGE;
	if (ap_state_open(r.cfg->state_dir, &r.st) < 0)
		goto out;
	k = ap_state_read_applied(r.st, applied);
	if ((k < 0 && k != -ENOENT) || read_journal(&r, &j) < 0 || ap_state_read_owned(r.st, &owned) < 0)
		goto out;
	printf("config:    %s (%s scope)\nrepo:      %s (branch %s)\nstate:     %s\n", r.cfg->path,
	       ap_scope_to_string(r.cfg->scope), r.cfg->repo_url, r.cfg->branch, r.cfg->state_dir);
	printf("applied:   %s\n", *applied ? applied : "(nothing yet)");
	printf("installed: %zu file(s)\n", ap_strv_length(owned));
	if (j.present)
		printf("journal:   unfinished apply %.12s -> %.12s (files %s)\n%s",
		       *j.from ? j.from : "(none)", j.to, j.installed ? "installed" : "not all installed",
		       j.body);
	code = AP_EXIT_OK;
out:
	free(j.body);
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
