/* Staging, validation, preflight and installation of files, and reading and putting back host
 * files for backups and rollbacks (see install.h). Host paths are opened beneath their
 * configured directory only; nothing here follows a symlink below it. This is the one module
 * that reads or writes managed host files.
 *
 * Deliberately not here: where copies are kept (state.c), when to restore (apply.c), and the
 * service manager. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <inttypes.h>
#include <pwd.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <dirent.h>
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

/* The directory path lies in, walked from "/" (ap_fs_open_dir_safe): a symlink is followed
 * only within the configured directory path[0..root_len) and only when root could have made
 * it (/lib -> usr/lib); every directory on the way is root's or trusted's. */
static int open_dir_of(const char *path, size_t root_len, uid_t trusted, unsigned flags,
		       struct ap_fs_unsafe *u)
{
	_cleanup_free_ char *dir = strndup(path, (size_t)(strrchr(path, '/') - path));

	if (!dir)
		return -ENOMEM;
	return ap_fs_open_dir_safe(*dir ? dir : "/", root_len, trusted, flags, 0755, u);
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

static void leave_user(void)
{
	(void)setfsuid(geteuid());
	(void)setfsgid(getegid());
}

/* From here on files are created, renamed and removed as uid (gid, or uid's own group): the
 * kernel then allows only what that user could do herself. */
static int become_user(uid_t uid, gid_t gid)
{
	char buf[4096];
	struct passwd pw, *pwr = NULL;

	if (gid == (gid_t)-1) {
		if (getpwuid_r(uid, &pw, buf, sizeof(buf), &pwr) != 0 || !pwr)
			return -ESRCH;
		gid = pwr->pw_gid;
	}
	(void)setfsgid(gid);
	(void)setfsuid(uid);
	/* Both return the previous id, never an error: ask again to know. */
	if ((gid_t)setfsgid((gid_t)-1) != gid || (uid_t)setfsuid((uid_t)-1) != uid) {
		leave_user();
		return -EPERM;
	}
	return 0;
}

/* Opens the directory of dest to write or remove it (creating it with WALK_CREATE): as the
 * running user through directories that only root or trusted own, or, when the tree belongs to
 * another user, as that user (*ret_as_user: call leave_user() when done). A refusal is logged
 * with its reason. */
static int enter_dest(const char *dest, size_t root_len, uid_t trusted, gid_t gid,
		      unsigned flags, bool *ret_as_user)
{
	struct ap_fs_unsafe u;
	int fd = open_dir_of(dest, root_len, trusted, flags & ~AP_FS_WALK_CREATE, &u), r;

	*ret_as_user = false;
	if (fd >= 0 || fd == -ENOENT) {
		if (u.tree_uid != 0 && u.tree_uid != geteuid()) {
			r = become_user(u.tree_uid, gid);
			if (r < 0) {
				if (fd >= 0)
					close(fd);
				return r;
			}
			*ret_as_user = true;
		}
		if (fd == -ENOENT && (flags & AP_FS_WALK_CREATE))
			fd = open_dir_of(dest, root_len, trusted, flags, &u);
	}
	if (fd == -EPERM || fd == -ELOOP) {
		_cleanup_free_ char *why = NULL;

		if (ap_fs_unsafe_describe(&u, fd, &why) >= 0)
			ap_log_error(fd, "refusing to write '%s': %s", dest, why);
	}
	if (fd < 0 && *ret_as_user) {
		leave_user();
		*ret_as_user = false;
	}
	return fd;
}

/* Who may own the directories above a file: the rule's owner, or the user autopull runs as
 * (root: nobody else). */
static uid_t trusted_for(uid_t owner)
{
	return owner != (uid_t)-1 ? owner : geteuid();
}

int ap_install_owner_ids(const char *owner, const char *group, uid_t *ret_uid, gid_t *ret_gid)
{
	char buf[4096];
	struct passwd pw, *pwr = NULL;
	struct group gr, *grr = NULL;

	*ret_uid = (uid_t)-1;
	*ret_gid = (gid_t)-1;
	if (owner) {
		if (getpwnam_r(owner, &pw, buf, sizeof(buf), &pwr) != 0 || !pwr)
			return ap_log_error(-ESRCH, "unknown owner '%s'", owner);
		*ret_uid = pwr->pw_uid;
	}
	if (group) {
		if (getgrnam_r(group, &gr, buf, sizeof(buf), &grr) != 0 || !grr)
			return ap_log_error(-ESRCH, "unknown group '%s'", group);
		*ret_gid = grr->gr_gid;
	}
	return 0;
}

static int resolve_owner(const struct ap_file_op *f, uid_t *uid, gid_t *gid)
{
	int r = ap_install_owner_ids(f->owner, f->group, uid, gid);

	return r < 0 ? ap_log_error(r, "the owner or group of '%s' does not exist", f->path) : r;
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
	_cleanup_close_ int dfd = -1;
	_cleanup_free_ char *buf = NULL;
	const char *base = strrchr(f->dest, '/') + 1, *data;
	bool as_user;
	size_t len;
	uid_t uid;
	gid_t gid;
	int r = resolve_owner(f, &uid, &gid);

	if (r < 0)
		return r;
	dfd = enter_dest(f->dest, f->root_len, trusted_for(uid), gid, AP_FS_WALK_CREATE, &as_user);
	if (dfd < 0)
		return dfd;
	/* A run killed inside the atomic write left its temp file here. */
	(void)ap_fs_remove_stale_temps(dfd, base);
	r = content(f, src, &buf, &data, &len);
	if (r >= 0)
		r = ap_fs_write_atomic_flags(dfd, base, data, len, f->mode, uid, gid, AP_FS_NO_DIRSYNC);
	if (as_user)
		leave_user();
	return r;
}

/* One directory fsync per directory written to, instead of one per file. */
static int sync_dirs(const struct ap_plan *p)
{
	_cleanup_strv_free_ char **done = NULL;

	for (size_t i = 0; i < p->n_files; i++) {
		const struct ap_file_op *f = &p->files[i];
		_cleanup_free_ char *dir = f->install ? strndup(f->dest, strrchr(f->dest, '/') - f->dest) : NULL;
		_cleanup_close_ int dfd = -1;
		int r;

		if (!f->install || !dir || ap_strv_contains(done, dir))
			continue;
		dfd = open_dir_of(f->dest, f->root_len, 0, AP_FS_WALK_NO_CHECK, &(struct ap_fs_unsafe){ 0 });
		r = dfd < 0 ? dfd : ap_fs_sync_dir(dfd);
		if (r >= 0)
			r = ap_strv_push(&done, dir);
		if (r < 0)
			return ap_log_error(r, "failed to sync directory '%s': %s", dir, strerror(-r));
	}
	return 0;
}

/* A removal needs no owner: whoever owns the tree (one user at most) removes it. */
static int remove_one(const char *dest, size_t root_len)
{
	bool as_user;
	_cleanup_close_ int dfd = enter_dest(dest, root_len, (uid_t)-1, (gid_t)-1,
					     AP_FS_WALK_ANY_USER, &as_user);
	int r;

	if (dfd < 0)
		return dfd == -ENOENT ? 0 : dfd;
	r = ap_fs_unlink_beneath(dfd, strrchr(dest, '/') + 1);
	if (as_user)
		leave_user();
	return r;
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

/* A file the repository stops providing: removed, unless autopull took it over from the
 * operator, whose original then comes back. */
static int remove_owned(const struct ap_file_op *f, const char *dest, size_t root_len,
			const struct ap_install_hooks *h, char ***owned)
{
	struct ap_host_file orig = { 0 };
	int r;

	if (!ap_strv_contains(*owned, dest)) {
		ap_log_warning("not removing '%s' (from '%s'): autopull did not install it", dest,
			       f->old_path ? f->old_path : f->path);
		return 0;
	}
	r = h->adopted ? h->adopted(h->userdata, dest, &orig) : 0;
	if (r > 0)
		r = ap_install_put_back(&orig);
	else if (r == 0)
		r = remove_one(dest, root_len);
	if (r < 0) {
		ap_host_file_clear(&orig);
		return ap_log_error(r, "failed to remove '%s': %s", dest, strerror(-r));
	}
	strv_remove(*owned, dest);
	if (orig.path)
		ap_log_info("put back the original of %s (it was taken over)", dest);
	else
		ap_log_info("removed %s", dest);
	ap_host_file_clear(&orig);
	if (h->progress)
		h->progress(h->userdata, dest);
	return 0;
}

int ap_install_files(const struct ap_plan *p, const struct ap_install_hooks *h, char ***owned)
{
	int r;

	/* Writes first, removals after, so a rename never leaves a moment without either. */
	for (size_t i = 0; i < p->n_files; i++) {
		const struct ap_file_op *f = &p->files[i];

		if (!f->install)
			continue;
		r = write_one(f, h->src);
		if (r < 0)
			return ap_log_error(r, "failed to install '%s' to '%s': %s", f->path, f->dest,
					    strerror(-r));
		if ((r = ap_strv_push_unique(owned, f->dest)) < 0)
			return r;
		ap_log_info("installed %s -> %s", f->path, f->dest);
		if (h->progress)
			h->progress(h->userdata, f->dest);
	}
	if ((r = sync_dirs(p)) < 0)
		return r;
	for (size_t i = 0; i < p->n_files; i++) {
		const struct ap_file_op *f = &p->files[i];

		if (!f->remove || (f->install && strcmp(f->old_dest, f->dest) == 0))
			continue;
		r = f->install ? remove_owned(f, f->old_dest, f->old_root_len, h, owned)
			       : remove_owned(f, f->dest, f->root_len, h, owned);
		if (r < 0)
			return r;
	}
	return 0;
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
	size_t n = scope == AP_SCOPE_USER ? ELEMENTSOF(user_unit_dirs) : ELEMENTSOF(system_unit_dirs);
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

/* Reports the output lines that explain a failure (all of them when the verifier failed,
 * else only the unknown keys and sections that autopull treats as errors), with the repo path
 * in place of the staged one. Returns how many lines were reported. */
static size_t report_unit_lines(const struct stage *s, char *out, bool failed)
{
	size_t reported = 0;

	for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		bool strict = strstr(l, "Unknown key") || strstr(l, "Unknown section");
		const char *at;
		const struct staged *u;

		if (!failed && !strict)
			continue;
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

/* A validator's output lines are kept, at most this many (the last ones: tools print their
 * environment first and the error last), and the summary quotes this many, newest first. */
#define VALIDATOR_LINES_MAX 20
#define VALIDATOR_SUMMARY_LINES 3

/* The non-blank lines of out, the last VALIDATOR_LINES_MAX of them, in order; out is cut up. */
static size_t output_lines(char *out, const char *v[static VALIDATOR_LINES_MAX])
{
	size_t n = 0;

	for (char *save = NULL, *l = strtok_r(out, "\r\n", &save); l; l = strtok_r(NULL, "\r\n", &save)) {
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

	for (size_t i = 0; k >= 0 && i < n && i < VALIDATOR_SUMMARY_LINES; i++)
		k = ap_buf_printf(&b, "%s%s", i ? " | " : "", v[n - 1 - i]);
	ap_log_error(-EINVAL, "validation of '%s' failed (%s %d): %s", f->path,
		     res->timed_out ? "timed out, status" : "exit", res->exit_status,
		     k >= 0 && b.data ? b.data : "(no output)");
	ap_buf_free(&b);
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
	int r = ap_strv_push(ret, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");

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
	r = content(f, src, &buf, &data, &len);
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
		return ap_log_error(r == -ENOENT ? -EINVAL : r, "validator '%s' for '%s' could not run: %s",
				    f->validate[0], f->path, strerror(-r));
	if (res.exit_status != 0 || res.timed_out) {
		report_validator(f, &res);
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
		       const struct ap_install_source *src, enum ap_scope scope, const char *unit_dir)
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

int ap_install_validate(const struct ap_plan *p, const struct ap_install_source *src,
			enum ap_scope scope, const char *unit_dir, const char *stage_dir)
{
	struct stage s = { .fd = -1 };
	bool invalid = false;
	uid_t uid;
	gid_t gid;
	int r = (s.dir = strdup(stage_dir)) ? 0 : -ENOMEM;

	if (r >= 0 && (s.fd = open(s.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		r = -errno;
	if (r >= 0)
		r = stage_units(&s, p, src, scope, unit_dir);
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


/* --- host files: backups and putting them back ---------------------------------------- */

/* Opens the existing directory path lies in, without creating anything or checking owners
 * (reads): -ENOENT when it is missing. */
static int open_existing_dir(const char *path, size_t root_len, const char **ret_base)
{
	*ret_base = strrchr(path, '/') + 1;
	return open_dir_of(path, root_len, 0, AP_FS_WALK_NO_CHECK, &(struct ap_fs_unsafe){ 0 });
}

/* What is at base in dfd: 0 and *st for a regular file, -ENOENT, or a refusal (-ELOOP for a
 * symlink, -EISDIR for a directory, -EINVAL for anything else). */
static int stat_target(int dfd, const char *base, struct stat *st)
{
	if (fstatat(dfd, base, st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return S_ISREG(st->st_mode) ? 0 : S_ISLNK(st->st_mode) ? -ELOOP
				     : S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL;
}

int ap_install_read_host(const char *path, size_t root_len, bool with_data, struct ap_host_file *ret)
{
	struct ap_host_file hf = { .root_len = root_len, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	_cleanup_close_ int dfd = open_existing_dir(path, root_len, &(const char *){ NULL });
	const char *base = strrchr(path, '/') + 1;
	struct stat st;
	int r = dfd;

	if (r >= 0)
		r = stat_target(dfd, base, &st);
	if (r >= 0 && with_data)
		r = ap_fs_read_beneath(dfd, base, AP_MAX_BLOB_SIZE, &hf.data, &hf.len);
	if (r < 0 && r != -ENOENT)
		return r;
	if (r >= 0) {
		hf.present = true;
		hf.mode = st.st_mode & 07777;
		hf.uid = st.st_uid;
		hf.gid = st.st_gid;
	}
	hf.path = strdup(path);
	if (!hf.path) {
		ap_host_file_clear(&hf);
		return -ENOMEM;
	}
	*ret = hf;
	return 0;
}

static bool same_file(const struct ap_host_file *want, const struct ap_host_file *have)
{
	return have->present && have->len == want->len && have->mode == want->mode &&
	       (want->uid == (uid_t)-1 || want->uid == have->uid) &&
	       (want->gid == (gid_t)-1 || want->gid == have->gid) &&
	       (want->len == 0 || memcmp(have->data, want->data, want->len) == 0);
}

int ap_install_put_back(const struct ap_host_file *hf)
{
	struct ap_host_file now = { 0 };
	_cleanup_close_ int dfd = -1;
	bool as_user;
	int r;

	if (!hf->present)
		return remove_one(hf->path, hf->root_len);
	/* Nothing to do when it is already so: a resumed rollback rewrites nothing. */
	r = ap_install_read_host(hf->path, hf->root_len, true, &now);
	if (r >= 0 && same_file(hf, &now)) {
		ap_host_file_clear(&now);
		return 0;
	}
	ap_host_file_clear(&now);
	dfd = enter_dest(hf->path, hf->root_len, trusted_for(hf->uid), hf->gid, AP_FS_WALK_CREATE,
			 &as_user);
	if (dfd < 0)
		return dfd;
	r = ap_fs_write_atomic(dfd, strrchr(hf->path, '/') + 1, hf->data ? hf->data : "", hf->len,
			       hf->mode, hf->uid, hf->gid);
	if (as_user)
		leave_user();
	return r;
}

/* --- preflight ------------------------------------------------------------------------ */

struct fs_need {
	unsigned long fsid;
	uint64_t bytes, files, avail_bytes, avail_files;
	char *dir; /* one directory on it, for the message */
};

struct preflight {
	const struct ap_plan *p;
	char *const *owned;
	const struct ap_install_source *src;
	unsigned flags;
	char **probed;          /* directories already probed */
	struct fs_need *fs;
	size_t n_fs;
	bool refused;
	int error;              /* first error that is not a refusal */
	struct ap_preflight *out;
};

static int refuse(struct preflight *c, const char *fmt, ...) _printf_(2, 3);
static int refuse(struct preflight *c, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	msg = ap_strdupvf(fmt, ap);
	va_end(ap);
	ap_log_error(-EINVAL, "%s", msg ? msg : "refusing the plan");
	c->refused = true;
	return 0;
}

static int env_error(struct preflight *c, int r, const char *what, const char *path)
{
	ap_log_error(r, "cannot %s '%s': %s", what, path, strerror(-r));
	if (!c->error)
		c->error = r;
	return 0;
}

/* Counts what writing size bytes into the directory dfd needs of its file system. */
static int need_space(struct preflight *c, int dfd, const char *dir, uint64_t size)
{
	struct statvfs v;
	struct fs_need *n = NULL;

	if (fstatvfs(dfd, &v) < 0)
		return env_error(c, -errno, "check the free space of", dir);
	for (size_t i = 0; i < c->n_fs && !n; i++)
		if (c->fs[i].fsid == v.f_fsid)
			n = &c->fs[i];
	if (!n) {
		struct fs_need *w = realloc(c->fs, (c->n_fs + 1) * sizeof(*w));

		if (!w)
			return -ENOMEM;
		c->fs = w;
		n = &w[c->n_fs++];
		*n = (struct fs_need){ .fsid = v.f_fsid, .dir = strdup(dir),
				       .avail_bytes = (uint64_t)v.f_bavail * v.f_frsize,
				       .avail_files = v.f_files ? v.f_favail : UINT64_MAX };
		if (!n->dir)
			return -ENOMEM;
	}
	/* The temp file exists beside the old one until the rename: both count. */
	n->bytes += (size + 4095) / 4096 * 4096 + 4096;
	n->files += 1;
	return 0;
}

/* Proves dir is writable by creating and removing a file in it, once per directory: as the
 * user who owns its tree (tree_uid) when that is not us, as the install will write it. */
static int probe_dir(struct preflight *c, int dfd, const char *dir, uid_t tree_uid)
{
	bool as_user = tree_uid != 0 && tree_uid != geteuid();
	int r;

	if (ap_strv_contains(c->probed, dir))
		return 0;
	if ((r = ap_strv_push(&c->probed, dir)) < 0)
		return r;
	if (c->flags & AP_PREFLIGHT_CHECK_ONLY)
		return 0;
	r = as_user ? become_user(tree_uid, (gid_t)-1) : 0;
	if (r >= 0)
		r = ap_fs_probe_writable(dfd);
	if (as_user)
		leave_user();
	return r < 0 ? env_error(c, r, "write to", dir) : 0;
}

static int check_takeover(struct preflight *c, const struct ap_file_op *f, int dfd,
			  const char *base)
{
	_cleanup_free_ char *have = NULL, *buf = NULL;
	const char *want;
	size_t have_len, want_len;
	int r;

	if (ap_strv_contains(c->owned, f->dest))
		return 0;
	r = ap_fs_read_beneath(dfd, base, AP_MAX_BLOB_SIZE, &have, &have_len);
	if (r >= 0)
		r = content(f, c->src, &buf, &want, &want_len);
	if (r < 0)
		return env_error(c, r, "read", f->dest);
	if (!f->takeover && !(have_len == want_len && memcmp(have, want, want_len) == 0))
		return refuse(c, "'%s' (from '%s') exists and autopull did not install it; to "
				 "replace it, set 'takeover: true' on its rule (the original is then "
				 "kept in the state directory's adopted/)", f->dest, f->path);
	return ap_strv_push(&c->out->adopt, f->dest);
}

/* The deepest directory that exists on the way to dest's directory (*ret_path names it),
 * walked as open_dir_of does. The preflight probes there rather than creating anything: a
 * refused plan must leave no directory behind. */
static int open_nearest_dir(const char *dest, size_t root_len, char **ret_path)
{
	struct ap_fs_unsafe u;
	int fd = open_dir_of(dest, root_len, 0, AP_FS_WALK_NO_CHECK, &u);

	if (fd >= 0)
		*ret_path = strndup(dest, (size_t)(strrchr(dest, '/') - dest));
	else if (fd == -ENOENT) {
		/* u.path is the first missing directory: its parent exists */
		*ret_path = strndup(u.path, (size_t)(strrchr(u.path, '/') - u.path));
		fd = *ret_path ? open_dir_of(u.path, root_len, 0, AP_FS_WALK_NO_CHECK, &u) : -ENOMEM;
		if (fd < 0) {
			free(*ret_path);
			*ret_path = NULL;
			return fd;
		}
	} else
		return fd;
	if (fd >= 0 && !*ret_path) {
		close(fd);
		return -ENOMEM;
	}
	if (fd >= 0 && !**ret_path) {
		free(*ret_path);
		*ret_path = strdup("/");
	}
	return fd;
}

int ap_install_first_missing_dir(const char *path, size_t root_len, char **ret)
{
	struct ap_fs_unsafe u;
	int fd = open_dir_of(path, root_len, 0, AP_FS_WALK_NO_CHECK, &u);

	*ret = NULL;
	if (fd >= 0) {
		close(fd);
		return 0; /* the directory of path exists */
	}
	if (fd != -ENOENT)
		return fd;
	*ret = strdup(u.path);
	return *ret ? 0 : -ENOMEM;
}

/* rmdir of dir and every directory below it, deepest first, as long as they hold nothing
 * else: what a restore takes back of the directories an apply created. */
static int remove_empty_tree(int pfd, const char *name)
{
	_cleanup_close_ int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	d = fdopendir(fd);
	if (!d)
		return -errno;
	fd = -1; /* owned by d now */
	while (r >= 0 && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		r = de->d_type == DT_DIR ? remove_empty_tree(dirfd(d), de->d_name) : -ENOTEMPTY;
	}
	closedir(d);
	if (r >= 0 && unlinkat(pfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		r = -errno;
	return r;
}

int ap_install_remove_created_dir(const char *dir, size_t root_len)
{
	_cleanup_free_ char *parent = strndup(dir, (size_t)(strrchr(dir, '/') - dir));
	_cleanup_close_ int pfd = -1;
	int r;

	if (!parent)
		return -ENOMEM;
	pfd = ap_fs_open_dir_safe(*parent ? parent : "/", root_len, 0, AP_FS_WALK_NO_CHECK, 0,
				  &(struct ap_fs_unsafe){ 0 });
	r = pfd < 0 ? pfd : 0;
	if (r == -ENOENT)
		return 0;
	r = r < 0 ? r : remove_empty_tree(pfd, strrchr(dir, '/') + 1);
	return r == -ENOTEMPTY ? 0 : r; /* something else lives there now: it stays */
}

/* An owner: or group: this process may set: any as root; otherwise only its own uid and
 * its own groups (chown(2)). Checked here, or the write would fail half-way. */
static int check_owner(struct preflight *c, const struct ap_file_op *f)
{
	gid_t groups[NGROUPS_MAX];
	uid_t uid;
	gid_t gid;
	int n;

	if (!f->owner && !f->group)
		return 0;
	if (ap_install_owner_ids(f->owner, f->group, &uid, &gid) < 0)
		return refuse(c, "'%s': owner '%s' or group '%s' does not exist on this host", f->path,
			      f->owner ? f->owner : "-", f->group ? f->group : "-");
	if (geteuid() == 0)
		return 0;
	if (uid != (uid_t)-1 && uid != geteuid())
		return refuse(c, "'%s' cannot be given to owner '%s': only root can, and autopull runs "
				 "as uid %u", f->path, f->owner, (unsigned)geteuid());
	n = getgroups(NGROUPS_MAX, groups);
	for (int i = 0; gid != (gid_t)-1 && gid != getegid() && i < n; i++)
		if (groups[i] == gid)
			return 0;
	if (gid != (gid_t)-1 && gid != getegid())
		return refuse(c, "'%s' cannot be given to group '%s': uid %u is not in it", f->path,
			      f->group, (unsigned)geteuid());
	return 0;
}

/* Nobody but root (or the user a rule names, or autopull's own user) controls a directory on
 * the way to dest: else a root write there could be steered with a symlink. A removal may be
 * in one user's tree (it is done as that user). 1: refused (logged). */
static int check_dest_dirs(struct preflight *c, const struct ap_file_op *f, const char *dest,
			   size_t root_len, bool install, uid_t *ret_tree_uid)
{
	_cleanup_free_ char *why = NULL;
	struct ap_fs_unsafe u;
	uid_t uid = (uid_t)-1;
	gid_t gid;
	int fd;

	if (install && ap_install_owner_ids(f->owner, f->group, &uid, &gid) < 0)
		return 0; /* check_owner refused it already */
	fd = open_dir_of(dest, root_len, install ? trusted_for(uid) : (uid_t)-1,
			 install ? 0 : AP_FS_WALK_ANY_USER, &u);
	*ret_tree_uid = u.tree_uid;
	if (fd >= 0 || fd == -ENOENT) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (fd != -EPERM)
		return 0; /* a symlink in the way and the rest: reported by the checks that follow */
	if (ap_fs_unsafe_describe(&u, fd, &why) < 0)
		return -ENOMEM;
	refuse(c, "refusing to write '%s' (from '%s'): %s%s", dest, f->path, why,
	       fd == -EPERM && !(u.mode & (S_IWGRP | S_IWOTH)) && geteuid() == 0
		       ? "; to install it as that user, set 'owner:' on its rule to them" : "");
	return 1;
}

/* One destination: its directory can be written, nothing but a file is in the way, and an
 * existing file is either ours or may be taken over. */
static int preflight_dest(struct preflight *c, const struct ap_file_op *f, const char *dest,
			  size_t root_len, bool install)
{
	_cleanup_free_ char *dir = strndup(dest, (size_t)(strrchr(dest, '/') - dest));
	_cleanup_close_ int dfd = -1;
	const char *base;
	struct stat st;
	size_t size = 0;
	uid_t tree_uid = 0;
	int r;

	if (!dir)
		return -ENOMEM;
	r = check_dest_dirs(c, f, dest, root_len, install, &tree_uid);
	if (r != 0)
		return r < 0 ? r : 0;
	dfd = open_existing_dir(dest, root_len, &base);
	if (dfd == -ENOENT && !install)
		return 0; /* nothing to remove */
	if (dfd == -ENOENT) {
		/* Created when installing: the deepest existing directory must take it. */
		_cleanup_free_ char *have = NULL;

		dfd = open_nearest_dir(dest, root_len, &have);
		if (dfd >= 0 && install && f->change_ref && c->src && c->src->size)
			r = c->src->size(c->src->userdata, f->change_ref, &size);
		if (dfd >= 0)
			r = probe_dir(c, dfd, have, tree_uid);
		if (dfd >= 0 && r >= 0)
			r = need_space(c, dfd, have, size);
		return dfd < 0 ? (dfd == -ELOOP || dfd == -ENOTDIR
					  ? refuse(c, "'%s' (from '%s'): a symlink or a file is in the way of "
						      "its directory; refusing to follow it", dest, f->path)
					  : env_error(c, dfd, "open the directory of", dest))
			       : r;
	}
	if (dfd < 0)
		return dfd == -ELOOP || dfd == -ENOTDIR || dfd == -EXDEV
			       ? refuse(c, "'%s' (from '%s'): a symlink or a file is in the way of "
					   "its directory; refusing to follow it", dest, f->path)
			       : env_error(c, dfd, "open the directory of", dest);
	r = stat_target(dfd, base, &st);
	if (r == -ELOOP || r == -EISDIR || r == -EINVAL)
		return refuse(c, "'%s' (from '%s') is %s on the host; refusing to replace it", dest,
			      f->path, r == -ELOOP ? "a symlink" : r == -EISDIR ? "a directory"
							   : "not a regular file");
	if (r < 0 && r != -ENOENT)
		return env_error(c, r, "inspect", dest);
	if (r == 0) {
		c->out->backup_bytes += (uint64_t)st.st_size;
		c->out->backup_files++;
	}
	if (install && r == 0 && (r = check_takeover(c, f, dfd, base)) < 0)
		return r;
	if (install && f->change_ref && (c->src && c->src->size))
		r = c->src->size(c->src->userdata, f->change_ref, &size);
	if (r < 0 && r != -ENOENT)
		return env_error(c, r, "size", f->path);
	r = probe_dir(c, dfd, dir, tree_uid);
	return r >= 0 && install ? need_space(c, dfd, dir, size) : r;
}

static int check_fs_space(struct preflight *c)
{
	for (size_t i = 0; i < c->n_fs; i++) {
		const struct fs_need *n = &c->fs[i];

		if (n->bytes <= n->avail_bytes && n->files <= n->avail_files)
			continue;
		ap_log_error(-ENOSPC, "no room to install the files into '%s': its file system has "
				      "%" PRIu64 " bytes and %" PRIu64 " inodes free, this apply needs "
				      "%" PRIu64 " and %" PRIu64, n->dir, n->avail_bytes,
			     n->avail_files, n->bytes, n->files);
		if (!c->error)
			c->error = -ENOSPC;
	}
	return 0;
}

int ap_install_preflight(const struct ap_plan *p, char *const *owned,
			 const struct ap_install_source *src, unsigned flags, struct ap_preflight *ret)
{
	struct preflight c = { .p = p, .owned = owned, .src = src, .flags = flags, .out = ret };
	int r = 0;

	*ret = (struct ap_preflight){ 0 };
	for (size_t i = 0; r >= 0 && i < p->n_files; i++) {
		const struct ap_file_op *f = &p->files[i];

		if (f->install)
			r = check_owner(&c, f);
		if (r >= 0 && f->install)
			r = preflight_dest(&c, f, f->dest, f->root_len, true);
		if (r >= 0 && f->remove && f->install && strcmp(f->old_dest, f->dest) != 0 &&
		    ap_strv_contains(owned, f->old_dest))
			r = preflight_dest(&c, f, f->old_dest, f->old_root_len, false);
		else if (r >= 0 && f->remove && !f->install && ap_strv_contains(owned, f->dest))
			r = preflight_dest(&c, f, f->dest, f->root_len, false);
	}
	if (r >= 0)
		r = check_fs_space(&c);
	ap_strv_free(c.probed);
	for (size_t i = 0; i < c.n_fs; i++)
		free(c.fs[i].dir);
	free(c.fs);
	if (r < 0)
		return r;
	return c.refused ? -EINVAL : c.error;
}

void ap_preflight_clear(struct ap_preflight *p)
{
	ap_strv_free(p->adopt);
	*p = (struct ap_preflight){ 0 };
}
