/* Staging, validation and installation of files (see install.h). Host paths are opened
 * beneath their configured directory only; nothing here follows a symlink below it. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "install.h"
#include "log.h"
#include "spawn.h"
#include "unitfile.h"
#include "util.h"

static void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* The configured directory of dest, created when missing. The directory itself was named
 * by the operator, so symlinks in it (/lib -> usr/lib) are followed; below it none are. */
static int open_root(const char *dest, size_t root_len)
{
	_cleanup_free_ char *root = root_len ? strndup(dest, root_len) : strdup("/");
	int fd;

	if (!root)
		return -ENOMEM;
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return ap_fs_open_dir(root, 1, 0755);
	return fd < 0 ? -errno : fd;
}

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

static int resolve_owner(const struct ap_file_op *f, uid_t *uid, gid_t *gid)
{
	char buf[4096];
	struct passwd pw, *pwr = NULL;
	struct group gr, *grr = NULL;

	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	if (f->owner) {
		if (getpwnam_r(f->owner, &pw, buf, sizeof(buf), &pwr) != 0 || !pwr)
			return ap_log_error(-ESRCH, "unknown owner '%s' for '%s'", f->owner, f->path);
		*uid = pwr->pw_uid;
	}
	if (f->group) {
		if (getgrnam_r(f->group, &gr, buf, sizeof(buf), &grr) != 0 || !grr)
			return ap_log_error(-ESRCH, "unknown group '%s' for '%s'", f->group, f->path);
		*gid = grr->gr_gid;
	}
	return 0;
}

/* The new bytes of f: carried by the change (unit files, which the planner reads), or read
 * now into *ret_buf (freed by the caller). */
static int content(const struct ap_file_op *f, const struct ap_install_source *src,
		   char **ret_buf, const char **ret_data, size_t *ret_len)
{
	const struct ap_change *ch = f->change_ref;
	int r;

	if (ch->new_data) {
		*ret_data = ch->new_data;
		*ret_len = ch->new_len;
		return 0;
	}
	if (!src)
		return -ENODATA;
	r = src->read(src->userdata, ch, ret_buf, ret_len);
	*ret_data = *ret_buf;
	return r;
}

static int write_one(const struct ap_file_op *f, const struct ap_install_source *src)
{
	_cleanup_close_ int rootfd = open_root(f->dest, f->root_len), dfd = -1;
	_cleanup_free_ char *buf = NULL;
	const char *base, *data;
	size_t len;
	uid_t uid;
	gid_t gid;
	int r = resolve_owner(f, &uid, &gid);

	if (r < 0)
		return r;
	if (rootfd < 0)
		return rootfd;
	dfd = open_parent(rootfd, f->dest + f->root_len + 1, &base);
	if (dfd < 0)
		return dfd;
	r = content(f, src, &buf, &data, &len);
	return r < 0 ? r : ap_fs_write_atomic_flags(dfd, base, data, len, f->mode, uid, gid,
						    AP_FS_NO_DIRSYNC);
}

/* One directory fsync per directory written to, instead of one per file. */
static int sync_dirs(const struct ap_plan *p)
{
	_cleanup_strv_free_ char **done = NULL;

	for (size_t i = 0; i < p->n_files; i++) {
		const struct ap_file_op *f = &p->files[i];
		_cleanup_free_ char *dir = f->install ? strndup(f->dest, strrchr(f->dest, '/') - f->dest) : NULL;
		_cleanup_close_ int rootfd = -1, dfd = -1;
		const char *base;
		int r;

		if (!f->install || !dir || ap_strv_contains(done, dir))
			continue;
		rootfd = open_root(f->dest, f->root_len);
		dfd = rootfd < 0 ? rootfd : open_parent(rootfd, f->dest + f->root_len + 1, &base);
		r = dfd < 0 ? dfd : ap_fs_sync_dir(dfd);
		if (r >= 0)
			r = ap_strv_push(&done, dir);
		if (r < 0)
			return ap_log_error(r, "failed to sync directory '%s': %s", dir, strerror(-r));
	}
	return 0;
}

static int remove_one(const char *dest, size_t root_len)
{
	_cleanup_close_ int rootfd = open_root(dest, root_len);

	if (rootfd < 0)
		return rootfd == -ENOENT ? 0 : rootfd;
	return ap_fs_unlink_beneath(rootfd, dest + root_len + 1);
}

static int strv_remove(char **v, const char *s)
{
	size_t n = ap_strv_length(v);

	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0) {
			free(v[i]);
			memmove(&v[i], &v[i + 1], (n - i) * sizeof(char *));
			return 1;
		}
	return 0;
}

static int remove_owned(const struct ap_file_op *f, const char *dest, size_t root_len,
			char ***owned)
{
	int r;

	if (!ap_strv_contains(*owned, dest)) {
		ap_log_warning("not removing '%s' (from '%s'): autopull did not install it", dest,
			       f->old_path ? f->old_path : f->path);
		return 0;
	}
	r = remove_one(dest, root_len);
	if (r < 0)
		return ap_log_error(r, "failed to remove '%s': %s", dest, strerror(-r));
	strv_remove(*owned, dest);
	ap_log_info("removed %s", dest);
	return 0;
}

int ap_install_files(const struct ap_plan *p, const struct ap_install_source *src, char ***owned)
{
	int r;

	/* Writes first, removals after, so a rename never leaves a moment without either. */
	for (size_t i = 0; i < p->n_files; i++) {
		const struct ap_file_op *f = &p->files[i];

		if (!f->install)
			continue;
		r = write_one(f, src);
		if (r < 0)
			return ap_log_error(r, "failed to install '%s' to '%s': %s", f->path, f->dest,
					    strerror(-r));
		if ((r = ap_strv_push_unique(owned, f->dest)) < 0)
			return r;
		ap_log_info("installed %s -> %s", f->path, f->dest);
	}
	if ((r = sync_dirs(p)) < 0)
		return r;
	for (size_t i = 0; i < p->n_files; i++) {
		const struct ap_file_op *f = &p->files[i];

		if (!f->remove || (f->install && strcmp(f->old_dest, f->dest) == 0))
			continue;
		r = f->install ? remove_owned(f, f->old_dest, f->old_root_len, owned)
			       : remove_owned(f, f->dest, f->root_len, owned);
		if (r < 0)
			return r;
	}
	return 0;
}

int ap_install_touched(const struct ap_plan *p, char ***ret)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < p->n_files; i++) {
		r = ap_strv_push_unique(ret, p->files[i].dest);
		if (r >= 0 && p->files[i].old_dest)
			r = ap_strv_push_unique(ret, p->files[i].old_dest);
	}
	return r;
}

void ap_install_count(const struct ap_plan *p, char *const *owned, size_t *ret_removed,
		      size_t *ret_remaining)
{
	size_t removed = 0, added = 0, n = ap_strv_length(owned);

	for (size_t i = 0; i < p->n_files; i++) {
		const struct ap_file_op *f = &p->files[i];
		const char *gone = f->remove ? (f->install ? f->old_dest : f->dest) : NULL;

		if (gone && ap_strv_contains(owned, gone))
			removed++;
		if (f->install && !ap_strv_contains(owned, f->dest))
			added++;
	}
	*ret_removed = removed;
	*ret_remaining = n - removed + added;
}

/* --- validation ------------------------------------------------------------------ */

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
	r = ap_fs_write_atomic(dfd, base, data, len, 0644, (uid_t)-1, (gid_t)-1);
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

/* A changed drop-in is verified through its unit: stage the installed unit file when the
 * plan does not bring a new one. */
static int stage_unit_for_dropin(struct stage *s, const struct ap_file_op *f, const char *unit_dir)
{
	_cleanup_close_ int ufd = -1;
	_cleanup_free_ char *data = NULL;
	size_t len;
	int r;

	if (stage_has_unit(s, f->unit) || ap_unit_name_is_template(f->unit))
		return 0;
	ufd = open(unit_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = ufd < 0 ? -errno : ap_fs_read_beneath(ufd, f->unit, AP_MAX_BLOB_SIZE, &data, &len);
	if (r == -ENOENT) {
		ap_log_debug("not verifying '%s': unit '%s' is not installed", f->path, f->unit);
		return 0;
	}
	return r < 0 ? r : stage_write(s, f->unit, data, len, f->path, true);
}

/* Reports each output line that names a staged unit, with the repo path in place of the
 * staged one. Returns how many lines were reported. */
static size_t report_unit_lines(const struct stage *s, char *out, bool failed)
{
	size_t reported = 0;

	for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		bool strict = strstr(l, "Unknown key") || strstr(l, "Unknown section");

		if (!failed && !strict)
			continue;
		for (size_t i = 0; i < s->n_units; i++) {
			char *at = strstr(l, s->units[i].path);

			if (!at)
				continue;
			ap_log_error(-EINVAL, "validation of '%s' failed: %.*s%s%s", s->units[i].repo_path,
				     (int)(at - l), l, s->units[i].repo_path,
				     at + strlen(s->units[i].path));
			reported++;
			break;
		}
	}
	return reported;
}

/* systemd-analyze needs a private runtime dir. An empty environment-generator path keeps it
 * from running the user environment generators, which cost more than the verification itself
 * (gpg-agent's alone ~130 ms here) and cannot change whether a unit file is valid. */
static int verify_env(const struct stage *s, char ***ret)
{
	_cleanup_free_ char *run = ap_strdupf("%s/.run", s->dir), *gen = ap_strdupf("%s/.gen", s->dir);
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

static int verify_units(struct stage *s, enum ap_scope scope)
{
	_cleanup_strv_free_ char **argv = NULL, **env = NULL;
	const char *fixed[] = { "systemd-analyze", "verify", "--man=no",
				scope == AP_SCOPE_USER ? "--user" : "--system" };
	struct ap_spawn_result res = { 0 };
	size_t reported;
	bool failed;
	int r = 0;

	if (s->n_units == 0)
		return 0;
	for (size_t i = 0; r >= 0 && i < ELEMENTSOF(fixed); i++)
		r = ap_strv_push(&argv, fixed[i]);
	for (size_t i = 0; r >= 0 && i < s->n_units; i++)
		r = ap_strv_push(&argv, s->units[i].path);
	if (r >= 0)
		r = verify_env(s, &env);
	if (r >= 0)
		r = ap_spawn_run(argv, env, AP_VALIDATE_TIMEOUT_USEC, &res);
	if (r < 0)
		return ap_log_error(r, "failed to run systemd-analyze verify: %s", strerror(-r));
	failed = res.exit_status != 0 || res.timed_out;
	reported = report_unit_lines(s, res.output ? res.output : (char[]){ "" }, failed);
	if (failed && reported == 0)
		ap_log_error(-EINVAL, "validation of unit files failed: systemd-analyze verify %s %d",
			     res.timed_out ? "timed out, status" : "exited with", res.exit_status);
	ap_spawn_result_clear(&res);
	return failed || reported ? -EINVAL : 0;
}

static int run_validator(const struct stage *s, const struct ap_file_op *f,
			 const struct ap_install_source *src, size_t idx)
{
	const char *base = strrchr(f->dest, '/') + 1;
	_cleanup_free_ char *rel = ap_strdupf("files/%zu/%s", idx, base), *path = NULL, *buf = NULL;
	const char *data;
	size_t len;
	_cleanup_close_ int dfd = -1;
	_cleanup_strv_free_ char **argv = NULL;
	struct ap_spawn_result res = { 0 };
	const char *ignored;
	int r;

	if (!rel)
		return -ENOMEM;
	dfd = open_parent(s->fd, rel, &ignored);
	if (dfd < 0)
		return dfd;
	r = content(f, src, &buf, &data, &len);
	if (r >= 0)
		r = ap_fs_write_atomic(dfd, base, data, len, 0600, (uid_t)-1, (gid_t)-1);
	path = ap_strdupf("%s/%s", s->dir, rel);
	if (r >= 0)
		r = path ? ap_spawn_expand_argv(f->validate, path, &argv) : -ENOMEM;
	if (r >= 0)
		r = ap_spawn_run(argv, NULL, AP_VALIDATE_TIMEOUT_USEC, &res);
	if (r < 0)
		return ap_log_error(r == -ENOENT ? -EINVAL : r, "validator '%s' for '%s' could not run: %s",
				    f->validate[0], f->path, strerror(-r));
	if (res.exit_status != 0 || res.timed_out) {
		char *nl = res.output ? strchr(res.output, '\n') : NULL;
		if (nl && nl[1] == '\0')
			*nl = '\0';
		ap_log_error(-EINVAL, "validation of '%s' failed (%s %d): %s", f->path,
			     res.timed_out ? "timed out, status" : "exit", res.exit_status,
			     res.output && *res.output ? res.output : "(no output)");
		r = -EINVAL;
	}
	ap_spawn_result_clear(&res);
	return r;
}

static int stage_file(struct stage *s, const struct ap_file_op *f,
		      const struct ap_install_source *src, bool verify)
{
	_cleanup_free_ char *buf = NULL;
	const char *data;
	size_t len;
	int r = content(f, src, &buf, &data, &len);

	return r < 0 ? r : stage_write(s, f->dest + f->root_len + 1, data, len, f->path, verify);
}

static int stage_units(struct stage *s, const struct ap_plan *p,
		       const struct ap_install_source *src, const char *unit_dir)
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
			r = stage_unit_for_dropin(s, f, unit_dir);
	}
	return r;
}

int ap_install_validate(const struct ap_plan *p, const struct ap_install_source *src,
			enum ap_scope scope, const char *unit_dir)
{
	struct stage s = { .fd = -1 };
	bool invalid = false;
	uid_t uid;
	gid_t gid;
	int r = ap_fs_mkdtemp("autopull-stage", &s.dir);

	if (r >= 0 && (s.fd = open(s.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		r = -errno;
	if (r >= 0)
		r = stage_units(&s, p, src, unit_dir);
	if (r >= 0)
		r = verify_units(&s, scope);
	invalid = r == -EINVAL;
	for (size_t i = 0; (r >= 0 || r == -EINVAL) && i < p->n_files; i++) {
		const struct ap_file_op *f = &p->files[i];
		int k = 0;

		if (f->install && f->owner)
			k = resolve_owner(f, &uid, &gid);
		if (k >= 0 && f->install && f->validate)
			k = run_validator(&s, f, src, i);
		if (k == -EINVAL || k == -ESRCH)
			invalid = true;
		else if (k < 0)
			r = k;
	}
	if (r < 0 && r != -EINVAL)
		ap_log_error(r, "failed to stage files for validation: %s", strerror(-r));
	stage_done(&s);
	return r < 0 && r != -EINVAL ? r : invalid ? -EINVAL : 0;
}

/* --- rollback --------------------------------------------------------------------- */

static int restore_path(const char *dest, size_t root_len, const struct ap_restore_hooks *h,
			char ***owned)
{
	_cleanup_close_ int rootfd = -1, dfd = -1;
	_cleanup_free_ char *data = NULL;
	const char *base;
	size_t len = 0;
	mode_t mode = 0644;
	int r = h->lookup(h->userdata, dest, &data, &len, &mode);

	if (r < 0)
		return r == -ENOENT ? 0 : r; /* never touched by this apply */
	if (r == 0) {
		r = remove_one(dest, root_len);
		if (r >= 0)
			strv_remove(*owned, dest);
		return r;
	}
	rootfd = open_root(dest, root_len);
	if (rootfd < 0)
		return rootfd;
	dfd = open_parent(rootfd, dest + root_len + 1, &base);
	if (dfd < 0)
		return dfd;
	return ap_fs_write_atomic(dfd, base, data ? data : "", len, mode, (uid_t)-1, (gid_t)-1);
}

int ap_install_restore(const struct ap_plan *p, const struct ap_restore_hooks *h, char ***owned)
{
	int failed = 0;

	/* Every path is tried, so that one failure does not leave the others half-done. */
	for (size_t i = 0; i < p->n_files; i++) {
		const struct ap_file_op *f = &p->files[i];
		const char *paths[2] = { f->dest, f->old_dest };
		const size_t roots[2] = { f->root_len, f->old_root_len };

		for (size_t k = 0; k < 2 && paths[k]; k++) {
			int r = restore_path(paths[k], roots[k], h, owned);

			if (r < 0)
				failed = ap_log_error(r, "failed to restore '%s': %s", paths[k],
						      strerror(-r));
			else
				ap_log_info("restored %s", paths[k]);
		}
	}
	return failed;
}
