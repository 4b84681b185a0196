/* Installation of a plan's files, and reading and putting back host files for backups and
 * rollbacks (see install.h). Host paths are opened beneath their configured directory only;
 * nothing here follows a symlink below it. This is the one module that writes or removes
 * managed host files, and the one that switches to another user's file system ids to do it;
 * validate.c and preflight.c reach host paths through the walk exported here, so that they
 * check exactly what an install would do.
 *
 * Deliberately not here: staging and validators (validate.c), the checks before the first
 * change (preflight.c), where copies are kept (state.c), when to restore (apply.c), and the
 * service manager. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "install.h"
#include "log.h"
#include "util.h"

/* The directory path lies in, walked from "/" (ap_fs_open_dir_safe): a symlink is followed
 * only within the configured directory path[0..root_len) and only when root could have made
 * it (/lib -> usr/lib); every directory on the way is root's or trusted's. */
int ap_install_open_dir(const char *path, size_t root_len, uid_t trusted, unsigned flags,
			struct ap_fs_unsafe *u)
{
	_cleanup_free_ char *dir = ap_path_parent(path);

	if (!dir)
		return -ENOMEM;
	return ap_fs_open_dir_safe(dir, root_len, trusted, flags, 0755, u);
}

static void leave_user(void)
{
	(void)setfsuid(geteuid());
	(void)setfsgid(getegid());
}

/* From here on files are created, renamed and removed as uid (gid, or uid's own group): the
 * kernel then allows only what that user could do herself. */
static int become_user(uid_t uid, gid_t gid)
{
	char buf[4096];
	struct passwd pw, *pwr = NULL;

	if (gid == (gid_t)-1) {
		if (getpwuid_r(uid, &pw, buf, sizeof(buf), &pwr) != 0 || !pwr)
			return -ESRCH;
		gid = pwr->pw_gid;
	}
	(void)setfsgid(gid);
	(void)setfsuid(uid);
	/* Both return the previous id, never an error: ask again to know. */
	if ((gid_t)setfsgid((gid_t)-1) != gid || (uid_t)setfsuid((uid_t)-1) != uid) {
		leave_user();
		return -EPERM;
	}
	return 0;
}

/* Proves that files can be created in dfd as the install would create them: as tree_uid
 * when the directory's tree belongs to that user and not to us. */
int ap_install_probe_writable(int dfd, uid_t tree_uid)
{
	bool as_user = tree_uid != 0 && tree_uid != geteuid();
	int r = as_user ? become_user(tree_uid, (gid_t)-1) : 0;

	if (r >= 0)
		r = ap_fs_probe_writable(dfd);
	if (as_user)
		leave_user();
	return r;
}

/* Opens the directory of dest to write or remove it (creating it with WALK_CREATE): as the
 * running user through directories that only root or trusted own, or, when the tree belongs to
 * another user, as that user (*ret_as_user: call leave_user() when done). A refusal is logged
 * with its reason. */
static int enter_dest(const char *dest, size_t root_len, uid_t trusted, gid_t gid,
		      unsigned flags, bool *ret_as_user)
{
	struct ap_fs_unsafe u;
	int fd = ap_install_open_dir(dest, root_len, trusted, flags & ~AP_FS_WALK_CREATE, &u), r;

	*ret_as_user = false;
	if (fd >= 0 || fd == -ENOENT) {
		if (u.tree_uid != 0 && u.tree_uid != geteuid()) {
			r = become_user(u.tree_uid, gid);
			if (r < 0) {
				if (fd >= 0)
					close(fd);
				return r;
			}
			*ret_as_user = true;
		}
		if (fd == -ENOENT && (flags & AP_FS_WALK_CREATE))
			fd = ap_install_open_dir(dest, root_len, trusted, flags, &u);
	}
	if (fd == -EPERM || fd == -ELOOP) {
		_cleanup_free_ char *why = NULL;

		if (ap_fs_unsafe_describe(&u, fd, &why) >= 0)
			ap_log_error(fd, "refusing to write '%s': %s", dest, why);
	}
	if (fd < 0 && *ret_as_user) {
		leave_user();
		*ret_as_user = false;
	}
	return fd;
}

/* Who may own the directories above a file: the rule's owner, or the user autopull runs as
 * (root: nobody else). */
uid_t ap_install_trusted_for(uid_t owner)
{
	return owner != (uid_t)-1 ? owner : geteuid();
}

int ap_install_owner_ids(const char *owner, const char *group, uid_t *ret_uid, gid_t *ret_gid)
{
	char buf[4096];
	struct passwd pw, *pwr = NULL;
	struct group gr, *grr = NULL;

	*ret_uid = (uid_t)-1;
	*ret_gid = (gid_t)-1;
	if (owner) {
		if (getpwnam_r(owner, &pw, buf, sizeof(buf), &pwr) != 0 || !pwr)
			return ap_log_error(-ESRCH, "unknown owner '%s'", owner);
		*ret_uid = pwr->pw_uid;
	}
	if (group) {
		if (getgrnam_r(group, &gr, buf, sizeof(buf), &grr) != 0 || !grr)
			return ap_log_error(-ESRCH, "unknown group '%s'", group);
		*ret_gid = grr->gr_gid;
	}
	return 0;
}

int ap_install_owner_of(const struct ap_file_op *f, uid_t *ret_uid, gid_t *ret_gid)
{
	int r = ap_install_owner_ids(f->owner, f->group, ret_uid, ret_gid);

	return r < 0 ? ap_log_error(r, "the owner or group of '%s' does not exist", f->path) : r;
}

/* The new bytes of f: carried by the change (unit files, which the planner reads), or read
 * now into *ret_buf (freed by the caller). */
int ap_install_content(const struct ap_file_op *f, const struct ap_install_source *src,
		       char **ret_buf, const char **ret_data, size_t *ret_len)
{
	const struct ap_change *ch = f->change_ref;
	int r;

	if (ch->new_data) {
		*ret_data = ch->new_data;
		*ret_len = ch->new_len;
		return 0;
	}
	if (!src)
		return -ENODATA;
	r = src->read(src->userdata, ch, ret_buf, ret_len);
	*ret_data = *ret_buf;
	return r;
}

static int write_one(const struct ap_file_op *f, const struct ap_install_source *src)
{
	_cleanup_close_ int dfd = -1;
	_cleanup_free_ char *buf = NULL;
	const char *base = strrchr(f->dest, '/') + 1, *data;
	bool as_user;
	size_t len;
	uid_t uid;
	gid_t gid;
	int r = ap_install_owner_of(f, &uid, &gid);

	if (r < 0)
		return r;
	dfd = enter_dest(f->dest, f->root_len, ap_install_trusted_for(uid), gid, AP_FS_WALK_CREATE,
			 &as_user);
	if (dfd < 0)
		return dfd;
	/* A run killed inside the atomic write left its temp file here. */
	(void)ap_fs_remove_stale_temps(dfd, base);
	r = ap_install_content(f, src, &buf, &data, &len);
	if (r >= 0)
		r = ap_fs_write_atomic_flags(dfd, base, data, len, f->mode, uid, gid,
					     AP_FS_NO_SYNC); /* sync_written() */
	if (as_user)
		leave_user();
	return r;
}

/* The files are written without an fsync each: one syncfs per file system written to makes
 * them all durable, renames included, before ap_install_files returns. Until the journal
 * records the files as in, a crash is undone from the backup, so a file that did not survive
 * it is put back like any other. */
static int sync_written(const struct ap_plan *p)
{
	_cleanup_free_ dev_t *done = calloc(p->n_files ? p->n_files : 1, sizeof(*done));
	size_t n = 0;

	if (!done)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_files; i++) {
		const struct ap_file_op *f = &p->files[i];
		_cleanup_close_ int dfd = -1;
		struct stat st;
		bool seen = false;
		int r;

		if (!f->install)
			continue;
		dfd = ap_install_open_dir(f->dest, f->root_len, 0, AP_FS_WALK_NO_CHECK,
					  &(struct ap_fs_unsafe){ 0 });
		r = dfd < 0 ? dfd : fstat(dfd, &st) < 0 ? -errno : 0;
		for (size_t k = 0; r >= 0 && k < n && !seen; k++)
			seen = done[k] == st.st_dev;
		if (r >= 0 && !seen && (r = ap_fs_sync_fs(dfd)) >= 0)
			done[n++] = st.st_dev;
		if (r < 0)
			return ap_log_error(r, "failed to sync the files installed to '%s': %s",
					    f->dest, strerror(-r));
	}
	return 0;
}

/* A removal needs no owner: whoever owns the tree (one user at most) removes it. */
static int remove_one(const char *dest, size_t root_len)
{
	bool as_user;
	_cleanup_close_ int dfd = enter_dest(dest, root_len, (uid_t)-1, (gid_t)-1,
					     AP_FS_WALK_ANY_USER, &as_user);
	int r;

	if (dfd < 0)
		return dfd == -ENOENT ? 0 : dfd;
	r = ap_fs_unlink_beneath(dfd, strrchr(dest, '/') + 1);
	if (as_user)
		leave_user();
	return r;
}

/* A file the repository stops providing: removed, unless autopull took it over from the
 * operator, whose original then comes back. */
static int remove_owned(const struct ap_file_op *f, const char *dest, size_t root_len,
			const struct ap_install_hooks *h, struct ap_strset *owned)
{
	struct ap_host_file orig = { 0 };
	int r;

	if (!ap_strset_has(owned, dest)) {
		ap_log_warning("not removing '%s' (from '%s'): autopull did not install it", dest,
			       f->old_path ? f->old_path : f->path);
		return 0;
	}
	r = h->adopted ? h->adopted(h->userdata, dest, &orig) : 0;
	if (r > 0)
		r = ap_install_put_back(&orig);
	else if (r == 0)
		r = remove_one(dest, root_len);
	if (r < 0) {
		ap_host_file_clear(&orig);
		return ap_log_error(r, "failed to remove '%s': %s", dest, strerror(-r));
	}
	ap_strset_remove(owned, dest);
	if (orig.path)
		ap_log_info("put back the original of %s (it was taken over)", dest);
	else
		ap_log_info("removed %s", dest);
	ap_host_file_clear(&orig);
	if (h->progress)
		h->progress(h->userdata, dest);
	return 0;
}

static int install_files(const struct ap_plan *p, const struct ap_install_hooks *h,
			 struct ap_strset *owned)
{
	int r;

	/* Writes first, removals after, so a rename never leaves a moment without either. */
	for (size_t i = 0; i < p->n_files; i++) {
		const struct ap_file_op *f = &p->files[i];

		if (!f->install)
			continue;
		r = write_one(f, h->src);
		if (r < 0)
			return ap_log_error(r, "failed to install '%s' to '%s': %s", f->path,
					    f->dest,
					    strerror(-r));
		if ((r = ap_strset_add(owned, f->dest)) < 0)
			return r;
		ap_log_info("installed %s -> %s", f->path, f->dest);
		if (h->progress)
			h->progress(h->userdata, f->dest);
	}
	if ((r = sync_written(p)) < 0)
		return r;
	for (size_t i = 0; i < p->n_files; i++) {
		const struct ap_file_op *f = &p->files[i];

		if (!f->remove || (f->install && strcmp(f->old_dest, f->dest) == 0))
			continue;
		r = f->install ? remove_owned(f, f->old_dest, f->old_root_len, h, owned)
			       : remove_owned(f, f->dest, f->root_len, h, owned);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The inventory as a set for the while: a search of the vector per file installed or
 * removed made an apply of n files O(n^2). */
int ap_install_files(const struct ap_plan *p, const struct ap_install_hooks *h, char ***owned)
{
	struct ap_strset set = { 0 };
	int r = ap_strset_adopt(&set, owned);

	if (r < 0)
		return r;
	r = install_files(p, h, &set);
	*owned = ap_strset_take(&set);
	return r;
}

void ap_install_count(const struct ap_plan *p, char *const *owned, size_t *ret_removed,
		      size_t *ret_remaining)
{
	size_t removed = 0, added = 0, n = ap_strv_length(owned);

	for (size_t i = 0; i < p->n_files; i++) {
		const struct ap_file_op *f = &p->files[i];
		const char *gone = f->remove ? (f->install ? f->old_dest : f->dest) : NULL;

		if (gone && ap_strv_contains(owned, gone))
			removed++;
		if (f->install && !ap_strv_contains(owned, f->dest))
			added++;
	}
	*ret_removed = removed;
	*ret_remaining = n - removed + added;
}

/* --- host files: backups and putting them back ---------------------------------------- */

/* Opens the existing directory path lies in, without creating anything or checking owners
 * (reads): -ENOENT when it is missing. */
int ap_install_open_existing_dir(const char *path, size_t root_len, const char **ret_base)
{
	*ret_base = strrchr(path, '/') + 1;
	return ap_install_open_dir(path, root_len, 0, AP_FS_WALK_NO_CHECK,
				   &(struct ap_fs_unsafe){ 0 });
}

/* What is at base in dfd: 0 and *st for a regular file, -ENOENT, or a refusal (-ELOOP for a
 * symlink, -EISDIR for a directory, -EINVAL for anything else). */
int ap_install_stat_file(int dfd, const char *base, struct stat *st)
{
	if (fstatat(dfd, base, st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return S_ISREG(st->st_mode) ? 0 : S_ISLNK(st->st_mode) ? -ELOOP
				     : S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL;
}

int ap_install_read_host(const char *path, size_t root_len, bool with_data,
			 struct ap_host_file *ret)
{
	struct ap_host_file hf = { .root_len = root_len, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	_cleanup_close_ int dfd = ap_install_open_existing_dir(path, root_len,
							       &(const char *){ NULL });
	const char *base = strrchr(path, '/') + 1;
	struct stat st;
	int r = dfd;

	if (r >= 0)
		r = ap_install_stat_file(dfd, base, &st);
	if (r >= 0 && with_data)
		r = ap_fs_read_beneath(dfd, base, AP_MAX_BLOB_SIZE, &hf.data, &hf.len);
	if (r < 0 && r != -ENOENT)
		return r;
	if (r >= 0) {
		hf.present = true;
		hf.mode = st.st_mode & 07777;
		hf.uid = st.st_uid;
		hf.gid = st.st_gid;
	}
	hf.path = strdup(path);
	if (!hf.path) {
		ap_host_file_clear(&hf);
		return -ENOMEM;
	}
	*ret = hf;
	return 0;
}

static bool same_file(const struct ap_host_file *want, const struct ap_host_file *have)
{
	return have->present && have->len == want->len && have->mode == want->mode &&
	       (want->uid == (uid_t)-1 || want->uid == have->uid) &&
	       (want->gid == (gid_t)-1 || want->gid == have->gid) &&
	       (want->len == 0 || memcmp(have->data, want->data, want->len) == 0);
}

int ap_install_put_back(const struct ap_host_file *hf)
{
	struct ap_host_file now = { 0 };
	_cleanup_close_ int dfd = -1;
	bool as_user;
	int r;

	if (!hf->present)
		return remove_one(hf->path, hf->root_len);
	/* Nothing to do when it is already so: a resumed rollback rewrites nothing. */
	r = ap_install_read_host(hf->path, hf->root_len, true, &now);
	if (r >= 0 && same_file(hf, &now)) {
		ap_host_file_clear(&now);
		return 0;
	}
	ap_host_file_clear(&now);
	dfd = enter_dest(hf->path, hf->root_len, ap_install_trusted_for(hf->uid), hf->gid,
			 AP_FS_WALK_CREATE, &as_user);
	if (dfd < 0)
		return dfd;
	r = ap_fs_write_atomic(dfd, strrchr(hf->path, '/') + 1, hf->data ? hf->data : "", hf->len,
			       hf->mode, hf->uid, hf->gid);
	if (as_user)
		leave_user();
	return r;
}

int ap_install_first_missing_dir(const char *path, size_t root_len, char **ret)
{
	struct ap_fs_unsafe u;
	int fd = ap_install_open_dir(path, root_len, 0, AP_FS_WALK_NO_CHECK, &u);

	*ret = NULL;
	if (fd >= 0) {
		close(fd);
		return 0; /* the directory of path exists */
	}
	if (fd != -ENOENT)
		return fd;
	*ret = strdup(u.path);
	return *ret ? 0 : -ENOMEM;
}

/* rmdir of dir and every directory below it, deepest first, as long as they hold nothing
 * else: what a restore takes back of the directories an apply created. */
static int remove_empty_tree(int pfd, const char *name)
{
	_cleanup_close_ int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	d = fdopendir(fd);
	if (!d)
		return -errno;
	fd = -1; /* owned by d now */
	while (r >= 0 && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		r = de->d_type == DT_DIR ? remove_empty_tree(dirfd(d), de->d_name) : -ENOTEMPTY;
	}
	closedir(d);
	if (r >= 0 && unlinkat(pfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		r = -errno;
	return r;
}

int ap_install_remove_created_dir(const char *dir, size_t root_len)
{
	_cleanup_free_ char *parent = ap_path_parent(dir);
	_cleanup_close_ int pfd = -1;
	int r;

	if (!parent)
		return -ENOMEM;
	pfd = ap_fs_open_dir_safe(parent, root_len, 0, AP_FS_WALK_NO_CHECK, 0,
				  &(struct ap_fs_unsafe){ 0 });
	r = pfd < 0 ? pfd : 0;
	if (r == -ENOENT)
		return 0;
	r = r < 0 ? r : remove_empty_tree(pfd, strrchr(dir, '/') + 1);
	return r == -ENOTEMPTY ? 0 : r; /* something else lives there now: it stays */
}
