/* autopull's own state files under state_dir (see state.h for the layout). Each file has one
 * typed reader and writer here, so its format lives in one place. Writes go through
 * ap_fs_write_atomic only; this module never opens a managed host file.
 *
 * Deliberately not here: deciding what a journal means (apply.c), reading host files for a
 * backup (install.c), the heartbeat arithmetic (heartbeat.c). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "state.h"
#include "util.h"

#define STATE_MAX_FILE (16u * 1024 * 1024)
#define HISTORY_MAX_FILE (16u * 1024 * 1024)
#define REASON_MAX 512

struct ap_state {
	char *path;
	int dirfd;
	int lockfd;
};

/* How to put each file right when it cannot be read or parsed: a state file autopull cannot
 * trust stops the apply, so the message must say what to do. */
static const struct {
	const char *name, *repair;
} repairs[] = {
	{ "bad", "each line is '<commit> <usec> <reason>': fix or delete that line (deleting it "
		 "lets that rolled-back commit be applied again)" },
	{ "pin", "'autopull unpin' removes it" },
	{ "owned", "each line is an absolute path autopull installed: fix or delete that line (a "
		   "deleted path is no longer managed)" },
	{ "journal", "move it away to start over (the host may then be between two commits until "
		     "the next apply)" },
	{ "guard-tripped", "'autopull apply --override-guard --reason TEXT' clears it" },
	{ "expected", "it is computed again from the applied commit" },
	{ "last-apply", "delete it: the next apply writes it again" },
};

static const char *repair_of(const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(repairs); i++)
		if (strcmp(repairs[i].name, name) == 0)
			return repairs[i].repair;
	return "check its owner (autopull's user) and mode (0600)";
}

/* A line of name that does not parse. Returns -EBADMSG. */
static int bad_line(const struct ap_state *s, const char *name, unsigned line, const char *what)
{
	return ap_log_error(-EBADMSG, "'%s/%s' line %u %s; %s", s->path, name, line, what,
			    repair_of(name));
}

/* The next line of a text being cut in place, NULL at its end. An empty line is a line (it
 * counts for the line numbers in messages). */
static char *cut_line(char **cursor)
{
	char *l = *cursor, *nl;

	if (!l || !*l)
		return NULL;
	nl = strchr(l, '\n');
	if (nl) {
		*nl = '\0';
		*cursor = nl + 1;
	} else {
		*cursor = l + strlen(l);
	}
	return l;
}

/* A decimal number, strictly: digits only (no sign, no blanks, no base prefix), at most max.
 * Returns the end, or NULL (sscanf's %llu takes "-1" and wraps on overflow). */
static const char *parse_number(const char *p, unsigned long long max, unsigned long long *ret)
{
	unsigned long long v = 0;
	const char *start = p;

	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (d > max || v > (max - d) / 10)
			return NULL;
		v = v * 10 + d;
	}
	if (p == start)
		return NULL;
	*ret = v;
	return p;
}

/* The same, ending at a space (skipped) or at the end of the line. */
static const char *parse_word_number(const char *p, unsigned long long max,
				     unsigned long long *ret)
{
	p = parse_number(p, max, ret);
	if (!p || (*p != ' ' && *p != '\0'))
		return NULL;
	return *p == ' ' ? p + 1 : p;
}

int ap_state_open(const char *dir, struct ap_state **ret)
{
	struct ap_state *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->lockfd = -1;
	s->path = strdup(dir);
	if (!s->path) {
		free(s);
		return -ENOMEM;
	}
	s->dirfd = ap_fs_open_dir(dir, 1, 0700);
	if (s->dirfd < 0) {
		int r = ap_log_error(s->dirfd, "failed to open state directory '%s': %s", dir,
				     strerror(-s->dirfd));
		free(s->path);
		free(s);
		return r;
	}
	*ret = s;
	return 0;
}

void ap_state_free(struct ap_state *s)
{
	if (!s)
		return;
	if (s->lockfd >= 0)
		close(s->lockfd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->path);
	free(s);
}

const char *ap_state_path(const struct ap_state *s)
{
	return s->path;
}

/* --- locks ------------------------------------------------------------------------- */

static void report_holder(struct ap_state *s)
{
	char buf[32] = "";
	ssize_t n = pread(s->lockfd, buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	ap_log_error(-EAGAIN, "another autopull run holds the lock on '%s' (pid %s)", s->path,
		     *buf ? buf : "unknown");
}

/* flock(LOCK_EX) on fd, retrying every poll_usec until wait_sec passed: 0, -EAGAIN, or
 * -errno. */
static int flock_wait(int fd, unsigned wait_sec, unsigned poll_usec)
{
	unsigned long long deadline = ap_now_monotonic_usec() + wait_sec * 1000000ULL;

	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		if (ap_now_monotonic_usec() >= deadline)
			return -EAGAIN;
		usleep(poll_usec);
	}
	return 0;
}

/* The files the run lock protects; heartbeat's own are cleaned under its lock. */
static const char *const locked_files[] = { "applied", "journal", "owned", "bad", "overrides",
					    "restarted", "last-apply", "guard-tripped", "events",
					    "pin", "expected", "tick" };

int ap_state_lock(struct ap_state *s, unsigned wait_sec)
{
	char pid[32];
	int n, r;

	s->lockfd = ap_fs_open_beneath(s->dirfd, "lock", O_RDWR | O_CREAT, 0600);
	if (s->lockfd < 0)
		return ap_log_error(s->lockfd, "failed to open '%s/lock': %s", s->path,
				    strerror(-s->lockfd));
	r = flock_wait(s->lockfd, wait_sec, 50 * 1000);
	if (r == -EAGAIN) {
		report_holder(s);
		return r;
	}
	if (r < 0)
		return ap_log_error(r, "failed to lock '%s/lock': %s", s->path, strerror(-r));
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(s->lockfd, 0) < 0 || pwrite(s->lockfd, pid, (size_t)n, 0) != n)
		return ap_log_error(-errno, "failed to write '%s/lock': %m", s->path);
	/* A run killed inside an atomic write leaves its temp file; we hold the lock now, so
	 * no other writer of these files is alive. */
	for (size_t i = 0; i < ELEMENTSOF(locked_files); i++)
		(void)ap_fs_remove_stale_temps(s->dirfd, locked_files[i]);
	return 0;
}

int ap_state_lock_history(struct ap_state *s, unsigned wait_sec)
{
	int fd = ap_fs_open_beneath(s->dirfd, "heartbeat.lock", O_RDWR | O_CREAT, 0600), r;

	if (fd < 0)
		return ap_log_error(fd, "failed to open '%s/heartbeat.lock': %s", s->path, strerror(-fd));
	r = flock_wait(fd, wait_sec, 20 * 1000);
	if (r < 0) {
		close(fd);
		return ap_log_error(r, "failed to lock the heartbeat history in '%s': %s", s->path,
				    r == -EAGAIN ? "it stays locked" : strerror(-r));
	}
	(void)ap_fs_remove_stale_temps(s->dirfd, "heartbeat");
	return fd;
}

int ap_state_scratch_dir(struct ap_state *s, char **ret)
{
	_cleanup_free_ char *path = ap_strdupf("%s/stage", s->path);
	int r;

	if (!path)
		return -ENOMEM;
	r = ap_fs_rm_rf(path);
	if (r >= 0 && mkdirat(s->dirfd, "stage", 0700) < 0)
		r = -errno;
	if (r < 0)
		return ap_log_error(r, "failed to create '%s': %s", path, strerror(-r));
	*ret = TAKE_PTR(path);
	return 0;
}

/* --- plain files ----------------------------------------------------------------------- */

static int write_file_flags(struct ap_state *s, const char *name, const char *text,
			    unsigned flags)
{
	int r = ap_fs_write_atomic_flags(s->dirfd, name, text, strlen(text), 0600, (uid_t)-1,
					 (gid_t)-1, flags);

	if (r < 0)
		ap_log_error(r, "failed to write '%s/%s': %s", s->path, name, strerror(-r));
	return r;
}

/* What the next apply depends on: durable before the call returns. */
static int write_file(struct ap_state *s, const char *name, const char *text)
{
	return write_file_flags(s, name, text, 0);
}

/* What only reports or caches: never torn, but a power cut may bring back the version
 * before (the next state write syncs the directory). Saves an fsync per file per tick. */
static int write_report(struct ap_state *s, const char *name, const char *text)
{
	return write_file_flags(s, name, text, AP_FS_NO_DIRSYNC);
}

/* -ENOENT quietly; other errors logged. */
static int read_file(struct ap_state *s, const char *name, size_t max, char **ret)
{
	size_t len;
	int r = ap_fs_read_beneath(s->dirfd, name, max, ret, &len);

	if (r < 0 && r != -ENOENT)
		ap_log_error(r, "failed to read '%s/%s': %s (it must be a regular file autopull's "
			     "user can read; %s)", s->path, name, strerror(-r), repair_of(name));
	return r;
}

static int remove_file(struct ap_state *s, const char *name)
{
	int r = ap_fs_unlink_beneath(s->dirfd, name);

	if (r < 0)
		ap_log_error(r, "failed to remove '%s/%s': %s", s->path, name, strerror(-r));
	return r;
}

static int append_line(struct ap_state *s, const char *name, const char *line)
{
	_cleanup_free_ char *old = NULL, *text = NULL;
	int r = read_file(s, name, STATE_MAX_FILE, &old);

	if (r < 0 && r != -ENOENT)
		return r;
	text = ap_strdupf("%s%s", old ? old : "", line);
	return text ? write_file(s, name, text) : -ENOMEM;
}

/* Reasons and messages come from operators and unit properties: one printable line. */
static char *one_line(const char *s)
{
	size_t n = strnlen(s ? s : "", REASON_MAX);
	char *v = strndup(s ? s : "", n);

	for (char *c = v; c && *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = ' ';
	return v;
}

static bool is_oid(const char *s, size_t n)
{
	if (n != AP_OID_HEXSZ)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdef", s[i]))
			return false;
	return true;
}

int ap_state_read_applied(struct ap_state *s, char ret[AP_OID_HEXSZ + 1])
{
	_cleanup_free_ char *text = NULL;
	int r = read_file(s, "applied", 4096, &text);

	if (r < 0)
		return r;
	if (!is_oid(text, strcspn(text, "\n")))
		return ap_log_error(-EBADMSG, "'%s/applied' does not hold a commit id", s->path);
	memcpy(ret, text, AP_OID_HEXSZ);
	ret[AP_OID_HEXSZ] = '\0';
	return 0;
}

int ap_state_write_applied(struct ap_state *s, const char *oid)
{
	char line[AP_OID_HEXSZ + 2];

	snprintf(line, sizeof(line), "%s\n", oid);
	return write_file(s, "applied", line);
}

/* --- journal ---------------------------------------------------------------------------- */

int ap_state_read_journal(struct ap_state *s, struct ap_journal *ret)
{
	_cleanup_free_ char *text = NULL;
	const char *why = NULL;
	unsigned line = 0;
	int r = read_file(s, "journal", STATE_MAX_FILE, &text);
	char where[32] = " (incomplete)";

	if (r < 0)
		return r;
	r = ap_journal_parse_at(text, ret, &why, &line);
	if (r == -EBADMSG && line)
		snprintf(where, sizeof(where), " at line %u", line);
	if (r == -EBADMSG)
		return ap_log_error(r, "'%s/journal' is %s%s; %s", s->path, why ? why : "malformed",
				    where, repair_of("journal"));
	return r;
}

int ap_state_write_journal(struct ap_state *s, const struct ap_journal *j)
{
	_cleanup_free_ char *text = NULL;
	int r = ap_journal_format(j, &text);

	return r < 0 ? r : write_file(s, "journal", text);
}

int ap_state_clear_journal(struct ap_state *s)
{
	return remove_file(s, "journal");
}

/* --- inventory -------------------------------------------------------------------------- */

int ap_state_parse_owned(const char *text, char ***ret)
{
	_cleanup_free_ char *copy = strdup(text ? text : "");
	_cleanup_strv_free_ char **v = NULL;
	int r;

	if (!copy)
		return -ENOMEM;
	for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!ap_path_is_normalized_absolute(l) || strcmp(l, "/") == 0)
			return -EBADMSG;
		if ((r = ap_strv_push_unique(&v, l)) < 0)
			return r;
	}
	*ret = TAKE_PTR(v);
	return 0;
}

int ap_state_read_owned(struct ap_state *s, char ***ret)
{
	_cleanup_free_ char *text = NULL;
	int r = read_file(s, "owned", STATE_MAX_FILE, &text);

	if (r == -ENOENT) {
		*ret = NULL;
		return 0;
	}
	if (r >= 0 && (r = ap_state_parse_owned(text, ret)) == -EBADMSG) {
		char *cur = text, *l;
		unsigned n = 0;

		while ((l = cut_line(&cur)) &&
		       (n++, !*l || (ap_path_is_normalized_absolute(l) && strcmp(l, "/") != 0)))
			;
		ap_log_error(r, "'%s/owned' holds a line that is not an absolute path: line %u; %s",
			     s->path, n, repair_of("owned"));
	}
	return r;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int ap_state_write_owned(struct ap_state *s, char *const *owned)
{
	_cleanup_strv_free_ char **sorted = NULL;
	struct ap_buf b = { 0 };
	int r = ap_strv_copy(owned, &sorted);

	if (r < 0)
		return r;
	if (sorted)
		qsort(sorted, ap_strv_length(sorted), sizeof(char *), cmp_str);
	r = ap_buf_append(&b, "", 0);
	for (size_t i = 0; r >= 0 && sorted && sorted[i]; i++)
		r = ap_buf_printf(&b, "%s\n", sorted[i]);
	if (r >= 0)
		r = write_file(s, "owned", b.data);
	ap_buf_free(&b);
	return r;
}

/* --- file sets (backups, adopted originals) -------------------------------------------------
 *
 * manifest lines: "<id> present <mode> <uid> <gid> <owned> <root_len> <path>"
 *             or: "<id> absent - - - <owned> <root_len> <path>"
 *             or: "<id> absentdir - - - 0 <root_len> <path>" (a directory the apply creates)
 * Earlier versions wrote "<id> present <mode> <path>" / "<id> absent - <path>": read as owned,
 * owner unknown (left as it is on restore) and beneath "/". */

struct ap_fileset {
	struct ap_state *s;
	char *name;
	int dfd;
	struct ap_host_file *v;
	size_t n;
	bool dirty;
};

void ap_state_fileset_free(struct ap_fileset *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++)
		ap_host_file_clear(&f->v[i]);
	free(f->v);
	if (f->dfd >= 0)
		close(f->dfd);
	free(f->name);
	free(f);
}

static int push_entry(struct ap_fileset *f, struct ap_host_file *e)
{
	struct ap_host_file *v = realloc(f->v, (f->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	f->v = v;
	v[f->n++] = *e;
	*e = (struct ap_host_file){ 0 };
	return 0;
}

/* "-" (the user autopull runs as) or a uid/gid. */
static int parse_id(const char *w, unsigned *ret)
{
	unsigned long long v;
	const char *end;

	if (strcmp(w, "-") == 0) {
		*ret = (unsigned)-1;
		return 0;
	}
	if (!(end = parse_number(w, (unsigned)-2, &v)) || *end)
		return -EBADMSG;
	*ret = (unsigned)v;
	return 0;
}

static bool is_mode(const char *w)
{
	return *w && strlen(w) <= 4 && strspn(w, "01234567") == strlen(w);
}

/* "<id> <kind> <mode> <uid> <gid> <owned> <root_len> <path>", or before owners were kept
 * "<id> <kind> <mode> <path>". The path is the rest of the line and starts with '/', which no
 * other word does. */
static int parse_manifest_line(char *l, struct ap_host_file *e)
{
	char *w[7], *path = l;
	unsigned long long id, owned = 1, root_len = 0;
	unsigned uid = (unsigned)-1, gid = (unsigned)-1;
	const char *end;
	size_t n = 0;

	while (n < ELEMENTSOF(w) && path && *path != '/')
		w[n++] = strsep(&path, " ");
	if (!path || *path != '/' || (n != 3 && n != 7) ||
	    !(end = parse_number(w[0], (unsigned)-1, &id)) || *end)
		return -EBADMSG;
	if (n == 7 && (parse_id(w[3], &uid) < 0 || parse_id(w[4], &gid) < 0 ||
		       !(end = parse_number(w[5], 1, &owned)) || *end ||
		       !(end = parse_number(w[6], SIZE_MAX, &root_len)) || *end))
		return -EBADMSG;
	e->dir = strcmp(w[1], "absentdir") == 0;
	e->present = strcmp(w[1], "present") == 0;
	/* A created directory may be the configured root or above it: no relation to check. */
	if (!ap_path_is_normalized_absolute(path) || (e->present && !is_mode(w[2])) ||
	    (!e->dir && (root_len >= strlen(path) || (root_len && path[root_len] != '/'))) ||
	    (!e->present && strcmp(w[1], "absent") != 0 && !e->dir))
		return -EBADMSG;
	e->uid = (uid_t)uid;
	e->gid = (gid_t)gid;
	e->id = (unsigned)id;
	e->mode = e->present ? (mode_t)strtoul(w[2], NULL, 8) & 07777 : 0;
	e->owned = (unsigned)owned;
	e->root_len = (size_t)root_len;
	e->path = strdup(path);
	return e->path ? 0 : -ENOMEM;
}

static int load_manifest(struct ap_fileset *f)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = ap_fs_read_beneath(f->dfd, "manifest", STATE_MAX_FILE, &text, &len);

	if (r == -ENOENT)
		return 0;
	for (char *save = NULL, *l = r < 0 ? NULL : strtok_r(text, "\n", &save); l && r >= 0;
	     l = strtok_r(NULL, "\n", &save)) {
		struct ap_host_file e = { 0 };

		r = parse_manifest_line(l, &e);
		if (r >= 0)
			r = push_entry(f, &e);
		ap_host_file_clear(&e);
	}
	if (r < 0)
		ap_log_error(r, "failed to read '%s/%s/manifest': %s", f->s->path, f->name, strerror(-r));
	return r;
}

int ap_state_fileset_open(struct ap_state *s, const char *name, bool create, struct ap_fileset **ret)
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
		return ap_log_error(f->dfd, "failed to open '%s/%s': %s", s->path, name, strerror(-f->dfd));
	if (create)
		(void)ap_fs_remove_stale_temps(f->dfd, NULL); /* only ours are in there */
	r = load_manifest(f);
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
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->v[i].path, path) == 0)
			return &f->v[i];
	return NULL;
}

int ap_state_fileset_add(struct ap_fileset *f, const struct ap_host_file *hf)
{
	struct ap_host_file e = { .root_len = hf->root_len, .present = hf->present,
				  .mode = hf->mode, .uid = hf->uid, .gid = hf->gid,
				  .owned = hf->owned, .dir = hf->dir, .id = 0 };
	char name[32];
	int r;

	if (ap_state_fileset_find(f, hf->path))
		return 0;
	for (size_t i = 0; i < f->n; i++)
		if (f->v[i].id >= e.id)
			e.id = f->v[i].id + 1;
	snprintf(name, sizeof(name), "%u", e.id);
	if (hf->present) {
		r = ap_fs_write_atomic(f->dfd, name, hf->data ? hf->data : "", hf->len, 0600,
				       (uid_t)-1, (gid_t)-1);
		if (r < 0)
			return ap_log_error(r, "failed to save '%s' into '%s/%s': %s", hf->path,
					    f->s->path, f->name, strerror(-r));
	}
	e.path = strdup(hf->path);
	if (!e.path)
		return -ENOMEM;
	f->dirty = true;
	return push_entry(f, &e);
}

int ap_state_fileset_commit(struct ap_fileset *f)
{
	struct ap_buf m = { 0 };
	int r = ap_buf_append(&m, "", 0);

	if (!f->dirty)
		return 0;
	for (size_t i = 0; r >= 0 && i < f->n; i++) {
		const struct ap_host_file *e = &f->v[i];

		char uid[24] = "-", gid[24] = "-";

		if (e->uid != (uid_t)-1)
			snprintf(uid, sizeof(uid), "%u", (unsigned)e->uid);
		if (e->gid != (gid_t)-1)
			snprintf(gid, sizeof(gid), "%u", (unsigned)e->gid);
		if (e->present)
			r = ap_buf_printf(&m, "%u present %04o %s %s %d %zu %s\n", e->id,
					  (unsigned)e->mode, uid, gid, e->owned, e->root_len, e->path);
		else
			r = ap_buf_printf(&m, "%u %s - - - %d %zu %s\n", e->id,
					  e->dir ? "absentdir" : "absent", e->owned, e->root_len, e->path);
	}
	if (r >= 0)
		r = ap_fs_write_atomic(f->dfd, "manifest", m.data, m.len, 0600, (uid_t)-1, (gid_t)-1);
	ap_buf_free(&m);
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
			ap_log_error(r, "failed to remove old backup '%s': %s", path ? path : de->d_name,
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
		return ap_log_error(-errno, "failed to check the free space of '%s': %m", s->path);
	avail = (uint64_t)v.f_bavail * v.f_frsize;
	if (avail < need || (v.f_files && v.f_favail < files + 8))
		return ap_log_error(-ENOSPC, "'%s' has %" PRIu64 " bytes and %llu inodes free; the "
					     "backup of this apply needs %" PRIu64 " bytes and %" PRIu64
					     " inodes", s->path, avail,
				    (unsigned long long)v.f_favail, need, files + 8);
	return 0;
}

/* --- the guard's files -------------------------------------------------------------------- */

int ap_state_add_bad(struct ap_state *s, const char *commit, const char *why)
{
	_cleanup_free_ char *clean = one_line(why), *line = NULL;

	if (!clean)
		return -ENOMEM;
	line = ap_strdupf("%.40s %llu %s\n", commit, ap_now_realtime_usec(), clean);
	return line ? append_line(s, "bad", line) : -ENOMEM;
}

/* "<commit> <usec> <why>": why (within l), or NULL when l is not such a line. */
static const char *parse_bad_line(const char *l, unsigned long long *ret_usec)
{
	if (!is_oid(l, strcspn(l, " ")) || l[AP_OID_HEXSZ] != ' ')
		return NULL;
	return parse_word_number(l + AP_OID_HEXSZ + 1, UINT64_MAX, ret_usec);
}

int ap_state_find_bad(struct ap_state *s, const char *commit, char **ret_why)
{
	_cleanup_free_ char *bad = NULL, *found = NULL;
	char *cur, *l;
	unsigned n = 0;
	int r = read_file(s, "bad", STATE_MAX_FILE, &bad);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	/* Every line, not only up to a match: a damaged line may be the commit's own. */
	for (cur = bad; (l = cut_line(&cur));) {
		unsigned long long usec;
		const char *why = parse_bad_line(l, &usec);

		n++;
		if (!why)
			return bad_line(s, "bad", n, "is malformed");
		if (!found && strncmp(l, commit, AP_OID_HEXSZ) == 0 && !(found = strdup(why)))
			return -ENOMEM;
	}
	if (!found)
		return 0;
	if (ret_why)
		*ret_why = TAKE_PTR(found);
	return 1;
}

void ap_bad_free(struct ap_bad *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].why);
	free(v);
}

/* Appends commit (40 hex digits), usec and why to the list *v of *n. */
static int bad_push(struct ap_bad **v, size_t *n, const char *commit, uint64_t usec,
		    const char *why)
{
	struct ap_bad *w = realloc(*v, (*n + 1) * sizeof(**v));

	if (!w)
		return -ENOMEM;
	*v = w;
	w[*n] = (struct ap_bad){ .realtime_usec = usec, .why = strdup(why) };
	memcpy(w[*n].commit, commit, AP_OID_HEXSZ);
	w[*n].commit[AP_OID_HEXSZ] = '\0';
	return w[(*n)++].why ? 0 : -ENOMEM;
}

/* A line of "bad": "<sha> <usec> <why>". A damaged line is left out: status shows what it
 * can; an apply refuses (ap_state_find_bad). */
static bool parse_bad(const char *l, const void *unused, const char **ret_sha, uint64_t *ret_usec,
		      const char **ret_why)
{
	unsigned long long usec;
	const char *why = parse_bad_line(l, &usec);

	if (!why)
		return false;
	*ret_sha = l, *ret_usec = usec, *ret_why = why;
	return true;
}

/* A line of "overrides" of the kind: "<usec> <kind> <sha> <reason>". */
static bool parse_override(const char *l, const void *kind, const char **ret_sha,
			   uint64_t *ret_usec, const char **ret_why)
{
	size_t klen = strlen(kind);
	unsigned long long usec;
	const char *sha, *p = parse_word_number(l, UINT64_MAX, &usec);

	if (!p || strncmp(p, kind, klen) != 0 || p[klen] != ' ')
		return false;
	sha = p + klen + 1;
	if (!is_oid(sha, strcspn(sha, " ")) || sha[AP_OID_HEXSZ] != ' ')
		return false;
	*ret_sha = sha, *ret_usec = usec, *ret_why = sha + AP_OID_HEXSZ + 1;
	return true;
}

/* The lines of file name that parse gives a commit, time and reason for, oldest first. */
static int list_commits(struct ap_state *s, const char *name,
			bool (*parse)(const char *, const void *, const char **, uint64_t *,
				      const char **),
			const void *userdata, struct ap_bad **ret, size_t *ret_n)
{
	_cleanup_free_ char *text = NULL;
	struct ap_bad *v = NULL;
	size_t n = 0;
	int r = read_file(s, name, STATE_MAX_FILE, &text);

	*ret = NULL;
	*ret_n = 0;
	if (r == -ENOENT)
		return 0;
	for (char *save = NULL, *l = r < 0 ? NULL : strtok_r(text, "\n", &save); l && r >= 0;
	     l = strtok_r(NULL, "\n", &save)) {
		const char *sha, *why;
		uint64_t usec;

		if (parse(l, userdata, &sha, &usec, &why))
			r = bad_push(&v, &n, sha, usec, why);
	}
	if (r < 0) {
		ap_bad_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int ap_state_list_bad(struct ap_state *s, struct ap_bad **ret, size_t *ret_n)
{
	return list_commits(s, "bad", parse_bad, NULL, ret, ret_n);
}

/* Lines of a log file and the newest realtime usec in word usec_word of them. */
static int summary(struct ap_state *s, const char *name, unsigned usec_word, unsigned *ret_n,
		   uint64_t *ret_last)
{
	_cleanup_free_ char *text = NULL;
	int r = read_file(s, name, STATE_MAX_FILE, &text);

	*ret_n = 0;
	*ret_last = 0;
	if (r == -ENOENT)
		return 0;
	for (char *save = NULL, *l = r < 0 ? NULL : strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char *w = l;
		unsigned long long t;

		for (unsigned i = 0; i < usec_word && w; i++)
			w = (w = strchr(w, ' ')) ? w + 1 : NULL;
		if (w && parse_word_number(w, UINT64_MAX, &t) && t > *ret_last)
			*ret_last = t;
		(*ret_n)++;
	}
	return r < 0 ? r : 0;
}

int ap_state_summary_bad(struct ap_state *s, unsigned *ret_n, uint64_t *ret_last_usec)
{
	return summary(s, "bad", 1, ret_n, ret_last_usec);
}

int ap_state_summary_overrides(struct ap_state *s, unsigned *ret_n, uint64_t *ret_last_usec)
{
	return summary(s, "overrides", 0, ret_n, ret_last_usec);
}

int ap_state_add_override(struct ap_state *s, const char *kind, const char *commit,
			  const char *reason)
{
	_cleanup_free_ char *clean = one_line(reason), *line = NULL;

	if (!clean)
		return -ENOMEM;
	line = ap_strdupf("%llu %s %.40s %s\n", ap_now_realtime_usec(), kind, commit, clean);
	return line ? append_line(s, "overrides", line) : -ENOMEM;
}

int ap_state_list_overrides(struct ap_state *s, const char *kind, struct ap_bad **ret,
			    size_t *ret_n)
{
	return list_commits(s, "overrides", parse_override, kind, ret, ret_n);
}

int ap_state_read_restarted(struct ap_state *s, char ***ret)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_strv_free_ char **v = NULL;
	int r = read_file(s, "restarted", STATE_MAX_FILE, &text);

	*ret = NULL;
	if (r == -ENOENT)
		return 0;
	for (char *save = NULL, *l = r < 0 ? NULL : strtok_r(text, "\n", &save); l && r >= 0;
	     l = strtok_r(NULL, "\n", &save))
		r = ap_strv_push_unique(&v, l);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(v);
	return 0;
}

int ap_state_write_restarted(struct ap_state *s, char *const *units)
{
	struct ap_buf b = { 0 };
	int r = ap_buf_append(&b, "", 0);

	for (size_t i = 0; r >= 0 && units && units[i]; i++)
		r = ap_buf_printf(&b, "%s\n", units[i]);
	if (r >= 0)
		r = write_file(s, "restarted", b.data);
	ap_buf_free(&b);
	return r;
}

int ap_state_read_last_apply(struct ap_state *s, struct ap_last_apply *ret)
{
	_cleanup_free_ char *text = NULL;
	unsigned long long ts, ok;
	const char *p;
	int r = read_file(s, "last-apply", 4096, &text);

	if (r < 0)
		return r;
	text[strcspn(text, "\n")] = '\0';
	if (!(p = parse_word_number(text, UINT64_MAX, &ts)) || !(p = parse_number(p, 1, &ok)) || *p)
		return bad_line(s, "last-apply", 1, "is malformed");
	*ret = (struct ap_last_apply){ .realtime_usec = ts, .ok = ok != 0 };
	return 0;
}

int ap_state_write_last_apply(struct ap_state *s, const struct ap_last_apply *la)
{
	char line[64];

	snprintf(line, sizeof(line), "%llu %d\n", (unsigned long long)la->realtime_usec, la->ok);
	return write_report(s, "last-apply", line);
}

int ap_state_read_tripped(struct ap_state *s, char **ret_why)
{
	return read_file(s, "guard-tripped", STATE_MAX_FILE, ret_why);
}

int ap_state_write_tripped(struct ap_state *s, const char *why)
{
	_cleanup_free_ char *clean = one_line(why), *line = NULL;

	line = clean ? ap_strdupf("%s\n", clean) : NULL;
	return line ? write_file(s, "guard-tripped", line) : -ENOMEM;
}

int ap_state_clear_tripped(struct ap_state *s)
{
	return remove_file(s, "guard-tripped");
}

/* --- heartbeat history ------------------------------------------------------------------ */

int ap_state_discard_history(struct ap_state *s, const char *why)
{
	int r = ap_fs_move_aside(s->dirfd, "heartbeat", ".old");

	if (r < 0 && r != -ENOENT)
		return ap_log_error(r, "failed to move '%s/heartbeat' aside: %s", s->path, strerror(-r));
	ap_log_warning("heartbeat history '%s/heartbeat' %s; moved it to heartbeat.old and started "
		       "a new one", s->path, why);
	return 0;
}

int ap_state_read_history(struct ap_state *s, char **ret)
{
	size_t len;
	int r = ap_fs_read_beneath(s->dirfd, "heartbeat", HISTORY_MAX_FILE, ret, &len);

	if (r == -EFBIG || r == -EISDIR || r == -EINVAL || r == -ELOOP) {
		/* A history we cannot read must not switch the guard off, or block it forever. */
		int k = ap_state_discard_history(s, r == -EFBIG ? "is too large to read"
								 : "is not a regular file");
		return k < 0 ? k : -ENOENT;
	}
	if (r < 0 && r != -ENOENT)
		ap_log_error(r, "failed to read '%s/heartbeat': %s", s->path, strerror(-r));
	return r;
}

int ap_state_write_history(struct ap_state *s, const char *text)
{
	return write_report(s, "heartbeat", text);
}

/* --- events ------------------------------------------------------------------------------- */

#define EVENTS_MAX_FILE (2u * 1024 * 1024)

void ap_events_free(struct ap_event *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ap_event_clear(&v[i]);
	free(v);
}

/* The lines of text, the oldest first; keeps at most max (the newest). */
static int last_lines(char *text, size_t max, char ***ret)
{
	_cleanup_strv_free_ char **v = NULL;
	size_t n = 0;
	int r = 0;

	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && r >= 0;
	     l = strtok_r(NULL, "\n", &save), n++)
		r = ap_strv_push(&v, l);
	if (r < 0)
		return r;
	if (n > max) {
		for (size_t i = 0; i < n - max; i++)
			free(v[i]);
		memmove(v, v + (n - max), (max + 1) * sizeof(char *));
	}
	*ret = TAKE_PTR(v);
	return 0;
}

int ap_state_add_event(struct ap_state *s, const struct ap_event *e)
{
	_cleanup_free_ char *old = NULL, *line = NULL;
	_cleanup_strv_free_ char **keep = NULL;
	struct ap_buf b = { 0 };
	int r = read_file(s, "events", EVENTS_MAX_FILE, &old);

	if (r == -EFBIG)
		r = -ENOENT; /* start over rather than stop recording */
	if (r < 0 && r != -ENOENT)
		return r;
	r = ap_event_format(e, &line);
	if (r >= 0 && old)
		r = last_lines(old, AP_EVENTS_MAX - 1, &keep);
	for (size_t i = 0; r >= 0 && keep && keep[i]; i++)
		r = ap_buf_printf(&b, "%s\n", keep[i]);
	if (r >= 0)
		r = ap_buf_append(&b, line, strlen(line) + 1);
	if (r >= 0)
		r = write_report(s, "events", b.data);
	ap_buf_free(&b);
	return r;
}

int ap_state_read_events(struct ap_state *s, struct ap_event **ret, size_t *ret_n)
{
	_cleanup_free_ char *text = NULL;
	struct ap_event *v = NULL;
	size_t n = 0, lineno = 0;
	int r = read_file(s, "events", EVENTS_MAX_FILE, &text);

	*ret = NULL;
	*ret_n = 0;
	if (r == -ENOENT)
		return 0;
	for (char *save = NULL, *l = r < 0 ? NULL : strtok_r(text, "\n", &save); l && r >= 0;
	     l = strtok_r(NULL, "\n", &save)) {
		struct ap_event e;
		struct ap_event *w;

		lineno++;
		if (ap_event_parse(l, &e) < 0) {
			ap_log_warning("'%s/events' line %zu is malformed; skipped", s->path, lineno);
			continue;
		}
		w = realloc(v, (n + 1) * sizeof(*v));
		if (!w) {
			ap_event_clear(&e);
			r = -ENOMEM;
			break;
		}
		v = w;
		v[n++] = e;
	}
	if (r < 0) {
		ap_events_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* --- pin ----------------------------------------------------------------------------------- */

void ap_pin_clear(struct ap_pin *p)
{
	free(p->reason);
	*p = (struct ap_pin){ 0 };
}

int ap_state_read_pin(struct ap_state *s, struct ap_pin *ret)
{
	_cleanup_free_ char *text = NULL;
	unsigned long long usec;
	const char *reason = NULL;
	char *cur, *l;
	int r = read_file(s, "pin", 8192, &text);

	if (r < 0)
		return r;
	cur = text;
	l = cut_line(&cur);
	if (l && is_oid(l, strcspn(l, " ")) && l[AP_OID_HEXSZ] == ' ')
		reason = parse_word_number(l + AP_OID_HEXSZ + 1, UINT64_MAX, &usec);
	if (!reason)
		return bad_line(s, "pin", 1, "is malformed");
	if (cut_line(&cur))
		return bad_line(s, "pin", 2, "is one line too many");
	*ret = (struct ap_pin){ .realtime_usec = usec, .reason = strdup(reason) };
	memcpy(ret->commit, l, AP_OID_HEXSZ);
	ret->commit[AP_OID_HEXSZ] = '\0';
	return ret->reason ? 0 : -ENOMEM;
}

int ap_state_write_pin(struct ap_state *s, const struct ap_pin *p)
{
	_cleanup_free_ char *clean = one_line(p->reason), *line = NULL;

	line = clean ? ap_strdupf("%.40s %llu %s\n", p->commit,
				  (unsigned long long)p->realtime_usec, clean) : NULL;
	return line ? write_file(s, "pin", line) : -ENOMEM;
}

int ap_state_clear_pin(struct ap_state *s)
{
	return remove_file(s, "pin");
}

/* --- counters -------------------------------------------------------------------------------- */

int ap_state_read_counters(struct ap_state *s, struct ap_counter **ret, size_t *ret_n)
{
	_cleanup_free_ char *text = NULL;
	struct ap_counter *v = NULL;
	size_t n = 0;
	int r = read_file(s, "counters", 65536, &text);

	*ret = NULL;
	*ret_n = 0;
	if (r == -ENOENT)
		return 0;
	for (char *save = NULL, *l = r < 0 ? NULL : strtok_r(text, "\n", &save); l && r >= 0;
	     l = strtok_r(NULL, "\n", &save)) {
		struct ap_counter c = { 0 }, *w;
		unsigned long long value;
		size_t nl = strcspn(l, " ");
		const char *end;

		/* a damaged line only loses that counter */
		if (nl == 0 || nl >= sizeof(c.name) || l[nl] != ' ' ||
		    !(end = parse_number(l + nl + 1, UINT64_MAX, &value)) || *end)
			continue;
		memcpy(c.name, l, nl);
		c.value = value;
		w = realloc(v, (n + 1) * sizeof(*v));
		if (!w) {
			r = -ENOMEM;
			break;
		}
		v = w;
		v[n++] = c;
	}
	if (r < 0) {
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

uint64_t ap_state_counter(struct ap_state *s, const char *name)
{
	_cleanup_free_ struct ap_counter *v = NULL;
	size_t n = 0;

	if (ap_state_read_counters(s, &v, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return v[i].value;
	return 0;
}

static int count_locked(struct ap_state *s, const char *name)
{
	_cleanup_free_ struct ap_counter *v = NULL;
	struct ap_buf b = { 0 };
	size_t n = 0;
	bool found = false;
	int r = ap_state_read_counters(s, &v, &n);

	for (size_t i = 0; r >= 0 && i < n; i++) {
		found |= strcmp(v[i].name, name) == 0;
		r = ap_buf_printf(&b, "%s %llu\n", v[i].name,
				  (unsigned long long)v[i].value + (strcmp(v[i].name, name) == 0));
	}
	if (r >= 0 && !found)
		r = ap_buf_printf(&b, "%s 1\n", name);
	if (r >= 0)
		r = write_report(s, "counters", b.data);
	ap_buf_free(&b);
	return r;
}

int ap_state_count(struct ap_state *s, const char *name)
{
	int fd, r;

	if (strlen(name) >= sizeof(((struct ap_counter *)0)->name) || strpbrk(name, " \n"))
		return -EINVAL;
	fd = ap_fs_open_beneath(s->dirfd, "counters.lock", O_RDWR | O_CREAT, 0600);
	if (fd < 0)
		return ap_log_error(fd, "failed to open '%s/counters.lock': %s", s->path, strerror(-fd));
	r = flock_wait(fd, 5, 10 * 1000);
	if (r >= 0) {
		(void)ap_fs_remove_stale_temps(s->dirfd, "counters");
		r = count_locked(s, name);
	} else
		ap_log_error(r, "failed to count '%s' in '%s': the counters stay locked", name, s->path);
	close(fd);
	return r;
}

/* --- expected files ------------------------------------------------------------------------- */

void ap_expected_set_clear(struct ap_expected_set *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->v[i].path);
		free(e->v[i].repo_path);
		free(e->v[i].owner);
		free(e->v[i].group);
	}
	free(e->v);
	*e = (struct ap_expected_set){ 0 };
}

/* "<oid> <mode> <owner|-> <group|-> <root_len> <repo_path> <path>"; paths have no spaces
 * (repository paths are checked, host paths are derived from them and the config). */
static int parse_expected(char *l, struct ap_expected *e)
{
	char *w[7];
	unsigned long long root_len;
	const char *end;

	for (size_t i = 0; i < ELEMENTSOF(w); i++)
		if (!(w[i] = strsep(&l, " ")) || !*w[i])
			return -EBADMSG;
	if (l || !is_oid(w[0], strlen(w[0])) || strlen(w[1]) > 4 ||
	    strspn(w[1], "01234567") != strlen(w[1]) ||
	    !(end = parse_number(w[4], SIZE_MAX, &root_len)) || *end ||
	    !ap_path_is_normalized_absolute(w[6]) || root_len >= strlen(w[6]))
		return -EBADMSG;
	memcpy(e->oid, w[0], sizeof(e->oid));
	e->mode = (mode_t)strtoul(w[1], NULL, 8) & 07777;
	e->root_len = (size_t)root_len;
	e->path = strdup(w[6]);
	e->repo_path = strdup(w[5]);
	e->owner = strcmp(w[2], "-") ? strdup(w[2]) : NULL;
	e->group = strcmp(w[3], "-") ? strdup(w[3]) : NULL;
	return e->path && e->repo_path ? 0 : -ENOMEM;
}

int ap_state_read_expected(struct ap_state *s, struct ap_expected_set *ret)
{
	_cleanup_free_ char *text = NULL;
	struct ap_expected_set set = { 0 };
	int r = read_file(s, "expected", STATE_MAX_FILE, &text);
	unsigned n = 1;
	char *cur, *l;

	if (r < 0)
		return r;
	cur = text;
	l = cut_line(&cur);
	if (!l || strncmp(l, "commit ", 7) != 0 || !is_oid(l + 7, strlen(l + 7)))
		return bad_line(s, "expected", 1, "is not 'commit <id>'");
	memcpy(set.commit, l + 7, sizeof(set.commit));
	/* Written before the configuration was part of the key: never matches, so computed again. */
	if (cur && ap_startswith(cur, "config ")) {
		l = cut_line(&cur);
		n++;
		if (strlen(l + 7) != sizeof(set.config) - 1)
			return bad_line(s, "expected", n, "is not 'config <digest>'");
		memcpy(set.config, l + 7, sizeof(set.config));
	}
	for (; r >= 0 && (l = cut_line(&cur)); n++) {
		struct ap_expected *w = realloc(set.v, (set.n + 1) * sizeof(*w));

		if (!w) {
			r = -ENOMEM;
			break;
		}
		set.v = w;
		w[set.n] = (struct ap_expected){ 0 };
		r = parse_expected(l, &w[set.n]);
		set.n++;
	}
	if (r < 0) {
		ap_expected_set_clear(&set);
		return r == -EBADMSG ? bad_line(s, "expected", n, "is malformed") : r;
	}
	*ret = set;
	return 0;
}

int ap_state_write_expected(struct ap_state *s, const struct ap_expected_set *e)
{
	struct ap_buf b = { 0 };
	int r = ap_buf_printf(&b, "commit %s\nconfig %s\n", e->commit, e->config);

	for (size_t i = 0; r >= 0 && i < e->n; i++) {
		const struct ap_expected *x = &e->v[i];

		r = ap_buf_printf(&b, "%s %04o %s %s %zu %s %s\n", x->oid, (unsigned)x->mode,
				  x->owner ? x->owner : "-", x->group ? x->group : "-", x->root_len,
				  x->repo_path, x->path);
	}
	if (r >= 0)
		r = write_report(s, "expected", b.data);
	ap_buf_free(&b);
	return r;
}

int ap_state_write_tick(struct ap_state *s, const struct ap_tick *t)
{
	struct ap_tick old;
	char text[64];

	/* Most ticks see what the last one saw: skip the fsync then. */
	ap_state_read_tick(s, &old);
	if (old.pending == t->pending && old.drift == t->drift)
		return 0;
	snprintf(text, sizeof(text), "pending %ld\ndrift %ld\n", t->pending, t->drift);
	return write_report(s, "tick", text);
}

void ap_state_read_tick(struct ap_state *s, struct ap_tick *ret)
{
	_cleanup_free_ char *text = NULL;

	*ret = (struct ap_tick){ -1, -1 };
	if (read_file(s, "tick", 256, &text) >= 0 &&
	    sscanf(text, "pending %ld drift %ld", &ret->pending, &ret->drift) != 2)
		*ret = (struct ap_tick){ -1, -1 };
}
