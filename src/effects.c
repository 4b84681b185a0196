/* The executor's effects on the real host (see effects.h). Each function does one thing the
 * executor asks for and logs its own failure, naming the path or unit; the sequencing and the
 * journal are apply.c's.
 *
 * Deliberately not here: deciding what to do after a failure (apply.c) and exit codes. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "effects.h"
#include "state-fileset.h"
#include "log.h"
#include "record.h"
#include "rollout.h"
#include "sdexit.h"
#include "spawn.h"
#include "util.h"
#include "guard.h"
#include "probe.h"

#define JOB_TIMEOUT_USEC (5ULL * 60 * 1000000)

static int save_journal(void *u, const struct ap_journal *j)
{
	struct ap_effects *e = u;

	return ap_state_write_journal(e->st, j);
}

static int clear_journal(void *u)
{
	struct ap_effects *e = u;

	return ap_state_clear_journal(e->st);
}

/* --- files ------------------------------------------------------------------------------ */

/* A directory the apply is about to create is remembered, so that a restore takes it back. */
static int save_missing_dir(struct ap_fileset *backup, const char *path, size_t root_len)
{
	_cleanup_free_ char *dir = NULL;
	int r = ap_install_first_missing_dir(path, root_len, &dir);

	if (r < 0 || !dir || ap_state_fileset_find(backup, dir))
		return r;
	return ap_state_fileset_add(backup, &(struct ap_host_file){ .path = dir,
								    .root_len = root_len,
								   .dir = true });
}

/* Saves one host path into the backup (with whether autopull owned it), and the original of
 * a file this apply takes over into adopted/ (kept for good: it is the operator's). */
static int save_path(struct ap_effects *e, const struct ap_strindex *owned,
		     struct ap_fileset *backup, struct ap_fileset **adopted, const char *path,
		     size_t root_len, bool install)
{
	struct ap_host_file hf = { 0 };
	size_t pos;
	int r;

	if (ap_state_fileset_find(backup, path))
		return 0; /* a re-run keeps the state from before the first attempt */
	r = ap_install_read_host(path, root_len, true, &hf);
	if (r < 0)
		return ap_log_error(r, "failed to back up '%s': %s", path, strerror(-r));
	hf.owned = ap_strindex_find(owned, path, &pos);
	r = ap_state_fileset_add(backup, &hf);
	if (r >= 0 && !hf.present)
		r = save_missing_dir(backup, path, root_len);
	if (r >= 0 && install && hf.present && !hf.owned) {
		if (!*adopted)
			r = ap_state_fileset_open(e->st, "adopted", true, adopted);
		if (r >= 0 && !ap_state_fileset_find(*adopted, path)) {
			r = ap_state_fileset_add(*adopted, &hf);
			if (r >= 0)
				ap_log_notice("taking over '%s'; its original is kept in '%s/adopted'",
					      path, ap_state_path(e->st));
		}
	}
	ap_host_file_clear(&hf);
	return r;
}

static int backup(void *u, const struct ap_plan *p, const char *commit)
{
	struct ap_effects *e = u;
	_cleanup_(ap_state_fileset_freep) struct ap_fileset *b = NULL, *adopted = NULL;
	const char *keep[] = { commit, p->from, NULL };
	_cleanup_strindex_ struct ap_strindex owned = { 0 }; /* a search per path was O(n^2) */
	char name[48];
	int r = ap_state_backup_prune(e->st, keep);

	for (size_t i = 0; r >= 0 && e->owned && e->owned[i]; i++)
		r = ap_strindex_add(&owned, e->owned[i], i);
	if (r >= 0)
		r = ap_state_fileset_open(e->st, ap_state_backup_name(commit, name), true, &b);
	for (size_t i = 0; r >= 0 && i < p->n_files; i++) {
		const struct ap_file_op *f = &p->files[i];

		r = save_path(e, &owned, b, &adopted, f->dest, f->root_len, f->install);
		if (r >= 0 && f->old_dest)
			r = save_path(e, &owned, b, &adopted, f->old_dest, f->old_root_len, false);
	}
	/* The originals first: the backup's manifest makes the backup count as made. */
	if (r >= 0 && adopted)
		r = ap_state_fileset_commit(adopted);
	return r < 0 ? r : ap_state_fileset_commit(b);
}

static void file_done(void *u, const char *dest)
{
	struct ap_effects *e = u;
	char point[32];

	snprintf(point, sizeof(point), "after-file:%u", ++e->files_done);
	ap_effects_crash_point(e->crash, point);
}

static int adopted_original(void *u, const char *dest, struct ap_host_file *ret)
{
	struct ap_effects *e = u;
	_cleanup_(ap_state_fileset_freep) struct ap_fileset *f = NULL;
	const struct ap_host_file *a;
	int r = ap_state_fileset_open(e->st, "adopted", false, &f);

	if (r == -ENOENT)
		return 0;
	if (r < 0 || !(a = ap_state_fileset_find(f, dest)))
		return r;
	*ret = (struct ap_host_file){ .root_len = a->root_len, .present = a->present,
				      .mode = a->mode, .uid = a->uid, .gid = a->gid };
	ret->path = strdup(a->path);
	if (!ret->path)
		return -ENOMEM;
	r = a->present ? ap_state_fileset_read(f, a, &ret->data, &ret->len) : 0;
	if (r < 0) {
		ap_host_file_clear(ret);
		return r;
	}
	return 1;
}

static int install(void *u, const struct ap_plan *p)
{
	struct ap_effects *e = u;
	const struct ap_install_hooks h = { .src = e->src, .progress = file_done,
					    .adopted = adopted_original, .userdata = e };
	int r = ap_install_files(p, &h, &e->owned), w;

	/* What did get installed is recorded either way: the restore relies on the backup, and
	 * a later removal on the inventory. */
	w = ap_state_write_owned(e->st, e->owned);
	return r < 0 ? r : w;
}

static int owned_set(struct ap_strset *s, const char *path, bool owned)
{
	int r = owned ? ap_strset_add(s, path) : ap_strset_remove(s, path);

	return r < 0 ? r : 0;
}

static int longer_first(const void *a, const void *b)
{
	size_t x = strlen((*(const struct ap_host_file *const *)a)->path);
	size_t y = strlen((*(const struct ap_host_file *const *)b)->path);

	return x < y ? 1 : x > y ? -1 : 0;
}

/* The directories the apply created, deepest first (one inside another goes before it). */
static int remove_created_dirs(struct ap_fileset *f)
{
	size_t n = ap_state_fileset_count(f), k = 0;
	_cleanup_free_ const struct ap_host_file **dirs = calloc(n ? n : 1, sizeof(*dirs));
	int failed = 0;

	if (!dirs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (ap_state_fileset_entry(f, i)->dir)
			dirs[k++] = ap_state_fileset_entry(f, i);
	qsort(dirs, k, sizeof(*dirs), longer_first);
	for (size_t i = 0; i < k; i++) {
		int r = ap_install_remove_created_dir(dirs[i]->path, dirs[i]->root_len);

		if (r < 0)
			failed = ap_log_error(r, "failed to remove '%s', created by the apply: %s",
					      dirs[i]->path, strerror(-r));
	}
	return failed;
}

/* Every path is tried, so that one failure does not leave the others half-done. */
static int restore(void *u, const char *commit)
{
	struct ap_effects *e = u;
	_cleanup_(ap_state_fileset_freep) struct ap_fileset *f = NULL;
	struct ap_strset owned = { 0 };
	char name[48];
	int r = ap_state_fileset_open(e->st, ap_state_backup_name(commit, name), false, &f),
		failed = 0;

	if (r == -ENOENT)
		return 0; /* no backup: nothing was changed yet */
	if (r >= 0)
		r = ap_strset_adopt(&owned, &e->owned); /* a search per path was O(n^2) */
	if (r < 0)
		return r;
	for (size_t i = 0; i < ap_state_fileset_count(f); i++) {
		const struct ap_host_file *b = ap_state_fileset_entry(f, i);
		struct ap_host_file hf = *b;

		if (b->dir)
			continue; /* after the files: they are inside */
		hf.data = NULL;
		hf.len = 0;
		r = b->present ? ap_state_fileset_read(f, b, &hf.data, &hf.len) : 0;
		if (r >= 0)
			r = ap_install_put_back(&hf);
		free(hf.data);
		if (r >= 0)
			r = owned_set(&owned, b->path, b->owned);
		if (r < 0)
			failed = ap_log_error(r, "failed to restore '%s': %s", b->path,
					      strerror(-r));
		else
			ap_log_debug("restored %s", b->path);
	}
	e->owned = ap_strset_take(&owned);
	failed = remove_created_dirs(f) < 0 && !failed ? -EIO : failed;
	r = ap_state_write_owned(e->st, e->owned);
	return failed ? failed : r;
}

/* --- tmpfiles.d and sysusers.d ------------------------------------------------------------ */

#define SETUP_TIMEOUT_USEC (2ULL * 60 * 1000000)

/* The tool's environment: a clean one, plus in user scope what --user resolves %h, %t and the
 * user's directories with. */
static int setup_env(const struct ap_effects *e, char ***ret)
{
	static const char *const keep[] = { "HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME",
					    "XDG_STATE_HOME", "XDG_CACHE_HOME" };
	int r = ap_strv_push(ret, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");

	if (r >= 0)
		r = ap_strv_push(ret, "LANG=C.UTF-8");
	for (size_t i = 0; r >= 0 && e->cfg->scope == AP_SCOPE_USER && i < ELEMENTSOF(keep); i++) {
		const char *v = secure_getenv(keep[i]);
		_cleanup_free_ char *kv = v ? ap_strdupf("%s=%s", keep[i], v) : NULL;

		if (v)
			r = kv ? ap_strv_push(ret, kv) : -ENOMEM;
	}
	return r;
}

/* One tool on one installed file, contained like a validator (spawn.c): argv, no shell. Its
 * last output line names what failed (systemd's tools say "FILE:LINE: why"). */
static int setup_one(struct ap_effects *e, const struct ap_setup_action *a, char *const *env)
{
	char *const tmpfiles[] = { (char *)"systemd-tmpfiles", (char *)"--create", a->file, NULL };
	char *const tmpfiles_user[] = { (char *)"systemd-tmpfiles", (char *)"--user",
					(char *)"--create", a->file, NULL };
	char *const sysusers[] = { (char *)"systemd-sysusers", a->file, NULL };
	char *const *argv = a->kind == AP_SETUP_SYSUSERS	   ? sysusers
			    : e->cfg->scope == AP_SCOPE_USER ? tmpfiles_user
							       : tmpfiles;
	struct ap_spawn_result res = { 0 };
	const char *tool = argv[0];
	int r = ap_spawn_run(argv, env, SETUP_TIMEOUT_USEC, &res);

	if (r < 0)
		return ap_log_error(r, "failed to run %s on '%s': %s", tool, a->file, strerror(-r));
	if (res.exit_status != 0 || res.timed_out) {
		char *out = res.output ? res.output : (char[]){ "" };
		size_t n = strlen(out);

		while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
			out[--n] = '\0';
		r = ap_log_error(-EIO, "%s on '%s' failed (%s %d): %s", tool, a->file,
				 res.timed_out ? "timed out, status" : "exit", res.exit_status,
				 strrchr(out, '\n') ? strrchr(out, '\n') + 1 : out);
	} else {
		ap_log_info("%s %s: done", ap_setup_kind_to_string(a->kind), a->file);
	}
	ap_spawn_result_clear(&res);
	return r;
}

/* System scope: the manager runs the tool as a transient service (bus.c), outside the sandbox
 * of the apply service, whose ProtectSystem=strict keeps /etc (systemd-sysusers renames
 * /etc/passwd) and /run read-only. Its output is that unit's journal; a failed one is reset
 * at once, so that no run finds a failed unit of ours. */
static int setup_by_manager(struct ap_effects *e, const struct ap_setup_action *a, unsigned n)
{
	_cleanup_free_ char *unit = ap_strdupf("autopull-%s-%d-%u.service",
					       ap_setup_kind_to_string(a->kind), (int)getpid(), n);
	_cleanup_free_ char *tool = NULL;
	struct ap_unit_props props = { 0 };
	char status[48];
	struct ap_job job;
	int r = unit ? ap_spawn_find(a->kind == AP_SETUP_SYSUSERS ? "systemd-sysusers"
							      : "systemd-tmpfiles", &tool)
		     : -ENOMEM;
	char *const tmpfiles[] = { tool, (char *)"--create", a->file, NULL };
	char *const sysusers[] = { tool, a->file, NULL };

	if (r < 0)
		return ap_log_error(r, "cannot run the %s of '%s': %s",
				    ap_setup_kind_to_string(a->kind), a->file, strerror(-r));
	job = (struct ap_job){ .unit = unit, .kind = AP_JOB_RUN,
			       .argv = a->kind == AP_SETUP_SYSUSERS ? sysusers : tmpfiles };
	(void)ap_bus_run_jobs(e->bus, &job, 1, SETUP_TIMEOUT_USEC);
	if (job.error == 0) {
		ap_log_info("%s %s: done", ap_setup_kind_to_string(a->kind), a->file);
		return 0;
	}
	(void)ap_bus_get_unit_props(e->bus, unit, &props);
	r = ap_log_error(-EIO, "%s on '%s' failed (%s, exit status %s); its output: journalctl -u %s",
			 tool, a->file, job.result,
			 ap_exit_status_format(props.exec_main_status, status, sizeof(status)), unit);
	ap_unit_props_clear(&props);
	(void)ap_bus_reset_failed(e->bus, (char *[]){ unit, NULL });
	return r;
}

static int setup(void *u, const struct ap_plan *p)
{
	struct ap_effects *e = u;
	_cleanup_strv_free_ char **env = NULL;
	bool manager = e->bus && e->cfg->scope == AP_SCOPE_SYSTEM;
	int r = setup_env(e, &env);

	for (size_t i = 0; r >= 0 && i < p->n_setup; i++)
		if (p->setup[i].kind != AP_SETUP_NONE)
			r = manager ? setup_by_manager(e, &p->setup[i], (unsigned)i)
				    : setup_one(e, &p->setup[i], env);
	return r;
}

/* --- the manager ---------------------------------------------------------------------- */

static int enable(void *u, char *const *units)
{
	struct ap_effects *e = u;

	return ap_bus_enable(e->bus, units);
}

static int reenable(void *u, char *const *units)
{
	struct ap_effects *e = u;

	return ap_bus_reenable(e->bus, units);
}

static int disable(void *u, char *const *units)
{
	struct ap_effects *e = u;
	int r = ap_bus_disable(e->bus, units);

	return r == -ENOENT ? 0 : r; /* a unit without a file has no links left to remove */
}

static int reload(void *u)
{
	struct ap_effects *e = u;

	return ap_bus_reload(e->bus);
}

static int reset_failed(void *u, char *const *units)
{
	struct ap_effects *e = u;

	return ap_bus_reset_failed(e->bus, units);
}

/* A job result says "failed"; the unit says why (Result=timeout, exit status 216/GROUP). */
static void explain_failed_job(struct ap_effects *e, const struct ap_job *j)
{
	struct ap_unit_props p = { 0 };
	char status[48];

	if (ap_bus_get_unit_props(e->bus, j->unit, &p) < 0)
		return;
	ap_log_error(j->error, "unit '%s': ActiveState=%s SubState=%s Result=%s ExecMainStatus=%s",
		     j->unit, p.active_state, p.sub_state, p.result ? p.result : "-",
		     ap_exit_status_format(p.exec_main_status, status, sizeof(status)));
	ap_unit_props_clear(&p);
}

/* up: the unit is active; else: it is anything but inactive or failed (a service that is
 * starting, reloading or stopping holds the socket's fd too). */
static bool props_state(struct ap_effects *e, const char *unit, bool up)
{
	struct ap_unit_props p = { 0 };
	bool ok = ap_bus_get_unit_props(e->bus, unit, &p) >= 0 &&
		  (up ? strcmp(p.active_state, "active") == 0
		      : strcmp(p.active_state, "inactive") != 0 && strcmp(p.active_state,
									  "failed") != 0);

	ap_unit_props_clear(&p);
	return ok;
}

/* The manager does not start a socket while a service it activates runs (that service holds
 * the listening fd it inherited), so a plain restart of a changed socket ends with the socket
 * dead: connections are refused as soon as the service stops. Stopping the socket first
 * (no connection can start the service again meanwhile) and then the running services it
 * triggers lets the restart start the socket on the new definition; the next connection
 * starts the service. 1: j is now a restart of a stopped socket; 0: nothing to do. */
static int free_socket(struct ap_effects *e, struct ap_job *j)
{
	bool try = j->kind == AP_JOB_TRY_RESTART || j->kind == AP_JOB_RELOAD_OR_TRY_RESTART;
	_cleanup_strv_free_ char **triggers = NULL;
	struct ap_job stop[16];
	size_t n = 0;
	int r;

	if (!ap_endswith(j->unit, ".socket") || (!try && j->kind != AP_JOB_RESTART))
		return 0;
	r = ap_bus_unit_triggers(e->bus, j->unit, &triggers);
	for (size_t i = 0; r >= 0 && triggers && triggers[i] && n + 1 < ELEMENTSOF(stop); i++)
		if (props_state(e, triggers[i], false))
			stop[n++] = (struct ap_job){ .unit = triggers[i], .kind = AP_JOB_STOP };
	if (r < 0 || n == 0 || (try && !props_state(e, j->unit, true)))
		return r < 0 ? r : 0;
	ap_log_notice("socket '%s': stopping it and the %zu running service(s) it activates, so "
		      "that it restarts on its new definition", j->unit, n);
	stop[n++] = (struct ap_job){ .unit = j->unit, .kind = AP_JOB_STOP };
	r = ap_bus_run_jobs(e->bus, stop, n, JOB_TIMEOUT_USEC);
	if (r < 0)
		return r;
	j->kind = AP_JOB_RESTART;
	return 1;
}

/* A socket restarted by RestartUnit (above, or by a rollback) must listen again: a job that
 * is "done" does not prove it. */
static void check_listening(struct ap_effects *e, struct ap_job *j)
{
	if (j->error || !ap_endswith(j->unit, ".socket") || props_state(e, j->unit, true))
		return;
	j->error = -ENOTCONN;
	snprintf(j->result, sizeof(j->result), "not-listening");
	ap_log_error(j->error, "socket '%s' is not listening after its %s", j->unit,
		     ap_job_kind_to_string(j->kind));
}

/* Runs, as one batch, the jobs whose unit is a socket (sockets) or is not. */
static int run_batch(struct ap_effects *e, struct ap_job *jobs, size_t n, bool sockets)
{
	_cleanup_free_ struct ap_job *v = calloc(n ? n : 1, sizeof(*v));
	_cleanup_free_ size_t *idx = calloc(n ? n : 1, sizeof(*idx));
	size_t k = 0;
	int r = 0;

	for (size_t i = 0; i < n; i++) {
		if (ap_endswith(jobs[i].unit, ".socket") != sockets)
			continue;
		if (!v || !idx) {
			jobs[i].error = -ENOMEM;
			snprintf(jobs[i].result, sizeof(jobs[i].result), "failed");
			continue;
		}
		v[k] = jobs[i];
		idx[k++] = i;
	}
	if (!v || !idx)
		return ap_log_error(-ENOMEM, "failed to queue jobs: %s", strerror(ENOMEM));
	if (k)
		r = ap_bus_run_jobs(e->bus, v, k, JOB_TIMEOUT_USEC);
	for (size_t j = 0; j < k; j++)
		jobs[idx[j]] = v[j];
	return r;
}

static int run_jobs(void *u, struct ap_job *jobs, size_t n)
{
	struct ap_effects *e = u;
	int r, k;

	/* A failure is logged there; the restart then fails as it would have and is owed. */
	for (size_t i = 0; i < n; i++)
		(void)free_socket(e, &jobs[i]);
	/* Sockets first: a service restarted or started in the same batch would take the
	 * listening fd again before its socket could start. */
	r = run_batch(e, jobs, n, true);
	k = run_batch(e, jobs, n, false);
	if (r >= 0)
		r = k;
	for (size_t i = 0; i < n; i++)
		if (jobs[i].kind == AP_JOB_RESTART)
			check_listening(e, &jobs[i]);
	for (size_t i = 0; i < n; i++) {
		const char *res = jobs[i].error ? jobs[i].result : "done";

		if (jobs[i].error)
			explain_failed_job(e, &jobs[i]);
		if (e->quiet_jobs)
			ap_log_info("%s %s: %s", ap_job_kind_to_string(jobs[i].kind), jobs[i].unit,
				    res);
		else
			printf("%s %s: %s\n", ap_job_kind_to_string(jobs[i].kind), jobs[i].unit,
			       res);
	}
	fflush(stdout);
	return r;
}

/* Each unit with a probe (health: or X-AutoPull-Health=) must pass it once the window is
 * over: the unit had the whole window to come up. A failed probe is recorded for the metrics
 * and fails the settle like a unit that went down. */
static int probe_units(struct ap_effects *e, char *const *units, char **ret_why)
{
	for (size_t i = 0; units && units[i]; i++) {
		struct ap_probe p = { 0 };
		char result[AP_PROBE_RESULT_MAX] = "";
		int r = ap_probe_for_unit(e->cfg, units[i], &p);

		if (r == -EINVAL) {
			*ret_why = ap_strdupf("unit '%s' has a malformed X-AutoPull-Health=",
					      units[i]);
			return *ret_why ? -EIO : -ENOMEM;
		}
		if (r < 0)
			return r;
		if (r == 0)
			continue;
		r = ap_probe_wait(&p, units[i], result, ret_why);
		(void)ap_record_probe(e->st, &(struct ap_record_probe_result){
						     .unit = units[i],
						     .kind = ap_probe_kind_to_string(p.kind),
						     .healthy = r >= 0, .result = result,
						     .window_usec = e->cfg->guard.window_usec });
		ap_probe_clear(&p);
		if (r < 0)
			return r;
	}
	return 0;
}

static int settle(void *u, char *const *units, char **ret_why)
{
	struct ap_effects *e = u;
	int r = 0;

	/* A person at a terminal sees why nothing happens for a while. */
	if (isatty(STDERR_FILENO) && e->cfg->guard.settle_usec)
		fprintf(stderr, "autopull: watching %zu unit(s) for %.0f s (guard.settle)...\n",
			ap_strv_length(units), e->cfg->guard.settle_usec / 1e6);
	if (e->cfg->guard.settle_usec)
		r = ap_guard_settle(e->bus, units, e->cfg->guard.settle_usec, ret_why);
	if (r >= 0)
		r = probe_units(e, units, ret_why);
	if (r < 0 && r != -EIO)
		ap_log_error(r, "failed to watch the restarted units: %s", strerror(-r));
	return r;
}

/* --- records ------------------------------------------------------------------------------ */

static int record(void *u, const struct ap_journal *j, char *const *restarted)
{
	struct ap_effects *e = u;

	return ap_record_applied(e->st, j, restarted);
}

static int record_rollback(void *u, const struct ap_journal *j, const char *why, bool settled,
			   const char *settle_why)
{
	struct ap_effects *e = u;

	return ap_record_rolled_back(e->st, j, why, settled, settle_why);
}

/* --- the test hook --------------------------------------------------------------------------- */

void ap_effects_crash_point(const char *want, const char *point)
{
	/* Test-only, like AUTOPULL_TEST_CRASH: AUTOPULL_TEST_CRASH_LOG names a file that gets a
	 * line
	 * per point passed, so that a test counts only kills at points a run really reaches. */
	const char *path = secure_getenv("AUTOPULL_TEST_CRASH_LOG");

	if (path) {
		int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

		/* A point not logged is a kill the test does not count: the test fails, not this. */
		if (fd < 0 || dprintf(fd, "%s\n", point) < 0)
			ap_log_warning("crash log '%s' not written: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	if (want && strcmp(want, point) == 0) {
		fflush(stdout);
		raise(SIGKILL);
	}
}

static void crash_point(void *u, const char *point)
{
	struct ap_effects *e = u;

	ap_effects_crash_point(e->crash, point);
}

void ap_effects_ops(struct ap_effects *e, struct ap_apply_ops *ret)
{
	*ret = (struct ap_apply_ops){
		.userdata = e, .save_journal = save_journal, .clear_journal = clear_journal,
		.backup = backup, .install = install, .setup = setup, .restore = restore,
		.enable = enable,
		.reenable = reenable, .disable = disable, .reload = reload,
		.reset_failed = reset_failed, .run_jobs = run_jobs, .settle = settle,
		.record = record, .record_rollback = record_rollback, .crash_point = crash_point,
	};
}

int ap_effects_execute(struct ap_effects *e, struct ap_journal *j, const struct ap_plan *p,
		       enum ap_apply_outcome *ret)
{
	struct ap_apply_ops ops;
	int k = e->bus || (j->n_units == 0 && ap_journal_is_done(j, AP_PHASE_RELOAD)) ? 0
		: -ENOTCONN;

	*ret = AP_APPLY_FAILED;
	ap_effects_ops(e, &ops);
	if (k >= 0 && e->fleet)
		k = ap_rollout_enter(e->fleet, &e->cfg->fleet, j->to, &e->fleet_wait_usec);
	if (k == -EAGAIN)
		return k;
	if (k >= 0)
		k = ap_apply_run(j, p, &ops, ret);
	if (k < 0)
		*ret = AP_APPLY_FAILED;
	if (e->fleet)
		ap_rollout_leave(e->fleet, j->to, *ret, ap_apply_outcome_to_string(*ret), j->why);
	return k;
}

int ap_effects_finish(struct ap_effects *e, struct ap_journal *j, bool *ret_has_journal)
{
	bool rollback = j->mode == AP_JOURNAL_ROLLBACK;
	enum ap_apply_outcome out;
	struct ap_apply_ops ops;
	int k;

	ap_effects_ops(e, &ops);
	if (rollback)
		ap_log_notice("finishing the interrupted rollback of %.12s", j->to);
	else
		ap_log_notice("the apply of %.12s was interrupted before all its files were written; "
			      "putting them back", j->to);
	k = e->bus || j->n_units == 0 ? ap_apply_undo(j, &ops, rollback, j->why, &out) : -ENOTCONN;
	ap_journal_clear(j);
	/* An older journal the undone one had superseded comes back (apply.c). */
	if (k >= 0)
		k = ap_state_read_journal(e->st, j);
	*ret_has_journal = k >= 0;
	if (k < 0 && k != -ENOENT)
		return ap_log_error(k, "failed to finish the interrupted run: %s", strerror(-k));
	return 0;
}

/* A journal can owe a job of the unit running this apply: written by an apply that restarted
 * the service it ran in, and was killed by that restart before it could record it. Asking
 * again would kill this run the same way, on every run. The unit runs now, started after
 * that apply's daemon-reload, so on its new files: nothing is owed. It becomes "none", not a
 * done restart, which the settle window would watch (a running oneshot never becomes active)
 * and a rollback would restart. */
static int skip_own_owed(struct ap_bus *b, struct ap_journal *j)
{
	_cleanup_free_ char *self = NULL;
	struct ap_journal_unit *u;
	int k = b ? ap_bus_own_unit(b, &self) : 0;

	if (k < 0 || !self || !(u = ap_journal_find_unit(j, self)) || u->state == AP_STEP_DONE)
		return k;
	ap_log_notice("the owed %s of '%s', the unit running this apply, is not done from inside "
		      "it: it runs now, on the files of %.12s", ap_unit_action_to_string(u->action),
		      self, j->to);
	u->action = AP_ACTION_NONE;
	u->state = AP_STEP_DONE;
	return 0;
}

int ap_effects_resolve_owed(struct ap_bus *b, struct ap_journal *j)
{
	int own = skip_own_owed(b, j);

	if (own < 0)
		return own;
	for (size_t i = 0; i < j->n_units; i++) {
		struct ap_journal_unit *u = &j->units[i];
		struct ap_unit_props p = { 0 };
		int k;

		if (u->state == AP_STEP_DONE ||
		    (u->action != AP_ACTION_RESTART && u->action != AP_ACTION_RELOAD))
			continue;
		if (!b)
			return -ENOTCONN;
		k = ap_bus_get_unit_props(b, u->unit, &p);
		if (k >= 0)
			ap_apply_resolve_unit(u, p.active_state);
		ap_unit_props_clear(&p);
		if (k < 0)
			return k;
	}
	return 0;
}
