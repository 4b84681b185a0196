/* autopull's own state under state_dir: the lock, the applied commit, the journal of an
 * apply in progress, and the inventory of files autopull installed. Every write is an
 * atomic replace (fsutil). The mirror repo.git lives beside these but belongs to repo.c.
 *
 *   lock      flock()ed by every run; holds the holder's pid
 *   applied   the last commit whose actions all finished ("<sha>\n")
 *   journal   "from <sha|->\nto <sha>\n" + owed actions, while an apply is under way
 *   owned     one installed host path per line
 */
#pragma once
#include <stdbool.h>
#include "model.h"

struct ap_state;

/* Opens (creating, 0700) state_dir. */
int ap_state_open(const char *dir, struct ap_state **ret);
void ap_state_free(struct ap_state *s);
static inline void ap_state_freep(struct ap_state **s) { if (*s) ap_state_free(*s); }
const char *ap_state_path(const struct ap_state *s);

/* Takes the exclusive lock, waiting up to wait_sec seconds. -EAGAIN (logged with the
 * holder's pid) when it stays held. */
int ap_state_lock(struct ap_state *s, unsigned wait_sec);

/* -ENOENT when nothing was applied yet. */
int ap_state_read_applied(struct ap_state *s, char ret[AP_OID_HEXSZ + 1]);
int ap_state_write_applied(struct ap_state *s, const char *oid);

/* The journal of the apply under way. from may be "" (first run). */
int ap_state_write_journal(struct ap_state *s, const char *from, const char *to,
			   const char *actions);
/* ret_body gets the lines after "from" and "to" (the caller's own format). */
int ap_state_read_journal(struct ap_state *s, char ret_from[AP_OID_HEXSZ + 1],
			  char ret_to[AP_OID_HEXSZ + 1], char **ret_body);
int ap_state_clear_journal(struct ap_state *s);

/* The inventory of host paths autopull installed (sorted, unique). */
int ap_state_read_owned(struct ap_state *s, char ***ret);
int ap_state_write_owned(struct ap_state *s, char *const *owned);

/* Saves the current bytes of a host file before it is replaced or removed, keyed by the
 * commit being applied, so that a later rollback can restore it. A missing file is
 * recorded as absent. */
int ap_state_backup_file(struct ap_state *s, const char *commit, const char *host_path);
/* The same for many paths, with one manifest write. */
int ap_state_backup_files(struct ap_state *s, const char *commit, char *const *paths);

/* Looks up the backup of host_path made for commit: 1 when it existed (data and mode
 * filled), 0 when it was absent, -ENOENT when no backup of it was made. */
int ap_state_backup_lookup(struct ap_state *s, const char *commit, const char *host_path,
			   char **ret_data, size_t *ret_len, mode_t *ret_mode);

/* Small named state files of the guard (heartbeat history, bad commits, last apply…).
 * Reads return -ENOENT when missing; writes are atomic. */
int ap_state_read_text(struct ap_state *s, const char *name, char **ret);
int ap_state_write_text(struct ap_state *s, const char *name, const char *text);
int ap_state_remove(struct ap_state *s, const char *name);
/* Appends line (which ends in '\n') to a named state file, creating it. */
int ap_state_append_text(struct ap_state *s, const char *name, const char *line);

/* A short-lived lock of its own for the heartbeat history, so that a heartbeat never waits
 * behind a long apply. Returns an fd to close, or -EAGAIN. */
int ap_state_lock_history(struct ap_state *s, unsigned wait_sec);

/* Removes every backup/<commit>/ except keep's: a rollback only ever needs the backup of the
 * apply under way. */
int ap_state_backup_prune(struct ap_state *s, const char *keep);
