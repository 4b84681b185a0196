/* What repo.c and repo-fetch.c share: the mirror handle and libgit2 error translation.
 * Only these two files include <git2.h>; nothing outside the repo module sees this. */
#pragma once
#include <git2.h>

#include "model.h"

struct ap_repo {
	git_repository *git;
};

/* The message of libgit2's last error, or "unknown error". */
const char *repo_git_msg(void);
/* libgit2's error code (and last error class) as a negative errno. */
int repo_git_errno(int gerr);
void repo_oid_hex(char ret[AP_OID_HEXSZ + 1], const git_oid *id);

/* Puts autopull's socket stream (connect and I/O timeouts) under libgit2's transports.
 * Called after every git_libgit2_init(): the last shutdown forgets registrations. */
int repo_net_init(void);
