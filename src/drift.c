/* Drift (see drift.h). The expected files of a commit are computed once per applied commit
 * and configuration from the mirror (a plan from the empty tree, files only) and stored; a check
 * then costs one
 * read and one hash per managed file.
 *
 * Deliberately not here: putting files back (a revert is an apply, engine.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "drift.h"
#include "install.h"
#include "log.h"
#include "plan.h"
#include "planning.h"
#include "secrets.h"
#include "util.h"

void ap_drift_clear(struct ap_drift *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].path);
		free(d->v[i].repo_path);
	}
	free(d->v);
	*d = (struct ap_drift){ 0 };
}

static int dup_or_null(const char *s, char **ret)
{
	*ret = s ? strdup(s) : NULL;
	return !s || *ret ? 0 : -ENOMEM;
}

static int expected_of_plan(const struct ap_plan *p, struct ap_expected_set *ret)
{
	int r = 0;

	ret->v = calloc(p->n_files ? p->n_files : 1, sizeof(*ret->v));
	if (!ret->v)
		return -ENOMEM;
	for (size_t i = 0; r >= 0 && i < p->n_files; i++) {
		const struct ap_file_op *f = &p->files[i];
		struct ap_expected *e = &ret->v[ret->n];

		if (!f->install)
			continue;
		ret->n++;
		*e = (struct ap_expected){ .root_len = f->root_len, .mode = f->mode };
		snprintf(e->oid, sizeof(e->oid), "%s", f->change_ref->new_oid);
		r = dup_or_null(f->dest, &e->path);
		if (r >= 0)
			r = dup_or_null(f->path, &e->repo_path);
		if (r >= 0)
			r = dup_or_null(f->owner, &e->owner);
		if (r >= 0)
			r = dup_or_null(f->group, &e->group);
	}
	return r;
}

/* Every file the configuration maps at commit: a plan from the empty tree. Blob contents
 * are not read: the tree entries carry the ids. */
static int compute_expected(struct ap_ctx *c, const char *commit, struct ap_expected_set *ret)
{
	struct ap_planning in = { .cfg = c->cfg, .repo = ap_ctx_repo(c), .files_only = true };
	struct ap_changes ch = { 0 };
	struct ap_plan *p = NULL;
	int r = in.repo ? ap_planning_build(&in, "", commit, &ch, &p) : -EIO;

	if (r >= 0)
		r = expected_of_plan(p, ret);
	if (r >= 0) {
		snprintf(ret->commit, sizeof(ret->commit), "%s", commit);
		snprintf(ret->config, sizeof(ret->config), "%s", c->cfg->digest);
	}
	if (p)
		ap_plan_free(p);
	ap_changes_clear(&ch);
	if (r < 0)
		ap_expected_set_clear(ret);
	return r;
}

int ap_drift_expected(struct ap_ctx *c, const char *commit, struct ap_expected_set *ret)
{
	int r = ap_state_read_expected(c->st, ret);

	/* Keyed on the configuration too: a rule removed from it no longer manages its files,
	 * whatever the commit holds. */
	if (r >= 0 && strcmp(ret->commit, commit) == 0 && strcmp(ret->config, c->cfg->digest) == 0)
		return 0;
	if (r >= 0)
		ap_expected_set_clear(ret);
	r = compute_expected(c, commit, ret);
	/* Storing is an optimisation: a read-only state dir still gets its answer. */
	if (r >= 0)
		(void)ap_state_write_expected(c->st, ret);
	return r;
}

static void add_what(char *what, size_t size, const char *w)
{
	size_t n = strlen(what);

	snprintf(what + n, size - n, "%s%s", n ? "," : "", w);
}

/* What differs between e and the host file, into what ("" when nothing). A secret's bytes are
 * compared with its decrypted blob, in memory. */
static int compare(struct ap_ctx *c, const struct ap_expected *e, char *what, size_t size)
{
	bool secret = ap_secrets_is_secret(c->cfg, e->repo_path);
	struct ap_host_file hf = { 0 };
	char oid[AP_OID_HEXSZ + 1];
	uid_t uid;
	gid_t gid;
	int r = ap_install_read_host(e->path, e->root_len, true, &hf);

	*what = '\0';
	if (r == -ELOOP || r == -EISDIR || r == -EINVAL) {
		add_what(what, size, "not a file");
		return 0;
	}
	if (r >= 0 && !hf.present)
		add_what(what, size, "missing");
	if (r >= 0 && hf.present && secret) {
		struct ap_repo *repo = ap_ctx_repo(c);

		r = repo ? ap_secrets_matches(c->cfg, repo, e->oid, e->repo_path,
					      hf.data ? hf.data : "", hf.len) : -EIO;
		snprintf(oid, sizeof(oid), "%s", r > 0 ? e->oid : "");
	} else if (r >= 0 && hf.present)
		r = ap_repo_blob_id(hf.data ? hf.data : "", hf.len, oid);
	if (r >= 0 && hf.present)
		r = ap_install_owner_ids(e->owner, e->group, &uid, &gid);
	if (r >= 0 && hf.present) {
		if (strcmp(oid, e->oid) != 0)
			add_what(what, size, "bytes");
		if (hf.mode != e->mode)
			add_what(what, size, "mode");
		if (hf.uid != (uid == (uid_t)-1 ? geteuid() : uid))
			add_what(what, size, "owner");
		if (hf.gid != (gid == (gid_t)-1 ? getegid() : gid))
			add_what(what, size, "group");
	}
	ap_host_file_clear(&hf);
	return r;
}

int ap_drift_check(struct ap_ctx *c, const char *commit, struct ap_drift *ret)
{
	struct ap_expected_set set = { 0 };
	struct ap_drift d = { 0 };
	int r = ap_drift_expected(c, commit, &set);

	snprintf(d.commit, sizeof(d.commit), "%s", commit);
	for (size_t i = 0; r >= 0 && i < set.n; i++) {
		char what[48];
		struct ap_drift_item *w;

		r = compare(c, &set.v[i], what, sizeof(what));
		if (r < 0 || !*what)
			continue;
		w = realloc(d.v, (d.n + 1) * sizeof(*w));
		if (!w) {
			r = -ENOMEM;
			break;
		}
		d.v = w;
		w[d.n] = (struct ap_drift_item){ .path = strdup(set.v[i].path),
						 .repo_path = strdup(set.v[i].repo_path) };
		snprintf(w[d.n].what, sizeof(w[d.n].what), "%s", what);
		if (!w[d.n++].path || !w[d.n - 1].repo_path)
			r = -ENOMEM;
	}
	ap_expected_set_clear(&set);
	if (r < 0) {
		ap_drift_clear(&d);
		return r;
	}
	*ret = d;
	return 0;
}

int ap_drift_changes(const struct ap_drift *d, const struct ap_expected_set *set,
		     struct ap_changes *ret)
{
	ret->v = calloc(d->n, sizeof(*ret->v));
	if (!ret->v)
		return -ENOMEM;
	for (size_t i = 0; i < d->n; i++)
		for (size_t k = 0; k < set->n; k++) {
			const struct ap_expected *e = &set->v[k];
			struct ap_change *ch = &ret->v[ret->n];
			struct ap_host_file hf = { 0 };

			if (strcmp(e->path, d->v[i].path) != 0)
				continue;
			*ch = (struct ap_change){ .kind = AP_CHANGE_MODIFY,
						  .path = strdup(e->repo_path),
						  .new_mode = e->mode & 0111 ? AP_GIT_MODE_EXEC
									     : AP_GIT_MODE_BLOB };
			ch->old_mode = ch->new_mode;
			snprintf(ch->new_oid, sizeof(ch->new_oid), "%s", e->oid);
			ret->n++;
			if (!ch->path)
				return -ENOMEM;
			if (ap_install_read_host(e->path, e->root_len, true, &hf) >= 0 &&
			    hf.present) {
				ch->old_data = TAKE_PTR(hf.data);
				ch->old_len = hf.len;
			}
			ap_host_file_clear(&hf);
			break;
		}
	return 0;
}

void ap_drift_tick(struct ap_ctx *c, const char *applied, const char *tip, struct ap_tick *t,
		   struct ap_drift *d)
{
	size_t n;

	if (*tip && ap_repo_count_commits(c->repo, applied, tip, &n) >= 0)
		t->pending = (long)n;
	if (ap_drift_check(c, applied, d) >= 0)
		t->drift = (long)d->n;
	if (d->n > 0 && !c->cfg->drift_revert)
		ap_log_warning("%zu managed file(s) differ from %.12s, the first '%s' (%s); "
			       "'autopull diff' shows how", d->n, applied, d->v[0].path,
			       d->v[0].what);
}

int ap_drift_revert_changes(struct ap_ctx *c, const char *applied, const struct ap_drift *d,
			    struct ap_changes *ret)
{
	struct ap_expected_set set = { 0 };
	int k = ap_drift_expected(c, applied, &set);

	ap_log_warning("putting back %zu drifted file(s) (drift: revert), the first '%s' (%s)",
		       d->n,
		       d->v[0].path, d->v[0].what);
	if (k >= 0)
		k = ap_drift_changes(d, &set, ret);
	ap_expected_set_clear(&set);
	if (k < 0)
		ap_log_error(k, "failed to put back the drifted files: %s", strerror(-k));
	return k;
}
