/* Tests for secrets.c with the real age and age-keygen: a file encrypted for the host's
 * identity decrypts (armored and binary), one for another identity or no age file at all is
 * refused with -EINVAL, the private staging in the state directory is gone after every
 * decryption, and the leftovers of a killed run are removed.
 *
 * Not covered here: which files are secrets and when they count as changed (planning.c, the
 * integration test t-68-secrets.sh). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "capture.h"
#include "fsutil.h"
#include "secrets.h"
#include "spawn.h"
#include "util.h"

#define PLAIN "TOKEN=hunter2\n"

static char tmpdir[] = "/tmp/test-secrets-XXXXXX";
static char *host_key, *other_key, *host_recipient, *other_recipient;

static void run(char *const argv[])
{
	struct ap_spawn_result res = { 0 };

	assert_int_equal(ap_spawn_run(argv, NULL, 30 * 1000000ULL, &res), 0);
	if (res.exit_status != 0)
		print_error("%s: %s\n", argv[0], res.output ? res.output : "");
	assert_int_equal(res.exit_status, 0);
	ap_spawn_result_clear(&res);
}

static char *keygen(const char *name, char **ret_recipient)
{
	char *key = ap_strdupf("%s/%s", tmpdir, name);
	_cleanup_free_ char *pub = ap_strdupf("%s/%s.pub", tmpdir, name), *text = NULL;
	size_t len = 0;

	assert_non_null(key);
	run((char *const[]){ (char *)"age-keygen", (char *)"-o", key, NULL });
	/* age-keygen -y prints the recipient; spawn.c captures it with stderr, so a file */
	run((char *const[]){ (char *)"sh", (char *)"-c", (char *)"age-keygen -y \"$0\" > \"$1\"", key,
			     pub, NULL });
	assert_int_equal(ap_fs_read_file(pub, 4096, &text, &len), 0);
	text[strcspn(text, "\n")] = '\0';
	*ret_recipient = strdup(text);
	return key;
}

/* The age file of PLAIN for recipient (armored or binary). */
static char *encrypt(const char *recipient, bool armor, size_t *ret_len)
{
	_cleanup_free_ char *in = ap_strdupf("%s/plain", tmpdir), *out = ap_strdupf("%s/enc", tmpdir);
	_cleanup_close_ int dfd = ap_fs_open_dir(tmpdir, 0, 0700);
	char *data = NULL;

	assert_int_equal(ap_fs_write_atomic(dfd, "plain", PLAIN, strlen(PLAIN), 0600, (uid_t)-1,
					    (gid_t)-1), 0);
	run((char *const[]){ (char *)"age", (char *)(armor ? "-a" : "-e"), (char *)"-r",
			     (char *)recipient, (char *)"-o", out, in, NULL });
	assert_int_equal(ap_fs_read_file(out, 1 << 20, &data, ret_len), 0);
	assert_int_equal(unlink(in), 0);
	assert_int_equal(unlink(out), 0);
	return data;
}

/* Nothing is left in state_dir/secrets. */
static void assert_staging_empty(void)
{
	_cleanup_free_ char *dir = ap_strdupf("%s/secrets", tmpdir);
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	if (!d)
		return;
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	assert_int_equal(n, 0);
}

static struct ap_config cfg_for(char *key)
{
	return (struct ap_config){ .state_dir = tmpdir, .secrets_identity = key };
}

static void test_decrypt(void **state)
{
	struct ap_config cfg = cfg_for(host_key);

	(void)state;
	for (int armor = 0; armor <= 1; armor++) {
		size_t len = 0, plain_len = 0;
		_cleanup_free_ char *enc = encrypt(host_recipient, armor, &len), *plain = NULL;

		assert_int_equal(ap_secrets_decrypt(&cfg, "env/app.env.age", enc, len, &plain,
						    &plain_len), 0);
		assert_int_equal(plain_len, strlen(PLAIN));
		assert_memory_equal(plain, PLAIN, plain_len);
		assert_staging_empty();
	}
}

static void test_not_a_recipient(void **state)
{
	struct ap_config cfg = cfg_for(host_key);
	size_t len = 0, plain_len = 0;
	_cleanup_free_ char *enc = encrypt(other_recipient, true, &len), *plain = NULL, *log = NULL;
	struct capture cap;

	(void)state;
	capture_start(&cap, tmpdir);
	assert_int_equal(ap_secrets_decrypt(&cfg, "env/app.env.age", enc, len, &plain, &plain_len),
			 -EINVAL);
	log = capture_end(&cap);
	assert_non_null(strstr(log, host_key));
	assert_non_null(strstr(log, "not one of its recipients"));
	assert_null(plain);
	assert_staging_empty();
	/* the other host's identity reads it */
	cfg = cfg_for(other_key);
	assert_int_equal(ap_secrets_decrypt(&cfg, "env/app.env.age", enc, len, &plain, &plain_len),
			 0);
	assert_memory_equal(plain, PLAIN, plain_len);
}

/* A plaintext committed by mistake under a decrypt: rule: refused, and not quoted in the log
 * (age's own message would quote it). */
static void test_not_age(void **state)
{
	struct ap_config cfg = cfg_for(host_key);
	_cleanup_free_ char *plain = NULL, *log = NULL;
	struct capture cap;
	size_t plain_len = 0;

	(void)state;
	capture_start(&cap, tmpdir);
	assert_int_equal(ap_secrets_decrypt(&cfg, "env/app.env.age", PLAIN, strlen(PLAIN), &plain,
					    &plain_len), -EINVAL);
	log = capture_end(&cap);
	assert_non_null(strstr(log, "cannot decrypt 'env/app.env.age' with identity '"));
	assert_non_null(strstr(log, "it is not an age file"));
	assert_null(strstr(log, "hunter2"));
	assert_int_equal(ap_secrets_decrypt(&cfg, "env/app.env.age", "", 0, &plain, &plain_len),
			 -EINVAL);
	assert_null(plain);
	assert_staging_empty();
}

/* A run killed during a decryption or a validation left plaintext behind. */
static void test_leftovers(void **state)
{
	struct ap_config cfg = cfg_for(host_key);
	_cleanup_free_ char *sec = ap_strdupf("%s/secrets", tmpdir),
			    *stage = ap_strdupf("%s/stage", tmpdir);
	_cleanup_close_ int tfd = ap_fs_open_dir(tmpdir, 0, 0700), fa = -1, fb = -1;
	struct stat st;

	(void)state;
	fa = ap_fs_mkdirs_beneath(tfd, "secrets/XYZ", 0700);
	fb = ap_fs_mkdirs_beneath(tfd, "stage/etc", 0700);
	assert_true(fa >= 0 && fb >= 0);
	assert_int_equal(ap_fs_write_atomic(fa, "out", PLAIN, 5, 0600, (uid_t)-1, (gid_t)-1), 0);
	assert_int_equal(ap_fs_write_atomic(fb, "app.env", PLAIN, 5, 0600, (uid_t)-1, (gid_t)-1),
			 0);
	assert_int_equal(ap_secrets_remove_leftovers(&cfg), 0);
	assert_staging_empty();
	assert_int_equal(lstat(stage, &st), -1);
	/* nothing to remove is no error */
	assert_int_equal(ap_secrets_remove_leftovers(&cfg), 0);
	assert_int_equal(ap_fs_rm_rf(sec), 0);
	assert_int_equal(ap_secrets_remove_leftovers(&cfg), 0);
	/* state_dir/secrets a symlink: the link goes, what it points to stays */
	{
		int fe = ap_fs_mkdirs_beneath(tfd, "elsewhere/XYZ", 0700);
		_cleanup_free_ char *to = ap_strdupf("%s/elsewhere", tmpdir),
				    *in = ap_strdupf("%s/elsewhere/XYZ", tmpdir);

		assert_true(fe >= 0);
		assert_int_equal(close(fe), 0);
		assert_int_equal(symlink(to, sec), 0);
		assert_int_equal(ap_secrets_remove_leftovers(&cfg), 0);
		assert_int_equal(lstat(sec, &st), -1);
		assert_int_equal(lstat(in, &st), 0);
		assert_int_equal(ap_fs_rm_rf(to), 0);
	}
}

/* A verb that decrypts without the state lock (diff, status) may be inside age while an apply
 * takes the lock: only a staging directory whose lock can be taken (its owner is gone) is
 * removed; a symlink among them is removed, never followed. */
static void test_leftovers_held(void **state)
{
	struct ap_config cfg = cfg_for(host_key);
	_cleanup_free_ char *held = ap_strdupf("%s/secrets/HELD/out", tmpdir),
			    *dead = ap_strdupf("%s/secrets/DEAD", tmpdir),
			    *link = ap_strdupf("%s/secrets/LINK", tmpdir),
			    *target = ap_strdupf("%s/keep/file", tmpdir),
			    *keep = ap_strdupf("%s/keep", tmpdir);
	_cleanup_close_ int tfd = ap_fs_open_dir(tmpdir, 0, 0700), fh = -1, fd = -1, fk = -1;
	struct stat st;

	(void)state;
	fh = ap_fs_mkdirs_beneath(tfd, "secrets/HELD", 0700);
	fd = ap_fs_mkdirs_beneath(tfd, "secrets/DEAD", 0700);
	fk = ap_fs_mkdirs_beneath(tfd, "keep", 0700);
	assert_true(fh >= 0 && fd >= 0 && fk >= 0);
	assert_int_equal(ap_fs_write_atomic(fh, "out", PLAIN, 5, 0600, (uid_t)-1, (gid_t)-1), 0);
	assert_int_equal(ap_fs_write_atomic(fd, "out", PLAIN, 5, 0600, (uid_t)-1, (gid_t)-1), 0);
	assert_int_equal(ap_fs_write_atomic(fk, "file", PLAIN, 5, 0600, (uid_t)-1, (gid_t)-1), 0);
	assert_int_equal(symlink(keep, link), 0);
	/* a lock on another open file description, as a live decryption holds it */
	assert_int_equal(flock(fh, LOCK_EX | LOCK_NB), 0);
	assert_int_equal(ap_secrets_remove_leftovers(&cfg), 0);
	assert_int_equal(lstat(held, &st), 0);
	assert_int_equal(lstat(dead, &st), -1);
	assert_int_equal(lstat(link, &st), -1);
	assert_int_equal(lstat(target, &st), 0);
	/* its owner gone, it is a leftover like any other */
	assert_int_equal(close(fh), 0);
	fh = -1;
	assert_int_equal(ap_secrets_remove_leftovers(&cfg), 0);
	assert_staging_empty();
	assert_int_equal(ap_fs_rm_rf(keep), 0);
}

static int group_setup(void **state)
{
	(void)state;
	if (!mkdtemp(tmpdir))
		return -1;
	host_key = keygen("host.key", &host_recipient);
	other_key = keygen("other.key", &other_recipient);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	free(host_key);
	free(other_key);
	free(host_recipient);
	free(other_recipient);
	return ap_fs_rm_rf(tmpdir);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decrypt),
		cmocka_unit_test(test_not_a_recipient),
		cmocka_unit_test(test_not_age),
		cmocka_unit_test(test_leftovers),
		cmocka_unit_test(test_leftovers_held),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
