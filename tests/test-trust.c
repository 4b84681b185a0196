/* Tests for trust.c. The pure parts (moves, ranges, what verifier output means, the cache
 * formats) get table cases; the shell runs the real ssh-keygen and gpgv against
 * keys generated at setup in a temp dir: ed25519 SSH keys in an allowed_signers file
 * (one allowed, one unknown, one past its valid-before, one for another namespace) and
 * OpenPGP keys in binary keyrings (good, unknown, expired, revoked). */
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fsutil.h"
#include "state.h"
#include "trust-io.h"
#include "util.h"

static char tmp[PATH_MAX];
static char env_home[PATH_MAX + 16], env_gnupg[PATH_MAX + 16];
static const char *child_env[] = { env_home, env_gnupg, "PATH=/usr/bin:/bin", "LC_ALL=C", NULL };
static const char payload[] = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"
			      "author A <alice@example.org> 1700000000 +0000\n"
			      "committer A <alice@example.org> 1700000000 +0000\n\nchange\n";
static const char *const id = "0123456789abcdef0123456789abcdef01234567";
static char gpg_fpr[4][48]; /* bob (allowed), eve (unknown), carol (expired), dan (revoked) */

/* --- helpers ---------------------------------------------------------------------------- */

static char *path_of(const char *rel)
{
	char *p = ap_strdupf("%s/%s", tmp, rel);

	assert_non_null(p);
	return p;
}

/* Runs argv (NULL-terminated) with the test environment; stdout into out (if any). */
static int run(const char *const *argv, char *out, size_t outsz)
{
	posix_spawn_file_actions_t fa;
	size_t len = 0;
	char buf[4096];
	ssize_t n;
	int p[2], status;
	pid_t pid;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0); /* gpg chatters */
	assert_int_equal(posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv,
				      (char *const *)child_env), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	while ((n = read(p[0], buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; out && i < n && len + 1 < outsz; i++)
			out[len++] = buf[i];
	close(p[0]);
	if (out)
		out[len] = '\0';
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define RUN(...) assert_int_equal(run((const char *const[]){ __VA_ARGS__, NULL }, NULL, 0), 0)

static void put(const char *rel, const char *text, size_t len)
{
	_cleanup_free_ char *p = path_of(rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static char *slurp(const char *rel, size_t *ret_len)
{
	_cleanup_free_ char *p = path_of(rel);
	char *data = NULL;
	size_t len = 0;
	int dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	assert_true(dfd >= 0);
	assert_int_equal(ap_fs_read_beneath(dfd, rel, 1 << 20, &data, &len), 0);
	close(dfd);
	if (ret_len)
		*ret_len = len;
	return data;
}

static char *pubkey_line(const char *name)
{
	_cleanup_free_ char *rel = ap_strdupf("%s.pub", name);
	char *s = slurp(rel, NULL);

	s[strcspn(s, "\n")] = '\0';
	return s;
}

/* --- fixtures ------------------------------------------------------------------------- */

static void make_ssh_keys(void)
{
	_cleanup_free_ char *alice = pubkey_line("alice"), *old = pubkey_line("old");
	_cleanup_free_ char *other = pubkey_line("other");
	_cleanup_free_ char *signers = ap_strdupf(
		"alice@example.org namespaces=\"git\" %s\n"
		"old@example.org namespaces=\"git\",valid-before=\"20200101\" %s\n"
		"other@example.org namespaces=\"file\" %s\n", alice, old, other);

	assert_non_null(signers);
	put("allowed_signers", signers, strlen(signers));
}

static void gen_ssh(const char *name)
{
	_cleanup_free_ char *key = path_of(name);

	RUN("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", key);
}

/* payload.<name>.sig: payload signed by the SSH key name for namespace git. */
static void ssh_sign(const char *name)
{
	_cleanup_free_ char *key = path_of(name), *file = ap_strdupf("payload.%s", name);
	_cleanup_free_ char *abs = path_of(file);

	put(file, payload, sizeof(payload) - 1);
	RUN("ssh-keygen", "-q", "-Y", "sign", "-f", key, "-n", "git", abs);
}

static void gen_gpg(int i, const char *uid, const char *when, const char *expire)
{
	char out[8192], *p;

	RUN("gpg", "--batch", "--quiet", "--passphrase", "", "--faked-system-time", when,
	    "--quick-gen-key", uid, "ed25519", "sign", expire);
	assert_int_equal(run((const char *const[]){ "gpg", "--with-colons", "--list-keys", uid,
						     NULL }, out, sizeof(out)), 0);
	assert_non_null(p = strstr(out, "\nfpr:::::::::"));
	memcpy(gpg_fpr[i], p + 13, 40);
	gpg_fpr[i][40] = '\0';
}

/* payload.pgp<i>.sig: an armored detached signature by key i, made at faked time when. */
static void gpg_sign(int i, const char *when)
{
	_cleanup_free_ char *rel = ap_strdupf("payload.pgp%d", i), *abs = path_of(rel);
	_cleanup_free_ char *sig = ap_strdupf("%s.sig", abs);

	put(rel, payload, sizeof(payload) - 1);
	RUN("gpg", "--batch", "--quiet", "--faked-system-time", when, "--armor", "--local-user",
	    gpg_fpr[i], "--output", sig, "--detach-sign", abs);
}

static void export_keyring(const char *rel, int i, bool armor)
{
	_cleanup_free_ char *abs = path_of(rel);

	RUN("gpg", "--batch", "--quiet", "--yes", "--output", abs, armor ? "--armor" : "--no-armor",
	    "--export", gpg_fpr[i]);
}

static void make_gpg_keys(void)
{
	_cleanup_free_ char *rev = NULL, *revfile = NULL;
	size_t len;

	gen_gpg(0, "Bob <bob@example.org>", "20230101T000000!", "0");
	gen_gpg(1, "Eve <eve@example.org>", "20230101T000000!", "0");
	gen_gpg(2, "Carol <carol@example.org>", "20200101T000000!", "1d");
	gen_gpg(3, "Dan <dan@example.org>", "20230101T000000!", "0");
	gpg_sign(0, "20230102T000000!");
	gpg_sign(1, "20230102T000000!");
	gpg_sign(2, "20200101T010000!"); /* while Carol's key was valid */
	gpg_sign(3, "20230102T000000!");
	/* Dan's revocation certificate, as gpg stored it, with its ":" guard removed. */
	revfile = ap_strdupf("gnupg/openpgp-revocs.d/%s.rev", gpg_fpr[3]);
	rev = slurp(revfile, &len);
	for (char *p = strstr(rev, ":-----"); p; p = strstr(p, ":-----")) {
		memmove(p, p + 1, len - (size_t)(p - rev));
		len--;
	}
	put("dan.rev", rev, len);
	{
		_cleanup_free_ char *abs = path_of("dan.rev");
		RUN("gpg", "--batch", "--quiet", "--import", abs);
	}
	export_keyring("bob.gpg", 0, false);
	export_keyring("bob.asc", 0, true);
	export_keyring("carol.gpg", 2, false);
	export_keyring("dan.gpg", 3, false);
}

static int setup(void **state)
{
	_cleanup_free_ char *gnupg = NULL;
	const char *base = secure_getenv("TMPDIR");

	snprintf(tmp, sizeof(tmp), "%s/test-trust-XXXXXX", base && *base == '/' ? base : "/tmp");
	assert_non_null(mkdtemp(tmp));
	gnupg = path_of("gnupg");
	assert_int_equal(mkdir(gnupg, 0700), 0);
	snprintf(env_home, sizeof(env_home), "HOME=%s", tmp);
	snprintf(env_gnupg, sizeof(env_gnupg), "GNUPGHOME=%s", gnupg);
	for (const char *const *n = (const char *const[]){ "alice", "mallory", "old", "other", NULL };
	     *n; n++)
		gen_ssh(*n);
	make_ssh_keys();
	ssh_sign("alice");
	ssh_sign("mallory");
	ssh_sign("old");
	ssh_sign("other");
	make_gpg_keys();
	return 0;
}

static int teardown(void **state)
{
	_cleanup_free_ char *gnupg = path_of("gnupg");

	/* gpg started an agent for this home while signing; it is ours to stop. */
	(void)run((const char *const[]){ "gpgconf", "--homedir", gnupg, "--kill", "all", NULL },
		  NULL, 0);
	assert_int_equal(ap_fs_rm_rf(tmp), 0);
	return 0;
}

/* --- pure: moves, ranges, kinds ---------------------------------------------------------- */

static void test_classify(void **state)
{
	const char *a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", *b = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

	assert_int_equal(ap_trust_classify("", b, false, false, false), AP_MOVE_FIRST);
	assert_int_equal(ap_trust_classify(a, a, true, true, true), AP_MOVE_SAME);
	assert_int_equal(ap_trust_classify(a, b, true, false, false), AP_MOVE_FORWARD);
	assert_int_equal(ap_trust_classify(a, b, true, false, true), AP_MOVE_FORWARD);
	assert_int_equal(ap_trust_classify(a, b, false, true, true), AP_MOVE_ROLLBACK);
	/* the branch itself went back: a rewind, not a rollback */
	assert_int_equal(ap_trust_classify(a, b, false, true, false), AP_MOVE_REWIND);
	assert_int_equal(ap_trust_classify(a, b, false, false, false), AP_MOVE_REWIND);
	assert_int_equal(ap_trust_classify(a, b, false, false, true), AP_MOVE_REWIND);
	assert_string_equal(ap_source_move_to_string(AP_MOVE_REWIND), "history-rewritten");
	assert_string_equal(ap_source_move_to_string(AP_MOVE_FORWARD), "fast-forward");
}

static void test_range(void **state)
{
	struct ap_trust_config c = { .enabled = true, .require = AP_TRUST_EVERY_COMMIT };
	const char *applied = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	struct ap_trust_range r;

	ap_trust_range(&c, AP_MOVE_FORWARD, applied, &r);
	assert_true(r.check);
	assert_ptr_equal(r.from, applied);
	assert_false(r.first_parent);
	ap_trust_range(&c, AP_MOVE_REWIND, applied, &r);
	assert_ptr_equal(r.from, applied); /* only what the applied history does not have */
	ap_trust_range(&c, AP_MOVE_SAME, applied, &r);
	assert_false(r.check);
	ap_trust_range(&c, AP_MOVE_FIRST, "", &r);
	assert_true(r.check);
	assert_null(r.from); /* the tip alone */
	c.since = "cccccccccccccccccccccccccccccccccccccccc";
	ap_trust_range(&c, AP_MOVE_FIRST, "", &r);
	assert_ptr_equal(r.from, c.since);
	ap_trust_range(&c, AP_MOVE_ROLLBACK, applied, &r);
	assert_true(r.check);
	assert_null(r.from);
	c.require = AP_TRUST_FIRST_PARENT;
	ap_trust_range(&c, AP_MOVE_FORWARD, applied, &r);
	assert_true(r.first_parent);
	assert_ptr_equal(r.from, applied);
	c.require = AP_TRUST_TIP;
	ap_trust_range(&c, AP_MOVE_FORWARD, applied, &r);
	assert_true(r.check);
	assert_null(r.from);
	c.enabled = false;
	ap_trust_range(&c, AP_MOVE_FORWARD, applied, &r);
	assert_false(r.check);
}

static void test_sig_kind(void **state)
{
	static const char ssh[] = "-----BEGIN SSH SIGNATURE-----\nU1NI\n-----END SSH SIGNATURE-----\n";
	static const char pgp[] = "-----BEGIN PGP SIGNATURE-----\n\niHUE\n-----END PGP SIGNATURE-----\n";

	assert_int_equal(ap_trust_sig_kind(NULL, 0), AP_SIG_NONE);
	assert_int_equal(ap_trust_sig_kind(ssh, strlen(ssh)), AP_SIG_SSH);
	assert_int_equal(ap_trust_sig_kind(pgp, strlen(pgp)), AP_SIG_OPENPGP);
	assert_int_equal(ap_trust_sig_kind("-----BEGIN SIGNED MESSAGE-----", 30), AP_SIG_OTHER);
	assert_int_equal(ap_trust_sig_kind(ssh, 10), AP_SIG_OTHER);
	assert_true(ap_trust_keyring_is_armored("\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n", 39));
	assert_false(ap_trust_keyring_is_armored("\x98\x33\x04", 3));
	assert_false(ap_trust_keyring_is_armored("", 0));
}

/* --- pure: what verifier output means ----------------------------------------------------- */

struct gpgv_case {
	const char *name;
	int exit_status;
	const char *output;
	enum ap_trust_status want;
	const char *why;
};

#define FPR "2CD7562198476DC0723493E14E6A7441AEEF56B0"
static const struct gpgv_case gpgv_cases[] = {
	{ "good", 0,
	  "[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG 4E6A7441AEEF56B0 Bob <bob@example.org>\n"
	  "gpgv: Good signature from \"Bob <bob@example.org>\"\n"
	  "[GNUPG:] VALIDSIG " FPR " 2026-11-30 1796026648 0 4 0 22 8 00 " FPR "\n",
	  AP_TRUST_GOOD, "OpenPGP signature by Bob <bob@example.org> " FPR },
	{ "bad", 1, "[GNUPG:] NEWSIG\n[GNUPG:] BADSIG 4E6A7441AEEF56B0 Bob <bob@example.org>\n",
	  AP_TRUST_BAD_SIGNATURE, "bad OpenPGP signature" },
	{ "unknown", 2,
	  "[GNUPG:] NEWSIG\n[GNUPG:] ERRSIG 4E6A7441AEEF56B0 22 8 00 1796026648 9 " FPR "\n"
	  "[GNUPG:] NO_PUBKEY 4E6A7441AEEF56B0\n",
	  AP_TRUST_UNKNOWN_KEY, "OpenPGP key 4E6A7441AEEF56B0 is not in the keyring" },
	{ "expired key, exit 0", 0,
	  "[GNUPG:] NEWSIG\n[GNUPG:] KEYEXPIRED 1577923200\n"
	  "[GNUPG:] EXPKEYSIG 41B2165E5A2E9EDA Carol <carol@example.org>\n"
	  "[GNUPG:] VALIDSIG " FPR " 2020-01-01 1577840400 0 4 0 22 8 00 " FPR "\n",
	  AP_TRUST_KEY_NOT_VALID, "OpenPGP key expired (41B2165E5A2E9EDA Carol <carol@example.org>)" },
	{ "revoked key, exit 0", 0,
	  "[GNUPG:] NEWSIG\n[GNUPG:] REVKEYSIG 40E5C1A07B49D338 Dan <dan@example.org>\n"
	  "[GNUPG:] VALIDSIG " FPR " 2026-11-30 1796026656 0 4 0 22 8 00 " FPR "\n",
	  AP_TRUST_KEY_NOT_VALID, "OpenPGP key revoked" },
	{ "expired signature", 0,
	  "[GNUPG:] NEWSIG\n[GNUPG:] EXPSIG 4E6A7441AEEF56B0 Bob\n[GNUPG:] VALIDSIG " FPR "\n",
	  AP_TRUST_KEY_NOT_VALID, "OpenPGP signature expired" },
	{ "two signatures", 0,
	  "[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG 1 Bob\n[GNUPG:] VALIDSIG " FPR "\n"
	  "[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG 2 Eve\n[GNUPG:] VALIDSIG " FPR "\n",
	  AP_TRUST_BAD_SIGNATURE, "more than one OpenPGP signature" },
	{ "good without a user id", 0,
	  "[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG 4E6A7441AEEF56B0\n[GNUPG:] VALIDSIG " FPR " 2026-11-30 "
	  "1796026648 0 4 0 22 8 00 " FPR "\n",
	  AP_TRUST_GOOD, "OpenPGP signature by  " FPR },
	{ "good words, bad exit", 2,
	  "[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG 1 Bob\n[GNUPG:] VALIDSIG " FPR "\n",
	  AP_TRUST_BAD_SIGNATURE, "gpgv did not confirm the signature (exit 2)" },
	{ "human words only", 0, "gpgv: Good signature from \"Bob\"\n[GNUPG:] GOODSIGX 1\n",
	  AP_TRUST_BAD_SIGNATURE, "did not confirm" },
	{ "nothing", 0, "", AP_TRUST_BAD_SIGNATURE, "did not confirm" },
};

static void test_judge_gpgv(void **state)
{
	for (size_t i = 0; i < ELEMENTSOF(gpgv_cases); i++) {
		const struct gpgv_case *c = &gpgv_cases[i];
		struct ap_trust_verdict v;

		ap_trust_judge_gpgv(c->exit_status, c->output, &v);
		if (v.status != c->want || !strstr(v.why, c->why))
			fail_msg("%s: got %s: %s", c->name, ap_trust_status_to_string(v.status), v.why);
	}
}

static void test_judge_ssh(void **state)
{
	struct ap_trust_verdict v;

	ap_trust_judge_ssh_verify(0, "Good \"git\" signature for alice@example.org with ED25519 key "
				     "SHA256:U8yB\n", "alice@example.org", &v);
	assert_int_equal(v.status, AP_TRUST_GOOD);
	assert_string_equal(v.signer, "alice@example.org SHA256:U8yB");
	ap_trust_judge_ssh_verify(0, "", "alice@example.org", &v); /* exit 0 is not enough */
	assert_int_equal(v.status, AP_TRUST_BAD_SIGNATURE);
	ap_trust_judge_ssh_verify(255, "Good \"git\" signature for x", "x", &v);
	assert_int_equal(v.status, AP_TRUST_BAD_SIGNATURE);
	ap_trust_judge_ssh_verify(255, "Signature verification failed: incorrect signature\n", "a", &v);
	assert_int_equal(v.status, AP_TRUST_BAD_SIGNATURE);
	ap_trust_judge_ssh_verify(255, "f:1: key is not permitted for use in signature namespace "
				       "\"git\"\n", "a", &v);
	assert_int_equal(v.status, AP_TRUST_KEY_NOT_VALID);
	assert_non_null(strstr(v.why, "namespace"));
	ap_trust_judge_ssh_verify(255, "f:1: key has expired: verify time x > valid-before y\n", "a",
				  &v);
	assert_int_equal(v.status, AP_TRUST_KEY_NOT_VALID);
	ap_trust_judge_ssh_find("No principal matched.\n", &v);
	assert_int_equal(v.status, AP_TRUST_UNKNOWN_KEY);
	ap_trust_judge_ssh_find("f:2: key is not yet valid: verify time x < valid-after y\n", &v);
	assert_int_equal(v.status, AP_TRUST_KEY_NOT_VALID);
}

static void test_ssh_time(void **state)
{
	char s[16];

	assert_int_equal(ap_trust_ssh_time(1700000000, s), 0);
	assert_string_equal(s, "20231114221320Z");
	assert_int_equal(ap_trust_ssh_time(0, s), 0);
	assert_string_equal(s, "19700101000000Z");
}

/* --- pure: cache, hash, metrics, messages ------------------------------------------------ */

static void test_key_hash(void **state)
{
	char a[65], b[65], c[65], d[65];

	assert_int_equal(ap_trust_key_hash("k1\n", 3, NULL, 0, a), 0);
	assert_int_equal(ap_trust_key_hash("k2\n", 3, NULL, 0, b), 0);
	assert_int_equal(ap_trust_key_hash(NULL, 0, "k1\n", 3, c), 0);
	assert_int_equal(ap_trust_key_hash("k1\n", 3, NULL, 0, d), 0);
	assert_int_equal(strlen(a), 64);
	assert_string_not_equal(a, b);
	assert_string_not_equal(a, c); /* the same bytes as the other kind of key file */
	assert_string_equal(a, d);
}

static void test_cache_format(void **state)
{
	const char *hash = "1111111111111111111111111111111111111111111111111111111111111111";
	const char *other = "2222222222222222222222222222222222222222222222222222222222222222";
	char *ids[] = { (char *)id, "89abcdef0123456789abcdef0123456789abcdef", NULL };
	_cleanup_free_ char *text = NULL;
	_cleanup_strv_free_ char **back = NULL, **none = NULL, **damaged = NULL;
	_cleanup_free_ char *bad = NULL;

	assert_int_equal(ap_trust_cache_format(ids, hash, &text), 0);
	assert_true(ap_startswith(text, "autopull-verified 1 1111"));
	assert_int_equal(ap_trust_cache_parse(text, hash, &back), 0);
	assert_int_equal(ap_strv_length(back), 2);
	assert_string_equal(back[0], ids[0]);
	assert_string_equal(back[1], ids[1]);
	/* written for other keys: nothing of it is trusted */
	assert_int_equal(ap_trust_cache_parse(text, other, &none), 0);
	assert_null(none);
	bad = ap_strdupf("%sxyz\n", text);
	assert_int_equal(ap_trust_cache_parse(bad, hash, &damaged), 4);
	assert_null(damaged);
	free(bad);
	bad = strndup(text, strlen(text) - 1); /* a cut last line */
	assert_int_equal(ap_trust_cache_parse(bad, hash, &damaged), 3);
	assert_null(damaged);
}

static void test_cache_bounded(void **state)
{
	const char *hash = "1111111111111111111111111111111111111111111111111111111111111111";
	_cleanup_strv_builder_ struct ap_strv_builder ids = { 0 };
	_cleanup_strv_free_ char **back = NULL;
	_cleanup_free_ char *text = NULL;
	char one[41];

	for (unsigned i = 0; i < AP_TRUST_CACHE_MAX + 5; i++) {
		snprintf(one, sizeof(one), "%040x", i);
		assert_int_equal(ap_strv_builder_push(&ids, one), 0);
	}
	assert_int_equal(ap_trust_cache_format(ids.v, hash, &text), 0);
	assert_int_equal(ap_trust_cache_parse(text, hash, &back), 0);
	assert_int_equal(ap_strv_length(back), AP_TRUST_CACHE_MAX);
	assert_string_equal(back[0], ids.v[5]); /* the oldest went first */
}

/* The verdicts that need no verifier, in the order they are decided. */
static void test_without_verifier(void **state)
{
	struct ap_trust_verdict v;

	assert_true(ap_trust_judge_without_verifier(true, AP_SIG_NONE, false, false, &v));
	assert_true(v.status == AP_TRUST_GOOD && v.cached);
	assert_true(ap_trust_judge_without_verifier(false, AP_SIG_NONE, true, true, &v));
	assert_true(v.status == AP_TRUST_UNSIGNED && !v.cached);
	assert_true(ap_trust_judge_without_verifier(false, AP_SIG_OTHER, true, true, &v));
	assert_int_equal(v.status, AP_TRUST_UNKNOWN_KEY);
	assert_true(ap_trust_judge_without_verifier(false, AP_SIG_SSH, false, true, &v));
	assert_non_null(strstr(v.why, "trust.ssh_allowed_signers is not set"));
	assert_true(ap_trust_judge_without_verifier(false, AP_SIG_OPENPGP, true, false, &v));
	assert_non_null(strstr(v.why, "trust.openpgp_keyring is not set"));
	assert_false(ap_trust_judge_without_verifier(false, AP_SIG_SSH, true, false, &v));
	assert_false(ap_trust_judge_without_verifier(false, AP_SIG_OPENPGP, false, true, &v));
}

static void test_format_verdict(void **state)
{
	struct ap_trust_commit c = { .id = id, .author = "Mallory\n<m@example.org>", .time = 1700000000 };
	struct ap_trust_verdict v = { .status = AP_TRUST_UNKNOWN_KEY };
	struct ap_buf b = { 0 };

	snprintf(v.why, sizeof(v.why), "the SSH key is not in allowed_signers");
	assert_int_equal(ap_trust_format_verdict(&c, &v, &b), 0);
	assert_string_equal(b.data, "0123456789ab Mallory (2023-11-14 22:13 UTC): unknown key: the "
				    "SSH key is not in allowed_signers\n");
	ap_buf_clear(&b);
	v = (struct ap_trust_verdict){ .status = AP_TRUST_GOOD, .cached = true };
	assert_int_equal(ap_trust_format_verdict(&c, &v, &b), 0);
	assert_true(ap_endswith(b.data, "): good (verified before)\n"));
	ap_buf_clear(&b);
}

/* --- the shell: real verifiers ------------------------------------------------------------- */

struct fixture {
	struct ap_trust_config cfg;
	char *state, *signers, *keyring;
	struct ap_state *st;
};

static struct fixture *fixture_new(const char *signers, const char *keyring)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->state = path_of("state");
	(void)ap_fs_rm_rf(f->state);
	assert_int_equal(mkdir(f->state, 0700), 0);
	assert_int_equal(ap_state_open(f->state, &f->st), 0);
	f->signers = signers ? path_of(signers) : NULL;
	f->keyring = keyring ? path_of(keyring) : NULL;
	f->cfg = (struct ap_trust_config){ .enabled = true, .ssh_allowed_signers = f->signers,
					   .openpgp_keyring = f->keyring };
	return f;
}

static void fixture_free(struct fixture *f)
{
	ap_state_free(f->st);
	free(f->state);
	free(f->signers);
	free(f->keyring);
	free(f);
}

/* Verifies payload (optionally changed) with the signature file sig_rel (NULL: unsigned). */
static struct ap_trust_verdict check(struct ap_trust *t, const char *sig_rel, long long when,
				     bool tamper)
{
	_cleanup_free_ char *sig = sig_rel ? slurp(sig_rel, NULL) : NULL;
	_cleanup_free_ char *data = strdup(payload);
	struct ap_trust_commit c = { .id = id, .author = "A <alice@example.org>", .time = when,
				     .signature = sig, .signature_len = sig ? strlen(sig) : 0,
				     .payload = data, .payload_len = strlen(payload) };
	struct ap_trust_verdict v;

	assert_non_null(data);
	if (tamper)
		data[strlen(data) - 2] = 'X';
	assert_int_equal(ap_trust_verify(t, &c, &v), 0);
	return v;
}

#define NOW 1700000000LL
#define IN_2019 1560000000LL

static void test_ssh_verdicts(void **state)
{
	struct fixture *f = fixture_new("allowed_signers", NULL);
	struct ap_trust *t = NULL;
	struct ap_trust_verdict v;

	assert_int_equal(ap_trust_open(&f->cfg, f->st, NOW, &t), 0);
	v = check(t, "payload.alice.sig", NOW, false);
	assert_int_equal(v.status, AP_TRUST_GOOD);
	assert_false(v.cached);
	assert_true(ap_startswith(v.signer, "alice@example.org SHA256:"));
	v = check(t, "payload.alice.sig", NOW, true);
	assert_int_equal(v.status, AP_TRUST_BAD_SIGNATURE);
	v = check(t, "payload.mallory.sig", NOW, false);
	assert_int_equal(v.status, AP_TRUST_UNKNOWN_KEY);
	/* old@ may sign until 2020 (valid-before): checked now, whatever date the commit
	 * claims, or a retired key back-dates its way in */
	v = check(t, "payload.old.sig", NOW, false);
	assert_int_equal(v.status, AP_TRUST_KEY_NOT_VALID);
	assert_non_null(strstr(v.why, "not valid now"));
	v = check(t, "payload.old.sig", IN_2019, false);
	assert_int_equal(v.status, AP_TRUST_KEY_NOT_VALID);
	assert_non_null(strstr(v.why, "not valid now"));
	v = check(t, "payload.other.sig", NOW, false);
	assert_int_equal(v.status, AP_TRUST_KEY_NOT_VALID);
	assert_non_null(strstr(v.why, "namespace"));
	v = check(t, NULL, NOW, false);
	assert_int_equal(v.status, AP_TRUST_UNSIGNED);
	v = check(t, "payload.pgp0.sig", NOW, false);
	assert_int_equal(v.status, AP_TRUST_UNKNOWN_KEY);
	assert_non_null(strstr(v.why, "openpgp_keyring is not set"));
	ap_trust_free(t);
	fixture_free(f);
}

/* The same key, opened at a time before its valid-before: good, whatever the commit says. */
static void test_ssh_key_checked_now(void **state)
{
	struct fixture *f = fixture_new("allowed_signers", NULL);
	struct ap_trust *t = NULL;
	struct ap_trust_verdict v;

	assert_int_equal(ap_trust_open(&f->cfg, f->st, IN_2019, &t), 0);
	v = check(t, "payload.old.sig", IN_2019, false);
	assert_int_equal(v.status, AP_TRUST_GOOD);
	ap_trust_free(t);
	fixture_free(f);
}

/* Impossible dates are refused before any verifier runs (ssh-keygen cannot even be told
 * such a time); a cached commit is no exception. */
static void test_ssh_bad_dates(void **state)
{
	struct fixture *f = fixture_new("allowed_signers", NULL);
	struct ap_trust *t = NULL;
	struct ap_trust_verdict v;

	assert_int_equal(ap_trust_open(&f->cfg, f->st, NOW, &t), 0);
	v = check(t, "payload.alice.sig", 253402300800LL, false);
	assert_int_equal(v.status, AP_TRUST_BAD_DATE);
	assert_non_null(strstr(v.why, "1970..9999"));
	v = check(t, "payload.alice.sig", -1, false);
	assert_int_equal(v.status, AP_TRUST_BAD_DATE);
	v = check(t, "payload.alice.sig", 253402300799LL, false);
	assert_int_equal(v.status, AP_TRUST_GOOD);
	v = check(t, "payload.alice.sig", 253402300800LL, false); /* now in the cache */
	assert_int_equal(v.status, AP_TRUST_BAD_DATE);
	ap_trust_free(t);
	fixture_free(f);
}

static void test_judge_date(void **state)
{
	struct ap_trust_commit c = { .id = id, .author = "A <a@b>", .time = NOW };
	struct ap_trust_verdict v;

	assert_false(ap_trust_judge_date(&c, 86400, &v));
	c.has_floor = true, c.floor = NOW + 86400;
	assert_false(ap_trust_judge_date(&c, 86400, &v)); /* exactly the skew allowed */
	c.floor = NOW + 86401;
	assert_true(ap_trust_judge_date(&c, 86400, &v));
	assert_int_equal(v.status, AP_TRUST_BAD_DATE);
	assert_non_null(strstr(v.why, "86401 s before the commit it follows"));
	assert_non_null(strstr(v.why, "trust.max_date_skew"));
	c.floor = IN_2019; /* newer than what it follows: fine */
	assert_false(ap_trust_judge_date(&c, 0, &v));
	c.time = -86400 * 365LL * 1000;
	assert_true(ap_trust_judge_date(&c, 0, &v));
	c.time = 0, c.has_floor = false;
	assert_false(ap_trust_judge_date(&c, 0, &v));
	c.time = 253402300800LL;
	assert_true(ap_trust_judge_date(&c, 0, &v));
	assert_int_equal(v.status, AP_TRUST_BAD_DATE);
}

static void test_openpgp_verdicts(void **state)
{
	struct fixture *f = fixture_new(NULL, "bob.gpg");
	struct ap_trust *t = NULL;
	struct ap_trust_verdict v;

	assert_int_equal(ap_trust_open(&f->cfg, f->st, NOW, &t), 0);
	v = check(t, "payload.pgp0.sig", NOW, false);
	assert_int_equal(v.status, AP_TRUST_GOOD);
	assert_non_null(strstr(v.signer, gpg_fpr[0]));
	v = check(t, "payload.pgp0.sig", NOW, true);
	assert_int_equal(v.status, AP_TRUST_BAD_SIGNATURE);
	v = check(t, "payload.pgp1.sig", NOW, false);
	assert_int_equal(v.status, AP_TRUST_UNKNOWN_KEY);
	v = check(t, "payload.alice.sig", NOW, false);
	assert_int_equal(v.status, AP_TRUST_UNKNOWN_KEY);
	assert_non_null(strstr(v.why, "ssh_allowed_signers is not set"));
	ap_trust_free(t);
	fixture_free(f);
}

static void test_openpgp_expired_revoked(void **state)
{
	struct fixture *f = fixture_new(NULL, "carol.gpg");
	struct ap_trust *t = NULL;
	struct ap_trust_verdict v;

	assert_int_equal(ap_trust_open(&f->cfg, f->st, NOW, &t), 0);
	v = check(t, "payload.pgp2.sig", NOW, false);
	assert_int_equal(v.status, AP_TRUST_KEY_NOT_VALID);
	assert_non_null(strstr(v.why, "expired"));
	ap_trust_free(t);
	fixture_free(f);
	f = fixture_new(NULL, "dan.gpg");
	assert_int_equal(ap_trust_open(&f->cfg, f->st, NOW, &t), 0);
	v = check(t, "payload.pgp3.sig", NOW, false);
	assert_int_equal(v.status, AP_TRUST_KEY_NOT_VALID);
	assert_non_null(strstr(v.why, "revoked"));
	ap_trust_free(t);
	fixture_free(f);
}

static void test_armored_keyring_refused(void **state)
{
	struct fixture *f = fixture_new(NULL, "bob.asc");
	struct ap_trust *t = NULL;

	assert_int_equal(ap_trust_open(&f->cfg, f->st, NOW, &t), -EINVAL);
	assert_null(t);
	fixture_free(f);
	f = fixture_new("missing_signers", NULL);
	assert_int_equal(ap_trust_open(&f->cfg, f->st, NOW, &t), -ENOENT);
	fixture_free(f);
	put("empty_signers", "", 0);
	f = fixture_new("empty_signers", NULL);
	assert_int_equal(ap_trust_open(&f->cfg, f->st, NOW, &t), -EINVAL);
	fixture_free(f);
}

/* Good commits are remembered under the keys they were checked with, and only under them. */
static void test_cache_file(void **state)
{
	struct fixture *f = fixture_new("allowed_signers", "bob.gpg");
	_cleanup_free_ char *text = NULL, *copy = NULL;
	struct ap_trust *t = NULL;
	struct ap_trust_verdict v;
	struct stat st;
	size_t len;

	assert_int_equal(ap_trust_open(&f->cfg, f->st, NOW, &t), 0);
	assert_int_equal(ap_trust_save(t), 0); /* nothing new: no file */
	{
		_cleanup_free_ char *p = path_of("state/verified");
		assert_int_equal(access(p, F_OK), -1);
	}
	v = check(t, "payload.mallory.sig", NOW, false);
	assert_int_equal(v.status, AP_TRUST_UNKNOWN_KEY);
	v = check(t, "payload.alice.sig", NOW, false);
	assert_int_equal(v.status, AP_TRUST_GOOD);
	assert_int_equal(ap_trust_save(t), 0);
	ap_trust_free(t);
	text = slurp("state/verified", NULL);
	assert_true(ap_startswith(text, "autopull-verified 1 "));
	assert_true(ap_endswith(text, "\n0123456789abcdef0123456789abcdef01234567\n"));
	{
		_cleanup_free_ char *p = path_of("state/verified");
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0600);
	}
	/* Reopened: the same id is good from the cache, whatever its signature now says. */
	assert_int_equal(ap_trust_open(&f->cfg, f->st, NOW, &t), 0);
	v = check(t, NULL, NOW, false);
	assert_int_equal(v.status, AP_TRUST_GOOD);
	assert_true(v.cached);
	ap_trust_free(t);
	/* Another allowed_signers file: the cache no longer counts. */
	copy = slurp("allowed_signers", &len);
	put("allowed_signers2", copy, len - 1);
	free(f->signers);
	f->signers = path_of("allowed_signers2");
	f->cfg.ssh_allowed_signers = f->signers;
	assert_int_equal(ap_trust_open(&f->cfg, f->st, NOW, &t), 0);
	v = check(t, NULL, NOW, false);
	assert_int_equal(v.status, AP_TRUST_UNSIGNED);
	assert_false(v.cached);
	ap_trust_free(t);
	fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_range),
		cmocka_unit_test(test_sig_kind),
		cmocka_unit_test(test_judge_gpgv),
		cmocka_unit_test(test_judge_ssh),
		cmocka_unit_test(test_ssh_time),
		cmocka_unit_test(test_key_hash),
		cmocka_unit_test(test_cache_format),
		cmocka_unit_test(test_cache_bounded),
		cmocka_unit_test(test_format_verdict),
		cmocka_unit_test(test_without_verifier),
		cmocka_unit_test(test_ssh_verdicts),
		cmocka_unit_test(test_ssh_key_checked_now),
		cmocka_unit_test(test_ssh_bad_dates),
		cmocka_unit_test(test_judge_date),
		cmocka_unit_test(test_openpgp_verdicts),
		cmocka_unit_test(test_openpgp_expired_revoked),
		cmocka_unit_test(test_armored_keyring_refused),
		cmocka_unit_test(test_cache_file),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
