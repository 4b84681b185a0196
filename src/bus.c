/* The only module that speaks D-Bus (with bus-props.c, which reads unit properties): it
 * connects to the system or the user service manager, reloads it, lists units, queues jobs
 * and waits for their JobRemoved signals, and enables and disables unit files. Only plain
 * bus.h/model.h types and -errno
 * values leave this file, and D-Bus failures are logged here because only here is the
 * manager's own error message known.
 * It does not decide what to restart (plan), when to do it (engine) or whether a unit is
 * healthy (heartbeat). It never runs systemctl and never sleeps to wait for a job. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "bus-private.h"
#include "bus.h"
#include "log.h"
#include "util.h"

/* sd-bus' own default, made explicit so that SYSTEMD_BUS_TIMEOUT cannot change it. */
#define CALL_TIMEOUT_USEC (25ULL * 1000000)
/* Reload re-reads every unit file and runs the generators before it replies. */
#define RELOAD_TIMEOUT_USEC (90ULL * 1000000)

/* The jobs of one ap_bus_run_jobs() call while their JobRemoved signals are awaited. */
struct job_wait {
	struct ap_job *jobs;
	char **paths; /* per job: the queued job's object path; NULL once removed or never queued */
	size_t n, left;
};

/* The manager's own error names. libsystemd maps only the generic D-Bus and System.Error
 * names to errno; without this table every systemd error would become EIO. The values
 * follow systemd's bus-common-errors.c except JobTypeNotApplicable (EBADR there), which
 * callers compare with EOPNOTSUPP. */
static const sd_bus_error_map systemd_errors[] = {
	SD_BUS_ERROR_MAP(SD_DEST ".NoSuchUnit", ENOENT),
	SD_BUS_ERROR_MAP(SD_DEST ".NoSuchJob", ENOENT),
	SD_BUS_ERROR_MAP(SD_DEST ".JobTypeNotApplicable", EOPNOTSUPP),
	SD_BUS_ERROR_MAP(SD_DEST ".UnitMasked", ERFKILL),
	SD_BUS_ERROR_MAP(SD_DEST ".BadUnitSetting", ENOEXEC),
	SD_BUS_ERROR_MAP(SD_DEST ".LoadFailed", EIO),
	SD_BUS_ERROR_MAP(SD_DEST ".OnlyByDependency", EINVAL),
	SD_BUS_ERROR_MAP(SD_DEST ".TransactionIsDestructive", EDEADLK),
	SD_BUS_ERROR_MAP(SD_DEST ".TransactionJobsConflicting", EDEADLK),
	SD_BUS_ERROR_MAP(SD_DEST ".TransactionOrderIsCyclic", EDEADLK),
	SD_BUS_ERROR_MAP(SD_DEST ".ShuttingDown", ECANCELED),
	SD_BUS_ERROR_MAP(SD_DEST ".UnitGenerated", EADDRNOTAVAIL),
	SD_BUS_ERROR_MAP(SD_DEST ".UnitLinked", ELOOP),
	SD_BUS_ERROR_MAP_END,
};

const char *bus_error_message(const sd_bus_error *e, int r)
{
	if (sd_bus_error_is_set(e) && e->message)
		return e->message;
	return strerror(r < 0 ? -r : r);
}

/* "'a.service', 'b.service'" for messages; NULL when out of memory. */
static char *quote_list(char *const *v)
{
	struct ap_buf out = { 0 };
	int r = 0;

	for (size_t i = 0; r >= 0 && v && v[i]; i++)
		r = ap_buf_printf(&out, "%s'%s'", i ? ", " : "", v[i]);
	if (r < 0 || !out.data) {
		ap_buf_clear(&out);
		return NULL;
	}
	return out.data;
}

/* --- connection ------------------------------------------------------------------ */

/* A D-Bus address escapes every byte outside [-0-9A-Za-z_/.\*] as %XX (D-Bus specification,
 * "Server Addresses"); $XDG_RUNTIME_DIR is not ours to trust to be plain. */
static char *unix_address(const char *path)
{
	struct ap_buf a = { 0 };
	int r = ap_buf_printf(&a, "unix:path=");

	for (const char *c = path; r >= 0 && *c; c++) {
		if (isalnum((unsigned char)*c) || strchr("-_/.\\*", *c))
			r = ap_buf_append(&a, c, 1);
		else
			r = ap_buf_printf(&a, "%%%02x", (unsigned)(unsigned char)*c);
	}
	if (r < 0) {
		ap_buf_clear(&a);
		return NULL;
	}
	return a.data;
}

/* The manager's private socket: reachable without a bus daemon, and the only way for root
 * into a user manager. NULL when the scope has none (system scope without root). */
static int private_socket_path(enum ap_scope scope, char **ret)
{
	const char *dir;

	*ret = NULL;
	if (scope == AP_SCOPE_SYSTEM) {
		/* Only root may connect to /run/systemd/private; others go through polkit. */
		if (geteuid() != 0)
			return 0;
		*ret = strdup("/run/systemd/private");
		return *ret ? 0 : -ENOMEM;
	}
	dir = secure_getenv("XDG_RUNTIME_DIR");
	if (!dir || dir[0] != '/')
		return 0;
	*ret = ap_strdupf("%s/systemd/private", dir);
	return *ret ? 0 : -ENOMEM;
}

static int open_private(const char *socket_path, sd_bus **ret)
{
	_cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
	_cleanup_free_ char *address = NULL;
	int r;

	address = unix_address(socket_path);
	if (!address)
		return -ENOMEM;
	r = sd_bus_new(&bus);
	if (r < 0)
		return r;
	r = sd_bus_set_address(bus, address);
	if (r < 0)
		return r;
	r = sd_bus_start(bus);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(bus);
	return 0;
}

static int connect_manager(enum ap_scope scope, sd_bus **ret)
{
	_cleanup_free_ char *socket_path = NULL;
	int r;

	r = private_socket_path(scope, &socket_path);
	if (r < 0)
		return r;
	if (socket_path && access(socket_path, F_OK) == 0) {
		r = open_private(socket_path, ret);
		if (r >= 0)
			return 0;
		/* A stale socket of a manager that is gone: the bus may still know a new one. */
		ap_log_debug("cannot connect to '%s', trying the bus: %s", socket_path,
			     strerror(-r));
	}
	return scope == AP_SCOPE_USER ? sd_bus_open_user(ret) : sd_bus_open_system(ret);
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);

static int bus_setup(struct ap_bus *b, enum ap_scope scope, sd_bus_error *error)
{
	int r;

	r = sd_bus_error_add_map(systemd_errors);
	if (r < 0)
		return r;
	r = connect_manager(scope, &b->bus);
	if (r < 0)
		return r;
	r = sd_bus_set_method_call_timeout(b->bus, CALL_TIMEOUT_USEC);
	if (r < 0)
		return r;
	/* The match must exist before the first job is queued, or a job that finishes at once
	 * is missed. A direct connection has no bus daemon to stamp a sender on signals, so the
	 * sender is matched only on a real bus (as systemd's bus-wait-for-jobs.c does). */
	r = sd_bus_is_bus_client(b->bus);
	if (r < 0)
		return r;
	r = sd_bus_match_signal(b->bus, &b->job_removed, r > 0 ? SD_DEST : NULL, SD_PATH,
	                        SD_MANAGER, "JobRemoved", on_job_removed, b);
	if (r < 0)
		return r;
	/* systemd 252 sends JobRemoved to the job's requester even without Subscribe, but
	 * Subscribe is the documented contract, and it fails early when the manager refuses us
	 * (root on a user's bus daemon gets ENOTCONN here). */
	return sd_bus_call_method(b->bus, SD_DEST, SD_PATH, SD_MANAGER, "Subscribe", error, NULL,
	                          NULL);
}

int ap_bus_open(enum ap_scope scope, struct ap_bus **ret)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	_cleanup_(ap_bus_freep) struct ap_bus *b = NULL;
	const char *name = scope == AP_SCOPE_USER ? "user" : "system";
	int r;

	b = calloc(1, sizeof(*b));
	if (!b)
		return ap_log_error(-ENOMEM, "failed to connect to the %s manager: %s", name,
		                    strerror(ENOMEM));
	b->scope = name;
	r = bus_setup(b, scope, &error);
	/* sd-bus says "No medium found" when it has no address to try at all. */
	if (r == -ENOMEDIUM)
		return ap_log_error(r,
				    "failed to connect to the %s manager: no address to reach it "
		                    "(%s)", name, scope == AP_SCOPE_USER
		                    ? "XDG_RUNTIME_DIR is not set: run in the user's session, or set it"
		                    : "no /run/systemd/private and no system bus");
	if (r < 0)
		return ap_log_error(r, "failed to connect to the %s manager: %s", name,
		                    bus_error_message(&error, r));
	*ret = TAKE_PTR(b);
	return 0;
}

void ap_bus_free(struct ap_bus *b)
{
	if (!b)
		return;
	sd_bus_slot_unref(b->job_removed);
	sd_bus_flush_close_unref(b->bus);
	free(b);
}

/* --- manager calls --------------------------------------------------------------- */

int ap_bus_reload(struct ap_bus *b)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	int r;

	/* The reply is sent only once the reload is complete, so there is nothing to wait for. */
	r = sd_bus_message_new_method_call(b->bus, &m, SD_DEST, SD_PATH, SD_MANAGER, "Reload");
	if (r >= 0)
		r = sd_bus_call(b->bus, m, RELOAD_TIMEOUT_USEC, &error, &reply);
	if (r < 0)
		return ap_log_error(r, "failed to reload the %s manager: %s", b->scope,
		                    bus_error_message(&error, r));
	return 0;
}

static int unit_states_push(struct ap_unit_states *s, const char *name, const char *load,
                            const char *active, const char *sub)
{
	struct ap_unit_state u = {
		.name = strdup(name), .load_state = strdup(load),
		.active_state = strdup(active), .sub_state = strdup(sub),
	};
	struct ap_unit_state *v;

	v = u.name && u.load_state && u.active_state && u.sub_state ?
	            realloc(s->v, (s->n + 1) * sizeof(*v)) : NULL;
	if (!v) {
		free(u.name);
		free(u.load_state);
		free(u.active_state);
		free(u.sub_state);
		return -ENOMEM;
	}
	s->v = v;
	s->v[s->n++] = u;
	return 0;
}

/* Reads ListUnitsByPatterns' a(ssssssouso): name, description, load, active, sub state,
 * followed unit, object path, job id, job type, job path. */
static int read_unit_list(sd_bus_message *reply, struct ap_unit_states *ret)
{
	const char *name, *load, *active, *sub;
	int r;

	r = sd_bus_message_enter_container(reply, 'a', "(ssssssouso)");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_read(reply, "(ssssssouso)", &name, NULL, &load, &active, &sub,
	                                NULL, NULL, NULL, NULL, NULL)) > 0) {
		r = unit_states_push(ret, name, load, active, sub);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(reply);
}

/* ListUnitsByPatterns: states and patterns empty mean "any". */
static int list_units(struct ap_bus *b, char *const *states, char *const *patterns,
                      sd_bus_error *error, struct ap_unit_states *ret)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
	int r;

	r = sd_bus_message_new_method_call(b->bus, &m, SD_DEST, SD_PATH, SD_MANAGER,
	                                   "ListUnitsByPatterns");
	if (r < 0)
		return r;
	r = sd_bus_message_append_strv(m, (char **)states);
	if (r < 0)
		return r;
	r = sd_bus_message_append_strv(m, (char **)patterns);
	if (r < 0)
		return r;
	r = sd_bus_call(b->bus, m, 0, error, &reply);
	if (r < 0)
		return r;
	return read_unit_list(reply, ret);
}

/* Leaves ret as it was before a failed listing: drops what was appended after n0. */
static void unit_states_truncate(struct ap_unit_states *ret, size_t n0)
{
	while (ret->n > n0) {
		struct ap_unit_state *u = &ret->v[--ret->n];
		free(u->name);
		free(u->load_state);
		free(u->active_state);
		free(u->sub_state);
	}
}

int ap_bus_list_units(struct ap_bus *b, char *const *patterns, struct ap_unit_states *ret)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	_cleanup_free_ char *list = NULL;
	size_t n0 = ret->n;
	int r;

	/* The manager reads an empty pattern list as "every unit"; we mean "none". */
	if (!patterns || !patterns[0]) {
		ret->known = true;
		return 0;
	}
	r = list_units(b, NULL, patterns, &error, ret);
	if (r >= 0) {
		ret->known = true;
		return 0;
	}
	unit_states_truncate(ret, n0);
	list = quote_list(patterns);
	return ap_log_error(r, "failed to list the units matching %s: %s", list ? list : "?",
	                    bus_error_message(&error, r));
}

int ap_bus_list_failed(struct ap_bus *b, struct ap_unit_states *ret)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	char *const failed[] = { (char *)"failed", NULL };
	size_t n0 = ret->n;
	int r = list_units(b, failed, NULL, &error, ret);

	if (r >= 0) {
		ret->known = true;
		return 0;
	}
	unit_states_truncate(ret, n0);
	return ap_log_error(r, "failed to list the failed units: %s", bus_error_message(&error, r));
}

/* --- jobs ------------------------------------------------------------------------ */

/* The manager's method for each job kind (names are in model.c). */
static const char *const job_methods[] = {
	[AP_JOB_START] = "StartUnit",
	[AP_JOB_STOP] = "StopUnit",
	[AP_JOB_TRY_RESTART] = "TryRestartUnit",
	[AP_JOB_RELOAD_OR_TRY_RESTART] = "ReloadOrTryRestartUnit",
	[AP_JOB_RESTART] = "RestartUnit",
	[AP_JOB_RUN] = "StartTransientUnit",
};

/* Job results as systemd's bus-wait-for-jobs.c maps them. Anything else is a result newer
 * than this table and counts as a failure, since it is not "done". */
static int job_result_to_errno(const char *result)
{
	static const struct {
		const char *result;
		int error;
	} map[] = {
		{ "done", 0 },              { "skipped", 0 },
		{ "canceled", -ECANCELED }, { "collected", -ECANCELED },
		{ "timeout", -ETIME },      { "failed", -EIO },
		{ "dependency", -EIO },     { "invalid", -ENOEXEC },
		{ "assert", -EPROTO },      { "unsupported", -EOPNOTSUPP },
		{ "once", -ESTALE },
	};

	for (size_t i = 0; i < ELEMENTSOF(map); i++)
		if (strcmp(map[i].result, result) == 0)
			return map[i].error;
	return -EIO;
}

static void job_set(struct ap_job *j, int error, const char *result)
{
	j->error = error;
	snprintf(j->result, sizeof(j->result), "%s", result);
}

/* "org.freedesktop.systemd1.NoSuchUnit" -> "no-such-unit", so that call errors and job
 * results read alike in ap_job.result. */
static void error_to_result(const sd_bus_error *e, char *buf, size_t size)
{
	const char *tail, *dot;
	size_t k = 0;

	if (!sd_bus_error_is_set(e) || !e->name) {
		snprintf(buf, size, "bus-error");
		return;
	}
	dot = strrchr(e->name, '.');
	tail = dot ? dot + 1 : e->name;
	for (const char *c = tail; *c && k + 3 <= size; c++) {
		if (isupper((unsigned char)*c) && c > tail && islower((unsigned char)c[-1]))
			buf[k++] = '-';
		buf[k++] = (char)tolower((unsigned char)*c);
	}
	buf[k] = '\0';
}

static void job_call_failed(struct ap_job *j, int r, const sd_bus_error *error)
{
	char result[sizeof(j->result)];

	/* Nothing to stop: the unit is neither loaded nor has a unit file. */
	if (j->kind == AP_JOB_STOP && sd_bus_error_has_name(error, SD_DEST ".NoSuchUnit")) {
		ap_log_debug("unit '%s' does not exist, nothing to stop", j->unit);
		job_set(j, 0, "done");
		return;
	}
	error_to_result(error, result, sizeof(result));
	job_set(j, r, result);
	ap_log_error(r, "job %s for unit '%s' failed: %s (%s)", ap_job_kind_to_string(j->kind),
	             j->unit, result, bus_error_message(error, r));
}

/* A oneshot service that runs j->argv once, made by the manager for this job and unloaded when
 * it ends well (a failed one stays, with its result, until reset-failed). It runs as the
 * manager runs services, outside the sandbox of the unit that asks (systemd-run does the
 * same): the job is done when the command exited 0, failed otherwise. */
static int start_transient(struct ap_bus *b, const struct ap_job *j, sd_bus_error *error,
                           sd_bus_message **ret_reply)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
	int r = sd_bus_message_new_method_call(b->bus, &m, SD_DEST, SD_PATH, SD_MANAGER,
	                                       "StartTransientUnit");

	if (r >= 0)
		r = sd_bus_message_append(m, "ss", j->unit, "fail");
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "(sv)");
	if (r >= 0)
		r = sd_bus_message_append(m, "(sv)(sv)(sv)", "Description", "s", j->argv[0],
		                          "Type", "s", "oneshot", "CollectMode", "s", "inactive");
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'r', "sv");
	if (r >= 0)
		r = sd_bus_message_append(m, "s", "ExecStart");
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'v', "a(sasb)");
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "(sasb)");
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'r', "sasb");
	if (r >= 0)
		r = sd_bus_message_append(m, "s", j->argv[0]);
	if (r >= 0)
		r = sd_bus_message_append_strv(m, (char **)j->argv);
	if (r >= 0)
		r = sd_bus_message_append(m, "b", 0);
	for (int i = 0; r >= 0 && i < 5; i++)
		r = sd_bus_message_close_container(m); /* r, a, v, r (ExecStart), a (properties) */
	if (r >= 0)
		r = sd_bus_message_append(m, "a(sa(sv))", 0);
	return r < 0 ? r : sd_bus_call(b->bus, m, 0, error, ret_reply);
}

static int enqueue(struct ap_bus *b, const struct ap_job *j, sd_bus_error *error, char **ret)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	const char *path;
	char *copy;
	int r;

	if ((unsigned)j->kind >= ELEMENTSOF(job_methods) || !j->unit ||
	    (j->kind == AP_JOB_RUN && (!j->argv || !j->argv[0])))
		return -EINVAL;
	/* "replace": our job supersedes a conflicting queued one instead of failing. */
	if (j->kind == AP_JOB_RUN)
		r = start_transient(b, j, error, &reply);
	else
		r = sd_bus_call_method(b->bus, SD_DEST, SD_PATH, SD_MANAGER, job_methods[j->kind],
		                       error, &reply, "ss", j->unit, "replace");
	if (r < 0)
		return r;
	r = sd_bus_message_read(reply, "o", &path);
	if (r < 0)
		return r;
	copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	*ret = copy;
	return 0;
}

static void enqueue_one(struct ap_bus *b, struct job_wait *w, size_t i)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	struct ap_job *j = &w->jobs[i];
	int r;

	job_set(j, 0, "");
	r = enqueue(b, j, &error, &w->paths[i]);
	if (r < 0) {
		job_call_failed(j, r, &error);
		return;
	}
	w->left++;
	ap_log_debug("queued job %s for unit '%s': %s", ap_job_kind_to_string(j->kind), j->unit,
	             w->paths[i]);
}

static void job_finish(struct ap_job *j, int error, const char *result)
{
	job_set(j, error, result);
	if (error < 0)
		ap_log_error(error, "job %s for unit '%s' failed: %s",
		             ap_job_kind_to_string(j->kind), j->unit, result);
}

/* Every job with this path is finished: the manager merges a second job of the same kind
 * for the same unit into the first, so two entries can share one path. */
static void job_wait_removed(struct job_wait *w, const char *path, const char *result)
{
	for (size_t i = 0; i < w->n; i++) {
		if (!w->paths[i] || strcmp(w->paths[i], path) != 0)
			continue;
		free(w->paths[i]);
		w->paths[i] = NULL;
		w->left--;
		job_finish(&w->jobs[i], job_result_to_errno(result), result);
	}
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct ap_bus *b = userdata;
	const char *path, *unit, *result;
	uint32_t id;

	/* Nobody waits: another client's job, or one of an earlier call that timed out. */
	if (!b->wait)
		return 0;
	if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0) {
		ap_log_debug("ignoring a malformed JobRemoved signal");
		return 0;
	}
	job_wait_removed(b->wait, path, result);
	return 0;
}

/* Dispatches queued messages (JobRemoved signals that arrived while later jobs were being
 * queued are among them) and sleeps in sd_bus_wait until all jobs were removed. */
static int wait_jobs(struct ap_bus *b, struct job_wait *w, unsigned long long timeout_usec)
{
	unsigned long long now = ap_now_monotonic_usec();
	unsigned long long deadline = timeout_usec >= ULLONG_MAX - now ? ULLONG_MAX :
	                                                                  now + timeout_usec;
	int r;

	while (w->left > 0) {
		r = sd_bus_process(b->bus, NULL);
		if (r < 0)
			return r;
		if (r > 0)
			continue; /* more may be queued: drain before sleeping */
		now = ap_now_monotonic_usec();
		if (now >= deadline)
			return -ETIME;
		r = sd_bus_wait(b->bus, deadline == ULLONG_MAX ? UINT64_MAX : deadline - now);
		if (r < 0 && r != -EINTR)
			return r;
	}
	return 0;
}

/* The jobs still queued when the wait ended: timed out, or the connection broke. The
 * manager keeps them queued; the caller decides what comes next. */
static void fail_pending(struct job_wait *w, int r)
{
	for (size_t i = 0; i < w->n; i++) {
		if (!w->paths[i])
			continue;
		if (r == -ETIME)
			job_finish(&w->jobs[i], r, "timeout");
		else {
			job_set(&w->jobs[i], r, "bus-error");
			ap_log_error(r, "job %s for unit '%s' failed: bus-error (%s)",
			             ap_job_kind_to_string(w->jobs[i].kind), w->jobs[i].unit,
			             strerror(-r));
		}
	}
}

static void job_wait_clear(struct job_wait *w)
{
	for (size_t i = 0; w->paths && i < w->n; i++)
		free(w->paths[i]);
	free(w->paths);
	w->paths = NULL;
}

int ap_bus_run_jobs(struct ap_bus *b, struct ap_job *jobs, size_t n,
                    unsigned long long timeout_usec)
{
	_cleanup_(job_wait_clear) struct job_wait w = { .jobs = jobs, .n = n };
	int r;

	w.paths = calloc(n ? n : 1, sizeof(char *));
	if (!w.paths)
		return ap_log_error(-ENOMEM, "failed to queue jobs: %s", strerror(ENOMEM));
	/* Queue all first, then wait: the jobs run in parallel in the manager. Callbacks run only
	 * in sd_bus_process(), so every path is recorded before any JobRemoved is looked at. */
	for (size_t i = 0; i < n; i++)
		enqueue_one(b, &w, i);
	b->wait = &w;
	r = wait_jobs(b, &w, timeout_usec);
	b->wait = NULL;
	if (r < 0)
		fail_pending(&w, r);
	for (size_t i = 0; i < n; i++)
		if (jobs[i].error < 0)
			return jobs[i].error;
	return 0;
}

/* --- unit files ------------------------------------------------------------------ */

/* Both calls answer with a(sss): change type, file, symlink target. */
static int log_changes(sd_bus_message *reply, const char *verb)
{
	const char *type, *file, *dest;
	int r;

	r = sd_bus_message_enter_container(reply, 'a', "(sss)");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_read(reply, "(sss)", &type, &file, &dest)) > 0)
		ap_log_debug("%s: %s '%s'%s%s", verb, type, file, dest[0] ? " -> " : "", dest);
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(reply);
}

static int unit_files_call(struct ap_bus *b, bool enable, char *const *units,
                           sd_bus_error *error)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
	int install_info = 1, r;

	r = sd_bus_message_new_method_call(b->bus, &m, SD_DEST, SD_PATH, SD_MANAGER,
	                                   enable ? "EnableUnitFiles" : "DisableUnitFiles");
	if (r < 0)
		return r;
	r = sd_bus_message_append_strv(m, (char **)units);
	if (r < 0)
		return r;
	/* runtime=false (persistent links), and for enable force=false (keep foreign links) */
	r = enable ? sd_bus_message_append(m, "bb", 0, 0) : sd_bus_message_append(m, "b", 0);
	if (r < 0)
		return r;
	r = sd_bus_call(b->bus, m, 0, error, &reply);
	if (r < 0)
		return r;
	if (enable) {
		r = sd_bus_message_read(reply, "b", &install_info);
		if (r < 0)
			return r;
	}
	r = log_changes(reply, enable ? "enable" : "disable");
	if (r < 0)
		return r;
	return install_info ? 0 : 1;
}

static int unit_files(struct ap_bus *b, bool enable, char *const *units)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	_cleanup_free_ char *list = NULL;
	int r;

	if (!units || !units[0])
		return 0;
	r = unit_files_call(b, enable, units, &error);
	if (r == 0)
		return 0;
	list = quote_list(units);
	if (r > 0) {
		/* Not an error (systemctl only warns): the unit is meant to be started by hand. */
		ap_log_notice("%s: no [Install] section, nothing to enable", list ? list : "?");
		return 0;
	}
	return ap_log_error(r, "failed to %s %s: %s", enable ? "enable" : "disable",
	                    list ? list : "?", bus_error_message(&error, r));
}

int ap_bus_enable(struct ap_bus *b, char *const *units)
{
	return unit_files(b, true, units);
}

int ap_bus_disable(struct ap_bus *b, char *const *units)
{
	return unit_files(b, false, units);
}

/* What systemctl reenable does: EnableUnitFiles alone would keep the links of the old
 * [Install] section (a WantedBy= that changed leaves its old .wants/ link behind). */
int ap_bus_reenable(struct ap_bus *b, char *const *units)
{
	int r = unit_files(b, false, units);

	return r < 0 ? r : unit_files(b, true, units);
}

int ap_bus_reset_failed(struct ap_bus *b, char *const *units)
{
	int failed = 0;

	for (size_t i = 0; units && units[i]; i++) {
		_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
		int r = sd_bus_call_method(b->bus, SD_DEST, SD_PATH, SD_MANAGER, "ResetFailedUnit",
		                           &error, NULL, "s", units[i]);

		/* A unit that is not loaded has no failed state to forget. */
		if (r < 0 && r != -ENOENT)
			failed = ap_log_error(r,
					      "failed to reset the failed state of unit '%s': %s",
			                      units[i], bus_error_message(&error, r));
	}
	return failed;
}
