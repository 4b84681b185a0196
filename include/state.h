/* autopull's own state under state_dir, one typed function pair per file. Every write is an
 * atomic replace (fsutil); nobody else reads or writes the files listed here. Beside them,
 * but not this module's: the mirror repo.git (the repo module) and, unless guard.metrics says
 * otherwise, metrics.prom (record.c).
 *
 *   lock            flock()ed by every run; holds the holder's pid
 *   stage/          the private directory where install.c stages and validates new files
 *   applied         the last commit whose actions all finished
 *   journal         the apply under way (journal.h)
 *   owned           every host path autopull installed, one per line
 *   backup/<sha>/   the previous state of every path the apply of <sha> touched (state-fileset.h)
 *   adopted/        originals of host files autopull took over (state-fileset.h; never pruned)
 *   bad             commits whose apply was rolled back: "<sha> <usec> <why>"
 *   overrides       "<usec> <kind> <sha> <reason>" for every override: --override-guard
 *                   ("guard"), --allow-rewind ("rewind"), autopull trust skip ("trust-skip")
 *   restarted       the units the last apply restarted or reloaded
 *   last-apply      "<usec> <0|1>" of the last apply
 *   guard-tripped   why a rollback failed; applies refuse while it exists
 *   heartbeat       the guard's sample history (heartbeat.lock serialises its writers)
 *   events          what autopull did (events.h), the newest AP_EVENTS_MAX
 *   pin             "<sha> <usec> <reason>": deploys are frozen at <sha>
 *   counters        "<name> <value>" monotonic counters for the metrics (counters.lock
 *                   serialises their writers)
 *   expected        what every managed file should be (drift), per commit and configuration:
 *                   see struct ap_expected
 *   tick            "pending <n>\ndrift <n>": what the last apply tick saw
 *   fleet           "blocked <n>\nwait-ms <n>": what the last run saw of its fleet (fleet:)
 *   verified        the commits found well signed (trust.h)
 *   probes          each probed unit's last result, failed probes and recent failure times
 *                   (records.h; heartbeat.lock serialises its writers)
 *
 * The line formats are in records.h, the backup store in state-fileset.h. A run reads what it
 * decides on once, with ap_state_load(); the other readers serve the read-only verbs and the
 * metrics. It never touches managed host files. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "events.h"
#include "journal.h"
#include "model.h"
#include "records.h"

struct ap_state;

/* Opens (creating, 0700) state_dir. */
int ap_state_open(const char *dir, struct ap_state **ret);
void ap_state_free(struct ap_state *s);
static inline void ap_state_freep(struct ap_state **s) { if (*s) ap_state_free(*s); }

/* From begin to commit, the reports (events, counters, last apply, tick, ...: what a run
 * records of its outcome) are kept in memory, read back from there, and then written all at
 * once with one sync instead of one per file. ap_state_free commits what is still kept.
 * Errors logged. */
void ap_state_reports_begin(struct ap_state *s);
int ap_state_reports_commit(struct ap_state *s);
const char *ap_state_path(const struct ap_state *s);

/* Takes the exclusive lock, waiting up to wait_sec seconds. -EAGAIN (logged with the
 * holder's pid) when it stays held. Removes temp files a killed run left behind. */
int ap_state_lock(struct ap_state *s, unsigned wait_sec);

/* A private, empty scratch directory (state_dir/stage, 0700) for staging files to validate:
 * whatever a killed run left there is removed first. The caller removes it when done. */
int ap_state_scratch_dir(struct ap_state *s, char **ret);

/* What a run decides on, read in one call under the lock: every file that can refuse or
 * redirect an apply. */
struct ap_state_snapshot {
	char applied[AP_OID_HEXSZ + 1]; /* "" when nothing was applied yet */
	char **owned;                   /* NULL when empty */
	bool pinned;
	struct ap_pin pin;
	bool has_journal;               /* an apply was under way */
	struct ap_journal journal;
	struct ap_bad *bad;             /* every line of bad */
	size_t n_bad;
	int bad_error;                  /* bad cannot be read or understood (-errno, logged):
					 * no commit can be told to be unlisted */
	char *tripped;                  /* why the guard is tripped; NULL when it is not */
	int tripped_error;              /* guard-tripped cannot be read (-errno, logged): the
					 * guard refuses as if tripped, an override clears it */
	struct ap_bad *skips;           /* the commits 'autopull trust skip' lets through */
	size_t n_skips;
	int skips_error;                /* overrides cannot be read (-errno): a signature check
					 * cannot run, nothing else minds */
};
/* Reads applied, owned, pin, journal, bad, guard-tripped and the trust-skip overrides. A file among
 * the first four that
 * cannot be read or understood fails the whole load (logged, naming the file and line):
 * -EBADMSG, -EACCES...; bad, guard-tripped and the trust-skip overrides carry their error in
 * the snapshot instead. */
int ap_state_load(struct ap_state *s, struct ap_state_snapshot *ret);
void ap_state_snapshot_clear(struct ap_state_snapshot *snap);
/* The journal found has all its files in (the host's files are at its commit). */
static inline bool ap_state_snapshot_files_in(const struct ap_state_snapshot *snap)
{
	return snap->has_journal && ap_journal_is_done(&snap->journal, AP_PHASE_FILES);
}
/* The line of bad for commit, or NULL. */
const struct ap_bad *ap_state_snapshot_find_bad(const struct ap_state_snapshot *snap,
						const char *commit);

/* -ENOENT when nothing was applied yet. */
int ap_state_read_applied(struct ap_state *s, char ret[AP_OID_HEXSZ + 1]);
int ap_state_write_applied(struct ap_state *s, const char *oid);

/* -ENOENT when no apply is under way; -EBADMSG (logged) when it cannot be understood. */
int ap_state_read_journal(struct ap_state *s, struct ap_journal *ret);
int ap_state_write_journal(struct ap_state *s, const struct ap_journal *j);
int ap_state_clear_journal(struct ap_state *s);

/* The inventory of host paths autopull installed (sorted, unique; NULL when empty). */
int ap_state_read_owned(struct ap_state *s, char ***ret);
int ap_state_write_owned(struct ap_state *s, char *const *owned);

/* Commits whose apply was rolled back. find: 1 (and the reason) when listed, 0 when not. */
int ap_state_add_bad(struct ap_state *s, const char *commit, const char *why);
int ap_state_list_bad(struct ap_state *s, struct ap_bad **ret, size_t *ret_n);
int ap_state_find_bad(struct ap_state *s, const char *commit, char **ret_why);

/* An operator's override of a refusal, with the reason given ("guard", ...). */
int ap_state_add_override(struct ap_state *s, const char *kind, const char *commit,
			  const char *reason);
/* The overrides of one kind, oldest first, as commit, time and reason ("trust-skip": the
 * commits 'autopull trust skip' lets through the signature check). */
int ap_state_list_overrides(struct ap_state *s, const char *kind, struct ap_bad **ret,
			    size_t *ret_n);
/* How many commits were marked bad / overrides recorded, and the newest time of each (0 when
 * none), for the metrics. */
int ap_state_summary_bad(struct ap_state *s, unsigned *ret_n, uint64_t *ret_last_usec);
int ap_state_summary_overrides(struct ap_state *s, unsigned *ret_n, uint64_t *ret_last_usec);

/* The units the last apply restarted or reloaded (NULL when none). */
int ap_state_read_restarted(struct ap_state *s, char ***ret);
int ap_state_write_restarted(struct ap_state *s, char *const *units);

int ap_state_read_last_apply(struct ap_state *s, struct ap_last_apply *ret);
int ap_state_write_last_apply(struct ap_state *s, const struct ap_last_apply *la);

/* The guard stays tripped after a failed rollback. read: -ENOENT when not tripped. */
int ap_state_read_tripped(struct ap_state *s, char **ret_why);
int ap_state_write_tripped(struct ap_state *s, const char *why);
int ap_state_clear_tripped(struct ap_state *s);

/* The heartbeat history, under its own short lock so that a heartbeat never waits behind a
 * long apply (lock: an fd to close, or -EAGAIN). A history too large to read is moved aside
 * to heartbeat.old with a warning and reads as empty (-ENOENT): the guard must keep working. */
int ap_state_lock_history(struct ap_state *s, unsigned wait_sec);
int ap_state_read_history(struct ap_state *s, char **ret);
int ap_state_write_history(struct ap_state *s, const char *text);
/* Moves a history that parsed to nothing aside (heartbeat.old). */
int ap_state_discard_history(struct ap_state *s, const char *why);

/* The event history: appended (the oldest dropped beyond AP_EVENTS_MAX), read newest last.
 * A line that cannot be parsed is skipped with a warning. */
int ap_state_add_event(struct ap_state *s, const struct ap_event *e);
int ap_state_read_events(struct ap_state *s, struct ap_event **ret, size_t *ret_n);
void ap_events_free(struct ap_event *v, size_t n);

/* -ENOENT when not pinned. */
int ap_state_read_pin(struct ap_state *s, struct ap_pin *ret);
int ap_state_write_pin(struct ap_state *s, const struct ap_pin *p);
int ap_state_clear_pin(struct ap_state *s);

/* Monotonic counters ("apply:ok", "refused:guard", "rollback", "push_failures") for the
 * metrics. They have a lock of their own (counters.lock): a heartbeat counts while an apply
 * runs. */
int ap_state_count(struct ap_state *s, const char *name);
/* The value of one counter (0 when it never counted). */
uint64_t ap_state_counter(struct ap_state *s, const char *name);
int ap_state_read_counters(struct ap_state *s, struct ap_counter **ret, size_t *ret_n);

/* -ENOENT when never written. */
int ap_state_read_expected(struct ap_state *s, struct ap_expected_set *ret);
int ap_state_write_expected(struct ap_state *s, const struct ap_expected_set *e);
int ap_state_write_tick(struct ap_state *s, const struct ap_tick *t);
void ap_state_read_tick(struct ap_state *s, struct ap_tick *ret);
/* What the last run saw of its fleet (records.h); read: -ENOENT without a fleet. */
int ap_state_write_fleet(struct ap_state *s, const struct ap_fleet_tick *t);
int ap_state_read_fleet(struct ap_state *s, struct ap_fleet_tick *ret);

/* The cache of verified commits, as text (its format is trust.c's): read at most max bytes,
 * -ENOENT quietly; written durably. */
/* The probes' record (see above); -ENOENT when no probe ran yet. The caller holds the
 * history lock. */
int ap_state_read_probes(struct ap_state *s, char **ret);
int ap_state_write_probes(struct ap_state *s, const char *text);
int ap_state_read_verified(struct ap_state *s, size_t max, char **ret);
int ap_state_write_verified(struct ap_state *s, const char *text);
