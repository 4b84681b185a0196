/* The fleet's three places in a run (rollout.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "log.h"
#include "rollout.h"
#include "util.h"

enum { AP_ROLLOUT_GO, AP_ROLLOUT_SKIP, AP_ROLLOUT_WAIT };

static int check_bad(struct ap_fleet *f, const char *commit)
{
	_cleanup_free_ char *why = NULL;
	int k = ap_fleet_is_bad(f, commit, &why);

	if (k <= 0)
		return k < 0 ? k : AP_ROLLOUT_GO;
	/* why is what another host wrote: escaped like everything from outside */
	ap_log_warning("skipping %.12s: the fleet marked it bad (%s); push a newer commit, or run "
		       "'autopull apply --commit %.12s' to retry it here", commit, why, commit);
	return AP_ROLLOUT_SKIP;
}

static int may_start(struct ap_fleet *f, struct ap_record *rec, const char *commit)
{
	char why[512] = "";
	struct ap_buf b = { 0 };
	int k = ap_fleet_may_start(f, commit, why, sizeof(why));

	if (k != 0)
		return k < 0 ? k : AP_ROLLOUT_GO;
	ap_record_fleet(rec, true, 0, *why ? why : "the fleet's canaries");
	/* one line, escaped: the host names come from etcd */
	if (ap_buf_linef(&b, "waiting: %s", *why ? why : "the fleet's canaries") >= 0)
		fputs(b.data, stdout);
	fflush(stdout);
	ap_buf_clear(&b);
	return AP_ROLLOUT_WAIT;
}

int ap_rollout_gate(struct ap_fleet *f, struct ap_record *rec, const char *commit, bool start,
		    bool dry_run, bool *ended)
{
	/* a dry run claims no canary place */
	int k = !f || (start && dry_run) ? AP_ROLLOUT_GO
		: start ? may_start(f, rec, commit) : check_bad(f, commit);

	*ended = k == AP_ROLLOUT_SKIP || k == AP_ROLLOUT_WAIT;
	if (k == -EHOSTUNREACH && dry_run)
		ap_log_warning("no etcd endpoint answers: this plan does not know the fleet's word");
	if (k == -EHOSTUNREACH)
		return dry_run ? AP_EXIT_OK : AP_EXIT_TEMPFAIL;
	return k < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
}

int ap_rollout_enter(struct ap_fleet *f, const struct ap_fleet_config *c, const char *commit,
		     uint64_t *ret_waited_usec)
{
	int k = ap_fleet_slot_acquire(f, commit, c->lock_timeout_usec, ret_waited_usec);

	/* fleet.c logged why etcd failed; a timeout is an outcome, worded here */
	if (k == -ETIMEDOUT)
		ap_log_error(k,
			     "no free slot of %u in fleet group '%s' within %llu s: %.12s is not "
			     "applied now; the next run tries again", c->max_parallel, c->group,
			     (unsigned long long)(c->lock_timeout_usec / 1000000), commit);
	return k < 0 ? -EAGAIN : 0;
}

void ap_rollout_leave(struct ap_fleet *f, const char *commit, enum ap_apply_outcome out,
		      const char *result, const char *why)
{
	bool rolled_back = out == AP_APPLY_ROLLED_BACK || out == AP_APPLY_ROLLBACK_FAILED;
	int k = 0;

	if (out == AP_APPLY_OK)
		k = ap_fleet_mark_healthy(f, commit);
	else if (rolled_back)
		k = ap_fleet_mark_bad(f, commit, why ? why : result);
	if (k < 0)
		ap_log_warning("could not tell the fleet that %.12s %s", commit,
			       out == AP_APPLY_OK ? "is healthy" : "was rolled back");
	if (ap_fleet_record_host(f, commit, result) < 0)
		ap_log_warning("could not record this host's result in the fleet");
	/* A host that rolled back keeps its slot until its lease expires: the fleet does not
	 * spend it on the next host at once. */
	if (!rolled_back && ap_fleet_slot_release(f) < 0)
		ap_log_warning("could not release the fleet slot: it is freed when its lease expires");
}
