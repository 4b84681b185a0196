/* What fsutil.c and fsutil-safe.c share: walking a path one component at a time without
 * following symlinks. Nothing outside the fsutil files sees this. */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

static inline bool fs_is_dot(const char *s)
{
	return s[0] == '.' && s[1] == '\0';
}

static inline bool fs_is_dotdot(const char *s)
{
	return s[0] == '.' && s[1] == '.' && s[2] == '\0';
}

/* Copies the next '/'-separated component of *p into name and moves *p past it and its
 * slashes. Returns the component length, 0 at the end, -ENAMETOOLONG. */
int fs_next_component(const char **p, char name[static NAME_MAX + 1]);
/* Opens directory name in dirfd without following a symlink (-ELOOP for one). With create,
 * a missing one is made first (mode). */
int fs_open_dir_step(int dirfd, const char *name, int create, mode_t mode);
