/* Validation and installation of a plan's files. Validation stages every new file in a
 * private temp dir and runs systemd-analyze verify (units, drop-ins) and the rules'
 * validate: argv (files) before anything on the host changes. Installation writes each file
 * with one atomic replace beneath its configured directory and removes deleted files that
 * autopull owns. It does not talk to the service manager. */
#pragma once
#include "config.h"
#include "model.h"

#define AP_VALIDATE_TIMEOUT_USEC (60ULL * 1000000)

/* Where a file's new bytes come from when the change does not carry them: read one file at
 * a time, so that a large first run does not hold every file in memory. size, optional, tells
 * the size without reading (for the preflight's space check). */
struct ap_install_source {
	int (*read)(void *userdata, const struct ap_change *ch, char **ret, size_t *ret_len);
	int (*size)(void *userdata, const struct ap_change *ch, size_t *ret);
	void *userdata;
};

/* -EINVAL when a file fails validation (each failure logged, naming the repo path). Drop-ins
 * are verified together with their unit, found in unit_dir or the scope's vendor dirs. Files
 * are staged in stage_dir, an empty private directory of the caller's (removed afterwards). */
int ap_install_validate(const struct ap_plan *p, const struct ap_install_source *src,
			enum ap_scope scope, const char *unit_dir, const char *stage_dir);

/* Before the first change on the host: every destination directory can be created and
 * written (an empty file is created and removed in each), nothing but a regular file is in the
 * way, an existing file autopull did not install is replaced only with takeover (or when it
 * already has the new bytes), and the new files fit (statvfs, per file system). Each problem is
 * logged. -EINVAL: the plan is refused (fix the repo, config or host); another -errno: the host
 * cannot take it now. CHECK_ONLY creates and probes nothing (dry runs). */
enum { AP_PREFLIGHT_CHECK_ONLY = 1 << 0 };
struct ap_preflight {
	uint64_t backup_bytes, backup_files; /* what saving the touched files costs */
	char **adopt;                        /* existing files this apply takes over */
};
int ap_install_preflight(const struct ap_plan *p, char *const *owned,
			 const struct ap_install_source *src, unsigned flags, struct ap_preflight *ret);
void ap_preflight_clear(struct ap_preflight *p);

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
int ap_install_read_host(const char *path, size_t root_len, bool with_data, struct ap_host_file *ret);
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
