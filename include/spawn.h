/* Runs external validators (systemd-analyze verify, the operator's validate: argv) with
 * posix_spawn: argv only, never a shell, a clean environment, stdin from /dev/null, cwd "/",
 * no inherited fds but 0/1/2, stdout+stderr captured (bounded), a timeout for the whole run,
 * and nothing the validator started left running afterwards. */
#pragma once
#include <stddef.h>

#define AP_SPAWN_MAX_OUTPUT (64 * 1024)

struct ap_spawn_result {
	int exit_status;   /* exit code, or 128+signal when killed by a signal */
	int timed_out;     /* 1 when killed because of the timeout */
	char *output;      /* captured stdout+stderr, NUL-terminated; past the cap, its first
			    * half and its newest bytes (the middle is dropped) */
	size_t output_len;
};
void ap_spawn_result_clear(struct ap_spawn_result *r);

/* A timeout of 0 means none; it bounds the wait for the output and for the exit. The child
 * runs in a new session; when it has exited or timed out, everything it started (even
 * setsid()ed, double-forked processes) is killed with SIGKILL and reaped. The caller must have
 * no other children (they would be killed too). argv[0] is looked up in a fixed PATH
 * (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:
 * /sbin:/bin) unless it contains a '/'. env is NULL-terminated "K=V" strings (NULL: the
 * child gets only PATH and LANG=C.UTF-8). Returns 0 when the child ran (whatever its exit
 * status), <0 when it could not be spawned (-ENOENT: not found) or a process it started
 * could not be killed and reaped within 5 s (-EBUSY). */
int ap_spawn_run(char *const argv[], char *const env[], unsigned long long timeout_usec,
		 struct ap_spawn_result *ret);

/* The same, with stdin read from the file input (NULL: /dev/null): for verifiers that take
 * the data to check on stdin (ssh-keygen -Y verify). */
int ap_spawn_run_input(char *const argv[], char *const env[], unsigned long long timeout_usec,
		       const char *input, struct ap_spawn_result *ret);

/* ap_spawn_run in two halves, so that a child (systemd-analyze verify) runs while the caller
 * does other work: ap_spawn_start starts it with the same containment, and its deadline
 * counts from there; ap_spawn_join waits for it (until that deadline), collects its status and
 * output, kills and reaps all it started (as ap_spawn_run, and with the same returns), and
 * frees the handle. ap_spawn_abort (NULL: nothing) kills and reaps it all instead, for a run
 * that fails between the two. Every started child is joined or aborted. Between the two the
 * child's output waits in its pipe (a chatty child blocks until the join: it cannot be lost)
 * and runs of ap_spawn_run leave a started child alone; the caller has no other children. */
struct ap_spawn;
int ap_spawn_start(char *const argv[], char *const env[], unsigned long long timeout_usec,
		   struct ap_spawn **ret);
int ap_spawn_join(struct ap_spawn *s, struct ap_spawn_result *ret);
void ap_spawn_abort(struct ap_spawn *s);

/* Expands a validate: template: every "%s" in an argument becomes path, "%%" becomes "%".
 * Returns a new argv (NULL-terminated). */
int ap_spawn_expand_argv(char *const tmpl[], const char *path, char ***ret);

/* Where argv[0] name would be found (the fixed PATH, or name itself when it has a '/'):
 * -ENOENT when it is not an executable file. */
int ap_spawn_find(const char *name, char **ret);
