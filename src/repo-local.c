/* The first fetch from a repository on this host (a path or file:// URL): the source's pack
 * files are streamed as they are through libgit2's indexer into the mirror, then the tip is
 * walked in the source and whatever the mirror still lacks (loose objects, objects behind
 * alternates) is packed from the source and indexed the same way. libgit2's local transport
 * instead repacks every object with a delta search and feeds the indexer a few bytes at a
 * time (one mmap, munmap and two pwrites per object): ~7× `git fetch` on 50,000 files.
 * Copying is what `git fetch` does too (pack-objects reuses the packed bytes).
 * Integrity: the indexer inflates every object, names it by the hash of what it holds and
 * checks each pack's trailer checksum, so a pack whose bytes under an id are another
 * object's puts them under their own id; the walk reads the source's commits and trees with
 * their hashes checked and finds the real object missing from the mirror; packing it from
 * the source then fails on its hash. The source is refused and no ref is written.
 * It deliberately never writes a ref (the caller does, after this returns) and is not used
 * once the mirror has the branch: an incremental fetch sends only the new objects. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>

#include "log.h"
#include "repo-private.h"
#include "util.h"

/* Bytes handed to the indexer per call: large enough that its per-call cost (it unmaps and
 * maps its window of the growing pack each time) is paid every few hundred objects, small
 * enough not to show in the peak RSS. */
#define COPY_CHUNK (256u * 1024u)

/* --- streaming packs through the indexer ---------------------------------------------- */

/* libgit2 failed on the source at path (on its pack named pack, or NULL): an OS error
 * (writing the mirror, a disk that fails) may pass; anything else is the source's bytes
 * (a pack or object that does not verify, an object missing), which a retry reads again. */
static int source_failed(const char *path, const char *pack)
{
	const git_error *e = git_error_last();

	if (e && e->klass == GIT_ERROR_NOMEMORY)
		return -ENOMEM;
	if (e && e->klass == GIT_ERROR_OS)
		return ap_log_error(-EIO, "failed to fetch '%s': %s", path, repo_git_msg());
	return ap_log_error(-EBADMSG, "failed to fetch '%s': %s%s%s is damaged (%s); it needs a "
			    "fix there, not a retry", path, pack ? "its pack '" : "the repository",
			    pack ? pack : "", pack ? "'" : "", repo_git_msg());
}

static int index_pack_fd(int fd, const char *path, const char *name, const char *dest_dir,
			 void *buf)
{
	git_indexer_options io;
	git_indexer_progress st = { 0 };
	git_indexer *idx = NULL;
	ssize_t n = 0;
	int k;

	k = git_indexer_options_init(&io, GIT_INDEXER_OPTIONS_VERSION);
	if (k >= 0)
		k = git_indexer_new(&idx, dest_dir, 0, NULL, &io);
	while (k >= 0 && (n = read(fd, buf, COPY_CHUNK)) > 0)
		k = git_indexer_append(idx, buf, (size_t)n, &st);
	if (k >= 0 && n < 0)
		k = ap_log_error(-errno, "failed to read '%s/%s': %s", path, name, strerror(errno));
	else if (k >= 0 && (k = git_indexer_commit(idx, &st)) >= 0)
		k = 1;
	else if (k < 0)
		k = source_failed(path, name);
	git_indexer_free(idx);
	return k;
}

/* A complete pack is "pack-<hash>.pack" with its ".idx" beside it (git writes the index
 * last); the pack is opened without following a symlink. Returns 1 if indexed, 0 if not a
 * complete pack. */
static int copy_one(int dfd, const char *src_dir, const char *name, const char *dest_dir,
		    void *buf)
{
	size_t len = strlen(name);
	_cleanup_free_ char *idx_name = NULL;
	struct stat st;
	int fd, k;

	if (!ap_startswith(name, "pack-") || len < 10 || strcmp(name + len - 5, ".pack") != 0)
		return 0;
	if (!(idx_name = ap_strdupf("%.*s.idx", (int)(len - 5), name)))
		return -ENOMEM;
	if (faccessat(dfd, idx_name, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && (errno == ENOENT || errno == ELOOP))
		return 0; /* gone (a repack) or a symlink: not ours to follow */
	if (fd < 0)
		return ap_log_error(-errno, "failed to open '%s/%s': %s", src_dir, name,
				    strerror(errno));
	if (fstat(fd, &st) < 0)
		k = ap_log_error(-errno, "failed to stat '%s/%s': %s", src_dir, name,
				 strerror(errno));
	else
		k = S_ISREG(st.st_mode) ? index_pack_fd(fd, src_dir, name, dest_dir, buf) : 0;
	close(fd);
	return k;
}

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

/* The number of packs copied from src_dir into dest_dir, or -errno. */
static int copy_packs(const char *src_dir, const char *dest_dir, void *buf)
{
	_cleanup_(closedirp) DIR *d = opendir(src_dir);
	struct dirent *de;
	int n = 0, k;

	if (!d)
		return errno == ENOENT ? 0 : ap_log_error(-errno, "failed to list '%s': %s",
							  src_dir, strerror(errno));
	while ((de = readdir(d)))
		if ((k = copy_one(dirfd(d), src_dir, de->d_name, dest_dir, buf)) < 0)
			return k;
		else
			n += k;
	return n;
}

/* A run killed while it indexed leaves libgit2's temporary pack ("pack_git2_*") and may
 * leave a lock file of its index; the caller holds the run lock, so any such file is a dead
 * run's. */
static void remove_temp_packs(const char *dir)
{
	_cleanup_(closedirp) DIR *d = opendir(dir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		size_t n = strlen(de->d_name);

		if ((ap_startswith(de->d_name, "pack_git2_") ||
		     (n > 5 && strcmp(de->d_name + n - 5, ".lock") == 0)) &&
		    unlinkat(dirfd(d), de->d_name, 0) == 0)
			ap_log_notice("removed '%s/%s', left by a run killed while it fetched", dir,
				      de->d_name);
	}
}

/* --- is the tip complete? ------------------------------------------------------------ */

/* The trees already checked, so that a history's shared subtrees are walked once. */
struct oid_set {
	git_oid *slot;
	size_t cap, n;
};

static size_t oid_hash(const git_oid *id)
{
	size_t h;

	memcpy(&h, id->id, sizeof(h));
	return h;
}

static bool oid_zero(const git_oid *id)
{
	static const git_oid zero;

	return memcmp(id, &zero, sizeof(zero)) == 0;
}

/* 1 if added, 0 if it was there, -ENOMEM. */
static int oid_set_add(struct oid_set *s, const git_oid *id)
{
	size_t i;

	if ((s->n + 1) * 2 > s->cap) {
		struct oid_set g = { .cap = s->cap ? s->cap * 2 : 1024 };

		if (!(g.slot = calloc(g.cap, sizeof(*g.slot))))
			return -ENOMEM;
		for (size_t j = 0; j < s->cap; j++)
			if (!oid_zero(&s->slot[j]))
				(void)oid_set_add(&g, &s->slot[j]);
		free(s->slot);
		*s = g;
	}
	for (i = oid_hash(id) & (s->cap - 1); !oid_zero(&s->slot[i]); i = (i + 1) & (s->cap - 1))
		if (git_oid_equal(&s->slot[i], id))
			return 0;
	git_oid_cpy(&s->slot[i], id);
	s->n++;
	return 1;
}

/* What the mirror lacks of a tip, found by walking the source: its commits and trees are
 * read there with their hashes checked, and every object they name is looked up in the
 * mirror (without libgit2's rescan of the pack directory on every miss: the odb was
 * refreshed once after the copy). */
struct missing {
	git_repository *src;
	git_odb *mirror;
	struct oid_set seen; /* trees walked */
	git_oid *ids;
	size_t n, cap;
};

static int need(struct missing *m, const git_oid *id)
{
	if (git_odb_exists_ext(m->mirror, id, GIT_ODB_LOOKUP_NO_REFRESH))
		return 0;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 256;
		git_oid *ids = reallocarray(m->ids, cap, sizeof(*ids));

		if (!ids)
			return -ENOMEM;
		m->ids = ids;
		m->cap = cap;
	}
	git_oid_cpy(&m->ids[m->n++], id);
	return 0;
}

static int walk_tree(struct missing *m, const git_oid *id)
{
	git_tree *t = NULL;
	int k = oid_set_add(&m->seen, id);

	if (k <= 0)
		return k;
	if ((k = need(m, id)) < 0 || (k = git_tree_lookup(&t, m->src, id)) < 0)
		return k;
	for (size_t i = 0, n = git_tree_entrycount(t); k >= 0 && i < n; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);

		if (git_tree_entry_type(e) == GIT_OBJECT_TREE)
			k = walk_tree(m, git_tree_entry_id(e));
		else if (git_tree_entry_type(e) == GIT_OBJECT_BLOB)
			k = need(m, git_tree_entry_id(e));
	}
	git_tree_free(t);
	return k;
}

/* <0: -ENOMEM, or libgit2's error (the source is damaged: an object missing or not what
 * its id says). */
static int find_missing(struct missing *m, const git_oid *tip)
{
	git_revwalk *w = NULL;
	git_commit *c = NULL;
	git_oid id;
	int k;

	if ((k = git_revwalk_new(&w, m->src)) >= 0)
		k = git_revwalk_push(w, tip);
	while (k >= 0 && (k = git_revwalk_next(&id, w)) == 0) {
		if ((k = need(m, &id)) >= 0 && (k = git_commit_lookup(&c, m->src, &id)) >= 0)
			k = walk_tree(m, git_commit_tree_id(c));
		git_commit_free(c);
		c = NULL;
	}
	git_revwalk_free(w);
	return k == GIT_ITEROVER ? 0 : k;
}

/* --- packing what is missing ------------------------------------------------------------ */

/* The packbuilder hands over a pack a few bytes at a time; the indexer gets whole chunks. */
struct chunker {
	git_indexer *idx;
	git_indexer_progress st;
	char *buf;
	size_t n;
};

static int chunk_flush(struct chunker *c)
{
	int k = c->n ? git_indexer_append(c->idx, c->buf, c->n, &c->st) : 0;

	c->n = 0;
	return k;
}

static int chunk_add(void *data, size_t len, void *payload)
{
	struct chunker *c = payload;
	int k;

	if (c->n + len > COPY_CHUNK && (k = chunk_flush(c)) < 0)
		return k;
	if (len >= COPY_CHUNK)
		return git_indexer_append(c->idx, data, len, &c->st);
	memcpy(c->buf + c->n, data, len);
	c->n += len;
	return 0;
}

/* A pack of the missing objects, read from the source with their hashes checked (no
 * delta search across the history: the objects are few, or the source had no packs). */
static int pack_missing(struct missing *m, const char *dest_dir, void *buf)
{
	git_indexer_options io;
	git_packbuilder *pb = NULL;
	struct chunker c = { .buf = buf };
	int k;

	if ((k = git_indexer_options_init(&io, GIT_INDEXER_OPTIONS_VERSION)) >= 0 &&
	    (k = git_indexer_new(&c.idx, dest_dir, 0, NULL, &io)) >= 0)
		k = git_packbuilder_new(&pb, m->src);
	for (size_t i = 0; k >= 0 && i < m->n; i++)
		k = git_packbuilder_insert(pb, &m->ids[i], NULL);
	if (k >= 0 && (k = git_packbuilder_foreach(pb, chunk_add, &c)) >= 0 &&
	    (k = chunk_flush(&c)) >= 0)
		k = git_indexer_commit(c.idx, &c.st);
	git_packbuilder_free(pb);
	git_indexer_free(c.idx);
	return k;
}

/* --- the first fetch ------------------------------------------------------------------- */

/* Finds and packs what the mirror still lacks of tip. */
static int complete(struct missing *m, const char *path, const char *to, const git_oid *tip,
		    void *buf)
{
	int k = find_missing(m, tip);

	if (k >= 0 && m->n > 0)
		k = pack_missing(m, to, buf);
	if (k < 0 && k != -ENOMEM)
		k = source_failed(path, NULL);
	return k;
}

static int fill(git_repository *src, struct ap_repo *r, const char *path, const char *from,
		const char *to, const git_oid *tip)
{
	_cleanup_free_ void *buf = malloc(COPY_CHUNK);
	struct missing m = { .src = src };
	struct stat st;
	int n, k;

	if (!buf)
		return -ENOMEM;
	/* Said here rather than by the indexer, whose failure to create its temporary file
	 * leaks (libgit2 1.5). */
	if (stat(to, &st) < 0 || (!S_ISDIR(st.st_mode) && (errno = ENOTDIR)) ||
	    access(to, W_OK) < 0)
		return ap_log_error(-EIO, "failed to fetch '%s': cannot write '%s': %s", path, to,
				    strerror(errno));
	remove_temp_packs(to);
	if ((n = copy_packs(from, to, buf)) < 0)
		return n;
	/* The indexer freed ~125 bytes per object in small blocks that glibc keeps (12.5 MB at
	 * 100,000 objects) under the maps of the walk below: handed back now, the first run's
	 * peak is the indexer's alone (100,000 files: 33.7 -> 28.6 MB, with the pack windows
	 * of repo-git.c 26.8 MB). Its result only says whether anything was released. */
	(void)malloc_trim(0);
	if (git_repository_odb(&m.mirror, r->git) < 0 || git_odb_refresh(m.mirror) < 0)
		k = ap_log_error(repo_git_errno(GIT_ERROR), "failed to read the mirror: %s",
				 repo_git_msg());
	else if ((k = complete(&m, path, to, tip, buf)) >= 0)
		ap_log_debug("copied %d pack(s) from '%s', packed %zu more object(s)", n, path,
			     m.n);
	git_odb_free(m.mirror);
	free(m.ids);
	free(m.seen.slot);
	return k < 0 ? k : 1;
}

int repo_local_first_fetch(struct ap_repo *r, const char *path, const git_oid *tip)
{
	git_repository *src = NULL;
	_cleanup_free_ char *from = NULL, *to = NULL;
	int k;

	/* Opened as libgit2 would (owner validation as set for this fetch, no search upwards). */
	if (git_repository_open_ext(&src, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL) < 0)
		return 0; /* the usual fetch says what is wrong with it */
	from = ap_strdupf("%sobjects/pack", git_repository_commondir(src));
	to = ap_strdupf("%sobjects/pack", git_repository_path(r->git));
	k = from && to ? fill(src, r, path, from, to, tip) : -ENOMEM;
	git_repository_free(src);
	return k;
}
