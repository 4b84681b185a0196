/* The tree walk of the repo module: the changes between two commits' trees, found by a
 * walk that skips subtrees with equal ids (so its cost grows with what changed, and with
 * prefixes it opens only the subtrees the configuration maps), exact renames paired by blob
 * id, and the list of a commit's files, which is the same walk against the empty tree. It
 * bounds depth and path length, and deliberately reads no blob: what a change means for the
 * host is plan.c's business. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <git2.h>

#include "log.h"
#include "model.h"
#include "repo-private.h"
#include "repo.h"
#include "util.h"

/* Deeper trees are refused: nothing we deploy needs them, and the walk recurses. */
#define MAX_TREE_DEPTH 256
/* Paths quoted in messages about over-long or over-deep trees are cut to this. */
#define LOG_PATH_MAX 120

/* --- the tree walk --------------------------------------------------------------------- */

struct walk {
	git_repository *git;
	const char *subject; /* what is walked, for messages */
	char *const *prefixes; /* paths of interest (a prefix ending in '/' is a directory), or NULL */
	struct ap_change *v;
	size_t n, cap;
	size_t len;
	char path[PATH_MAX];
};

static int walk_trees(struct walk *w, const git_tree *a, const git_tree *b, unsigned depth);

static int log_len(const struct walk *w)
{
	return (int)(w->len < LOG_PATH_MAX ? w->len : LOG_PATH_MAX);
}

static void side_from_entry(uint32_t *mode, char oid[AP_OID_HEXSZ + 1], const git_tree_entry *e)
{
	*mode = (uint32_t)git_tree_entry_filemode(e);
	repo_oid_hex(oid, git_tree_entry_id(e));
}

static int emit(struct walk *w, enum ap_change_kind kind, const git_tree_entry *old,
		const git_tree_entry *new)
{
	struct ap_change *c;

	if (w->n >= AP_MAX_CHANGES)
		return ap_log_error(-E2BIG, "%s has more than %d paths", w->subject,
				    AP_MAX_CHANGES);
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		struct ap_change *v = reallocarray(w->v, cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		w->v = v;
		w->cap = cap;
	}
	c = &w->v[w->n];
	*c = (struct ap_change){ .kind = kind, .path = strndup(w->path, w->len) };
	if (!c->path)
		return -ENOMEM;
	if (old)
		side_from_entry(&c->old_mode, c->old_oid, old);
	if (new)
		side_from_entry(&c->new_mode, c->new_oid, new);
	w->n++;
	return 0;
}

static int path_push(struct walk *w, const git_tree_entry *e)
{
	const char *name = git_tree_entry_name(e);
	size_t nl = strlen(name), sep = w->len > 0;

	if (w->len + sep + nl >= sizeof(w->path))
		return ap_log_error(-ENAMETOOLONG, "path '%.*s...' in %s is too long",
				    log_len(w), w->path, w->subject);
	if (sep)
		w->path[w->len++] = '/';
	memcpy(w->path + w->len, name, nl);
	w->len += nl;
	return 0;
}

static int lookup_tree(struct walk *w, const git_tree_entry *e, git_tree **ret)
{
	int k = git_tree_lookup(ret, w->git, git_tree_entry_id(e));

	if (k < 0)
		return ap_log_error(repo_git_errno(k), "failed to read tree '%.*s' in %s: %s",
				    (int)w->len, w->path, w->subject, repo_git_msg());
	return 0;
}

/* a and/or b are tree entries at the current path; a missing side is the empty tree. */
static int walk_subtrees(struct walk *w, const git_tree_entry *a, const git_tree_entry *b,
			 unsigned depth)
{
	git_tree *ta = NULL, *tb = NULL;
	int k = 0;

	if (a && (k = lookup_tree(w, a, &ta)) < 0)
		goto cleanup;
	if (b && (k = lookup_tree(w, b, &tb)) < 0)
		goto cleanup;
	k = walk_trees(w, ta, tb, depth);
cleanup:
	git_tree_free(ta);
	git_tree_free(tb);
	return k;
}

/* Whether the current path is of interest: as a directory (dir) when a prefix lies below it
 * or it lies below a directory prefix, as a file when a prefix names it or contains it. */
static bool wanted(const struct walk *w, bool dir)
{
	if (!w->prefixes)
		return true;
	for (size_t i = 0; w->prefixes[i]; i++) {
		const char *p = w->prefixes[i];
		size_t n = strlen(p);

		if (n == 0)
			return true; /* the repository root */
		if (p[n - 1] == '/' && n - 1 <= w->len && strncmp(w->path, p, n - 1) == 0 &&
		    (w->len == n - 1 || w->path[n - 1] == '/'))
			return true; /* at or below a directory prefix */
		if (!dir && n == w->len && strncmp(w->path, p, n) == 0)
			return true; /* the file a prefix names */
		if (dir && n > w->len && strncmp(p, w->path, w->len) == 0 && p[w->len] == '/')
			return true; /* a directory on the way to a prefix */
	}
	return false;
}

/* Entries a (old) and b (new) share the current path; either may be NULL. A tree against
 * a non-tree is a whole subtree deleted or added plus the other side's leaf. */
static int walk_entry(struct walk *w, const git_tree_entry *a, const git_tree_entry *b,
		      unsigned depth)
{
	bool ta = a && git_tree_entry_type(a) == GIT_OBJECT_TREE;
	bool tb = b && git_tree_entry_type(b) == GIT_OBJECT_TREE;
	uint32_t ma = a ? (uint32_t)git_tree_entry_filemode(a) : 0;
	uint32_t mb = b ? (uint32_t)git_tree_entry_filemode(b) : 0;
	int k = 0;

	if (a && b && ma == mb && git_oid_equal(git_tree_entry_id(a), git_tree_entry_id(b)))
		return 0; /* the whole point: equal ids are never opened */
	if (ta && tb)
		return wanted(w, true) ? walk_subtrees(w, a, b, depth + 1) : 0;
	if (ta || tb) {
		k = wanted(w, true) ? walk_subtrees(w, ta ? a : NULL, tb ? b : NULL, depth + 1) : 0;
		a = ta ? NULL : a;
		b = tb ? NULL : b;
	}
	if (k < 0 || (!a && !b) || !wanted(w, false))
		return k;
	if (!a)
		return emit(w, AP_CHANGE_ADD, NULL, b);
	if (!b)
		return emit(w, AP_CHANGE_DELETE, a, NULL);
	if ((ma & S_IFMT) != (mb & S_IFMT))
		return emit(w, AP_CHANGE_TYPE, a, b);
	if (git_oid_equal(git_tree_entry_id(a), git_tree_entry_id(b)))
		return emit(w, AP_CHANGE_MODE, a, b);
	return emit(w, AP_CHANGE_MODIFY, a, b);
}

/* Merges two sorted entry lists. git_tree_entry_cmp orders the way git stores trees (a
 * directory compares as if its name ended in '/'), so both lists stay in step. */
static int walk_trees(struct walk *w, const git_tree *a, const git_tree *b, unsigned depth)
{
	size_t na = a ? git_tree_entrycount(a) : 0, nb = b ? git_tree_entrycount(b) : 0;
	size_t i = 0, j = 0;
	int k = 0;

	if (depth > MAX_TREE_DEPTH)
		return ap_log_error(-ELOOP,
				    "tree '%.*s...' in %s is nested more than %d levels deep",
				    log_len(w), w->path, w->subject, MAX_TREE_DEPTH);
	while (k >= 0 && (i < na || j < nb)) {
		const git_tree_entry *ea = i < na ? git_tree_entry_byindex(a, i) : NULL;
		const git_tree_entry *eb = j < nb ? git_tree_entry_byindex(b, j) : NULL;
		int c = !ea ? 1 : !eb ? -1 : git_tree_entry_cmp(ea, eb);
		size_t saved = w->len;

		i += c <= 0;
		j += c >= 0;
		k = path_push(w, c <= 0 ? ea : eb);
		if (k >= 0)
			k = walk_entry(w, c <= 0 ? ea : NULL, c >= 0 ? eb : NULL, depth);
		w->len = saved;
	}
	return k;
}

/* --- renames, order, the diff ---------------------------------------------------------- */

static const char *rename_oid(const struct ap_change *c)
{
	return c->kind == AP_CHANGE_DELETE ? c->old_oid : c->new_oid;
}

static uint32_t rename_mode(const struct ap_change *c)
{
	return c->kind == AP_CHANGE_DELETE ? c->old_mode : c->new_mode;
}

static int cmp_rename_key(const struct ap_change *a, const struct ap_change *b)
{
	int c = strcmp(rename_oid(a), rename_oid(b));

	if (c != 0)
		return c;
	return (rename_mode(a) > rename_mode(b)) - (rename_mode(a) < rename_mode(b));
}

static int cmp_rename_order(const void *x, const void *y)
{
	const struct ap_change *a = *(struct ap_change *const *)x,
		*b = *(struct ap_change *const *)y;
	int c = cmp_rename_key(a, b);

	return c != 0 ? c : strcmp(a->path, b->path);
}

static int cmp_change_path(const void *x, const void *y)
{
	const struct ap_change *a = x, *b = y;
	int c = strcmp(a->path, b->path);

	return c != 0 ? c : (a->kind > b->kind) - (a->kind < b->kind);
}

/* Collects the changes of one kind, in rename order (id, mode, path). */
static struct ap_change **rename_candidates(struct walk *w, enum ap_change_kind kind, size_t *ret_n)
{
	struct ap_change **v = calloc(w->n + 1, sizeof(*v));
	size_t n = 0;

	if (!v)
		return NULL;
	for (size_t i = 0; i < w->n; i++)
		if (w->v[i].kind == kind)
			v[n++] = &w->v[i];
	qsort(v, n, sizeof(*v), cmp_rename_order);
	*ret_n = n;
	return v;
}

/* Exact renames: within each (id, mode) group the k-th deleted path (in path order) pairs
 * with the k-th added path, each at most once. The paired DELETE is dropped. */
static int pair_renames(struct walk *w)
{
	size_t nd = 0, na = 0, i = 0, j = 0, n = 0;
	struct ap_change **del = rename_candidates(w, AP_CHANGE_DELETE, &nd);
	struct ap_change **add = rename_candidates(w, AP_CHANGE_ADD, &na);

	if (!del || !add) {
		free(del);
		free(add);
		return -ENOMEM;
	}
	while (i < nd && j < na) {
		int c = cmp_rename_key(del[i], add[j]);

		if (c != 0) {
			i += c < 0;
			j += c > 0;
			continue;
		}
		add[j]->kind = AP_CHANGE_RENAME;
		add[j]->old_path = TAKE_PTR(del[i]->path);
		add[j]->old_mode = del[i]->old_mode;
		memcpy(add[j]->old_oid, del[i]->old_oid, sizeof(add[j]->old_oid));
		i++, j++;
	}
	free(del);
	free(add);
	for (i = 0; i < w->n; i++) /* compact: paired deletes lost their path */
		if (w->v[i].path)
			w->v[n++] = w->v[i];
	w->n = n;
	return 0;
}

static struct walk *walk_new(struct ap_repo *r, const char *subject)
{
	struct walk *w = calloc(1, sizeof(*w));

	if (w) {
		w->git = r->git;
		w->subject = subject;
	}
	return w;
}

static void walk_free(struct walk *w)
{
	struct ap_changes c;

	if (!w)
		return;
	c = (struct ap_changes){ .v = w->v, .n = w->n };
	ap_changes_clear(&c);
	free(w);
}

static int commit_tree(struct ap_repo *r, const char *rev, git_tree **ret)
{
	git_commit *c;
	int k;

	if ((k = repo_lookup_commit(r, rev, &c)) < 0)
		return k;
	k = git_commit_tree(ret, c);
	git_commit_free(c);
	if (k < 0)
		return ap_log_error(repo_git_errno(k), "failed to read the tree of '%s': %s", rev,
				    repo_git_msg());
	return 0;
}

int ap_repo_diff(struct ap_repo *r, const char *from, const char *to, struct ap_changes *ret)
{
	return ap_repo_diff_paths(r, from, to, NULL, ret);
}

int ap_repo_diff_paths(struct ap_repo *r, const char *from, const char *to,
		       char *const *prefixes, struct ap_changes *ret)
{
	bool first = !from || !*from;
	char *subject = ap_strdupf("diff '%s'..'%s'", first ? "(empty tree)" : from, to);
	struct walk *w = subject ? walk_new(r, subject) : NULL;
	git_tree *ta = NULL, *tb = NULL;
	int k;

	if (!w) {
		k = ap_log_error(-ENOMEM, "failed to diff '%s': out of memory", to);
		goto cleanup;
	}
	w->prefixes = prefixes;
	if ((!first && (k = commit_tree(r, from, &ta)) < 0) || (k = commit_tree(r, to, &tb)) < 0)
		goto cleanup;
	k = walk_trees(w, ta, tb, 0);
	if (k >= 0)
		k = pair_renames(w);
	if (k == -ENOMEM)
		ap_log_error(k, "failed to %s: out of memory", subject);
	if (k < 0)
		goto cleanup;
	if (w->n > 0)
		qsort(w->v, w->n, sizeof(*w->v), cmp_change_path);
	*ret = (struct ap_changes){ .v = TAKE_PTR(w->v), .n = w->n };
	w->n = 0;
cleanup:
	walk_free(w);
	git_tree_free(ta);
	git_tree_free(tb);
	free(subject);
	return k;
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The walk against the empty tree lists every leaf; gitlinks are commits, not blobs. */
int ap_repo_list_files(struct ap_repo *r, const char *commit, char ***ret)
{
	char *subject = ap_strdupf("listing of '%s'", commit);
	struct walk *w = subject ? walk_new(r, subject) : NULL;
	git_tree *t = NULL;
	char **v = NULL;
	size_t n = 0;
	int k;

	if (!w) {
		k = ap_log_error(-ENOMEM, "failed to list '%s': out of memory", commit);
		goto cleanup;
	}
	if ((k = commit_tree(r, commit, &t)) < 0 || (k = walk_trees(w, NULL, t, 0)) < 0)
		goto cleanup;
	if (!(v = calloc(w->n + 1, sizeof(*v)))) {
		k = ap_log_error(-ENOMEM, "failed to list '%s': out of memory", commit);
		goto cleanup;
	}
	for (size_t i = 0; i < w->n; i++)
		if (w->v[i].new_mode != AP_GIT_MODE_GITLINK)
			v[n++] = TAKE_PTR(w->v[i].path);
	qsort(v, n, sizeof(*v), cmp_str);
	*ret = TAKE_PTR(v);
	k = 0;
cleanup:
	walk_free(w);
	git_tree_free(t);
	free(subject);
	return k;
}
