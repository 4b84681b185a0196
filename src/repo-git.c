/* libgit2's global state and the translation of its errors, shared by repo.c (the mirror)
 * and repo-fetch.c (the network half), which include <git2.h> with this file and no other.
 * It owns the library's init and shutdown with the config search paths pinned empty, the
 * mapping of libgit2's error codes to negative errnos, and object ids as hex. It
 * deliberately opens no repository and touches no network: the socket stream is put in
 * place by the fetch that needs it (repo-fetch.c). */
#include <errno.h>

#include <git2.h>

#include "log.h"
#include "model.h"
#include "repo-private.h"
#include "util.h"

/* --- error translation ------------------------------------------------------------ */

const char *repo_git_msg(void)
{
	const git_error *e = git_error_last();

	return e && e->message ? e->message : "unknown error";
}

int repo_git_errno(int gerr)
{
	const git_error *e = git_error_last();

	if (e && e->klass == GIT_ERROR_NOMEMORY)
		return -ENOMEM;
	switch (gerr) {
	case GIT_ENOTFOUND:
		return -ENOENT;
	case GIT_EEXISTS:
		return -EEXIST;
	case GIT_EAMBIGUOUS:
	case GIT_EINVALIDSPEC:
	case GIT_EINVALID:
		return -EINVAL;
	case GIT_ELOCKED:
		return -EBUSY;
	case GIT_EOWNER:
		return -EPERM;
	default:
		return -EIO;
	}
}

void repo_oid_hex(char ret[AP_OID_HEXSZ + 1], const git_oid *id)
{
	git_oid_tostr(ret, AP_OID_HEXSZ + 1, id);
}

/* --- the library's global state ------------------------------------------------------ */

/* No system, global, XDG or ProgramData config may steer a deploy (a root ~/.gitconfig
 * with url.insteadOf or http.proxy would). libgit2 resets these at the last shutdown,
 * so every open pins them again. */
static int pin_search_paths(void)
{
	static const int levels[] = { GIT_CONFIG_LEVEL_PROGRAMDATA, GIT_CONFIG_LEVEL_SYSTEM,
				      GIT_CONFIG_LEVEL_XDG, GIT_CONFIG_LEVEL_GLOBAL };

	for (size_t i = 0; i < ELEMENTSOF(levels); i++)
		if (git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, levels[i], "") < 0)
			return ap_log_error(-EIO, "failed to clear the git config search path: %s",
					    repo_git_msg());
	return 0;
}

/* libgit2 maps packs in windows of up to 1 GiB, 8 GiB in all (its 64-bit defaults), and
 * every page read stays resident until the pack is closed: a first fetch from a local
 * repository walks the source's trees across its whole pack while the mirror's copy is
 * open too, +11 MB of RSS at 100,000 files. Windows of 1 MiB, 4 MiB mapped in all (the
 * least recently used unmapped first), cut that to ~6 MB; the pages stay in the page
 * cache, so a window mapped again costs page faults, not reads (no change in wall time
 * measured, bench/results/firstrun-sizes.md). */
#define PACK_WINDOW_SIZE ((size_t)1 << 20)
#define PACK_MAPPED_LIMIT ((size_t)4 << 20)

static int limit_pack_maps(void)
{
	if (git_libgit2_opts(GIT_OPT_SET_MWINDOW_SIZE, PACK_WINDOW_SIZE) < 0 ||
	    git_libgit2_opts(GIT_OPT_SET_MWINDOW_MAPPED_LIMIT, PACK_MAPPED_LIMIT) < 0)
		return ap_log_error(-EIO, "failed to limit libgit2's pack maps: %s",
				    repo_git_msg());
	return 0;
}

int repo_git_init(void)
{
	int k;

	if (git_libgit2_init() < 0)
		return ap_log_error(-EIO, "failed to initialise libgit2: %s", repo_git_msg());
	if ((k = pin_search_paths()) < 0 || (k = limit_pack_maps()) < 0)
		git_libgit2_shutdown();
	return k;
}

void repo_git_shutdown(void)
{
	git_libgit2_shutdown();
}
