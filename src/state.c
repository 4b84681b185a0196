/* autopull's own state files under state_dir (see state.h for the layout): the directory, its
 * locks, and one typed reader and writer per file. The formats live in records.c (and journal.c,
 * events.c), the backup store in state-fileset.c; this file does the I/O and says what to do about
 * a file that cannot be read. Writes go through ap_fs_write_atomic only; this module never opens a
 * managed host file.
 *
 * Deliberately not here: deciding what a journal means (engine.c, see journal.h), reading host
 * files for a backup (install.c), the heartbeat arithmetic (heartbeat.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "records.h"
#include "state-private.h"
#include "state.h"
#include "util.h"

#define STATE_MAX_FILE AP_STATE_MAX_FILE

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
	{ "verified", "delete it: the commits it listed are verified again" },
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

/* A file that records.c could not parse. Returns -EBADMSG. */
static int bad_record(const struct ap_state *s, const char *name, const struct ap_records_error *e)
{
	return bad_line(s, name, e->line, e->what ? e->what : "is malformed");
}

int ap_state_open(const char *dir, struct ap_state **ret)
{
	struct ap_state *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->lockfd = s->counters_lockfd = -1;
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

static void reports_clear(struct ap_state *s)
{
	for (size_t i = 0; i < s->n_reports; i++) {
		free(s->reports[i].name);
		free(s->reports[i].text);
	}
	free(s->reports);
	s->reports = NULL;
	s->n_reports = 0;
}

void ap_state_free(struct ap_state *s)
{
	if (!s)
		return;
	(void)ap_state_reports_commit(s);
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
					    "pin", "expected", "tick", "fleet" };

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
		return ap_log_error(-errno, "failed to write '%s/lock': %s", s->path,
				    strerror(errno));
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
		return ap_log_error(fd, "failed to open '%s/heartbeat.lock': %s", s->path,
				    strerror(-fd));
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
int ap_state_file_write(struct ap_state *s, const char *name, const char *text)
{
	return write_file_flags(s, name, text, 0);
}

static struct ap_state_report *report_find(struct ap_state *s, const char *name)
{
	for (size_t i = 0; i < s->n_reports; i++)
		if (strcmp(s->reports[i].name, name) == 0)
			return &s->reports[i];
	return NULL;
}

/* Kept for the batch: the newest text of each name. */
static int report_keep(struct ap_state *s, const char *name, const char *text)
{
	struct ap_state_report *v = report_find(s, name);
	char *t = strdup(text);

	if (!t)
		return -ENOMEM;
	if (v) {
		free(v->text);
		v->text = t;
		return 0;
	}
	v = realloc(s->reports, (s->n_reports + 1) * sizeof(*v));
	if (!v || !(v[s->n_reports].name = strdup(name))) {
		free(t);
		if (v)
			s->reports = v;
		return -ENOMEM;
	}
	s->reports = v;
	v[s->n_reports++].text = t;
	return 0;
}

/* What only reports or caches: never torn, but a power cut may bring back the version
 * before (the next state write syncs the directory). Saves an fsync per file per tick. */
int ap_state_file_report(struct ap_state *s, const char *name, const char *text)
{
	int r = s->batching ? report_keep(s, name, text) : 0;

	if (r < 0)
		return ap_log_error(r, "failed to keep '%s/%s': %s", s->path, name, strerror(-r));
	if (s->batching)
		return 0;
	return write_file_flags(s, name, text, AP_FS_NO_DIRSYNC);
}

static int counters_lock(struct ap_state *s)
{
	int fd = ap_fs_open_beneath(s->dirfd, "counters.lock", O_RDWR | O_CREAT, 0600), r;

	if (fd < 0)
		return ap_log_error(fd, "failed to open '%s/counters.lock': %s", s->path,
				    strerror(-fd));
	r = flock_wait(fd, 5, 10 * 1000);
	if (r < 0) {
		close(fd);
		return ap_log_error(r, "failed to lock the counters in '%s': %s", s->path,
				    strerror(-r));
	}
	(void)ap_fs_remove_stale_temps(s->dirfd, "counters");
	return fd;
}

/* The counters stay locked until the commit: a heartbeat counting meanwhile waits instead of
 * having its count overwritten by ours. Without the lock, nothing is kept: every report is
 * written at once, as without a batch. */
void ap_state_reports_begin(struct ap_state *s)
{
	int fd = counters_lock(s);

	s->batching = fd >= 0;
	s->counters_lockfd = fd;
}

/* Every kept report as a temp file, one syncfs for all of them, then the renames: never
 * torn, as one by one, for one sync instead of one per file. */
int ap_state_reports_commit(struct ap_state *s)
{
	char (*tmp)[NAME_MAX + 1] = s->n_reports ? calloc(s->n_reports, sizeof(*tmp)) : NULL;
	size_t n = 0;
	int r = s->n_reports && !tmp ? -ENOMEM : 0;

	s->batching = false;
	for (; r >= 0 && n < s->n_reports; n++) {
		const struct ap_state_report *p = &s->reports[n];

		r = ap_fs_write_temp(s->dirfd, p->name, p->text, strlen(p->text), 0600, (uid_t)-1,
				     (gid_t)-1, AP_FS_NO_SYNC, tmp[n]);
	}
	if (r >= 0 && n > 0)
		r = ap_fs_sync_fs(s->dirfd);
	for (size_t i = 0; i < n; i++) {
		if (r < 0)
			(void)unlinkat(s->dirfd, tmp[i], 0); /* already failing */
		else
			r = ap_fs_rename_temp(s->dirfd, tmp[i], s->reports[i].name);
	}
	if (r < 0)
		ap_log_error(r, "failed to write the reports in '%s': %s", s->path, strerror(-r));
	if (s->counters_lockfd >= 0)
		close(s->counters_lockfd);
	s->counters_lockfd = -1;
	free(tmp);
	reports_clear(s);
	return r;
}

/* -ENOENT quietly; other errors logged. */
int ap_state_file_read(struct ap_state *s, const char *name, size_t max, char **ret)
{
	const struct ap_state_report *p = s->batching ? report_find(s, name) : NULL;
	size_t len;
	int r;

	if (p)
		return (*ret = strdup(p->text)) ? 0 : -ENOMEM;
	r = ap_fs_read_beneath(s->dirfd, name, max, ret, &len);
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
	int r = ap_state_file_read(s, name, STATE_MAX_FILE, &old);

	if (r < 0 && r != -ENOENT)
		return r;
	text = ap_strdupf("%s%s", old ? old : "", line);
	return text ? ap_state_file_write(s, name, text) : -ENOMEM;
}

/* Reasons and messages come from operators and unit properties: one printable line. */
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
	int r = ap_state_file_read(s, "applied", 4096, &text);

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
	return ap_state_file_write(s, "applied", line);
}

/* --- journal ---------------------------------------------------------------------------- */

int ap_state_read_journal(struct ap_state *s, struct ap_journal *ret)
{
	_cleanup_free_ char *text = NULL;
	const char *why = NULL;
	unsigned line = 0;
	int r = ap_state_file_read(s, "journal", STATE_MAX_FILE, &text);
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

	return r < 0 ? r : ap_state_file_write(s, "journal", text);
}

int ap_state_clear_journal(struct ap_state *s)
{
	return remove_file(s, "journal");
}

/* --- inventory -------------------------------------------------------------------------- */

int ap_state_read_owned(struct ap_state *s, char ***ret)
{
	_cleanup_free_ char *text = NULL;
	struct ap_records_error e;
	int r = ap_state_file_read(s, "owned", STATE_MAX_FILE, &text);

	if (r == -ENOENT) {
		*ret = NULL;
		return 0;
	}
	if (r >= 0 && (r = ap_records_owned_parse(text, ret, &e)) == -EBADMSG)
		ap_log_error(r, "'%s/owned' holds a line that is not an absolute path: line %u; %s",
			     s->path, e.line, repair_of("owned"));
	return r;
}

int ap_state_write_owned(struct ap_state *s, char *const *owned)
{
	_cleanup_free_ char *text = NULL;
	int r = ap_records_owned_format(owned, &text);

	return r < 0 ? r : ap_state_file_write(s, "owned", text);
}

/* --- the guard's files -------------------------------------------------------------------- */

int ap_state_add_bad(struct ap_state *s, const char *commit, const char *why)
{
	_cleanup_free_ char *line = NULL;
	int r = ap_records_bad_format(commit, ap_now_realtime_usec(), why, &line);

	return r < 0 ? r : append_line(s, "bad", line);
}

/* Every line, not only up to a match: a damaged line may be the commit's own. */
static int read_bad_strict(struct ap_state *s, struct ap_bad **ret, size_t *ret_n)
{
	_cleanup_free_ char *text = NULL;
	struct ap_records_error e;
	int r = ap_state_file_read(s, "bad", STATE_MAX_FILE, &text);

	*ret = NULL;
	*ret_n = 0;
	if (r == -ENOENT)
		return 0;
	if (r >= 0 && (r = ap_records_bad_parse(text, true, ret, ret_n, &e)) == -EBADMSG)
		return bad_record(s, "bad", &e);
	return r;
}

static const struct ap_bad *bad_find(const struct ap_bad *v, size_t n, const char *commit)
{
	for (size_t i = 0; i < n; i++)
		if (strncmp(v[i].commit, commit, AP_OID_HEXSZ) == 0)
			return &v[i];
	return NULL;
}

int ap_state_find_bad(struct ap_state *s, const char *commit, char **ret_why)
{
	struct ap_bad *v = NULL;
	const struct ap_bad *b;
	size_t n = 0;
	int r = read_bad_strict(s, &v, &n);

	if (r >= 0 && (b = bad_find(v, n, commit))) {
		r = 1;
		if (ret_why && !(*ret_why = strdup(b->why)))
			r = -ENOMEM;
	}
	ap_bad_free(v, n);
	return r;
}

/* A damaged line of bad is left out here: status shows what it can; an apply refuses
 * (ap_state_find_bad). */
int ap_state_list_bad(struct ap_state *s, struct ap_bad **ret, size_t *ret_n)
{
	_cleanup_free_ char *text = NULL;
	int r = ap_state_file_read(s, "bad", STATE_MAX_FILE, &text);

	*ret = NULL;
	*ret_n = 0;
	if (r == -ENOENT)
		return 0;
	return r < 0 ? r : ap_records_bad_parse(text, false, ret, ret_n, NULL);
}

/* Lines of a log file and the newest realtime usec in word usec_word of them. */
static int summary(struct ap_state *s, const char *name, unsigned usec_word, unsigned *ret_n,
		   uint64_t *ret_last)
{
	_cleanup_free_ char *text = NULL;
	int r = ap_state_file_read(s, name, STATE_MAX_FILE, &text);

	*ret_n = 0;
	*ret_last = 0;
	if (r == -ENOENT)
		return 0;
	return r < 0 ? r : ap_records_summary(text, usec_word, ret_n, ret_last);
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
	_cleanup_free_ char *line = NULL;
	int r = ap_records_override_format(ap_now_realtime_usec(), kind, commit, reason, &line);

	return r < 0 ? r : append_line(s, "overrides", line);
}

int ap_state_list_overrides(struct ap_state *s, const char *kind, struct ap_bad **ret,
			    size_t *ret_n)
{
	_cleanup_free_ char *text = NULL;
	int r = ap_state_file_read(s, "overrides", STATE_MAX_FILE, &text);

	*ret = NULL;
	*ret_n = 0;
	if (r == -ENOENT)
		return 0;
	return r < 0 ? r : ap_records_overrides_parse(text, kind, ret, ret_n, NULL);
}

int ap_state_read_restarted(struct ap_state *s, char ***ret)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_strset_ struct ap_strset v = { 0 };
	int r = ap_state_file_read(s, "restarted", STATE_MAX_FILE, &text);

	*ret = NULL;
	if (r == -ENOENT)
		return 0;
	for (char *save = NULL, *l = r < 0 ? NULL : strtok_r(text, "\n", &save); l && r >= 0;
	     l = strtok_r(NULL, "\n", &save))
		r = ap_strset_add(&v, l);
	if (r < 0)
		return r;
	*ret = ap_strset_take(&v);
	return 0;
}

int ap_state_write_restarted(struct ap_state *s, char *const *units)
{
	struct ap_buf b = { 0 };
	int r = ap_buf_append(&b, "", 0);

	for (size_t i = 0; r >= 0 && units && units[i]; i++)
		r = ap_buf_printf(&b, "%s\n", units[i]);
	if (r >= 0)
		r = ap_state_file_write(s, "restarted", b.data);
	ap_buf_clear(&b);
	return r;
}

int ap_state_read_last_apply(struct ap_state *s, struct ap_last_apply *ret)
{
	_cleanup_free_ char *text = NULL;
	struct ap_records_error e;
	int r = ap_state_file_read(s, "last-apply", 4096, &text);

	if (r >= 0 && (r = ap_records_last_apply_parse(text, ret, &e)) == -EBADMSG)
		return bad_record(s, "last-apply", &e);
	return r;
}

int ap_state_write_last_apply(struct ap_state *s, const struct ap_last_apply *la)
{
	_cleanup_free_ char *text = NULL;
	int r = ap_records_last_apply_format(la, &text);

	return r < 0 ? r : ap_state_file_report(s, "last-apply", text);
}

int ap_state_read_tripped(struct ap_state *s, char **ret_why)
{
	return ap_state_file_read(s, "guard-tripped", STATE_MAX_FILE, ret_why);
}

int ap_state_write_tripped(struct ap_state *s, const char *why)
{
	_cleanup_free_ char *clean = ap_records_one_line(why), *line = NULL;

	line = clean ? ap_strdupf("%s\n", clean) : NULL;
	return line ? ap_state_file_write(s, "guard-tripped", line) : -ENOMEM;
}

int ap_state_read_probes(struct ap_state *s, char **ret)
{
	return ap_state_file_read(s, "probes", STATE_MAX_FILE, ret);
}

int ap_state_write_probes(struct ap_state *s, const char *text)
{
	return ap_state_file_report(s, "probes", text);
}

int ap_state_clear_tripped(struct ap_state *s)
{
	return remove_file(s, "guard-tripped");
}

/* --- pin ----------------------------------------------------------------------------------- */

int ap_state_read_pin(struct ap_state *s, struct ap_pin *ret)
{
	_cleanup_free_ char *text = NULL;
	struct ap_records_error e;
	int r = ap_state_file_read(s, "pin", 8192, &text);

	if (r >= 0 && (r = ap_records_pin_parse(text, ret, &e)) == -EBADMSG)
		return bad_record(s, "pin", &e);
	return r;
}

int ap_state_write_pin(struct ap_state *s, const struct ap_pin *p)
{
	_cleanup_free_ char *text = NULL;
	int r = ap_records_pin_format(p, &text);

	return r < 0 ? r : ap_state_file_write(s, "pin", text);
}

int ap_state_clear_pin(struct ap_state *s)
{
	return remove_file(s, "pin");
}

/* --- counters -------------------------------------------------------------------------------- */

int ap_state_read_counters(struct ap_state *s, struct ap_counter **ret, size_t *ret_n)
{
	_cleanup_free_ char *text = NULL;
	int r = ap_state_file_read(s, "counters", 65536, &text);

	*ret = NULL;
	*ret_n = 0;
	if (r == -ENOENT)
		return 0;
	/* a damaged line only loses that counter */
	return r < 0 ? r : ap_records_counters_parse(text, ret, ret_n, NULL);
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
	_cleanup_free_ char *text = NULL;
	size_t n = 0, i;
	int r = ap_state_read_counters(s, &v, &n);

	if (r < 0)
		return r;
	for (i = 0; i < n && strcmp(v[i].name, name) != 0; i++)
		;
	if (i < n) {
		v[i].value++;
	} else {
		struct ap_counter *w = realloc(v, (n + 1) * sizeof(*w));

		if (!w)
			return -ENOMEM;
		v = w;
		v[n] = (struct ap_counter){ .value = 1 };
		snprintf(v[n].name, sizeof(v[n].name), "%s", name);
		n++;
	}
	r = ap_records_counters_format(v, n, &text);
	return r < 0 ? r : ap_state_file_report(s, "counters", text);
}

int ap_state_count(struct ap_state *s, const char *name)
{
	int fd, r;

	if (!ap_records_counter_name_ok(name))
		return -EINVAL;
	if (s->counters_lockfd >= 0)
		return count_locked(s, name); /* a batch holds the lock */
	fd = counters_lock(s);
	if (fd < 0)
		return fd;
	r = count_locked(s, name);
	close(fd);
	return r;
}

/* --- expected files, tick ------------------------------------------------------------------- */

int ap_state_read_expected(struct ap_state *s, struct ap_expected_set *ret)
{
	_cleanup_free_ char *text = NULL;
	struct ap_records_error e;
	int r = ap_state_file_read(s, "expected", STATE_MAX_FILE, &text);

	if (r >= 0 && (r = ap_records_expected_parse(text, ret, &e)) == -EBADMSG)
		return bad_record(s, "expected", &e);
	return r;
}

int ap_state_write_expected(struct ap_state *s, const struct ap_expected_set *e)
{
	_cleanup_free_ char *text = NULL;
	int r = ap_records_expected_format(e, &text);

	return r < 0 ? r : ap_state_file_report(s, "expected", text);
}

int ap_state_write_tick(struct ap_state *s, const struct ap_tick *t)
{
	_cleanup_free_ char *text = NULL;
	struct ap_tick old;
	int r;

	/* Most ticks see what the last one saw: skip the fsync then. */
	ap_state_read_tick(s, &old);
	if (old.pending == t->pending && old.drift == t->drift)
		return 0;
	r = ap_records_tick_format(t, &text);
	return r < 0 ? r : ap_state_file_report(s, "tick", text);
}

/* Only for the metrics: a tick file that cannot be read or parsed reads as "not known". */
void ap_state_read_tick(struct ap_state *s, struct ap_tick *ret)
{
	_cleanup_free_ char *text = NULL;

	if (ap_state_file_read(s, "tick", 256, &text) < 0 || ap_records_tick_parse(text, ret,
										   NULL) < 0)
		*ret = (struct ap_tick){ -1, -1 };
}

int ap_state_write_fleet(struct ap_state *s, const struct ap_fleet_tick *t)
{
	_cleanup_free_ char *text = NULL;
	int r = ap_records_fleet_format(t, &text);

	return r < 0 ? r : ap_state_file_report(s, "fleet", text);
}

/* Only for the metrics, like the tick: -ENOENT on a host without a fleet. */
int ap_state_read_fleet(struct ap_state *s, struct ap_fleet_tick *ret)
{
	_cleanup_free_ char *text = NULL;
	int r = ap_state_file_read(s, "fleet", 256, &text);

	return r < 0 ? r : ap_records_fleet_parse(text, ret, NULL);
}

/* --- the trust cache ------------------------------------------------------------------------ */

int ap_state_read_verified(struct ap_state *s, size_t max, char **ret)
{
	return ap_state_file_read(s, "verified", max, ret);
}

int ap_state_write_verified(struct ap_state *s, const char *text)
{
	return ap_state_file_write(s, "verified", text);
}

/* --- one load ------------------------------------------------------------------------------ */

void ap_state_snapshot_clear(struct ap_state_snapshot *snap)
{
	ap_strv_free(snap->owned);
	ap_pin_clear(&snap->pin);
	ap_journal_clear(&snap->journal);
	ap_bad_free(snap->bad, snap->n_bad);
	free(snap->tripped);
	ap_bad_free(snap->skips, snap->n_skips);
	*snap = (struct ap_state_snapshot){ 0 };
}

/* r, or 0 with *ret_found false when the file was missing. */
static int optional(int r, bool *ret_found)
{
	if (ret_found)
		*ret_found = r >= 0;
	return r == -ENOENT ? 0 : r;
}

int ap_state_load(struct ap_state *s, struct ap_state_snapshot *ret)
{
	struct ap_state_snapshot snap = { 0 };
	int r = optional(ap_state_read_applied(s, snap.applied), NULL);

	if (r >= 0)
		r = ap_state_read_owned(s, &snap.owned);
	if (r >= 0)
		r = optional(ap_state_read_pin(s, &snap.pin), &snap.pinned);
	if (r >= 0)
		r = optional(ap_state_read_journal(s, &snap.journal), &snap.has_journal);
	/* The two that refuse on their own when damaged (logged, naming the file and line): the
	 * run decides what a list it cannot read means (see struct ap_state_snapshot). */
	if (r >= 0) {
		snap.bad_error = read_bad_strict(s, &snap.bad, &snap.n_bad);
		snap.bad_error = snap.bad_error == -ENOENT ? 0 : snap.bad_error;
		snap.tripped_error = optional(ap_state_read_tripped(s, &snap.tripped), NULL);
		snap.skips_error = ap_state_list_overrides(s, "trust-skip", &snap.skips,
							   &snap.n_skips);
	}
	if (r < 0) {
		ap_state_snapshot_clear(&snap);
		return r;
	}
	*ret = snap;
	return 0;
}

const struct ap_bad *ap_state_snapshot_find_bad(const struct ap_state_snapshot *snap,
						const char *commit)
{
	return bad_find(snap->bad, snap->n_bad, commit);
}
