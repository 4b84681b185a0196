/* Renders a plan for people (aligned text with reasons) and for programs (stable JSON).
 * Pure: appends to a buffer; the caller writes it to stdout. */
#pragma once
#include "journal.h"
#include "model.h"
#include "util.h"

/* extra, when not NULL, is a JSON member ("key": value) added to the object. */
int ap_print_plan_json(const struct ap_plan *p, const char *extra, struct ap_buf *out);
int ap_print_plan_human(const struct ap_plan *p, struct ap_buf *out);
/* v as a JSON array of strings ([] for NULL). */
int ap_print_json_strv(struct ap_buf *b, char *const *v);
/* `, "jobs": [{"unit", "action", "state", "owed"}]`: what an apply did to each unit. */
int ap_print_journal_units_json(const struct ap_journal *j, struct ap_buf *out);

/* --- the plan of a commit range for several hosts, as a review comment (autopull plan) --- */
struct ap_review_host {
	const char *host;
	const struct ap_plan *plan; /* NULL: no plan could be made (see refusals) */
	char *const *refusals;      /* why this host would refuse the commit (NULL: none) */
	const char *validation;     /* what systemd-analyze verify said, or why it did not run */
};
struct ap_review {
	const char *from, *to; /* full commit ids */
	const struct ap_review_host *hosts;
	size_t n_hosts;
};
/* A pull request comment has a size limit (65536 characters on the big forges): each table
 * of a host in the Markdown shows at most this many rows and says how many it left out (and
 * a unit at most AP_REVIEW_MAX_REASONS of its reasons); the
 * summary and the JSON count and list everything. */
#define AP_REVIEW_MAX_ROWS 30
#define AP_REVIEW_MAX_REASONS 5 /* paths named as a unit's reasons; then "and N more" */
/* Hosts whose plan changes something, or that would refuse the commit. */
size_t ap_review_affected(const struct ap_review *r);
/* Markdown for a pull request comment: a summary table (host | files | units restart / reload
 * / start / stop | refusals), then each affected host's files, units and refusals. Every
 * string from the repository or the command line is escaped for Markdown and HTML (a '|'
 * cannot end a cell, a '<' cannot open a tag, a newline cannot end a row). */
int ap_review_markdown(const struct ap_review *r, struct ap_buf *out);
/* {"from", "to", "assumption", "affected", "hosts": [{"host", "plan" (the plan's JSON, as
 * --dry-run --json prints it, or null), "refusals", "validation"}]} */
int ap_review_json(const struct ap_review *r, struct ap_buf *out);
