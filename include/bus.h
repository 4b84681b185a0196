/* Talks to the service manager over sd-bus (the only module that includes sd-bus.h):
 * system manager, or the user manager in user scope. Same code path for both; only the
 * address differs. Every call has an explicit timeout. */
#pragma once
#include <stddef.h>
#include "config.h"
#include "model.h"

struct ap_bus;

/* System: /run/systemd/private as root, else the system bus. User: the manager's private
 * socket $XDG_RUNTIME_DIR/systemd/private, else the user bus. Subscribes to job signals.
 * Logs and returns <0 when no manager can be reached. */
int ap_bus_open(enum ap_scope scope, struct ap_bus **ret);
void ap_bus_free(struct ap_bus *b);
static inline void ap_bus_freep(struct ap_bus **b) { if (*b) ap_bus_free(*b); }

/* Loaded units matching any of the glob patterns (ListUnitsByPatterns), appended to ret. */
int ap_bus_list_units(struct ap_bus *b, char *const *patterns, struct ap_unit_states *ret);

/* Fills the refuse_start, refuse_stop and can_reload of every unit in s. */
int ap_bus_read_refusals(struct ap_bus *b, struct ap_unit_states *s);

/* Loaded units in state failed (ListUnitsByPatterns with the state filter), appended to ret. */
int ap_bus_list_failed(struct ap_bus *b, struct ap_unit_states *ret);

/* Daemon-reload; returns after the manager finished reloading. */
int ap_bus_reload(struct ap_bus *b);

/* Enqueues all jobs (mode "replace"), then waits until every one was removed or until
 * timeout_usec passed. Fills each job's result. Returns 0 when all are "done", else the
 * first negative error; each failure is logged with its unit and result. A stop of a
 * unit that does not exist counts as done. */
int ap_bus_run_jobs(struct ap_bus *b, struct ap_job *jobs, size_t n,
		    unsigned long long timeout_usec);

/* EnableUnitFiles / DisableUnitFiles (runtime=false, force=false). No reload. */
int ap_bus_enable(struct ap_bus *b, char *const *units);
int ap_bus_disable(struct ap_bus *b, char *const *units);
/* DisableUnitFiles then EnableUnitFiles (systemctl reenable). No reload. */
int ap_bus_reenable(struct ap_bus *b, char *const *units);
/* ResetFailedUnit for each (a unit that is not loaded is fine). */
int ap_bus_reset_failed(struct ap_bus *b, char *const *units);

/* Properties of a unit (loads it on demand). */
struct ap_unit_props {
	char *load_state, *active_state, *sub_state, *result, *invocation_id;
	unsigned n_restarts;
	int exec_main_status;
	unsigned long long active_enter_monotonic, inactive_enter_monotonic;
	unsigned long long active_enter_realtime;
	unsigned long long last_trigger_usec, next_elapse_monotonic; /* timers */
	unsigned long long next_elapse_realtime;
	unsigned long long timer_interval_usec; /* longest OnUnitActive/InactiveSec=, 0 if none */
	bool need_daemon_reload;
	bool refuse_manual_start, refuse_manual_stop, can_reload;
};
int ap_bus_get_unit_props(struct ap_bus *b, const char *unit, struct ap_unit_props *ret);
/* sd-bus' default for one call, for a whole read of many units. */
#define AP_BUS_PROPS_TIMEOUT_USEC (25ULL * 1000000)
/* The properties of units[0..n) into ret[0..n), read with up to 64 calls in flight at once,
 * so that many units cost about one round trip; all within timeout_usec. ret_errors NULL:
 * any unit that cannot be read fails the whole read (logged naming the unit, ret untouched).
 * Else each unit's outcome is in ret_errors[i] (each failure logged) and ret[i] is zeroed
 * for a unit that failed. */
int ap_bus_get_units_props(struct ap_bus *b, char *const *units, size_t n,
			   unsigned long long timeout_usec, struct ap_unit_props *ret,
			   int *ret_errors);
void ap_unit_props_clear(struct ap_unit_props *p);
/* The unit whose cgroup holds this process (GetUnitByPID), e.g. the service a timer started
 * autopull as; *ret NULL when the manager runs no unit of ours (autopull started from a shell
 * of another manager's session). */
int ap_bus_own_unit(struct ap_bus *b, char **ret);
/* The units unit triggers (a socket's service, a timer's unit); *ret NULL when none. */
int ap_bus_unit_triggers(struct ap_bus *b, const char *unit, char ***ret);
