/* Installation of a plan's files: each file is written with one atomic replace beneath its
 * configured directory, deleted files that autopull owns are removed, and host files are read
 * and put back for backups and rollbacks. The walk to a destination and the user it is written
 * as are exported for validate.c and preflight.c, which must check what an install would do.
 * It does not talk to the service manager. */
#pragma once
#include <sys/stat.h>

#include "config.h"
#include "model.h"

struct ap_fs_unsafe;

/* Where a file's new bytes come from when the change does not carry them: read one file at
 * a time, so that a large first run does not hold every file in memory. size, optional, tells
 * the size without reading (for the preflight's space check). */
struct ap_install_source {
	int (*read)(void *userdata, const struct ap_change *ch, char **ret, size_t *ret_len);
	int (*size)(void *userdata, const struct ap_change *ch, size_t *ret);
	void *userdata;
};

struct ap_install_hooks {
	const struct ap_install_source *src;
	/* After each file written or removed (the crash points of the tests hang here). */
	void (*progress)(void *userdata, const char *dest);
	/* The operator's original of a file autopull took over: 1 and *ret filled (with data), 0
	 * when there is none, <0. It is put back when the repository removes the file. */
	int (*adopted)(void *userdata, const char *dest, struct ap_host_file *ret);
	void *userdata;
};

/* Installs and removes the plan's files; owned (the inventory of installed host paths) is
 * updated as files come and go. Removes only files listed in owned. Stops at the first
 * failure: the caller restores from its backup. */
int ap_install_files(const struct ap_plan *p, const struct ap_install_hooks *h, char ***owned);

/* How many owned files the plan removes, and how many remain owned afterwards. */
void ap_install_count(const struct ap_plan *p, char *const *owned, size_t *ret_removed,
		      size_t *ret_remaining);

/* The host file at path (beneath its configured directory path[0..root_len), whose own
 * symlinks are followed like when installing): present or not, mode, owner, and its bytes
 * when with_data. -ELOOP/-EISDIR/-EINVAL when something else than a file is there. */
int ap_install_read_host(const char *path, size_t root_len, bool with_data,
			 struct ap_host_file *ret);
/* Makes path as hf says: the bytes, mode and owner, or absent. Writes nothing when it is so
 * already. */
int ap_install_put_back(const struct ap_host_file *hf);

/* The ids of owner and group names ((uid_t)-1 / (gid_t)-1 for NULL). -ESRCH, logged, when a
 * name does not exist. */
int ap_install_owner_ids(const char *owner, const char *group, uid_t *ret_uid, gid_t *ret_gid);

/* The shallowest directory on the way to path that does not exist yet (NULL in *ret when the
 * directory of path exists): what installing path would create. */
int ap_install_first_missing_dir(const char *path, size_t root_len, char **ret);
/* Removes dir (created by an apply) and the directories below it if they hold nothing else. */
int ap_install_remove_created_dir(const char *dir, size_t root_len);

/* --- the way to a destination, shared with validate.c and preflight.c ------------------ */

/* The new bytes of f: carried by the change (unit files, which the planner reads), or read
 * now from src into *ret_buf (freed by the caller). -ENODATA without src. */
int ap_install_content(const struct ap_file_op *f, const struct ap_install_source *src,
		       char **ret_buf, const char **ret_data, size_t *ret_len);
/* ap_install_owner_ids of f's owner: and group:, logging which file names a missing one. */
int ap_install_owner_of(const struct ap_file_op *f, uid_t *ret_uid, gid_t *ret_gid);
/* Who may own the directories above a file: the rule's owner, or the user autopull runs as
 * (root: nobody else). */
uid_t ap_install_trusted_for(uid_t owner);
/* The directory path lies in, opened as an install walks to it (ap_fs_open_dir_safe from "/",
 * symlinks followed only within path[0..root_len), every directory root's or trusted's, per
 * flags AP_FS_WALK_*); *u says what was refused or missing. */
int ap_install_open_dir(const char *path, size_t root_len, uid_t trusted, unsigned flags,
			struct ap_fs_unsafe *u);
/* The same without creating anything or checking owners (reads); *ret_base points at path's
 * last component. -ENOENT when the directory is missing. */
int ap_install_open_existing_dir(const char *path, size_t root_len, const char **ret_base);
/* What is at base in dfd: 0 and *st for a regular file, -ENOENT, or a refusal (-ELOOP for a
 * symlink, -EISDIR for a directory, -EINVAL for anything else). */
int ap_install_stat_file(int dfd, const char *base, struct stat *st);
/* Proves that files can be created in dfd as the install would create them there: as
 * tree_uid when the directory's tree belongs to that user (ap_fs_unsafe.tree_uid). */
int ap_install_probe_writable(int dfd, uid_t tree_uid);
