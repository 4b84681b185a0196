/* Validation of a plan's new files before anything on the host changes: every file to install
 * is staged in a private directory, unit files and drop-ins are verified together with
 * systemd-analyze verify, and each rule's validate: argv runs on its staged copy (both through
 * spawn.c: an argv, a clean environment, a timeout). */
#pragma once
#include "config.h"
#include "install.h"
#include "model.h"

#define AP_VALIDATE_TIMEOUT_USEC (60ULL * 1000000)

/* -EINVAL when a file fails validation (each failure logged, naming the repo path): a
 * validator or systemd-analyze that exits non-zero or times out, a validator that cannot be
 * found, an owner that does not exist. Drop-ins are verified together with their unit, found
 * in unit_dir or the scope's vendor dirs. Files are staged in stage_dir, an empty private
 * directory of the caller's (removed afterwards). Another -errno: staging failed (logged). */
int ap_validate_plan(const struct ap_plan *p, const struct ap_install_source *src,
		     enum ap_scope scope, const char *unit_dir, const char *stage_dir);
/* The same away from the host (autopull plan on a CI runner): with AP_VALIDATE_ELSEWHERE only
 * the unit files are verified, and a program they run that is not installed here
 * (systemd-analyze: "is not executable: No such file or directory") is no failure, as the
 * host has it; *ret_missing (may be NULL) counts them. The owners and the validate: commands
 * are the host's users and tools: they are left to the host. */
enum { AP_VALIDATE_ELSEWHERE = 1 << 0 };
int ap_validate_plan_where(const struct ap_plan *p, const struct ap_install_source *src,
			   enum ap_scope scope, const char *unit_dir, const char *stage_dir,
			   unsigned flags, size_t *ret_missing);

/* ap_validate_plan_where in two halves, so that systemd-analyze verify runs while the caller
 * does other work (the guard's sample): ap_validate_start stages the files and starts the
 * verify; it logs nothing but a failure to allocate (-ENOMEM). ap_validate_finish joins the
 * verify, runs the validate: commands and reports as ap_validate_plan_where does, with its
 * returns; ap_validate_abort (NULL: nothing) kills the verify and removes the stage without a
 * word, for a run that ends before the finish (the guard refused). Either frees v. */
struct ap_validation;
int ap_validate_start(const struct ap_plan *p, const struct ap_install_source *src,
		      enum ap_scope scope, const char *unit_dir, const char *stage_dir,
		      unsigned flags, struct ap_validation **ret);
int ap_validate_finish(struct ap_validation *v, size_t *ret_missing);
void ap_validate_abort(struct ap_validation *v);
