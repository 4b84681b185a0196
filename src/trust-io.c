/* Trusting the source, the imperative shell (see trust-io.h): reads the key files, runs
 * ssh-keygen and gpgv through spawn.c on private copies of them, and keeps the cache of
 * verified commits in the state directory through state.c's atomic write. What a verifier's
 * answer means and the cache's format are trust.c's.
 *
 * Deliberately not here: libgit2 (the engine hands over plain commit data read by repo.c),
 * deciding exit codes (the engine), and any verification in-process. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "fsutil.h"
#include "log.h"
#include "spawn.h"
#include "state.h"
#include "trust-io.h"
#include "util.h"

#define KEY_FILE_MAX (4 * 1024 * 1024)
#define CACHE_FILE_MAX ((AP_TRUST_CACHE_MAX + 2) * (AP_OID_HEXSZ + 1) + 128)
#define VERIFY_TIMEOUT_USEC (60ULL * 1000000)
#define MAX_PRINCIPALS 8

struct ap_trust {
	const struct ap_trust_config *c;
	struct ap_state *st;       /* borrowed: the cache file lives there */
	char *signers, *keyring;   /* the key files as read (the hash covers these bytes) */
	size_t signers_len, keyring_len;
	char key_hash[AP_SHA256_HEXSZ + 1];
	char **cached;             /* ids from the cache file, in file order */
	char **sorted;             /* the same, sorted, for bsearch (borrowed strings) */
	struct ap_strv_builder fresh; /* found good in this run */
	char *tmp;                 /* private 0700 dir for the verifiers, made on first use */
	int tmpfd;
	long long now;             /* keys are valid or not at this time */
};

static int read_key_file(const char *key, const char *path, char **ret, size_t *ret_len)
{
	int r;

	if (!path)
		return 0;
	/* A symlink as the file itself is refused: a trust anchor is not swapped by a link. */
	r = ap_fs_read_file(path, KEY_FILE_MAX, ret, ret_len);
	if (r < 0)
		return ap_log_error(r, "failed to read trust.%s '%s': %s", key, path, strerror(-r));
	if (*ret_len == 0)
		return ap_log_error(-EINVAL, "trust.%s '%s' is empty: it would allow no key", key,
				    path);
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_cache(struct ap_trust *t)
{
	_cleanup_free_ char *text = NULL;
	size_t n;
	int r = ap_state_read_verified(t->st, CACHE_FILE_MAX, &text);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if ((r = ap_trust_cache_parse(text, t->key_hash, &t->cached)) < 0)
		return r;
	if (r > 0)
		ap_log_warning("'%s/verified' is damaged at line %d: the commits it listed are "
			       "verified again", ap_state_path(t->st), r);
	n = ap_strv_length(t->cached);
	if (!(t->sorted = calloc(n + 1, sizeof(char *))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		t->sorted[i] = t->cached[i];
	qsort(t->sorted, n, sizeof(char *), cmp_id);
	return 0;
}

int ap_trust_open(const struct ap_trust_config *c, struct ap_state *st, long long now,
		  struct ap_trust **ret)
{
	struct ap_trust *t = calloc(1, sizeof(*t));
	int r;

	if (!t)
		return -ENOMEM;
	t->st = st;
	t->c = c;
	t->tmpfd = -1;
	t->now = now;
	r = read_key_file("ssh_allowed_signers", c->ssh_allowed_signers, &t->signers,
			  &t->signers_len);
	if (r >= 0)
		r = read_key_file("openpgp_keyring", c->openpgp_keyring, &t->keyring,
				  &t->keyring_len);
	if (r >= 0 && t->keyring && ap_trust_keyring_is_armored(t->keyring, t->keyring_len))
		r = ap_log_error(-EINVAL, "trust.openpgp_keyring '%s' is ASCII-armored; gpgv reads "
				 "binary keyrings only: use 'gpg --dearmor' or 'gpg --export' without "
				 "--armor", c->openpgp_keyring);
	if (r >= 0)
		r = ap_trust_key_hash(t->signers, t->signers_len, t->keyring, t->keyring_len,
				      t->key_hash);
	if (r >= 0)
		r = load_cache(t);
	if (r < 0) {
		ap_trust_free(t);
		return r;
	}
	*ret = t;
	return 0;
}

void ap_trust_free(struct ap_trust *t)
{
	if (!t)
		return;
	if (t->tmpfd >= 0)
		close(t->tmpfd);
	if (t->tmp)
		(void)ap_fs_rm_rf(t->tmp);
	free(t->tmp);
	free(t->sorted);
	ap_strv_free(t->cached);
	ap_strv_builder_clear(&t->fresh);
	free(t->signers);
	free(t->keyring);
	free(t);
}

/* A private file in the verifiers' temp dir, 0600. No fsync: it lives for one check. */
static int write_private(struct ap_trust *t, const char *name, const char *data, size_t len)
{
	int fd = openat(t->tmpfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
			0600);
	int r = 0;

	if (fd < 0)
		return -errno;
	while (r >= 0 && len > 0) {
		ssize_t k = write(fd, data, len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			r = -errno;
		else
			data += k, len -= (size_t)k;
	}
	if (close(fd) < 0 && r >= 0)
		r = -errno;
	return r;
}

/* The verifiers get copies of the key files: what they check against is exactly what the
 * cache's key hash covers, even if the configured file changes meanwhile. */
static int ensure_tmp(struct ap_trust *t)
{
	int r;

	if (t->tmpfd >= 0)
		return 0;
	r = ap_fs_mkdtemp("autopull-trust", &t->tmp);
	if (r < 0)
		return ap_log_error(r, "failed to make a temp dir for signature checks: %s",
				    strerror(-r));
	t->tmpfd = open(t->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->tmpfd < 0)
		r = -errno;
	if (r >= 0 && t->signers)
		r = write_private(t, "allowed_signers", t->signers, t->signers_len);
	if (r >= 0 && t->keyring)
		r = write_private(t, "keyring.gpg", t->keyring, t->keyring_len);
	if (r >= 0 && t->keyring && mkdirat(t->tmpfd, "gnupg", 0700) < 0)
		r = -errno;
	if (r < 0)
		return ap_log_error(r, "failed to prepare '%s' for signature checks: %s", t->tmp,
				    strerror(-r));
	return 0;
}

static char *tmp_path(const struct ap_trust *t, const char *name)
{
	return ap_strdupf("%s/%s", t->tmp, name);
}

/* argv of literals and our own paths; spawn.c's argv is not const only because
 * posix_spawn's is not. */
static int run_verifier(const char *const argv[], const char *input, struct ap_spawn_result *res)
{
	int r = ap_spawn_run_input((char *const *)argv, NULL, VERIFY_TIMEOUT_USEC, input, res);

	if (r == -ENOENT)
		return ap_log_error(r, "'%s' is not installed: it verifies the signatures that "
				    "trust: asks for (Debian: %s)", argv[0],
				    strcmp(argv[0], "gpgv") == 0 ? "gpgv" : "openssh-client");
	if (r < 0)
		return ap_log_error(r, "failed to run '%s': %s", argv[0], strerror(-r));
	if (res->timed_out) {
		ap_spawn_result_clear(res);
		return ap_log_error(-ETIMEDOUT, "'%s' did not finish within %llu s", argv[0],
				    VERIFY_TIMEOUT_USEC / 1000000);
	}
	return 0;
}

static int verify_openpgp(struct ap_trust *t, struct ap_trust_verdict *ret)
{
	_cleanup_free_ char *home = tmp_path(t, "gnupg"), *ring = tmp_path(t, "keyring.gpg");
	_cleanup_free_ char *sig = tmp_path(t, "sig"), *data = tmp_path(t, "payload");
	struct ap_spawn_result res = { 0 };
	int r;

	if (!home || !ring || !sig || !data)
		return -ENOMEM;
	/* An absolute --keyring: a bare name would be looked up in the home dir. */
	r = run_verifier((const char *const[]){ "gpgv", "--homedir", home, "--status-fd", "1",
						"--keyring",
				     ring, sig, data, NULL },
			 NULL, &res);
	if (r < 0)
		return r;
	ap_trust_judge_gpgv(res.exit_status, res.output, ret);
	ap_spawn_result_clear(&res);
	return 0;
}

/* The principals find-principals printed: its own diagnostics start with the file name. */
static int principals_of(const char *output, const char *signers, char ***ret)
{
	size_t sl = strlen(signers);

	for (const char *l = output; *l && ap_strv_length(*ret) < MAX_PRINCIPALS;) {
		size_t n = strcspn(l, "\n");
		_cleanup_free_ char *p = strndup(l, n);

		if (!p)
			return -ENOMEM;
		if (n > 0 && !(strncmp(l, signers, sl) == 0 && l[sl] == ':')) {
			int r = ap_strv_push(ret, p);
			if (r < 0)
				return r;
		}
		l += n + (l[n] == '\n');
	}
	return 0;
}

/* find-principals names the allowed principals of the signing key, then verify checks the
 * signature for each until one is good. Both at the current time: git passes the committer
 * date, which whoever signs chooses, so a retired key could back-date its way in. */
static int verify_ssh(struct ap_trust *t, long long when, struct ap_trust_verdict *ret)
{
	_cleanup_free_ char *signers = tmp_path(t, "allowed_signers"), *sig = tmp_path(t, "sig");
	_cleanup_free_ char *data = tmp_path(t, "payload");
	_cleanup_strv_free_ char **principals = NULL;
	struct ap_spawn_result res = { 0 };
	char stamp[16], opt[32];
	int r;

	if (!signers || !sig || !data)
		return -ENOMEM;
	if (ap_trust_ssh_time(when, stamp) < 0)
		return -EINVAL;
	snprintf(opt, sizeof(opt), "-Overify-time=%s", stamp);
	r = run_verifier((const char *const[]){ "ssh-keygen", "-Y", "find-principals", "-s", sig,
						"-f",
				     signers, opt, NULL },
			 NULL, &res);
	if (r < 0)
		return r;
	r = res.exit_status == 0 ? principals_of(res.output, signers, &principals) : 0;
	if (r >= 0 && !principals)
		ap_trust_judge_ssh_find(res.output, ret);
	ap_spawn_result_clear(&res);
	for (size_t i = 0; r >= 0 && principals && principals[i]; i++) {
		r = run_verifier((const char *const[]){ "ssh-keygen", "-Y", "verify", "-f", signers,
							"-I",
					     principals[i], "-n", "git", "-s", sig, opt, NULL },
				 data, &res);
		if (r < 0)
			break;
		ap_trust_judge_ssh_verify(res.exit_status, res.output, principals[i], ret);
		ap_spawn_result_clear(&res);
		if (ret->status == AP_TRUST_GOOD)
			break;
	}
	return r;
}

static bool in_cache(const struct ap_trust *t, const char *id)
{
	size_t n = ap_strv_length(t->cached);

	return n && bsearch(&id, t->sorted, n, sizeof(char *), cmp_id);
}

int ap_trust_verify(struct ap_trust *t, const struct ap_trust_commit *c,
		    struct ap_trust_verdict *ret)
{
	enum ap_sig_kind kind = ap_trust_sig_kind(c->signature, c->signature_len);
	int r;

	if (ap_trust_judge_date(c, t->c->max_date_skew_usec / 1000000, ret) ||
	    ap_trust_judge_without_verifier(in_cache(t, c->id), kind, t->signers != NULL,
					    t->keyring != NULL, ret))
		return 0;
	r = ensure_tmp(t);
	if (r >= 0)
		r = write_private(t, "sig", c->signature, c->signature_len);
	if (r >= 0)
		r = write_private(t, "payload", c->payload, c->payload_len);
	if (r < 0)
		return ap_log_error(r, "failed to write commit %.12s for its signature check: %s",
				    c->id, strerror(-r));
	r = kind == AP_SIG_SSH ? verify_ssh(t, t->now, ret) : verify_openpgp(t, ret);
	if (r >= 0 && ret->status == AP_TRUST_GOOD)
		r = ap_strv_builder_push(&t->fresh, c->id);
	return r;
}

int ap_trust_save(struct ap_trust *t)
{
	_cleanup_strv_builder_ struct ap_strv_builder all = { 0 };
	_cleanup_free_ char *text = NULL;
	int r = 0;

	if (t->fresh.len == 0)
		return 0;
	for (size_t i = 0; r >= 0 && t->cached && t->cached[i]; i++)
		r = ap_strv_builder_push(&all, t->cached[i]);
	for (size_t i = 0; r >= 0 && i < t->fresh.len; i++)
		r = ap_strv_builder_push(&all, t->fresh.v[i]);
	if (r >= 0)
		r = ap_trust_cache_format(all.v, t->key_hash, &text);
	return r < 0 ? r : ap_state_write_verified(t->st, text);
}
