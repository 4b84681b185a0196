/* Reads the X-AutoPull-OnChange= of units the manager has loaded from their files at the
 * target commit (see unitpolicy.h): one walk limited to those paths, one blob per unit.
 * Deliberately not here: deciding what the policy does to an action (plan.c). */
#include <errno.h>
#include <string.h>

#include "log.h"
#include "unitfile.h"
#include "unitpolicy.h"
#include "util.h"

/* The repository paths that may hold unit's file: "DIR/NAME" and, for an instance,
 * "DIR/TEMPLATE" in every units: directory. */
static int push_paths(const struct ap_config *c, const char *unit, char ***v)
{
	char tmpl[AP_UNIT_NAME_MAX];
	bool inst = ap_unit_name_template_of(unit, tmpl, sizeof(tmpl));
	int r = 0;

	for (size_t i = 0; r >= 0 && c->units && c->units[i]; i++) {
		_cleanup_free_ char *p = ap_strdupf("%s%s", c->units[i], unit);
		_cleanup_free_ char *t = inst ? ap_strdupf("%s%s", c->units[i], tmpl) : NULL;

		if (!p || (inst && !t))
			return -ENOMEM;
		r = ap_strv_push_unique(v, p);
		if (r >= 0 && t)
			r = ap_strv_push_unique(v, t);
	}
	return r;
}

static const struct ap_change *find_path(const struct ap_changes *ch, const char *path)
{
	for (size_t i = 0; i < ch->n; i++)
		if (strcmp(ch->v[i].path, path) == 0 && (ch->v[i].new_mode == AP_GIT_MODE_BLOB ||
							 ch->v[i].new_mode == AP_GIT_MODE_EXEC))
			return &ch->v[i];
	return NULL;
}

/* The policy of the first file found for unit: its own before its template's. */
static int policy_of(struct ap_repo *repo, const struct ap_config *c, const struct ap_changes *ch,
		     const char *unit, int *ret)
{
	_cleanup_strv_free_ char **paths = NULL;
	int r = push_paths(c, unit, &paths);

	for (size_t i = 0; r >= 0 && paths && paths[i]; i++) {
		const struct ap_change *f = find_path(ch, paths[i]);
		_cleanup_free_ char *text = NULL;
		size_t len = 0;

		if (!f)
			continue;
		r = ap_repo_read_blob(repo, f->new_oid, AP_MAX_BLOB_SIZE, &text, &len);
		if (r >= 0)
			*ret = (int)ap_unitfile_onchange(text, len);
		return r;
	}
	return r;
}

int ap_unitpolicy_read(struct ap_repo *repo, const struct ap_config *c, const char *commit,
		       struct ap_unit_states *s)
{
	_cleanup_strv_free_ char **paths = NULL;
	struct ap_changes ch = { 0 };
	int r = 0;

	for (size_t i = 0; r >= 0 && i < s->n; i++)
		r = push_paths(c, s->v[i].name, &paths);
	if (r < 0 || !paths)
		return r;
	r = ap_repo_diff_paths(repo, NULL, commit, paths, &ch);
	for (size_t i = 0; r >= 0 && i < s->n; i++)
		r = policy_of(repo, c, &ch, s->v[i].name, &s->v[i].onchange);
	ap_changes_clear(&ch);
	if (r < 0)
		return ap_log_error(r,
				    "failed to read the units' X-AutoPull-OnChange= at %.12s: %s",
				    commit, strerror(-r));
	return 0;
}
