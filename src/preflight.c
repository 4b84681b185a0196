/* The preflight (see preflight.h): before the first change on the host, every destination of
 * a plan is checked the way the install will reach it (install.c's directory walk, as the
 * user the install writes as), each problem is logged, and a refusal is told apart from a
 * host that cannot take the plan now. It also counts what backing up the touched files costs.
 *
 * Deliberately not here: writing or removing a managed file (install.c), the room in the state
 * directory (state.c). The only thing created is the probe's empty file, removed at once. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fsutil.h"
#include "install.h"
#include "log.h"
#include "preflight.h"
#include "util.h"

struct fs_need {
	unsigned long fsid;
	uint64_t bytes, files, avail_bytes, avail_files;
	char *dir; /* one directory on it, for the message */
};

struct preflight {
	const struct ap_plan *p;
	struct ap_strindex owned; /* the inventory's paths: a search of it per file was O(n^2) */
	const struct ap_install_source *src;
	unsigned flags;
	char **probed;          /* directories already probed */
	struct fs_need *fs;
	size_t n_fs;
	bool refused;
	int error;              /* first error that is not a refusal */
	struct ap_preflight *out;
};

static bool owns(const struct preflight *c, const char *path)
{
	size_t pos;

	return ap_strindex_find(&c->owned, path, &pos);
}

static int refuse(struct preflight *c, const char *fmt, ...) _printf_(2, 3);
static int refuse(struct preflight *c, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	msg = ap_strdupvf(fmt, ap);
	va_end(ap);
	ap_log_error(-EINVAL, "%s", msg ? msg : "refusing the plan");
	c->refused = true;
	return 0;
}

static int env_error(struct preflight *c, int r, const char *what, const char *path)
{
	ap_log_error(r, "cannot %s '%s': %s", what, path, strerror(-r));
	if (!c->error)
		c->error = r;
	return 0;
}

/* Counts what writing size bytes into the directory dfd needs of its file system. */
static int need_space(struct preflight *c, int dfd, const char *dir, uint64_t size)
{
	struct statvfs v;
	struct fs_need *n = NULL;

	if (fstatvfs(dfd, &v) < 0)
		return env_error(c, -errno, "check the free space of", dir);
	for (size_t i = 0; i < c->n_fs && !n; i++)
		if (c->fs[i].fsid == v.f_fsid)
			n = &c->fs[i];
	if (!n) {
		struct fs_need *w = realloc(c->fs, (c->n_fs + 1) * sizeof(*w));

		if (!w)
			return -ENOMEM;
		c->fs = w;
		n = &w[c->n_fs++];
		*n = (struct fs_need){ .fsid = v.f_fsid, .dir = strdup(dir),
				       .avail_bytes = (uint64_t)v.f_bavail * v.f_frsize,
				       .avail_files = v.f_files ? v.f_favail : UINT64_MAX };
		if (!n->dir)
			return -ENOMEM;
	}
	/* The temp file exists beside the old one until the rename: both count. */
	n->bytes += (size + 4095) / 4096 * 4096 + 4096;
	n->files += 1;
	return 0;
}

/* Proves dir is writable by creating and removing a file in it, once per directory: as the
 * user who owns its tree (tree_uid) when that is not us, as the install will write it. */
static int probe_dir(struct preflight *c, int dfd, const char *dir, uid_t tree_uid)
{
	int r;

	if (ap_strv_contains(c->probed, dir))
		return 0;
	if ((r = ap_strv_push(&c->probed, dir)) < 0)
		return r;
	if (c->flags & AP_PREFLIGHT_CHECK_ONLY)
		return 0;
	r = ap_install_probe_writable(dfd, tree_uid);
	return r < 0 ? env_error(c, r, "write to", dir) : 0;
}

static int check_takeover(struct preflight *c, const struct ap_file_op *f, int dfd,
			  const char *base)
{
	_cleanup_free_ char *have = NULL, *buf = NULL;
	const char *want;
	size_t have_len, want_len;
	int r;

	if (owns(c, f->dest))
		return 0;
	r = ap_fs_read_beneath(dfd, base, AP_MAX_BLOB_SIZE, &have, &have_len);
	if (r >= 0)
		r = ap_install_content(f, c->src, &buf, &want, &want_len);
	if (r < 0)
		return env_error(c, r, "read", f->dest);
	if (!f->takeover && !(have_len == want_len && memcmp(have, want, want_len) == 0))
		return refuse(c, "'%s' (from '%s') exists and autopull did not install it; to "
				 "replace it, set 'takeover: true' on its rule (the original is then "
				 "kept in the state directory's adopted/)", f->dest, f->path);
	return ap_strv_push(&c->out->adopt, f->dest);
}

/* The deepest directory that exists on the way to dest's directory (*ret_path names it),
 * walked as open_dir_of does. The preflight probes there rather than creating anything: a
 * refused plan must leave no directory behind. */
static int open_nearest_dir(const char *dest, size_t root_len, char **ret_path)
{
	struct ap_fs_unsafe u;
	int fd = ap_install_open_dir(dest, root_len, 0, AP_FS_WALK_NO_CHECK, &u);

	if (fd >= 0)
		*ret_path = ap_path_parent(dest);
	else if (fd == -ENOENT) {
		/* u.path is the first missing directory: its parent exists */
		*ret_path = ap_path_parent(u.path);
		fd = *ret_path ? ap_install_open_dir(u.path, root_len, 0, AP_FS_WALK_NO_CHECK, &u)
			: -ENOMEM;
		if (fd < 0) {
			free(*ret_path);
			*ret_path = NULL;
			return fd;
		}
	} else
		return fd;
	if (fd >= 0 && !*ret_path) {
		close(fd);
		return -ENOMEM;
	}
	return fd;
}

/* An owner: or group: this process may set: any as root; otherwise only its own uid and
 * its own groups (chown(2)). Checked here, or the write would fail half-way. */
static int check_owner(struct preflight *c, const struct ap_file_op *f)
{
	gid_t groups[NGROUPS_MAX];
	uid_t uid;
	gid_t gid;
	int n;

	if (!f->owner && !f->group)
		return 0;
	if (ap_install_owner_ids(f->owner, f->group, &uid, &gid) < 0)
		return refuse(c, "'%s': owner '%s' or group '%s' does not exist on this host",
			      f->path,
			      f->owner ? f->owner : "-", f->group ? f->group : "-");
	if (geteuid() == 0)
		return 0;
	if (uid != (uid_t)-1 && uid != geteuid())
		return refuse(c, "'%s' cannot be given to owner '%s': only root can, and autopull runs "
				 "as uid %u", f->path, f->owner, (unsigned)geteuid());
	n = getgroups(NGROUPS_MAX, groups);
	for (int i = 0; gid != (gid_t)-1 && gid != getegid() && i < n; i++)
		if (groups[i] == gid)
			return 0;
	if (gid != (gid_t)-1 && gid != getegid())
		return refuse(c, "'%s' cannot be given to group '%s': uid %u is not in it", f->path,
			      f->group, (unsigned)geteuid());
	return 0;
}

/* Nobody but root (or the user a rule names, or autopull's own user) controls a directory on
 * the way to dest: else a root write there could be steered with a symlink. A removal may be
 * in one user's tree (it is done as that user). 1: refused (logged). */
static int check_dest_dirs(struct preflight *c, const struct ap_file_op *f, const char *dest,
			   size_t root_len, bool install, uid_t *ret_tree_uid)
{
	_cleanup_free_ char *why = NULL;
	struct ap_fs_unsafe u;
	uid_t uid = (uid_t)-1;
	gid_t gid;
	int fd;

	if (install && ap_install_owner_ids(f->owner, f->group, &uid, &gid) < 0)
		return 0; /* check_owner refused it already */
	fd = ap_install_open_dir(dest, root_len, install ? ap_install_trusted_for(uid) : (uid_t)-1,
			 install ? 0 : AP_FS_WALK_ANY_USER, &u);
	*ret_tree_uid = u.tree_uid;
	if (fd >= 0 || fd == -ENOENT) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if (fd != -EPERM)
		return 0; /* a symlink in the way and the rest: reported by the checks that follow */
	if (ap_fs_unsafe_describe(&u, fd, &why) < 0)
		return -ENOMEM;
	refuse(c, "refusing to write '%s' (from '%s'): %s%s", dest, f->path, why,
	       fd == -EPERM && !(u.mode & (S_IWGRP | S_IWOTH)) && geteuid() == 0
		       ? "; to install it as that user, set 'owner:' on its rule to them" : "");
	return 1;
}

/* One destination: its directory can be written, nothing but a file is in the way, and an
 * existing file is either ours or may be taken over. */
static int preflight_dest(struct preflight *c, const struct ap_file_op *f, const char *dest,
			  size_t root_len, bool install)
{
	_cleanup_free_ char *dir = ap_path_parent(dest);
	_cleanup_close_ int dfd = -1;
	const char *base;
	struct stat st;
	size_t size = 0;
	uid_t tree_uid = 0;
	int r;

	if (!dir)
		return -ENOMEM;
	r = check_dest_dirs(c, f, dest, root_len, install, &tree_uid);
	if (r != 0)
		return r < 0 ? r : 0;
	dfd = ap_install_open_existing_dir(dest, root_len, &base);
	if (dfd == -ENOENT && !install)
		return 0; /* nothing to remove */
	if (dfd == -ENOENT) {
		/* Created when installing: the deepest existing directory must take it. */
		_cleanup_free_ char *have = NULL;

		dfd = open_nearest_dir(dest, root_len, &have);
		if (dfd >= 0 && install && f->change_ref && c->src && c->src->size)
			r = c->src->size(c->src->userdata, f->change_ref, &size);
		if (dfd >= 0)
			r = probe_dir(c, dfd, have, tree_uid);
		if (dfd >= 0 && r >= 0)
			r = need_space(c, dfd, have, size);
		return dfd < 0 ? (dfd == -ELOOP || dfd == -ENOTDIR
					  ? refuse(c, "'%s' (from '%s'): a symlink or a file is in the way of "
						      "its directory; refusing to follow it", dest,
						      f->path)
					  : env_error(c, dfd, "open the directory of", dest))
			       : r;
	}
	if (dfd < 0)
		return dfd == -ELOOP || dfd == -ENOTDIR || dfd == -EXDEV
			       ? refuse(c, "'%s' (from '%s'): a symlink or a file is in the way of "
					   "its directory; refusing to follow it", dest, f->path)
			       : env_error(c, dfd, "open the directory of", dest);
	r = ap_install_stat_file(dfd, base, &st);
	if (r == -ELOOP || r == -EISDIR || r == -EINVAL)
		return refuse(c, "'%s' (from '%s') is %s on the host; refusing to replace it", dest,
			      f->path, r == -ELOOP ? "a symlink" : r == -EISDIR ? "a directory"
							   : "not a regular file");
	if (r < 0 && r != -ENOENT)
		return env_error(c, r, "inspect", dest);
	if (r == 0) {
		c->out->backup_bytes += (uint64_t)st.st_size;
		c->out->backup_files++;
	}
	if (install && r == 0 && (r = check_takeover(c, f, dfd, base)) < 0)
		return r;
	if (install && f->change_ref && (c->src && c->src->size))
		r = c->src->size(c->src->userdata, f->change_ref, &size);
	if (r < 0 && r != -ENOENT)
		return env_error(c, r, "size", f->path);
	r = probe_dir(c, dfd, dir, tree_uid);
	return r >= 0 && install ? need_space(c, dfd, dir, size) : r;
}

static int check_fs_space(struct preflight *c)
{
	for (size_t i = 0; i < c->n_fs; i++) {
		const struct fs_need *n = &c->fs[i];

		if (n->bytes <= n->avail_bytes && n->files <= n->avail_files)
			continue;
		ap_log_error(-ENOSPC, "no room to install the files into '%s': its file system has "
				      "%" PRIu64 " bytes and %" PRIu64 " inodes free, this apply needs "
				      "%" PRIu64 " and %" PRIu64, n->dir, n->avail_bytes,
			     n->avail_files, n->bytes, n->files);
		if (!c->error)
			c->error = -ENOSPC;
	}
	return 0;
}

int ap_preflight_check(const struct ap_plan *p, char *const *owned,
		       const struct ap_install_source *src, unsigned flags,
		       struct ap_preflight *ret)
{
	struct preflight c = { .p = p, .src = src, .flags = flags, .out = ret };
	int r = 0;

	*ret = (struct ap_preflight){ 0 };
	for (size_t i = 0; r >= 0 && owned && owned[i]; i++)
		r = ap_strindex_add(&c.owned, owned[i], i);
	for (size_t i = 0; r >= 0 && i < p->n_files; i++) {
		const struct ap_file_op *f = &p->files[i];

		if (f->install)
			r = check_owner(&c, f);
		if (r >= 0 && f->install)
			r = preflight_dest(&c, f, f->dest, f->root_len, true);
		if (r >= 0 && f->remove && f->install && strcmp(f->old_dest, f->dest) != 0 &&
		    owns(&c, f->old_dest))
			r = preflight_dest(&c, f, f->old_dest, f->old_root_len, false);
		else if (r >= 0 && f->remove && !f->install && owns(&c, f->dest))
			r = preflight_dest(&c, f, f->dest, f->root_len, false);
	}
	if (r >= 0)
		r = check_fs_space(&c);
	ap_strv_free(c.probed);
	ap_strindex_clear(&c.owned);
	for (size_t i = 0; i < c.n_fs; i++)
		free(c.fs[i].dir);
	free(c.fs);
	if (r < 0)
		return r;
	return c.refused ? -EINVAL : c.error;
}

void ap_preflight_clear(struct ap_preflight *p)
{
	ap_strv_free(p->adopt);
	*p = (struct ap_preflight){ 0 };
}
