/* Tests for preflight.c alone: the functions it calls in install.c are defined here
 * (link-time stubs): the walk to a destination is fsutil's, as install.c's is, but the write
 * probe can be made to fail for one directory and every probe is recorded. Each test builds
 * a small host tree in its own temp dir.
 *
 * Not covered here: the write itself (test-install.c), the state directory's room for the
 * backups that the preflight counts (ap_state_check_space: t-26-hostile's full tmpfs). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "fsutil.h"
#include "install.h"
#include "log.h"
#include "preflight.h"
#include "util.h"
#include "capture.h"

/* --- stubs of install.c -------------------------------------------------------------- */

static struct {
	const char *fail_dir; /* the probe fails here with fail_errno */
	int fail_errno;
	char **probed;        /* directories probed, in order */
} probe;

static char *fd_path(int fd)
{
	char link[64], buf[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	return strdup(buf);
}

int ap_install_probe_writable(int dfd, uid_t tree_uid)
{
	_cleanup_free_ char *dir = fd_path(dfd);

	assert_int_equal(ap_strv_push(&probe.probed, dir), 0);
	if (probe.fail_dir && strcmp(dir, probe.fail_dir) == 0)
		return -probe.fail_errno;
	return ap_fs_probe_writable(dfd);
}

int ap_install_open_dir(const char *path, size_t root_len, uid_t trusted, unsigned flags,
			struct ap_fs_unsafe *u)
{
	_cleanup_free_ char *dir = strndup(path, (size_t)(strrchr(path, '/') - path));

	assert_non_null(dir);
	return ap_fs_open_dir_safe(*dir ? dir : "/", root_len, trusted, flags, 0755, u);
}

int ap_install_open_existing_dir(const char *path, size_t root_len, const char **ret_base)
{
	*ret_base = strrchr(path, '/') + 1;
	return ap_install_open_dir(path, root_len, 0, AP_FS_WALK_NO_CHECK, &(struct ap_fs_unsafe){ 0 });
}

int ap_install_stat_file(int dfd, const char *base, struct stat *st)
{
	if (fstatat(dfd, base, st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return S_ISREG(st->st_mode) ? 0 : S_ISLNK(st->st_mode) ? -ELOOP
				     : S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL;
}

uid_t ap_install_trusted_for(uid_t owner)
{
	return owner != (uid_t)-1 ? owner : geteuid();
}

/* No user database: one owner that does not exist, and the running user. */
int ap_install_owner_ids(const char *owner, const char *group, uid_t *ret_uid, gid_t *ret_gid)
{
	*ret_uid = (uid_t)-1;
	*ret_gid = (gid_t)-1;
	if ((owner && strcmp(owner, "nosuchuser") == 0) || (group && strcmp(group, "nosuchgroup") == 0))
		return ap_log_error(-ESRCH, "unknown owner or group");
	if (owner)
		*ret_uid = geteuid();
	if (group)
		*ret_gid = getegid();
	return 0;
}

/* Only the bytes a change carries (the tests give every file its bytes). */
int ap_install_content(const struct ap_file_op *f, const struct ap_install_source *src,
		       char **ret_buf, const char **ret_data, size_t *ret_len)
{
	assert_non_null(f->change_ref->new_data);
	*ret_data = f->change_ref->new_data;
	*ret_len = f->change_ref->new_len;
	return 0;
}

/* --- fixture ------------------------------------------------------------------------- */

struct fixture {
	char *dir;  /* the test's temp dir */
	char *root; /* dir/root: the configured directory every destination lies beneath */
	char *log;  /* what the last preflight() logged */
	struct ap_preflight out;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || ap_fs_mkdtemp("test-preflight-", &f->dir) < 0)
		return -1;
	f->root = ap_strdupf("%s/root", f->dir);
	if (!f->root || mkdir(f->root, 0755) < 0)
		return -1;
	probe.fail_dir = NULL;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int r = ap_fs_rm_rf(f->dir);

	ap_strv_free(probe.probed);
	probe.probed = NULL;
	ap_preflight_clear(&f->out);
	free(f->dir);
	free(f->root);
	free(f->log);
	free(f);
	return r < 0 ? -1 : 0;
}

/* root/rel (its directories made) with content. */
static void put(struct fixture *fx, const char *rel, const char *content)
{
	_cleanup_free_ char *path = ap_strdupf("%s/%s", fx->root, rel);
	_cleanup_free_ char *dir = strndup(path, (size_t)(strrchr(path, '/') - path));
	int fd, dfd;

	dfd = ap_fs_open_dir(dir, 1, 0755);
	assert_true(dfd >= 0);
	close(dfd);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
}

struct op {
	const char *rel;  /* destination below root */
	const char *data; /* new bytes, or NULL to remove */
	bool takeover;
	const char *owner;
};

typedef int size_fn(void *userdata, const struct ap_change *ch, size_t *ret);

/* Runs ap_preflight_check on a plan installing (or removing) ops below root, with owned the
 * root-relative files autopull installed; stderr is caught in fx->log. */
static int preflight(struct fixture *fx, const struct op *ops, size_t n, const char *const *owned,
		     unsigned flags, size_fn *size)
{
	struct ap_change ch[8] = { 0 };
	struct ap_file_op files[8] = { 0 };
	struct ap_plan p = { .files = files, .n_files = n };
	_cleanup_strv_free_ char **own = NULL, **dests = NULL;
	struct capture cap;
	const struct ap_install_source src = { .size = size };
	int r;

	assert_true(n <= ELEMENTSOF(files));
	for (size_t i = 0; owned && owned[i]; i++) {
		_cleanup_free_ char *d = ap_strdupf("%s/%s", fx->root, owned[i]);
		assert_int_equal(ap_strv_push(&own, d), 0);
	}
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *d = ap_strdupf("%s/%s", fx->root, ops[i].rel);
		assert_int_equal(ap_strv_push(&dests, d), 0);
		ch[i] = (struct ap_change){ .kind = ops[i].data ? AP_CHANGE_ADD : AP_CHANGE_DELETE,
					    .new_data = (char *)ops[i].data,
					    .new_len = ops[i].data ? strlen(ops[i].data) : 0 };
		files[i] = (struct ap_file_op){ .kind = AP_KIND_FILE, .path = (char *)ops[i].rel,
						.dest = dests[i], .root_len = strlen(fx->root),
						.install = ops[i].data != NULL,
						.remove = ops[i].data == NULL, .mode = 0644,
						.takeover = ops[i].takeover,
						.owner = (char *)ops[i].owner, .change_ref = &ch[i] };
	}
	capture_start(&cap, fx->dir);
	ap_preflight_clear(&fx->out);
	r = ap_preflight_check(&p, own, size ? &src : NULL, flags, &fx->out);
	free(fx->log);
	fx->log = capture_end(&cap);
	return r;
}

#define assert_logged(fx, s) assert_non_null(strstr((fx)->log, (s)))

static bool exists(const struct fixture *fx, const char *rel)
{
	_cleanup_free_ char *path = ap_strdupf("%s/%s", fx->root, rel);
	struct stat st;

	return lstat(path, &st) == 0;
}

/* --- failures first -------------------------------------------------------------------- */

/* A directory that cannot be written is the host's problem now (not a refusal of the plan):
 * its error comes back, named; a dry run probes nothing. */
static void test_dest_not_writable(void **state)
{
	struct fixture *fx = *state;
	static const struct op ops[] = { { .rel = "etc/app.conf", .data = "new\n" } };
	_cleanup_free_ char *etc = ap_strdupf("%s/etc", fx->root);
	_cleanup_free_ char *msg = ap_strdupf("cannot write to '%s': Read-only file system", etc);

	put(fx, "etc/other", "x");
	probe.fail_dir = etc;
	probe.fail_errno = EROFS;
	assert_int_equal(preflight(fx, ops, 1, NULL, 0, NULL), -EROFS);
	assert_logged(fx, msg);
	assert_int_equal(ap_strv_length(probe.probed), 1);
	assert_false(exists(fx, "etc/app.conf"));

	assert_int_equal(preflight(fx, ops, 1, NULL, AP_PREFLIGHT_CHECK_ONLY, NULL), 0);
	assert_int_equal(ap_strv_length(probe.probed), 1);
}

/* A missing directory is not created to be probed: the deepest existing one is, so that a
 * refused plan leaves no directory behind. */
static void test_missing_dir_not_created(void **state)
{
	struct fixture *fx = *state;
	static const struct op ops[] = { { .rel = "etc/app/conf.d/10.conf", .data = "new\n" } };
	_cleanup_free_ char *etc = ap_strdupf("%s/etc", fx->root);

	put(fx, "etc/other", "x");
	assert_int_equal(preflight(fx, ops, 1, NULL, 0, NULL), 0);
	assert_false(exists(fx, "etc/app"));
	assert_int_equal(ap_strv_length(probe.probed), 1);
	assert_string_equal(probe.probed[0], etc);
}

static int huge(void *u, const struct ap_change *ch, size_t *ret)
{
	*ret = SIZE_MAX / 2;
	return 0;
}

/* Files that do not fit their file system: -ENOSPC, named, before anything is written. */
static void test_no_room_for_files(void **state)
{
	struct fixture *fx = *state;
	static const struct op ops[] = { { .rel = "etc/app.conf", .data = "new\n" } };

	put(fx, "etc/other", "x");
	assert_int_equal(preflight(fx, ops, 1, NULL, 0, huge), -ENOSPC);
	assert_logged(fx, "no room to install the files into");
	assert_false(exists(fx, "etc/app.conf"));
}

/* What backing up costs is counted from the files each apply touches: replaced and removed
 * ones (the state directory's room is checked against it). */
static void test_backup_cost_counted(void **state)
{
	struct fixture *fx = *state;
	static const struct op ops[] = { { .rel = "etc/a.conf", .data = "new a\n" },
					 { .rel = "etc/b.conf", .data = NULL },
					 { .rel = "etc/new.conf", .data = "new\n" } };
	static const char *const owned[] = { "etc/a.conf", "etc/b.conf", NULL };

	put(fx, "etc/a.conf", "0123456789");
	put(fx, "etc/b.conf", "01234");
	assert_int_equal(preflight(fx, ops, 3, owned, 0, NULL), 0);
	assert_int_equal(fx->out.backup_bytes, 15);
	assert_int_equal(fx->out.backup_files, 2);
}

/* A symlink on the way to a destination is refused, wherever it points. */
static void test_symlink_in_the_way(void **state)
{
	struct fixture *fx = *state;
	static const struct op ops[] = { { .rel = "etc/app/app.conf", .data = "new\n" } };
	_cleanup_free_ char *outside = ap_strdupf("%s/outside", fx->dir);
	_cleanup_free_ char *link = ap_strdupf("%s/etc/app", fx->root);

	put(fx, "etc/other", "x");
	assert_int_equal(mkdir(outside, 0755), 0);
	assert_int_equal(symlink(outside, link), 0);
	assert_int_equal(preflight(fx, ops, 1, NULL, 0, NULL), -EINVAL);
	assert_logged(fx, "a symlink or a file is in the way of its directory");
	assert_int_equal(ap_strv_length(probe.probed), 0);
}

/* The destination itself a symlink or a directory: refused, not replaced. */
static void test_dest_not_a_file(void **state)
{
	struct fixture *fx = *state;
	static const struct op ops[] = { { .rel = "etc/app.conf", .data = "new\n" },
					 { .rel = "etc/dir", .data = "new\n" } };
	static const char *const owned[] = { "etc/app.conf", "etc/dir", NULL };
	_cleanup_free_ char *link = ap_strdupf("%s/etc/app.conf", fx->root);
	_cleanup_free_ char *dir = ap_strdupf("%s/etc/dir", fx->root);

	put(fx, "etc/other", "x");
	assert_int_equal(symlink("/etc/passwd", link), 0);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(preflight(fx, ops, 2, owned, 0, NULL), -EINVAL);
	assert_logged(fx, "app.conf') is a symlink on the host; refusing to replace it");
	assert_logged(fx, "etc/dir') is a directory on the host; refusing to replace it");
}

/* A file autopull did not install is replaced only with takeover, or when it already holds
 * the new bytes; either way it is listed for adoption. */
static void test_takeover(void **state)
{
	struct fixture *fx = *state;
	static const struct op refused[] = { { .rel = "etc/app.conf", .data = "new\n" } };
	static const struct op same[] = { { .rel = "etc/app.conf", .data = "operator's\n" } };
	static const struct op taken[] = { { .rel = "etc/app.conf", .data = "new\n", .takeover = true } };
	static const char *const owned[] = { "etc/app.conf", NULL };
	_cleanup_free_ char *dest = ap_strdupf("%s/etc/app.conf", fx->root);

	put(fx, "etc/app.conf", "operator's\n");
	assert_int_equal(preflight(fx, refused, 1, NULL, 0, NULL), -EINVAL);
	assert_logged(fx, "exists and autopull did not install it; to replace it, set 'takeover: true'");
	assert_int_equal(preflight(fx, same, 1, NULL, 0, NULL), 0);
	assert_true(ap_strv_contains(fx->out.adopt, dest));
	assert_int_equal(preflight(fx, taken, 1, NULL, 0, NULL), 0);
	assert_true(ap_strv_contains(fx->out.adopt, dest));
	assert_int_equal(preflight(fx, same, 1, owned, 0, NULL), 0);
	assert_null(fx->out.adopt);
}

/* An owner: that does not exist refuses the plan (the install would fail half-way). */
static void test_unknown_owner(void **state)
{
	struct fixture *fx = *state;
	static const struct op ops[] = {
		{ .rel = "etc/app.conf", .data = "new\n", .owner = "nosuchuser" }
	};

	put(fx, "etc/other", "x");
	assert_int_equal(preflight(fx, ops, 1, NULL, 0, NULL), -EINVAL);
	assert_logged(fx, "'etc/app.conf': owner 'nosuchuser' or group '-' does not exist on this host");
	assert_false(exists(fx, "etc/app.conf"));
}

/* Problems do not stop at the first: every refusal of one plan is logged. */
static void test_every_problem_logged(void **state)
{
	struct fixture *fx = *state;
	static const struct op ops[] = { { .rel = "etc/a.conf", .data = "new\n" },
					 { .rel = "etc/b.conf", .data = "new\n" } };

	put(fx, "etc/a.conf", "operator's a\n");
	put(fx, "etc/b.conf", "operator's b\n");
	assert_int_equal(preflight(fx, ops, 2, NULL, 0, NULL), -EINVAL);
	assert_logged(fx, "a.conf' (from 'etc/a.conf') exists and autopull did not install it");
	assert_logged(fx, "b.conf' (from 'etc/b.conf') exists and autopull did not install it");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dest_not_writable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_dir_not_created, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_room_for_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backup_cost_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_in_the_way, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dest_not_a_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_takeover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_problem_logged, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
