/* The planner: maps changed repository paths to host destinations and decides, with a
 * reason for each, which units to restart, reload, start, stop, enable or leave alone.
 * Pure: no I/O, no logging. The executor (apply.c) decides how and in which order; this
 * decides what. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "plan.h"
#include "unitfile.h"
#include "util.h"

void ap_path_map_clear(struct ap_path_map *m)
{
	free(m->dest);
	free(m->unit);
	*m = (struct ap_path_map){ 0 };
}

/* The part of path below the first units: dir containing it, or NULL. */
static const char *units_rel(const struct ap_config *c, const char *path)
{
	for (size_t i = 0; c->units && c->units[i]; i++)
		if (ap_startswith(path, c->units[i]))
			return path + strlen(c->units[i]);
	return NULL;
}

/* "foo.service.d/10-x.conf" → unit "foo.service" (written to unit, size bytes). */
static bool dropin_unit(const char *rel, char *unit, size_t size)
{
	const char *slash = strchr(rel, '/');
	size_t n;

	if (!slash || strchr(slash + 1, '/') || !ap_endswith(slash + 1, ".conf") ||
	    strlen(slash + 1) <= 5)
		return false;
	n = (size_t)(slash - rel);
	if (n < 3 || n - 2 >= size || memcmp(slash - 2, ".d", 2) != 0)
		return false;
	memcpy(unit, rel, n - 2);
	unit[n - 2] = '\0';
	return ap_unit_name_is_valid(unit);
}

static int map_unit(const struct ap_config *c, const char *rel, enum ap_map_kind kind,
		    const char *unit, struct ap_path_map *ret)
{
	char *dest = ap_strdupf("%s/%s", c->unit_dir, rel), *u = strdup(unit);

	if (!dest || !u) {
		free(dest);
		free(u);
		return -ENOMEM;
	}
	*ret = (struct ap_path_map){ .kind = kind, .dest = dest, .unit = u,
				     .root_len = strlen(c->unit_dir) };
	return 0;
}

static int map_rule(const struct ap_file_rule *r, const char *path, struct ap_path_map *ret)
{
	bool dir = ap_endswith(r->src, "/");
	char *dest = dir ? ap_strdupf("%s%s", r->dest, path + strlen(r->src)) : strdup(r->dest);

	if (!dest)
		return -ENOMEM;
	/* a directory rule resolves beneath its dest, a file rule beneath dest's parent */
	*ret = (struct ap_path_map){ .kind = AP_MAP_FILE, .dest = dest, .rule = r,
				     .root_len = dir ? strlen(r->dest) - 1
						     : (size_t)(strrchr(r->dest, '/') - r->dest) };
	return 0;
}

static int map_path(const struct ap_config *c, const char *path, struct ap_path_map *ret)
{
	const char *rel = units_rel(c, path);
	char unit[256];

	if (rel && !strchr(rel, '/') && ap_unit_name_is_valid(rel))
		return map_unit(c, rel, AP_MAP_UNIT, rel, ret);
	if (rel && dropin_unit(rel, unit, sizeof(unit)))
		return map_unit(c, rel, AP_MAP_DROPIN, unit, ret);
	for (size_t i = 0; i < c->n_files; i++) {
		const struct ap_file_rule *r = &c->files[i];
		bool dir = ap_endswith(r->src, "/");

		if (dir ? ap_startswith(path, r->src) : strcmp(path, r->src) == 0)
			return map_rule(r, path, ret);
	}
	*ret = (struct ap_path_map){ .kind = rel ? AP_MAP_UNMAPPED : AP_MAP_IGNORED };
	return 0;
}

int ap_plan_map_path(const struct ap_config *c, const char *path, struct ap_path_map *ret)
{
	int r;

	if (!ap_path_is_safe_relative(path) || ap_endswith(path, "/"))
		return -EINVAL;
	r = map_path(c, path, ret);
	/* a repository path just short of PATH_MAX, joined to a longer root, would name a
	 * destination no system call takes */
	if (r >= 0 && ret->dest && strlen(ret->dest) >= PATH_MAX) {
		ap_path_map_clear(ret);
		return -ENAMETOOLONG;
	}
	return r;
}

int ap_plan_prefixes(const struct ap_config *c, char ***ret)
{
	_cleanup_strv_free_ char **v = NULL;
	int r = 0;

	for (size_t i = 0; r >= 0 && c->units && c->units[i]; i++)
		r = ap_strv_push_unique(&v, c->units[i]);
	for (size_t i = 0; r >= 0 && i < c->n_files; i++)
		r = ap_strv_push_unique(&v, c->files[i].src);
	if (r < 0)
		return r;
	/* An empty list must still mean "nothing", not "everything". */
	if (!v && (r = ap_strv_push(&v, "/")) < 0)
		return r;
	*ret = TAKE_PTR(v);
	return 0;
}

/* A unit name as a ListUnitsByPatterns pattern: templates match their instances. */
static int push_unit_pattern(struct ap_strset *v, const char *unit)
{
	if (ap_unit_name_is_template(unit)) {
		const char *at = strchr(unit, '@');
		_cleanup_free_ char *p = ap_strdupf("%.*s@*%s", (int)(at - unit), unit, at + 1);

		return p ? ap_strset_add(v, p) : -ENOMEM;
	}
	return ap_strset_add(v, unit);
}

/* "foo.socket" → "foo.service" in ret: the service a socket activates unless it says
 * Service=. false when unit is no socket or the name does not fit. */
static bool socket_service(const char *unit, char *ret, size_t size)
{
	size_t n = strlen(unit) - strlen(".socket");

	if (!ap_endswith(unit, ".socket") || ap_unit_name_is_template(unit))
		return false;
	return snprintf(ret, size, "%.*s.service", (int)n, unit) < (int)size;
}

static int push_map_units(struct ap_strset *v, const struct ap_path_map *m)
{
	char svc[AP_UNIT_NAME_MAX + 1];
	int r = 0;

	if (m->unit && socket_service(m->unit, svc, sizeof(svc)) &&
	    (r = push_unit_pattern(v, svc)) < 0)
		return r;
	if (m->unit)
		return push_unit_pattern(v, m->unit);
	if (m->kind != AP_MAP_FILE)
		return 0;
	for (size_t i = 0; r >= 0 && m->rule->reload && m->rule->reload[i]; i++)
		r = push_unit_pattern(v, m->rule->reload[i]);
	for (size_t i = 0; r >= 0 && m->rule->restart && m->rule->restart[i]; i++)
		r = push_unit_pattern(v, m->rule->restart[i]);
	return r;
}

int ap_plan_units_needed(const struct ap_config *c, const struct ap_changes *ch, char ***ret)
{
	_cleanup_strset_ struct ap_strset v = { 0 };

	for (size_t i = 0; i < ch->n; i++) {
		const char *paths[2] = { ch->v[i].path, ch->v[i].old_path };

		for (size_t k = 0; k < 2 && paths[k]; k++) {
			struct ap_path_map m;
			int r = ap_plan_map_path(c, paths[k], &m);

			if (r < 0)
				continue; /* ap_plan_build reports it */
			r = push_map_units(&v, &m);
			ap_path_map_clear(&m);
			if (r < 0)
				return r;
		}
	}
	*ret = ap_strset_take(&v);
	return 0;
}

/* --- building ------------------------------------------------------------------- */

/* Every lookup by name goes through an index, so that a plan of n changes is built in O(n)
 * lookups rather than n searches of vectors growing with n. */
struct builder {
	const struct ap_config *c;
	const struct ap_unit_states *st;
	struct ap_strindex states; /* st->v by name */
	struct ap_plan *p;
	struct ap_strindex units;  /* p->units by name */
	size_t cap_units, cap_files;
	/* beside p->units[i]: how many reasons it has and their room (the terminator's
	 * included), so that a unit asked for by n paths gets its reasons in O(n) */
	struct reasons_room {
		size_t n, cap;
	} *rooms;
	size_t cap_rooms;
	/* "<unit>\n<reason>" of each reason given (neither has a newline: unit names and
	 * repository paths are checked before they get here) */
	struct ap_strset reasons;
	struct ap_strv_builder unmapped; /* p->unmapped once built */
	char *error;
	/* units whose new unit file or drop-in sets RefuseManualStart=/RefuseManualStop=: the
	 * manager refuses by the new definition, which the states do not show yet */
	struct ap_strset refuse_start, refuse_stop;
};

static struct ap_unit_action *find_unit(const struct builder *b, const char *unit)
{
	size_t i;

	return ap_strindex_find(&b->units, unit, &i) ? &b->p->units[i] : NULL;
}

/* As ap_unit_states_find: the first state of that name. */
static const struct ap_unit_state *find_state(const struct builder *b, const char *unit)
{
	size_t i;

	return ap_strindex_find(&b->states, unit, &i) ? &b->st->v[i] : NULL;
}

static void builder_clear(struct builder *b)
{
	ap_strindex_clear(&b->states);
	ap_strindex_clear(&b->units);
	free(b->rooms);
	b->rooms = NULL;
	ap_strset_clear(&b->reasons);
	ap_strv_builder_clear(&b->unmapped);
	ap_strset_clear(&b->refuse_start);
	ap_strset_clear(&b->refuse_stop);
}

/* A new entry of p->units, indexed; NULL when out of memory. */
static struct ap_unit_action *add_unit(struct builder *b, const char *unit,
				       enum ap_unit_action_kind a)
{
	struct ap_unit_action *v = ap_grow(b->p->units, b->p->n_units, &b->cap_units, sizeof(*v));
	struct reasons_room *m = v ? ap_grow(b->rooms, b->p->n_units, &b->cap_rooms,
					     sizeof(*m)) : NULL;
	struct ap_unit_action *u;

	if (v)
		b->p->units = v;
	if (!m)
		return NULL;
	b->rooms = m;
	m[b->p->n_units] = (struct reasons_room){ 0 };
	u = &v[b->p->n_units];
	*u = (struct ap_unit_action){ .unit = strdup(unit), .action = a };
	if (!u->unit || ap_strindex_add(&b->units, u->unit, b->p->n_units) < 0) {
		free(u->unit);
		return NULL;
	}
	b->p->n_units++;
	return u;
}

/* Notes that unit was given reason: 1 when new, 0 when given before, -ENOMEM. */
static int note_reason(struct builder *b, const char *unit, const char *reason)
{
	_cleanup_free_ char *key = ap_strdupf("%s\n%s", unit, reason);

	return key ? ap_strset_add(&b->reasons, key) : -ENOMEM;
}

/* Appends reason to u's reasons unless it is there already. */
static int add_reason(struct builder *b, struct ap_unit_action *u, const char *reason)
{
	struct reasons_room *m = &b->rooms[u - b->p->units];
	char *copy = strdup(reason), **v;
	int r;

	v = copy ? ap_grow(u->reasons, m->n + 1, &m->cap, sizeof(*v)) : NULL;
	if (v) {
		u->reasons = v;
		v[m->n] = NULL; /* a valid vector even if nothing is added */
	}
	r = v ? note_reason(b, u->unit, reason) : -ENOMEM;
	if (r <= 0) {
		free(copy);
		return r;
	}
	v[m->n++] = copy;
	v[m->n] = NULL;
	return 0;
}

static int want_one(struct builder *b, const char *unit, enum ap_unit_action_kind a,
		    const char *reason, const char *note)
{
	struct ap_unit_action *u = find_unit(b, unit);

	if (!u) {
		u = add_unit(b, unit, a);
		if (!u)
			return -ENOMEM;
	} else if (ap_unit_action_rank(a) > ap_unit_action_rank(u->action)) {
		u->action = a;
		free(u->note);
		u->note = NULL;
	}
	if (note && !u->note && u->action == a && !(u->note = strdup(note)))
		return -ENOMEM;
	return add_reason(b, u, reason);
}

static bool state_is_active(const struct ap_unit_state *s)
{
	return s && (strcmp(s->active_state, "active") == 0 ||
		     strcmp(s->active_state, "reloading") == 0 ||
		     strcmp(s->active_state, "activating") == 0);
}

/* Restarts and reloads of a template go to its loaded instances; a removed template's
 * instances are stopped. Without unit states the template itself stands for them. */
static int want(struct builder *b, const char *unit, enum ap_unit_action_kind a,
		const char *reason, const char *note)
{
	char tmpl[256];
	bool any = false;
	int r;

	if (!ap_unit_name_is_template(unit) || a == AP_ACTION_NONE || a == AP_ACTION_REENABLE)
		return want_one(b, unit, a, reason, note);
	if (!b->st->known)
		return want_one(b, unit, a, reason, "instances unknown: no manager reachable");
	for (size_t i = 0; i < b->st->n; i++) {
		const char *inst = b->st->v[i].name;

		if (!ap_unit_name_template_of(inst, tmpl, sizeof(tmpl)) || strcmp(tmpl, unit) != 0)
			continue;
		any = true;
		/* Restarting one would cut a live connection; the next one uses the new file. */
		if (ap_unit_instance_is_per_connection(inst)) {
			r = want_one(b, inst, AP_ACTION_NONE, reason,
				     "per-connection instance of an Accept=yes socket: left running");
			if (r < 0)
				return r;
			continue;
		}
		r = want_one(b, inst, a == AP_ACTION_DISABLE_STOP ? AP_ACTION_STOP : a, reason,
			     "instance of a changed template");
		if (r < 0)
			return r;
	}
	if (a == AP_ACTION_DISABLE_STOP)
		return want_one(b, unit, a, reason, NULL);
	return any ? 0 : want_one(b, unit, AP_ACTION_NONE, reason,
				  "template without loaded instances");
}

static int fail(struct builder *b, const char *fmt, ...) _printf_(2, 3);
static int fail(struct builder *b, const char *fmt, ...)
{
	va_list ap;

	free(b->error);
	va_start(ap, fmt);
	b->error = ap_strdupvf(fmt, ap);
	va_end(ap);
	return b->error ? -EINVAL : -ENOMEM;
}

static bool is_blob_mode(uint32_t m)
{
	return m == AP_GIT_MODE_BLOB || m == AP_GIT_MODE_EXEC;
}

static bool is_mapped(const struct ap_path_map *m)
{
	return m->kind == AP_MAP_UNIT || m->kind == AP_MAP_DROPIN || m->kind == AP_MAP_FILE;
}

static mode_t install_mode(const struct ap_path_map *m, uint32_t git_mode)
{
	if (m->kind == AP_MAP_FILE && m->rule->has_mode)
		return m->rule->mode;
	if (m->kind == AP_MAP_FILE && m->rule->decrypt) /* a secret is its owner's alone */
		return 0600;
	return m->kind == AP_MAP_FILE && git_mode == AP_GIT_MODE_EXEC ? 0755 : 0644;
}

static enum ap_file_kind file_kind(const struct ap_path_map *m)
{
	return m->kind == AP_MAP_UNIT ? AP_KIND_UNIT : m->kind == AP_MAP_DROPIN ? AP_KIND_DROPIN
										 : AP_KIND_FILE;
}

/* --- tmpfiles.d and sysusers.d --------------------------------------------------------- */

/* dest is NAME.conf right inside a directory called dir ("tmpfiles.d"). */
static bool conf_in(const char *dest, const char *dir)
{
	const char *base = strrchr(dest, '/');
	size_t n = strlen(dir);

	if (!base || strlen(base) <= strlen("/.conf") || !ap_endswith(base, ".conf") ||
	    (size_t)(base - dest) <= n)
		return false;
	return memcmp(base - n, dir, n) == 0 && base[-(ptrdiff_t)n - 1] == '/';
}

/* What the manager's own tools would do with a file installed at dest: the scope's tmpfiles.d
 * (user-tmpfiles.d in user scope), and sysusers.d in system scope only (there are no users of
 * a user). */
static bool setup_kind(const struct ap_config *c, const char *dest, enum ap_setup_kind *ret)
{
	bool user = c->scope == AP_SCOPE_USER;

	*ret = AP_SETUP_TMPFILES_CREATE;
	if (conf_in(dest, user ? "user-tmpfiles.d" : "tmpfiles.d"))
		return true;
	*ret = AP_SETUP_SYSUSERS;
	return !user && conf_in(dest, "sysusers.d");
}

/* Checked before anything is installed, when the rule names no validator of its own. This
 * systemd (252) has no --dry-run for tmpfiles: a --create limited to a prefix no line has
 * parses every line (a bad type or path fails, exit 65) and creates nothing. */
static int default_validator(const struct ap_config *c, enum ap_setup_kind k, char ***ret)
{
	const char *tmpfiles[] = { "systemd-tmpfiles", "--user", "--create",
				   "--prefix=/proc/autopull-validate-only", "%s" };
	const char *sysusers[] = { "systemd-sysusers", "--dry-run", "%s" };
	const char **v = k == AP_SETUP_SYSUSERS ? sysusers : tmpfiles;
	size_t n = k == AP_SETUP_SYSUSERS ? ELEMENTSOF(sysusers) : ELEMENTSOF(tmpfiles);
	int r = 0;

	for (size_t i = 0; r >= 0 && i < n; i++)
		if (strcmp(v[i], "--user") != 0 || c->scope == AP_SCOPE_USER)
			r = ap_strv_push(ret, v[i]);
	return r;
}

static int add_setup(struct builder *b, enum ap_setup_kind k, const char *file, const char *reason,
		     const char *note)
{
	struct ap_setup_action *v = realloc(b->p->setup, (b->p->n_setup + 1) * sizeof(*v)), *a;

	if (!v)
		return -ENOMEM;
	b->p->setup = v;
	a = &v[b->p->n_setup];
	*a = (struct ap_setup_action){ .kind = k, .note = note, .file = strdup(file),
				       .reason = strdup(reason) };
	if (!a->file || !a->reason) {
		free(a->file);
		free(a->reason);
		return -ENOMEM;
	}
	b->p->n_setup++;
	return 0;
}

/* A new or changed tmpfiles.d/sysusers.d file runs its tool; a mode change alone does not
 * (same lines). A removed one runs nothing: systemd-tmpfiles --remove would delete what
 * the lines name, data a service may still need, and users are never deleted. */
static int setup_effects(struct builder *b, const struct ap_change *ch, enum ap_change_kind kind,
			 const struct ap_path_map *nm, const struct ap_path_map *om)
{
	enum ap_setup_kind k;
	int r = 0;

	if (nm && nm->kind == AP_MAP_FILE && kind != AP_CHANGE_MODE &&
	    setup_kind(b->c, nm->dest, &k))
		r = add_setup(b, k, nm->dest, ch->path, NULL);
	if (r >= 0 && om && om->kind == AP_MAP_FILE && setup_kind(b->c, om->dest, &k) &&
	    (!nm || strcmp(nm->dest, om->dest) != 0))
		r = add_setup(b, AP_SETUP_NONE, om->dest, ch->old_path ? ch->old_path : ch->path,
			      k == AP_SETUP_SYSUSERS
				      ? "sysusers.d file removed: the users it created stay"
				      : "tmpfiles.d file removed: what it created stays");
	return r;
}

static int cmp_setup(const void *a, const void *b)
{
	const struct ap_setup_action *x = a, *y = b;

	return x->kind != y->kind ? (int)x->kind - (int)y->kind : strcmp(x->file, y->file);
}

static int dup_opt(const char *s, char **ret)
{
	*ret = s ? strdup(s) : NULL;
	return !s || *ret ? 0 : -ENOMEM;
}

/* One entry of plan->files. nm is the new side (NULL for deletes), om the old side of a
 * delete or rename (NULL otherwise). */
static int add_file_op(struct builder *b, const struct ap_change *ch, enum ap_change_kind kind,
		       const struct ap_path_map *nm, const struct ap_path_map *om)
{
	const struct ap_path_map *m = nm ? nm : om;
	struct ap_file_op *v = ap_grow(b->p->files, b->p->n_files, &b->cap_files, sizeof(*v)), *f;
	enum ap_setup_kind sk;
	int r;

	if (!v)
		return -ENOMEM;
	b->p->files = v;
	f = &v[b->p->n_files++];
	*f = (struct ap_file_op){ .change = kind, .kind = file_kind(m), .install = nm != NULL,
				  .remove = om != NULL, .change_ref = ch };
	f->root_len = m->root_len;
	if (nm && om)
		f->old_root_len = om->root_len;
	if (nm)
		f->mode = install_mode(nm, ch->new_mode);
	/* A rename out of every mapping removes the old path: name that one. */
	r = dup_opt(nm || !ch->old_path ? ch->path : ch->old_path, &f->path);
	if (r >= 0 && kind == AP_CHANGE_RENAME)
		r = dup_opt(ch->old_path, &f->old_path);
	if (r >= 0)
		r = dup_opt(m->dest, &f->dest);
	if (r >= 0 && nm && om)
		r = dup_opt(om->dest, &f->old_dest);
	if (r >= 0)
		r = dup_opt(m->unit, &f->unit);
	if (nm)
		f->takeover = nm->rule ? nm->rule->takeover : b->c->takeover_units;
	f->secret = m->rule && m->rule->decrypt;
	if (r >= 0 && nm && nm->rule) {
		r = dup_opt(nm->rule->owner, &f->owner);
		if (r >= 0)
			r = dup_opt(nm->rule->group, &f->group);
		if (r >= 0)
			r = ap_strv_copy(nm->rule->validate, &f->validate);
	}
	if (r >= 0 && nm && nm->rule && !f->validate && setup_kind(b->c, nm->dest, &sk))
		r = default_validator(b->c, sk, &f->validate);
	return r;
}

/* A restart: or reload: entry may be a glob ("app-*.service"): it asks for every loaded unit
 * it matches. Without unit states the glob itself stands for them (a dry run without a
 * manager). */
static int want_glob(struct builder *b, const char *pattern, enum ap_unit_action_kind a,
		     const char *reason)
{
	int r = 0;

	if (!strpbrk(pattern, "*?["))
		return want(b, pattern, a, reason, NULL);
	if (!b->st->known)
		return want_one(b, pattern, a, reason,
				"units matching the glob unknown: no manager");
	for (size_t i = 0; r >= 0 && i < b->st->n; i++)
		if (ap_unit_glob_match(pattern, b->st->v[i].name))
			r = want(b, b->st->v[i].name, a, reason, NULL);
	return r;
}

static int rule_units(struct builder *b, const struct ap_file_rule *rule, const char *reason)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && rule->reload && rule->reload[i]; i++)
		r = want_glob(b, rule->reload[i], AP_ACTION_RELOAD, reason);
	for (size_t i = 0; r >= 0 && rule->restart && rule->restart[i]; i++)
		r = want_glob(b, rule->restart[i], AP_ACTION_RESTART, reason);
	return r;
}

static int restart_for(struct builder *b, const char *unit, const char *reason)
{
	if (!ap_unit_name_is_restartable(unit))
		return want(b, unit, AP_ACTION_NONE, reason,
			    "units of this type are not restarted");
	return want(b, unit, AP_ACTION_RESTART, reason, NULL);
}

static int unit_added(struct builder *b, const struct ap_change *ch, const char *unit)
{
	if (ap_unit_name_is_template(unit))
		return want(b, unit, AP_ACTION_NONE, ch->path, "template: instances start by name");
	if (ch->new_data && ap_unitfile_has_install(ch->new_data, ch->new_len))
		return want(b, unit, AP_ACTION_ENABLE_START, ch->path, NULL);
	return want(b, unit, AP_ACTION_NONE, ch->path,
		    "no [Install] section: installed, not started");
}

static bool only_comments(const struct ap_change *ch)
{
	return ch->old_data && ch->new_data &&
	       ap_unitfile_only_comments_changed(ch->old_data, ch->old_len, ch->new_data,
						 ch->new_len);
}

static bool only_metadata(const struct ap_change *ch)
{
	return ch->old_data && ch->new_data &&
	       ap_unitfile_only_metadata_changed(ch->old_data, ch->old_len, ch->new_data,
						 ch->new_len);
}

#define ONLY_METADATA "only Description=/Documentation= changed: the daemon-reload is enough"

static int unit_modified(struct builder *b, const struct ap_change *ch, const char *unit)
{
	enum ap_onchange oc;

	if (only_comments(ch))
		return want(b, unit, AP_ACTION_NONE, ch->path, "only comments changed");
	if (only_metadata(ch))
		return want(b, unit, AP_ACTION_NONE, ch->path, ONLY_METADATA);
	if (ch->old_data && ch->new_data &&
	    ap_unitfile_only_install_changed(ch->old_data, ch->old_len, ch->new_data, ch->new_len))
		return want(b, unit, AP_ACTION_REENABLE, ch->path, "only [Install] changed");
	oc = ch->new_data ? ap_unitfile_onchange(ch->new_data, ch->new_len) : AP_ONCHANGE_RESTART;
	switch (oc) {
	case AP_ONCHANGE_INVALID:
		return fail(b,
			    "invalid X-AutoPull-OnChange= in '%s' (want restart, reload or none)",
			    ch->path);
	case AP_ONCHANGE_NONE:
		return want(b, unit, AP_ACTION_NONE, ch->path, "X-AutoPull-OnChange=none");
	case AP_ONCHANGE_RELOAD:
		return want(b, unit, AP_ACTION_RELOAD, ch->path, "X-AutoPull-OnChange=reload");
	default:
		return restart_for(b, unit, ch->path);
	}
}

/* What the disappearance of an installed path asks of its units. */
static int old_side_effects(struct builder *b, const struct ap_path_map *om, const char *path)
{
	if (om->kind == AP_MAP_FILE)
		return rule_units(b, om->rule, path);
	b->p->daemon_reload = true;
	if (om->kind == AP_MAP_UNIT)
		return want(b, om->unit, AP_ACTION_DISABLE_STOP, path, NULL);
	return restart_for(b, om->unit, path);
}

static int note_refusals(struct builder *b, const struct ap_change *ch, const char *unit)
{
	bool start = false, stop = false;
	int r = 0;

	if (!ch->new_data)
		return 0;
	ap_unitfile_refusals(ch->new_data, ch->new_len, &start, &stop);
	if (start)
		r = ap_strset_add(&b->refuse_start, unit);
	if (r >= 0 && stop)
		r = ap_strset_add(&b->refuse_stop, unit);
	return r;
}

static int new_side_effects(struct builder *b, const struct ap_change *ch, enum ap_change_kind kind,
			    const struct ap_path_map *nm)
{
	const char *why = NULL;
	int r;

	if (nm->kind == AP_MAP_FILE)
		return rule_units(b, nm->rule, ch->path);
	if (kind == AP_CHANGE_MODE)
		return 0; /* unit files are always installed 0644: nothing changes on the host */
	/* What systemd would read must be what the repository shows. */
	if (ch->new_data && ap_unitfile_check_text(ch->new_data, ch->new_len, &why) < 0)
		return fail(b, "'%s' cannot be installed as a unit file: it %s", ch->path, why);
	b->p->daemon_reload = true;
	if ((r = note_refusals(b, ch, nm->unit)) < 0)
		return r;
	if (nm->kind == AP_MAP_DROPIN && kind == AP_CHANGE_MODIFY && only_comments(ch))
		return want(b, nm->unit, AP_ACTION_NONE, ch->path, "only comments changed");
	if (nm->kind == AP_MAP_DROPIN && kind == AP_CHANGE_MODIFY && only_metadata(ch))
		return want(b, nm->unit, AP_ACTION_NONE, ch->path, ONLY_METADATA);
	if (nm->kind == AP_MAP_DROPIN)
		return restart_for(b, nm->unit, ch->path);
	if (kind == AP_CHANGE_MODIFY)
		return unit_modified(b, ch, nm->unit);
	return unit_added(b, ch, nm->unit);
}

/* The effective kind once unmapped sides are dropped: a rename out of every mapping is a
 * delete, into one an add; a symlink that became a file is an add. */
static enum ap_change_kind effective_kind(const struct ap_change *ch, bool new_mapped,
					  bool old_mapped)
{
	if (ch->kind == AP_CHANGE_RENAME)
		return new_mapped && old_mapped ? AP_CHANGE_RENAME
		       : new_mapped		? AP_CHANGE_ADD
						: AP_CHANGE_DELETE;
	if (ch->kind == AP_CHANGE_TYPE)
		return AP_CHANGE_ADD;
	return ch->kind;
}

static bool unit_name_mistake(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return ap_unit_name_is_valid_candidate(base) && !ap_unit_name_is_valid(base);
}

static int map_failed(struct builder *b, const char *path, int r)
{
	if (r == -EINVAL)
		return fail(b, "unsafe path '%s' in the repository", path);
	if (r == -ENAMETOOLONG)
		return fail(b, "'%s' in the repository maps to a destination longer than the "
			       "system allows (PATH_MAX); shorten it", path);
	return r;
}

static int map_sides(struct builder *b, const struct ap_change *ch, struct ap_path_map *nm,
		     struct ap_path_map *om)
{
	const char *np = ch->kind == AP_CHANGE_DELETE ? NULL : ch->path;
	const char *op = ch->kind == AP_CHANGE_DELETE ? ch->path
			 : ch->kind == AP_CHANGE_RENAME ? ch->old_path : NULL;
	int r;

	if (np && (r = ap_plan_map_path(b->c, np, nm)) < 0)
		return map_failed(b, np, r);
	if (op && (r = ap_plan_map_path(b->c, op, om)) < 0)
		return map_failed(b, op, r);
	if (np && is_mapped(nm) && !is_blob_mode(ch->new_mode))
		return fail(b, ch->new_mode == AP_GIT_MODE_LINK
				       ? "'%s' is a symlink in the repository; refusing to install it"
				       : "'%s' is a submodule in the repository; refusing to install it",
			    np);
	/* Named like a unit but not a valid name ("my app.service"): a mistake, not some file. */
	if (np && nm->kind == AP_MAP_UNMAPPED && unit_name_mistake(np))
		return fail(b,
			    "'%s' is not a valid unit name; rename it (systemd would not load it)",
			    np);
	/* A symlink was never installed, so its removal asks nothing of the host. */
	if (op && !is_blob_mode(ch->old_mode))
		ap_path_map_clear(om);
	if (np && nm->kind == AP_MAP_UNMAPPED)
		return ap_strv_builder_push(&b->unmapped, np);
	return 0;
}

static int plan_change(struct builder *b, const struct ap_change *ch)
{
	struct ap_path_map nm = { .kind = AP_MAP_IGNORED }, om = { .kind = AP_MAP_IGNORED };
	bool nmapped, omapped;
	enum ap_change_kind kind;
	int r = map_sides(b, ch, &nm, &om);

	nmapped = is_mapped(&nm);
	omapped = is_mapped(&om);
	if (r < 0 || (!nmapped && !omapped))
		goto out;
	kind = effective_kind(ch, nmapped, omapped);
	r = add_file_op(b, ch, kind, nmapped ? &nm : NULL, omapped ? &om : NULL);
	if (r >= 0 && omapped)
		r = old_side_effects(b, &om, ch->kind == AP_CHANGE_RENAME ? ch->old_path
				     : ch->path);
	if (r >= 0 && nmapped)
		r = new_side_effects(b, ch, kind, &nm);
	if (r >= 0)
		r = setup_effects(b, ch, kind, nmapped ? &nm : NULL, omapped ? &om : NULL);
out:
	ap_path_map_clear(&nm);
	ap_path_map_clear(&om);
	return r;
}

/* Why the manager would refuse action a on a unit in state s when asked by a client, or NULL.
 * Such a refusal does not go away by asking again, so the plan does not ask: the new
 * definition is loaded by the daemon-reload and takes effect when the unit next starts by
 * other means (a dependency, a trigger, a reboot). */
const char *ap_plan_refusal(enum ap_unit_action_kind a, const struct ap_unit_state *s)
{
	bool restart = a == AP_ACTION_RESTART || (a == AP_ACTION_RELOAD && !s->can_reload);
	/* enable-start is left as it is: the enabling must happen, and a refused start of a new
	 * unit is let go by the executor (apply.c) */
	bool start = a == AP_ACTION_START;

	if (!restart && !start && a != AP_ACTION_RELOAD)
		return NULL;
	if (strcmp(s->load_state, "masked") == 0)
		return "masked: the manager refuses to start or restart it; its files are installed";
	if (restart && s->refuse_stop)
		return "refuses manual stop: new definition loaded, applies at its next start";
	if ((restart || start) && s->refuse_start)
		return "refuses manual start: new definition loaded, applies at its next start";
	return NULL;
}

static int set_none(struct ap_unit_action *u, const char *note)
{
	u->action = AP_ACTION_NONE;
	free(u->note);
	u->note = strdup(note);
	return u->note ? 0 : -ENOMEM;
}

/* The unit's own X-AutoPull-OnChange=reload|none also holds when something else asks for its
 * restart: a file rule's restart: or reload:, or a changed drop-in. An opt-out says what the
 * unit can bear, which a rule written for a file cannot know better (NixOS applies a unit's
 * reloadIfChanged/restartIfChanged to triggered restarts too). */
static int apply_policy(struct ap_unit_action *u, const struct ap_unit_state *s)
{
	const char *word = s->onchange == AP_ONCHANGE_NONE ? "none" : "reload";
	bool downgrade = (s->onchange == AP_ONCHANGE_NONE &&
			  (u->action == AP_ACTION_RESTART || u->action == AP_ACTION_RELOAD)) ||
			 (s->onchange == AP_ONCHANGE_RELOAD && u->action == AP_ACTION_RESTART);
	char *note;

	if (!downgrade)
		return 0;
	note = ap_strdupf("X-AutoPull-OnChange=%s wins over the %s asked for", word,
			  ap_unit_action_to_string(u->action));
	if (!note)
		return -ENOMEM;
	u->action = s->onchange == AP_ONCHANGE_NONE ? AP_ACTION_NONE : AP_ACTION_RELOAD;
	free(u->note);
	u->note = note;
	return 0;
}

static bool listed(const struct ap_strset *s, const char *unit)
{
	char tmpl[AP_UNIT_NAME_MAX];

	return ap_strset_has(s, unit) ||
	       (ap_unit_name_template_of(unit, tmpl, sizeof(tmpl)) && ap_strset_has(s, tmpl));
}

/* The refusal by the unit's state, or by its new definition (a loaded unit's state shows the
 * old one until the daemon-reload). */
static const char *refusal_of(const struct builder *b, const struct ap_unit_action *u,
			      const struct ap_unit_state *s)
{
	struct ap_unit_state st = { .load_state = (char *)"loaded" };

	if (s)
		st = *s;
	st.refuse_start |= listed(&b->refuse_start, u->unit);
	st.refuse_stop |= listed(&b->refuse_stop, u->unit);
	return ap_plan_refusal(u->action, &st);
}

#define OWN_UNIT "own unit: takes effect on the next run"
#define OWN_UNIT_GONE "own unit: not stopped from inside; it ends with this run"

/* The unit this autopull runs as (a timer's service): a restart, reload, start or stop of it
 * from inside would end the apply half-way, with the commit not recorded. Its files are
 * installed and the daemon-reload loads them, so its next run uses the new definition. A stop
 * of a removed one is left alone too; its timer, also removed, starts it no more. */
static bool own_unit(const struct builder *b, const struct ap_unit_action *u)
{
	return b->st->self && strcmp(b->st->self, u->unit) == 0 &&
	       u->action != AP_ACTION_NONE && u->action != AP_ACTION_REENABLE &&
	       u->action != AP_ACTION_ENABLE_START;
}

/* Turns restarts/reloads of inactive units, and actions the manager would refuse, into
 * "none", of failed ones into "start", and records the seen state. A failed unit was meant
 * to run (someone started it, the manager gave up on it) and its files changed: most often
 * the commit is the fix, and leaving it dead would leave the guard refusing until someone
 * starts it by hand. */
static int apply_states(struct builder *b, struct ap_unit_action *u)
{
	const struct ap_unit_state *s = find_state(b, u->unit);
	char svc[AP_UNIT_NAME_MAX + 1];
	const char *why;
	int r;
	bool conditional = u->action == AP_ACTION_RESTART || u->action == AP_ACTION_RELOAD;
	bool failed = s && strcmp(s->active_state, "failed") == 0;

	if (!b->st->known) {
		/* the unit's own policy is known without its state (planning.c) */
		r = s ? apply_policy(u, s) : 0;
		u->if_active = u->action == AP_ACTION_RESTART || u->action == AP_ACTION_RELOAD;
		return r;
	}
	u->state = strdup(s ? s->active_state : "inactive");
	if (!u->state)
		return -ENOMEM;
	if (own_unit(b, u))
		return set_none(u, u->action == AP_ACTION_STOP || u->action == AP_ACTION_DISABLE_STOP
				   ? OWN_UNIT_GONE : OWN_UNIT);
	if (conditional && !state_is_active(s)) {
		if (!failed)
			return set_none(u, "inactive: the next start uses the new files");
		u->action = AP_ACTION_START;
		free(u->note);
		u->note = strdup("failed: started again on the new files");
		if (!u->note)
			return -ENOMEM;
	}
	if (s && (r = apply_policy(u, s)) < 0)
		return r;
	if ((why = refusal_of(b, u, s)))
		return set_none(u, why);
	if (u->action == AP_ACTION_RESTART && socket_service(u->unit, svc, sizeof(svc)) &&
	    state_is_active(find_state(b, svc)) && !u->note) {
		u->note = ap_strdupf("its service %s runs: socket and service stopped, socket "
				     "started on the new definition, the next connection starts "
				     "the service", svc);
		if (!u->note)
			return -ENOMEM;
	}
	return 0;
}

static int cmp_units(const void *a, const void *b)
{
	return strcmp(((const struct ap_unit_action *)a)->unit,
		      ((const struct ap_unit_action *)b)->unit);
}

int ap_plan_build(const struct ap_config *c, const struct ap_changes *ch,
		  const struct ap_unit_states *states, const char *from, const char *to,
		  struct ap_plan **ret, char **ret_error)
{
	static const struct ap_unit_states no_states = { 0 };
	struct builder b = { .c = c, .st = states ? states : &no_states };
	int r = 0;

	b.p = calloc(1, sizeof(*b.p));
	if (!b.p)
		return -ENOMEM;
	snprintf(b.p->from, sizeof(b.p->from), "%s", from ? from : "");
	snprintf(b.p->to, sizeof(b.p->to), "%s", to ? to : "");
	for (size_t i = 0; r >= 0 && i < b.st->n; i++)
		r = ap_strindex_add(&b.states, b.st->v[i].name, i);
	for (size_t i = 0; r >= 0 && i < ch->n; i++)
		r = plan_change(&b, &ch->v[i]);
	for (size_t i = 0; r >= 0 && i < b.p->n_units; i++)
		r = apply_states(&b, &b.p->units[i]);
	b.p->unmapped = ap_strv_builder_take(&b.unmapped);
	builder_clear(&b);
	if (r < 0) {
		ap_plan_free(b.p);
		if (ret_error)
			*ret_error = b.error;
		else
			free(b.error);
		return r;
	}
	if (b.p->n_units > 1)
		qsort(b.p->units, b.p->n_units, sizeof(*b.p->units), cmp_units);
	if (b.p->n_setup > 1)
		qsort(b.p->setup, b.p->n_setup, sizeof(*b.p->setup), cmp_setup);
	*ret = b.p;
	return 0;
}

bool ap_plan_is_empty(const struct ap_plan *p)
{
	return p->n_files == 0 && p->n_units == 0;
}

/* A builder adding to the finished plan p: its units indexed. */
static int builder_of(struct ap_plan *p, struct builder *ret)
{
	struct builder b = { .p = p, .cap_units = p->n_units, .cap_rooms = p->n_units };
	int r = p->n_units && !(b.rooms = calloc(p->n_units, sizeof(*b.rooms))) ? -ENOMEM : 0;

	for (size_t i = 0; r >= 0 && i < p->n_units; i++) {
		const struct ap_unit_action *u = &p->units[i];

		r = ap_strindex_add(&b.units, u->unit, i);
		b.rooms[i].n = ap_strv_length(u->reasons);
		b.rooms[i].cap = b.rooms[i].n ? b.rooms[i].n + 1 : 0;
		for (size_t k = 0; r >= 0 && k < b.rooms[i].n; k++)
			r = note_reason(&b, u->unit, u->reasons[k]);
	}
	if (r < 0) {
		builder_clear(&b);
		return r;
	}
	*ret = b;
	return 0;
}

static int add_owed(struct builder *b, const char *unit, enum ap_unit_action_kind a,
		    const char *reason)
{
	int r = want_one(b, unit, a, reason, "owed by an unfinished apply");

	if (r >= 0)
		find_unit(b, unit)->owed = true;
	return r;
}

int ap_plan_add_owed(struct ap_plan *p, const char *unit, enum ap_unit_action_kind a,
		     const char *reason)
{
	struct builder b = { 0 };
	int r = builder_of(p, &b);

	if (r >= 0)
		r = add_owed(&b, unit, a, reason);
	builder_clear(&b);
	return r;
}

bool ap_plan_is_noop(const struct ap_plan *p)
{
	if (p->n_files > 0 || p->daemon_reload)
		return false;
	for (size_t i = 0; i < p->n_units; i++)
		if (p->units[i].action != AP_ACTION_NONE)
			return false;
	return true;
}

int ap_plan_add_owed_journal(struct ap_plan *p, const struct ap_journal *j)
{
	_cleanup_free_ char *reason = ap_strdupf("journal of %.12s", j->to);
	struct builder b = { 0 };
	int k = reason ? builder_of(p, &b) : -ENOMEM;

	for (size_t i = 0; k >= 0 && i < j->n_units; i++)
		if (j->units[i].state != AP_STEP_DONE)
			k = add_owed(&b, j->units[i].unit, j->units[i].action, reason);
	builder_clear(&b);
	return k;
}
