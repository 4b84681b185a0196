/* The plan of a commit range for several hosts, rendered for a pull request (print.h):
 * Markdown for people, JSON for programs. Pure: plans in, text appended to a buffer.
 *
 * Everything that comes from the repository (paths, unit names, reasons, notes, validator
 * output) or from the command line (host names) is escaped twice: first as all human output
 * is (ap_escape: control characters and newlines become visible escapes, so a row stays one
 * row), then for Markdown (a '|' cannot end a cell, '`', '*', '_', '[' cannot start markup,
 * '<' and '&' cannot open HTML). Deliberately not here: making the plans (cmd-plan.c). */
#include <errno.h>
#include <string.h>

#include "print.h"

#define MIN_ROWS(n) ((n) < AP_REVIEW_MAX_ROWS ? (n) : (size_t)AP_REVIEW_MAX_ROWS)
#define ASSUMPTION "unit states are unknown here (no service manager): a restart or a reload " \
	"happens only where the unit is running, as --dry-run on a host where it runs shows"

/* Appends s for a Markdown table cell or a list item. */
static int md(struct ap_buf *b, const char *s)
{
	struct ap_buf e = { 0 };
	int r = ap_buf_escape(&e, s ? s : "", 0);

	for (size_t i = 0; r >= 0 && i < e.len; i++) {
		char c = e.data[i];

		if (c == '<')
			r = ap_buf_printf(b, "&lt;");
		else if (c == '>')
			r = ap_buf_printf(b, "&gt;");
		else if (c == '&')
			r = ap_buf_printf(b, "&amp;");
		else if (strchr("\\`*_[]|#!", c))
			r = ap_buf_printf(b, "\\%c", c);
		else
			r = ap_buf_append(b, &c, 1);
	}
	ap_buf_clear(&e);
	return r;
}

/* restart, reload, start, stop: how many units of the plan each asks for. */
static void count_units(const struct ap_plan *p, size_t n[4])
{
	memset(n, 0, 4 * sizeof(*n));
	for (size_t i = 0; p && i < p->n_units; i++)
		switch (p->units[i].action) {
		case AP_ACTION_RESTART: n[0]++; break;
		case AP_ACTION_RELOAD: n[1]++; break;
		case AP_ACTION_START:
		case AP_ACTION_ENABLE_START: n[2]++; break;
		case AP_ACTION_STOP:
		case AP_ACTION_DISABLE_STOP: n[3]++; break;
		default: break;
		}
}

static bool host_affected(const struct ap_review_host *h)
{
	return h->refusals || !h->plan || h->plan->n_files > 0 || h->plan->n_units > 0 ||
	       h->plan->unmapped;
}

size_t ap_review_affected(const struct ap_review *r)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n_hosts; i++)
		n += host_affected(&r->hosts[i]);
	return n;
}

static int md_summary_row(struct ap_buf *b, const struct ap_review_host *h)
{
	size_t n[4];
	int k = ap_buf_printf(b, "| ");

	count_units(h->plan, n);
	if (k >= 0)
		k = md(b, h->host);
	if (k >= 0 && !host_affected(h))
		return ap_buf_printf(b, " | 0 | nothing to do | 0 |\n");
	if (k >= 0)
		k = ap_buf_printf(b, " | %zu | %zu / %zu / %zu / %zu | %zu |\n",
				  h->plan ? h->plan->n_files : 0, n[0], n[1], n[2], n[3],
				  ap_strv_length(h->refusals));
	return k;
}

/* " (note)", or nothing when there is none. */
static int md_note(struct ap_buf *b, const char *note)
{
	int k = note ? ap_buf_printf(b, " (") : 0;

	if (k >= 0 && note)
		k = md(b, note);
	return k < 0 || !note ? k : ap_buf_printf(b, ")");
}

static int md_file(struct ap_buf *b, const struct ap_file_op *f)
{
	int k = ap_buf_printf(b, "| %s | %s | ", ap_change_kind_to_string(f->change),
			      ap_file_kind_to_string(f->kind));

	if (k >= 0)
		k = md(b, f->path);
	if (k >= 0 && f->old_path)
		k = ap_buf_printf(b, " (was ");
	if (k >= 0 && f->old_path)
		k = md(b, f->old_path);
	if (k >= 0 && f->old_path)
		k = ap_buf_printf(b, ")");
	if (k >= 0)
		k = ap_buf_printf(b, " | %s", f->install ? "" : "remove ");
	if (k >= 0)
		k = md(b, f->remove && f->old_dest ? f->old_dest : f->dest);
	if (k >= 0 && f->install && f->remove && f->old_dest)
		k = ap_buf_printf(b, " (removed), ");
	if (k >= 0 && f->install && f->remove && f->old_dest)
		k = md(b, f->dest);
	if (k >= 0 && f->install)
		k = ap_buf_printf(b, " (%04o%s)", (unsigned)f->mode, f->secret ? ", secret" : "");
	return k < 0 ? k : ap_buf_printf(b, " |\n");
}

static int md_unit(struct ap_buf *b, const struct ap_unit_action *u)
{
	size_t n = ap_strv_length(u->reasons);
	int k = ap_buf_printf(b, "| %s | ", ap_unit_action_to_string(u->action));

	if (k >= 0)
		k = md(b, u->unit);
	if (k >= 0)
		k = ap_buf_printf(b, " | %s | ", u->if_active ? "if running" : "");
	for (size_t i = 0; k >= 0 && i < n && i < AP_REVIEW_MAX_REASONS; i++) {
		k = ap_buf_printf(b, "%s", i ? ", " : "");
		if (k >= 0)
			k = md(b, u->reasons[i]);
	}
	if (k >= 0 && n > AP_REVIEW_MAX_REASONS)
		k = ap_buf_printf(b, " and %zu more", n - AP_REVIEW_MAX_REASONS);
	if (k >= 0)
		k = md_note(b, u->note);
	return k < 0 ? k : ap_buf_printf(b, " |\n");
}

static int md_setup(struct ap_buf *b, const struct ap_setup_action *a)
{
	int k = ap_buf_printf(b, "| %s | ", ap_setup_kind_to_string(a->kind));

	if (k >= 0)
		k = md(b, a->file);
	if (k >= 0)
		k = ap_buf_printf(b, " | ");
	if (k >= 0)
		k = md(b, a->reason);
	if (k >= 0)
		k = md_note(b, a->note);
	return k < 0 ? k : ap_buf_printf(b, " |\n");
}

/* After a table or list cut at AP_REVIEW_MAX_ROWS: how many were left out. */
static int md_more(struct ap_buf *b, size_t n)
{
	if (n <= AP_REVIEW_MAX_ROWS)
		return 0;
	return ap_buf_printf(b, "\n... and %zu more (--format json lists them all)\n",
			     n - AP_REVIEW_MAX_ROWS);
}

static int md_plan(struct ap_buf *b, const struct ap_plan *p)
{
	int k = 0;

	if (p->n_files)
		k = ap_buf_printf(b, "\nFiles:\n\n| change | kind | repository path | destination "
				  "|\n|---|---|---|---|\n");
	for (size_t i = 0; k >= 0 && i < MIN_ROWS(p->n_files); i++)
		k = md_file(b, &p->files[i]);
	if (k >= 0)
		k = md_more(b, p->n_files);
	if (k >= 0 && p->daemon_reload)
		k = ap_buf_printf(b, "\ndaemon-reload: yes (unit files or drop-ins change)\n");
	if (k >= 0 && p->n_setup)
		k = ap_buf_printf(b, "\nSetup (after the files, before any unit starts):\n\n"
				  "| action | file | because |\n|---|---|---|\n");
	for (size_t i = 0; k >= 0 && i < MIN_ROWS(p->n_setup); i++)
		k = md_setup(b, &p->setup[i]);
	if (k >= 0)
		k = md_more(b, p->n_setup);
	if (k >= 0 && p->n_units)
		k = ap_buf_printf(b, "\nUnits:\n\n| action | unit | when | because |\n"
				  "|---|---|---|---|\n");
	for (size_t i = 0; k >= 0 && i < MIN_ROWS(p->n_units); i++)
		k = md_unit(b, &p->units[i]);
	if (k >= 0)
		k = md_more(b, p->n_units);
	if (k >= 0 && p->unmapped)
		k = ap_buf_printf(b, "\nNot installed (under a units: directory, not a unit, no "
				  "files: rule):\n\n");
	for (size_t i = 0; k >= 0 && i < MIN_ROWS(ap_strv_length(p->unmapped)); i++) {
		k = ap_buf_printf(b, "- ");
		if (k >= 0)
			k = md(b, p->unmapped[i]);
		if (k >= 0)
			k = ap_buf_printf(b, "\n");
	}
	return k < 0 ? k : md_more(b, ap_strv_length(p->unmapped));
}

static int md_host(struct ap_buf *b, const struct ap_review_host *h)
{
	int k = ap_buf_printf(b, "\n#### ");

	if (k >= 0)
		k = md(b, h->host);
	if (k >= 0)
		k = ap_buf_printf(b, "\n");
	if (k >= 0 && h->plan)
		k = md_plan(b, h->plan);
	if (k >= 0 && h->refusals)
		k = ap_buf_printf(b, "\nRefused: the host would not apply this commit:\n\n");
	for (size_t i = 0; k >= 0 && h->refusals && h->refusals[i]; i++) {
		k = ap_buf_printf(b, "- ");
		if (k >= 0)
			k = md(b, h->refusals[i]);
		if (k >= 0)
			k = ap_buf_printf(b, "\n");
	}
	if (k >= 0 && h->validation)
		k = ap_buf_printf(b, "\nValidation: ");
	if (k >= 0 && h->validation)
		k = md(b, h->validation);
	return k < 0 || !h->validation ? k : ap_buf_printf(b, "\n");
}

int ap_review_markdown(const struct ap_review *r, struct ap_buf *b)
{
	int k = ap_buf_printf(b, "### autopull plan %.12s..%.12s\n\n", *r->from ? r->from
			      : "(empty)", r->to);

	if (k >= 0 && ap_review_affected(r) == 0) {
		k = ap_buf_printf(b, "No host affected: nothing this range changes is installed on ");
		for (size_t i = 0; k >= 0 && i < r->n_hosts; i++) {
			k = ap_buf_printf(b, "%s", i ? ", " : "");
			if (k >= 0)
				k = md(b, r->hosts[i].host);
		}
		return k < 0 ? k : ap_buf_printf(b, ".\n");
	}
	if (k >= 0)
		k = ap_buf_printf(b, "| host | files | units restart / reload / start / stop | "
				  "refusals |\n|---|---|---|---|\n");
	for (size_t i = 0; k >= 0 && i < r->n_hosts; i++)
		k = md_summary_row(b, &r->hosts[i]);
	if (k >= 0)
		k = ap_buf_printf(b, "\nNote: %s.\n", ASSUMPTION);
	for (size_t i = 0; k >= 0 && i < r->n_hosts; i++)
		if (host_affected(&r->hosts[i]))
			k = md_host(b, &r->hosts[i]);
	return k;
}

static int json_host(struct ap_buf *b, const struct ap_review_host *h)
{
	int k = ap_buf_printf(b, "{\"host\": ");

	if (k >= 0)
		k = ap_buf_json_string(b, h->host);
	if (k >= 0)
		k = ap_buf_printf(b, ", \"affected\": %s, \"plan\": ",
				  host_affected(h) ? "true" : "false");
	if (k >= 0)
		k = h->plan ? ap_print_plan_json(h->plan, NULL, b) : ap_buf_printf(b, "null");
	if (k >= 0)
		k = ap_buf_printf(b, ", \"refusals\": ");
	if (k >= 0)
		k = ap_print_json_strv(b, h->refusals);
	if (k >= 0)
		k = ap_buf_printf(b, ", \"validation\": ");
	if (k >= 0)
		k = ap_buf_json_string_or_null(b, h->validation);
	return k < 0 ? k : ap_buf_printf(b, "}");
}

int ap_review_json(const struct ap_review *r, struct ap_buf *b)
{
	int k = ap_buf_printf(b, "{\"from\": ");

	if (k >= 0)
		k = ap_buf_json_string_or_null(b, r->from);
	if (k >= 0)
		k = ap_buf_printf(b, ", \"to\": ");
	if (k >= 0)
		k = ap_buf_json_string(b, r->to);
	if (k >= 0)
		k = ap_buf_printf(b, ", \"assumption\": \"%s\", \"affected\": %zu,\n \"hosts\": [",
				  ASSUMPTION, ap_review_affected(r));
	for (size_t i = 0; k >= 0 && i < r->n_hosts; i++) {
		k = ap_buf_printf(b, "%s\n", i ? "," : "");
		if (k >= 0)
			k = json_host(b, &r->hosts[i]);
	}
	return k < 0 ? k : ap_buf_printf(b, "]}\n");
}
