/* The units' own X-AutoPull-OnChange= for the plan: read from each listed unit's file (or
 * its template's) at the target commit. Layer 2 (like engine.c): it reads the repository
 * and fills the plan's input; the rule that the unit's opt-out wins is plan.c's. */
#pragma once
#include "config.h"
#include "model.h"
#include "repo.h"

/* Sets onchange of every unit in s whose file at commit lies in a units: directory. */
int ap_unitpolicy_read(struct ap_repo *repo, const struct ap_config *c, const char *commit,
		       struct ap_unit_states *s);
