/* Decrypting secrets (secrets.h). Owns the age child and its private staging directory
 * (state_dir/secrets/XXXXXX, 0700), which never outlives one decryption and is flock()ed for
 * as long as it lives: diff and status decrypt without the state lock, so an apply that
 * starts meanwhile must tell their live directories from the ones of a killed run.
 *
 * Deliberately not here: deciding whether a decrypted file changed (planning.c compares the
 * new plaintext with the destination, drift.c through ap_secrets_matches, both in memory),
 * installing it (install.c writes it like any file, with mode 0600 unless the rule says
 * otherwise, plan.c). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "plan.h"
#include "secrets.h"
#include "spawn.h"
#include "util.h"

#define STAGE_DIR "secrets"

bool ap_secrets_is_secret(const struct ap_config *cfg, const char *path)
{
	struct ap_path_map m = { 0 };
	bool secret = ap_plan_map_path(cfg, path, &m) >= 0 && m.kind == AP_MAP_FILE &&
		      m.rule->decrypt;

	ap_path_map_clear(&m);
	return secret;
}

/* Opens the staging directory name in the secrets directory pfd and locks it: blocking
 * (LOCK_EX), for a decryption, which waits out a removal in progress; or not (LOCK_NB), for a
 * removal, which must leave a live decryption alone (-EWOULDBLOCK). */
static int lock_stage(int pfd, const char *name, int how)
{
	int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	if (flock(fd, how) < 0) {
		r = -errno;
		(void)close(fd);
		return r;
	}
	return fd;
}

/* state_dir/secrets/XXXXXX, private to this decryption, locked through *ret_fd until it is
 * removed. A removal that took the lock between mkdtemp and ours leaves a directory with no
 * link (or none at all): make another. */
static int make_stage(const struct ap_config *cfg, char **ret, int *ret_fd)
{
	_cleanup_free_ char *parent = ap_strdupf("%s/" STAGE_DIR, cfg->state_dir);
	_cleanup_close_ int pfd = -1;

	if (!parent)
		return -ENOMEM;
	if (mkdir(parent, 0700) < 0 && errno != EEXIST)
		return -errno;
	/* an existing one may have been made by hand: it must be ours and private */
	if (chmod(parent, 0700) < 0)
		return -errno;
	pfd = open(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0)
		return -errno;
	for (int tries = 0; tries < 3; tries++) {
		_cleanup_free_ char *dir = ap_strdupf("%s/XXXXXX", parent);
		struct stat st;
		int fd;

		if (!dir)
			return -ENOMEM;
		if (!mkdtemp(dir))
			return -errno;
		fd = lock_stage(pfd, strrchr(dir, '/') + 1, LOCK_EX);
		if (fd == -ENOENT)
			continue;
		if (fd < 0)
			return fd;
		if (fstat(fd, &st) < 0 || st.st_nlink == 0) {
			(void)close(fd);
			continue;
		}
		*ret_fd = fd;
		*ret = TAKE_PTR(dir);
		return 0;
	}
	return -EAGAIN;
}

/* Why age refused, in our words: its own messages may quote the input (a plaintext committed
 * by mistake under a decrypt: rule would reach the log), so none of its output is shown. */
static const char *age_says(const struct ap_spawn_result *res)
{
	const char *out = res->output ? res->output : "";

	if (res->timed_out)
		return "age timed out";
	if (strstr(out, "no identity matched"))
		return "the host is not one of its recipients";
	if (strstr(out, "header") || strstr(out, "armor"))
		return "it is not an age file";
	if (strstr(out, "identit"))
		return "age cannot use the identity";
	return "age failed";
}

static int run_age(const struct ap_config *cfg, const char *what, const char *dir,
		   const char *data, size_t len, char **ret, size_t *ret_len)
{
	_cleanup_free_ char *in = ap_strdupf("%s/in.age", dir), *out = ap_strdupf("%s/out", dir);
	char *const argv[] = { (char *)"age", (char *)"-d", (char *)"-i", cfg->secrets_identity,
			       (char *)"-o", out, in, NULL };
	struct ap_spawn_result res = { 0 };
	_cleanup_close_ int dfd = -1;
	int r;

	if (!in || !out)
		return -ENOMEM;
	dfd = ap_fs_open_dir(dir, 0, 0700);
	if (dfd < 0)
		return dfd;
	r = ap_fs_write_atomic(dfd, "in.age", data, len, 0600, (uid_t)-1, (gid_t)-1);
	if (r >= 0)
		r = ap_spawn_run(argv, NULL, AP_SECRETS_TIMEOUT_USEC, &res);
	if (r < 0)
		return ap_log_error(r, "cannot decrypt '%s': age could not run: %s", what,
				    strerror(-r));
	if (res.exit_status != 0 || res.timed_out) {
		r = ap_log_error(res.timed_out ? -ETIMEDOUT : -EINVAL,
				 "cannot decrypt '%s' with identity '%s': %s (age exit %d)", what,
				 cfg->secrets_identity, age_says(&res), res.exit_status);
		ap_spawn_result_clear(&res);
		return r;
	}
	ap_spawn_result_clear(&res);
	r = ap_fs_read_beneath(dfd, "out", AP_MAX_BLOB_SIZE, ret, ret_len);
	if (r < 0)
		return ap_log_error(r, "cannot read the decrypted '%s': %s", what, strerror(-r));
	return 0;
}

int ap_secrets_decrypt(const struct ap_config *cfg, const char *what, const char *data,
		       size_t len, char **ret, size_t *ret_len)
{
	_cleanup_free_ char *dir = NULL;
	_cleanup_close_ int lock = -1;
	int r = make_stage(cfg, &dir, &lock), k;

	if (r < 0)
		return ap_log_error(r, "cannot stage the decryption of '%s' in '%s/" STAGE_DIR
				    "': %s", what, cfg->state_dir, strerror(-r));
	r = run_age(cfg, what, dir, data, len, ret, ret_len);
	k = ap_fs_rm_rf(dir);
	if (k < 0 && r >= 0) {
		free(TAKE_PTR(*ret));
		return ap_log_error(k, "cannot remove the plaintext of '%s' from '%s': %s", what,
				    dir, strerror(-k));
	}
	return r;
}

int ap_secrets_matches(const struct ap_config *cfg, struct ap_repo *repo, const char *oid,
		       const char *what, const char *data, size_t len)
{
	_cleanup_free_ char *cipher = NULL, *plain = NULL;
	size_t cipher_len = 0, plain_len = 0;
	int r = ap_repo_read_blob(repo, oid, AP_MAX_BLOB_SIZE, &cipher, &cipher_len);

	if (r >= 0)
		r = ap_secrets_decrypt(cfg, what, cipher, cipher_len, &plain, &plain_len);
	if (r < 0)
		return r;
	return plain_len == len && memcmp(plain, data, len) == 0;
}

/* Opens state_dir/secrets for the removal: 0 with *ret NULL when there is none, or when it
 * was not a directory (a symlink) and was removed as such, the link only. */
static int open_stages(const char *parent, DIR **ret)
{
	int fd = open(parent, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), r;

	*ret = NULL;
	if (fd < 0 && (errno == ELOOP || errno == ENOTDIR))
		return ap_fs_rm_rf(parent);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	*ret = fdopendir(fd);
	if (*ret)
		return 0;
	r = -errno;
	(void)close(fd);
	return r;
}

/* Removes the staging directories of state_dir/secrets whose lock can be taken: their
 * decryption was killed. Anything else found there (none is made) is removed too, symlinks
 * unlinked, never followed (ap_fs_rm_rf). */
static int remove_dead_stages(const struct ap_config *cfg)
{
	_cleanup_free_ char *parent = ap_strdupf("%s/" STAGE_DIR, cfg->state_dir);
	struct dirent *de;
	DIR *d = NULL;
	int r = parent ? open_stages(parent, &d) : -ENOMEM;

	if (r < 0)
		return ap_log_error(r, "cannot remove '%s' left by an earlier run: %s",
				    parent ? parent : STAGE_DIR, strerror(-r));
	while (d && (errno = 0, de = readdir(d))) {
		_cleanup_free_ char *p = NULL;
		int fd, k;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		fd = lock_stage(dirfd(d), de->d_name, LOCK_EX | LOCK_NB);
		if (fd == -EWOULDBLOCK)
			continue; /* a decryption in progress */
		p = ap_strdupf("%s/%s", parent, de->d_name);
		k = p ? ap_fs_rm_rf(p) : -ENOMEM;
		if (fd >= 0)
			(void)close(fd);
		if (k < 0 && r >= 0)
			r = ap_log_error(k, "cannot remove '%s' left by an earlier run: %s",
					 p ? p : de->d_name, strerror(-k));
	}
	if (d && errno && r >= 0)
		r = ap_log_error(-errno, "cannot read '%s': %s", parent, strerror(errno));
	if (d)
		(void)closedir(d);
	return r;
}

int ap_secrets_remove_leftovers(const struct ap_config *cfg)
{
	_cleanup_free_ char *p = ap_strdupf("%s/stage", cfg->state_dir);
	int r = p ? ap_fs_rm_rf(p) : -ENOMEM;

	/* the validation stage is used only under the state lock, which the caller holds */
	if (r < 0)
		return ap_log_error(r, "cannot remove '%s' left by an earlier run: %s",
				    p ? p : "stage", strerror(-r));
	return remove_dead_stages(cfg);
}
