/* Runs one external command (a validator) with posix_spawn and collects its output: argv
 * only, a fixed PATH, a clean environment, stdin from /dev/null (or a given file), stdout and
 * stderr in one bounded buffer, cwd "/", no fds but 0/1/2, and one deadline for the whole run.
 *
 * Nothing a validator starts outlives ap_spawn_run, whether it exits, times out or we fail.
 * A validator is repository-configured code run as root, and a careless one (a config check
 * that starts the daemon it checks) or a hostile one may fork, setsid() and double-fork.
 * autopull assumes no cgroup of its own that could be killed as a whole (it may run from a
 * timer unit, by hand in a shell, or under a user manager), so it tracks descendants by
 * parenthood instead: the child leads a new session and process group; autopull is a child
 * subreaper (PR_SET_CHILD_SUBREAPER) while it runs, so every orphaned descendant, even a
 * setsid()ed, double-forked daemon, is reparented to autopull instead of PID 1; at the end
 * the process group is killed, then every child of ours, round after round until none is
 * left (a killed child's children become ours in turn), and all of them are reaped. This
 * relies on autopull starting children only here. A child may also be started now and joined
 * later (ap_spawn_start, ap_spawn_join, ap_spawn_abort; ap_spawn_run is the two in one go), so
 * that systemd-analyze verify runs while the apply samples the guard: the cleanup after
 * another child spares a started one, which its own join or abort cleans up after. The wait
 * for the exit has the same deadline as the output (a pidfd wakes poll), so a validator that
 * closes its stdout and hangs is still killed on time.
 *
 * Deliberately not here: a shell or any word splitting (the config gives an argv), the
 * caller's PATH, retries, and logging (the caller knows which validator for which file and
 * logs once; a missing command is just -ENOENT). */
/* libc's header: the Makefile adds our include/ with -iquote, so <spawn.h> is not ours. */
#include <spawn.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawn.h"
#include "util.h"

#define FIXED_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Writable arrays because posix_spawn takes char *const[] and string literals are const. */
static char default_path_env[] = "PATH=" FIXED_PATH;
static char default_lang_env[] = "LANG=C.UTF-8";

#define WAIT_TICK_MS 10                 /* how often to look for the exit without a pidfd */
#define CLEANUP_USEC (5 * 1000000ULL)   /* for SIGKILLed processes to die and be reaped */
#define CHILDREN_BUF 4096               /* one read of a children file */

static void closedirp(DIR **d)
{
	if (*d)
		(void)closedir(*d);
}

void ap_spawn_result_clear(struct ap_spawn_result *r)
{
	if (!r)
		return;
	free(r->output);
	*r = (struct ap_spawn_result){ 0 };
}

static bool is_executable_file(const char *p)
{
	struct stat st;

	/* access(X_OK) alone succeeds for root on any directory and on files with any x bit,
	 * so require a regular file as well. AT_EACCESS: the ids that will exec it. */
	return stat(p, &st) == 0 && S_ISREG(st.st_mode) &&
	       faccessat(AT_FDCWD, p, X_OK, AT_EACCESS) == 0;
}

/* Finds name in FIXED_PATH, or takes it as given when it contains '/'. */
static int resolve_command(const char *name, char **ret)
{
	const char *dir = FIXED_PATH;

	if (!*name)
		return -ENOENT;
	if (strchr(name, '/')) {
		if (!is_executable_file(name))
			return -ENOENT;
		*ret = strdup(name);
		return *ret ? 0 : -ENOMEM;
	}
	while (*dir) {
		const char *end = strchrnul(dir, ':');
		char *p = ap_strdupf("%.*s/%s", (int)(end - dir), dir, name);

		if (!p)
			return -ENOMEM;
		if (is_executable_file(p)) {
			*ret = p;
			return 0;
		}
		free(p);
		dir = *end ? end + 1 : end;
	}
	return -ENOENT;
}

/* dup2 before the open of /dev/null: if our stdin was closed, the pipe may have been given
 * fd 0, and opening /dev/null there first would close it before it is duplicated. Then every
 * other fd goes (a library's fd opened without O_CLOEXEC must not reach a validator), and the
 * child starts in "/" rather than wherever autopull was started. */
static int setup_file_actions(posix_spawn_file_actions_t *fa, int wfd, const char *input)
{
	int r;

	r = posix_spawn_file_actions_adddup2(fa, wfd, STDOUT_FILENO);
	if (r == 0)
		r = posix_spawn_file_actions_adddup2(fa, wfd, STDERR_FILENO);
	if (r == 0)
		r = posix_spawn_file_actions_addopen(fa, STDIN_FILENO, input ? input : "/dev/null",
						     O_RDONLY | O_NOFOLLOW, 0);
	if (r == 0)
		r = posix_spawn_file_actions_addclosefrom_np(fa, STDERR_FILENO + 1);
	if (r == 0)
		r = posix_spawn_file_actions_addchdir_np(fa, "/");
	return -r;
}

/* An empty mask, default dispositions for every signal (an ignored SIGPIPE or SIGCHLD
 * survives exec and changes how tools behave), and a new session: the child leads a new
 * session and process group (pgid == pid) and has no controlling terminal. */
static int setup_attr(posix_spawnattr_t *attr)
{
	sigset_t none, all;
	int r;

	if (sigemptyset(&none) < 0 || sigfillset(&all) < 0)
		return -errno;
	r = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
						   POSIX_SPAWN_SETSID);
	if (r == 0)
		r = posix_spawnattr_setsigmask(attr, &none);
	if (r == 0)
		r = posix_spawnattr_setsigdefault(attr, &all);
	return -r;
}

/* Milliseconds until deadline for poll(), rounded up and capped at cap_ms (-1: no cap);
 * -1 when there is neither. */
static int poll_timeout_ms(unsigned long long deadline, unsigned long long now, int cap_ms)
{
	unsigned long long ms;

	if (!deadline)
		return cap_ms;
	ms = (deadline - now + 999) / 1000;
	if (cap_ms >= 0 && ms > (unsigned long long)cap_ms)
		return cap_ms;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Keeps at most AP_SPAWN_MAX_OUTPUT bytes: the first half and the newest rest, since tools
 * print their environment first and the error last. The middle is dropped, not left unread,
 * so a chatty child never blocks on a full pipe. */
static int keep_output(struct ap_buf *out, const char *chunk, size_t n)
{
	const size_t head = AP_SPAWN_MAX_OUTPUT / 2, tail = AP_SPAWN_MAX_OUTPUT - head;
	size_t drop;
	int r;

	if (n > tail) {
		chunk += n - tail;
		n = tail;
	}
	r = ap_buf_append(out, chunk, n);
	if (r < 0 || out->len <= AP_SPAWN_MAX_OUTPUT)
		return r;
	drop = out->len - AP_SPAWN_MAX_OUTPUT;
	memmove(out->data + head, out->data + head + drop, out->len - head - drop + 1);
	out->len -= drop;
	return 0;
}

/* One read from the (non-blocking) pipe: 1 at EOF, 0 otherwise. */
static int read_once(int fd, struct ap_buf *out)
{
	char chunk[8192];
	ssize_t k = read(fd, chunk, sizeof(chunk));

	if (k < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -errno;
	if (k == 0)
		return 1;
	return keep_output(out, chunk, (size_t)k);
}

/* True once pid has exited. WNOWAIT leaves it a zombie: its pid, and so its process group,
 * cannot be reused until the group has been killed and the zombie reaped. */
static int has_exited(pid_t pid)
{
	siginfo_t si = { 0 };

	while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		if (errno != EINTR)
			return -errno;
	return si.si_pid == pid;
}

/* Reads the child's output until it exits or the deadline (0: none) passes. A pidfd wakes
 * poll() when the child exits even if it closed or passed on its stdout; without one
 * (ENOSYS) poll() wakes every WAIT_TICK_MS to ask waitid(). The end of the output does not
 * end the wait: a validator that closes stdout and hangs is still bound by the deadline. */
static int wait_exit(pid_t pid, int pidfd, int rfd, unsigned long long deadline,
		     struct ap_buf *out, int *timed_out)
{
	bool eof = false;

	for (;;) {
		unsigned long long now = ap_now_monotonic_usec();
		struct pollfd p[2] = { { .fd = pidfd, .events = POLLIN },
				       { .fd = eof ? -1 : rfd, .events = POLLIN } };
		int n, r;

		r = has_exited(pid);
		if (r != 0)
			return r < 0 ? r : 0;
		if (deadline && now >= deadline) {
			*timed_out = 1;
			return 0;
		}
		n = poll(p, 2, poll_timeout_ms(deadline, now, pidfd < 0 ? WAIT_TICK_MS : -1));
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0 && p[1].revents) {
			r = read_once(rfd, out);
			if (r < 0)
				return r;
			eof = r == 1;
		}
	}
}

/* After every writer is dead the pipe holds at most its buffer: read it to EOF, bounded by
 * the deadline in case a writer could not be killed. */
static int drain_rest(int rfd, unsigned long long deadline, struct ap_buf *out)
{
	for (;;) {
		unsigned long long now = ap_now_monotonic_usec();
		struct pollfd p = { .fd = rfd, .events = POLLIN };
		int n, r;

		if (now >= deadline)
			return 0;
		n = poll(&p, 1, poll_timeout_ms(deadline, now, -1));
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n <= 0)
			continue;
		r = read_once(rfd, out);
		if (r != 0)
			return r < 0 ? r : 0;
	}
}

static int decode_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 255; /* stopped/continued are not reported without WUNTRACED */
}

/* Appends the pids listed in one children file ("1 2 3 "); a number cut off at the end of
 * the buffer is left for the next round. Returns the count added. */
static size_t parse_pid_list(char *buf, size_t len, pid_t *pids, size_t max)
{
	size_t n = 0;
	char *save = NULL;

	if (len == CHILDREN_BUF - 1)
		while (len > 0 && buf[len - 1] != ' ')
			buf[--len] = '\0';
	for (char *t = strtok_r(buf, " \n", &save); t && n < max; t = strtok_r(NULL, " \n",
									       &save)) {
		long v = strtol(t, NULL, 10);

		if (v > 0 && v <= INT_MAX)
			pids[n++] = (pid_t)v;
	}
	return n;
}

/* Reads a small /proc file into buf (NUL-terminated); its length or -errno. */
static ssize_t read_small_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t k;

	if (fd < 0)
		return -errno;
	k = read(fd, buf, size - 1);
	k = k < 0 ? -errno : k;
	(void)close(fd);
	if (k >= 0)
		buf[k] = '\0';
	return k;
}

/* Our children from /proc/self/task/TID/children (one file per thread that forked).
 * -ENOENT when the kernel lacks CONFIG_PROC_CHILDREN. */
static int children_from_task_files(pid_t *pids, size_t max, size_t *ret_n)
{
	_cleanup_(closedirp) DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	bool seen = false;
	size_t n = 0;

	if (!d)
		return -errno;
	while (n < max && (errno = 0, de = readdir(d))) {
		char path[sizeof(de->d_name) + 32], buf[CHILDREN_BUF];
		ssize_t k;

		if (de->d_name[0] == '.')
			continue;
		(void)snprintf(path, sizeof(path), "/proc/self/task/%s/children", de->d_name);
		k = read_small_file(path, buf, sizeof(buf));
		if (k == -ENOENT && seen)
			continue; /* that thread is gone */
		if (k < 0)
			return (int)k;
		seen = true;
		n += parse_pid_list(buf, (size_t)k, pids + n, max - n);
	}
	*ret_n = n;
	return 0;
}

/* 1 when /proc/PID/stat names us as its parent. The command name is in parentheses and
 * may itself contain ") ", so the fields are read after the last ')'. */
static int is_our_child(const struct dirent *de)
{
	char path[sizeof(de->d_name) + 16], buf[512];
	const char *e;
	int ppid = 0;

	(void)snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
	if (read_small_file(path, buf, sizeof(buf)) <= 0)
		return 0; /* gone meanwhile */
	e = strrchr(buf, ')');
	return e && sscanf(e + 1, " %*c %d", &ppid) == 1 && ppid == getpid();
}

/* Our children by scanning /proc/PID/stat, for kernels without the children files. */
static int children_from_stat(pid_t *pids, size_t max, size_t *ret_n)
{
	_cleanup_(closedirp) DIR *d = opendir("/proc");
	struct dirent *de;
	size_t n = 0;

	if (!d)
		return -errno;
	while (n < max && (errno = 0, de = readdir(d)))
		if (isdigit((unsigned char)de->d_name[0]) && is_our_child(de))
			pids[n++] = (pid_t)strtol(de->d_name, NULL, 10);
	if (errno)
		return -errno;
	*ret_n = n;
	return 0;
}

static int list_children(pid_t *pids, size_t max, size_t *ret_n)
{
	int r = children_from_task_files(pids, max, ret_n);

	return r == -ENOENT ? children_from_stat(pids, max, ret_n) : r;
}

/* The children started and not yet joined or aborted. The cleanup after one child kills
 * every child of ours but these: another started child belongs to its own join. An orphan
 * reparented to us cannot be told apart by its origin, so the cleanup kills it whoever
 * started it; that only ends it earlier than its own cleanup would have. Bounded: a run
 * overlaps one verify with its other work, which may itself run a child (a probe). */
#define MAX_STARTED 4
static pid_t started[MAX_STARTED];
static size_t n_started;
static bool subreaper_ours; /* we set PR_SET_CHILD_SUBREAPER for the started children */

static bool started_elsewhere(pid_t pid, pid_t leader)
{
	for (size_t i = 0; i < n_started; i++)
		if (started[i] == pid && pid != leader)
			return true;
	return false;
}

static void forget_started(pid_t pid)
{
	for (size_t i = 0; i < n_started; i++)
		if (started[i] == pid) {
			started[i] = started[--n_started];
			return;
		}
}

/* Orphans of a started child must come to us, not to PID 1, so that we can reap them; the
 * flag is ours only while a child of ours runs. */
static int subreaper_hold(void)
{
	int was = 0;

	if (n_started > 0)
		return 0;
	if (prctl(PR_GET_CHILD_SUBREAPER, &was) < 0 ||
	    (!was && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0))
		return -errno;
	subreaper_ours = !was;
	return 0;
}

static void subreaper_release(void)
{
	if (n_started > 0 || !subreaper_ours)
		return;
	(void)prctl(PR_SET_CHILD_SUBREAPER, 0); /* cannot fail after the set */
	subreaper_ours = false;
}

/* Our children but the other started ones, into pids; how many. */
static int children_to_kill(pid_t leader, pid_t *pids, size_t max, size_t *ret_n)
{
	size_t n = 0, k = 0;
	int r = list_children(pids, max, &n);

	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (!started_elsewhere(pids[i], leader))
			pids[k++] = pids[i];
	*ret_n = k;
	return 0;
}

/* Kills the child's process group and then every child of ours (but other started ones),
 * round after round: a killed child's own children are reparented to us (we are a subreaper)
 * and show up in the next round. Reaps them all; leader's status goes to *ret_status. -EBUSY
 * when some process survived CLEANUP_USEC (a SIGKILLed process stuck in the kernel). */
static int kill_and_reap_all(pid_t leader, int *ret_status)
{
	unsigned long long give_up = ap_now_monotonic_usec() + CLEANUP_USEC;

	(void)kill(-leader, SIGKILL); /* ESRCH: nobody left in it */
	for (;;) {
		pid_t pids[64];
		size_t n = 0;
		int r = children_to_kill(leader, pids, ELEMENTSOF(pids), &n);

		if (r < 0)
			return r;
		if (n == 0)
			return 0;
		for (size_t i = 0; i < n; i++)
			(void)kill(pids[i], SIGKILL);
		for (size_t i = 0; i < n; i++) {
			int st;

			if (waitpid(pids[i], &st, WNOHANG) == leader)
				*ret_status = decode_status(st);
		}
		if (ap_now_monotonic_usec() >= give_up)
			return -EBUSY;
		(void)poll(NULL, 0, 1); /* let the killed ones die before the next look */
	}
}

/* Starts path with the pipe's write end as stdout/stderr. */
static int start_child(const char *path, char *const argv[], char *const env[], int wfd,
		       const char *input, pid_t *ret_pid)
{
	char *const default_env[] = { default_path_env, default_lang_env, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int r;

	r = -posix_spawn_file_actions_init(&fa);
	if (r < 0)
		return r;
	r = -posix_spawnattr_init(&attr);
	if (r < 0)
		goto cleanup_fa;
	r = setup_file_actions(&fa, wfd, input);
	if (r >= 0)
		r = setup_attr(&attr);
	if (r >= 0)
		r = -posix_spawn(ret_pid, path, &fa, &attr, argv, env ? env : default_env);
	(void)posix_spawnattr_destroy(&attr); /* glibc: always 0 */
cleanup_fa:
	(void)posix_spawn_file_actions_destroy(&fa);
	return r;
}

/* A child started and not yet joined. */
struct ap_spawn {
	pid_t pid;                   /* 0 until it runs */
	int pidfd;                   /* -1: wait_exit ticks instead */
	int rfd;                     /* our end of its stdout+stderr */
	unsigned long long deadline; /* 0: none */
	struct ap_buf out;
};

/* Kills and reaps everything the child started (nothing when it never ran). */
static int reap(struct ap_spawn *s, int *ret_status)
{
	int r;

	if (s->pid <= 0)
		return 0;
	r = kill_and_reap_all(s->pid, ret_status);
	forget_started(s->pid);
	s->pid = 0;
	return r;
}

static void spawn_free(struct ap_spawn *s)
{
	if (s->pidfd >= 0)
		(void)close(s->pidfd);
	if (s->rfd >= 0)
		(void)close(s->rfd);
	ap_buf_clear(&s->out);
	free(s);
	subreaper_release();
}

/* Starts the child of s (path resolved) and registers it as started. */
static int launch(struct ap_spawn *s, const char *path, char *const argv[], char *const env[],
		  const char *input)
{
	int p[2], r;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	s->rfd = p[0];
	r = start_child(path, argv, env, p[1], input, &s->pid);
	(void)close(p[1]); /* our copy must go, or we never see EOF */
	if (r < 0) {
		s->pid = 0;
		return r;
	}
	started[n_started++] = s->pid;
	/* Only our end is non-blocking: O_NONBLOCK on the write end would reach the child. */
	if (fcntl(s->rfd, F_SETFL, O_NONBLOCK) < 0)
		return -errno;
	s->pidfd = (int)syscall(SYS_pidfd_open, s->pid, 0); /* < 0: wait_exit ticks instead */
	return 0;
}

static int start_input(char *const argv[], char *const env[], unsigned long long timeout_usec,
		       const char *input, struct ap_spawn **ret)
{
	_cleanup_free_ char *path = NULL;
	struct ap_spawn *s;
	int r;

	if (!argv || !argv[0] || !ret)
		return -EINVAL;
	r = resolve_command(argv[0], &path);
	if (r < 0)
		return r;
	/* A missing input file is an error, not an empty stdin: the child must not start. */
	if (input && access(input, R_OK) < 0)
		return -errno;
	if (n_started == MAX_STARTED)
		return -EBUSY;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	*s = (struct ap_spawn){ .pidfd = -1, .rfd = -1,
				.deadline = timeout_usec ? ap_now_monotonic_usec() + timeout_usec
							 : 0 };
	r = subreaper_hold();
	if (r >= 0)
		r = launch(s, path, argv, env, input);
	if (r < 0) {
		ap_spawn_abort(s);
		return r;
	}
	*ret = s;
	return 0;
}

int ap_spawn_start(char *const argv[], char *const env[], unsigned long long timeout_usec,
		   struct ap_spawn **ret)
{
	return start_input(argv, env, timeout_usec, NULL, ret);
}

int ap_spawn_join(struct ap_spawn *s, struct ap_spawn_result *ret)
{
	struct ap_spawn_result res = { 0 };
	int r, k;

	if (!s || !ret) {
		ap_spawn_abort(s);
		return -EINVAL;
	}
	r = wait_exit(s->pid, s->pidfd, s->rfd, s->deadline, &s->out, &res.timed_out);
	k = reap(s, &res.exit_status);
	if (r >= 0)
		r = k;
	if (r >= 0)
		r = drain_rest(s->rfd, ap_now_monotonic_usec() + CLEANUP_USEC, &s->out);
	if (r >= 0 && !s->out.data)
		r = ap_buf_append(&s->out, "", 0); /* output is always a string */
	if (r >= 0) {
		res.output = TAKE_PTR(s->out.data);
		res.output_len = s->out.len;
		*ret = res;
	}
	spawn_free(s);
	return r < 0 ? r : 0;
}

void ap_spawn_abort(struct ap_spawn *s)
{
	int status;

	if (!s)
		return;
	(void)reap(s, &status); /* -EBUSY: a process stuck in the kernel; nothing more to do */
	spawn_free(s);
}

int ap_spawn_run(char *const argv[], char *const env[], unsigned long long timeout_usec,
		 struct ap_spawn_result *ret)
{
	return ap_spawn_run_input(argv, env, timeout_usec, NULL, ret);
}

int ap_spawn_run_input(char *const argv[], char *const env[], unsigned long long timeout_usec,
		       const char *input, struct ap_spawn_result *ret)
{
	struct ap_spawn *s = NULL;
	int r = ret ? start_input(argv, env, timeout_usec, input, &s) : -EINVAL;

	return r < 0 ? r : ap_spawn_join(s, ret);
}

/* Appends arg to b with "%s" → path and "%%" → "%"; any other '%' is kept as written so
 * that a literal "%d" in a validator argument survives. */
static int expand_one(const char *arg, const char *path, struct ap_buf *b)
{
	int r = 0;

	for (const char *c = arg; *c && r >= 0; c++) {
		if (c[0] == '%' && c[1] == 's') {
			r = ap_buf_append(b, path, strlen(path));
			c++;
		} else if (c[0] == '%' && c[1] == '%') {
			r = ap_buf_append(b, "%", 1);
			c++;
		} else {
			r = ap_buf_append(b, c, 1);
		}
	}
	return r;
}

int ap_spawn_expand_argv(char *const tmpl[], const char *path, char ***ret)
{
	_cleanup_strv_free_ char **v = NULL;

	if (!tmpl || !tmpl[0] || !path || !ret)
		return -EINVAL;
	for (size_t i = 0; tmpl[i]; i++) {
		struct ap_buf b = { 0 };
		int r = expand_one(tmpl[i], path, &b);

		if (r >= 0)
			r = ap_strv_push(&v, b.data ? b.data : "");
		ap_buf_clear(&b);
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(v);
	return 0;
}

int ap_spawn_find(const char *name, char **ret)
{
	return resolve_command(name, ret);
}
