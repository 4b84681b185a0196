/* floor: the least any deploy tool must do for one bench tick, as one process: `git fetch`
 * of the change, then, over the user manager's private bus socket, one daemon-reload and the
 * restarts, reloads and starts the tick needs, waiting for every job's JobRemoved. A helper
 * of bench/run.sh (the "floor" column), built by it into $BENCH_BIN; not part of autopull.
 *
 *   floor -g GITDIR -u URL [-p PROTO] [-r] [-R UNIT]... [-L UNIT]... [-S UNIT]...
 *
 *   -g/-u   git --git-dir=GITDIR fetch -q --no-tags URL +refs/heads/main:refs/remotes/origin/main
 *   -p      git -c protocol.version=PROTO (the bench uses 0 over HTTP: libgit2 speaks v0)
 *   -r      one Reload (daemon-reload) before any job
 *   -R/-L/-S  RestartUnit / ReloadUnit / StartUnit "replace"
 *
 * The files the tick installs are put in place by the bench before this runs (untimed): the
 * floor has no validation, no atomic install, no journal and no record, on purpose. Exit 0
 * when git succeeded and every job finished "done"; 1 otherwise (the reason on stderr).
 * Runs as the unit owner with XDG_RUNTIME_DIR set, like autopull --user (no namespace). */
#define _GNU_SOURCE
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <systemd/sd-bus.h>

#define MAX_JOBS 4096
#define WAIT_USEC (120ULL * 1000 * 1000)

extern char **environ;

struct job {
	char *path;
	int done;
};

static struct job jobs[MAX_JOBS];
static int n_jobs, n_left, n_bad;

static int run_git(const char *gitdir, const char *url, const char *proto)
{
	char dirarg[4200], protoarg[64];
	char *argv[16];
	int n = 0, st;
	pid_t pid;

	snprintf(dirarg, sizeof(dirarg), "--git-dir=%s", gitdir);
	argv[n++] = "git";
	if (proto) {
		snprintf(protoarg, sizeof(protoarg), "protocol.version=%s", proto);
		argv[n++] = "-c";
		argv[n++] = protoarg;
	}
	argv[n++] = dirarg;
	argv[n++] = "fetch";
	argv[n++] = "-q";
	argv[n++] = "--no-tags";
	argv[n++] = (char *)url;
	argv[n++] = "+refs/heads/main:refs/remotes/origin/main";
	argv[n] = NULL;
	errno = posix_spawnp(&pid, "git", NULL, NULL, argv, environ);
	if (errno) {
		perror("floor: cannot start git");
		return -1;
	}
	if (waitpid(pid, &st, 0) < 0) {
		perror("floor: waitpid");
		return -1;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "floor: git fetch failed (status %d)\n", st);
		return -1;
	}
	return 0;
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	const char *path, *unit, *result;
	uint32_t id;
	(void)userdata;
	(void)ret_error;

	if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
		return 0;
	for (int i = 0; i < n_jobs; i++) {
		if (jobs[i].done || strcmp(jobs[i].path, path) != 0)
			continue;
		jobs[i].done = 1;
		n_left--;
		if (strcmp(result, "done") != 0) {
			fprintf(stderr, "floor: job of %s: %s\n", unit, result);
			n_bad++;
		}
	}
	return 0;
}

static int queue(sd_bus *bus, const char *method, const char *unit)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *path;
	int r;

	if (n_jobs == MAX_JOBS) {
		fprintf(stderr, "floor: more than %d jobs\n", MAX_JOBS);
		return -1;
	}
	r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
			       "org.freedesktop.systemd1.Manager", method, &error, &reply, "ss", unit,
			       "replace");
	if (r < 0) {
		fprintf(stderr, "floor: %s %s: %s\n", method, unit, error.message ? error.message : strerror(-r));
		sd_bus_error_free(&error);
		return -1;
	}
	r = sd_bus_message_read(reply, "o", &path);
	if (r >= 0)
		jobs[n_jobs].path = strdup(path);
	sd_bus_message_unref(reply);
	if (r < 0 || !jobs[n_jobs].path) {
		fprintf(stderr, "floor: %s %s: bad reply\n", method, unit);
		return -1;
	}
	n_jobs++;
	n_left++;
	return 0;
}

int main(int argc, char **argv)
{
	const char *gitdir = NULL, *url = NULL, *proto = NULL, *rt;
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_slot *slot = NULL;
	sd_bus *bus = NULL;
	char addr[4200];
	int opt, reload = 0, r;

	/* First pass: options without jobs; the jobs are queued in argv order below. */
	while ((opt = getopt(argc, argv, "g:u:p:rR:L:S:")) != -1) {
		switch (opt) {
		case 'g': gitdir = optarg; break;
		case 'u': url = optarg; break;
		case 'p': proto = optarg; break;
		case 'r': reload = 1; break;
		case 'R': case 'L': case 'S': break;
		default:
			fprintf(stderr, "usage: floor -g GITDIR -u URL [-p PROTO] [-r] [-R|-L|-S UNIT]...\n");
			return 2;
		}
	}
	if (!gitdir || !url || optind != argc) {
		fprintf(stderr, "floor: -g and -u are required, no operands\n");
		return 2;
	}
	if (run_git(gitdir, url, proto) < 0)
		return 1;

	rt = getenv("XDG_RUNTIME_DIR");
	if (!rt) {
		fprintf(stderr, "floor: XDG_RUNTIME_DIR is not set\n");
		return 1;
	}
	snprintf(addr, sizeof(addr), "unix:path=%s/systemd/private", rt);
	if ((r = sd_bus_new(&bus)) < 0 || (r = sd_bus_set_address(bus, addr)) < 0 ||
	    (r = sd_bus_start(bus)) < 0) {
		fprintf(stderr, "floor: cannot connect to %s: %s\n", addr, strerror(-r));
		return 1;
	}
	/* The match before the first job (a job that finishes at once is not missed). */
	r = sd_bus_match_signal(bus, &slot, NULL, "/org/freedesktop/systemd1",
				"org.freedesktop.systemd1.Manager", "JobRemoved", on_job_removed, NULL);
	if (r >= 0)
		r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
				       "org.freedesktop.systemd1.Manager", "Subscribe", &error, NULL, NULL);
	if (r >= 0 && reload)
		r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
				       "org.freedesktop.systemd1.Manager", "Reload", &error, NULL, NULL);
	if (r < 0) {
		fprintf(stderr, "floor: %s\n", error.message ? error.message : strerror(-r));
		return 1;
	}
	optind = 1;
	while ((opt = getopt(argc, argv, "g:u:p:rR:L:S:")) != -1) {
		const char *method = opt == 'R' ? "RestartUnit" : opt == 'L' ? "ReloadUnit" :
				     opt == 'S' ? "StartUnit" : NULL;
		if (method && queue(bus, method, optarg) < 0)
			return 1;
	}
	while (n_left > 0) {
		r = sd_bus_process(bus, NULL);
		if (r < 0) {
			fprintf(stderr, "floor: %s\n", strerror(-r));
			return 1;
		}
		if (r > 0)
			continue;
		r = sd_bus_wait(bus, WAIT_USEC);
		if (r < 0 || r == 0) {
			fprintf(stderr, "floor: %d job(s) did not finish\n", n_left);
			return 1;
		}
	}
	for (int i = 0; i < n_jobs; i++)
		free(jobs[i].path);
	sd_bus_slot_unref(slot);
	sd_bus_flush_close_unref(bus);
	return n_bad ? 1 : 0;
}
