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
