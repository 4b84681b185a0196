/* What the repo files share: the mirror handle, the commit lookup (repo.c), and from
 * repo-git.c libgit2's global state and error translation. Only the repo files include
 * <git2.h>; nothing outside the repo module sees this. */
#pragma once
#include <git2.h>

#include "model.h"

struct ap_repo {
	git_repository *git;
};

/* git_libgit2_init() with the config search paths pinned empty (no system, global or XDG
 * config may steer a deploy; the last shutdown forgets them, so every init pins again).
 * Logs its error. Each success is paired with one repo_git_shutdown(). */
int repo_git_init(void);
void repo_git_shutdown(void);

/* The message of libgit2's last error, or "unknown error". */
const char *repo_git_msg(void);
/* libgit2's error code (and last error class) as a negative errno. */
int repo_git_errno(int gerr);
void repo_oid_hex(char ret[AP_OID_HEXSZ + 1], const git_oid *id);

/* The commit rev names (any revspec), peeled; -ENOENT with a logged error when it names
 * none. The caller frees it with git_commit_free(). */
int repo_lookup_commit(struct ap_repo *r, const char *rev, git_commit **ret);

/* repo-local.c: a first fetch from the repository at path on this host: its packs copied
 * into the mirror, then what they lack of tip packed from it. 1 when the mirror holds tip and
 * everything it names (the caller then sets the ref), 0 when path holds no repository
 * libgit2 opens (the caller's usual fetch says why), -errno with the error logged: -EBADMSG
 * a damaged source (a pack or object that does not verify, an object missing), -EIO the
 * mirror could not be written or the source read. */
int repo_local_first_fetch(struct ap_repo *r, const char *path, const git_oid *tip);
