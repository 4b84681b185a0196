/* Tests for install.c against the real kernel: each test builds a small host tree in its own
 * temp dir and installs into it. install.c calls no other module but fsutil.c (linked, it is
 * the layer below); what the engine gives it (the source of the bytes, the progress and
 * adopted-original hooks) is defined here. A write is made to fail for real with
 * RLIMIT_FSIZE, and a directory made unwritable by giving it to another user.
 *
 * Not covered here: validation (test-validate.c), the checks before installing
 * (test-preflight.c), the backups a failed apply restores from (test-state.c, t-53). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "fsutil.h"
#include "install.h"
#include "log.h"
#include "util.h"

#include "capture.h"

struct fixture {
	char *dir;  /* the test's temp dir */
	char *root; /* dir/root: the configured directory every destination lies beneath */
	char *log;  /* what the last install() logged */
	struct ap_buf done; /* the progress hook's calls, one root-relative path per line */
	char **owned;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || ap_fs_mkdtemp("test-install-", &f->dir) < 0)
		return -1;
	f->root = ap_strdupf("%s/root", f->dir);
	if (!f->root || mkdir(f->root, 0755) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int r = ap_fs_rm_rf(f->dir);

	ap_buf_clear(&f->done);
	ap_strv_free(f->owned);
	free(f->dir);
	free(f->root);
	free(f->log);
	free(f);
	return r < 0 ? -1 : 0;
}

static char *at(const struct fixture *fx, const char *rel)
{
	char *p = ap_strdupf("%s/%s", fx->root, rel);

	assert_non_null(p);
	return p;
}

/* root/rel (its directories made) with content and mode. */
static void put(struct fixture *fx, const char *rel, const char *content, mode_t mode)
{
	_cleanup_free_ char *path = at(fx, rel);
	_cleanup_free_ char *dir = strndup(path, (size_t)(strrchr(path, '/') - path));
	int fd, dfd;

	dfd = ap_fs_open_dir(dir, 1, 0755);
	assert_true(dfd >= 0);
	close(dfd);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/* The bytes at root/rel, or NULL when there is no such file. */
static char *get(const struct fixture *fx, const char *rel)
{
	_cleanup_free_ char *path = at(fx, rel);
	char *data = NULL;
	size_t len;

	return ap_fs_read_file(path, 1 << 24, &data, &len) >= 0 ? data : NULL;
}

/* How many entries dir (root-relative) holds, "." and ".." aside: a leftover temp file
 * shows here. */
static int entries(const struct fixture *fx, const char *rel)
{
	_cleanup_free_ char *path = at(fx, rel);
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

static void progress(void *u, const char *dest)
{
	struct fixture *fx = u;

	assert_true(ap_buf_printf(&fx->done, "%s\n", dest + strlen(fx->root) + 1) >= 0);
}

/* The original of a taken-over file, as the state directory would keep it. */
static int adopted(void *u, const char *dest, struct ap_host_file *ret)
{
	if (!ap_endswith(dest, "/taken.conf"))
		return 0;
	*ret = (struct ap_host_file){ .path = strdup(dest), .present = true, .mode = 0600,
				      .uid = (uid_t)-1, .gid = (gid_t)-1,
				      .data = strdup("operator's\n"), .len = 11 };
	return ret->path && ret->data ? 1 : -ENOMEM;
}

struct op {
	const char *rel;     /* destination below root */
	const char *data;    /* new bytes (NULL: remove rel) */
	const char *old_rel; /* a rename: removed after rel is written */
	const char *owner;
};

/* Installs ops below root with the hooks above; stderr is caught in fx->log. */
static int install(struct fixture *fx, const struct op *ops, size_t n)
{
	struct ap_change ch[8] = { 0 };
	struct ap_file_op files[8] = { 0 };
	struct ap_plan p = { .files = files, .n_files = n };
	const struct ap_install_hooks h = { .progress = progress, .adopted = adopted, .userdata = fx };
	_cleanup_strv_free_ char **dests = NULL, **olds = NULL;
	struct capture cap;
	int r;

	assert_true(n <= ELEMENTSOF(files));
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *d = at(fx, ops[i].rel);
		_cleanup_free_ char *o = at(fx, ops[i].old_rel ? ops[i].old_rel : ops[i].rel);

		assert_int_equal(ap_strv_push(&dests, d), 0);
		assert_int_equal(ap_strv_push(&olds, o), 0);
		ch[i] = (struct ap_change){ .kind = ops[i].data ? AP_CHANGE_ADD : AP_CHANGE_DELETE,
					    .new_data = (char *)ops[i].data,
					    .new_len = ops[i].data ? strlen(ops[i].data) : 0 };
		files[i] = (struct ap_file_op){ .kind = AP_KIND_FILE, .path = (char *)ops[i].rel,
						.dest = dests[i], .old_dest = olds[i],
						.root_len = strlen(fx->root),
						.old_root_len = strlen(fx->root),
						.install = ops[i].data != NULL,
						.remove = !ops[i].data || ops[i].old_rel, .mode = 0640,
						.owner = (char *)ops[i].owner, .change_ref = &ch[i] };
	}
	capture_start(&cap, fx->dir);
	r = ap_install_files(&p, &h, &fx->owned);
	free(fx->log);
	fx->log = capture_end(&cap);
	return r;
}

#define assert_logged(fx, s) assert_non_null(strstr((fx)->log, (s)))

static void own(struct fixture *fx, const char *rel)
{
	_cleanup_free_ char *d = at(fx, rel);

	assert_int_equal(ap_strv_push(&fx->owned, d), 0);
}

/* --- failures first -------------------------------------------------------------------- */

/* A write that fails half-way (here: the file size limit) leaves the file as it was, no temp
 * file beside it, the files after it unwritten and the inventory without it. */
static void test_failed_write_leaves_file(void **state)
{
	struct fixture *fx = *state;
	_cleanup_free_ char *big = malloc(64 * 1024 + 1), *a = NULL, *b = NULL;
	struct op ops[] = { { .rel = "etc/app.conf" }, { .rel = "etc/later.conf", .data = "x\n" } };
	struct rlimit old, lim = { .rlim_cur = 16 * 1024, .rlim_max = RLIM_INFINITY };
	int r;

	assert_non_null(big);
	memset(big, 'x', 64 * 1024);
	big[64 * 1024] = '\0';
	ops[0].data = big;
	put(fx, "etc/app.conf", "old\n", 0644);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim.rlim_max = old.rlim_max;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	r = install(fx, ops, 2);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);

	assert_int_equal(r, -EFBIG);
	assert_logged(fx, "failed to install 'etc/app.conf' to '");
	assert_string_equal(a = get(fx, "etc/app.conf"), "old\n");
	assert_null(b = get(fx, "etc/later.conf"));
	assert_int_equal(entries(fx, "etc"), 1);
	assert_null(fx->owned);
	assert_null(fx->done.data);
}

/* A symlink below the configured directory is not followed, wherever it points: nothing is
 * written through it. */
static void test_symlink_dir_not_followed(void **state)
{
	struct fixture *fx = *state;
	static const struct op ops[] = { { .rel = "etc/app/app.conf", .data = "new\n" } };
	_cleanup_free_ char *outside = ap_strdupf("%s/outside", fx->dir), *link = at(fx, "etc/app");
	_cleanup_free_ char *escaped = ap_strdupf("%s/app.conf", outside);

	put(fx, "etc/other", "x", 0644);
	assert_int_equal(mkdir(outside, 0755), 0);
	assert_int_equal(symlink(outside, link), 0);
	assert_int_equal(install(fx, ops, 1), -ELOOP);
	assert_int_equal(access(escaped, F_OK), -1);
	assert_logged(fx, "failed to install 'etc/app/app.conf'");
	assert_null(fx->owned);
}

/* A symlink at the destination is not written through either (nor replaced). */
static void test_symlink_dest_not_followed(void **state)
{
	struct fixture *fx = *state;
	static const struct op ops[] = { { .rel = "etc/app.conf", .data = "new\n" } };
	_cleanup_free_ char *link = at(fx, "etc/app.conf"), *data = NULL;
	struct stat st;

	put(fx, "etc/target", "target\n", 0644);
	assert_int_equal(symlink("target", link), 0);
	assert_int_equal(install(fx, ops, 1), -ELOOP);
	assert_string_equal(data = get(fx, "etc/target"), "target\n");
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_logged(fx, "failed to install 'etc/app.conf'");
}

static uid_t nobody(void)
{
	struct passwd *pw = getpwnam("nobody");

	assert_non_null(pw);
	return pw->pw_uid;
}

/* A directory its owner cannot write: the install, done as that owner, fails with the
 * kernel's answer and creates nothing; the probe the preflight uses says the same first. */
static void test_dest_not_writable(void **state)
{
	struct fixture *fx = *state;
	static const struct op ops[] = { { .rel = "srv/app.conf", .data = "new\n", .owner = "nobody" } };
	_cleanup_free_ char *srv = at(fx, "srv");
	int dfd;

	put(fx, "srv/other", "x", 0644);
	if (geteuid() == 0)
		assert_int_equal(chown(srv, nobody(), (gid_t)-1), 0);
	assert_int_equal(chmod(srv, 0555), 0);
	dfd = open(srv, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	assert_int_equal(ap_install_probe_writable(dfd, geteuid() == 0 ? nobody() : 0), -EACCES);
	close(dfd);
	if (geteuid() != 0)
		return; /* only root can write as another user; as that user the probe said it all */
	assert_int_equal(install(fx, ops, 1), -EACCES);
	assert_logged(fx, "failed to install 'srv/app.conf'");
	assert_int_equal(entries(fx, "srv"), 1);
}

/* Only files autopull installed are removed: an operator's file at a path the repository
 * stops providing stays. */
static void test_removes_only_owned(void **state)
{
	struct fixture *fx = *state;
	static const struct op ops[] = { { .rel = "etc/mine.conf" }, { .rel = "etc/theirs.conf" } };
	_cleanup_free_ char *mine = NULL, *theirs = NULL;

	put(fx, "etc/mine.conf", "mine\n", 0644);
	put(fx, "etc/theirs.conf", "theirs\n", 0644);
	own(fx, "etc/mine.conf");
	assert_int_equal(install(fx, ops, 2), 0);
	assert_null(mine = get(fx, "etc/mine.conf"));
	assert_string_equal(theirs = get(fx, "etc/theirs.conf"), "theirs\n");
	assert_logged(fx, "theirs.conf' (from 'etc/theirs.conf'): autopull did not install it");
	assert_int_equal(ap_strv_length(fx->owned), 0);
	assert_string_equal(fx->done.data, "etc/mine.conf\n");
}

/* --- what an install does -------------------------------------------------------------- */

/* Writes first, removals after (a rename never leaves a moment without either), with the
 * rule's mode; the inventory follows. A taken-over file comes back when removed. */
static void test_writes_then_removes(void **state)
{
	struct fixture *fx = *state;
	static const struct op ops[] = {
		{ .rel = "etc/new-name.conf", .data = "renamed\n", .old_rel = "etc/old-name.conf" },
		{ .rel = "etc/taken.conf" },
		{ .rel = "etc/deep/dir/added.conf", .data = "added\n" } };
	_cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL;
	_cleanup_free_ char *added = at(fx, "etc/deep/dir/added.conf");
	struct stat st;

	put(fx, "etc/old-name.conf", "renamed\n", 0644);
	put(fx, "etc/taken.conf", "autopull's\n", 0644);
	own(fx, "etc/old-name.conf");
	own(fx, "etc/taken.conf");
	assert_int_equal(install(fx, ops, 3), 0);
	assert_string_equal(fx->done.data, "etc/new-name.conf\netc/deep/dir/added.conf\n"
					   "etc/old-name.conf\netc/taken.conf\n");
	assert_string_equal(a = get(fx, "etc/new-name.conf"), "renamed\n");
	assert_null(b = get(fx, "etc/old-name.conf"));
	assert_string_equal(c = get(fx, "etc/taken.conf"), "operator's\n");
	assert_string_equal(d = get(fx, "etc/deep/dir/added.conf"), "added\n");
	assert_int_equal(stat(added, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(ap_strv_length(fx->owned), 2); /* in the order installed */
	assert_true(ap_endswith(fx->owned[0], "/etc/new-name.conf"));
	assert_true(ap_endswith(fx->owned[1], "/etc/deep/dir/added.conf"));
	assert_logged(fx, "put back the original of");
}

/* Putting back writes nothing when the file is already so (a resumed rollback), restores
 * bytes and mode when not, and removes a file that was absent. */
static void test_put_back(void **state)
{
	struct fixture *fx = *state;
	_cleanup_free_ char *path = at(fx, "etc/app.conf"), *data = NULL;
	struct ap_host_file hf = { 0 }, gone = { .path = path, .root_len = strlen(fx->root) };
	struct stat before, after;

	put(fx, "etc/app.conf", "original\n", 0600);
	assert_int_equal(ap_install_read_host(path, strlen(fx->root), true, &hf), 0);
	assert_true(hf.present);
	assert_int_equal(hf.mode, 0600);
	assert_int_equal(stat(path, &before), 0);
	assert_int_equal(ap_install_put_back(&hf), 0);
	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(before.st_ino, after.st_ino);

	put(fx, "etc/app.conf", "changed\n", 0644);
	assert_int_equal(ap_install_put_back(&hf), 0);
	assert_string_equal(data = get(fx, "etc/app.conf"), "original\n");
	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(after.st_mode & 07777, 0600);

	assert_int_equal(ap_install_put_back(&gone), 0);
	assert_int_equal(access(path, F_OK), -1);
	ap_host_file_clear(&hf);
}

/* Reading a host file refuses what is not one. */
static void test_read_host_refuses_non_files(void **state)
{
	struct fixture *fx = *state;
	_cleanup_free_ char *link = at(fx, "etc/link"), *dir = at(fx, "etc/dir");
	_cleanup_free_ char *missing = at(fx, "etc/missing");
	struct ap_host_file hf = { 0 };

	put(fx, "etc/other", "x", 0644);
	assert_int_equal(symlink("other", link), 0);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(ap_install_read_host(link, strlen(fx->root), true, &hf), -ELOOP);
	assert_int_equal(ap_install_read_host(dir, strlen(fx->root), true, &hf), -EISDIR);
	assert_int_equal(ap_install_read_host(missing, strlen(fx->root), true, &hf), 0);
	assert_false(hf.present);
	ap_host_file_clear(&hf);
}

/* The directories an apply created go again on restore, unless something else lives there
 * now. */
static void test_remove_created_dir(void **state)
{
	struct fixture *fx = *state;
	_cleanup_free_ char *path = at(fx, "etc/a/b/c.conf"), *first = NULL, *a = at(fx, "etc/a");
	_cleanup_free_ char *keep = at(fx, "etc/k");

	put(fx, "etc/other", "x", 0644);
	assert_int_equal(ap_install_first_missing_dir(path, strlen(fx->root), &first), 0);
	assert_string_equal(first, a);
	put(fx, "etc/a/b/c.conf", "x", 0644);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(ap_install_remove_created_dir(a, strlen(fx->root)), 0);
	assert_int_equal(access(a, F_OK), -1);

	put(fx, "etc/k/b/operator.conf", "x", 0644);
	assert_int_equal(ap_install_remove_created_dir(keep, strlen(fx->root)), 0);
	assert_int_equal(entries(fx, "etc/k/b"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_failed_write_leaves_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_dir_not_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_dest_not_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dest_not_writable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removes_only_owned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writes_then_removes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_host_refuses_non_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_created_dir, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
