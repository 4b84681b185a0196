/* aptime: runs one command and prints one JSON line with its wall time, exit code and
 * peak RSS. A helper of bench/run.sh, built by it into $BENCH_BIN (not part of autopull).
 *
 *   aptime [-u USER] [-d DIR] [-t SECONDS] [-o FILE] [-e FILE] [-H] -- ARGV...
 *
 * Why a C program and not hyperfine, GNU time or python: the bench restores host state
 * and checks the result between single runs of different tools, so every measurement is
 * one run; GNU time's %e has 10 ms resolution; and ru_maxrss survives execve (the kernel
 * keeps the pre-exec high-water mark), so the launcher itself must be small — a forked
 * python would report 8 MB for /bin/true. This one forks a ~1 MB process, like GNU time.
 *
 * Wall time: CLOCK_MONOTONIC just before fork() to the moment a pidfd reports the exit.
 * maxrss_kb: ru_maxrss from wait4(), the same number as GNU time's %M (the largest of the
 * process and its waited-for descendants, e.g. autopull's systemd-analyze child).
 * -H: instead of timing, ptrace the child with PTRACE_O_TRACEEXIT only; at the exit stop
 * /proc/PID/status still has VmHWM: the peak RSS of that process alone ("hwm_kb").
 * -u: switch to USER (initgroups, setgid, setuid) in the child, with the clean environment
 * of tests/integration/lib.sh ap_user_exec, cwd = its home unless -d.
 * Every run is bounded: after -t seconds (default 120) the child's process group gets
 * SIGKILL and rc is 124. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *opt_user, *opt_dir, *opt_out = "/dev/null", *opt_err = "/dev/null";
static double opt_timeout = 120;
static int opt_hwm;
static pid_t child;

static void usage(void)
{
	fprintf(stderr, "usage: aptime [-u USER] [-d DIR] [-t SEC] [-o FILE] [-e FILE] [-H] -- ARGV...\n");
	exit(2);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* In the child: stdio, own session (so a timeout can kill the whole group), identity. */
static void child_exec(char **argv, const struct passwd *pw)
{
	static char e_home[4200], e_user[300], e_logname[300], e_xdg[64];
	char *uenv[] = { e_home, e_user, e_logname, e_xdg, "PATH=/usr/local/bin:/usr/bin:/bin",
			 "LANG=C.UTF-8", NULL };
	int in = open("/dev/null", O_RDONLY), out, err;

	out = open(opt_out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	err = open(opt_err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		_exit(126);
	setsid();
	if (pw) {
		if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
		    setuid(pw->pw_uid) < 0)
			_exit(126);
		snprintf(e_home, sizeof(e_home), "HOME=%s", pw->pw_dir);
		snprintf(e_user, sizeof(e_user), "USER=%s", pw->pw_name);
		snprintf(e_logname, sizeof(e_logname), "LOGNAME=%s", pw->pw_name);
		snprintf(e_xdg, sizeof(e_xdg), "XDG_RUNTIME_DIR=/run/user/%u", (unsigned)pw->pw_uid);
		environ = uenv;
	}
	if (chdir(opt_dir ? opt_dir : pw ? pw->pw_dir : "/") < 0)
		_exit(126);
	if (opt_hwm && ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0)
		_exit(125);
	execvp(argv[0], argv);
	dprintf(2, "aptime: exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static int exit_code(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int run_timed(char **argv, const struct passwd *pw)
{
	struct pollfd p = { .events = POLLIN };
	struct rusage ru;
	double t0, t1;
	int status, ready, timed_out;

	t0 = now_ms();
	child = fork();
	if (child < 0)
		return perror("aptime: fork"), 1;
	if (child == 0)
		child_exec(argv, pw);
	p.fd = (int)syscall(SYS_pidfd_open, child, 0);
	if (p.fd < 0)
		return perror("aptime: pidfd_open"), 1;
	do
		ready = poll(&p, 1, (int)(opt_timeout * 1000));
	while (ready < 0 && errno == EINTR);
	t1 = now_ms();
	timed_out = ready == 0;
	if (timed_out)
		kill(-child, SIGKILL);
	if (wait4(child, &status, 0, &ru) < 0)
		return perror("aptime: wait4"), 1;
	printf("{\"ms\": %.3f, \"rc\": %d, \"maxrss_kb\": %ld, \"timed_out\": %s}\n", t1 - t0,
	       timed_out ? 124 : exit_code(status), ru.ru_maxrss, timed_out ? "true" : "false");
	return 0;
}

static long read_hwm(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "re")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmHWM:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

static volatile sig_atomic_t alarmed;
static void on_alarm(int sig __attribute__((unused)))
{
	alarmed = 1;
	kill(-child, SIGKILL);
}

static int run_hwm(char **argv, const struct passwd *pw)
{
	struct rusage ru;
	long hwm = -1;
	int status, first = 1;

	child = fork();
	if (child < 0)
		return perror("aptime: fork"), 1;
	if (child == 0)
		child_exec(argv, pw);
	signal(SIGALRM, on_alarm);
	alarm((unsigned)(opt_timeout < 1 ? 1 : opt_timeout));
	for (;;) {
		int sig, deliver = 0;

		if (wait4(child, &status, 0, &ru) < 0) {
			if (errno == EINTR)
				continue;
			return perror("aptime: wait4"), 1;
		}
		if (!WIFSTOPPED(status))
			break;
		sig = WSTOPSIG(status);
		if (first && sig == SIGTRAP) { /* the stop after execve */
			first = 0;
			ptrace(PTRACE_SETOPTIONS, child, NULL, (void *)(long)PTRACE_O_TRACEEXIT);
		} else if (sig == SIGTRAP && (status >> 16) == PTRACE_EVENT_EXIT) {
			hwm = read_hwm(child);
		} else {
			deliver = sig; /* an ordinary signal: pass it on */
		}
		ptrace(PTRACE_CONT, child, NULL, (void *)(long)deliver);
	}
	alarm(0);
	printf("{\"rc\": %d, \"maxrss_kb\": %ld, \"hwm_kb\": %ld, \"timed_out\": %s}\n",
	       alarmed ? 124 : exit_code(status), ru.ru_maxrss, hwm, alarmed ? "true" : "false");
	return 0;
}

int main(int argc, char **argv)
{
	struct passwd *pw = NULL;
	int c;

	while ((c = getopt(argc, argv, "+u:d:t:o:e:H")) >= 0) {
		switch (c) {
		case 'u': opt_user = optarg; break;
		case 'd': opt_dir = optarg; break;
		case 't': opt_timeout = strtod(optarg, NULL); break;
		case 'o': opt_out = optarg; break;
		case 'e': opt_err = optarg; break;
		case 'H': opt_hwm = 1; break;
		default: usage();
		}
	}
	if (optind >= argc || opt_timeout <= 0)
		usage();
	if (opt_user && !(pw = getpwnam(opt_user))) {
		fprintf(stderr, "aptime: unknown user '%s'\n", opt_user);
		return 2;
	}
	fflush(stdout);
	return opt_hwm ? run_hwm(argv + optind, pw) : run_timed(argv + optind, pw);
}
