/* The few exit codes autopull uses; documented in README.md and doc/autopull.8. */
#pragma once
#include <errno.h>

enum {
	AP_EXIT_OK = 0,        /* applied, or nothing to do */
	AP_EXIT_FAILED = 1,    /* an action failed; the applied commit is unchanged */
	AP_EXIT_USAGE = 2,     /* bad command line or configuration */
	AP_EXIT_GUARD = 3,     /* refused: a watched unit is looping */
	AP_EXIT_INVALID = 4,   /* validation failed or the source was refused; host unchanged */
	AP_EXIT_REMOTE = 5,    /* the remote refused us or did not verify (auth, host key, TLS,
				* no such repository or branch): fix the remote or the config */
	AP_EXIT_TEMPFAIL = 75, /* try again later: remote unreachable, lock held */
};
/* autopull diff exits as diff(1) and git diff --exit-code do. */
enum {
	AP_EXIT_DIFFERS = 1,      /* the host differs from the applied commit */
	AP_EXIT_DIFF_TROUBLE = 2, /* it could not compare */
};

/* The one mapping of a stage's error to an exit code: a repository that asks for what must not
 * be installed or fails validation (-EINVAL, -EFBIG) is refused, no manager to ask (a user
 * without a session yet, a system still booting) is for later, anything else failed. */
static inline int ap_exit_code_of(int k)
{
	if (k >= 0)
		return AP_EXIT_OK;
	if (k == -EINVAL || k == -EFBIG)
		return AP_EXIT_INVALID;
	return k == -ENOTCONN ? AP_EXIT_TEMPFAIL : AP_EXIT_FAILED;
}
