/* Validation of a plan's new files before anything on the host changes (see validate.h): each
 * file is staged in a private directory the caller made, unit files and drop-ins are verified
 * with systemd-analyze verify, and the rules' validate: argv runs on its staged copy. Every
 * failure is logged with the repository path, not the staged one.
 *
 * Deliberately not here: writing to a destination (install.c), and whether the host can take
 * the plan (preflight.c). Nothing here opens a host path for writing. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "install.h"
#include "log.h"
#include "probe.h"
#include "spawn.h"
#include "unitfile.h"
#include "util.h"
#include "validate.h"

/* Opens the parent directory of rel beneath rootfd (creating it) and points *ret_base at
 * rel's last component. */
static int open_parent(int rootfd, const char *rel, const char **ret_base)
{
	const char *slash = strrchr(rel, '/');
	_cleanup_free_ char *dir = NULL;

	*ret_base = slash ? slash + 1 : rel;
	if (!slash) {
		int fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
		return fd < 0 ? -errno : fd;
	}
	dir = strndup(rel, (size_t)(slash - rel));
	return dir ? ap_fs_mkdirs_beneath(rootfd, dir, 0755) : -ENOMEM;
}

/* A staged copy of a file: where it is, and the repo path to name in messages. */
struct staged {
	char *path;
	const char *repo_path;
};

struct stage {
	char *dir;
	int fd;
	struct staged *units; /* unit files handed to systemd-analyze */
	size_t n_units;
	bool elsewhere;          /* AP_VALIDATE_ELSEWHERE */
	size_t missing;          /* commands not installed here, then not counted as failures */
	/* The X-AutoPull-Health= that did not parse: staging stops there, and the finish logs it
	 * (the staging runs before the guard's verdict, which is logged first). */
	const char *bad_health_path, *bad_health_error;
	unsigned bad_health_line;
};

static void stage_done(struct stage *s)
{
	for (size_t i = 0; i < s->n_units; i++)
		free(s->units[i].path);
	free(s->units);
	if (s->fd >= 0)
		close(s->fd);
	if (s->dir)
		(void)ap_fs_rm_rf(s->dir);
	free(s->dir);
}

static bool stage_has_unit(const struct stage *s, const char *unit)
{
	for (size_t i = 0; i < s->n_units; i++)
		if (ap_endswith(s->units[i].path, unit) &&
		    s->units[i].path[strlen(s->units[i].path) - strlen(unit) - 1] == '/')
			return true;
	return false;
}

static int stage_write(struct stage *s, const char *rel, const char *data, size_t len,
		       const char *repo_path, bool verify)
{
	const char *base;
	_cleanup_close_ int dfd = open_parent(s->fd, rel, &base);
	struct staged *v;
	int r;

	if (dfd < 0)
		return dfd;
	/* The stage is removed before anything is installed: nothing to keep across a crash. */
	r = ap_fs_write_atomic_flags(dfd, base, data, len, 0644, (uid_t)-1, (gid_t)-1,
				     AP_FS_NO_SYNC);
	if (r < 0 || !verify)
		return r;
	v = realloc(s->units, (s->n_units + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->units = v;
	v[s->n_units] = (struct staged){ .path = ap_strdupf("%s/%s", s->dir, rel),
					 .repo_path = repo_path };
	return v[s->n_units++].path ? 0 : -ENOMEM;
}

/* Where the manager finds unit files besides unit_dir (systemd.unit(5), "Unit File Load
 * Path"): a drop-in for a vendor unit is verified against the vendor's file. */
static const char *const system_unit_dirs[] = { "/etc/systemd/system", "/run/systemd/system",
						"/usr/local/lib/systemd/system",
						"/usr/lib/systemd/system", "/lib/systemd/system" };
static const char *const user_unit_dirs[] = { "/etc/systemd/user", "/usr/local/lib/systemd/user",
					      "/usr/lib/systemd/user", "/lib/systemd/user" };

/* The installed unit file, or, when it is a symlink (a vendor alias: Debian's sshd.service ->
 * /lib/systemd/system/ssh.service), its target's: what the manager loads, and what a drop-in
 * for it is verified with. The link is followed only when root or autopull's own user made it
 * in a unit directory nobody else can write. */
static int read_unit_file(const char *dir, const char *unit, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ char *link = NULL, *target = NULL;
	struct stat dst, st;
	int r;

	if (fd < 0)
		return -errno;
	r = ap_fs_read_beneath(fd, unit, AP_MAX_BLOB_SIZE, ret, ret_len);
	if (r != -ELOOP)
		return r;
	if (fstat(fd, &dst) < 0 || fstatat(fd, unit, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISLNK(st.st_mode) || (st.st_uid != 0 && st.st_uid != geteuid()) ||
	    !ap_fs_dir_is_safe(&dst, geteuid()))
		return -ELOOP;
	link = ap_strdupf("%s/%s", dir, unit);
	if (!link)
		return -ENOMEM;
	target = realpath(link, NULL);
	if (!target)
		return -errno;
	return ap_fs_read_file(target, AP_MAX_BLOB_SIZE, ret, ret_len);
}

/* A changed drop-in is verified through its unit: stage the installed unit file when the
 * plan does not bring a new one. */
static int stage_unit_for_dropin(struct stage *s, const struct ap_file_op *f, enum ap_scope scope,
				 const char *unit_dir)
{
	const char *const *dirs = scope == AP_SCOPE_USER ? user_unit_dirs : system_unit_dirs;
	size_t n = scope == AP_SCOPE_USER ? ELEMENTSOF(user_unit_dirs)
		: ELEMENTSOF(system_unit_dirs);
	_cleanup_free_ char *data = NULL;
	size_t len;
	int r;

	if (stage_has_unit(s, f->unit) || ap_unit_name_is_template(f->unit))
		return 0;
	r = read_unit_file(unit_dir, f->unit, &data, &len);
	for (size_t i = 0; (r == -ENOENT || r == -ENOTDIR) && i < n; i++)
		r = read_unit_file(dirs[i], f->unit, &data, &len);
	if (r == -ENOENT || r == -ENOTDIR) {
		ap_log_debug("not verifying '%s': unit '%s' is not installed", f->path, f->unit);
		return 0;
	}
	return r < 0 ? r : stage_write(s, f->unit, data, len, f->path, true);
}

/* The staged unit a line of systemd-analyze's output is about: it names the staged path, or
 * starts with "<unit name>:". */
static const struct staged *line_unit(const struct stage *s, const char *l, const char **ret_at)
{
	for (size_t i = 0; i < s->n_units; i++) {
		const char *base = strrchr(s->units[i].path, '/') + 1;
		const char *at = strstr(l, s->units[i].path);

		if (at || (ap_startswith(l, base) && l[strlen(base)] == ':')) {
			*ret_at = at;
			return &s->units[i];
		}
	}
	*ret_at = NULL;
	return NULL;
}

/* systemd-analyze verify's line for an ExecStart= (etc.) whose program is not there. */
#define NOT_INSTALLED "is not executable: No such file or directory"

/* Reports the output lines that explain a failure (all of them when the verifier failed,
 * else only the unknown keys and sections that autopull treats as errors), with the repo path
 * in place of the staged one; elsewhere than on the host a program that is not installed here is
 * counted, not reported. Returns how many lines were reported. */
static size_t report_unit_lines(struct stage *s, char *out, bool failed)
{
	size_t reported = 0;

	for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n",
										 &save)) {
		bool strict = strstr(l, "Unknown key") || strstr(l, "Unknown section");
		const char *at;
		const struct staged *u;

		if (!failed && !strict)
			continue;
		if (s->elsewhere && strstr(l, NOT_INSTALLED)) {
			ap_log_debug("not verified here: %s", l);
			s->missing++;
			continue;
		}
		u = line_unit(s, l, &at);
		if (u && at)
			ap_log_error(-EINVAL, "validation of '%s' failed: %.*s%s%s", u->repo_path,
				     (int)(at - l), l, u->repo_path, at + strlen(u->path));
		else if (u)
			ap_log_error(-EINVAL, "validation of '%s' failed: %s", u->repo_path, l);
		else
			ap_log_error(-EINVAL, "validation of unit files failed: %s", l);
		reported++;
	}
	return reported;
}

/* systemd-analyze needs a private runtime dir. An empty environment-generator path keeps it
 * from running the user environment generators, which cost more than the verification itself
 * (gpg-agent's alone ~130 ms here) and cannot change whether a unit file is valid. */
static int verify_env(const struct stage *s, char ***ret)
{
	_cleanup_free_ char *run = ap_strdupf("%s/.run", s->dir), *gen = ap_strdupf("%s/.gen",
										    s->dir);
	_cleanup_free_ char *xdg = NULL, *envgen = NULL, *home = NULL;
	const char *h = secure_getenv("HOME");
	int r = 0;

	if (!run || !gen)
		return -ENOMEM;
	if (mkdir(run, 0700) < 0 || mkdir(gen, 0700) < 0)
		return -errno;
	xdg = ap_strdupf("XDG_RUNTIME_DIR=%s", run);
	envgen = ap_strdupf("SYSTEMD_ENVIRONMENT_GENERATOR_PATH=%s", gen);
	home = ap_strdupf("HOME=%s", h ? h : "/");
	const char *env[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			      "LANG=C.UTF-8", "SYSTEMD_COLORS=0", xdg, envgen, home };
	for (size_t i = 0; r >= 0 && i < ELEMENTSOF(env); i++)
		r = env[i] ? ap_strv_push(ret, env[i]) : -ENOMEM;
	return r;
}

/* Starts systemd-analyze verify on every staged unit file; *ret stays NULL when there are
 * none. An error is the verify's failure to run, reported by verify_finish. */
static int verify_start(struct stage *s, enum ap_scope scope, struct ap_spawn **ret)
{
	_cleanup_strv_free_ char **argv = NULL, **env = NULL;
	const char *fixed[] = { "systemd-analyze", "verify", "--man=no",
				scope == AP_SCOPE_USER ? "--user" : "--system" };
	int r = 0;

	if (s->n_units == 0)
		return 0;
	for (size_t i = 0; r >= 0 && i < ELEMENTSOF(fixed); i++)
		r = ap_strv_push(&argv, fixed[i]);
	for (size_t i = 0; r >= 0 && i < s->n_units; i++)
		r = ap_strv_push(&argv, s->units[i].path);
	if (r >= 0)
		r = verify_env(s, &env);
	return r < 0 ? r : ap_spawn_start(argv, env, AP_VALIDATE_TIMEOUT_USEC, ret);
}

/* Joins the verify verify_start started (or reports why it could not start: started) and
 * reports its lines. */
static int verify_finish(struct stage *s, int started, struct ap_spawn *verify)
{
	struct ap_spawn_result res = { 0 };
	size_t reported;
	bool failed;
	int r = started;

	if (r >= 0 && !verify)
		return 0;
	if (r >= 0)
		r = ap_spawn_join(verify, &res);
	if (r < 0)
		return ap_log_error(r, "failed to run systemd-analyze verify: %s", strerror(-r));
	failed = res.exit_status != 0 || res.timed_out;
	reported = report_unit_lines(s, res.output ? res.output : (char[]){ "" }, failed);
	/* only programs this machine does not have: the units are valid as far as it can tell */
	if (failed && !res.timed_out && reported == 0 && s->missing > 0)
		failed = false;
	if (failed && reported == 0)
		ap_log_error(-EINVAL,
			     "validation of unit files failed: systemd-analyze verify %s %d",
			     res.timed_out ? "timed out, status" : "exited with", res.exit_status);
	ap_spawn_result_clear(&res);
	return failed || reported ? -EINVAL : 0;
}

/* A validator's output lines are kept, at most this many (the last ones: tools print their
 * environment first and the error last), and the summary quotes this many, newest first. */
#define VALIDATOR_LINES_MAX 20
#define VALIDATOR_SUMMARY_LINES 3

/* The non-blank lines of out, the last VALIDATOR_LINES_MAX of them, in order; out is cut up. */
static size_t output_lines(char *out, const char *v[static VALIDATOR_LINES_MAX])
{
	size_t n = 0;

	for (char *save = NULL, *l = strtok_r(out, "\r\n", &save); l; l = strtok_r(NULL, "\r\n",
										   &save)) {
		if (l[strspn(l, " \t")] == '\0')
			continue;
		if (n == VALIDATOR_LINES_MAX) {
			memmove(v, v + 1, (VALIDATOR_LINES_MAX - 1) * sizeof(*v));
			n--;
		}
		v[n++] = l;
	}
	return n;
}

/* One error line that names the file and says what the validator said last (the newest lines
 * first: that is where tools put the error), then the kept output as lines of its own, in
 * order, for the journal. */
static void report_validator(const struct ap_file_op *f, const struct ap_spawn_result *res)
{
	const char *v[VALIDATOR_LINES_MAX];
	size_t n = res->output ? output_lines(res->output, v) : 0;
	struct ap_buf b = { 0 };
	int k = 0;

	/* a checker of a secret may quote the line it refuses */
	if (f->secret) {
		ap_log_error(-EINVAL, "validation of '%s' failed (%s %d); the output of a secret's "
			     "validator is not shown", f->path,
			     res->timed_out ? "timed out, status" : "exit", res->exit_status);
		return;
	}
	for (size_t i = 0; k >= 0 && i < n && i < VALIDATOR_SUMMARY_LINES; i++)
		k = ap_buf_printf(&b, "%s%s", i ? " | " : "", v[n - 1 - i]);
	ap_log_error(-EINVAL, "validation of '%s' failed (%s %d): %s", f->path,
		     res->timed_out ? "timed out, status" : "exit", res->exit_status,
		     k >= 0 && b.data ? b.data : "(no output)");
	ap_buf_clear(&b);
	for (size_t i = 0; i < n; i++)
		ap_log_notice("validator '%s' on '%s': %s", f->validate[0], f->path, v[i]);
}

/* Tools look for a home, a config and a cache dir (caddy warns first thing without them):
 * they get their own in the private stage, so that they neither complain nor read root's. */
static int validator_env(const struct stage *s, char ***ret)
{
	static const char *const dirs[] = { "", "/.config", "/.local", "/.local/share", "/.cache" };
	static const char *const vars[] = { "HOME", "XDG_CONFIG_HOME", NULL, "XDG_DATA_HOME",
					    "XDG_CACHE_HOME" };
	int r = ap_strv_push(ret,
			     "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");

	if (r >= 0)
		r = ap_strv_push(ret, "LANG=C.UTF-8");
	for (size_t i = 0; r >= 0 && i < ELEMENTSOF(dirs); i++) {
		_cleanup_free_ char *d = ap_strdupf("%s/.home%s", s->dir, dirs[i]), *kv = NULL;

		if (!d)
			return -ENOMEM;
		if (mkdir(d, 0700) < 0 && errno != EEXIST)
			return -errno;
		if (!vars[i])
			continue;
		kv = ap_strdupf("%s=%s", vars[i], d);
		r = kv ? ap_strv_push(ret, kv) : -ENOMEM;
	}
	return r;
}

static int run_validator(const struct stage *s, const struct ap_file_op *f,
			 const struct ap_install_source *src, size_t idx)
{
	const char *base = strrchr(f->dest, '/') + 1;
	_cleanup_free_ char *rel = ap_strdupf("files/%zu/%s", idx, base), *path = NULL, *buf = NULL;
	const char *data;
	size_t len;
	_cleanup_close_ int dfd = -1;
	_cleanup_strv_free_ char **argv = NULL, **env = NULL;
	struct ap_spawn_result res = { 0 };
	const char *ignored;
	int r;

	if (!rel)
		return -ENOMEM;
	dfd = open_parent(s->fd, rel, &ignored);
	if (dfd < 0)
		return dfd;
	r = ap_install_content(f, src, &buf, &data, &len);
	if (r >= 0)
		r = ap_fs_write_atomic(dfd, base, data, len, 0600, (uid_t)-1, (gid_t)-1);
	path = ap_strdupf("%s/%s", s->dir, rel);
	if (r >= 0)
		r = path ? ap_spawn_expand_argv(f->validate, path, &argv) : -ENOMEM;
	if (r >= 0)
		r = validator_env(s, &env);
	if (r >= 0)
		r = ap_spawn_run(argv, env, AP_VALIDATE_TIMEOUT_USEC, &res);
	if (r < 0)
		return ap_log_error(r == -ENOENT ? -EINVAL : r,
				    "validator '%s' for '%s' could not run: %s",
				    f->validate[0], f->path, strerror(-r));
	if (res.exit_status != 0 || res.timed_out) {
		report_validator(f, &res);
		r = -EINVAL;
	}
	ap_spawn_result_clear(&res);
	return r;
}

/* A probe the settle window cannot parse would roll a good commit back after the fact:
 * refused here, before anything changes. */
static int check_health(struct stage *s, const struct ap_file_op *f, const char *data,
			size_t len)
{
	_cleanup_free_ char *value = NULL;
	struct ap_probe p = { 0 };
	const char *error = NULL;
	unsigned line = 0;
	int r = ap_unitfile_health(data, len, &value, &line);

	if (r <= 0)
		return r;
	r = ap_probe_parse_unit(value, &p, &error);
	if (r == -EINVAL) {
		s->bad_health_path = f->path;
		s->bad_health_error = error; /* a static string */
		s->bad_health_line = line;
		return r;
	}
	ap_probe_clear(&p);
	return r;
}

static int stage_file(struct stage *s, const struct ap_file_op *f,
		      const struct ap_install_source *src, bool verify)
{
	_cleanup_free_ char *buf = NULL;
	const char *data;
	size_t len;
	int r = ap_install_content(f, src, &buf, &data, &len);

	if (r >= 0 && f->kind == AP_KIND_UNIT)
		r = check_health(s, f, data, len);
	return r < 0 ? r : stage_write(s, f->dest + f->root_len + 1, data, len, f->path, verify);
}

static int stage_units(struct stage *s, const struct ap_plan *p,
		       const struct ap_install_source *src, enum ap_scope scope,
		       const char *unit_dir)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < p->n_files; i++) {
		const struct ap_file_op *f = &p->files[i];
		if (f->install && f->kind == AP_KIND_UNIT)
			r = stage_file(s, f, src, true);
	}
	for (size_t i = 0; r >= 0 && i < p->n_files; i++) {
		const struct ap_file_op *f = &p->files[i];
		if (f->install && f->kind == AP_KIND_DROPIN)
			r = stage_file(s, f, src, false);
	}
	for (size_t i = 0; r >= 0 && i < p->n_files; i++) {
		const struct ap_file_op *f = &p->files[i];
		if (f->install && f->kind == AP_KIND_DROPIN)
			r = stage_unit_for_dropin(s, f, scope, unit_dir);
	}
	return r;
}

/* Staged files and the verify running on them, from ap_validate_start to its finish. */
struct ap_validation {
	struct stage s;
	const struct ap_plan *p;
	const struct ap_install_source *src;
	int staged;              /* staging's result: < 0 stops before the verify */
	int verify_started;      /* < 0: the verify could not be started */
	struct ap_spawn *verify; /* NULL: nothing to verify */
};

int ap_validate_start(const struct ap_plan *p, const struct ap_install_source *src,
		      enum ap_scope scope, const char *unit_dir, const char *stage_dir,
		      unsigned flags, struct ap_validation **ret)
{
	struct ap_validation *v = calloc(1, sizeof(*v));
	int r;

	if (!v)
		return ap_log_error(-ENOMEM, "failed to stage files for validation: %s",
				    strerror(ENOMEM));
	*v = (struct ap_validation){ .s = { .fd = -1, .elsewhere = flags & AP_VALIDATE_ELSEWHERE },
				     .p = p, .src = src };
	r = (v->s.dir = strdup(stage_dir)) ? 0 : -ENOMEM;
	if (r >= 0 && (v->s.fd = open(v->s.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		r = -errno;
	if (r >= 0)
		r = stage_units(&v->s, p, src, scope, unit_dir);
	v->staged = r;
	if (r >= 0)
		v->verify_started = verify_start(&v->s, scope, &v->verify);
	*ret = v;
	return 0;
}

/* The rules' validate: commands and the owners, each file in turn (only on the host). Returns
 * an error that stops validation; a failed file sets *invalid. */
static int run_validators(struct ap_validation *v, bool *invalid)
{
	uid_t uid;
	gid_t gid;

	for (size_t i = 0; !v->s.elsewhere && i < v->p->n_files; i++) {
		const struct ap_file_op *f = &v->p->files[i];
		int k = 0;

		if (f->install && f->owner)
			k = ap_install_owner_of(f, &uid, &gid);
		if (k >= 0 && f->install && f->validate)
			k = run_validator(&v->s, f, v->src, i);
		if (k == -EINVAL || k == -ESRCH)
			*invalid = true;
		else if (k < 0)
			return k;
	}
	return 0;
}

static void validation_free(struct ap_validation *v)
{
	stage_done(&v->s);
	free(v);
}

int ap_validate_finish(struct ap_validation *v, size_t *ret_missing)
{
	bool invalid;
	int r = v->staged;

	if (r == -EINVAL && v->s.bad_health_path)
		ap_log_error(r, "%s:%u: X-AutoPull-Health=: %s", v->s.bad_health_path,
			     v->s.bad_health_line, v->s.bad_health_error);
	if (r >= 0)
		r = verify_finish(&v->s, v->verify_started, TAKE_PTR(v->verify));
	invalid = r == -EINVAL;
	if (r >= 0 || r == -EINVAL)
		r = run_validators(v, &invalid);
	if (r < 0 && r != -EINVAL)
		ap_log_error(r, "failed to stage files for validation: %s", strerror(-r));
	if (ret_missing)
		*ret_missing = v->s.missing;
	validation_free(v);
	return r < 0 && r != -EINVAL ? r : invalid ? -EINVAL : 0;
}

void ap_validate_abort(struct ap_validation *v)
{
	if (!v)
		return;
	ap_spawn_abort(TAKE_PTR(v->verify)); /* before its stage goes */
	validation_free(v);
}

int ap_validate_plan(const struct ap_plan *p, const struct ap_install_source *src,
		     enum ap_scope scope, const char *unit_dir, const char *stage_dir)
{
	return ap_validate_plan_where(p, src, scope, unit_dir, stage_dir, 0, NULL);
}

int ap_validate_plan_where(const struct ap_plan *p, const struct ap_install_source *src,
			   enum ap_scope scope, const char *unit_dir, const char *stage_dir,
			   unsigned flags, size_t *ret_missing)
{
	struct ap_validation *v = NULL;
	int r = ap_validate_start(p, src, scope, unit_dir, stage_dir, flags, &v);

	return r < 0 ? r : ap_validate_finish(v, ret_missing);
}
