/* The bare mirror of the infrastructure repository; with repo-fetch.c (the network half),
 * repo-tree.c (the tree diff and listing) and repo-git.c (libgit2's global state, error
 * translation) the only files that include <git2.h>. It owns opening the mirror, revision
 * lookups, the commit walk that hands signatures to the trust checks, bounded blob reads and
 * the facts the operator's verbs show. Every libgit2 error is translated to a negative errno
 * and logged once.
 * It deliberately never checks out a work tree, never reads a user's or the system's git
 * config, never runs git or ssh, and does not decide what a change means for the host
 * (that is plan.c's job) or whether a signature is good (trust.c's). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <git2.h>

#include "log.h"
#include "model.h"
#include "repo-private.h"
#include "repo.h"
#include "util.h"

/* --- open and close --------------------------------------------------------------- */

static int dir_is_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int empty = 1;

	if (!d)
		return -errno;
	while (empty && (de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			empty = 0;
	closedir(d);
	return empty;
}

/* A missing directory is created 0700; an empty one (e.g. made by StateDirectory=) is
 * initialised in place; anything else must already be a repository. */
static int open_or_create(const char *dir, git_repository **ret)
{
	int k;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return ap_log_error(-errno, "failed to create '%s': %s", dir, strerror(errno));
	k = git_repository_open_bare(ret, dir);
	if (k == GIT_ENOTFOUND && dir_is_empty(dir) > 0)
		k = git_repository_init(ret, dir, 1);
	if (k < 0)
		return ap_log_error(repo_git_errno(k), "failed to open repository '%s': %s", dir,
				    repo_git_msg());
	return 0;
}

/* The handle around git (opened when k >= 0), or everything undone. */
static int wrap(git_repository *git, int k, struct ap_repo **ret)
{
	struct ap_repo *r = NULL;

	if (k >= 0 && !(r = calloc(1, sizeof(*r))))
		k = -ENOMEM;
	if (k < 0) {
		git_repository_free(git);
		repo_git_shutdown();
		return k;
	}
	r->git = git;
	*ret = r;
	return 0;
}

int ap_repo_open(const char *dir, struct ap_repo **ret)
{
	git_repository *git = NULL;
	int k;

	if ((k = repo_git_init()) < 0)
		return k;
	return wrap(git, open_or_create(dir, &git), ret);
}

/* libgit2 refuses a repository of another user (git's "dubious ownership"), and with the
 * configuration search paths pinned empty it says only that safe.directory is not set: say
 * what is wrong instead. */
static int owned_by_me(const char *path)
{
	_cleanup_free_ char *dotgit = ap_strdupf("%s/.git", path);
	struct stat st;
	uid_t me = geteuid();

	if (!dotgit)
		return -ENOMEM;
	if (stat(path, &st) < 0)
		return ap_log_error(-errno, "'%s' is not a git repository: %s", path,
				    strerror(errno));
	if (st.st_uid == me && (stat(dotgit, &st) < 0 || st.st_uid == me))
		return 0;
	return ap_log_error(-EPERM, "repository '%s' is owned by uid %u, not by uid %u that reads "
			    "it: run autopull as its owner, or chown it", path, (unsigned)st.st_uid,
			    (unsigned)me);
}

int ap_repo_open_existing(const char *path, struct ap_repo **ret)
{
	git_repository *git = NULL;
	int k;

	if ((k = owned_by_me(path)) < 0)
		return k;
	if ((k = repo_git_init()) < 0)
		return k;
	/* NO_SEARCH: the repository is the one named, never one found above it. */
	k = git_repository_open_ext(&git, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
	if (k < 0)
		k = ap_log_error(repo_git_errno(k), "'%s' is not a git repository: %s", path,
				 repo_git_msg());
	return wrap(git, k, ret);
}

void ap_repo_free(struct ap_repo *r)
{
	if (!r)
		return;
	git_repository_free(r->git);
	free(r);
	repo_git_shutdown();
}

/* --- revisions ------------------------------------------------------------------------ */

int ap_repo_branch_tip(struct ap_repo *r, const char *branch, char ret[AP_OID_HEXSZ + 1])
{
	_cleanup_free_ char *track = ap_strdupf("refs/remotes/origin/%s", branch);
	git_oid id;
	int k;

	if (!track)
		return -ENOMEM;
	k = git_reference_name_to_id(&id, r->git, track);
	if (k == GIT_ENOTFOUND)
		return -ENOENT;
	if (k < 0)
		return ap_log_error(repo_git_errno(k), "failed to read '%s': %s", track,
				    repo_git_msg());
	repo_oid_hex(ret, &id);
	return 0;
}

int repo_lookup_commit(struct ap_repo *r, const char *rev, git_commit **ret)
{
	git_object *obj = NULL, *peeled = NULL;
	int k;

	k = git_revparse_single(&obj, r->git, rev);
	if (k >= 0)
		k = git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT);
	git_object_free(obj);
	if (k == GIT_ENOTFOUND || k == GIT_EAMBIGUOUS || k == GIT_EINVALIDSPEC || k == GIT_EPEEL)
		return ap_log_error(-ENOENT, "'%s' does not name a commit", rev);
	if (k < 0)
		return ap_log_error(repo_git_errno(k), "failed to resolve '%s': %s", rev,
				    repo_git_msg());
	*ret = (git_commit *)peeled;
	return 0;
}

int ap_repo_resolve(struct ap_repo *r, const char *rev, char ret[AP_OID_HEXSZ + 1])
{
	git_commit *c;
	int k;

	k = repo_lookup_commit(r, rev, &c);
	if (k < 0)
		return k;
	repo_oid_hex(ret, git_commit_id(c));
	git_commit_free(c);
	return 0;
}

int ap_repo_is_ancestor(struct ap_repo *r, const char *ancestor, const char *commit)
{
	git_commit *a = NULL, *c = NULL;
	int k;

	if ((k = repo_lookup_commit(r, ancestor, &a)) < 0 || (k = repo_lookup_commit(r, commit,
										     &c)) < 0)
		goto cleanup;
	if (git_oid_equal(git_commit_id(a), git_commit_id(c))) {
		k = 1;
		goto cleanup;
	}
	k = git_graph_descendant_of(r->git, git_commit_id(c), git_commit_id(a));
	if (k < 0)
		k = ap_log_error(repo_git_errno(k), "failed to compare '%s' with '%s': %s",
				 ancestor,
				 commit, repo_git_msg());
cleanup:
	git_commit_free(a);
	git_commit_free(c);
	return k;
}

/* --- the commit walk ------------------------------------------------------------------- */

static int visit_commit(struct ap_repo *r, const git_oid *id, ap_repo_commit_fn fn,
			void *userdata)
{
	git_buf sig = { 0 }, data = { 0 };
	git_commit *c = NULL;
	const git_signature *a;
	_cleanup_free_ char *author = NULL;
	struct ap_repo_commit rc = { 0 };
	bool is_signed = false;
	int k;

	repo_oid_hex(rc.id, id);
	k = git_commit_lookup(&c, r->git, id);
	if (k >= 0) {
		/* The buffers may be set even when there is no signature: the code decides. */
		k = git_commit_extract_signature(&sig, &data, r->git, (git_oid *)id, NULL);
		is_signed = k == 0;
		k = k == GIT_ENOTFOUND ? 0 : k;
	}
	if (k < 0) {
		k = ap_log_error(repo_git_errno(k), "failed to read commit %s: %s", rc.id,
				 repo_git_msg());
		goto cleanup;
	}
	a = git_commit_author(c);
	if (!(author = ap_strdupf("%s <%s>", a->name, a->email))) {
		k = -ENOMEM;
		goto cleanup;
	}
	rc.author = author;
	rc.time = (long long)git_commit_time(c);
	rc.parents = git_commit_parentcount(c);
	rc.parent_time = LLONG_MIN;
	for (unsigned i = 0; k >= 0 && i < rc.parents; i++) {
		git_commit *p = NULL;

		/* A parent missing from the object store: the walk that follows says so. */
		if (git_commit_parent(&p, c, i) < 0)
			continue;
		if ((long long)git_commit_time(p) > rc.parent_time)
			rc.parent_time = (long long)git_commit_time(p);
		git_commit_free(p);
	}
	if (is_signed) {
		rc.signature = sig.ptr;
		rc.signature_len = sig.size;
		rc.signed_data = data.ptr;
		rc.signed_len = data.size;
	}
	k = fn(userdata, &rc);
cleanup:
	git_buf_dispose(&sig);
	git_buf_dispose(&data);
	git_commit_free(c);
	return k;
}

static int walk_range(struct ap_repo *r, git_revwalk *w, const git_oid *from, const git_oid *to,
		      bool first_parent, ap_repo_commit_fn fn, void *userdata)
{
	char a[AP_OID_HEXSZ + 1], b[AP_OID_HEXSZ + 1];
	git_oid id;
	int k;

	if ((k = git_revwalk_sorting(w, GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE)) >= 0 &&
	    (k = git_revwalk_push(w, to)) >= 0 && (k = git_revwalk_hide(w, from)) >= 0 &&
	    first_parent)
		k = git_revwalk_simplify_first_parent(w);
	while (k >= 0 && (k = git_revwalk_next(&id, w)) == 0)
		if ((k = visit_commit(r, &id, fn, userdata)) != 0)
			return k; /* fn's verdict, or an error already logged */
	if (k == GIT_ITEROVER)
		return 0;
	repo_oid_hex(a, from);
	repo_oid_hex(b, to);
	return ap_log_error(repo_git_errno(k), "failed to walk the commits %.12s..%.12s: %s", a, b,
			    repo_git_msg());
}

int ap_repo_walk(struct ap_repo *r, const char *from, const char *to, bool first_parent,
		 ap_repo_commit_fn fn, void *userdata)
{
	git_commit *a = NULL, *b = NULL;
	git_revwalk *w = NULL;
	int k;

	if ((k = repo_lookup_commit(r, to, &b)) < 0 || (from && (k = repo_lookup_commit(r, from,
											&a)) < 0))
		goto cleanup;
	if (!from)
		k = visit_commit(r, git_commit_id(b), fn, userdata);
	else if ((k = git_revwalk_new(&w, r->git)) < 0)
		k = ap_log_error(repo_git_errno(k), "failed to walk commits: %s", repo_git_msg());
	else
		k = walk_range(r, w, git_commit_id(a), git_commit_id(b), first_parent, fn,
			       userdata);
cleanup:
	git_revwalk_free(w);
	git_commit_free(a);
	git_commit_free(b);
	return k;
}

/* --- blobs and listings -------------------------------------------------------------- */

static int blob_size(struct ap_repo *r, const git_oid *id, const char *hex, size_t *ret)
{
	git_odb *odb = NULL;
	git_object_t type;
	int k;

	k = git_repository_odb(&odb, r->git);
	if (k >= 0)
		k = git_odb_read_header(ret, &type, odb, id);
	git_odb_free(odb);
	if (k == GIT_ENOTFOUND)
		return ap_log_error(-ENOENT, "blob '%s' not found", hex);
	if (k < 0)
		return ap_log_error(repo_git_errno(k), "failed to read blob '%s': %s", hex,
				    repo_git_msg());
	if (type != GIT_OBJECT_BLOB)
		return ap_log_error(-EINVAL, "object '%s' is not a blob", hex);
	return 0;
}

int ap_repo_blob_size(struct ap_repo *r, const char *oid, size_t *ret)
{
	git_oid id;

	if (strlen(oid) != AP_OID_HEXSZ || git_oid_fromstr(&id, oid) < 0)
		return ap_log_error(-EINVAL, "'%s' is not an object id", oid);
	return blob_size(r, &id, oid, ret);
}

/* The size is checked from the object header, before the blob is inflated into memory. */
int ap_repo_read_blob(struct ap_repo *r, const char *oid, size_t max, char **ret, size_t *ret_len)
{
	git_blob *blob = NULL;
	char *buf = NULL;
	size_t size;
	git_oid id;
	int k;

	if (strlen(oid) != AP_OID_HEXSZ || git_oid_fromstr(&id, oid) < 0)
		return ap_log_error(-EINVAL, "'%s' is not an object id", oid);
	if ((k = blob_size(r, &id, oid, &size)) < 0)
		goto cleanup;
	if (size > max) {
		k = ap_log_error(-EFBIG, "blob '%s' is %zu bytes, more than the limit of %zu", oid,
				 size, max);
		goto cleanup;
	}
	if ((k = git_blob_lookup(&blob, r->git, &id)) < 0) {
		k = ap_log_error(repo_git_errno(k), "failed to read blob '%s': %s", oid,
				 repo_git_msg());
		goto cleanup;
	}
	size = (size_t)git_blob_rawsize(blob);
	if (size > max || !(buf = malloc(size + 1))) {
		k = size > max ? ap_log_error(-EFBIG, "blob '%s' is too large", oid) : -ENOMEM;
		goto cleanup;
	}
	memcpy(buf, git_blob_rawcontent(blob), size);
	buf[size] = '\0';
	*ret = buf;
	*ret_len = size;
cleanup:
	git_blob_free(blob);
	return k;
}

/* --- for the operator's verbs: commit facts, counts, revisions, ids and text diffs ---------- */

void ap_commit_info_clear(struct ap_commit_info *i)
{
	free(i->subject);
	free(i->author);
	*i = (struct ap_commit_info){ 0 };
}

int ap_repo_commit_info(struct ap_repo *r, const char *oid, struct ap_commit_info *ret)
{
	git_commit *c = NULL;
	const git_signature *a;
	const char *msg;
	int k = repo_lookup_commit(r, oid, &c);

	if (k < 0)
		return k;
	a = git_commit_author(c);
	msg = git_commit_summary(c);
	*ret = (struct ap_commit_info){ .subject = strdup(msg ? msg : ""),
					.author = ap_strdupf("%s <%s>", a && a->name ? a->name
							     : "?",
							     a && a->email ? a->email : "?"),
					.time = (int64_t)git_commit_time(c) };
	git_commit_free(c);
	if (!ret->subject || !ret->author) {
		ap_commit_info_clear(ret);
		return -ENOMEM;
	}
	return 0;
}

int ap_repo_count_commits(struct ap_repo *r, const char *from, const char *to, size_t *ret)
{
	git_revwalk *w = NULL;
	git_oid oid, f, t;
	size_t n = 0;
	int k = git_oid_fromstr(&t, to);

	if (k >= 0)
		k = git_revwalk_new(&w, r->git);
	if (k >= 0)
		k = git_revwalk_push(w, &t);
	if (k >= 0 && from && *from && (k = git_oid_fromstr(&f, from)) >= 0)
		k = git_revwalk_hide(w, &f);
	while (k >= 0 && (k = git_revwalk_next(&oid, w)) == 0)
		n++;
	git_revwalk_free(w);
	if (k < 0 && k != GIT_ITEROVER)
		return ap_log_error(repo_git_errno(k),
				    "failed to count the commits up to %.12s: %s", to,
				    repo_git_msg());
	*ret = n;
	return 0;
}

int ap_repo_resolve_on_branch(struct ap_repo *r, const char *branch, const char *rev,
			      char ret[AP_OID_HEXSZ + 1])
{
	size_t n = strlen(branch);
	_cleanup_free_ char *spec = NULL;

	/* The mirror keeps the branch as refs/remotes/origin/<branch> and has no HEAD of its own:
	 * "HEAD~1" and "main~1" mean the branch. */
	if (ap_startswith(rev, "HEAD") && strchr("~^@", rev[4]))
		spec = ap_strdupf("refs/remotes/origin/%s%s", branch, rev + 4);
	else if (strncmp(rev, branch, n) == 0 && strchr("~^@", rev[n]))
		spec = ap_strdupf("refs/remotes/origin/%s%s", branch, rev + n);
	else
		spec = strdup(rev);
	return spec ? ap_repo_resolve(r, spec, ret) : -ENOMEM;
}

int ap_repo_blob_id(const void *data, size_t len, char ret[AP_OID_HEXSZ + 1])
{
	git_oid oid;
	int k = git_odb_hash(&oid, data, len, GIT_OBJECT_BLOB);

	if (k < 0)
		return ap_log_error(repo_git_errno(k), "failed to hash: %s", repo_git_msg());
	git_oid_tostr(ret, AP_OID_HEXSZ + 1, &oid);
	return 0;
}

int ap_repo_text_diff(const char *old, size_t old_len, const char *old_label, const char *new_text,
		      size_t new_len, const char *new_label, char **ret)
{
	git_patch *p = NULL;
	git_buf b = { 0 };
	int k = git_patch_from_buffers(&p, old, old_len, old_label, new_text, new_len, new_label,
				       NULL);

	if (k >= 0)
		k = git_patch_to_buf(&b, p);
	if (k >= 0 && !(*ret = strndup(b.ptr ? b.ptr : "", b.size)))
		k = -ENOMEM;
	git_buf_dispose(&b);
	git_patch_free(p);
	return k == -ENOMEM ? k : k < 0 ? ap_log_error(repo_git_errno(k), "failed to diff '%s': %s",
						        new_label, repo_git_msg()) : 0;
}
