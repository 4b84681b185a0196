/* Plan output. The JSON shape is an interface (documented in README.md): fields may be
 * added, never renamed; its strings are valid UTF-8 (ap_buf_json_string). The human form says
 * why each thing happens, each line escaped (ap_buf_linef). */
#include <errno.h>
#include <string.h>

#include "print.h"

int ap_print_json_strv(struct ap_buf *b, char *const *v)
{
	int r = ap_buf_append(b, "[", 1);

	for (size_t i = 0; r >= 0 && v && v[i]; i++) {
		if (i)
			r = ap_buf_append(b, ", ", 2);
		if (r >= 0)
			r = ap_buf_json_string(b, v[i]);
	}
	return r < 0 ? r : ap_buf_append(b, "]", 1);
}

/* `, "key": "value"`, or nothing when value is NULL (optional members). */
static int json_member(struct ap_buf *b, const char *key, const char *value)
{
	int r;

	if (!value)
		return 0;
	r = ap_buf_printf(b, ", \"%s\": ", key);
	return r < 0 ? r : ap_buf_json_string(b, value);
}

static int json_file(struct ap_buf *b, const struct ap_file_op *f)
{
	int r = ap_buf_append(b, "{\"path\": ", 9);

	if (r >= 0)
		r = ap_buf_json_string(b, f->path);
	if (r >= 0)
		r = json_member(b, "old_path", f->old_path);
	if (r >= 0)
		r = json_member(b, "dest", f->dest);
	if (r >= 0)
		r = json_member(b, "old_dest", f->old_dest);
	if (r >= 0)
		r = ap_buf_printf(b, ", \"change\": \"%s\", \"kind\": \"%s\"",
				  ap_change_kind_to_string(f->change),
				  ap_file_kind_to_string(f->kind));
	if (r >= 0 && f->install)
		r = ap_buf_printf(b, ", \"mode\": \"%04o\"", (unsigned)f->mode);
	if (r >= 0 && f->secret)
		r = ap_buf_printf(b, ", \"secret\": true");
	return r < 0 ? r : ap_buf_append(b, "}", 1);
}

/* `, "note": …, "reasons": […]}`: the end of a unit's or a setup action's object. */
static int json_note_reasons(struct ap_buf *b, const char *note, char *const *reasons)
{
	int r = ap_buf_printf(b, ", \"note\": ");

	if (r >= 0)
		r = ap_buf_json_string_or_null(b, note);
	if (r >= 0)
		r = ap_buf_printf(b, ", \"reasons\": ");
	if (r >= 0)
		r = ap_print_json_strv(b, reasons);
	return r < 0 ? r : ap_buf_append(b, "}", 1);
}

static int json_unit(struct ap_buf *b, const struct ap_unit_action *u)
{
	int r = ap_buf_append(b, "{\"unit\": ", 9);

	if (r >= 0)
		r = ap_buf_json_string(b, u->unit);
	if (r >= 0)
		r = ap_buf_printf(b, ", \"action\": \"%s\", \"if_active\": %s, \"state\": ",
				  ap_unit_action_to_string(u->action), u->if_active ? "true"
				  : "false");
	if (r >= 0)
		r = ap_buf_json_string_or_null(b, u->state);
	return r < 0 ? r : json_note_reasons(b, u->note, u->reasons);
}

static int json_setup(struct ap_buf *b, const struct ap_setup_action *a)
{
	int r = ap_buf_printf(b, "{\"action\": \"%s\", \"file\": ",
			      ap_setup_kind_to_string(a->kind));

	if (r >= 0)
		r = ap_buf_json_string(b, a->file);
	return r < 0 ? r : json_note_reasons(b, a->note, (char *[]){ a->reason, NULL });
}

int ap_print_plan_json(const struct ap_plan *p, const char *extra, struct ap_buf *b)
{
	int r = ap_buf_printf(b, "{\"from\": ");

	if (r >= 0)
		r = ap_buf_json_string_or_null(b, p->from);
	if (r >= 0)
		r = ap_buf_printf(b, ", \"to\": ");
	if (r >= 0)
		r = ap_buf_json_string_or_null(b, p->to);
	if (r >= 0)
		r = ap_buf_printf(b, ",\n \"files\": [");
	for (size_t i = 0; r >= 0 && i < p->n_files; i++) {
		r = ap_buf_printf(b, "%s\n  ", i ? "," : "");
		if (r >= 0)
			r = json_file(b, &p->files[i]);
	}
	if (r >= 0)
		r = ap_buf_printf(b, "],\n \"daemon_reload\": %s,\n \"units\": [",
				  p->daemon_reload ? "true" : "false");
	for (size_t i = 0; r >= 0 && i < p->n_units; i++) {
		r = ap_buf_printf(b, "%s\n  ", i ? "," : "");
		if (r >= 0)
			r = json_unit(b, &p->units[i]);
	}
	if (r >= 0)
		r = ap_buf_printf(b, "],\n \"setup\": [");
	for (size_t i = 0; r >= 0 && i < p->n_setup; i++) {
		r = ap_buf_printf(b, "%s\n  ", i ? "," : "");
		if (r >= 0)
			r = json_setup(b, &p->setup[i]);
	}
	if (r >= 0)
		r = ap_buf_printf(b, "],\n \"unmapped\": ");
	if (r >= 0)
		r = ap_print_json_strv(b, p->unmapped);
	if (r >= 0 && extra)
		r = ap_buf_printf(b, ",\n %s", extra);
	return r < 0 ? r : ap_buf_printf(b, "}\n");
}

static const char *short_oid(const char *oid)
{
	return *oid ? oid : "(nothing)";
}

/* Ends the line built in l: escaped whole into b (paths, unit names, notes and reasons may
 * come from the repository), l emptied. */
static int human_line(struct ap_buf *b, struct ap_buf *l, int r)
{
	if (r >= 0)
		r = ap_buf_linef(b, "%s", l->data ? l->data : "");
	ap_buf_clear(l);
	return r;
}

static int human_file(struct ap_buf *b, const struct ap_file_op *f)
{
	struct ap_buf l = { 0 };
	int r = ap_buf_printf(&l, "  %-7s %-7s %s", ap_change_kind_to_string(f->change),
			      ap_file_kind_to_string(f->kind), f->path);

	if (r >= 0 && f->old_path)
		r = ap_buf_printf(&l, " (was %s)", f->old_path);
	if (r >= 0 && f->install)
		r = ap_buf_printf(&l, " -> %s (%04o%s)", f->dest, (unsigned)f->mode,
				  f->secret ? ", secret changed" : "");
	if (r >= 0 && f->remove)
		r = ap_buf_printf(&l, "%sremove %s", f->install ? "; " : " -> ",
				  f->old_dest ? f->old_dest : f->dest);
	return human_line(b, &l, r);
}

/* width: the longest unit name of the plan, so that long names keep the columns. */
static int human_unit(struct ap_buf *b, const struct ap_unit_action *u, int width)
{
	struct ap_buf l = { 0 };
	int r = ap_buf_printf(&l, "  %-12s %-*s %s", ap_unit_action_to_string(u->action), width,
			      u->unit, u->if_active ? "(if active) " : "");

	if (r >= 0 && u->state)
		r = ap_buf_printf(&l, "[%s] ", u->state);
	if (r >= 0)
		r = ap_buf_printf(&l, "because ");
	for (size_t i = 0; r >= 0 && u->reasons && u->reasons[i]; i++)
		r = ap_buf_printf(&l, "%s%s", i ? ", " : "", u->reasons[i]);
	if (r >= 0 && u->note)
		r = ap_buf_printf(&l, " (%s)", u->note);
	return human_line(b, &l, r);
}

static int human_setup(struct ap_buf *b, const struct ap_setup_action *a)
{
	struct ap_buf l = { 0 };
	int r = ap_buf_printf(&l, "  %-15s %s because %s", ap_setup_kind_to_string(a->kind),
			      a->file, a->reason);

	if (r >= 0 && a->note)
		r = ap_buf_printf(&l, " (%s)", a->note);
	return human_line(b, &l, r);
}

int ap_print_plan_human(const struct ap_plan *p, struct ap_buf *b)
{
	int width = 20, r = ap_buf_printf(b, "plan %.12s -> %.12s: %zu file(s), %zu unit(s)%s\n",
			      short_oid(p->from), short_oid(p->to), p->n_files, p->n_units,
			      p->daemon_reload ? ", daemon-reload" : "");

	if (r >= 0 && p->n_files)
		r = ap_buf_printf(b, "files:\n");
	for (size_t i = 0; r >= 0 && i < p->n_files; i++)
		r = human_file(b, &p->files[i]);
	if (r >= 0 && p->daemon_reload)
		r = ap_buf_printf(b, "daemon-reload: yes (unit files or drop-ins changed)\n");
	if (r >= 0 && p->n_units)
		r = ap_buf_printf(b, "units:\n");
	for (size_t i = 0; i < p->n_units; i++)
		if (strlen(p->units[i].unit) > (size_t)width)
			width = (int)strlen(p->units[i].unit);
	for (size_t i = 0; r >= 0 && i < p->n_units; i++)
		r = human_unit(b, &p->units[i], width);
	if (r >= 0 && p->n_setup)
		r = ap_buf_printf(b, "setup (after the files, before any unit starts):\n");
	for (size_t i = 0; r >= 0 && i < p->n_setup; i++)
		r = human_setup(b, &p->setup[i]);
	if (r >= 0 && p->unmapped)
		r = ap_buf_printf(b,
				  "unmapped (under a units: dir, not a unit, no files: rule):\n");
	for (size_t i = 0; r >= 0 && p->unmapped && p->unmapped[i]; i++)
		r = ap_buf_linef(b, "  %s", p->unmapped[i]);
	if (r >= 0 && ap_strv_length(p->unmapped) == 0 && p->n_files == 0 && p->n_units == 0)
		r = ap_buf_printf(b, "nothing to do\n");
	return r;
}

int ap_print_journal_units_json(const struct ap_journal *j, struct ap_buf *b)
{
	int r = ap_buf_printf(b, ", \"jobs\": [");

	for (size_t i = 0; r >= 0 && i < j->n_units; i++) {
		r = ap_buf_printf(b, "%s{\"unit\": ", i ? ", " : "");
		if (r >= 0)
			r = ap_buf_json_string(b, j->units[i].unit);
		if (r >= 0)
			r = ap_buf_printf(b,
					  ", \"action\": \"%s\", \"state\": \"%s\", \"owed\": %s}",
					  ap_unit_action_to_string(j->units[i].action),
					  ap_step_to_string(j->units[i].state),
					  j->units[i].owed ? "true" : "false");
	}
	return r < 0 ? r : ap_buf_append(b, "]", 1);
}
