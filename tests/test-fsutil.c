/* Tests for fsutil.c against the real kernel: every test gets its own temp dir
 * made by ap_fs_mkdtemp() and removed by ap_fs_rm_rf(). As root, the -ENOSPC test mounts a
 * small tmpfs in a private mount namespace, and the openat2 fallback is exercised in a forked
 * child whose seccomp filter makes openat2 fail with ENOSYS like a pre-5.6 kernel.
 *
 * Not covered here: callers' policies (install.c, state.c have their own tests). */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <cmocka.h>

#include "fsutil.h"
#include "util.h"

#define SEC 1000000ULL

struct fixture {
	char *dir; /* absolute path of the test's temp dir */
	int fd;    /* O_RDONLY fd of dir */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || ap_fs_mkdtemp("test-fsutil-", &f->dir) < 0)
		return -1;
	f->fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->fd < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int r;

	(void)close(f->fd);
	r = ap_fs_rm_rf(f->dir);
	free(f->dir);
	free(f);
	return r < 0 ? -1 : 0;
}

static void put_file(int dfd, const char *name, const char *content)
{
	int fd = openat(dfd, name, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
	size_t n = strlen(content);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, n), (ssize_t)n);
	assert_int_equal(close(fd), 0);
}

/* Asserts that name in dfd holds exactly content. */
static void assert_content(int dfd, const char *name, const char *content)
{
	_cleanup_free_ char *data = NULL;
	size_t len = 0;

	assert_int_equal(ap_fs_read_beneath(dfd, name, 1 << 24, &data, &len), 0);
	assert_int_equal(len, strlen(content));
	assert_string_equal(data, content);
}

/* Number of ".#*" temp files left in dfd. */
static int count_temp_files(int dfd)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
	struct dirent *de;
	DIR *d;

	assert_true(fd >= 0);
	d = fdopendir(fd);
	assert_non_null(d);
	while ((de = readdir(d)))
		if (ap_startswith(de->d_name, ".#"))
			n++;
	assert_int_equal(closedir(d), 0);
	return n;
}

static char *path_in(const struct fixture *f, const char *rel)
{
	char *p = ap_strdupf("%s/%s", f->dir, rel);

	assert_non_null(p);
	return p;
}

/* A tree used by several tests: a/b/f ("hello"), real/f, link -> real, abs -> /etc. */
static void make_tree(int dfd)
{
	assert_int_equal(mkdirat(dfd, "a", 0755), 0);
	assert_int_equal(mkdirat(dfd, "a/b", 0755), 0);
	put_file(dfd, "a/b/f", "hello");
	assert_int_equal(mkdirat(dfd, "real", 0755), 0);
	put_file(dfd, "real/f", "real");
	assert_int_equal(symlinkat("real", dfd, "link"), 0);
	assert_int_equal(symlinkat("/etc", dfd, "abs"), 0);
}

/* ---- ap_fs_open_beneath ---- */

static void test_open_beneath_refuses_escape(void **state)
{
	struct fixture *f = *state;

	make_tree(f->fd);
	assert_int_equal(ap_fs_open_beneath(f->fd, "../x", O_RDONLY, 0), -EXDEV);
	assert_int_equal(ap_fs_open_beneath(f->fd, "a/../../x", O_RDONLY, 0), -EXDEV);
	assert_int_equal(ap_fs_open_beneath(f->fd, "/etc/passwd", O_RDONLY, 0), -EXDEV);
}

static void test_open_beneath_refuses_symlinks(void **state)
{
	struct fixture *f = *state;

	make_tree(f->fd);
	assert_int_equal(ap_fs_open_beneath(f->fd, "link/f", O_RDONLY, 0), -ELOOP);
	assert_int_equal(ap_fs_open_beneath(f->fd, "link", O_RDONLY, 0), -ELOOP);
	assert_int_equal(ap_fs_open_beneath(f->fd, "abs/passwd", O_RDONLY, 0), -ELOOP);
	assert_int_equal(ap_fs_open_beneath(f->fd, "/proc/self/root/etc/passwd", O_RDONLY, 0),
			 -EXDEV);
}

static void test_open_beneath_opens(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	int fd;

	make_tree(f->fd);
	fd = ap_fs_open_beneath(f->fd, "a/b/f", O_RDONLY, 0);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(close(fd), 0);
	fd = ap_fs_open_beneath(f->fd, "a/new", O_CREAT | O_EXCL | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(close(fd), 0);
	assert_int_equal(ap_fs_open_beneath(f->fd, "missing", O_RDONLY, 0), -ENOENT);
	assert_int_equal(ap_fs_open_beneath(f->fd, "", O_RDONLY, 0), -ENOENT);
}

/* Runs in a child whose openat2 returns ENOSYS; returns the failing line or 0. */
#define CHECK(c)                                                                               \
	do {                                                                                   \
		if (!(c)) {                                                                    \
			fprintf(stderr, "fallback check failed: line %d: %s\n", __LINE__, #c); \
			return 1;                                                              \
		}                                                                              \
	} while (0)

static int fallback_checks(int dfd)
{
	struct stat st;
	int fd;

	CHECK(syscall(SYS_openat2, dfd, "a", NULL, 0) < 0 && errno == ENOSYS);
	CHECK(ap_fs_open_beneath(dfd, "../x", O_RDONLY, 0) == -EXDEV);
	CHECK(ap_fs_open_beneath(dfd, "/etc/passwd", O_RDONLY, 0) == -EXDEV);
	/* Stricter than openat2 by design: no ".." at all. */
	CHECK(ap_fs_open_beneath(dfd, "a/../a/b/f", O_RDONLY, 0) == -EXDEV);
	CHECK(ap_fs_open_beneath(dfd, "link/f", O_RDONLY, 0) == -ELOOP);
	CHECK(ap_fs_open_beneath(dfd, "link", O_RDONLY, 0) == -ELOOP);
	CHECK(ap_fs_open_beneath(dfd, "link", O_PATH, 0) == -ELOOP);
	CHECK(ap_fs_open_beneath(dfd, "abs/passwd", O_RDONLY, 0) == -ELOOP);
	CHECK(ap_fs_open_beneath(dfd, "a/b/f/", O_RDONLY, 0) == -ENOTDIR);
	CHECK(ap_fs_open_beneath(dfd, "nope/f", O_RDONLY, 0) == -ENOENT);
	fd = ap_fs_open_beneath(dfd, "a/./b//f", O_RDONLY, 0);
	CHECK(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC));
	CHECK(close(fd) == 0);
	fd = ap_fs_open_beneath(dfd, "a/b/", O_RDONLY | O_DIRECTORY, 0);
	CHECK(fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode));
	CHECK(close(fd) == 0);
	fd = ap_fs_open_beneath(dfd, "a/new", O_CREAT | O_EXCL | O_WRONLY, 0600);
	CHECK(fd >= 0 && close(fd) == 0);
	CHECK(ap_fs_unlink_beneath(dfd, "link/f") == -ELOOP);
	CHECK(ap_fs_unlink_beneath(dfd, "a/new") == 0);
	return 0;
}

static int deny_openat2(void)
{
	struct sock_filter insns[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = ELEMENTSOF(insns), .filter = insns };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
		perror("seccomp");
		return -1;
	}
	return 0;
}

static void test_open_beneath_fallback_without_openat2(void **state)
{
	struct fixture *f = *state;
	pid_t pid;
	int st;

	make_tree(f->fd);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(deny_openat2() < 0 ? 2 : fallback_checks(f->fd));
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* ---- ap_fs_open_dir, ap_fs_mkdirs_beneath ---- */

static void test_open_dir(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *deep = path_in(f, "x/y/z"), *dbl = path_in(f, "x//y");
	_cleanup_free_ char *dots = path_in(f, "x/../x"), *via = path_in(f, "link/sub");
	_cleanup_free_ char *file = path_in(f, "a/b/f"), *missing = path_in(f, "nope");
	struct stat st;
	int fd;

	make_tree(f->fd);
	fd = ap_fs_open_dir(deep, 1, 0755);
	assert_true(fd >= 0);
	assert_int_equal(close(fd), 0);
	assert_int_equal(fstatat(f->fd, "x/y/z", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISDIR(st.st_mode));
	fd = ap_fs_open_dir(deep, 0, 0);
	assert_true(fd >= 0);
	assert_int_equal(close(fd), 0);
	assert_int_equal(ap_fs_open_dir(dbl, 1, 0755), -EINVAL);
	assert_int_equal(ap_fs_open_dir(dots, 1, 0755), -EINVAL);
	assert_int_equal(ap_fs_open_dir("relative/dir", 1, 0755), -EINVAL);
	assert_int_equal(ap_fs_open_dir(via, 1, 0755), -ELOOP);
	assert_int_equal(fstatat(f->fd, "real/sub", &st, 0), -1);
	assert_int_equal(ap_fs_open_dir(file, 0, 0), -ENOTDIR);
	assert_int_equal(ap_fs_open_dir(missing, 0, 0), -ENOENT);
	fd = ap_fs_open_dir("/", 0, 0);
	assert_true(fd >= 0);
	assert_int_equal(close(fd), 0);
}

static void test_dir_is_safe(void **state)
{
	struct stat st = { .st_uid = 1000, .st_mode = S_IFDIR | 0755 };

	(void)state;
	assert_true(ap_fs_dir_is_safe(&st, 1000));
	assert_false(ap_fs_dir_is_safe(&st, (uid_t)-1)); /* another user's */
	st.st_mode = S_IFDIR | 01777;
	assert_false(ap_fs_dir_is_safe(&st, 1000)); /* sticky, but not root's */
	st.st_uid = 0;
	assert_true(ap_fs_dir_is_safe(&st, (uid_t)-1)); /* /tmp */
	st.st_mode = S_IFDIR | 0775;
	assert_false(ap_fs_dir_is_safe(&st, (uid_t)-1));
	st.st_mode = S_IFDIR | 0757;
	assert_false(ap_fs_dir_is_safe(&st, 0));
	st.st_mode = S_IFDIR | 0700;
	assert_true(ap_fs_dir_is_safe(&st, (uid_t)-1));
}

static void test_open_dir_safe(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *w = path_in(f, "w/sub"), *wdir = path_in(f, "w");
	_cleanup_free_ char *via = path_in(f, "link/sub"), *lnk = path_in(f, "link");
	_cleanup_free_ char *dots = path_in(f, "dots"), *miss = path_in(f, "real/m/n");
	_cleanup_free_ char *realsub = path_in(f, "real/sub"), *m = path_in(f, "real/m");
	struct ap_fs_unsafe u;
	struct stat st;
	size_t at_link = strlen(lnk);
	int fd;

	make_tree(f->fd);
	assert_int_equal(mkdirat(f->fd, "real/sub", 0755), 0);
	assert_int_equal(mkdirat(f->fd, "w", 0755), 0);
	assert_int_equal(fchmodat(f->fd, "w", 0777, 0), 0);
	assert_int_equal(mkdirat(f->fd, "w/sub", 0755), 0);
	assert_int_equal(symlinkat("x/../real/sub", f->fd, "dots"), 0);

	/* others can write w: refused, named, with its mode */
	assert_int_equal(ap_fs_open_dir_safe(w, 0, geteuid(), 0, 0, &u), -EPERM);
	assert_string_equal(u.path, wdir);
	assert_int_equal(u.mode, 0777);
	/* no owner check: only symlinks matter */
	fd = ap_fs_open_dir_safe(w, 0, geteuid(), AP_FS_WALK_NO_CHECK, 0, &u);
	assert_true(fd >= 0);
	assert_int_equal(close(fd), 0);

	/* a symlink below the configured part is refused and named */
	assert_int_equal(ap_fs_open_dir_safe(via, 0, geteuid(), 0, 0, &u), -ELOOP);
	assert_string_equal(u.path, lnk);
	/* within it, one the caller made is followed and its target walked */
	fd = ap_fs_open_dir_safe(via, at_link, geteuid(), 0, 0, &u);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(close(fd), 0);
	assert_int_equal(lstat(realsub, &(struct stat){ 0 }), 0);
	/* a relative target with ".." is folded by name against the link's (real) directory,
	 * then walked and checked like any other path */
	fd = ap_fs_open_dir_safe(dots, strlen(dots), geteuid(), 0, 0, &u);
	assert_true(fd >= 0);
	assert_int_equal(close(fd), 0);
	fd = ap_fs_open_dir_safe(miss, 0, geteuid(), 0, 0, &u);
	assert_int_equal(fd, -ENOENT);
	assert_string_equal(u.path, m);
	fd = ap_fs_open_dir_safe(miss, 0, geteuid(), AP_FS_WALK_CREATE, 0700, &u);
	assert_true(fd >= 0);
	assert_int_equal(close(fd), 0);
	assert_int_equal(ap_fs_open_dir_safe("relative", 0, 0, 0, 0, &u), -EINVAL);
}

static void test_mkdirs_beneath(void **state)
{
	struct fixture *f = *state;
	struct stat a, b;
	mode_t old = umask(022);
	int fd;

	make_tree(f->fd);
	fd = ap_fs_mkdirs_beneath(f->fd, "m/n/o", 0750);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(fstatat(f->fd, "m/n/o", &b, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	assert_int_equal(b.st_mode & 07777, 0750);
	assert_int_equal(close(fd), 0);
	fd = ap_fs_mkdirs_beneath(f->fd, "m/n/o", 0750); /* existing: fine */
	assert_true(fd >= 0);
	assert_int_equal(close(fd), 0);
	fd = ap_fs_mkdirs_beneath(f->fd, "", 0750); /* the root itself */
	assert_true(fd >= 0);
	assert_int_equal(close(fd), 0);
	assert_int_equal(ap_fs_mkdirs_beneath(f->fd, "link/sub", 0755), -ELOOP);
	assert_int_equal(fstatat(f->fd, "real/sub", &b, 0), -1);
	assert_int_equal(ap_fs_mkdirs_beneath(f->fd, "abs/evil", 0755), -ELOOP);
	assert_int_equal(ap_fs_mkdirs_beneath(f->fd, "../escape", 0755), -EINVAL);
	assert_int_equal(ap_fs_mkdirs_beneath(f->fd, "m/../../escape", 0755), -EINVAL);
	assert_int_equal(ap_fs_mkdirs_beneath(f->fd, "/abs", 0755), -EINVAL);
	assert_int_equal(ap_fs_mkdirs_beneath(f->fd, "a/b/f/x", 0755), -ENOTDIR);
	umask(old);
}

/* ---- ap_fs_write_atomic ---- */

static void test_write_atomic_creates_and_replaces(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	assert_int_equal(ap_fs_write_atomic(f->fd, "conf", "one\n", 4, 0640, -1, -1), 0);
	assert_int_equal(fstatat(f->fd, "conf", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_content(f->fd, "conf", "one\n");
	assert_int_equal(ap_fs_write_atomic(f->fd, "conf", "two, longer\n", 12, 0600, -1, -1), 0);
	assert_content(f->fd, "conf", "two, longer\n");
	assert_int_equal(fstatat(f->fd, "conf", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(ap_fs_write_atomic(f->fd, "empty", NULL, 0, 0644, -1, -1), 0);
	assert_content(f->fd, "empty", "");
	assert_int_equal(count_temp_files(f->fd), 0);
}

static void test_write_atomic_owner_keeps_setuid(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	if (geteuid() != 0) {
		print_message("skipped: fchown to another user needs root (CI runs as root)\n");
		skip();
	}
	assert_int_equal(ap_fs_write_atomic(f->fd, "suid", "x", 1, 04755, 4242, 4343), 0);
	assert_int_equal(fstatat(f->fd, "suid", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_uid, 4242);
	assert_int_equal(st.st_gid, 4343);
	assert_int_equal(st.st_mode & 07777, 04755);
}

static void test_write_atomic_refuses(void **state)
{
	struct fixture *f = *state;
	char longname[NAME_MAX + 1];

	make_tree(f->fd);
	assert_int_equal(ap_fs_write_atomic(f->fd, "link", "x", 1, 0644, -1, -1), -ELOOP);
	assert_content(f->fd, "real/f", "real");
	assert_int_equal(ap_fs_write_atomic(f->fd, "real", "x", 1, 0644, -1, -1), -EISDIR);
	assert_int_equal(ap_fs_write_atomic(f->fd, "a/b", "x", 1, 0644, -1, -1), -EINVAL);
	assert_int_equal(ap_fs_write_atomic(f->fd, ".", "x", 1, 0644, -1, -1), -EINVAL);
	assert_int_equal(ap_fs_write_atomic(f->fd, "..", "x", 1, 0644, -1, -1), -EINVAL);
	assert_int_equal(ap_fs_write_atomic(f->fd, "", "x", 1, 0644, -1, -1), -EINVAL);
	assert_int_equal(mkfifoat(f->fd, "fifo", 0600), 0);
	assert_int_equal(ap_fs_write_atomic(f->fd, "fifo", "x", 1, 0644, -1, -1), -EISDIR);
	/* A name of NAME_MAX bytes still gets a (truncated) temp name that fits. */
	memset(longname, 'n', NAME_MAX);
	longname[NAME_MAX] = '\0';
	assert_int_equal(ap_fs_write_atomic(f->fd, longname, "x", 1, 0644, -1, -1), 0);
	assert_content(f->fd, longname, "x");
	assert_int_equal(count_temp_files(f->fd), 0);
}

/* A private mount namespace keeps the tmpfs (and its eventual leak, if a test dies) away
 * from the host; MS_PRIVATE first, or the mount would propagate back to the host. */
static void mount_small_tmpfs(const char *where)
{
	assert_int_equal(unshare(CLONE_NEWNS), 0);
	/* "none" rather than NULL: the kernel ignores both for MS_PRIVATE, valgrind 3.19
	 * reports a NULL type as an unaddressable read. */
	assert_int_equal(mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL), 0);
	assert_int_equal(mount("tmpfs", where, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0700"),
			 0);
}

static void test_write_atomic_enospc(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *mnt = path_in(f, "mnt");
	const size_t big = 1024 * 1024;
	_cleanup_free_ char *data = malloc(big);
	int dfd, r;

	if (geteuid() != 0) {
		print_message("skipped: the -ENOSPC test mounts a tmpfs and needs root; "
			      "CI runs as root so it runs there\n");
		skip();
	}
	assert_non_null(data);
	memset(data, 'z', big);
	assert_int_equal(mkdirat(f->fd, "mnt", 0700), 0);
	mount_small_tmpfs(mnt);
	dfd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	assert_int_equal(ap_fs_write_atomic(dfd, "target", "previous\n", 9, 0644, -1, -1), 0);
	r = ap_fs_write_atomic(dfd, "target", data, big, 0644, -1, -1);
	assert_int_equal(r, -ENOSPC);
	assert_content(dfd, "target", "previous\n");
	assert_int_equal(count_temp_files(dfd), 0);
	assert_int_equal(close(dfd), 0);
	assert_int_equal(umount2(mnt, 0), 0);
}

/* ---- ap_fs_read_beneath ---- */

static void test_read_beneath(void **state)
{
	struct fixture *f = *state;
	char *data = (char *)"untouched";
	size_t len = 0;

	make_tree(f->fd);
	assert_content(f->fd, "a/b/f", "hello");
	assert_int_equal(ap_fs_read_beneath(f->fd, "a/b/f", 4, &data, &len), -EFBIG);
	assert_int_equal(ap_fs_read_beneath(f->fd, "missing", 10, &data, &len), -ENOENT);
	assert_int_equal(ap_fs_read_beneath(f->fd, "link/f", 10, &data, &len), -ELOOP);
	assert_int_equal(ap_fs_read_beneath(f->fd, "a/b", 10, &data, &len), -EISDIR);
	assert_int_equal(ap_fs_read_beneath(f->fd, "../etc/passwd", 10, &data, &len), -EXDEV);
	assert_int_equal(mkfifoat(f->fd, "fifo", 0600), 0);
	assert_int_equal(ap_fs_read_beneath(f->fd, "fifo", 10, &data, &len), -EINVAL);
	assert_string_equal(data, "untouched"); /* out-params only written on success */
	assert_int_equal(ap_fs_read_beneath(f->fd, "a/b/f", 5, &data, NULL), 0);
	assert_string_equal(data, "hello");
	free(data);
}

/* A configured file by its absolute path: the last component is not followed. */
static void test_read_file(void **state)
{
	struct fixture *f = *state;
	char *data = NULL, *path = NULL;
	size_t len = 0;

	make_tree(f->fd);
	assert_int_equal(symlinkat("a/b/f", f->fd, "flink"), 0);
	assert_non_null(path = ap_strdupf("%s/a/b/f", f->dir));
	assert_int_equal(ap_fs_read_file(path, 4, &data, &len), -EFBIG);
	assert_int_equal(ap_fs_read_file(path, 5, &data, &len), 0);
	assert_string_equal(data, "hello");
	assert_int_equal(len, 5);
	free(data);
	free(path);
	assert_non_null(path = ap_strdupf("%s/flink", f->dir));
	assert_int_equal(ap_fs_read_file(path, 10, &data, &len), -ELOOP);
	free(path);
	assert_non_null(path = ap_strdupf("%s/missing", f->dir));
	assert_int_equal(ap_fs_read_file(path, 10, &data, &len), -ENOENT);
	free(path);
	assert_int_equal(ap_fs_read_file("relative/f", 10, &data, &len), -EINVAL);
	assert_int_equal(ap_fs_read_file("/a/../etc/passwd", 10, &data, &len), -EINVAL);
}

/* ---- ap_fs_unlink_beneath ---- */

static void test_unlink_beneath(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	make_tree(f->fd);
	assert_int_equal(ap_fs_unlink_beneath(f->fd, "missing"), 0);
	assert_int_equal(ap_fs_unlink_beneath(f->fd, "nodir/missing"), 0);
	assert_int_equal(ap_fs_unlink_beneath(f->fd, "a/b/f"), 0);
	assert_int_equal(fstatat(f->fd, "a/b/f", &st, AT_SYMLINK_NOFOLLOW), -1);
	assert_int_equal(ap_fs_unlink_beneath(f->fd, "link"), -ELOOP);
	assert_int_equal(fstatat(f->fd, "link", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(ap_fs_unlink_beneath(f->fd, "link/f"), -ELOOP);
	assert_int_equal(fstatat(f->fd, "real/f", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(ap_fs_unlink_beneath(f->fd, "a/b"), -EISDIR);
	assert_int_equal(ap_fs_unlink_beneath(f->fd, "../x"), -EXDEV);
	assert_int_equal(ap_fs_unlink_beneath(f->fd, "a/"), -EINVAL);
	assert_int_equal(ap_fs_unlink_beneath(f->fd, "/etc/passwd"), -EINVAL);
}

/* ---- ap_fs_rm_rf, ap_fs_mkdtemp ---- */

static void test_rm_rf(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *tree = path_in(f, "tree"), *outside = path_in(f, "outside");
	struct stat st;
	int t;

	assert_int_equal(mkdirat(f->fd, "outside", 0755), 0);
	put_file(f->fd, "outside/keep", "keep");
	t = ap_fs_mkdirs_beneath(f->fd, "tree/a/b/c", 0755);
	assert_true(t >= 0);
	put_file(t, "deep", "x");
	assert_int_equal(close(t), 0);
	put_file(f->fd, "tree/top", "x");
	assert_int_equal(mkdirat(f->fd, "tree/empty", 0700), 0);
	assert_int_equal(symlinkat(outside, f->fd, "tree/a/dirlink"), 0);
	assert_int_equal(symlinkat("../../outside/keep", f->fd, "tree/a/filelink"), 0);
	assert_int_equal(mkfifoat(f->fd, "tree/a/fifo", 0600), 0);
	assert_int_equal(ap_fs_rm_rf(tree), 0);
	assert_int_equal(fstatat(f->fd, "tree", &st, AT_SYMLINK_NOFOLLOW), -1);
	assert_int_equal(errno, ENOENT);
	assert_content(f->fd, "outside/keep", "keep");
	assert_int_equal(ap_fs_rm_rf(tree), 0); /* already gone */
	assert_int_equal(ap_fs_rm_rf("relative"), -EINVAL);
	assert_int_equal(ap_fs_rm_rf("/"), -EINVAL);
}

static void test_rm_rf_symlink_top(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *outside = path_in(f, "outside"), *l = path_in(f, "l");
	struct stat st;

	assert_int_equal(mkdirat(f->fd, "outside", 0755), 0);
	put_file(f->fd, "outside/keep", "keep");
	assert_int_equal(symlink(outside, l), 0);
	assert_int_equal(ap_fs_rm_rf(l), 0);
	assert_int_equal(fstatat(f->fd, "l", &st, AT_SYMLINK_NOFOLLOW), -1);
	assert_content(f->fd, "outside/keep", "keep");
}

static void test_mkdtemp(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *tmpdir = ap_strdupf("%s//", f->dir), *want = path_in(f, "pfx-");
	char *p = NULL;
	struct stat st;
	mode_t old;

	assert_int_equal(setenv("TMPDIR", tmpdir, 1), 0);
	old = umask(0277); /* would leave mkdtemp's dir at 0500 */
	assert_int_equal(ap_fs_mkdtemp("pfx-", &p), 0);
	umask(old);
	assert_int_equal(unsetenv("TMPDIR"), 0);
	assert_true(ap_startswith(p, want));
	assert_int_equal(strlen(p), strlen(want) + 6);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(ap_fs_rm_rf(p), 0);
	free(p);
	assert_int_equal(ap_fs_mkdtemp("a/b", &p), -EINVAL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_open_beneath_refuses_escape),
		T(test_open_beneath_refuses_symlinks),
		T(test_open_beneath_opens),
		T(test_open_beneath_fallback_without_openat2),
		T(test_open_dir),
		T(test_dir_is_safe),
		T(test_open_dir_safe),
		T(test_mkdirs_beneath),
		T(test_write_atomic_creates_and_replaces),
		T(test_write_atomic_owner_keeps_setuid),
		T(test_write_atomic_refuses),
		T(test_write_atomic_enospc),
		T(test_read_beneath),
		T(test_read_file),
		T(test_unlink_beneath),
		T(test_rm_rf),
		T(test_rm_rf_symlink_top),
		T(test_mkdtemp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
