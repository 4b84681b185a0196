/* The one planning pipeline: changes (a tree diff, or given changes such as drifted files) →
 * the blobs the planner reads → the units' states on the manager → the plan (plan.c). Used by
 * a fresh apply, a resumed one, the drift put-back and the expected file set of `autopull
 * diff`. Layer 2: it combines repo, bus and the unit policy for the pure planner. */
#pragma once
#include <stdbool.h>
#include "bus.h"
#include "config.h"
#include "install.h"
#include "model.h"
#include "repo.h"

struct ap_planning {
	const struct ap_config *cfg;
	struct ap_repo *repo;
	struct ap_bus *bus;     /* NULL: no manager reachable */
	bool dry_run;           /* without a manager a dry run plans conditional unit actions */
	bool offline;           /* away from the host (autopull plan): no manager to warn about,
				 * no secret decrypted (no identity here, no plaintext made) */
	bool files_only;        /* no blobs read and no manager asked: the files a commit maps */
};

/* Plans from → to ("" from: from the empty tree). changes holds the changes to plan: empty on
 * entry means the tree diff from → to is taken; given changes (drift) are planned as they are.
 * The plan borrows file contents from changes. -EFBIG: a file is too large; -EINVAL (error
 * set): the repository asks for something the configuration refuses; -ENOTCONN: no manager
 * to ask. Each is logged where it is decided, except -ENOTCONN (the caller's to judge). */
int ap_planning_build(const struct ap_planning *in, const char *from, const char *to,
		      struct ap_changes *changes, struct ap_plan **ret);

/* The repository as the source of the files a plan installs (read one at a time). */
void ap_planning_source(struct ap_repo *repo, struct ap_install_source *ret);
