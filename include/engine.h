/* The apply transaction: lock → finish what an interrupted run left → fetch → diff → plan →
 * guard → validate → preflight → execute (apply.c) → record. The place where the layer-1
 * modules meet for an apply, and where its errors become exit codes (exitcode.h). */
#pragma once
#include "context.h"

/* Returns an exit code. With c->o->dry_run it only prints the plan. */
int ap_engine_apply(struct ap_ctx *c);
