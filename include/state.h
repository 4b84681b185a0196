/* autopull's own state under state_dir, one typed function pair per file. Every write is an
 * atomic replace (fsutil); nobody else reads or writes the files listed here. Beside them,
 * but not this module's: the mirror repo.git (repo.c), the cache of verified commits
 * "verified" (trust.c) and, unless guard.metrics says otherwise, metrics.prom (watch.c).
 *
 *   lock            flock()ed by every run; holds the holder's pid
 *   stage/          the private directory where install.c stages and validates new files
 *   applied         the last commit whose actions all finished
 *   journal         the apply under way (journal.h)
 *   owned           every host path autopull installed, one per line
 *   backup/<sha>/   the previous state of every path the apply of <sha> touched (a file set)
 *   adopted/        originals of host files autopull took over (a file set; never pruned)
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
 *
 * It never touches managed host files: install.c reads and writes those, state.c stores the
 * copies it is given. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "events.h"
#include "journal.h"
#include "model.h"

struct ap_state;

/* Opens (creating, 0700) state_dir. */
int ap_state_open(const char *dir, struct ap_state **ret);
void ap_state_free(struct ap_state *s);
static inline void ap_state_freep(struct ap_state **s) { if (*s) ap_state_free(*s); }
const char *ap_state_path(const struct ap_state *s);

/* Takes the exclusive lock, waiting up to wait_sec seconds. -EAGAIN (logged with the
 * holder's pid) when it stays held. Removes temp files a killed run left behind. */
int ap_state_lock(struct ap_state *s, unsigned wait_sec);

/* A private, empty scratch directory (state_dir/stage, 0700) for staging files to validate:
 * whatever a killed run left there is removed first. The caller removes it when done. */
int ap_state_scratch_dir(struct ap_state *s, char **ret);

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
/* The inventory's parser, pure: -EBADMSG for a line that is not a normalised absolute path. */
int ap_state_parse_owned(const char *text, char ***ret);

/* A file set: saved host files under state_dir/<name>/ (a manifest plus one copy per present
 * file). The first copy of a path wins: a re-run keeps the state from before the first try. */
struct ap_fileset;
/* name: "backup/<sha>" (ap_state_backup_name) or "adopted". -ENOENT when missing and !create. */
int ap_state_fileset_open(struct ap_state *s, const char *name, bool create, struct ap_fileset **ret);
void ap_state_fileset_free(struct ap_fileset *f);
static inline void ap_state_fileset_freep(struct ap_fileset **f) { if (*f) ap_state_fileset_free(*f); }
size_t ap_state_fileset_count(const struct ap_fileset *f);
/* Entries as saved, without data. */
const struct ap_host_file *ap_state_fileset_entry(const struct ap_fileset *f, size_t i);
const struct ap_host_file *ap_state_fileset_find(const struct ap_fileset *f, const char *path);
/* Saves hf (its data when present) unless the set has the path already. */
int ap_state_fileset_add(struct ap_fileset *f, const struct ap_host_file *hf);
/* Writes the manifest if anything was added. */
int ap_state_fileset_commit(struct ap_fileset *f);
/* The saved bytes of an entry. */
int ap_state_fileset_read(struct ap_fileset *f, const struct ap_host_file *e, char **ret,
			  size_t *ret_len);
/* "backup/<sha>" in buf. */
const char *ap_state_backup_name(const char *commit, char buf[static 48]);
/* Removes every backup/<sha>/ but those of keep (NULL-terminated). */
int ap_state_backup_prune(struct ap_state *s, const char *const *keep);
/* Fails with -ENOSPC (logged) when the state directory's file system lacks room for bytes
 * more bytes in files more files. */
int ap_state_check_space(struct ap_state *s, uint64_t bytes, uint64_t files);

/* Commits whose apply was rolled back. find: 1 (and the reason) when listed, 0 when not. */
int ap_state_add_bad(struct ap_state *s, const char *commit, const char *why);
struct ap_bad {
	char commit[AP_OID_HEXSZ + 1];
	uint64_t realtime_usec;
	char *why;
};
int ap_state_list_bad(struct ap_state *s, struct ap_bad **ret, size_t *ret_n);
void ap_bad_free(struct ap_bad *v, size_t n);
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

struct ap_last_apply {
	uint64_t realtime_usec;
	bool ok;
};
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

struct ap_pin {
	char commit[AP_OID_HEXSZ + 1];
	uint64_t realtime_usec;
	char *reason;
};
/* -ENOENT when not pinned. */
int ap_state_read_pin(struct ap_state *s, struct ap_pin *ret);
int ap_state_write_pin(struct ap_state *s, const struct ap_pin *p);
int ap_state_clear_pin(struct ap_state *s);
void ap_pin_clear(struct ap_pin *p);

/* Monotonic counters ("apply:ok", "refused:guard", "rollback", "push_failures") for the
 * metrics. They have a lock of their own (counters.lock): a heartbeat counts while an apply
 * runs. */
int ap_state_count(struct ap_state *s, const char *name);
/* The value of one counter (0 when it never counted). */
uint64_t ap_state_counter(struct ap_state *s, const char *name);
struct ap_counter {
	char name[64];
	uint64_t value;
};
int ap_state_read_counters(struct ap_state *s, struct ap_counter **ret, size_t *ret_n);

/* What a managed file should be, as of the applied commit: for drift. */
struct ap_expected {
	char *path;            /* host path */
	char *repo_path;
	size_t root_len;
	char oid[AP_OID_HEXSZ + 1]; /* git blob id of the bytes */
	mode_t mode;
	char *owner, *group;   /* NULL: the user autopull runs as */
};
struct ap_expected_set {
	char commit[AP_OID_HEXSZ + 1]; /* the commit these describe */
	char config[65];               /* under this configuration (its digest) */
	struct ap_expected *v;
	size_t n;
};
void ap_expected_set_clear(struct ap_expected_set *e);
/* -ENOENT when never written. */
int ap_state_read_expected(struct ap_state *s, struct ap_expected_set *ret);
int ap_state_write_expected(struct ap_state *s, const struct ap_expected_set *e);
/* What the last apply tick saw, for the metrics: commits pending on the branch and managed
 * files that drifted (-1: not known). */
struct ap_tick {
	long pending, drift;
};
int ap_state_write_tick(struct ap_state *s, const struct ap_tick *t);
void ap_state_read_tick(struct ap_state *s, struct ap_tick *ret);
