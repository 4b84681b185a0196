/* The backup store (see state-fileset.h): file sets of saved host files under the state directory,
 * each a manifest plus one copy per present file, and the pruning and free-space check of
 * backup/. Copies are written with ap_fs_write_atomic beneath the set's own directory, made
 * durable together (one syncfs) when the set is committed, before its manifest.
 *
 * Deliberately not here: reading or writing the managed host files (install.c), deciding
 * which backups to keep (the engine). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "state-fileset.h"
#include "fsutil.h"
#include "log.h"
#include "records.h"
#include "state-private.h"
#include "util.h"

/* --- file sets (backups, adopted originals) -------------------------------------------------
 *
 * manifest lines: "<id> present <mode> <uid> <gid> <owned> <root_len> <path>"
 *             or: "<id> absent - - - <owned> <root_len> <path>"
 *             or: "<id> absentdir - - - 0 <root_len> <path>" (a directory the apply creates)
 * Earlier versions wrote "<id> present <mode> <path>" / "<id> absent - <path>": read as owned,
 * owner unknown (left as it is on restore) and beneath "/". records.c parses and formats them. */

struct ap_fileset {
	struct ap_state *s;
	char *name;
	int dfd;
	struct ap_host_file *v;
	size_t n, cap;
	/* v by path (the first entry of a path), and the id the next copy gets: an apply adding
	 * n paths costs O(n), not a search of the set per path */
	struct ap_strindex index;
	unsigned next_id;
	bool dirty;
	bool unsynced; /* copies written since the last commit, not yet durable */
};

void ap_state_fileset_free(struct ap_fileset *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++)
		ap_host_file_clear(&f->v[i]);
	free(f->v);
	ap_strindex_clear(&f->index);
	if (f->dfd >= 0)
		close(f->dfd);
	free(f->name);
	free(f);
}

static int push_entry(struct ap_fileset *f, struct ap_host_file *e)
{
	struct ap_host_file *v = ap_grow(f->v, f->n, &f->cap, sizeof(*v));
	int r;

	if (!v)
		return -ENOMEM;
	f->v = v;
	r = ap_strindex_add(&f->index, e->path, f->n);
	if (r < 0)
		return r;
	v[f->n++] = *e;
	*e = (struct ap_host_file){ 0 };
	return 0;
}

/* The index of the entries read, and the next id: one past the ids before it, in the order
 * of the manifest, as each add computed it. */
static int index_entries(struct ap_fileset *f)
{
	int r = 0;

	f->cap = f->n;
	for (size_t i = 0; r >= 0 && i < f->n; i++) {
		r = ap_strindex_add(&f->index, f->v[i].path, i);
		if (f->v[i].id >= f->next_id)
			f->next_id = f->v[i].id + 1;
	}
	return r;
}

static int load_manifest(struct ap_fileset *f)
{
	_cleanup_free_ char *text = NULL;
	struct ap_records_error e;
	size_t len;
	int r = ap_fs_read_beneath(f->dfd, "manifest", AP_STATE_MAX_FILE, &text, &len);

	if (r == -ENOENT)
		return 0;
	if (r >= 0 && (r = ap_records_manifest_parse(text, &f->v, &f->n, &e)) == -EBADMSG)
		return ap_log_error(r, "'%s/%s/manifest' line %u %s", f->s->path, f->name, e.line,
				    e.what);
	if (r < 0)
		ap_log_error(r, "failed to read '%s/%s/manifest': %s", f->s->path, f->name,
			     strerror(-r));
	return r;
}

int ap_state_fileset_open(struct ap_state *s, const char *name, bool create,
			  struct ap_fileset **ret)
{
	_cleanup_(ap_state_fileset_freep) struct ap_fileset *f = calloc(1, sizeof(*f));
	int r;

	if (!f || !(f->name = strdup(name)))
		return -ENOMEM;
	f->s = s;
	f->dfd = create ? ap_fs_mkdirs_beneath(s->dirfd, name, 0700)
			: ap_fs_open_beneath(s->dirfd, name, O_RDONLY | O_DIRECTORY, 0);
	if (f->dfd == -ENOENT && !create)
		return -ENOENT;
	if (f->dfd < 0)
		return ap_log_error(f->dfd, "failed to open '%s/%s': %s", s->path, name,
				    strerror(-f->dfd));
	if (create)
		(void)ap_fs_remove_stale_temps(f->dfd, NULL); /* only ours are in there */
	r = load_manifest(f);
	if (r >= 0)
		r = index_entries(f);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(f);
	return 0;
}

size_t ap_state_fileset_count(const struct ap_fileset *f)
{
	return f->n;
}

const struct ap_host_file *ap_state_fileset_entry(const struct ap_fileset *f, size_t i)
{
	return i < f->n ? &f->v[i] : NULL;
}

const struct ap_host_file *ap_state_fileset_find(const struct ap_fileset *f, const char *path)
{
	size_t i;

	return ap_strindex_find(&f->index, path, &i) ? &f->v[i] : NULL;
}

int ap_state_fileset_add(struct ap_fileset *f, const struct ap_host_file *hf)
{
	struct ap_host_file e = { .root_len = hf->root_len, .present = hf->present,
				  .mode = hf->mode, .uid = hf->uid, .gid = hf->gid,
				  .owned = hf->owned, .dir = hf->dir, .id = f->next_id };
	char name[32];
	int r;

	if (ap_state_fileset_find(f, hf->path))
		return 0;
	snprintf(name, sizeof(name), "%u", e.id);
	if (hf->present) {
		/* Made durable all at once by the commit, before the manifest names them. */
		r = ap_fs_write_atomic_flags(f->dfd, name, hf->data ? hf->data : "", hf->len,
					     0600, (uid_t)-1, (gid_t)-1, AP_FS_NO_SYNC);
		f->unsynced = true;
		if (r < 0)
			return ap_log_error(r, "failed to save '%s' into '%s/%s': %s", hf->path,
					    f->s->path, f->name, strerror(-r));
	}
	e.path = strdup(hf->path);
	if (!e.path)
		return -ENOMEM;
	r = push_entry(f, &e); /* takes e */
	if (r < 0) {
		free(e.path);
		return r;
	}
	f->dirty = true;
	f->next_id++;
	return 0;
}

int ap_state_fileset_commit(struct ap_fileset *f)
{
	_cleanup_free_ char *text = NULL;
	int r;

	if (!f->dirty)
		return 0;
	/* One syncfs for every copy instead of an fsync of each and of the directory after
	 * each: a copy counts only once the manifest names it. */
	r = f->unsynced ? ap_fs_sync_fs(f->dfd) : 0;
	if (r >= 0)
		f->unsynced = false;
	if (r >= 0)
		r = ap_records_manifest_format(f->v, f->n, &text);
	if (r >= 0)
		r = ap_fs_write_atomic(f->dfd, "manifest", text, strlen(text), 0600, (uid_t)-1,
				       (gid_t)-1);
	if (r < 0)
		return ap_log_error(r, "failed to write '%s/%s/manifest': %s", f->s->path, f->name,
				    strerror(-r));
	f->dirty = false;
	return 0;
}

int ap_state_fileset_read(struct ap_fileset *f, const struct ap_host_file *e, char **ret,
			  size_t *ret_len)
{
	char name[32];
	int r;

	snprintf(name, sizeof(name), "%u", e->id);
	r = ap_fs_read_beneath(f->dfd, name, AP_MAX_BLOB_SIZE, ret, ret_len);
	if (r < 0)
		ap_log_error(r, "failed to read the saved copy of '%s' in '%s/%s': %s", e->path,
			     f->s->path, f->name, strerror(-r));
	return r;
}

const char *ap_state_backup_name(const char *commit, char buf[static 48])
{
	snprintf(buf, 48, "backup/%.40s", commit);
	return buf;
}

static bool keep_has(const char *const *keep, const char *name)
{
	for (size_t i = 0; keep && keep[i]; i++)
		if (*keep[i] && strcmp(keep[i], name) == 0)
			return true;
	return false;
}

int ap_state_backup_prune(struct ap_state *s, const char *const *keep)
{
	int fd = ap_fs_open_beneath(s->dirfd, "backup", O_RDONLY | O_DIRECTORY, 0), r = 0;
	DIR *d;

	if (fd == -ENOENT)
		return 0;
	if (fd < 0 || !(d = fdopendir(fd))) {
		r = fd < 0 ? fd : -errno;
		if (fd >= 0)
			close(fd);
		return ap_log_error(r, "failed to open '%s/backup': %s", s->path, strerror(-r));
	}
	for (struct dirent *de; r >= 0 && (de = readdir(d));) {
		_cleanup_free_ char *path = NULL;

		if (de->d_name[0] == '.' || keep_has(keep, de->d_name))
			continue;
		path = ap_strdupf("%s/backup/%s", s->path, de->d_name);
		r = path ? ap_fs_rm_rf(path) : -ENOMEM;
		if (r < 0)
			ap_log_error(r, "failed to remove old backup '%s': %s", path ? path
				     : de->d_name,
				     strerror(-r));
	}
	closedir(d);
	return r;
}

int ap_state_check_space(struct ap_state *s, uint64_t bytes, uint64_t files)
{
	struct statvfs v;
	uint64_t avail, need = bytes + files * 4096 + 64 * 1024; /* + manifest, journal */

	if (fstatvfs(s->dirfd, &v) < 0)
		return ap_log_error(-errno, "failed to check the free space of '%s': %s", s->path,
				    strerror(errno));
	avail = (uint64_t)v.f_bavail * v.f_frsize;
	if (avail < need || (v.f_files && v.f_favail < files + 8))
		return ap_log_error(-ENOSPC, "'%s' has %" PRIu64 " bytes and %llu inodes free; the "
					     "backup of this apply needs %" PRIu64 " bytes and %" PRIu64
					     " inodes", s->path, avail,
				    (unsigned long long)v.f_favail, need, files + 8);
	return 0;
}

