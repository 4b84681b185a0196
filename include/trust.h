/* Trusting the source: may the fetched commits be applied? Two rules.
 *
 *   Fast-forward only: the target must descend from the applied commit, or be an older
 *   commit named with --commit (a rollback). Anything else means the history was rewritten
 *   (force-push, rewind), and is refused unless allowed explicitly.
 *
 *   Signed history (trust: in the configuration): the commits in applied..target carry a
 *   valid signature by an allowed key: OpenSSH signatures are checked with `ssh-keygen -Y
 *   verify -n git` against an allowed_signers file, OpenPGP ones with gpgv against a binary
 *   keyring. Which commits: every commit through all parents (every-commit), the
 *   first-parent chain (first-parent: a signed merge vouches for what it merges), or the
 *   target alone (tip). Commits found good are remembered in state_dir/verified, keyed by
 *   the hash of the key material, so no commit is verified twice under the same keys.
 *
 * trust.c gets plain data (commit id, author, time, signature, signed payload) from the
 * engine, which reads them with repo.c; it never sees libgit2. The pure parts (how a move
 * is classified, which range is checked, what a verifier's output means, the cache and
 * formats) are here; the part that spawns the verifiers and touches files is trust-io.h. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "model.h"
#include "util.h"

/* --- where the target stands relative to the applied commit ------------------------ */

enum ap_source_move {
	AP_MOVE_FIRST,    /* nothing applied yet */
	AP_MOVE_SAME,     /* the target is the applied commit */
	AP_MOVE_FORWARD,  /* the target descends from the applied commit */
	AP_MOVE_ROLLBACK, /* --commit names an ancestor of the applied commit */
	AP_MOVE_REWIND,   /* anything else: the history was rewritten */
};
const char *ap_source_move_to_string(enum ap_source_move m);

/* applied: "" when nothing was applied. descends: target descends from applied;
 * ancestor: target is an ancestor of applied; explicit: the target was named by --commit
 * (only then is going back a rollback rather than a rewind). */
enum ap_source_move ap_trust_classify(const char *applied, const char *target, bool descends,
				      bool ancestor, bool explicit_commit);

/* The commits to verify: from..to through all parents, or the first-parent chain of it;
 * from NULL means the target alone. ret->check is false when nothing needs verifying. */
struct ap_trust_range {
	bool check;
	const char *from;
	bool first_parent;
};
void ap_trust_range(const struct ap_trust_config *c, enum ap_source_move m, const char *applied,
		    struct ap_trust_range *ret);

/* --- one commit -------------------------------------------------------------------- */

struct ap_trust_commit {
	const char *id;          /* 40 hex digits */
	const char *author;      /* "Name <email>" */
	long long time;          /* committer time, seconds since the epoch */
	bool has_floor;
	long long floor;         /* the newest committer time of its parents and of the applied
				  * commit it moves on from: it may not be older by more than the
				  * skew allowed */
	const char *signature;   /* the gpgsig header, or NULL when unsigned */
	size_t signature_len;
	const char *payload;     /* the signed bytes (the commit without its signature) */
	size_t payload_len;
};

enum ap_trust_status {
	AP_TRUST_GOOD,
	AP_TRUST_UNSIGNED,
	AP_TRUST_UNKNOWN_KEY,   /* no allowed key made it (or no verifier for its kind) */
	AP_TRUST_BAD_SIGNATURE, /* does not match the commit */
	AP_TRUST_KEY_NOT_VALID, /* allowed key, but not for this principal, namespace or time */
	AP_TRUST_BAD_DATE,
		/* committer date outside 1970..9999, or older than what it follows */
};
const char *ap_trust_status_to_string(enum ap_trust_status s);

struct ap_trust_verdict {
	enum ap_trust_status status;
	bool cached;       /* good from the cache, no verifier ran */
	char signer[160];  /* principal and key, or OpenPGP user id and fingerprint; "" if none */
	char why[256];     /* for people */
};

enum ap_sig_kind { AP_SIG_NONE, AP_SIG_SSH, AP_SIG_OPENPGP, AP_SIG_OTHER };
enum ap_sig_kind ap_trust_sig_kind(const char *sig, size_t len);

/* What a verifier's exit status and output (stdout and stderr together) mean. */
void ap_trust_judge_gpgv(int exit_status, const char *output, struct ap_trust_verdict *ret);
void ap_trust_judge_ssh_verify(int exit_status, const char *output, const char *principal,
			       struct ap_trust_verdict *ret);
/* find-principals found nobody: why, from its output. */
void ap_trust_judge_ssh_find(const char *output, struct ap_trust_verdict *ret);

/* "YYYYMMDDHHMMSSZ" for ssh-keygen -Overify-time=. */
int ap_trust_ssh_time(long long t, char ret[16]);

/* The committer date is chosen by whoever signs, so it decides nothing about the key (keys
 * are checked at the current time); it is only refused when it is impossible (before 1970,
 * after 9999) or older than the commits it follows by more than skew_s seconds (a signer
 * back-dating a commit). Returns true with ret set when the date is refused. */
bool ap_trust_judge_date(const struct ap_trust_commit *c, unsigned long long skew_s,
			 struct ap_trust_verdict *ret);

/* gpgv takes binary keyrings only: an armored one finds no key at all. */
bool ap_trust_keyring_is_armored(const char *data, size_t len);

/* The hash of the key material (what the cache is valid for). */
int ap_trust_key_hash(const char *signers, size_t signers_len, const char *keyring,
		      size_t keyring_len, char ret[65]);

/* The verdicts that need no verifier: found good before under the same keys (cached),
 * unsigned, or signed with a kind of key none is configured for. Returns true with ret set
 * when it is final. */
bool ap_trust_judge_without_verifier(bool cached, enum ap_sig_kind kind, bool has_signers,
				     bool has_keyring, struct ap_trust_verdict *ret);

/* One line for people: "<id12> <author> (<date>): <why>". */
int ap_trust_format_verdict(const struct ap_trust_commit *c, const struct ap_trust_verdict *v,
			    struct ap_buf *out);

/* --- the cache of verified commits (state_dir/verified) ---------------------------- */

#define AP_TRUST_CACHE_MAX 100000

/* "autopull-verified 1 <key hash>\n" then one commit id per line, oldest first. Text
 * written for other keys (or damaged) yields no ids: it is never trusted. Returns 0, or for
 * damaged text under the same keys the number of its first damaged line. */
int ap_trust_cache_parse(const char *text, const char *key_hash, char ***ret_ids);
/* Keeps the newest AP_TRUST_CACHE_MAX ids. */
int ap_trust_cache_format(char *const *ids, const char *key_hash, char **ret);
