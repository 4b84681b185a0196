/* Trusting the source (see trust.h), the pure part: the fast-forward rule, what a verifier's
 * answer means, which verdicts need no verifier, and the format of the cache of verified
 * commits. No I/O: trust-io.c reads the key files, runs ssh-keygen and gpgv and keeps the
 * cache file.
 *
 * Deliberately not here: libgit2 (the engine hands over plain commit data read by repo.c),
 * deciding exit codes (the engine), and any verification in-process: the verifiers are the
 * ones git itself uses, so a signature git accepts is accepted here and nothing else. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "digest.h"
#include "trust.h"
#include "util.h"

#define CACHE_MAGIC "autopull-verified 1 "

/* --- moves and ranges -------------------------------------------------------------- */

const char *ap_source_move_to_string(enum ap_source_move m)
{
	static const char *const names[] = {
		[AP_MOVE_FIRST] = "first", [AP_MOVE_SAME] = "same",
			[AP_MOVE_FORWARD] = "fast-forward",
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
		return verdict(ret, AP_TRUST_BAD_SIGNATURE,
			       "bad OpenPGP signature (it does not match "
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
		return verdict(ret, AP_TRUST_UNKNOWN_KEY, "OpenPGP key %s is not in the keyring",
			       uid);
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
	if (!c->has_floor || c->time >= c->floor ||
	    (unsigned long long)(c->floor - c->time) <= skew_s)
		return false;
	if (ap_trust_ssh_time(c->time, when) < 0 || ap_trust_ssh_time(c->floor, floor) < 0)
		snprintf(when, sizeof(when), "?"), snprintf(floor, sizeof(floor), "?");
	verdict(ret, AP_TRUST_BAD_DATE, "it is dated %.8s, %lld s before the commit it follows "
		"(%.8s); trust.max_date_skew allows %llu s", when, c->floor - c->time, floor,
			skew_s);
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
	ap_buf_clear(&b);
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
		return ap_buf_linef(out, "%.12s %s (%s): good (verified before)", c->id, author,
				    date);
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
		ap_buf_clear(&b);
		return r;
	}
	*ret = b.data;
	return 0;
}

/* --- verdicts that need no verifier ----------------------------------------------------- */

bool ap_trust_judge_without_verifier(bool cached, enum ap_sig_kind kind, bool has_signers,
				     bool has_keyring, struct ap_trust_verdict *ret)
{
	*ret = (struct ap_trust_verdict){ 0 };
	if (cached) {
		ret->cached = true;
		verdict(ret, AP_TRUST_GOOD, "verified before with the same keys");
	} else if (kind == AP_SIG_NONE) {
		verdict(ret, AP_TRUST_UNSIGNED, "the commit carries no signature");
	} else if (kind == AP_SIG_OTHER) {
		verdict(ret, AP_TRUST_UNKNOWN_KEY, "the signature is neither SSH nor OpenPGP");
	} else if (kind == AP_SIG_SSH && !has_signers) {
		verdict(ret, AP_TRUST_UNKNOWN_KEY, "signed with an SSH key, but "
			"trust.ssh_allowed_signers is not set");
	} else if (kind == AP_SIG_OPENPGP && !has_keyring) {
		verdict(ret, AP_TRUST_UNKNOWN_KEY, "signed with an OpenPGP key, but "
			"trust.openpgp_keyring is not set");
	} else {
		return false;
	}
	return true;
}
