/* The bare mirror of the infrastructure repository under state_dir (libgit2 is used only
 * by the repo files): fetch with a no-op check, resolve revisions, diff two commits with an
 * OID-skipping tree walk, read blobs. It never checks out a work tree. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "model.h"

struct ap_repo;

struct ap_remote_opts {
	const char *url;
	const char *branch;
	const char *ssh_key;     /* private key path or NULL (public key: ssh_key + ".pub") */
	const char *known_hosts; /* known_hosts path or NULL ($HOME/.ssh/known_hosts) */
	const char *ca_file;     /* CA bundle or NULL; with mbedTLS it replaces the default trust set */
	bool trust_owner;        /* a local repository may belong to another user */
	unsigned long long connect_timeout_usec; /* 0: none */
	unsigned long long io_timeout_usec;      /* 0: none (not applied inside ssh sessions) */
};

/* Opens the bare mirror at dir, creating it (mode 0700) when missing. Pins libgit2's
 * config search paths to empty so no ~/.gitconfig can steer a deploy. */
int ap_repo_open(const char *dir, struct ap_repo **ret);
/* Opens an existing repository (a work tree or a bare one) at path, creating nothing: a CI
 * runner's checkout for `autopull plan`. -ENOENT (logged) when there is none. */
int ap_repo_open_existing(const char *path, struct ap_repo **ret);
void ap_repo_free(struct ap_repo *r);
static inline void ap_repo_freep(struct ap_repo **r) { if (*r) ap_repo_free(*r); }

/* Connects, lists the remote and compares refs/heads/<branch> with the mirror's
 * refs/remotes/origin/<branch>. Downloads only when they differ. On success writes the
 * remote tip to ret_tip and returns 1 when objects were fetched, 0 when nothing moved.
 * Errors are logged once with what to fix:
 *   -EHOSTUNREACH  worth retrying: unreachable, timed out, reset, HTTP 5xx/408/429, a
 *                  local path that is not there
 *   -EPERM         a local repository of another user (repo.trust_owner), or a private
 *                  key readable by others
 *   -EINVAL        bad URL or branch name, unreadable CA file or ssh key
 *   -EACCES        authentication failed
 *   -EKEYREJECTED  the ssh host key or the TLS certificate does not verify
 *   -ENOENT        no repository at the URL (a local directory without one, HTTP 404),
 *                  or no such branch
 *   -EREMOTEIO     the server refused the request otherwise (HTTP 4xx)
 *   -EBADMSG       the repository holds a tree or commit that does not parse (a tree
 *                  entry without a name), or (a first fetch from a local repository) an
 *                  object that does not match its id or a pack that does not verify: no
 *                  retry fetches it, the repository needs a fix
 *   -EIO           (a first fetch from a local repository) the mirror could not be
 *                  written, or the source could not be read */
/* The caller holds the run lock: a ref lock file in the mirror is then a killed run's and is
 * removed. */
int ap_repo_fetch(struct ap_repo *r, const struct ap_remote_opts *o,
		  char ret_tip[AP_OID_HEXSZ + 1]);

/* Tip of refs/remotes/origin/<branch> in the mirror; -ENOENT if never fetched. */
int ap_repo_branch_tip(struct ap_repo *r, const char *branch, char ret[AP_OID_HEXSZ + 1]);

/* Resolves rev (full or abbreviated hex, or any revspec) to a commit id.
 * -ENOENT with a logged error when it does not name a commit. */
int ap_repo_resolve(struct ap_repo *r, const char *rev, char ret[AP_OID_HEXSZ + 1]);

/* 1 if ancestor is commit or one of its ancestors, 0 if not, <0 on error. */
int ap_repo_is_ancestor(struct ap_repo *r, const char *ancestor, const char *commit);

/* One commit of a walk, for the trust checks (trust.h): plain data, valid during the call. */
struct ap_repo_commit {
	char id[AP_OID_HEXSZ + 1];
	const char *author;      /* "Name <email>" */
	long long time;          /* committer time, seconds since the epoch */
	unsigned parents;
	long long parent_time;   /* the newest committer time of its parents; LLONG_MIN
				  * when it has none */
	const char *signature;   /* the gpgsig header's value, or NULL when unsigned */
	size_t signature_len;
	const char *signed_data; /* the commit as signed (without the signature); NULL if unsigned */
	size_t signed_len;
};

/* fn returns <0 (an error, logged by fn), 0 (go on) or >0 (stop; the walk returns it). */
typedef int (*ap_repo_commit_fn)(void *userdata, const struct ap_repo_commit *c);

/* Calls fn for every commit reachable from to and not from from, oldest first (parents
 * before children), through all parents, or along first parents only. from NULL: to alone. */
int ap_repo_walk(struct ap_repo *r, const char *from, const char *to, bool first_parent,
		 ap_repo_commit_fn fn, void *userdata);

/* Changes between the trees of commits from (NULL or "" = empty tree) and to, found by a
 * walk that skips subtrees with equal ids, so cost grows with the changed subtrees only.
 * Exact renames are paired by blob id; mode-only and type changes are reported as such.
 * Output is sorted by path. Data fields are left NULL. */
int ap_repo_diff(struct ap_repo *r, const char *from, const char *to, struct ap_changes *ret);

/* The same, limited to the paths under prefixes (a prefix ending in '/' is a directory,
 * "" the whole tree; NULL: everything): subtrees no prefix reaches are never opened, so
 * a first run over a large repository reads only what the configuration maps. */
int ap_repo_diff_paths(struct ap_repo *r, const char *from, const char *to,
		       char *const *prefixes, struct ap_changes *ret);

/* Reads blob oid. -EFBIG if larger than max, -ENOENT if missing. *ret is NUL-terminated
 * (the terminator is not counted in *ret_len). */
int ap_repo_read_blob(struct ap_repo *r, const char *oid, size_t max, char **ret, size_t *ret_len);

/* Size of blob oid from its header, without inflating it. */
int ap_repo_blob_size(struct ap_repo *r, const char *oid, size_t *ret);

/* Path of every blob in commit (sorted; gitlinks left out). */
int ap_repo_list_files(struct ap_repo *r, const char *commit, char ***ret);

/* Facts about a commit for people: subject, author, commit time (seconds since the epoch). */
struct ap_commit_info {
	char *subject, *author;
	int64_t time;
};
void ap_commit_info_clear(struct ap_commit_info *i);
int ap_repo_commit_info(struct ap_repo *r, const char *oid, struct ap_commit_info *ret);

/* How many commits to has that from has not (from NULL or "": all of to's history). */
int ap_repo_count_commits(struct ap_repo *r, const char *from, const char *to, size_t *ret);

/* Like ap_repo_resolve, where "HEAD", "HEAD~1", "<branch>~2"… mean the mirrored branch. */
int ap_repo_resolve_on_branch(struct ap_repo *r, const char *branch, const char *rev,
			      char ret[AP_OID_HEXSZ + 1]);

/* The git blob id of bytes (what a tree entry holding them would say). */
int ap_repo_blob_id(const void *data, size_t len, char ret[AP_OID_HEXSZ + 1]);

/* A unified diff of two texts, labelled. */
int ap_repo_text_diff(const char *old, size_t old_len, const char *old_label, const char *new_text,
		      size_t new_len, const char *new_label, char **ret);
