/* autopull's own state files under state_dir (see state.h for the layout). Writes go
 * through ap_fs_write_atomic only; this module never touches managed host files except to
 * read them into a backup. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "state.h"
#include "util.h"

#define STATE_MAX_FILE (16u * 1024 * 1024)

struct ap_state {
	char *path;
	int dirfd;
	int lockfd;
};

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
	return 0;
}

static int write_file(struct ap_state *s, const char *name, const char *text)
{
	int r = ap_fs_write_atomic(s->dirfd, name, text, strlen(text), 0600, (uid_t)-1, (gid_t)-1);

	if (r < 0)
		ap_log_error(r, "failed to write '%s/%s': %s", s->path, name, strerror(-r));
	return r;
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

/* Reads "<sha>" (or "-" for none) from the line starting with key in text. */
static int parse_oid_line(const char *text, const char *key, char ret[AP_OID_HEXSZ + 1])
{
	const char *p = text;
	size_t klen = strlen(key);

	for (; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		size_t n;

		if (strncmp(p, key, klen) != 0 || p[klen] != ' ')
			continue;
		p += klen + 1;
		n = strcspn(p, "\n");
		if (n == 1 && *p == '-') {
			ret[0] = '\0';
			return 0;
		}
		if (!is_oid(p, n))
			return -EBADMSG;
		memcpy(ret, p, n);
		ret[n] = '\0';
		return 0;
	}
	return -EBADMSG;
}

int ap_state_read_applied(struct ap_state *s, char ret[AP_OID_HEXSZ + 1])
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = ap_fs_read_beneath(s->dirfd, "applied", 4096, &text, &len);

	if (r == -ENOENT)
		return r;
	if (r < 0)
		return ap_log_error(r, "failed to read '%s/applied': %s", s->path, strerror(-r));
	len = strcspn(text, "\n");
	if (!is_oid(text, len))
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

int ap_state_write_journal(struct ap_state *s, const char *from, const char *to,
			   const char *actions)
{
	_cleanup_free_ char *text = ap_strdupf("from %s\nto %s\n%s", *from ? from : "-", to,
					       actions ? actions : "");

	return text ? write_file(s, "journal", text) : -ENOMEM;
}

int ap_state_read_journal(struct ap_state *s, char ret_from[AP_OID_HEXSZ + 1],
			  char ret_to[AP_OID_HEXSZ + 1], char **ret_body)
{
	const char *body;
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = ap_fs_read_beneath(s->dirfd, "journal", STATE_MAX_FILE, &text, &len);

	if (r == -ENOENT)
		return r;
	if (r < 0)
		return ap_log_error(r, "failed to read '%s/journal': %s", s->path, strerror(-r));
	if (parse_oid_line(text, "from", ret_from) < 0 || parse_oid_line(text, "to", ret_to) < 0 ||
	    !*ret_to)
		return ap_log_error(-EBADMSG, "'%s/journal' is malformed", s->path);
	body = strchr(text, '\n');
	body = body ? strchr(body + 1, '\n') : NULL;
	*ret_body = strdup(body ? body + 1 : "");
	return *ret_body ? 0 : -ENOMEM;
}

int ap_state_clear_journal(struct ap_state *s)
{
	int r = ap_fs_unlink_beneath(s->dirfd, "journal");

	if (r < 0)
		ap_log_error(r, "failed to remove '%s/journal': %s", s->path, strerror(-r));
	return r;
}

int ap_state_read_owned(struct ap_state *s, char ***ret)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_strv_free_ char **v = NULL;
	size_t len;
	int r = ap_fs_read_beneath(s->dirfd, "owned", STATE_MAX_FILE, &text, &len);

	if (r == -ENOENT) {
		*ret = NULL;
		return 0;
	}
	if (r < 0)
		return ap_log_error(r, "failed to read '%s/owned': %s", s->path, strerror(-r));
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!ap_path_is_normalized_absolute(l))
			return ap_log_error(-EBADMSG, "'%s/owned' holds a bad path '%s'", s->path, l);
		if ((r = ap_strv_push_unique(&v, l)) < 0)
			return r;
	}
	*ret = TAKE_PTR(v);
	return 0;
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

/* Reads host_path (not following a final symlink) into ret; ret_mode gets its mode.
 * -ENOENT when it does not exist. */
static int read_host_file(const char *host_path, char **ret, size_t *ret_len, mode_t *ret_mode)
{
	_cleanup_free_ char *dir = strdup(host_path);
	char *slash = dir ? strrchr(dir, '/') : NULL;
	struct stat st;
	int dfd, r;

	if (!slash)
		return -ENOMEM;
	*slash = '\0';
	dfd = ap_fs_open_dir(*dir ? dir : "/", 0, 0);
	if (dfd < 0)
		return dfd;
	r = fstatat(dfd, slash + 1, &st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	if (r >= 0)
		r = ap_fs_read_beneath(dfd, slash + 1, AP_MAX_BLOB_SIZE, ret, ret_len);
	close(dfd);
	if (r >= 0)
		*ret_mode = st.st_mode & 07777;
	return r;
}

static bool manifest_has(const char *manifest, const char *host_path)
{
	for (const char *l = manifest; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		const char *p = strchr(l, '/');
		size_t n = strcspn(l, "\n");

		if (p && p < l + n && (size_t)(l + n - p) == strlen(host_path) &&
		    strncmp(p, host_path, strlen(host_path)) == 0)
			return true;
	}
	return false;
}

/* Saves host_path's bytes as file <*count> (or notes it absent) and appends its manifest
 * line to m, unless m has it already. */
static int backup_one(int dfd, struct ap_buf *m, size_t *count, const char *host_path)
{
	_cleanup_free_ char *data = NULL;
	size_t dlen = 0;
	mode_t mode = 0;
	char name[32];
	int r;

	if (manifest_has(m->data, host_path))
		return 0; /* a re-run keeps the bytes from before the first attempt */
	r = read_host_file(host_path, &data, &dlen, &mode);
	if (r == -ENOENT)
		return ap_buf_printf(m, "%zu absent - %s\n", (*count)++, host_path);
	if (r < 0)
		return r;
	snprintf(name, sizeof(name), "%zu", *count);
	r = ap_fs_write_atomic(dfd, name, data, dlen, 0600, (uid_t)-1, (gid_t)-1);
	return r < 0 ? r : ap_buf_printf(m, "%zu present %04o %s\n", (*count)++, (unsigned)mode, host_path);
}

/* backup/<commit>/manifest lines: "<n> present <mode> <path>" or "<n> absent - <path>". The
 * manifest is written once, after every saved copy: until then a re-run starts over. */
int ap_state_backup_files(struct ap_state *s, const char *commit, char *const *paths)
{
	_cleanup_free_ char *sub = ap_strdupf("backup/%s", commit), *old = NULL;
	struct ap_buf m = { 0 };
	size_t len = 0, count = 0, before;
	const char *failed = NULL;
	int dfd, r;

	if (!sub)
		return -ENOMEM;
	dfd = ap_fs_mkdirs_beneath(s->dirfd, sub, 0700);
	if (dfd < 0)
		return ap_log_error(dfd, "failed to create '%s/%s': %s", s->path, sub, strerror(-dfd));
	r = ap_fs_read_beneath(dfd, "manifest", STATE_MAX_FILE, &old, &len);
	r = r == -ENOENT ? 0 : r;
	if (r >= 0)
		r = ap_buf_append(&m, old ? old : "", old ? len : 0);
	for (const char *c = m.data; c && *c; c++)
		count += *c == '\n';
	before = m.len;
	for (size_t i = 0; r >= 0 && paths && paths[i]; i++)
		if ((r = backup_one(dfd, &m, &count, paths[i])) < 0)
			failed = paths[i];
	if (r >= 0 && m.len != before)
		r = ap_fs_write_atomic(dfd, "manifest", m.data, m.len, 0600, (uid_t)-1, (gid_t)-1);
	close(dfd);
	ap_buf_free(&m);
	if (r < 0)
		ap_log_error(r, "failed to back up '%s' into '%s/%s': %s", failed ? failed : "manifest",
			     s->path, sub, strerror(-r));
	return r;
}

int ap_state_backup_file(struct ap_state *s, const char *commit, const char *host_path)
{
	char *v[] = { (char *)host_path, NULL };

	return ap_state_backup_files(s, commit, v);
}

static int read_manifest(struct ap_state *s, const char *commit, int *ret_dfd, char **ret)
{
	_cleanup_free_ char *sub = ap_strdupf("backup/%s", commit);
	size_t len;
	int dfd, r;

	if (!sub)
		return -ENOMEM;
	dfd = ap_fs_open_beneath(s->dirfd, sub, O_RDONLY | O_DIRECTORY, 0);
	if (dfd < 0)
		return dfd;
	r = ap_fs_read_beneath(dfd, "manifest", STATE_MAX_FILE, ret, &len);
	if (r < 0) {
		close(dfd);
		return r;
	}
	*ret_dfd = dfd;
	return 0;
}

int ap_state_backup_lookup(struct ap_state *s, const char *commit, const char *host_path,
			   char **ret_data, size_t *ret_len, mode_t *ret_mode)
{
	_cleanup_free_ char *manifest = NULL;
	int dfd = -1, r = read_manifest(s, commit, &dfd, &manifest);

	if (r < 0)
		return r == -ENOENT ? r : ap_log_error(r, "failed to read the backup of %.12s: %s",
						       commit, strerror(-r));
	r = -ENOENT;
	for (char *save = NULL, *l = strtok_r(manifest, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char name[32], kind[16], mode[16];
		int off = 0;

		if (sscanf(l, "%31s %15s %15s %n", name, kind, mode, &off) != 3 || off == 0 ||
		    strcmp(l + off, host_path) != 0)
			continue;
		if (strcmp(kind, "absent") == 0) {
			r = 0;
			break;
		}
		*ret_mode = (mode_t)strtoul(mode, NULL, 8) & 07777;
		r = ap_fs_read_beneath(dfd, name, AP_MAX_BLOB_SIZE, ret_data, ret_len);
		r = r < 0 ? ap_log_error(r, "failed to read the backup of '%s': %s", host_path,
					 strerror(-r))
			  : 1;
		break;
	}
	close(dfd);
	return r;
}

static bool name_ok(const char *name)
{
	return ap_path_is_safe_relative(name) && !strchr(name, '/');
}

int ap_state_read_text(struct ap_state *s, const char *name, char **ret)
{
	size_t len;
	int r = name_ok(name) ? ap_fs_read_beneath(s->dirfd, name, STATE_MAX_FILE, ret, &len) : -EINVAL;

	if (r < 0 && r != -ENOENT)
		ap_log_error(r, "failed to read '%s/%s': %s", s->path, name, strerror(-r));
	return r;
}

int ap_state_write_text(struct ap_state *s, const char *name, const char *text)
{
	return name_ok(name) ? write_file(s, name, text) : -EINVAL;
}

int ap_state_append_text(struct ap_state *s, const char *name, const char *line)
{
	_cleanup_free_ char *old = NULL, *text = NULL;
	int r = ap_state_read_text(s, name, &old);

	if (r < 0 && r != -ENOENT)
		return r;
	text = ap_strdupf("%s%s", old ? old : "", line);
	return text ? ap_state_write_text(s, name, text) : -ENOMEM;
}

int ap_state_remove(struct ap_state *s, const char *name)
{
	int r = name_ok(name) ? ap_fs_unlink_beneath(s->dirfd, name) : -EINVAL;

	if (r < 0)
		ap_log_error(r, "failed to remove '%s/%s': %s", s->path, name, strerror(-r));
	return r;
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
	return fd;
}

int ap_state_backup_prune(struct ap_state *s, const char *keep)
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

		if (de->d_name[0] == '.' || strcmp(de->d_name, keep) == 0)
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
