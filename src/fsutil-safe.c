/* Whether root may trust a path that someone else could have written: the directories from
 * "/" down, each owned by root or the trusted user and writable by nobody else, with the
 * symlinks an operator configured followed only when root or the caller made them
 * (systemd-tmpfiles' "unsafe path transition", sshd's StrictModes); and the one sentence
 * that names the fix. It deliberately opens nothing beneath a repository's paths and writes
 * nothing: the primitives that do are fsutil.c's. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil-private.h"
#include "fsutil.h"
#include "util.h"

/* Symlinks followed in one configured directory, as the kernel's MAXSYMLINKS. */
#define AP_FS_MAX_HOPS 40

bool ap_fs_dir_is_safe(const struct stat *st, uid_t trusted)
{
	if (st->st_uid != 0 && st->st_uid != trusted)
		return false;
	/* /tmp: others may add entries but only remove their own, and root owns it. */
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return (st->st_mode & S_ISVTX) && st->st_uid == 0;
	return true;
}

/* Appends rel to the absolute, symlink-free path in out, folding "." and "..". Folding ".."
 * by hand is right only because every component already in out is a real directory. */
static int append_lexically(char out[static PATH_MAX], const char *rel)
{
	char name[NAME_MAX + 1];
	int n;

	while ((n = fs_next_component(&rel, name)) > 0) {
		size_t len = strlen(out);

		if (fs_is_dot(name))
			continue;
		if (fs_is_dotdot(name)) {
			char *slash = strrchr(out, '/');

			slash[slash == out ? 1 : 0] = '\0';
			continue;
		}
		if (len + 1 + (size_t)n >= PATH_MAX)
			return -ENAMETOOLONG;
		if (len > 1)
			out[len++] = '/';
		memcpy(out + len, name, (size_t)n + 1);
	}
	return n;
}

/* The symlink name in the directory dfd (whose stat is dst) may be followed: only the caller
 * (or root) could have put it there, in a directory nobody else can change. */
static bool link_is_trusted(int dfd, const struct stat *dst, const char *name)
{
	struct stat st;

	return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode) &&
	       (st.st_uid == 0 || st.st_uid == geteuid()) && ap_fs_dir_is_safe(dst, geteuid());
}

/* path[0..end) names the symlink name in dfd: replaces it by its target in path (made
 * absolute and folded), keeping what follows, and moves *follow to the same component. */
static int splice_link(int dfd, const char *name, char path[static PATH_MAX], size_t start,
		       size_t end, size_t *follow)
{
	char target[PATH_MAX], out[PATH_MAX], rest[PATH_MAX];
	ssize_t k = readlinkat(dfd, name, target, sizeof(target) - 1);
	size_t keep;
	int r;

	if (k <= 0)
		return k < 0 ? -errno : -ELOOP;
	target[k] = '\0';
	snprintf(rest, sizeof(rest), "%s", path + end);
	/* out starts as the directory the link is in ("/" for an absolute target) */
	snprintf(out, PATH_MAX, "%.*s", target[0] == '/' || start <= 1 ? 1 : (int)start - 1, path);
	r = append_lexically(out, target);
	if (r < 0)
		return r;
	keep = *follow > end ? *follow - end : 0;
	*follow = strlen(out) + keep;
	r = append_lexically(out, rest);
	if (r < 0)
		return r;
	memcpy(path, out, strlen(out) + 1);
	return 0;
}

/* Checks the directory fd (path[0..end)) for ap_fs_open_dir_safe: -EPERM and *u filled when it
 * is not safe. */
static int check_dir(int fd, const char *path, size_t end, uid_t *trusted, unsigned flags,
		     struct ap_fs_unsafe *u)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (flags & AP_FS_WALK_NO_CHECK)
		return 0;
	if ((flags & AP_FS_WALK_ANY_USER) && *trusted == (uid_t)-1 && st.st_uid != 0)
		*trusted = st.st_uid;
	if (st.st_uid != 0)
		u->tree_uid = st.st_uid;
	if (ap_fs_dir_is_safe(&st, *trusted))
		return 0;
	snprintf(u->path, sizeof(u->path), "%.*s", end ? (int)end : 1, end ? path : "/");
	u->uid = st.st_uid;
	u->mode = st.st_mode & 07777;
	return -EPERM;
}

int ap_fs_open_dir_safe(const char *abs_path, size_t follow_len, uid_t trusted, unsigned flags,
			mode_t mode, struct ap_fs_unsafe *u)
{
	char path[PATH_MAX], name[NAME_MAX + 1];
	size_t follow = follow_len;
	int hops = 0;

	*u = (struct ap_fs_unsafe){ .uid = (uid_t)-1 };
	if (!abs_path || !ap_path_is_normalized_absolute(abs_path))
		return -EINVAL;
	memcpy(path, abs_path, strlen(abs_path) + 1);
restart:;
	uid_t t = trusted;
	const char *p = path + 1;
	int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0, r;

	u->tree_uid = 0;
	if (fd < 0)
		return -errno;
	r = check_dir(fd, path, 0, &t, flags, u);
	for (;;) {
		size_t start = (size_t)(p - path), end;
		struct stat dst;
		int next;

		if (r < 0 || (n = fs_next_component(&p, name)) <= 0)
			break;
		end = start + (size_t)n;
		next = fs_open_dir_step(fd, name, flags & AP_FS_WALK_CREATE, mode);
		if (next == -ELOOP && end <= follow && ++hops <= AP_FS_MAX_HOPS &&
		    fstat(fd, &dst) == 0 && link_is_trusted(fd, &dst, name)) {
			r = splice_link(fd, name, path, start, end, &follow);
			(void)close(fd);
			if (r < 0)
				return r;
			goto restart;
		}
		if (next < 0) {
			snprintf(u->path, sizeof(u->path), "%.*s", (int)end, path);
			r = next;
			break;
		}
		(void)close(fd);
		fd = next;
		r = check_dir(fd, path, end, &t, flags, u);
	}
	if (r >= 0 && n < 0)
		r = n;
	if (r < 0) {
		(void)close(fd);
		return r;
	}
	return fd;
}

int ap_fs_unsafe_describe(const struct ap_fs_unsafe *u, int r, char **ret)
{
	char buf[1024];
	struct passwd pw, *pwr = NULL;

	if (r == -ELOOP)
		*ret = ap_strdupf("'%s' is a symlink that root did not make; refusing to follow it",
				  u->path);
	else if (r != -EPERM)
		*ret = ap_strdupf("cannot open '%s': %s", u->path, strerror(-r));
	else if (u->mode & (S_IWGRP | S_IWOTH))
		*ret = ap_strdupf("directory '%s' can be written by %s (mode %04o); fix: chmod go-w '%s'",
				  u->path, u->mode & S_IWOTH ? "anyone" : "its group",
				  (unsigned)u->mode, u->path);
	else {
		if (getpwuid_r(u->uid, &pw, buf, sizeof(buf), &pwr) != 0)
			pwr = NULL;
		*ret = ap_strdupf("directory '%s' is owned by %s (uid %u), who can swap what lies "
				  "below it", u->path, pwr ? pwr->pw_name : "an unknown user",
				  (unsigned)u->uid);
	}
	return *ret ? 0 : -ENOMEM;
}

/* The directories from "/" to dir, above what names (path): -EPERM and *ret_msg with the fix. */
static int check_dirs(const char *what, const char *path, const char *dir, char **ret_msg)
{
	_cleanup_free_ char *why = NULL;
	struct ap_fs_unsafe u;
	int fd = ap_fs_open_dir_safe(dir, 0, geteuid(), 0, 0, &u);

	if (fd >= 0) {
		(void)close(fd);
		return 0;
	}
	if (fd != -EPERM)
		return 0; /* missing (made later) or a symlink: whoever opens it refuses it */
	if (u.mode & (S_IWGRP | S_IWOTH))
		why = ap_strdupf("directory '%s' can be written by %s (mode %04o); fix: chmod go-w '%s'",
				 u.path, u.mode & S_IWOTH ? "anyone" : "its group",
				 (unsigned)u.mode,
				 u.path);
	else
		why = ap_strdupf("directory '%s' is owned by uid %u; fix: chown %u '%s'", u.path,
				 (unsigned)u.uid, (unsigned)geteuid(), u.path);
	*ret_msg = why ? ap_strdupf("%s '%s': %s", what, path, why) : NULL;
	return *ret_msg ? -EPERM : -ENOMEM;
}

int ap_fs_check_parents(const char *what, const char *dir, char **ret_msg)
{
	_cleanup_free_ char *parent = NULL;

	if (!ap_path_is_normalized_absolute(dir))
		return -EINVAL;
	parent = ap_path_parent(dir);
	return parent ? check_dirs(what, dir, parent, ret_msg) : -ENOMEM;
}

int ap_fs_check_file(const char *what, const char *path, unsigned flags, char **ret_msg)
{
	_cleanup_free_ char *real = realpath(path, NULL);
	bool private = flags & AP_FS_FILE_PRIVATE;
	mode_t bad = private ? 0077 : flags & AP_FS_FILE_SECRET ? 0027 : 0022;
	struct stat st;

	if (!real || stat(real, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) && private)
		*ret_msg = ap_strdupf("%s '%s' is not a regular file", what, path);
	else if ((st.st_uid != 0 || private) && st.st_uid != geteuid())
		*ret_msg = ap_strdupf("%s '%s' is owned by uid %u, not by uid %u; fix: chown %u '%s'",
				      what, path, (unsigned)st.st_uid, (unsigned)geteuid(),
				      (unsigned)geteuid(), real);
	else if (st.st_mode & bad)
		*ret_msg = ap_strdupf("%s '%s' can be %s by others (mode %04o); fix: chmod %s '%s'",
				      what, path, flags & (AP_FS_FILE_SECRET | AP_FS_FILE_PRIVATE)
							? "read" : "written",
				      (unsigned)(st.st_mode & 07777),
				      private ? "0600" : flags & AP_FS_FILE_SECRET ? "g-w,o-rwx" : "go-w",
				      real);
	else
		return ap_fs_check_parents(what, real, ret_msg);
	return *ret_msg ? -EPERM : -ENOMEM;
}
