/* Decrypting secrets (secrets.h). Owns the age child and its private staging directory
 * (state_dir/secrets/XXXXXX, 0700), which never outlives one decryption.
 *
 * Deliberately not here: deciding whether a decrypted file changed (planning.c compares the
 * new plaintext with the destination, drift.c through ap_secrets_matches, both in memory),
 * installing it (install.c writes it like any file, with mode 0600 unless the rule says
 * otherwise, plan.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* state_dir/secrets/XXXXXX, private to this decryption. */
static int make_stage(const struct ap_config *cfg, char **ret)
{
	_cleanup_free_ char *parent = ap_strdupf("%s/" STAGE_DIR, cfg->state_dir);
	_cleanup_free_ char *dir = parent ? ap_strdupf("%s/XXXXXX", parent) : NULL;

	if (!dir)
		return -ENOMEM;
	if (mkdir(parent, 0700) < 0 && errno != EEXIST)
		return -errno;
	/* an existing one may have been made by hand: it must be ours and private */
	if (chmod(parent, 0700) < 0 || !mkdtemp(dir))
		return -errno;
	*ret = TAKE_PTR(dir);
	return 0;
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
	int r = make_stage(cfg, &dir), k;

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

int ap_secrets_remove_leftovers(const struct ap_config *cfg)
{
	static const char *const dirs[] = { STAGE_DIR, "stage" };

	for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
		_cleanup_free_ char *p = ap_strdupf("%s/%s", cfg->state_dir, dirs[i]);
		int r = p ? ap_fs_rm_rf(p) : -ENOMEM;

		if (r < 0)
			return ap_log_error(r, "cannot remove '%s' left by an earlier run: %s",
					    p ? p : dirs[i], strerror(-r));
	}
	return 0;
}
