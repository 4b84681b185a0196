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
 * a time, so that a large first run does not hold every file in memory. */
struct ap_install_source {
	int (*read)(void *userdata, const struct ap_change *ch, char **ret, size_t *ret_len);
	void *userdata;
};

/* -EINVAL when a file fails validation (each failure logged, naming the repo path). */
int ap_install_validate(const struct ap_plan *p, const struct ap_install_source *src,
			enum ap_scope scope, const char *unit_dir);

/* Installs and removes the plan's files; owned (the inventory of installed host paths) is
 * updated as files come and go. Removes only files listed in owned. The caller backs up
 * what is replaced first (ap_install_touched lists it). */
int ap_install_files(const struct ap_plan *p, const struct ap_install_source *src, char ***owned);

/* Every host path the plan writes or removes. */
int ap_install_touched(const struct ap_plan *p, char ***ret);

/* How many owned files the plan removes, and how many remain owned afterwards. */
void ap_install_count(const struct ap_plan *p, char *const *owned, size_t *ret_removed,
		      size_t *ret_remaining);

/* Puts back what the plan's files replaced or removed. lookup returns 1 with the saved
 * bytes and mode (the file existed), 0 (it did not: remove it), or <0. owned is updated. */
struct ap_restore_hooks {
	int (*lookup)(void *userdata, const char *host_path, char **ret_data, size_t *ret_len,
		      mode_t *ret_mode);
	void *userdata;
};
int ap_install_restore(const struct ap_plan *p, const struct ap_restore_hooks *h, char ***owned);
