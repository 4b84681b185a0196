/* The restart-loop guard's arithmetic, pure: samples of unit state in, verdicts out; plus
 * the history file format and the Prometheus text rendering. No I/O, no clock reads: the
 * caller passes "now".
 *
 * Counting restarts: NRestarts counts automatic restarts only and is reset to 0 by an
 * explicit start/restart, by a manager restart and by a reboot. Between two consecutive
 * samples of one unit the automatic restarts are n2 - n1 when n2 >= n1 within one boot, and
 * n2 otherwise (the counter was reset in between and counted afresh). An explicit restart
 * therefore never counts by itself. The first sample of a unit counts its whole NRestarts
 * unless the unit has been active since before the window. A unit seen in state "failed"
 * and then not failed was started or reset by someone (the manager does not restart a
 * failed unit): the restarts before that no longer count. Sample times are compared on the
 * monotonic clock within
 * one boot (immune to clock steps) and on the realtime clock across boots. A sample dated
 * after "now" by that clock (the realtime clock stepped back, another boot's clock ahead)
 * is ignored by ap_hb_judge and dropped by ap_hb_history_prune. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ap_hb_sample {
	char unit[256];
	char boot_id[33];
	uint64_t mono_usec, real_usec;   /* when sampled */
	char invocation_id[33];
	unsigned n_restarts;
	char active_state[24], sub_state[32], result[32];
	int exec_main_status;
	uint64_t active_enter_real_usec; /* 0: never active */
	/* timers */
	uint64_t last_trigger_real_usec; /* 0: never triggered or not a timer */
	uint64_t interval_usec;          /* 0: unknown */
};

/* True when the unit's main process last exited 0 with Result=success: a unit waiting in
 * auto-restart after such an exit (Restart=always on a short job) is not looping. */
bool ap_hb_sample_exited_clean(const struct ap_hb_sample *s);

struct ap_hb_history {
	struct ap_hb_sample *v;
	size_t n;
	size_t cap; /* room in v (ap_grow); 0 when not known */
};
void ap_hb_history_clear(struct ap_hb_history *h);
int ap_hb_history_append(struct ap_hb_history *h, const struct ap_hb_sample *s);

/* One line per sample; unknown or malformed lines are skipped (a partial history only makes
 * the guard less strict for one window). */
int ap_hb_history_parse(const char *text, struct ap_hb_history *ret);
int ap_hb_history_format(const struct ap_hb_history *h, char **ret);
/* Drops samples dated after now, those older than keep_usec before now, and the oldest
 * beyond max_samples. */
void ap_hb_history_prune(struct ap_hb_history *h, const char *boot_id, uint64_t now_mono,
			 uint64_t now_real, uint64_t keep_usec, size_t max_samples);

struct ap_hb_verdict {
	char unit[256];
	bool looping, stale;
	/* looping and now in state "failed": the manager restarts it no more, so the window
	 * never clears it; a start (a fix applied with --override-guard) or reset-failed does */
	bool failed;
	/* guard.probe: failed its health probe more than max_restarts times in the window (set by
	 * guard.c, which runs the probes; why says so unless the unit loops too) */
	bool unhealthy;
	unsigned restarts;   /* automatic restarts within the window */
	char why[160];
};

/* Verdict for unit from the history (its latest sample not dated after now is its current
 * state). -ENOENT when there is no such sample. */
int ap_hb_judge(const struct ap_hb_history *h, const char *unit, const char *boot_id,
		uint64_t now_mono, uint64_t now_real, uint64_t window_usec, unsigned max_restarts,
		struct ap_hb_verdict *ret);

/* True when unit matches a guard.watch entry (ap_unit_glob_match). */
bool ap_hb_watch_matches(char *const *watch, const char *unit);

/* Prometheus text exposition of the latest sample of each unit plus autopull's own facts.
 * Every sample carries a host label, so that pushed series from many hosts stay apart.
 *
 * Per unit (watched units, and the units in state failed that guard.watch does not name):
 *   systemd_unit_active, systemd_unit_state{state} (1 for the ActiveState, 0 for the other
 *   six), systemd_unit_sub_state_info{sub_state}, systemd_unit_restart_count_total (NRestarts),
 *   systemd_unit_last_exit_status, systemd_unit_seconds_since_active (for a timer: seconds
 *   since its last trigger, absent when it has none), and for timers
 *   systemd_timer_last_trigger_seconds (Unix time; absent when none) and
 *   systemd_timer_interval_seconds (absent when unknown).
 * Per watched unit only (the guard's verdicts): autopull_unit_looping, and for timers
 *   autopull_timer_stale.
 * Per host: autopull_applied_commit_info{commit}, autopull_last_apply_timestamp_seconds,
 *   autopull_last_apply_success, autopull_guard_ok, autopull_guard_tripped,
 *   autopull_bad_commits_total, autopull_last_rollback_timestamp_seconds,
 *   autopull_guard_overrides_total, autopull_last_guard_override_timestamp_seconds,
 *   autopull_push_failures_total. */
struct ap_hb_facts {
	const char *host;
	const char *applied_commit;       /* "" if none */
	uint64_t last_apply_real_usec;    /* 0 if never */
	int last_apply_success;           /* -1 unknown */
	bool guard_ok;                    /* nothing looping and not tripped */
	bool guard_tripped;               /* an earlier rollback failed */
	unsigned bad_commits;             /* commits rolled back and marked bad */
	uint64_t last_rollback_real_usec; /* 0 if never */
	unsigned overrides;               /* applies that overrode the guard */
	uint64_t last_override_real_usec; /* 0 if never */
	uint64_t push_failures;
	/* The persisted counters of the apply history ("apply:ok", "refused:guard", "rollback"). */
	char *const *counter_names;
	const uint64_t *counter_values;
	size_t n_counters;
	int pinned;             /* 1 while deploys are pinned, -1 unknown */
	long pending_commits;   /* commits on the branch not applied yet, -1 unknown */
	long drift_files;       /* managed files that differ from the applied commit, -1 unknown */
	bool fleet_known;       /* the last run had a fleet: the two below are exported */
	long fleet_blocked;     /* it was held back (no slot, canaries not healthy yet): 0 or 1 */
	double fleet_wait_s;    /* how long it waited for its slot */
	/* Units in state failed, sampled beside the watched ones: exported, never judged. A
	 * unit that is also watched is exported once, as a watched unit. */
	const struct ap_hb_sample *failed;
	size_t n_failed;
};
int ap_hb_render_metrics(const struct ap_hb_history *h, const struct ap_hb_verdict *verdicts,
			 size_t n_verdicts, const struct ap_hb_facts *f, uint64_t now_real,
			 char **ret);

