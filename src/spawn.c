/* Runs one external command (a validator) with posix_spawn and collects its output: argv
 * only, a fixed PATH, a clean environment, stdin from /dev/null, stdout and stderr in one
 * bounded buffer, its own process group so that a timeout kills everything it started.
 *
 * Deliberately not here: a shell or any word splitting (the config gives an argv), the
 * caller's PATH, retries, and logging (the caller knows which validator for which file and
 * logs once; a missing command is just -ENOENT). */
/* libc's header: the Makefile adds our include/ with -iquote, so <spawn.h> is not ours. */
#include <spawn.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawn.h"
#include "util.h"

#define FIXED_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Writable arrays because posix_spawn takes char *const[] and string literals are const. */
static char default_path_env[] = "PATH=" FIXED_PATH;
static char default_lang_env[] = "LANG=C.UTF-8";

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
 * fd 0, and opening /dev/null there first would close it before it is duplicated. */
static int setup_file_actions(posix_spawn_file_actions_t *fa, int wfd)
{
	int r;

	r = posix_spawn_file_actions_adddup2(fa, wfd, STDOUT_FILENO);
	if (r == 0)
		r = posix_spawn_file_actions_adddup2(fa, wfd, STDERR_FILENO);
	if (r == 0)
		r = posix_spawn_file_actions_addopen(fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	return -r;
}

/* An empty mask, default dispositions for every signal (an ignored SIGPIPE or SIGCHLD
 * survives exec and changes how tools behave), and a new process group led by the child. */
static int setup_attr(posix_spawnattr_t *attr)
{
	sigset_t none, all;
	int r;

	if (sigemptyset(&none) < 0 || sigfillset(&all) < 0)
		return -errno;
	r = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
						   POSIX_SPAWN_SETPGROUP);
	if (r == 0)
		r = posix_spawnattr_setsigmask(attr, &none);
	if (r == 0)
		r = posix_spawnattr_setsigdefault(attr, &all);
	if (r == 0)
		r = posix_spawnattr_setpgroup(attr, 0);
	return -r;
}

/* Milliseconds until deadline for poll(), rounded up; -1 when there is none. */
static int poll_timeout_ms(unsigned long long deadline, unsigned long long now)
{
	unsigned long long ms;

	if (!deadline)
		return -1;
	ms = (deadline - now + 999) / 1000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Keeps up to AP_SPAWN_MAX_OUTPUT bytes of chunk; the rest is dropped, not left unread, so
 * a chatty child never blocks on a full pipe. */
static int keep_output(struct ap_buf *out, const char *chunk, size_t n)
{
	size_t room = out->len < AP_SPAWN_MAX_OUTPUT ? AP_SPAWN_MAX_OUTPUT - out->len : 0;

	return ap_buf_append(out, chunk, n < room ? n : room);
}

/* Reads fd until EOF or deadline (0: none). Sets *timed_out when the deadline passed. */
static int drain_output(int fd, unsigned long long deadline, struct ap_buf *out, int *timed_out)
{
	char chunk[8192];

	for (;;) {
		unsigned long long now = ap_now_monotonic_usec();
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t k;
		int n, r;

		if (deadline && now >= deadline) {
			*timed_out = 1;
			return 0;
		}
		n = poll(&pfd, 1, poll_timeout_ms(deadline, now));
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n <= 0)
			continue; /* EINTR or timeout: the check above decides */
		k = read(fd, chunk, sizeof(chunk));
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			return 0;
		r = keep_output(out, chunk, (size_t)k);
		if (r < 0)
			return r;
	}
}

static int wait_child(pid_t pid, int *ret_status)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(st))
		*ret_status = WEXITSTATUS(st);
	else if (WIFSIGNALED(st))
		*ret_status = 128 + WTERMSIG(st);
	else
		*ret_status = 255; /* stopped/continued are not reported without WUNTRACED */
	return 0;
}

/* Starts path with the pipe's write end as stdout/stderr. */
static int start_child(const char *path, char *const argv[], char *const env[], int wfd,
		       pid_t *ret_pid)
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
	r = setup_file_actions(&fa, wfd);
	if (r >= 0)
		r = setup_attr(&attr);
	if (r >= 0)
		r = -posix_spawn(ret_pid, path, &fa, &attr, argv, env ? env : default_env);
	(void)posix_spawnattr_destroy(&attr); /* glibc: always 0 */
cleanup_fa:
	(void)posix_spawn_file_actions_destroy(&fa);
	return r;
}

/* Collects the child's output and exit status. On timeout or a read error the whole
 * process group is killed, so nothing the validator started outlives it. */
static int collect_child(pid_t pid, int rfd, unsigned long long timeout_usec,
			 struct ap_spawn_result *res, struct ap_buf *out)
{
	unsigned long long deadline = timeout_usec ? ap_now_monotonic_usec() + timeout_usec : 0;
	int r, k;

	r = drain_output(rfd, deadline, out, &res->timed_out);
	if (r < 0 || res->timed_out)
		(void)kill(-pid, SIGKILL); /* ESRCH: already gone, which is what we want */
	k = wait_child(pid, &res->exit_status);
	return r < 0 ? r : k;
}

int ap_spawn_run(char *const argv[], char *const env[], unsigned long long timeout_usec,
		 struct ap_spawn_result *ret)
{
	struct ap_spawn_result res = { 0 };
	struct ap_buf out = { 0 };
	_cleanup_free_ char *path = NULL;
	int p[2], r;
	pid_t pid;

	if (!argv || !argv[0] || !ret)
		return -EINVAL;
	r = resolve_command(argv[0], &path);
	if (r < 0)
		return r;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	r = start_child(path, argv, env, p[1], &pid);
	(void)close(p[1]); /* our copy must go, or we never see EOF */
	if (r >= 0)
		r = collect_child(pid, p[0], timeout_usec, &res, &out);
	(void)close(p[0]);
	if (r >= 0 && !out.data)
		r = ap_buf_append(&out, "", 0); /* output is always a string */
	if (r < 0) {
		ap_buf_free(&out);
		return r;
	}
	res.output = out.data;
	res.output_len = out.len;
	*ret = res;
	return 0;
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
		ap_buf_free(&b);
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
