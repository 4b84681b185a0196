/* Drift: managed files on the host that no longer are what the applied commit says (bytes,
 * mode, owner, group), e.g. a hand-added Environment= in a unit. Layer 2: combines the
 * expected files (state), the host files (install) and blob ids (repo). */
#pragma once
#include "context.h"

struct ap_drift_item {
	char *path, *repo_path;
	char what[48];  /* "bytes", "mode", "owner", "group", "missing", "not a file", joined by ',' */
};
struct ap_drift {
	char commit[AP_OID_HEXSZ + 1];
	struct ap_drift_item *v;
	size_t n;
};
void ap_drift_clear(struct ap_drift *d);

/* The files commit installs, as stored (rebuilt from the mirror and stored when the stored
 * set describes another commit). */
int ap_drift_expected(struct ap_ctx *c, const char *commit, struct ap_expected_set *ret);

/* Compares the host with the expected files of commit. */
int ap_drift_check(struct ap_ctx *c, const char *commit, struct ap_drift *ret);

/* The drifted files as changes from the host's bytes to the expected ones, so that the
 * planner decides what a put-back asks of the units (a unit file that drifted restarts). */
int ap_drift_changes(const struct ap_drift *d, const struct ap_expected_set *set,
		     struct ap_changes *ret);
/* What a tick sees after its apply, for the metrics: the commits pending on the branch up to
 * tip ("" when not fetched) and the drifted files (d, warned about unless drift: revert). */
void ap_drift_tick(struct ap_ctx *c, const char *applied, const char *tip, struct ap_tick *t,
		   struct ap_drift *d);
/* drift: revert — the changes that put the drifted files d back to the applied commit's
 * (ap_drift_changes of its expected files). Logged, errors too. */
int ap_drift_revert_changes(struct ap_ctx *c, const char *applied, const struct ap_drift *d,
			    struct ap_changes *ret);
