/* The apply transaction as a sequence of stages: lock → state → finish what an interrupted
 * run left → source → planning → guard → checks → execute (apply.c) → record → report
 * (see engine.c). Each stage ends in an exit code (exitcode.h). */
#pragma once
#include "context.h"

/* Returns an exit code. With c->o->dry_run it only prints the plan. */
int ap_engine_apply(struct ap_ctx *c);
