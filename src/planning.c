/* The one planning pipeline (planning.h). Blob contents are read only where the planner
 * needs them (unit files and drop-ins, for [Install], X-AutoPull-OnChange= and the metadata
 * comparison); other files are only sized here and read one at a time when staged or
 * installed (ap_planning_source). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "plan.h"
#include "planning.h"
#include "secrets.h"
#include "unitpolicy.h"
#include "util.h"

static int read_change(struct ap_repo *repo, struct ap_change *ch, const struct ap_path_map *m)
{
	bool unit = m->kind == AP_MAP_UNIT || m->kind == AP_MAP_DROPIN;
	bool mapped = unit || m->kind == AP_MAP_FILE;
	bool blob = ch->new_mode == AP_GIT_MODE_BLOB || ch->new_mode == AP_GIT_MODE_EXEC;
	size_t size = 0;
	int k = mapped && blob ? ap_repo_blob_size(repo, ch->new_oid, &size) : 0;

	if (k >= 0 && size > AP_MAX_BLOB_SIZE)
		k = -EFBIG;
	if (k >= 0 && blob && unit)
		k = ap_repo_read_blob(repo, ch->new_oid, AP_MAX_BLOB_SIZE, &ch->new_data,
				      &ch->new_len);
	if (k >= 0 && unit && ch->kind == AP_CHANGE_MODIFY && !ch->old_data)
		k = ap_repo_read_blob(repo, ch->old_oid, AP_MAX_BLOB_SIZE, &ch->old_data,
				      &ch->old_len);
	if (k == -EFBIG)
		return ap_log_error(k, "'%s' is larger than %u bytes; refusing to install it",
				    ch->path, AP_MAX_BLOB_SIZE);
	return k;
}

/* A secret's new side is decrypted here, the one place a repository blob of a rule with
 * decrypt: age is read: validation, the preflight and the install then see its plaintext.
 * 1 when only its ciphertext changed (re-encrypted, e.g. for another recipient) and the
 * destination already holds that plaintext: not a change. */
static int decrypt_change(struct ap_repo *repo, const struct ap_config *cfg, struct ap_change *ch,
			  const struct ap_path_map *m)
{
	_cleanup_free_ char *cipher = NULL;
	struct ap_host_file hf = { 0 };
	size_t len = 0;
	bool same;
	int k = ap_repo_read_blob(repo, ch->new_oid, AP_MAX_BLOB_SIZE, &cipher, &len);

	if (k >= 0)
		k = ap_secrets_decrypt(cfg, ch->path, cipher, len, &ch->new_data, &ch->new_len);
	if (k < 0 || ch->kind != AP_CHANGE_MODIFY || !*ch->old_oid || ch->old_mode != ch->new_mode)
		return k;
	if (ap_install_read_host(m->dest, m->root_len, true, &hf) < 0)
		return 0;
	same = hf.present && hf.len == ch->new_len && memcmp(hf.data, ch->new_data, hf.len) == 0;
	ap_host_file_clear(&hf);
	return same;
}

static void drop_change(struct ap_changes *changes, size_t i)
{
	struct ap_change *ch = &changes->v[i];

	free(ch->path);
	free(ch->old_path);
	free(ch->old_data);
	free(ch->new_data);
	memmove(ch, ch + 1, (changes->n - i - 1) * sizeof(*ch));
	changes->n--;
}

static int load_blobs(const struct ap_planning *in, struct ap_changes *changes)
{
	for (size_t i = 0; i < changes->n; i++) {
		struct ap_change *ch = &changes->v[i];
		struct ap_path_map m = { 0 };
		int k;

		if (ch->kind == AP_CHANGE_DELETE || ap_plan_map_path(in->cfg, ch->path, &m) < 0)
			continue;
		k = read_change(in->repo, ch, &m);
		/* offline (a CI runner) there is no identity, and no plaintext may be made */
		if (k >= 0 && !in->offline && m.kind == AP_MAP_FILE && m.rule->decrypt &&
		    (ch->new_mode == AP_GIT_MODE_BLOB || ch->new_mode == AP_GIT_MODE_EXEC))
			k = decrypt_change(in->repo, in->cfg, ch, &m);
		ap_path_map_clear(&m);
		if (k < 0)
			return k;
		if (k > 0)
			drop_change(changes, i--);
	}
	return 0;
}

/* Without a manager the units' states are unknown, but their own X-AutoPull-OnChange= is in
 * the repository: the named units (not globs) get an entry with an empty state and their
 * policy, so that a plan without a manager asks what the host's dry run asks. */
static int policies_only(const struct ap_planning *in, char *const *patterns, const char *to,
			 struct ap_unit_states *states)
{
	size_t n = 0;

	for (size_t i = 0; patterns[i]; i++)
		n += !strpbrk(patterns[i], "*?[");
	if (n == 0)
		return 0;
	states->v = calloc(n, sizeof(*states->v));
	if (!states->v)
		return -ENOMEM;
	for (size_t i = 0; patterns[i]; i++) {
		struct ap_unit_state *s = &states->v[states->n];

		if (strpbrk(patterns[i], "*?["))
			continue;
		*s = (struct ap_unit_state){ .name = strdup(patterns[i]), .load_state = strdup(""),
					     .active_state = strdup(""), .sub_state = strdup("") };
		states->n++;
		if (!s->name || !s->load_state || !s->active_state || !s->sub_state)
			return -ENOMEM;
	}
	return ap_unitpolicy_read(in->repo, in->cfg, to, states);
}

static int query_states(const struct ap_planning *in, const struct ap_changes *changes,
			const char *to, struct ap_unit_states *states)
{
	_cleanup_strv_free_ char **patterns = NULL;
	int k = ap_plan_units_needed(in->cfg, changes, &patterns);

	if (k < 0 || !patterns)
		return k;
	if (!in->bus) {
		if (!in->dry_run)
			return -ENOTCONN;
		if (!in->offline)
			ap_log_warning("no service manager reachable: unit actions are "
				       "conditional");
		return policies_only(in, patterns, to, states);
	}
	k = ap_bus_list_units(in->bus, patterns, states);
	if (k >= 0)
		k = ap_bus_read_refusals(in->bus, states);
	if (k >= 0)
		k = ap_unitpolicy_read(in->repo, in->cfg, to, states);
	if (k >= 0)
		k = ap_bus_own_unit(in->bus, &states->self);
	if (k < 0)
		return k;
	states->known = true;
	return 0;
}

int ap_planning_build(const struct ap_planning *in, const char *from, const char *to,
		      struct ap_changes *changes, struct ap_plan **ret)
{
	struct ap_unit_states states = { 0 };
	_cleanup_strv_free_ char **prefixes = NULL;
	_cleanup_free_ char *error = NULL;
	int k = 0;

	if (changes->n == 0) {
		k = ap_plan_prefixes(in->cfg, &prefixes);
		if (k >= 0)
			k = ap_repo_diff_paths(in->repo, *from ? from : NULL, to, prefixes,
					       changes);
	}
	if (k >= 0 && !in->files_only)
		k = load_blobs(in, changes);
	if (k >= 0 && !in->files_only)
		k = query_states(in, changes, to, &states);
	if (k >= 0)
		k = ap_plan_build(in->cfg, changes, in->files_only ? NULL : &states, from, to, ret,
				  &error);
	ap_unit_states_clear(&states);
	/* the expected set of a commit that was never applied has no one to tell */
	if (k == -EINVAL && error && !in->files_only)
		ap_log_error(k, "%s", error);
	return k;
}

static int read_source(void *userdata, const struct ap_change *ch, char **ret, size_t *ret_len)
{
	return ap_repo_read_blob(userdata, ch->new_oid, AP_MAX_BLOB_SIZE, ret, ret_len);
}

static int size_source(void *userdata, const struct ap_change *ch, size_t *ret)
{
	if (ch->new_data) {
		*ret = ch->new_len;
		return 0;
	}
	return ap_repo_blob_size(userdata, ch->new_oid, ret);
}

void ap_planning_source(struct ap_repo *repo, struct ap_install_source *ret)
{
	*ret = (struct ap_install_source){ .read = read_source, .size = size_source,
					   .userdata = repo };
}
