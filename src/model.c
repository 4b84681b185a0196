/* Destructors and names for the plain data types of model.h. */
#include <errno.h>
#include <string.h>

#include "model.h"
#include "util.h"

void ap_changes_clear(struct ap_changes *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].path);
		free(c->v[i].old_path);
		free(c->v[i].old_data);
		free(c->v[i].new_data);
	}
	free(c->v);
	*c = (struct ap_changes){ 0 };
}

const char *ap_change_kind_to_string(enum ap_change_kind k)
{
	static const char *const names[] = {
		[AP_CHANGE_ADD] = "add", [AP_CHANGE_MODIFY] = "modify",
			[AP_CHANGE_DELETE] = "delete",
		[AP_CHANGE_MODE] = "mode", [AP_CHANGE_RENAME] = "rename", [AP_CHANGE_TYPE] = "type",
	};
	return (unsigned)k < ELEMENTSOF(names) ? names[k] : "?";
}

const char *ap_file_kind_to_string(enum ap_file_kind k)
{
	static const char *const names[] = {
		[AP_KIND_UNIT] = "unit", [AP_KIND_DROPIN] = "dropin", [AP_KIND_FILE] = "file",
	};
	return (unsigned)k < ELEMENTSOF(names) ? names[k] : "?";
}

const char *ap_unit_action_to_string(enum ap_unit_action_kind a)
{
	static const char *const names[] = {
		[AP_ACTION_NONE] = "none", [AP_ACTION_RESTART] = "restart",
		[AP_ACTION_RELOAD] = "reload", [AP_ACTION_START] = "start",
		[AP_ACTION_STOP] = "stop", [AP_ACTION_ENABLE_START] = "enable-start",
		[AP_ACTION_DISABLE_STOP] = "disable-stop", [AP_ACTION_REENABLE] = "reenable",
	};
	return (unsigned)a < ELEMENTSOF(names) ? names[a] : "?";
}

int ap_unit_action_from_string(const char *s, enum ap_unit_action_kind *ret)
{
	for (enum ap_unit_action_kind a = AP_ACTION_NONE; a <= AP_ACTION_REENABLE; a++)
		if (strcmp(s, ap_unit_action_to_string(a)) == 0) {
			*ret = a;
			return 0;
		}
	/* Journals of earlier versions called a re-enable "enable". */
	if (strcmp(s, "enable") == 0) {
		*ret = AP_ACTION_REENABLE;
		return 0;
	}
	return -EINVAL;
}

int ap_unit_action_rank(enum ap_unit_action_kind a)
{
	static const int rank[] = {
		[AP_ACTION_NONE] = 0, [AP_ACTION_REENABLE] = 1, [AP_ACTION_RELOAD] = 2,
		[AP_ACTION_RESTART] = 3, [AP_ACTION_START] = 4, [AP_ACTION_STOP] = 5,
		[AP_ACTION_ENABLE_START] = 6, [AP_ACTION_DISABLE_STOP] = 7,
	};
	return (unsigned)a < ELEMENTSOF(rank) ? rank[a] : 0;
}

const char *ap_job_kind_to_string(enum ap_job_kind k)
{
	static const char *const names[] = {
		[AP_JOB_START] = "start", [AP_JOB_STOP] = "stop",
		[AP_JOB_TRY_RESTART] = "try-restart",
		[AP_JOB_RELOAD_OR_TRY_RESTART] = "reload-or-try-restart",
			[AP_JOB_RESTART] = "restart", [AP_JOB_RUN] = "run",
	};
	return (unsigned)k < ELEMENTSOF(names) ? names[k] : "?";
}

void ap_host_file_clear(struct ap_host_file *f)
{
	free(f->path);
	free(f->data);
	*f = (struct ap_host_file){ 0 };
}

void ap_unit_states_clear(struct ap_unit_states *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].name);
		free(s->v[i].load_state);
		free(s->v[i].active_state);
		free(s->v[i].sub_state);
	}
	free(s->v);
	free(s->self);
	*s = (struct ap_unit_states){ 0 };
}

const struct ap_unit_state *ap_unit_states_find(const struct ap_unit_states *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i].name, name) == 0)
			return &s->v[i];
	return NULL;
}

const char *ap_setup_kind_to_string(enum ap_setup_kind k)
{
	static const char *const names[] = { [AP_SETUP_SYSUSERS] = "sysusers",
					     [AP_SETUP_TMPFILES_CREATE] = "tmpfiles-create",
					     [AP_SETUP_NONE] = "none" };
	return (unsigned)k < ELEMENTSOF(names) ? names[k] : "none";
}

void ap_plan_free(struct ap_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_files; i++) {
		struct ap_file_op *f = &p->files[i];
		free(f->path);
		free(f->old_path);
		free(f->dest);
		free(f->old_dest);
		free(f->owner);
		free(f->group);
		free(f->unit);
		ap_strv_free(f->validate);
	}
	free(p->files);
	for (size_t i = 0; i < p->n_units; i++) {
		free(p->units[i].unit);
		free(p->units[i].state);
		free(p->units[i].note);
		ap_strv_free(p->units[i].reasons);
	}
	free(p->units);
	ap_strv_free(p->unmapped);
	for (size_t i = 0; i < p->n_setup; i++) {
		free(p->setup[i].file);
		free(p->setup[i].reason);
	}
	free(p->setup);
	free(p);
}
