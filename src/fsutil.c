/* File primitives for the modules that write: opening beneath a root, creating directory
 * chains without following symlinks, the one atomic replace, reads, unlinks, recursive
 * removal of our own temp dirs and mkdtemp. Every fd is O_CLOEXEC.
 *
 * Deliberately not here: whether root may trust a directory someone else could have
 * written (fsutil-safe.c), logging (the caller knows which file of which deploy failed and
 * logs once), policy about which paths are allowed (config/plan decide), backups and
 * rollback (install.c), and any rename other than the one in ap_fs_write_atomic() and the
 * move-aside of an unreadable state file. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fsutil-private.h"
#include "fsutil.h"
#include "util.h"

/* Intermediate directories are opened for reading (not O_PATH) so the final fd can also be
 * fsync()ed and used with fdopendir(); O_NOFOLLOW makes a symlink fail with ELOOP. */
#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/* openat2 may report EAGAIN when a concurrent rename or mount raced with a RESOLVE_BENEATH
 * lookup; the kernel asks us to retry. A few times is plenty. */
#define OPENAT2_RETRIES 8

/* ".#" + name + "." + 6 random characters must fit in NAME_MAX. */
#define TEMP_SUFFIX_LEN 6
#define TEMP_NAME_MAX (NAME_MAX - 3 - TEMP_SUFFIX_LEN)
#define TEMP_TRIES 64

/* Copies the next '/'-separated component of *p into name and moves *p past it and its
 * slashes. Returns the component length, 0 at the end, -ENAMETOOLONG. */
int fs_next_component(const char **p, char name[static NAME_MAX + 1])
{
	const char *s = *p, *e;
	size_t n;

	while (*s == '/')
		s++;
	e = strchrnul(s, '/');
	n = (size_t)(e - s);
	if (n > NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(name, s, n);
	name[n] = '\0';
	while (*e == '/')
		e++;
	*p = e;
	return (int)n;
}

static bool has_dotdot(const char *p)
{
	char name[NAME_MAX + 1];
	int n;

	while ((n = fs_next_component(&p, name)) > 0)
		if (fs_is_dotdot(name))
			return true;
	return false;
}

/* Splits path into its directory part (possibly "") and its last component (possibly "",
 * when path ends in '/'), both pointing into buf. */
static int split_path(const char *path, char buf[static PATH_MAX], const char **ret_dir,
		      const char **ret_base)
{
	size_t n = strlen(path);
	char *slash;

	if (n >= PATH_MAX)
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	slash = strrchr(buf, '/');
	if (!slash) {
		*ret_dir = "";
		*ret_base = buf;
		return 0;
	}
	*slash = '\0';
	*ret_dir = slash == buf ? "/" : buf;
	*ret_base = slash + 1;
	return 0;
}

/* openat(O_DIRECTORY|O_NOFOLLOW) on a symlink fails with ENOTDIR (O_DIRECTORY is checked
 * first); tell the caller -ELOOP as openat2 would. Only the errno depends on this
 * fstatat, not the safety. */
static int nofollow_errno(int dirfd, const char *name)
{
	struct stat st;
	int r = -errno;

	if (r == -ENOTDIR && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode))
		return -ELOOP;
	return r;
}

/* Opens directory name in dirfd without following a symlink. With create, a missing one is
 * made first; another process creating it in between (EEXIST) is as good as us doing it. */
int fs_open_dir_step(int dirfd, const char *name, int create, mode_t mode)
{
	int fd = openat(dirfd, name, DIR_FLAGS);

	if (fd >= 0)
		return fd;
	if (errno != ENOENT || !create)
		return nofollow_errno(dirfd, name);
	if (mkdirat(dirfd, name, mode) < 0 && errno != EEXIST)
		return -errno;
	fd = openat(dirfd, name, DIR_FLAGS);
	return fd >= 0 ? fd : nofollow_errno(dirfd, name);
}

/* Opens start (relative to dirfd), then every component of rel as a directory, one
 * openat() at a time so that no symlink is followed. "." components are skipped, ".." is
 * refused (callers that want another errno check first). Returns the last fd. */
static int walk_dirs(int dirfd, const char *start, const char *rel, int create, mode_t mode)
{
	char name[NAME_MAX + 1];
	int cur, n;

	cur = openat(dirfd, start, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return -errno;
	while ((n = fs_next_component(&rel, name)) > 0) {
		int next;

		if (fs_is_dot(name))
			continue;
		next = fs_is_dotdot(name) ? -EINVAL : fs_open_dir_step(cur, name, create, mode);
		(void)close(cur); /* read-only directory fd: nothing to lose */
		if (next < 0)
			return next;
		cur = next;
	}
	if (n < 0) {
		(void)close(cur);
		return n;
	}
	return cur;
}

/* O_PATH|O_NOFOLLOW returns the symlink itself; openat2 only does that when the caller asked
 * for O_NOFOLLOW, so without it a symlink is refused like openat2 would. Consumes fd on error. */
static int refuse_symlink_fd(int fd)
{
	struct stat st;
	int r = fstat(fd, &st) < 0 ? -errno : S_ISLNK(st.st_mode) ? -ELOOP : fd;

	if (r < 0)
		(void)close(fd);
	return r;
}

/* Fallback for kernels before 5.6, which lack openat2 (ENOSYS). Walking one component at a
 * time with O_NOFOLLOW gives the same guarantee as RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, but
 * only because we refuse ".." outright: without the kernel's help we cannot tell whether a
 * ".." stays beneath dirfd once a concurrent rename moves a directory. Stricter than
 * openat2, never looser. Directories on the way need read permission (we run as root). */
static int open_beneath_walk(int dirfd, const char *path, int flags, mode_t mode)
{
	char buf[PATH_MAX];
	const char *dir, *base;
	int dfd, fd, r;

	if (path[0] == '/' || has_dotdot(path))
		return -EXDEV;
	r = split_path(path, buf, &dir, &base);
	if (r < 0)
		return r;
	dfd = walk_dirs(dirfd, ".", dir, 0, 0);
	if (dfd < 0)
		return dfd;
	/* "a/b/" names b itself; opening "." of it keeps the trailing-slash semantics. */
	fd = openat(dfd, *base ? base : ".", flags | O_NOFOLLOW | O_CLOEXEC, mode);
	r = fd < 0 ? nofollow_errno(dfd, *base ? base : ".") : fd;
	(void)close(dfd);
	if (r >= 0 && (flags & O_PATH) && !(flags & O_NOFOLLOW))
		return refuse_symlink_fd(r);
	return r;
}

static int openat2_beneath(int dirfd, const char *path, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)(unsigned)(flags | O_CLOEXEC),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd = -1;

	/* openat2 rejects a non-zero mode unless a file may be created. */
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
		how.mode = mode;
	for (int i = 0; i < OPENAT2_RETRIES; i++) {
		fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
		if (fd >= 0 || errno != EAGAIN)
			break;
	}
	return fd >= 0 ? (int)fd : -errno;
}

int ap_fs_open_beneath(int dirfd, const char *path, int flags, mode_t mode)
{
	/* Remembered so that an old kernel is not asked again for every file. */
	static bool no_openat2;
	int r;

	if (!path)
		return -EINVAL;
	if (!*path)
		return -ENOENT;
	if (!no_openat2) {
		r = openat2_beneath(dirfd, path, flags, mode);
		if (r != -ENOSYS)
			return r;
		no_openat2 = true;
	}
	return open_beneath_walk(dirfd, path, flags, mode);
}

int ap_fs_open_dir(const char *abs_path, int create, mode_t mode)
{
	/* Only normalised paths: a ".." or "." in a configured root is a config mistake, and
	 * refusing it keeps the walk below free of special cases. */
	if (!abs_path || !ap_path_is_normalized_absolute(abs_path))
		return -EINVAL;
	return walk_dirs(AT_FDCWD, "/", abs_path + 1, create, mode);
}

int ap_fs_mkdirs_beneath(int dirfd, const char *dir, mode_t mode)
{
	if (!dir)
		return -EINVAL;
	/* "" and "." mean dirfd itself (a file at the top of the root); anything else must be a
	 * clean relative path, so ".." and absolute paths never reach the walk. */
	if (*dir && !fs_is_dot(dir) && !ap_path_is_safe_relative(dir))
		return -EINVAL;
	return walk_dirs(dirfd, ".", dir, 1, mode);
}

static bool is_single_component(const char *name)
{
	return name && *name && !strchr(name, '/') && !fs_is_dot(name) && !fs_is_dotdot(name) &&
	       strlen(name) <= NAME_MAX;
}

/* renameat() would replace a symlink rather than write through it, so this is not a
 * security check; it refuses to silently turn an operator's symlink or directory into a
 * file. Anything else that is not a regular file (directory, FIFO, device) is -EISDIR:
 * callers only need to tell "a symlink is in the way" from "this is not a file". */
static int check_replace_target(int dirfd, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISLNK(st.st_mode))
		return -ELOOP;
	if (!S_ISREG(st.st_mode))
		return -EISDIR;
	return 0;
}

/* Fills out with TEMP_SUFFIX_LEN characters. Uniqueness is enforced by O_EXCL; randomness
 * only makes the name unpredictable, so before the entropy pool is ready (early boot) a
 * pid/counter/clock mix is good enough. */
static void random_suffix(char out[static TEMP_SUFFIX_LEN + 1])
{
	static const char set[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	static unsigned long long counter;
	unsigned char b[TEMP_SUFFIX_LEN];

	if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
		unsigned long long v = ((unsigned long long)getpid() << 32) ^
				       (++counter * 0x9E3779B97F4A7C15ULL) ^
				       ap_now_monotonic_usec();

		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (unsigned char)(v >> (8 * i));
	}
	for (size_t i = 0; i < sizeof(b); i++)
		out[i] = set[b[i] % (sizeof(set) - 1)];
	out[TEMP_SUFFIX_LEN] = '\0';
}

/* Creates ".#name.XXXXXX" in dirfd with O_EXCL, so an existing file (or a planted
 * symlink) is never opened. The name is truncated to fit NAME_MAX. */
static int create_temp(int dirfd, const char *name, char tmp[static NAME_MAX + 1])
{
	size_t n = strlen(name);
	char suffix[TEMP_SUFFIX_LEN + 1];

	if (n > TEMP_NAME_MAX)
		n = TEMP_NAME_MAX;
	for (int i = 0; i < TEMP_TRIES; i++) {
		int fd;

		random_suffix(suffix);
		if (snprintf(tmp, NAME_MAX + 1, ".#%.*s.%s", (int)n, name, suffix) < 0)
			return -EINVAL;
		fd = openat(dirfd, tmp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t k = write(fd, p, len);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			return -EIO; /* cannot happen for regular files; avoid looping forever */
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

/* fchown before fchmod: changing the owner clears S_ISUID/S_ISGID (for root too, since
 * Linux 2.2.13), so the other order would lose a setuid bit the repo asked for. */
static int finish_temp(int fd, mode_t mode, uid_t uid, gid_t gid, bool sync)
{
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid) < 0)
		return -errno;
	if (fchmod(fd, mode & 07777) < 0)
		return -errno;
	if (sync && fsync(fd) < 0)
		return -errno;
	return 0;
}

/* fsync needs a readable fd; dirfd may be O_PATH or AT_FDCWD, so open "." of it anew. */
int ap_fs_sync_dir(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	(void)close(fd);
	return r;
}

int ap_fs_sync_fs(int fd)
{
	return syncfs(fd) < 0 ? -errno : 0;
}

int ap_fs_write_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
		       uid_t uid, gid_t gid)
{
	return ap_fs_write_atomic_flags(dirfd, name, data, len, mode, uid, gid, 0);
}

int ap_fs_write_atomic_flags(int dirfd, const char *name, const void *data, size_t len,
			     mode_t mode, uid_t uid, gid_t gid, unsigned flags)
{
	char tmp[NAME_MAX + 1];
	int fd, r;

	if (!is_single_component(name) || (!data && len > 0))
		return -EINVAL;
	r = check_replace_target(dirfd, name);
	if (r < 0)
		return r;
	fd = create_temp(dirfd, name, tmp);
	if (fd < 0)
		return fd;
	r = write_all(fd, data, len);
	if (r >= 0)
		r = finish_temp(fd, mode, uid, gid, !(flags & AP_FS_NO_SYNC));
	/* close() can be the first to report a write error (NFS, quotas). */
	if (close(fd) < 0 && r >= 0)
		r = -errno;
	if (r >= 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlinkat(dirfd, tmp, 0); /* already failing; keep the first error */
		return r;
	}
	/* The new content is in place; a failed directory fsync only means it may not survive
	 * a crash, which the caller must still hear about. */
	return flags & (AP_FS_NO_DIRSYNC | AP_FS_NO_SYNC) ? 0 : ap_fs_sync_dir(dirfd);
}

/* True for ".#<name>.XXXXXX" as create_temp makes it (name truncated to TEMP_NAME_MAX; any
 * name when name is NULL). */
static bool is_temp_name(const char *d, const char *name)
{
	size_t n = strlen(d), k;

	if (n < 2 + 1 + TEMP_SUFFIX_LEN || d[0] != '.' || d[1] != '#' ||
	    d[n - TEMP_SUFFIX_LEN - 1] != '.')
		return false;
	for (size_t i = n - TEMP_SUFFIX_LEN; i < n; i++)
		if (!isalnum((unsigned char)d[i]))
			return false;
	if (!name)
		return true;
	k = strlen(name);
	if (k > TEMP_NAME_MAX)
		k = TEMP_NAME_MAX;
	return n - 2 - 1 - TEMP_SUFFIX_LEN == k && strncmp(d + 2, name, k) == 0;
}

/* opendir of name in dirfd, with flags for the open. */
static int open_dir_stream(int dirfd, const char *name, int flags, DIR **ret)
{
	int fd = openat(dirfd, name, flags), r;

	if (fd < 0)
		return -errno;
	*ret = fdopendir(fd);
	if (!*ret) {
		r = -errno;
		(void)close(fd);
		return r;
	}
	return 0;
}

int ap_fs_remove_stale_temps(int dirfd, const char *name)
{
	int removed = 0, r;
	struct dirent *de;
	DIR *d;

	r = open_dir_stream(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, &d);
	if (r < 0)
		return r;
	while ((de = readdir(d))) {
		struct stat st;

		if (!is_temp_name(de->d_name, name) ||
		    fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (unlinkat(dirfd, de->d_name, 0) < 0 && errno != ENOENT) {
			r = -errno;
			break;
		}
		removed++;
	}
	(void)closedir(d);
	return r < 0 ? r : removed;
}

int ap_fs_probe_writable(int dirfd)
{
	char tmp[NAME_MAX + 1];
	int fd;

	(void)ap_fs_remove_stale_temps(dirfd, "autopull-probe");
	fd = create_temp(dirfd, "autopull-probe", tmp);
	if (fd < 0)
		return fd;
	(void)close(fd); /* empty and about to be removed */
	/* Another autopull (another scope or state directory) probing the same directory may
	 * have removed it as a stale probe already: it was created, so the directory is
	 * writable all the same. */
	return unlinkat(dirfd, tmp, 0) < 0 && errno != ENOENT ? -errno : 0;
}

int ap_fs_move_aside(int dirfd, const char *name, const char *suffix)
{
	char to[NAME_MAX + 1];

	if (!is_single_component(name) || snprintf(to, sizeof(to), "%s%s", name,
						   suffix) >= (int)sizeof(to) ||
	    !is_single_component(to))
		return -EINVAL;
	if (renameat(dirfd, name, dirfd, to) < 0)
		return -errno;
	return ap_fs_sync_dir(dirfd);
}

/* Reads fd to EOF into a NUL-terminated buffer, failing with -EFBIG past max bytes. */
static int read_all(int fd, size_t max, char **ret, size_t *ret_len)
{
	struct ap_buf b = { 0 };
	char chunk[16384];
	int r = 0;

	for (;;) {
		ssize_t k = read(fd, chunk, sizeof(chunk));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			r = k < 0 ? -errno : 0;
			break;
		}
		if ((size_t)k > max - b.len) {
			r = -EFBIG;
			break;
		}
		r = ap_buf_append(&b, chunk, (size_t)k);
		if (r < 0)
			break;
	}
	if (r >= 0 && !b.data)
		r = ap_buf_append(&b, "", 0); /* an empty file still yields "" */
	if (r < 0) {
		ap_buf_clear(&b);
		return r;
	}
	*ret = b.data;
	if (ret_len)
		*ret_len = b.len;
	return 0;
}

int ap_fs_read_beneath(int dirfd, const char *path, size_t max, char **ret, size_t *ret_len)
{
	struct stat st;
	int fd, r;

	if (!ret)
		return -EINVAL;
	/* O_NONBLOCK so that a FIFO planted at path cannot make us wait for a writer. */
	fd = ap_fs_open_beneath(dirfd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW, 0);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (S_ISDIR(st.st_mode))
		r = -EISDIR;
	else if (!S_ISREG(st.st_mode))
		r = -EINVAL;
	else if ((unsigned long long)st.st_size > max)
		r = -EFBIG;
	else
		r = read_all(fd, max, ret, ret_len);
	(void)close(fd);
	return r;
}

int ap_fs_read_file(const char *abs_path, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_free_ char *dir = NULL;
	int dfd, r;

	if (!abs_path || abs_path[0] != '/')
		return -EINVAL;
	if (!(dir = ap_path_parent(abs_path)))
		return -ENOMEM;
	dfd = ap_fs_open_dir(dir, 0, 0);
	if (dfd < 0)
		return dfd;
	r = ap_fs_read_beneath(dfd, strrchr(abs_path, '/') + 1, max, ret, ret_len);
	(void)close(dfd);
	return r;
}

/* Opens the parent of a beneath-path: dirfd itself for "", else beneath dirfd. */
static int open_parent_beneath(int dirfd, const char *dir)
{
	int fd;

	if (!*dir) {
		fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	return ap_fs_open_beneath(dirfd, dir, O_RDONLY | O_DIRECTORY, 0);
}

/* Checks what name in pfd is, without following it: 0 regular, 1 missing, <0 refused. */
static int check_unlink_target(int pfd, const char *name)
{
	struct stat st;

	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 1 : -errno;
	if (S_ISLNK(st.st_mode))
		return -ELOOP;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	return 0;
}

int ap_fs_unlink_beneath(int dirfd, const char *path)
{
	char buf[PATH_MAX];
	const char *dir, *base;
	int pfd, r;

	if (!path || path[0] == '/')
		return -EINVAL;
	r = split_path(path, buf, &dir, &base);
	if (r < 0)
		return r;
	if (!is_single_component(base))
		return -EINVAL;
	pfd = open_parent_beneath(dirfd, dir);
	if (pfd < 0)
		return pfd == -ENOENT ? 0 : pfd; /* no parent, no file: nothing to do */
	r = check_unlink_target(pfd, base);
	if (r == 0 && unlinkat(pfd, base, 0) < 0)
		r = errno == ENOENT ? 1 : -errno; /* lost a race with another remover: fine */
	if (r == 0)
		r = fsync(pfd) < 0 ? -errno : 0;
	(void)close(pfd);
	return r > 0 ? 0 : r;
}

static int rm_entry(int dirfd, const char *name, const dev_t *dev);

/* Removes everything inside directory name of dirfd. Continues past errors (best effort)
 * and returns the first one. */
static int rm_children(int pfd, const char *name, dev_t dev)
{
	struct dirent *de;
	DIR *d;
	int fd, r = open_dir_stream(pfd, name, DIR_FLAGS, &d);

	if (r < 0)
		return r;
	fd = dirfd(d);
	for (;;) {
		int k;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno && r >= 0)
				r = -errno;
			break;
		}
		if (fs_is_dot(de->d_name) || fs_is_dotdot(de->d_name))
			continue;
		k = rm_entry(fd, de->d_name, &dev); /* fd is owned by d */
		if (k < 0 && r >= 0)
			r = k;
	}
	(void)closedir(d);
	return r;
}

/* Removes name in dirfd: a non-directory (symlinks included) is unlinked, never followed;
 * a directory is emptied first. dev is NULL at the top; below it, a directory on another
 * device (a mount point) is left alone like `rm --one-file-system` does, because a bind
 * mount inside a staging dir must not cost us the mounted tree. Recursion depth is the
 * tree depth, which is bounded for the trees autopull creates. */
static int rm_entry(int dirfd, const char *name, const dev_t *dev)
{
	struct stat st;
	int r;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
	if (dev && st.st_dev != *dev)
		return -EXDEV;
	r = rm_children(dirfd, name, st.st_dev);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && r >= 0)
		r = -errno;
	return r;
}

int ap_fs_rm_rf(const char *abs_path)
{
	char buf[PATH_MAX];
	const char *dir, *base;
	int pfd, r;

	if (!abs_path || abs_path[0] != '/')
		return -EINVAL;
	r = split_path(abs_path, buf, &dir, &base);
	if (r < 0)
		return r;
	/* Refuses "/", trailing slashes and "." / ".." as the thing to remove. */
	if (!is_single_component(base))
		return -EINVAL;
	/* The parent is a path autopull chose ($TMPDIR or a state dir), so following symlinks
	 * there is fine; only the tree itself is walked without following. */
	pfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return errno == ENOENT ? 0 : -errno;
	r = rm_entry(pfd, base, NULL);
	(void)close(pfd);
	return r;
}

/* umask may have taken bits off mkdtemp's 0700; the owner needs all three. The directory
 * is in a sticky $TMPDIR and was just created by us, so the path still names it. */
static int make_temp_dir(char *tmpl)
{
	if (!mkdtemp(tmpl))
		return -errno;
	if (chmod(tmpl, 0700) < 0) {
		int r = -errno;

		(void)rmdir(tmpl);
		return r;
	}
	return 0;
}

int ap_fs_mkdtemp(const char *prefix, char **ret)
{
	_cleanup_free_ char *p = NULL;
	const char *base;
	size_t n;
	int r;

	if (!prefix || strchr(prefix, '/') || !ret)
		return -EINVAL;
	/* secure_getenv: a setuid caller must not be steered by the invoking user's TMPDIR. A
	 * relative TMPDIR would depend on the cwd, so it is ignored too. */
	base = secure_getenv("TMPDIR");
	if (!base || base[0] != '/')
		base = "/tmp";
	n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		n--;
	if (n > PATH_MAX)
		return -ENAMETOOLONG;
	p = ap_strdupf("%.*s/%sXXXXXX", (int)n, base, prefix);
	if (!p)
		return -ENOMEM;
	r = make_temp_dir(p);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(p);
	return 0;
}
