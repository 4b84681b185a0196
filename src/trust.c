/* Trusting the source (see trust.h): the fast-forward rule, what a verifier's answer means,
 * the cache of verified commits, then the shell that reads the key
 * files, spawns ssh-keygen and gpgv through spawn.c and writes state_dir/verified.
 *
 * Deliberately not here: libgit2 (the engine hands over plain commit data read by repo.c),
 * deciding exit codes (the engine), and any verification in-process: the verifiers are the
 * ones git itself uses, so a signature git accepts is accepted here and nothing else. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "digest.h"
#include "fsutil.h"
#include "log.h"
#include "spawn.h"
#include "trust.h"
#include "util.h"

#define KEY_FILE_MAX (4 * 1024 * 1024)
#define CACHE_FILE "verified"
#define CACHE_MAGIC "autopull-verified 1 "
#define VERIFY_TIMEOUT_USEC (60ULL * 1000000)
#define MAX_PRINCIPALS 8

/* --- moves and ranges -------------------------------------------------------------- */

const char *ap_source_move_to_string(enum ap_source_move m)
{
	static const char *const names[] = {
		[AP_MOVE_FIRST] = "first", [AP_MOVE_SAME] = "same", [AP_MOVE_FORWARD] = "fast-forward",
		[AP_MOVE_ROLLBACK] = "rollback", [AP_MOVE_REWIND] = "history-rewritten",
	};

	return (unsigned)m < ELEMENTSOF(names) ? names[m] : "?";
}

enum ap_source_move ap_trust_classify(const char *applied, const char *target, bool descends,
				      bool ancestor, bool explicit_commit)
{
	if (!*applied)
		return AP_MOVE_FIRST;
	if (strcmp(applied, target) == 0)
		return AP_MOVE_SAME;
	if (descends)
		return AP_MOVE_FORWARD;
	/* A branch that moved back by itself is a rewind like any other: only an operator's
	 * --commit makes going back a rollback. */
	if (ancestor && explicit_commit)
		return AP_MOVE_ROLLBACK;
	return AP_MOVE_REWIND;
}

void ap_trust_range(const struct ap_trust_config *c, enum ap_source_move m, const char *applied,
		    struct ap_trust_range *ret)
{
	*ret = (struct ap_trust_range){ .check = c->enabled && m != AP_MOVE_SAME };
	if (!ret->check || c->require == AP_TRUST_TIP || m == AP_MOVE_ROLLBACK)
		return; /* the target alone: a rollback target was part of an applied history */
	ret->first_parent = c->require == AP_TRUST_FIRST_PARENT;
	ret->from = m == AP_MOVE_FIRST ? c->since : applied;
}

/* --- verdicts ------------------------------------------------------------------------- */

const char *ap_trust_status_to_string(enum ap_trust_status s)
{
	static const char *const names[] = {
		[AP_TRUST_GOOD] = "good", [AP_TRUST_UNSIGNED] = "unsigned",
		[AP_TRUST_UNKNOWN_KEY] = "unknown key", [AP_TRUST_BAD_SIGNATURE] = "bad signature",
		[AP_TRUST_KEY_NOT_VALID] = "key not valid", [AP_TRUST_BAD_DATE] = "bad date",
	};

	return (unsigned)s < ELEMENTSOF(names) ? names[s] : "?";
}

static void verdict(struct ap_trust_verdict *v, enum ap_trust_status s, const char *fmt, ...)
	_printf_(3, 4);
static void verdict(struct ap_trust_verdict *v, enum ap_trust_status s, const char *fmt, ...)
{
	va_list ap;

	v->status = s;
	va_start(ap, fmt);
	if (vsnprintf(v->why, sizeof(v->why), fmt, ap) < 0)
		v->why[0] = '\0';
	va_end(ap);
}

/* Copies at most one line of src (up to n bytes) into dst, without control characters:
 * verifier output quoted in a message must not forge log lines. */
static void copy_line(char *dst, size_t size, const char *src, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n && src[i] && src[i] != '\n' && k + 1 < size; i++)
		dst[k++] = (unsigned char)src[i] < 0x20 ? '?' : src[i];
	dst[k] = '\0';
}

enum ap_sig_kind ap_trust_sig_kind(const char *sig, size_t len)
{
	if (!sig)
		return AP_SIG_NONE;
	if (len >= 29 && strncmp(sig, "-----BEGIN SSH SIGNATURE-----", 29) == 0)
		return AP_SIG_SSH;
	if (len >= 29 && strncmp(sig, "-----BEGIN PGP SIGNATURE-----", 29) == 0)
		return AP_SIG_OPENPGP;
	return AP_SIG_OTHER;
}

/* The rest of the status line "[GNUPG:] <keyword> ..." for keyword, or NULL. */
static const char *gpg_status(const char *output, const char *keyword)
{
	size_t kl = strlen(keyword);

	for (const char *l = output; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
		if (strncmp(l, "[GNUPG:] ", 9) == 0 && strncmp(l + 9, keyword, kl) == 0 &&
		    (l[9 + kl] == ' ' || l[9 + kl] == '\n' || l[9 + kl] == '\0'))
			return l[9 + kl] == ' ' ? l + 10 + kl : l + 9 + kl;
	return NULL;
}

static size_t count_status(const char *output, const char *keyword)
{
	size_t n = 0, kl = strlen(keyword);

	for (const char *l = output; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
		n += strncmp(l, "[GNUPG:] ", 9) == 0 && strncmp(l + 9, keyword, kl) == 0;
	return n;
}

/* gpgv exits 0 for a good signature by an expired or revoked key too: the status lines
 * decide, and only GOODSIG with VALIDSIG and nothing else is good. */
void ap_trust_judge_gpgv(int exit_status, const char *output, struct ap_trust_verdict *ret)
{
	const char *good = gpg_status(output, "GOODSIG"), *valid = gpg_status(output, "VALIDSIG");
	const char *s, *fpr_end;
	char uid[96] = "";

	*ret = (struct ap_trust_verdict){ 0 };
	if (count_status(output, "NEWSIG") > 1)
		return verdict(ret, AP_TRUST_BAD_SIGNATURE, "more than one OpenPGP signature");
	if ((s = gpg_status(output, "BADSIG")))
		return verdict(ret, AP_TRUST_BAD_SIGNATURE, "bad OpenPGP signature (it does not match "
			       "the commit)");
	if ((s = gpg_status(output, "REVKEYSIG")) || (s = gpg_status(output, "EXPKEYSIG"))) {
		copy_line(uid, sizeof(uid), s, strlen(s));
		return verdict(ret, AP_TRUST_KEY_NOT_VALID, "OpenPGP key %s (%s)",
			       gpg_status(output, "REVKEYSIG") ? "revoked" : "expired", uid);
	}
	if (gpg_status(output, "EXPSIG"))
		return verdict(ret, AP_TRUST_KEY_NOT_VALID, "OpenPGP signature expired");
	if ((s = gpg_status(output, "NO_PUBKEY")) || (s = gpg_status(output, "ERRSIG"))) {
		copy_line(uid, sizeof(uid), s, strcspn(s, " \n"));
		return verdict(ret, AP_TRUST_UNKNOWN_KEY, "OpenPGP key %s is not in the keyring", uid);
	}
	if (exit_status != 0 || !good || !valid)
		return verdict(ret, AP_TRUST_BAD_SIGNATURE, "gpgv did not confirm the signature "
			       "(exit %d)", exit_status);
	s = good + strcspn(good, " \n"); /* "<keyid> <user id>" */
	if (*s == ' ')
		copy_line(uid, sizeof(uid), s + 1, strlen(s + 1));
	fpr_end = strrchr(valid, ' ');
	snprintf(ret->signer, sizeof(ret->signer), "%.80s %.40s", uid,
		 fpr_end && fpr_end < valid + strcspn(valid, "\n") ? fpr_end + 1 : valid);
	ret->signer[strcspn(ret->signer, "\n")] = '\0';
	verdict(ret, AP_TRUST_GOOD, "OpenPGP signature by %s", ret->signer);
}

/* Names a finding of ssh-keygen from its own words; the refusal does not depend on it. */
static bool ssh_key_time_problem(const char *output)
{
	return strstr(output, "key has expired") || strstr(output, "not yet valid");
}

void ap_trust_judge_ssh_find(const char *output, struct ap_trust_verdict *ret)
{
	*ret = (struct ap_trust_verdict){ 0 };
	if (ssh_key_time_problem(output))
		return verdict(ret, AP_TRUST_KEY_NOT_VALID, "the SSH key's allowed_signers entry "
			       "is not valid now (valid-after/valid-before)");
	verdict(ret, AP_TRUST_UNKNOWN_KEY, "the SSH key is not in allowed_signers");
}

void ap_trust_judge_ssh_verify(int exit_status, const char *output, const char *principal,
			       struct ap_trust_verdict *ret)
{
	const char *good = strstr(output, "Good \"git\" signature for "), *key;

	*ret = (struct ap_trust_verdict){ 0 };
	if (exit_status == 0 && good) {
		key = strstr(good, " key ");
		snprintf(ret->signer, sizeof(ret->signer), "%.80s", principal);
		if (key) {
			size_t used = strlen(ret->signer);

			snprintf(ret->signer + used, sizeof(ret->signer) - used, " %.60s", key + 5);
			ret->signer[strcspn(ret->signer, "\n")] = '\0';
		}
		return verdict(ret, AP_TRUST_GOOD, "SSH signature by %s", ret->signer);
	}
	if (strstr(output, "not permitted for use in signature namespace"))
		return verdict(ret, AP_TRUST_KEY_NOT_VALID, "the SSH key of '%.80s' is not allowed "
			       "for namespace git (namespaces= in allowed_signers)", principal);
	if (ssh_key_time_problem(output))
		return verdict(ret, AP_TRUST_KEY_NOT_VALID, "the SSH key of '%.80s' is not valid "
			       "now (valid-after/valid-before)", principal);
	verdict(ret, AP_TRUST_BAD_SIGNATURE, "bad SSH signature (it does not match the commit)");
}

int ap_trust_ssh_time(long long t, char ret[16])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || strftime(ret, 16, "%Y%m%d%H%M%SZ", &tm) != 15)
		return -EINVAL;
	return 0;
}

/* 10000-01-01T00:00:00Z: ssh-keygen, strftime("%Y") and people read four-digit years. */
#define YEAR_10000 253402300800LL

bool ap_trust_judge_date(const struct ap_trust_commit *c, unsigned long long skew_s,
			 struct ap_trust_verdict *ret)
{
	char when[16], floor[16];

	*ret = (struct ap_trust_verdict){ 0 };
	if (c->time < 0 || c->time >= YEAR_10000) {
		verdict(ret, AP_TRUST_BAD_DATE, "its committer date (%lld) is outside the years "
			"1970..9999", c->time);
		return true;
	}
	if (!c->has_floor || c->time >= c->floor || (unsigned long long)(c->floor - c->time) <= skew_s)
		return false;
	if (ap_trust_ssh_time(c->time, when) < 0 || ap_trust_ssh_time(c->floor, floor) < 0)
		snprintf(when, sizeof(when), "?"), snprintf(floor, sizeof(floor), "?");
	verdict(ret, AP_TRUST_BAD_DATE, "it is dated %.8s, %lld s before the commit it follows "
		"(%.8s); trust.max_date_skew allows %llu s", when, c->floor - c->time, floor, skew_s);
	return true;
}

bool ap_trust_keyring_is_armored(const char *data, size_t len)
{
	size_t i = 0;

	while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
		i++;
	return len - i >= 15 && strncmp(data + i, "-----BEGIN PGP ", 15) == 0;
}

int ap_trust_key_hash(const char *signers, size_t signers_len, const char *keyring,
		      size_t keyring_len, char ret[65])
{
	struct ap_buf b = { 0 };
	int r = ap_buf_printf(&b, "autopull-trust 1\nssh %zu\n", signers_len);

	if (r >= 0 && signers_len)
		r = ap_buf_append(&b, signers, signers_len);
	if (r >= 0)
		r = ap_buf_printf(&b, "\nopenpgp %zu\n", keyring_len);
	if (r >= 0 && keyring_len)
		r = ap_buf_append(&b, keyring, keyring_len);
	if (r >= 0)
		r = ap_digest_sha256_hex(b.data, b.len, ret);
	ap_buf_free(&b);
	return r;
}

int ap_trust_format_verdict(const struct ap_trust_commit *c, const struct ap_trust_verdict *v,
			    struct ap_buf *out)
{
	time_t t = (time_t)c->time;
	char author[128], date[32] = "?";
	struct tm tm;

	copy_line(author, sizeof(author), c->author, strlen(c->author));
	if (gmtime_r(&t, &tm))
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", &tm);
	/* One escaped line (the dry run prints it): the author is the committer's text. */
	if (v->cached)
		return ap_buf_linef(out, "%.12s %s (%s): good (verified before)", c->id, author, date);
	return ap_buf_linef(out, "%.12s %s (%s): %s: %s", c->id, author, date,
			    ap_trust_status_to_string(v->status), v->why);
}

/* --- the cache format ------------------------------------------------------------------- */

static bool is_commit_id(const char *s, size_t n)
{
	return n == AP_OID_HEXSZ && strspn(s, "0123456789abcdef") >= AP_OID_HEXSZ;
}

int ap_trust_cache_parse(const char *text, const char *key_hash, char ***ret_ids)
{
	_cleanup_strv_builder_ struct ap_strv_builder ids = { 0 };
	size_t ml = strlen(CACHE_MAGIC), hl = strlen(key_hash);
	const char *l = text;

	*ret_ids = NULL;
	if (strncmp(l, CACHE_MAGIC, ml) != 0 || strncmp(l + ml, key_hash, hl) != 0 ||
	    l[ml + hl] != '\n')
		return 0; /* other keys, another format, or damaged: trust none of it */
	l += ml + hl + 1;
	for (int line = 2; *l; line++) {
		size_t n = strcspn(l, "\n");
		char id[AP_OID_HEXSZ + 1];
		int r;

		if (!is_commit_id(l, n) || l[n] != '\n')
			return line; /* damaged: trust none of it either */
		memcpy(id, l, AP_OID_HEXSZ);
		id[AP_OID_HEXSZ] = '\0';
		if ((r = ap_strv_builder_push(&ids, id)) < 0)
			return r;
		l += n + 1;
	}
	*ret_ids = ap_strv_builder_take(&ids);
	return 0;
}

int ap_trust_cache_format(char *const *ids, const char *key_hash, char **ret)
{
	size_t n = ap_strv_length(ids), skip = n > AP_TRUST_CACHE_MAX ? n - AP_TRUST_CACHE_MAX : 0;
	struct ap_buf b = { 0 };
	int r = ap_buf_printf(&b, "%s%s\n", CACHE_MAGIC, key_hash);

	for (size_t i = skip; r >= 0 && i < n; i++)
		r = ap_buf_printf(&b, "%s\n", ids[i]);
	if (r < 0) {
		ap_buf_free(&b);
		return r;
	}
	*ret = b.data;
	return 0;
}

/* --- the shell: key files, the cache file, the verifiers -------------------------------- */

struct ap_trust {
	const struct ap_trust_config *c;
	char *state_dir;
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

/* Splits an absolute path at its last '/' and reads it beneath its directory (a symlink
 * as the file itself is refused: a trust anchor is not swapped by a link). */
static int read_abs(const char *path, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_free_ char *dir = strdup(path);
	char *slash = dir ? strrchr(dir, '/') : NULL;
	int dfd, r;

	if (!slash)
		return dir ? -EINVAL : -ENOMEM;
	*slash = '\0';
	dfd = ap_fs_open_dir(*dir ? dir : "/", 0, 0);
	if (dfd < 0)
		return dfd;
	r = ap_fs_read_beneath(dfd, slash + 1, max, ret, ret_len);
	close(dfd);
	return r;
}

static int read_key_file(const char *key, const char *path, char **ret, size_t *ret_len)
{
	int r;

	if (!path)
		return 0;
	r = read_abs(path, KEY_FILE_MAX, ret, ret_len);
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
	_cleanup_free_ char *text = NULL, *path = ap_strdupf("%s/" CACHE_FILE, t->state_dir);
	size_t len = 0, n;
	int r;

	if (!path)
		return -ENOMEM;
	r = read_abs(path, (AP_TRUST_CACHE_MAX + 2) * (AP_OID_HEXSZ + 1) + 128, &text, &len);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return ap_log_error(r, "failed to read '%s': %s", path, strerror(-r));
	if ((r = ap_trust_cache_parse(text, t->key_hash, &t->cached)) < 0)
		return r;
	if (r > 0)
		ap_log_warning("'%s' is damaged at line %d: the commits it listed are verified again",
			       path, r);
	n = ap_strv_length(t->cached);
	if (!(t->sorted = calloc(n + 1, sizeof(char *))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		t->sorted[i] = t->cached[i];
	qsort(t->sorted, n, sizeof(char *), cmp_id);
	return 0;
}

int ap_trust_open(const struct ap_trust_config *c, const char *state_dir, long long now,
		  struct ap_trust **ret)
{
	struct ap_trust *t = calloc(1, sizeof(*t));
	int r;

	if (!t || !(t->state_dir = strdup(state_dir))) {
		free(t);
		return -ENOMEM;
	}
	t->c = c;
	t->tmpfd = -1;
	t->now = now;
	r = read_key_file("ssh_allowed_signers", c->ssh_allowed_signers, &t->signers, &t->signers_len);
	if (r >= 0)
		r = read_key_file("openpgp_keyring", c->openpgp_keyring, &t->keyring, &t->keyring_len);
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
	free(t->state_dir);
	free(t);
}

/* A private file in the verifiers' temp dir, 0600. No fsync: it lives for one check. */
static int write_private(struct ap_trust *t, const char *name, const char *data, size_t len)
{
	int fd = openat(t->tmpfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
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
	r = run_verifier((const char *const[]){ "gpgv", "--homedir", home, "--status-fd", "1", "--keyring",
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
	r = run_verifier((const char *const[]){ "ssh-keygen", "-Y", "find-principals", "-s", sig, "-f",
				     signers, opt, NULL },
			 NULL, &res);
	if (r < 0)
		return r;
	r = res.exit_status == 0 ? principals_of(res.output, signers, &principals) : 0;
	if (r >= 0 && !principals)
		ap_trust_judge_ssh_find(res.output, ret);
	ap_spawn_result_clear(&res);
	for (size_t i = 0; r >= 0 && principals && principals[i]; i++) {
		r = run_verifier((const char *const[]){ "ssh-keygen", "-Y", "verify", "-f", signers, "-I",
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

/* The verdicts that need no verifier. Returns true when ret is final. */
static bool verdict_without_verifier(const struct ap_trust *t, const struct ap_trust_commit *c,
				     enum ap_sig_kind kind, struct ap_trust_verdict *ret)
{
	*ret = (struct ap_trust_verdict){ 0 };
	if (in_cache(t, c->id)) {
		ret->cached = true;
		verdict(ret, AP_TRUST_GOOD, "verified before with the same keys");
	} else if (kind == AP_SIG_NONE) {
		verdict(ret, AP_TRUST_UNSIGNED, "the commit carries no signature");
	} else if (kind == AP_SIG_OTHER) {
		verdict(ret, AP_TRUST_UNKNOWN_KEY, "the signature is neither SSH nor OpenPGP");
	} else if (kind == AP_SIG_SSH && !t->signers) {
		verdict(ret, AP_TRUST_UNKNOWN_KEY, "signed with an SSH key, but "
			"trust.ssh_allowed_signers is not set");
	} else if (kind == AP_SIG_OPENPGP && !t->keyring) {
		verdict(ret, AP_TRUST_UNKNOWN_KEY, "signed with an OpenPGP key, but "
			"trust.openpgp_keyring is not set");
	} else {
		return false;
	}
	return true;
}

int ap_trust_verify(struct ap_trust *t, const struct ap_trust_commit *c,
		    struct ap_trust_verdict *ret)
{
	enum ap_sig_kind kind = ap_trust_sig_kind(c->signature, c->signature_len);
	int r;

	if (ap_trust_judge_date(c, t->c->max_date_skew_usec / 1000000, ret) ||
	    verdict_without_verifier(t, c, kind, ret))
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
	int dfd, r = 0;

	if (t->fresh.len == 0)
		return 0;
	for (size_t i = 0; r >= 0 && t->cached && t->cached[i]; i++)
		r = ap_strv_builder_push(&all, t->cached[i]);
	for (size_t i = 0; r >= 0 && i < t->fresh.len; i++)
		r = ap_strv_builder_push(&all, t->fresh.v[i]);
	if (r >= 0)
		r = ap_trust_cache_format(all.v, t->key_hash, &text);
	if (r < 0)
		return r;
	dfd = ap_fs_open_dir(t->state_dir, 0, 0);
	r = dfd < 0 ? dfd : ap_fs_write_atomic(dfd, CACHE_FILE, text, strlen(text), 0600,
					       (uid_t)-1, (gid_t)-1);
	if (dfd >= 0)
		close(dfd);
	if (r < 0)
		return ap_log_error(r, "failed to write '%s/" CACHE_FILE "': %s", t->state_dir,
				    strerror(-r));
	return 0;
}
