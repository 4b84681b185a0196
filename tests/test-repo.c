/* Tests for repo.c against real repositories. The fixtures are made at setup in a temp
 * directory with the git CLI (tests may run git; production code may not): one origin with
 * a commit per kind of change, fetched into a mirror over file://, a separate origin for
 * the fetch tests, and a fast-import repository with pathological trees. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <git2.h>

#include "log.h"
#include "model.h"
#include "repo.h"
#include "util.h"

static char tmp[PATH_MAX];
static char env_home[PATH_MAX + 8];
static const char *child_env[] = {
	env_home, "PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C", "GIT_CONFIG_NOSYSTEM=1",
	"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org", "GIT_COMMITTER_NAME=t",
	"GIT_COMMITTER_EMAIL=t@example.org", NULL,
};

/* Commits of the diff fixture, one kind of change each. */
enum {
	C_BASE, C_MODIFY, C_DELETE, C_ADD_NESTED, C_DELETE_DIR, C_MODE, C_RENAME, C_RENAME_DIR,
	C_SYMLINK, C_TYPE, C_ORDER, C_SWAP, C_RENAME_PAIRS, C_EMPTY, C_GITLINK, C_GITLINK_MOD,
	C_COUNT
};
static char c[C_COUNT][AP_OID_HEXSZ + 1];
static struct ap_repo *mirror;

/* --- fixture helpers ------------------------------------------------------------------- */

static char *tmp_path(const char *rel)
{
	char *p = ap_strdupf("%s/%s", tmp, rel);

	assert_non_null(p);
	return p;
}

/* Runs argv with the fixture environment, stdin from in (or /dev/null), stdout into out. */
static int run(const char *const *argv, const char *in, char *out, size_t outsz)
{
	posix_spawn_file_actions_t fa;
	size_t len = 0;
	char buf[4096];
	ssize_t n;
	int p[2], status;
	pid_t pid;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, in ? in : "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	assert_int_equal(posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv,
				      (char *const *)child_env), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	while ((n = read(p[0], buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; out && i < n && len + 1 < outsz; i++)
			out[len++] = buf[i];
	close(p[0]);
	while (out && len > 0 && out[len - 1] == '\n')
		len--;
	if (out)
		out[len] = '\0';
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void vgit(const char *dir, const char *in, char *out, size_t outsz, va_list ap)
{
	const char *argv[32] = { "git", "-C", dir };
	size_t n = 3;
	const char *a;

	while ((a = va_arg(ap, const char *)) && n < ELEMENTSOF(argv) - 1)
		argv[n++] = a;
	argv[n] = NULL;
	assert_int_equal(run(argv, in, out, outsz), 0);
}

static void git(const char *dir, ...)
{
	va_list ap;

	va_start(ap, dir);
	vgit(dir, NULL, NULL, 0, ap);
	va_end(ap);
}

static void git_out(const char *dir, char *out, size_t outsz, ...)
{
	va_list ap;

	va_start(ap, outsz);
	vgit(dir, NULL, out, outsz, ap);
	va_end(ap);
}

static void git_in(const char *dir, const char *in, ...)
{
	va_list ap;

	va_start(ap, in);
	vgit(dir, in, NULL, 0, ap);
	va_end(ap);
}

static void mkdir_p(char *path)
{
	for (char *s = strchr(path + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
		*s = '/';
	}
}

/* Writes dir/rel with content (default: the path itself, so contents are unique). */
static void put(const char *dir, const char *rel, const char *content)
{
	_cleanup_free_ char *p = ap_strdupf("%s/%s", dir, rel);
	FILE *f;

	assert_non_null(p);
	mkdir_p(p);
	assert_non_null(f = fopen(p, "we"));
	fprintf(f, "%s\n", content ? content : rel);
	assert_int_equal(fclose(f), 0);
}

static void commit(const char *dir, const char *msg, char ret[AP_OID_HEXSZ + 1])
{
	git(dir, "add", "-A", NULL);
	git(dir, "commit", "-q", "--allow-empty", "-m", msg, NULL);
	git_out(dir, ret, AP_OID_HEXSZ + 1, "rev-parse", "HEAD", NULL);
	assert_int_equal(strlen(ret), AP_OID_HEXSZ);
}

static void gitlink_commit(const char *dir, const char *sha, char ret[AP_OID_HEXSZ + 1])
{
	_cleanup_free_ char *info = ap_strdupf("160000,%s,vendor/sub", sha);

	git(dir, "update-index", "--add", "--cacheinfo", info, NULL);
	git(dir, "commit", "-q", "-m", "gitlink", NULL);
	git_out(dir, ret, AP_OID_HEXSZ + 1, "rev-parse", "HEAD", NULL);
}

static char *file_url(const char *rel)
{
	char *u = ap_strdupf("file://%s/%s", tmp, rel);

	assert_non_null(u);
	return u;
}

static void build_diff_origin(const char *o)
{
	static const char *const base[] = {
		"README", "a-b", "a.txt", "a/x", "bin/run.sh", "etc/app.conf", "etc/sub/deep.conf",
		"gone/one", "gone/two", "other/x.txt", "swap", "units/a.service", "units/b.service",
	};
	_cleanup_free_ char *p = NULL;

	git(tmp, "init", "-q", "-b", "main", o, NULL);
	for (size_t i = 0; i < ELEMENTSOF(base); i++)
		put(o, base[i], NULL);
	put(o, "r/a1", "dup");
	put(o, "r/a2", "dup");
	put(o, "m/exec", "same");
	p = ap_strdupf("%s/m/exec", o);
	assert_int_equal(chmod(p, 0755), 0);
	commit(o, "base", c[C_BASE]);
	put(o, "etc/app.conf", "changed");
	commit(o, "modify", c[C_MODIFY]);
	git(o, "rm", "-q", "units/b.service", NULL);
	commit(o, "delete", c[C_DELETE]);
	put(o, "new/dir/deep/file.conf", NULL);
	commit(o, "add nested", c[C_ADD_NESTED]);
	git(o, "rm", "-q", "-r", "gone", NULL);
	commit(o, "delete dir", c[C_DELETE_DIR]);
	free(p);
	p = ap_strdupf("%s/bin/run.sh", o);
	assert_int_equal(chmod(p, 0755), 0);
	commit(o, "mode", c[C_MODE]);
	git(o, "mv", "units/a.service", "units/a2.service", NULL);
	commit(o, "rename", c[C_RENAME]);
	git(o, "mv", "other/x.txt", "etc/x.txt", NULL); /* other/ goes away, etc/ exists */
	commit(o, "rename into another dir", c[C_RENAME_DIR]);
}

static void build_diff_origin_2(const char *o)
{
	_cleanup_free_ char *link = ap_strdupf("%s/links/cur", o);
	_cleanup_free_ char *readme = ap_strdupf("%s/README", o);

	mkdir_p(link);
	assert_int_equal(symlink("../etc/app.conf", link), 0);
	commit(o, "symlink", c[C_SYMLINK]);
	assert_int_equal(unlink(readme), 0);
	assert_int_equal(symlink("etc/app.conf", readme), 0);
	commit(o, "file to symlink", c[C_TYPE]);
	put(o, "a/x", "changed");
	commit(o, "order", c[C_ORDER]);
	git(o, "rm", "-q", "swap", NULL);
	put(o, "swap/inner", NULL);
	commit(o, "file to dir", c[C_SWAP]);
	git(o, "rm", "-q", "r/a1", "r/a2", "m/exec", NULL);
	put(o, "s/b1", "dup");
	put(o, "s/b2", "dup");
	put(o, "m/plain", "same");
	commit(o, "rename pairs", c[C_RENAME_PAIRS]);
	commit(o, "empty", c[C_EMPTY]);
	gitlink_commit(o, c[C_BASE], c[C_GITLINK]);
	gitlink_commit(o, c[C_MODIFY], c[C_GITLINK_MOD]);
}

/* A bare repository with branches "deep" (300 nested dirs), "long" (a path over PATH_MAX)
 * and "many" (AP_MAX_CHANGES + 1 files), made with fast-import. */
static void build_weird(void)
{
	_cleanup_free_ char *dir = tmp_path("weird.git"), *in = tmp_path("weird.fi");
	FILE *f = fopen(in, "we");
	const char *head = "committer t <t@example.org> 0 +0000\ndata 1\nx\n";

	assert_non_null(f);
	fprintf(f, "blob\nmark :1\ndata 3\nhi\n");
	fprintf(f, "commit refs/heads/deep\n%sM 100644 :1 ", head);
	for (int i = 0; i < 300; i++)
		fprintf(f, "d/");
	fprintf(f, "f\ncommit refs/heads/long\n%sM 100644 :1 ", head);
	for (int i = 0; i < 20; i++)
		fprintf(f, "%0250d/", i);
	fprintf(f, "f\ncommit refs/heads/many\n%s", head);
	for (int i = 0; i <= AP_MAX_CHANGES; i++)
		fprintf(f, "M 100644 :1 d%03d/f%d\n", i / 1000, i);
	assert_int_equal(fclose(f), 0);
	git(tmp, "init", "-q", "--bare", dir, NULL);
	git_in(dir, in, "fast-import", "--quiet", NULL);
}

static int rm_rf(const char *path)
{
	const char *argv[] = { "rm", "-rf", path, NULL };

	return run(argv, NULL, NULL, 0);
}

static int group_setup(void **state)
{
	_cleanup_free_ char *o = NULL, *m = NULL, *url = NULL;
	char tip[AP_OID_HEXSZ + 1];
	struct ap_remote_opts opts = { .branch = "main" };

	snprintf(tmp, sizeof(tmp), "/tmp/ap-test-repo-XXXXXX");
	assert_non_null(mkdtemp(tmp));
	snprintf(env_home, sizeof(env_home), "HOME=%s", tmp);
	ap_log_set_max_level(AP_LOG_DEBUG);
	o = tmp_path("origin");
	build_diff_origin(o);
	build_diff_origin_2(o);
	build_weird();
	m = tmp_path("mirror.git");
	url = file_url("origin");
	opts.url = url;
	assert_int_equal(ap_repo_open(m, &mirror), 0);
	assert_int_equal(ap_repo_fetch(mirror, &opts, tip), 1);
	assert_string_equal(tip, c[C_GITLINK_MOD]);
	return 0;
}

static int group_teardown(void **state)
{
	ap_repo_free(mirror);
	return rm_rf(tmp) == 0 ? 0 : -1;
}

/* --- diff --------------------------------------------------------------------------- */

struct exp {
	enum ap_change_kind kind;
	const char *path, *old_path;
	uint32_t old_mode, new_mode;
};

static void check_sides(const struct ap_change *ch)
{
	bool has_old = ch->kind != AP_CHANGE_ADD, has_new = ch->kind != AP_CHANGE_DELETE;

	assert_int_equal(strlen(ch->old_oid), has_old ? AP_OID_HEXSZ : 0);
	assert_int_equal(strlen(ch->new_oid), has_new ? AP_OID_HEXSZ : 0);
	assert_true(has_old == (ch->old_mode != 0));
	assert_true(has_new == (ch->new_mode != 0));
	if (ch->kind == AP_CHANGE_MODE || ch->kind == AP_CHANGE_RENAME)
		assert_string_equal(ch->old_oid, ch->new_oid);
	if (ch->kind == AP_CHANGE_MODIFY)
		assert_string_not_equal(ch->old_oid, ch->new_oid);
	assert_null(ch->old_data);
	assert_null(ch->new_data);
}

static void check_diff(const char *from, const char *to, const struct exp *e, size_t n)
{
	struct ap_changes ch = { 0 };

	assert_int_equal(ap_repo_diff(mirror, from, to, &ch), 0);
	for (size_t i = 0; i < ch.n; i++)
		print_message("  %s %s%s%s %o->%o\n", ap_change_kind_to_string(ch.v[i].kind),
			      ch.v[i].old_path ? ch.v[i].old_path : "", ch.v[i].old_path ? " -> " : "",
			      ch.v[i].path, ch.v[i].old_mode, ch.v[i].new_mode);
	assert_int_equal(ch.n, n);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(ap_change_kind_to_string(ch.v[i].kind),
				    ap_change_kind_to_string(e[i].kind));
		assert_string_equal(ch.v[i].path, e[i].path);
		if (e[i].old_path)
			assert_string_equal(ch.v[i].old_path, e[i].old_path);
		else
			assert_null(ch.v[i].old_path);
		assert_int_equal(ch.v[i].old_mode, e[i].old_mode);
		assert_int_equal(ch.v[i].new_mode, e[i].new_mode);
		check_sides(&ch.v[i]);
		if (i > 0)
			assert_true(strcmp(ch.v[i - 1].path, ch.v[i].path) < 0);
	}
	ap_changes_clear(&ch);
}

#define B AP_GIT_MODE_BLOB
#define X AP_GIT_MODE_EXEC
#define L AP_GIT_MODE_LINK
#define G AP_GIT_MODE_GITLINK
#define ADD(p, m) { AP_CHANGE_ADD, p, NULL, 0, m }
#define DEL(p, m) { AP_CHANGE_DELETE, p, NULL, m, 0 }
#define CHECK(from, to, ...)                                              \
	do {                                                              \
		static const struct exp e_[] = { __VA_ARGS__ };           \
		check_diff(from, to, e_, ELEMENTSOF(e_));                 \
	} while (0)

/* libgit2's own limits (1 GiB windows, 8 GiB mapped on 64-bit) keep every page of a pack
 * that was read resident: a first run of 100,000 files reached 33.7 MB. While a repository
 * is open the maps must stay bounded. */
static void test_pack_maps_bounded(void **state)
{
	size_t window = 0, mapped = 0;

	assert_int_equal(git_libgit2_opts(GIT_OPT_GET_MWINDOW_SIZE, &window), 0);
	assert_int_equal(git_libgit2_opts(GIT_OPT_GET_MWINDOW_MAPPED_LIMIT, &mapped), 0);
	assert_true(window > 0 && window <= (size_t)1 << 20);
	assert_true(mapped >= window && mapped <= (size_t)4 << 20);
}

static void test_diff_first_run(void **state)
{
	CHECK(NULL, c[C_BASE], ADD("README", B), ADD("a-b", B), ADD("a.txt", B), ADD("a/x", B),
	      ADD("bin/run.sh", B), ADD("etc/app.conf", B), ADD("etc/sub/deep.conf", B),
	      ADD("gone/one", B), ADD("gone/two", B), ADD("m/exec", X), ADD("other/x.txt", B),
	      ADD("r/a1", B), ADD("r/a2", B), ADD("swap", B), ADD("units/a.service", B),
	      ADD("units/b.service", B));
	/* "" means the empty tree too; two identical files are not a rename on first run */
	CHECK("", c[C_MODIFY], ADD("README", B), ADD("a-b", B), ADD("a.txt", B), ADD("a/x", B),
	      ADD("bin/run.sh", B), ADD("etc/app.conf", B), ADD("etc/sub/deep.conf", B),
	      ADD("gone/one", B), ADD("gone/two", B), ADD("m/exec", X), ADD("other/x.txt", B),
	      ADD("r/a1", B), ADD("r/a2", B), ADD("swap", B), ADD("units/a.service", B),
	      ADD("units/b.service", B));
}

static void test_diff_paths(void **state)
{
	/* directory prefixes, a file prefix, a prefix below a directory ("etc/sub/"), and a
	 * name that only shares a beginning ("a" is not "a-b" or "a.txt") */
	char *prefixes[] = { "units/", "bin/run.sh", "etc/sub/", "a/", NULL };
	char *nothing[] = { "/", NULL };
	const char *want[] = { "a/x", "bin/run.sh", "etc/sub/deep.conf", "units/a.service",
			       "units/b.service" };
	struct ap_changes ch = { 0 };

	assert_int_equal(ap_repo_diff_paths(mirror, NULL, c[C_BASE], prefixes, &ch), 0);
	assert_int_equal(ch.n, ELEMENTSOF(want));
	for (size_t i = 0; i < ch.n; i++)
		assert_string_equal(ch.v[i].path, want[i]);
	ap_changes_clear(&ch);
	assert_int_equal(ap_repo_diff_paths(mirror, NULL, c[C_BASE], nothing, &ch), 0);
	assert_int_equal(ch.n, 0);
	ap_changes_clear(&ch);
}

static void test_diff_modify(void **state)
{
	/* etc/sub (an unchanged sibling subtree) is not reported */
	CHECK(c[C_BASE], c[C_MODIFY], { AP_CHANGE_MODIFY, "etc/app.conf", NULL, B, B });
}

static void test_diff_delete(void **state)
{
	CHECK(c[C_MODIFY], c[C_DELETE], DEL("units/b.service", B));
}

static void test_diff_add_nested(void **state)
{
	CHECK(c[C_DELETE], c[C_ADD_NESTED], ADD("new/dir/deep/file.conf", B));
}

static void test_diff_delete_dir(void **state)
{
	CHECK(c[C_ADD_NESTED], c[C_DELETE_DIR], DEL("gone/one", B), DEL("gone/two", B));
}

static void test_diff_mode_only(void **state)
{
	CHECK(c[C_DELETE_DIR], c[C_MODE], { AP_CHANGE_MODE, "bin/run.sh", NULL, B, X });
}

static void test_diff_rename(void **state)
{
	CHECK(c[C_MODE], c[C_RENAME],
	      { AP_CHANGE_RENAME, "units/a2.service", "units/a.service", B, B });
}

static void test_diff_rename_into_other_dir(void **state)
{
	CHECK(c[C_RENAME], c[C_RENAME_DIR], { AP_CHANGE_RENAME, "etc/x.txt", "other/x.txt", B, B });
}

static void test_diff_symlink_add(void **state)
{
	CHECK(c[C_RENAME_DIR], c[C_SYMLINK], ADD("links/cur", L));
}

static void test_diff_file_to_symlink(void **state)
{
	CHECK(c[C_SYMLINK], c[C_TYPE], { AP_CHANGE_TYPE, "README", NULL, B, L });
}

/* "a-b" < "a.txt" < "a/" in git's tree order, though "a" < "a-b" for strcmp: a plain
 * strcmp walk would misalign here and report phantom adds and deletes. */
static void test_diff_git_tree_order(void **state)
{
	CHECK(c[C_TYPE], c[C_ORDER], { AP_CHANGE_MODIFY, "a/x", NULL, B, B });
}

static void test_diff_file_to_dir(void **state)
{
	CHECK(c[C_ORDER], c[C_SWAP], DEL("swap", B), ADD("swap/inner", B));
	CHECK(c[C_SWAP], c[C_ORDER], ADD("swap", B), DEL("swap/inner", B));
}

/* Equal ids pair in path order; a different mode is no rename. */
static void test_diff_rename_pairs(void **state)
{
	CHECK(c[C_SWAP], c[C_RENAME_PAIRS], DEL("m/exec", X), ADD("m/plain", B),
	      { AP_CHANGE_RENAME, "s/b1", "r/a1", B, B }, { AP_CHANGE_RENAME, "s/b2", "r/a2", B, B });
}

static void test_diff_gitlink(void **state)
{
	CHECK(c[C_EMPTY], c[C_GITLINK], ADD("vendor/sub", G));
	CHECK(c[C_GITLINK], c[C_GITLINK_MOD], { AP_CHANGE_MODIFY, "vendor/sub", NULL, G, G });
}

static void test_diff_no_change(void **state)
{
	struct ap_changes ch = { 0 };

	CHECK(c[C_RENAME_PAIRS], c[C_EMPTY], );
	assert_int_equal(ap_repo_diff(mirror, c[C_BASE], c[C_BASE], &ch), 0);
	assert_int_equal(ch.n, 0);
	ap_changes_clear(&ch);
}

/* Many kinds at once: still one sorted list, renames across the whole range. */
static void test_diff_sorted_range(void **state)
{
	CHECK(c[C_BASE], c[C_GITLINK_MOD], { AP_CHANGE_TYPE, "README", NULL, B, L },
	      { AP_CHANGE_MODIFY, "a/x", NULL, B, B }, { AP_CHANGE_MODE, "bin/run.sh", NULL, B, X },
	      { AP_CHANGE_MODIFY, "etc/app.conf", NULL, B, B },
	      { AP_CHANGE_RENAME, "etc/x.txt", "other/x.txt", B, B }, DEL("gone/one", B),
	      DEL("gone/two", B), ADD("links/cur", L), DEL("m/exec", X), ADD("m/plain", B),
	      ADD("new/dir/deep/file.conf", B), { AP_CHANGE_RENAME, "s/b1", "r/a1", B, B },
	      { AP_CHANGE_RENAME, "s/b2", "r/a2", B, B }, DEL("swap", B), ADD("swap/inner", B),
	      { AP_CHANGE_RENAME, "units/a2.service", "units/a.service", B, B },
	      DEL("units/b.service", B), ADD("vendor/sub", G));
}

static void test_diff_bad_rev(void **state)
{
	struct ap_changes ch = { 0 };

	assert_int_equal(ap_repo_diff(mirror, "nope", c[C_BASE], &ch), -ENOENT);
	assert_int_equal(ap_repo_diff(mirror, c[C_BASE], "nope", &ch), -ENOENT);
	assert_null(ch.v);
}

/* The proof of the OID skip: with an unchanged subtree's object gone, the diff still
 * works, while a full listing (which must open it) fails. */
static void test_diff_never_opens_unchanged_subtrees(void **state)
{
	_cleanup_free_ char *o = tmp_path("lean"), *git_dir = tmp_path("lean/.git"), *obj = NULL;
	char a[AP_OID_HEXSZ + 1], b[AP_OID_HEXSZ + 1], sub[AP_OID_HEXSZ + 1];
	struct ap_changes ch = { 0 };
	struct ap_repo *r;
	char **files = NULL;

	git(tmp, "init", "-q", "-b", "main", o, NULL);
	put(o, "dir1/f", NULL);
	put(o, "dir2/g", NULL);
	commit(o, "a", a);
	put(o, "dir1/f", "changed");
	commit(o, "b", b);
	git_out(o, sub, sizeof(sub), "rev-parse", "HEAD:dir2", NULL);
	obj = ap_strdupf("%s/objects/%.2s/%s", git_dir, sub, sub + 2);
	assert_int_equal(unlink(obj), 0);
	assert_int_equal(ap_repo_open(git_dir, &r), 0);
	assert_int_equal(ap_repo_diff(r, a, b, &ch), 0);
	assert_int_equal(ch.n, 1);
	assert_string_equal(ch.v[0].path, "dir1/f");
	assert_true(ap_repo_list_files(r, b, &files) < 0);
	assert_null(files);
	ap_changes_clear(&ch);
	ap_repo_free(r);
}

static void test_diff_bounds(void **state)
{
	_cleanup_free_ char *dir = tmp_path("weird.git");
	struct ap_changes ch = { 0 };
	struct ap_repo *r;
	char **files = NULL;

	assert_int_equal(ap_repo_open(dir, &r), 0);
	assert_int_equal(ap_repo_diff(r, NULL, "deep", &ch), -ELOOP);
	assert_int_equal(ap_repo_diff(r, NULL, "long", &ch), -ENAMETOOLONG);
	assert_int_equal(ap_repo_diff(r, NULL, "many", &ch), -E2BIG);
	assert_int_equal(ap_repo_list_files(r, "many", &files), -E2BIG);
	assert_null(ch.v);
	assert_null(files);
	ap_repo_free(r);
}

/* --- revisions, blobs, listings ----------------------------------------------------------- */

static void test_resolve(void **state)
{
	char out[AP_OID_HEXSZ + 1], abbrev[8], blob[AP_OID_HEXSZ + 1];
	_cleanup_free_ char *o = tmp_path("origin");

	snprintf(abbrev, sizeof(abbrev), "%.7s", c[C_BASE]);
	assert_int_equal(ap_repo_resolve(mirror, abbrev, out), 0);
	assert_string_equal(out, c[C_BASE]);
	assert_int_equal(ap_repo_resolve(mirror, c[C_MODE], out), 0);
	assert_string_equal(out, c[C_MODE]);
	assert_int_equal(ap_repo_resolve(mirror, "refs/remotes/origin/main", out), 0);
	assert_string_equal(out, c[C_GITLINK_MOD]);
	assert_int_equal(ap_repo_resolve(mirror, "no-such-rev", out), -ENOENT);
	assert_int_equal(ap_repo_resolve(mirror, "0123456789012345678901234567890123456789", out),
			 -ENOENT);
	git_out(o, blob, sizeof(blob), "rev-parse", "HEAD:etc/app.conf", NULL);
	assert_int_equal(ap_repo_resolve(mirror, blob, out), -ENOENT);
}

static void test_is_ancestor(void **state)
{
	assert_int_equal(ap_repo_is_ancestor(mirror, c[C_BASE], c[C_GITLINK_MOD]), 1);
	assert_int_equal(ap_repo_is_ancestor(mirror, c[C_GITLINK_MOD], c[C_BASE]), 0);
	assert_int_equal(ap_repo_is_ancestor(mirror, c[C_MODE], c[C_MODE]), 1);
	assert_int_equal(ap_repo_is_ancestor(mirror, "no-such-rev", c[C_MODE]), -ENOENT);
}

static void test_read_blob(void **state)
{
	_cleanup_free_ char *o = tmp_path("origin");
	char blob[AP_OID_HEXSZ + 1];
	char *data = NULL;
	size_t len = 0;

	git_out(o, blob, sizeof(blob), "rev-parse", "HEAD:etc/app.conf", NULL);
	assert_int_equal(ap_repo_read_blob(mirror, blob, AP_MAX_BLOB_SIZE, &data, &len), 0);
	assert_int_equal(len, strlen("changed\n"));
	assert_string_equal(data, "changed\n");
	free(data);
	data = NULL;
	assert_int_equal(ap_repo_read_blob(mirror, blob, 8, &data, &len), 0); /* == max is ok */
	free(data);
	data = NULL;
	assert_int_equal(ap_repo_read_blob(mirror, blob, 3, &data, &len), -EFBIG);
	assert_int_equal(ap_repo_read_blob(mirror, "0123456789012345678901234567890123456789", 9,
					   &data, &len), -ENOENT);
	assert_int_equal(ap_repo_read_blob(mirror, c[C_BASE], 1 << 20, &data, &len), -EINVAL);
	assert_int_equal(ap_repo_read_blob(mirror, "abc", 9, &data, &len), -EINVAL);
	assert_null(data);
}

static void test_read_symlink_blob(void **state)
{
	struct ap_changes ch = { 0 };
	char *data = NULL;
	size_t len;

	assert_int_equal(ap_repo_diff(mirror, c[C_SYMLINK], c[C_TYPE], &ch), 0);
	assert_int_equal(ch.n, 1);
	assert_int_equal(ap_repo_read_blob(mirror, ch.v[0].new_oid, 100, &data, &len), 0);
	assert_string_equal(data, "etc/app.conf"); /* the link target, raw */
	free(data);
	ap_changes_clear(&ch);
}

static void test_list_files(void **state)
{
	static const char *const want[] = {
		"README", "a-b", "a.txt", "a/x", "bin/run.sh", "etc/app.conf", "etc/sub/deep.conf",
		"etc/x.txt", "links/cur", "m/plain", "new/dir/deep/file.conf",
		"s/b1", "s/b2", "swap/inner", "units/a2.service",
	};
	char **files = NULL;

	assert_int_equal(ap_repo_list_files(mirror, c[C_GITLINK_MOD], &files), 0);
	assert_int_equal(ap_strv_length(files), ELEMENTSOF(want)); /* no vendor/sub gitlink */
	for (size_t i = 0; i < ELEMENTSOF(want); i++)
		assert_string_equal(files[i], want[i]);
	ap_strv_free(files);
	files = NULL;
	assert_int_equal(ap_repo_list_files(mirror, "no-such-rev", &files), -ENOENT);
	assert_null(files);
}

/* --- open and fetch ------------------------------------------------------------------ */

static void test_open(void **state)
{
	_cleanup_free_ char *fresh = tmp_path("fresh.git"), *empty = tmp_path("empty");
	_cleanup_free_ char *junk = tmp_path("junk"), *missing = tmp_path("no/such/dir");
	git_buf buf = { 0 };
	struct ap_repo *r;
	struct stat st;
	char tip[AP_OID_HEXSZ + 1];

	assert_int_equal(ap_repo_open(fresh, &r), 0);
	assert_int_equal(stat(fresh, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	/* while a repository is open, no config level has a search path */
	assert_int_equal(git_libgit2_opts(GIT_OPT_GET_SEARCH_PATH, GIT_CONFIG_LEVEL_GLOBAL, &buf), 0);
	assert_string_equal(buf.ptr ? buf.ptr : "", "");
	git_buf_dispose(&buf);
	assert_int_equal(ap_repo_branch_tip(r, "main", tip), -ENOENT);
	ap_repo_free(r);
	assert_int_equal(ap_repo_open(fresh, &r), 0); /* reopen */
	ap_repo_free(r);
	assert_int_equal(mkdir(empty, 0755), 0);
	assert_int_equal(ap_repo_open(empty, &r), 0);
	ap_repo_free(r);
	put(tmp, "junk/file", NULL);
	assert_true(ap_repo_open(junk, &r) < 0);
	assert_int_equal(ap_repo_open(missing, &r), -ENOENT);
}

static int count_packs(const char *repo)
{
	_cleanup_free_ char *cmd_dir = ap_strdupf("%s/objects/pack", repo);
	char out[4096];
	const char *argv[] = { "ls", cmd_dir, NULL };
	int n = 0;

	assert_int_equal(run(argv, NULL, out, sizeof(out)), 0);
	for (char *p = strstr(out, ".pack"); p; p = strstr(p + 1, ".pack"))
		n++;
	return n;
}

static void test_fetch(void **state)
{
	_cleanup_free_ char *o = tmp_path("fo"), *m = tmp_path("fm.git"), *url = file_url("fo");
	struct ap_remote_opts opts = { .url = url, .branch = "main" };
	char c1[AP_OID_HEXSZ + 1], c2[AP_OID_HEXSZ + 1], tip[AP_OID_HEXSZ + 1] = "";
	char ref[AP_OID_HEXSZ + 1];
	struct ap_repo *r;

	git(tmp, "init", "-q", "-b", "main", o, NULL);
	put(o, "units/x.service", NULL);
	commit(o, "one", c1);
	assert_int_equal(ap_repo_open(m, &r), 0);
	assert_int_equal(ap_repo_fetch(r, &opts, tip), 1);
	assert_string_equal(tip, c1);
	assert_int_equal(ap_repo_branch_tip(r, "main", ref), 0);
	assert_string_equal(ref, c1);
	assert_int_equal(count_packs(m), 1);

	/* nothing moved: 0, no new pack, the ref stays */
	assert_int_equal(ap_repo_fetch(r, &opts, tip), 0);
	assert_string_equal(tip, c1);
	assert_int_equal(count_packs(m), 1);
	assert_int_equal(ap_repo_branch_tip(r, "main", ref), 0);
	assert_string_equal(ref, c1);

	put(o, "units/x.service", "v2");
	commit(o, "two", c2);
	assert_int_equal(ap_repo_fetch(r, &opts, tip), 1);
	assert_string_equal(tip, c2);
	assert_int_equal(count_packs(m), 2);
	assert_int_equal(ap_repo_is_ancestor(r, c1, c2), 1);

	/* a run killed while it updated the ref left its lock file: the next fetch goes through */
	{
		_cleanup_free_ char *lock = ap_strdupf("%s/refs/remotes/origin/main.lock", m);
		int fd = lock ? open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644) : -1;

		assert_true(fd >= 0);
		close(fd);
		put(o, "units/x.service", "v3");
		commit(o, "three", c2);
		assert_int_equal(ap_repo_fetch(r, &opts, tip), 1);
		assert_string_equal(tip, c2);
		assert_int_equal(access(lock, F_OK), -1);
	}

	/* force-pushed back to a commit the mirror already has: the ref moves, nothing is sent */
	git(o, "update-ref", "refs/heads/main", c1, NULL);
	assert_int_equal(ap_repo_fetch(r, &opts, tip), 1);
	assert_string_equal(tip, c1);
	assert_int_equal(count_packs(m), 3);
	assert_int_equal(ap_repo_branch_tip(r, "main", ref), 0);
	assert_string_equal(ref, c1);
	ap_repo_free(r);
}

/* The name of the one pack in repo/objects/pack ("pack-<sha>.pack"), into ret. */
static void only_pack(const char *repo, char *ret, size_t size)
{
	_cleanup_free_ char *dir = ap_strdupf("%s/objects/pack", repo);
	char out[4096], *p, *end;
	const char *argv[] = { "ls", dir, NULL };

	assert_int_equal(run(argv, NULL, out, sizeof(out)), 0);
	assert_non_null(end = strstr(out, ".pack"));
	for (p = end; p > out && p[-1] != '\n'; p--)
		;
	assert_true(strncmp(p, "pack-", 5) == 0 && (size_t)(end - p) + 6 <= size);
	snprintf(ret, size, "%.*s", (int)(end - p + 5), p);
}

/* A first run from a local repository whose objects are packed: the mirror gets the source's
 * pack as it is (same bytes, so the same name), every object of the tip readable; objects
 * that are not packed (a commit made after the last repack) follow in a second pack. */
static void test_fetch_first_run_packed(void **state)
{
	_cleanup_free_ char *o = tmp_path("po"), *m = tmp_path("pm.git"), *m2 = tmp_path("pm2.git");
	_cleanup_free_ char *url = file_url("po"), *dot = tmp_path("po/.git");
	struct ap_remote_opts opts = { .url = url, .branch = "main" };
	char c1[AP_OID_HEXSZ + 1], c2[AP_OID_HEXSZ + 1], tip[AP_OID_HEXSZ + 1], id[64];
	char src_pack[256], got_pack[256], *data = NULL;
	size_t len;
	struct ap_repo *r;

	git(tmp, "init", "-q", "-b", "main", o, NULL);
	for (int i = 0; i < 50; i++) {
		_cleanup_free_ char *f = ap_strdupf("data/d%d/f%d.conf", i % 5, i);

		put(o, f, NULL);
	}
	commit(o, "one", c1);
	git(o, "repack", "-adq", NULL);
	only_pack(dot, src_pack, sizeof(src_pack));

	assert_int_equal(ap_repo_open(m, &r), 0);
	assert_int_equal(ap_repo_fetch(r, &opts, tip), 1);
	assert_string_equal(tip, c1);
	only_pack(m, got_pack, sizeof(got_pack));
	assert_string_equal(got_pack, src_pack);
	git_out(o, id, sizeof(id), "rev-parse", "HEAD:data/d3/f8.conf", NULL);
	assert_int_equal(ap_repo_read_blob(r, id, 4096, &data, &len), 0);
	assert_string_equal(data, "data/d3/f8.conf\n");
	free(data);
	ap_repo_free(r);

	/* a loose commit on top of the pack */
	put(o, "data/d3/f8.conf", "v2");
	commit(o, "two", c2);
	assert_int_equal(ap_repo_open(m2, &r), 0);
	assert_int_equal(ap_repo_fetch(r, &opts, tip), 1);
	assert_string_equal(tip, c2);
	git_out(o, id, sizeof(id), "rev-parse", "HEAD:data/d3/f8.conf", NULL);
	assert_int_equal(ap_repo_read_blob(r, id, 4096, &data, &len), 0);
	assert_string_equal(data, "v2\n");
	free(data);
	assert_int_equal(ap_repo_is_ancestor(r, c1, c2), 1);
	assert_int_equal(ap_repo_fetch(r, &opts, tip), 0);
	ap_repo_free(r);
}

/* Creates path (an empty file) and its directories. */
static void touch(char *path)
{
	int fd;

	mkdir_p(path);
	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) >= 0);
	close(fd);
}

/* A first run killed while it indexed (libgit2's temporary pack, the index's lock) or while
 * it wrote the ref (the ref's lock), or after the packs and before the ref: the next run
 * completes it. */
static void test_fetch_first_run_killed(void **state)
{
	_cleanup_free_ char *o = tmp_path("ko"), *m = tmp_path("km.git"), *url = file_url("ko");
	_cleanup_free_ char *dot = tmp_path("ko/.git"), *tmp_pack = NULL, *idx_lock = NULL;
	_cleanup_free_ char *ref_lock = NULL;
	struct ap_remote_opts opts = { .url = url, .branch = "main" };
	char c1[AP_OID_HEXSZ + 1], tip[AP_OID_HEXSZ + 1], name[256];
	struct ap_repo *r;

	git(tmp, "init", "-q", "-b", "main", o, NULL);
	put(o, "units/a.service", NULL);
	commit(o, "one", c1);
	git(o, "repack", "-adq", NULL);
	only_pack(dot, name, sizeof(name));
	assert_int_equal(ap_repo_open(m, &r), 0);
	tmp_pack = ap_strdupf("%s/objects/pack/pack_git2_a1b2c3", m);
	idx_lock = ap_strdupf("%s/objects/pack/%.*s.idx.lock", m, (int)strlen(name) - 5, name);
	ref_lock = ap_strdupf("%s/refs/remotes/origin/main.lock", m);
	touch(tmp_pack);
	touch(idx_lock);
	touch(ref_lock);
	assert_int_equal(ap_repo_fetch(r, &opts, tip), 1);
	assert_string_equal(tip, c1);
	assert_int_equal(access(tmp_pack, F_OK), -1);
	assert_int_equal(access(idx_lock, F_OK), -1);
	assert_int_equal(access(ref_lock, F_OK), -1);

	git(m, "update-ref", "-d", "refs/remotes/origin/main", NULL);
	assert_int_equal(ap_repo_branch_tip(r, "main", tip), -ENOENT);
	assert_int_equal(ap_repo_fetch(r, &opts, tip), 1);
	assert_string_equal(tip, c1);
	assert_int_equal(count_packs(m), 1);
	ap_repo_free(r);
}

/* The mirror cannot be written (its pack directory is a file): a failure of this host, not
 * a damaged source. */
static void test_fetch_first_run_mirror_unwritable(void **state)
{
	_cleanup_free_ char *o = tmp_path("uo"), *m = tmp_path("um.git"), *url = file_url("uo");
	_cleanup_free_ char *pack_dir = ap_strdupf("%s/objects/pack", m);
	struct ap_remote_opts opts = { .url = url, .branch = "main" };
	char c1[AP_OID_HEXSZ + 1], tip[AP_OID_HEXSZ + 1] = "";
	struct ap_repo *r;

	git(tmp, "init", "-q", "-b", "main", o, NULL);
	put(o, "units/a.service", NULL);
	commit(o, "one", c1);
	git(o, "repack", "-adq", NULL);
	assert_int_equal(ap_repo_open(m, &r), 0);
	assert_int_equal(rmdir(pack_dir), 0);
	touch(pack_dir);
	assert_int_equal(ap_repo_fetch(r, &opts, tip), -EIO);
	assert_string_equal(tip, "");
	assert_int_equal(ap_repo_branch_tip(r, "main", tip), -ENOENT);
	ap_repo_free(r);
}

/* A first fetch of url into a new mirror m fails, and the mirror has no branch to apply. */
static void assert_fetch_refused(const char *m, const char *url)
{
	struct ap_remote_opts opts = { .url = url, .branch = "main" };
	char tip[AP_OID_HEXSZ + 1] = "";
	struct ap_repo *r;

	assert_int_equal(ap_repo_open(m, &r), 0);
	assert_true(ap_repo_fetch(r, &opts, tip) < 0);
	assert_string_equal(tip, "");
	assert_int_equal(ap_repo_branch_tip(r, "main", tip), -ENOENT);
	ap_repo_free(r);
}

/* A source whose pack holds, under a blob's id, content that does not hash to it: the fetch
 * fails and the mirror gets no branch (nothing to apply from). */
static void test_fetch_corrupt_object(void **state)
{
	_cleanup_free_ char *o = tmp_path("co"), *m = tmp_path("cm.git"), *url = file_url("co");
	_cleanup_free_ char *evil = tmp_path("co/evil"), *from = NULL, *to = NULL;
	char c1[AP_OID_HEXSZ + 1], x[64], y[64];

	git(tmp, "init", "-q", "-b", "main", o, NULL);
	put(o, "units/a.service", "good");
	put(o, "units/b.service", NULL);
	commit(o, "one", c1);
	git_out(o, x, sizeof(x), "rev-parse", "HEAD:units/a.service", NULL);
	put(o, "evil", "evil");
	git_out(o, y, sizeof(y), "hash-object", "-w", "evil", NULL);
	from = ap_strdupf("%s/.git/objects/%.2s/%s", o, y, y + 2);
	to = ap_strdupf("%s/.git/objects/%.2s/%s", o, x, x + 2);
	{
		const char *chmod_argv[] = { "chmod", "u+w", to, NULL };
		const char *cp_argv[] = { "cp", from, to, NULL };

		assert_int_equal(run(chmod_argv, NULL, NULL, 0), 0);
		assert_int_equal(run(cp_argv, NULL, NULL, 0), 0);
	}
	git(o, "repack", "-adq", NULL);

	assert_fetch_refused(m, url);
}

/* A pack damaged on disk (one byte changed in the middle of a blob's data): refused too. */
static void test_fetch_damaged_pack(void **state)
{
	_cleanup_free_ char *o = tmp_path("do"), *m = tmp_path("dm.git"), *url = file_url("do");
	_cleanup_free_ char *dot = tmp_path("do/.git"), *pack = NULL, *big = NULL;
	char c1[AP_OID_HEXSZ + 1], name[256];
	struct stat st;
	unsigned char b;
	int fd;

	git(tmp, "init", "-q", "-b", "main", o, NULL);
	assert_non_null(big = calloc(1, 20001));
	for (int i = 0; i < 20000; i++)
		big[i] = (char)('a' + (i * 7919 + i / 13) % 26);
	put(o, "big.conf", big);
	commit(o, "one", c1);
	git(o, "repack", "-adq", NULL);
	only_pack(dot, name, sizeof(name));
	pack = ap_strdupf("%s/objects/pack/%s", dot, name);
	assert_int_equal(chmod(pack, 0644), 0);
	assert_true((fd = open(pack, O_RDWR | O_CLOEXEC)) >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(pread(fd, &b, 1, st.st_size / 2), 1);
	b ^= 0x55;
	assert_int_equal(pwrite(fd, &b, 1, st.st_size / 2), 1);
	close(fd);

	assert_fetch_refused(m, url);
}

static void test_fetch_errors(void **state)
{
	_cleanup_free_ char *m = tmp_path("em.git"), *url = file_url("origin");
	struct ap_remote_opts opts = { .url = url, .branch = "no-such-branch" };
	char tip[AP_OID_HEXSZ + 1] = "";
	struct ap_repo *r;

	assert_int_equal(ap_repo_open(m, &r), 0);
	assert_int_equal(ap_repo_fetch(r, &opts, tip), -ENOENT);
	opts.branch = "a..b";
	assert_int_equal(ap_repo_fetch(r, &opts, tip), -EINVAL);
	opts.branch = "main";
	opts.url = "file:///nonexistent/repo.git"; /* not mounted yet? */
	assert_int_equal(ap_repo_fetch(r, &opts, tip), -EHOSTUNREACH);
	opts.url = tmp; /* a directory, but no repository */
	assert_int_equal(ap_repo_fetch(r, &opts, tip), -ENOENT);
	opts.url = "http://127.0.0.1:1/x.git";
	assert_int_equal(ap_repo_fetch(r, &opts, tip), -EHOSTUNREACH);
	opts.url = "ssh://git@127.0.0.1:1/x.git";
	assert_int_equal(ap_repo_fetch(r, &opts, tip), -EHOSTUNREACH);
	assert_string_equal(tip, "");
	assert_int_equal(ap_repo_branch_tip(r, "main", tip), -ENOENT);
	ap_repo_free(r);
}

/* A token in the URL must not reach the log. */
static void test_fetch_error_hides_password(void **state)
{
	_cleanup_free_ char *m = tmp_path("pm.git"), *log = tmp_path("stderr.log");
	struct ap_remote_opts opts = { .url = "http://user:s3cret@127.0.0.1:1/x.git", .branch = "main" };
	char tip[AP_OID_HEXSZ + 1], text[4096] = "";
	int saved = dup(2), fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	struct ap_repo *r;
	FILE *f;

	assert_int_equal(ap_repo_open(m, &r), 0);
	assert_true(saved >= 0 && fd >= 0);
	fflush(stderr);
	dup2(fd, 2);
	assert_int_equal(ap_repo_fetch(r, &opts, tip), -EHOSTUNREACH);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	ap_repo_free(r);
	assert_non_null(f = fopen(log, "re"));
	assert_true(fread(text, 1, sizeof(text) - 1, f) > 0);
	fclose(f);
	assert_null(strstr(text, "s3cret"));
	assert_non_null(strstr(text, "failed to fetch 'http://user:***@127.0.0.1:1/x.git'"));
}


/* --- fetch: who owns it, what a failure means, how long it may take -------------------------- */

/* A local repository of another user gets our own message and -EPERM, not libgit2's
 * "config value 'safe.directory' was not found"; repo.trust_owner lets it through. */
static void test_fetch_foreign_owner(void **state)
{
	_cleanup_free_ char *o = tmp_path("foreign"), *m = tmp_path("foreign-m.git");
	_cleanup_free_ char *url = file_url("foreign");
	struct ap_remote_opts opts = { .url = url, .branch = "main" };
	const char *chown_argv[] = { "chown", "-R", "65534:65534", o, NULL };
	char tip[AP_OID_HEXSZ + 1] = "", one[AP_OID_HEXSZ + 1];
	struct ap_repo *r;

	if (geteuid() != 0)
		skip(); /* only root can hand a repository to another user; CI runs as root */
	git(tmp, "init", "-q", "-b", "main", o, NULL);
	put(o, "f", NULL);
	commit(o, "one", one);
	assert_int_equal(run(chown_argv, NULL, NULL, 0), 0);
	assert_int_equal(ap_repo_open(m, &r), 0);
	assert_int_equal(ap_repo_fetch(r, &opts, tip), -EPERM);
	assert_string_equal(tip, "");
	opts.trust_owner = true;
	assert_int_equal(ap_repo_fetch(r, &opts, tip), 1);
	assert_string_equal(tip, one);
	opts.trust_owner = false; /* and libgit2's own check is back on */
	assert_int_equal(ap_repo_fetch(r, &opts, tip), -EPERM);
	ap_repo_free(r);
}

/* A private key that others may read is refused before any connection, like ssh does. */
static void test_fetch_ssh_key_mode(void **state)
{
	_cleanup_free_ char *m = tmp_path("key-m.git"), *key = tmp_path("loose_key");
	struct ap_remote_opts opts = { .url = "ssh://git@127.0.0.1:1/x.git", .branch = "main",
				       .ssh_key = key };
	char tip[AP_OID_HEXSZ + 1] = "";
	struct ap_repo *r;

	put(tmp, "loose_key", "not really a key");
	assert_int_equal(chmod(key, 0644), 0);
	assert_int_equal(ap_repo_open(m, &r), 0);
	assert_int_equal(ap_repo_fetch(r, &opts, tip), -EPERM);
	assert_int_equal(chmod(key, 0640), 0);
	assert_int_equal(ap_repo_fetch(r, &opts, tip), -EPERM);
	assert_int_equal(chmod(key, 0600), 0);
	assert_int_equal(ap_repo_fetch(r, &opts, tip), -EHOSTUNREACH); /* port 1 refuses */
	opts.ssh_key = "/nonexistent/key";
	assert_int_equal(ap_repo_fetch(r, &opts, tip), -ENOENT);
	ap_repo_free(r);
}

/* A loopback listener that answers every request with one fixed HTTP status. */
struct http_stub {
	int fd, port, status;
	pthread_t thread;
};

static void *http_stub_main(void *userdata)
{
	struct http_stub *h = userdata;
	char req[8192], resp[256];
	int conn;

	while ((conn = accept4(h->fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		size_t len = 0;
		ssize_t n;

		while (len < sizeof(req) - 1 && (n = read(conn, req + len, sizeof(req) - 1 - len)) > 0) {
			len += (size_t)n;
			req[len] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		snprintf(resp, sizeof(resp), "HTTP/1.1 %d Stub\r\nContent-Length: 0\r\n"
			 "Connection: close\r\n\r\n", h->status);
		if (write(conn, resp, strlen(resp)) < 0)
			break;
		close(conn);
	}
	return NULL;
}

static int listen_loopback(int backlog, int *ret_port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, backlog), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*ret_port = ntohs(a.sin_port);
	return fd;
}

static void test_fetch_http_status(void **state)
{
	static const struct {
		int status, want;
	} cases[] = {
		{ 401, -EACCES }, { 403, -EACCES }, { 404, -ENOENT }, { 410, -ENOENT },
		{ 400, -EREMOTEIO }, { 500, -EHOSTUNREACH }, { 502, -EHOSTUNREACH },
		{ 503, -EHOSTUNREACH }, { 429, -EHOSTUNREACH }, { 408, -EHOSTUNREACH },
	};
	_cleanup_free_ char *m = tmp_path("http-m.git");
	struct http_stub h = { 0 };
	char tip[AP_OID_HEXSZ + 1] = "";
	struct ap_repo *r;

	h.fd = listen_loopback(16, &h.port);
	assert_int_equal(pthread_create(&h.thread, NULL, http_stub_main, &h), 0);
	assert_int_equal(ap_repo_open(m, &r), 0);
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		_cleanup_free_ char *url = ap_strdupf("http://127.0.0.1:%d/x.git", h.port);
		struct ap_remote_opts opts = { .url = url, .branch = "main",
					       .connect_timeout_usec = 10000000,
					       .io_timeout_usec = 10000000 };
		int k;

		h.status = cases[i].status;
		k = ap_repo_fetch(r, &opts, tip);
		if (k != cases[i].want)
			fail_msg("HTTP %d: got %d, want %d", cases[i].status, k, cases[i].want);
	}
	ap_repo_free(r);
	shutdown(h.fd, SHUT_RDWR);
	close(h.fd);
	assert_int_equal(pthread_join(h.thread, NULL), 0);
}

/* Runs a fetch of url with stderr captured into text; returns its result. */
static int fetch_logged(const char *url, unsigned long long timeout_usec, char *text, size_t size)
{
	_cleanup_free_ char *m = tmp_path("to-m.git"), *log = tmp_path("to.log");
	struct ap_remote_opts opts = { .url = url, .branch = "main",
				       .connect_timeout_usec = timeout_usec,
				       .io_timeout_usec = timeout_usec };
	int saved = dup(2), fd = open(log, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), k;
	char tip[AP_OID_HEXSZ + 1];
	struct ap_repo *r;
	ssize_t n;

	assert_int_equal(ap_repo_open(m, &r), 0);
	assert_true(saved >= 0 && fd >= 0);
	fflush(stderr);
	dup2(fd, 2);
	k = ap_repo_fetch(r, &opts, tip);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	ap_repo_free(r);
	n = pread(fd, text, size - 1, 0);
	close(fd);
	text[n > 0 ? n : 0] = '\0';
	return k;
}

/* A remote that drops SYNs (a listener whose accept queue is full) is given up on after
 * repo.connect_timeout, as something to retry. Without our stream it took ~2 minutes. */
static void test_fetch_connect_timeout(void **state)
{
	int port, lfd = listen_loopback(0, &port), clients[8], n = 0, k;
	_cleanup_free_ char *url = ap_strdupf("http://127.0.0.1:%d/x.git", port);
	char text[4096];

	/* Fill the accept queue until a connect no longer completes. */
	for (; n < 8; n++) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		struct pollfd p = { .events = POLLOUT };

		clients[n] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		assert_true(clients[n] >= 0);
		(void)connect(clients[n], (struct sockaddr *)&a, sizeof(a));
		p.fd = clients[n];
		if (poll(&p, 1, 300) == 0) {
			n++;
			break;
		}
	}
	k = fetch_logged(url, 500000, text, sizeof(text));
	for (int i = 0; i < n; i++)
		close(clients[i]);
	close(lfd);
	assert_int_equal(k, -EHOSTUNREACH);
	if (!strstr(text, "timed out after 0.5 s (repo.connect_timeout)"))
		fail_msg("no connect timeout in: %s", text);
}

/* A remote that takes the connection and never answers is given up on after
 * repo.io_timeout (the kernel completes the handshake; nobody accepts or replies). */
static void test_fetch_io_timeout(void **state)
{
	int port, lfd = listen_loopback(4, &port), k;
	_cleanup_free_ char *url = ap_strdupf("http://127.0.0.1:%d/x.git", port);
	char text[4096];

	k = fetch_logged(url, 500000, text, sizeof(text));
	close(lfd);
	assert_int_equal(k, -EHOSTUNREACH);
	if (!strstr(text, "timed out: nothing moved for 0.5 s (repo.io_timeout)"))
		fail_msg("no I/O timeout in: %s", text);
}

/* --- the commit walk ------------------------------------------------------------------------ */

struct seen {
	char ids[16][AP_OID_HEXSZ + 1];
	bool signed_[16];
	size_t n, stop_at;
};

static int on_commit(void *userdata, const struct ap_repo_commit *rc)
{
	struct seen *s = userdata;

	assert_true(s->n < 16);
	memcpy(s->ids[s->n], rc->id, sizeof(rc->id));
	s->signed_[s->n] = rc->signature != NULL;
	assert_string_equal(rc->author, "t <t@example.org>");
	assert_true(rc->time > 0);
	if (rc->signature) {
		if (!ap_startswith(rc->signature, "-----BEGIN SSH SIGNATURE-----"))
			fail_msg("signature of %s: %.60s", rc->id, rc->signature);
		assert_int_equal(strlen(rc->signature), rc->signature_len);
		assert_true(ap_startswith(rc->signed_data, "tree "));
		assert_null(strstr(rc->signed_data, "gpgsig"));
		assert_null(memmem(rc->signed_data, rc->signed_len, "SSH SIGNATURE", 13));
	} else {
		assert_null(rc->signed_data);
	}
	return ++s->n == s->stop_at ? 7 : 0;
}

static size_t index_of(const struct seen *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->ids[i], id) == 0)
			return i;
	fail_msg("%s was not visited", id);
	return 0;
}

/* c1 (signed) - c2 - m (signed merge of side: s1) - c3 */
static void test_walk(void **state)
{
	_cleanup_free_ char *o = tmp_path("wo"), *m = tmp_path("wm.git"), *url = file_url("wo");
	_cleanup_free_ char *key = tmp_path("wkey"), *signing = NULL;
	const char *keygen[] = { "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key, NULL };
	struct ap_remote_opts opts = { .url = url, .branch = "main" };
	char c1[41], c2[41], s1[41], mg[41], c3[41], tip[41];
	struct seen s = { 0 };
	struct ap_repo *r;

	assert_int_equal(run(keygen, NULL, NULL, 0), 0);
	signing = ap_strdupf("user.signingkey=%s", key);
	git(tmp, "init", "-q", "-b", "main", o, NULL);
	put(o, "a", "1");
	git(o, "add", "-A", NULL);
	git(o, "-c", "gpg.format=ssh", "-c", signing, "commit", "-q", "-S", "-m", "c1", NULL);
	git_out(o, c1, sizeof(c1), "rev-parse", "HEAD", NULL);
	put(o, "a", "2");
	commit(o, "c2", c2);
	git(o, "checkout", "-q", "-b", "side", c1, NULL);
	put(o, "b", "1");
	commit(o, "s1", s1);
	git(o, "checkout", "-q", "main", NULL);
	git(o, "-c", "gpg.format=ssh", "-c", signing, "merge", "-q", "-S", "--no-ff", "-m", "merge",
	    "side", NULL);
	git_out(o, mg, sizeof(mg), "rev-parse", "HEAD", NULL);
	put(o, "a", "3");
	commit(o, "c3", c3);
	assert_int_equal(ap_repo_open(m, &r), 0);
	assert_int_equal(ap_repo_fetch(r, &opts, tip), 1);

	assert_int_equal(ap_repo_walk(r, c1, c3, false, on_commit, &s), 0);
	assert_int_equal(s.n, 4); /* c2, s1, m, c3: everything the merge brought */
	assert_true(index_of(&s, c2) < index_of(&s, mg));
	assert_true(index_of(&s, s1) < index_of(&s, mg));
	assert_int_equal(index_of(&s, c3), 3);
	assert_true(s.signed_[index_of(&s, mg)]);
	assert_false(s.signed_[index_of(&s, s1)]);

	s = (struct seen){ 0 };
	assert_int_equal(ap_repo_walk(r, c1, c3, true, on_commit, &s), 0);
	assert_int_equal(s.n, 3); /* c2, m, c3: the side branch is the merge's business */
	assert_string_equal(s.ids[0], c2);
	assert_string_equal(s.ids[1], mg);
	assert_string_equal(s.ids[2], c3);

	s = (struct seen){ 0 };
	assert_int_equal(ap_repo_walk(r, NULL, c1, false, on_commit, &s), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.ids[0], c1);
	assert_true(s.signed_[0]);

	s = (struct seen){ .stop_at = 2 };
	assert_int_equal(ap_repo_walk(r, c1, c3, false, on_commit, &s), 7); /* stopped */
	assert_int_equal(s.n, 2);

	s = (struct seen){ 0 };
	assert_int_equal(ap_repo_walk(r, c3, c3, false, on_commit, &s), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(ap_repo_walk(r, "0000000000000000000000000000000000000001", c3, false,
				      on_commit, &s), -ENOENT);
	ap_repo_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pack_maps_bounded),
		cmocka_unit_test(test_diff_first_run),
		cmocka_unit_test(test_diff_paths),
		cmocka_unit_test(test_diff_modify),
		cmocka_unit_test(test_diff_delete),
		cmocka_unit_test(test_diff_add_nested),
		cmocka_unit_test(test_diff_delete_dir),
		cmocka_unit_test(test_diff_mode_only),
		cmocka_unit_test(test_diff_rename),
		cmocka_unit_test(test_diff_rename_into_other_dir),
		cmocka_unit_test(test_diff_symlink_add),
		cmocka_unit_test(test_diff_file_to_symlink),
		cmocka_unit_test(test_diff_git_tree_order),
		cmocka_unit_test(test_diff_file_to_dir),
		cmocka_unit_test(test_diff_rename_pairs),
		cmocka_unit_test(test_diff_gitlink),
		cmocka_unit_test(test_diff_no_change),
		cmocka_unit_test(test_diff_sorted_range),
		cmocka_unit_test(test_diff_bad_rev),
		cmocka_unit_test(test_diff_never_opens_unchanged_subtrees),
		cmocka_unit_test(test_diff_bounds),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_is_ancestor),
		cmocka_unit_test(test_read_blob),
		cmocka_unit_test(test_read_symlink_blob),
		cmocka_unit_test(test_list_files),
		cmocka_unit_test(test_open),
		cmocka_unit_test(test_fetch),
		cmocka_unit_test(test_fetch_first_run_packed),
		cmocka_unit_test(test_fetch_first_run_killed),
		cmocka_unit_test(test_fetch_first_run_mirror_unwritable),
		cmocka_unit_test(test_fetch_corrupt_object),
		cmocka_unit_test(test_fetch_damaged_pack),
		cmocka_unit_test(test_fetch_errors),
		cmocka_unit_test(test_fetch_error_hides_password),
		cmocka_unit_test(test_fetch_foreign_owner),
		cmocka_unit_test(test_fetch_ssh_key_mode),
		cmocka_unit_test(test_fetch_http_status),
		cmocka_unit_test(test_fetch_connect_timeout),
		cmocka_unit_test(test_fetch_io_timeout),
		cmocka_unit_test(test_walk),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
