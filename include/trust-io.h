/* Trusting the source, the imperative shell: the key files, the verifier children
 * (ssh-keygen -Y verify, gpgv) and the cache of verified commits, the file "verified" in the
 * state directory. The policy and the formats are trust.h's. */
#pragma once
#include "config.h"
#include "trust.h"

struct ap_state;

struct ap_trust;

/* Reads the key files and the cache in the state directory st (borrowed: it must outlive
 * the handle). Keys are checked at now (seconds since the epoch: valid-after/valid-before of
 * allowed_signers). Errors are logged:
 * -ENOENT/-EACCES (a key file cannot be read), -EINVAL (an armored keyring, an empty file). */
int ap_trust_open(const struct ap_trust_config *c, struct ap_state *st, long long now,
		  struct ap_trust **ret);
void ap_trust_free(struct ap_trust *t);
static inline void ap_trust_freep(struct ap_trust **t) { if (*t) ap_trust_free(*t); }

/* Verifies one commit (from the cache when it was found good before under the same keys; its
 * date is judged first either way). Returns 0 with a verdict, or <0 when no verdict could be
 * had (logged): -ENOENT (verifier not installed), -ETIMEDOUT, -ENOMEM, -EIO. */
int ap_trust_verify(struct ap_trust *t, const struct ap_trust_commit *c,
		    struct ap_trust_verdict *ret);

/* Rewrites the cache file (through state.c's atomic write) when commits were found good
 * since it was read. */
int ap_trust_save(struct ap_trust *t);
