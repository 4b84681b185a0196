/* Secrets in the repository: files of rules with decrypt: age are stored age-encrypted and
 * decrypted on the host with its identity (secrets: identity), by Debian's age run as a
 * contained child (spawn.h: an argv, no shell, a clean environment, a deadline, no inherited
 * fds). The plaintext is written only into a private 0700 directory inside the state
 * directory while age runs, read back and removed at once; it then lives in memory until
 * it is staged for validation or installed at its destination. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "repo.h"

#define AP_SECRETS_TIMEOUT_USEC (30ULL * 1000000)

/* The plaintext of the age file data (armored or binary), what being the repository path
 * named in messages. -EINVAL (logged, naming the file and the identity) when the host's
 * identity cannot decrypt it: not a recipient, or not an age file; another -errno (logged)
 * when age could not run or the staging failed. */
int ap_secrets_decrypt(const struct ap_config *cfg, const char *what, const char *data,
		       size_t len, char **ret, size_t *ret_len);

/* Whether data (a host file's bytes) is the plaintext of the repository's blob oid (the secret
 * what): 1 yes, 0 no, <0 (logged) when it cannot be decrypted. Nothing is stored: drift is
 * decided in memory, so that no digest of a secret is ever kept where it could be guessed
 * from. */
int ap_secrets_matches(const struct ap_config *cfg, struct ap_repo *repo, const char *oid,
		       const char *what, const char *data, size_t len);

/* Whether the repository path is mapped by a rule with decrypt: age. */
bool ap_secrets_is_secret(const struct ap_config *cfg, const char *path);

/* Removes what a killed run may have left in the state directory with plaintext in it: the
 * validation stage, and the decryption staging directories nobody holds locked (a diff or
 * status decrypting meanwhile, without the state lock, keeps its own). Called with the
 * state lock held. */
int ap_secrets_remove_leftovers(const struct ap_config *cfg);
