/* The backup store under state_dir: file sets of saved host files.
 *
 *   backup/<sha>/   the previous state of every path the apply of <sha> touched
 *   adopted/        originals of host files autopull took over (never pruned)
 *
 * A file set is a directory holding a manifest and one copy per present file:
 *
 *   "<id> present <mode> <uid|-> <gid|-> <owned> <root_len> <path>"
 *   "<id> absent - - - <owned> <root_len> <path>"
 *   "<id> absentdir - - - 0 <root_len> <path>"     a directory the apply creates
 *
 * Earlier versions wrote "<id> present <mode> <path>" / "<id> absent - <path>": read as owned,
 * owner unknown (left as it is on restore) and beneath "/".
 *
 * It never touches managed host files: install.c reads and writes those, state-fileset.c stores the
 * copies it is given. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

struct ap_state;

/* A file set: saved host files under state_dir/<name>/ (a manifest plus one copy per present
 * file). The first copy of a path wins: a re-run keeps the state from before the first try. */
struct ap_fileset;
/* name: "backup/<sha>" (ap_state_backup_name) or "adopted". -ENOENT when missing and !create. */
int ap_state_fileset_open(struct ap_state *s, const char *name, bool create,
			  struct ap_fileset **ret);
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

