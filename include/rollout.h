/* A run's place in its fleet (config fleet:, fleet.h). Before a commit is planned: has the
 * fleet marked it bad (another host rolled it back)? After its checks passed: may this host
 * start it, or must it wait for the commit's canaries? And around the executor's
 * change-and-settle phase, the slot: taken right before the first host change, released after
 * a healthy apply (the commit reported healthy), kept after a rollback (the commit marked bad,
 * the slot freed by its lease). Layer 2: it joins fleet.c to the apply for the engine and the
 * effects, so that the fleet enters a run at these three places only. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "apply.h"
#include "config.h"
#include "fleet.h"
#include "record.h"

/* The fleet's word on commit, as an exit code: before it is planned (start false), whether
 * the fleet marked it bad (warned, naming the host and its reason); after its checks (start
 * true), whether this host may start it or must wait for the commit's canaries (one line on
 * stdout saying for what; a host that goes as a canary claimed its place, which a dry run
 * never does). *ended: the run ends here with exit 0. No etcd endpoint answering is exit 75
 * (a dry run warns and goes on). f NULL (no fleet, or a chosen commit): go on. A wait is
 * recorded (rec: for the metrics and status). */
int ap_rollout_gate(struct ap_fleet *f, struct ap_record *rec, const char *commit, bool start,
		    bool dry_run, bool *ended);

/* The slot for commit, waiting up to c->lock_timeout. -EAGAIN when none was had (no etcd, or
 * no slot in time; logged): nothing was changed. *ret_waited_usec: how long it waited. */
int ap_rollout_enter(struct ap_fleet *f, const struct ap_fleet_config *c, const char *commit,
		     uint64_t *ret_waited_usec);
/* After the apply of commit: healthy (and the slot released) when it went through; marked bad
 * with why, the slot kept, when it was rolled back; the slot released after any other
 * failure. The host's last result is recorded either way. Errors are warnings: the host's
 * outcome does not change with them. */
void ap_rollout_leave(struct ap_fleet *f, const char *commit, enum ap_apply_outcome out,
		      const char *result, const char *why);
