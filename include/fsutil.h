/* File primitives for the modules that touch files: install and state above all, and the key
 * files, the metrics file and the generator's drop-ins. Everything named by repository content is
 * opened beneath a directory fd with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so neither
 * ".." nor a symlink can lead outside it. All fds are O_CLOEXEC. The one atomic-replace function
 * lives here; nobody else renames. */
#pragma once
#include <stdbool.h>
#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

/* openat2 beneath dirfd with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS; O_CLOEXEC is added.
 * Returns an fd or -errno (-EXDEV: escapes, -ELOOP: a symlink in the way). */
int ap_fs_open_beneath(int dirfd, const char *path, int flags, mode_t mode);

/* Opens an absolute directory path (O_DIRECTORY|O_NOFOLLOW on the last component),
 * creating it and its parents with mode when create is non-zero. */
int ap_fs_open_dir(const char *abs_path, int create, mode_t mode);

/* Creates the directories of relative path dir beneath dirfd (each with mode), refusing
 * symlinks, and returns an fd of the last one. */
int ap_fs_mkdirs_beneath(int dirfd, const char *dir, mode_t mode);

/* Atomically replaces name in dirfd: temp file in the same directory, write, fchmod,
 * fchown (when uid/gid != (uid_t)-1 / (gid_t)-1), fsync, renameat, fsync dirfd.
 * name must be a single component. An existing symlink at name is refused (-ELOOP). */
int ap_fs_write_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
		       uid_t uid, gid_t gid);

/* The same, with flags: AP_FS_NO_DIRSYNC leaves the directory fsync to the caller, who
 * installs many files into one directory and syncs it once (ap_fs_sync_dir), or to a later
 * write, for a report whose last version may be lost in a power cut but never torn.
 * AP_FS_NO_SYNC: no fsync at all, for a scratch file no crash can find (a staging dir). */
enum { AP_FS_NO_DIRSYNC = 1 << 0, AP_FS_NO_SYNC = 1 << 1 };
int ap_fs_write_atomic_flags(int dirfd, const char *name, const void *data, size_t len,
			     mode_t mode, uid_t uid, gid_t gid, unsigned flags);
int ap_fs_sync_dir(int dirfd);

/* The two halves of ap_fs_write_atomic_flags, for writing several files, making them
 * durable at once (ap_fs_sync_fs) and only then putting them in place: the temp file, written
 * and closed (its name in ret_tmp; removed again on failure), and its rename to name (the
 * temp file removed when that fails). */
int ap_fs_write_temp(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
		     uid_t uid, gid_t gid, unsigned flags, char ret_tmp[static NAME_MAX + 1]);
int ap_fs_rename_temp(int dirfd, const char *tmp, const char *name);

/* Makes everything written to the file system of fd durable, directory entries included
 * (syncfs): one call for many files written with AP_FS_NO_SYNC, when what says they are
 * complete (the journal, a backup's manifest) is written only after it. Never torn: a crash
 * before it returns leaves that record saying the files may be incomplete. */
int ap_fs_sync_fs(int fd);

/* Reads a regular file (not following symlinks) beneath dirfd, at most max bytes
 * (-EFBIG beyond). *ret is NUL-terminated. -ENOENT when missing. */
int ap_fs_read_beneath(int dirfd, const char *path, size_t max, char **ret, size_t *ret_len);

/* The same for a file named by an absolute normalised path (a configured credential file):
 * its directory is opened with ap_fs_open_dir, the file itself is not followed if a symlink. */
int ap_fs_read_file(const char *abs_path, size_t max, char **ret, size_t *ret_len);

/* unlinkat beneath dirfd of a regular file, then fsync of its directory. A missing file
 * is success (returns 0); a directory or symlink is refused. */
int ap_fs_unlink_beneath(int dirfd, const char *path);

/* Removes the temp files ap_fs_write_atomic leaves behind when it is killed between creating
 * and renaming: regular files named ".#<name>.XXXXXX" in dirfd (any name when name is NULL).
 * Only the exact pattern is touched (an editor's ".#name" lock link has no suffix). Returns
 * how many were removed, or -errno. */
int ap_fs_remove_stale_temps(int dirfd, const char *name);

/* Proves that files can be created in dirfd: creates and removes an empty temp file. */
int ap_fs_probe_writable(int dirfd);

/* Renames name to name + suffix in dirfd, replacing an older one: for a state file that can
 * no longer be read, kept for inspection instead of being deleted. */
int ap_fs_move_aside(int dirfd, const char *name, const char *suffix);

/* Removes a directory tree created by autopull (temp staging dirs). Best effort. */
int ap_fs_rm_rf(const char *abs_path);

/* mkdtemp under $TMPDIR (or /tmp) with mode 0700; *ret is the new path. */
int ap_fs_mkdtemp(const char *prefix, char **ret);

struct stat;
/* A directory root may write beneath: owned by root or trusted, and not writable by group or
 * others unless it is sticky and root's (/tmp) — systemd-tmpfiles' "unsafe path transition"
 * and sshd's StrictModes. */
bool ap_fs_dir_is_safe(const struct stat *st, uid_t trusted);

/* What ap_fs_open_dir_safe refused or did not find. */
struct ap_fs_unsafe {
	char path[4096]; /* the directory refused, the symlink, or the first missing one */
	uid_t uid;       /* -EPERM: its owner and mode */
	mode_t mode;
	uid_t tree_uid;  /* the owner of the deepest directory walked that root does not own (0: none) */
};
enum {
	AP_FS_WALK_CREATE = 1 << 0,   /* make missing directories (mode), as the current fsuid */
	AP_FS_WALK_ANY_USER = 1 << 1, /* trusted is the first non-root owner met */
	AP_FS_WALK_NO_CHECK = 1 << 2, /* no owner or mode check: only no symlinks (reads) */
};
/* Opens the absolute directory abs_path from "/" one component at a time. Every directory on
 * the way must pass ap_fs_dir_is_safe (-EPERM, *u names it). A symlink is refused (-ELOOP,
 * u->path names it) unless it lies in the first follow_len bytes (the directory the operator
 * configured, /lib -> usr/lib) and only root or the caller could have made it; its target is
 * then walked and checked the same way. -ENOENT: u->path is the first missing directory. */
int ap_fs_open_dir_safe(const char *abs_path, size_t follow_len, uid_t trusted, unsigned flags,
			mode_t mode, struct ap_fs_unsafe *u);
/* One sentence for a refusal of ap_fs_open_dir_safe (r: what it returned), naming the path,
 * the owner by name and, for a mode, the chmod that fixes it. */
int ap_fs_unsafe_describe(const struct ap_fs_unsafe *u, int r, char **ret);

/* A file whose content autopull trusts (its configuration, a key list) or keeps secret (a
 * token, a password): it, and every directory above it (symlinks resolved), must be owned by
 * root or the user autopull runs as and not writable by others; with AP_FS_FILE_SECRET others
 * may not read it either (group read stays allowed). what names it in the message ("trust:
 * ssh_allowed_signers"). -EPERM and *ret_msg naming the exact chmod or chown that fixes it;
 * -ENOENT when it does not exist (whoever reads it says so); other -errno. */
/* AP_FS_FILE_PRIVATE: a key only autopull's user may hold (an age identity): owned by that
 * user itself and mode 0600 or stricter. */
enum { AP_FS_FILE_SECRET = 1 << 0, AP_FS_FILE_PRIVATE = 1 << 1 };
int ap_fs_check_file(const char *what, const char *path, unsigned flags, char **ret_msg);
/* The same for the directories above dir (dir itself need not exist yet). */
int ap_fs_check_parents(const char *what, const char *dir, char **ret_msg);
