/* Renders a plan for people (aligned text with reasons) and for programs (stable JSON).
 * Pure: appends to a buffer; the caller writes it to stdout. */
#pragma once
#include "journal.h"
#include "model.h"
#include "util.h"

/* extra, when not NULL, is a JSON member ("key": value) added to the object. */
int ap_print_plan_json(const struct ap_plan *p, const char *extra, struct ap_buf *out);
int ap_print_plan_human(const struct ap_plan *p, struct ap_buf *out);
/* `, "jobs": [{"unit", "action", "state", "owed"}]`: what an apply did to each unit. */
int ap_print_journal_units_json(const struct ap_journal *j, struct ap_buf *out);
