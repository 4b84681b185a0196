/* The checks before the first change on the host: every destination directory can be created
 * and written (an empty file is created and removed in each, as the user the install writes
 * as), nothing but a regular file is in the way, an existing file autopull did not install is
 * replaced only with takeover (or when it already has the new bytes), and the new files fit
 * (statvfs, per file system). */
#pragma once
#include <stdint.h>

#include "install.h"
#include "model.h"

enum { AP_PREFLIGHT_CHECK_ONLY = 1 << 0 }; /* create and probe nothing (dry runs) */

struct ap_preflight {
	uint64_t backup_bytes, backup_files; /* what saving the touched files costs */
	char **adopt;                        /* existing files this apply takes over */
};

/* Each problem is logged. -EINVAL: the plan is refused (fix the repo, config or host); another
 * -errno: the host cannot take it now (-ENOSPC: the files do not fit). *ret is filled either
 * way; free it with ap_preflight_clear. */
int ap_preflight_check(const struct ap_plan *p, char *const *owned,
		       const struct ap_install_source *src, unsigned flags,
		       struct ap_preflight *ret);
void ap_preflight_clear(struct ap_preflight *p);
