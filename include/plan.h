/* The planner: a pure function from (config, tree changes, unit states) to a plan with a
 * reason for every entry. It does no I/O and never logs; dry-run prints the same plan
 * object that apply executes. */
#pragma once
#include "config.h"
#include "journal.h"
#include "model.h"

enum ap_map_kind {
	AP_MAP_IGNORED,  /* outside every mapping (the zero value: a cleared map maps nothing) */
	AP_MAP_UNIT,     /* unit file in a units: dir */
	AP_MAP_DROPIN,   /* NAME.TYPE.d/X.conf in a units: dir */
	AP_MAP_FILE,     /* matched a files: rule */
	AP_MAP_UNMAPPED, /* under a units: dir, but neither a unit nor matched by a rule */
};

struct ap_path_map {
	enum ap_map_kind kind;
	char *dest;                        /* host path (UNIT, DROPIN, FILE) */
	size_t root_len;                   /* dest[0..root_len) is its configured directory */
	char *unit;                        /* UNIT, DROPIN */
	const struct ap_file_rule *rule;   /* FILE; borrowed from the config */
};
void ap_path_map_clear(struct ap_path_map *m);

/* Maps one repository path. -EINVAL when the path is unsafe, -ENAMETOOLONG when the
 * destination it maps to would reach PATH_MAX. */
int ap_plan_map_path(const struct ap_config *c, const char *path, struct ap_path_map *ret);

/* The repository paths the configuration maps (units: dirs and files: sources), for a diff
 * that skips everything else. */
int ap_plan_prefixes(const struct ap_config *c, char ***ret);

/* Glob patterns of the units whose state the planner needs (templates become "foo@*.service"),
 * so that the caller can ask the manager in one call. */
int ap_plan_units_needed(const struct ap_config *c, const struct ap_changes *ch, char ***ret);

/* Builds the plan. Changes of mapped unit files must carry their data (old_data/new_data).
 * Returns -EINVAL with *ret_error naming the path when the repository holds something that
 * must not be installed (a symlink or submodule in a mapped path); -ENOMEM. */
int ap_plan_build(const struct ap_config *c, const struct ap_changes *ch,
		  const struct ap_unit_states *states, const char *from, const char *to,
		  struct ap_plan **ret, char **ret_error);

/* True when the plan changes nothing on the host. */
bool ap_plan_is_empty(const struct ap_plan *p);

/* Adds an action owed by an unfinished earlier apply (from its journal), merged with what
 * the plan already asks of that unit. Unit states are not consulted: the executor's
 * try-restart/reload-or-try-restart only act on running units anyway. */
int ap_plan_add_owed(struct ap_plan *p, const char *unit, enum ap_unit_action_kind a,
		     const char *reason);

/* Why the manager would refuse action a on a unit in state s when a client asks for it
 * (RefuseManualStart=, RefuseManualStop=, masked), as the plan's note; NULL when it would not. */
const char *ap_plan_refusal(enum ap_unit_action_kind a, const struct ap_unit_state *s);

/* Nothing to install and nothing to ask of the manager. */
bool ap_plan_is_noop(const struct ap_plan *p);
/* Adds what a journal still owes (its units not done) to the plan, so that a dry run and a
 * resumed apply show them ("journal of <commit>"). */
int ap_plan_add_owed_journal(struct ap_plan *p, const struct ap_journal *j);
