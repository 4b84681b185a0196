/* The checks of a plan before the first change (checks.h). */
#include <errno.h>
#include <stdlib.h>

#include "checks.h"
#include "exitcode.h"
#include "log.h"
#include "preflight.h"
#include "state-fileset.h"
#include "unitusers.h"
#include "util.h"
#include "validate.h"

static int check_not_emptying(const struct ap_checks *in)
{
	size_t removed, remaining;

	if (in->allow_empty)
		return AP_EXIT_OK;
	ap_install_count(in->plan, in->owned, &removed, &remaining);
	if (removed > 0 && remaining == 0) {
		ap_log_error(-EPERM, "refusing to remove every installed file (%zu); pass "
				     "--allow-empty if the repository is meant to be empty",
				     removed);
		return AP_EXIT_INVALID;
	}
	return AP_EXIT_OK;
}

void ap_checks_start(const struct ap_checks *in, struct ap_checks_pending *ret)
{
	_cleanup_free_ char *stage = NULL;
	int k = ap_state_scratch_dir(in->st, &stage);

	*ret = (struct ap_checks_pending){ 0 };
	if (k >= 0)
		k = ap_validate_start(in->plan, in->src, in->cfg->scope, in->cfg->unit_dir, stage, 0,
				      &ret->v);
	ret->error = k;
}

void ap_checks_abort(struct ap_checks_pending *pending)
{
	ap_validate_abort(TAKE_PTR(pending->v));
}

static int validate(const struct ap_checks *in, struct ap_checks_pending *pending)
{
	int k = pending->v ? ap_validate_finish(TAKE_PTR(pending->v), NULL) : pending->error;

	if (k >= 0)
		k = ap_unitusers_check(in->plan, in->src, in->cfg->scope);
	return k == -EINVAL ? AP_EXIT_INVALID : k < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
}

static int preflight(const struct ap_checks *in)
{
	struct ap_preflight pf = { 0 };
	int k = ap_preflight_check(in->plan, in->owned, in->src,
				   in->dry_run ? AP_PREFLIGHT_CHECK_ONLY : 0, &pf);

	if (k >= 0 && !in->dry_run)
		k = ap_state_check_space(in->st, pf.backup_bytes, pf.backup_files);
	ap_preflight_clear(&pf);
	if (k == -EINVAL)
		ap_log_error(k, "refusing to apply %.12s; the host is unchanged", in->plan->to);
	else if (k < 0)
		ap_log_error(k, "cannot apply %.12s now; the host is unchanged", in->plan->to);
	return k == -EINVAL ? AP_EXIT_INVALID : k < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
}

int ap_checks_run(const struct ap_checks *in, struct ap_checks_pending *pending,
		  const char **ret_refusal, const char **ret_why)
{
	int code = validate(in, pending);

	*ret_refusal = *ret_why = NULL;
	if (code == AP_EXIT_INVALID)
		*ret_refusal = "invalid", *ret_why = "a file or unit failed validation";
	if (code == AP_EXIT_OK && (code = check_not_emptying(in)) == AP_EXIT_INVALID)
		*ret_refusal = "emptying", *ret_why = "the commit removes every managed file";
	if (code == AP_EXIT_OK && (code = preflight(in)) != AP_EXIT_OK)
		*ret_refusal = "preflight", *ret_why = "a destination cannot be written";
	return code;
}
