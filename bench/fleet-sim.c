/* fleet-sim: a rollout of one commit across N simulated hosts on a real etcd, through
 * autopull's own fleet client (src/fleet.c). Each host is a forked process with its own
 * handle and lease, and does what a host does around its apply: the canary gate, a slot
 * (waiting for one), the change-and-settle phase (a sleep of SETTLE ms), healthy, release.
 * Prints one JSON line: the rollout's wall time, the ideal one (ceil(N / max_parallel)
 * phases), the most hosts inside the phase at once (from each host's own clock readings),
 * and the slot wait. A helper of bench/fleet-sim.sh, built by it (not part of autopull).
 *
 *   fleet-sim ENDPOINT GROUP HOSTS MAX_PARALLEL SETTLE_MS [CANARY]
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fleet.h"
#include "log.h"
#include "util.h"

#define COMMIT "5a1b2c3d4e5f60718293a4b5c6d7e8f901234567"

struct host_times {
	uint64_t in, out, waited; /* monotonic usec; the slot wait */
	int rc;
};

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* One host: the gate (retried as a timer tick would), the slot, the phase, healthy. */
static int host(struct ap_fleet_config c, unsigned i, unsigned settle_ms, struct host_times *t)
{
	char name[32], why[256];
	struct ap_fleet *f = NULL;
	int k;

	snprintf(name, sizeof(name), "sim%03u", i);
	c.host = name;
	if (ap_fleet_open(&c, &f) < 0)
		return 1;
	while ((k = ap_fleet_may_start(f, COMMIT, why, sizeof(why))) == 0)
		usleep(200 * 1000); /* the next tick of a waiting host */
	if (k > 0)
		k = ap_fleet_slot_acquire(f, COMMIT, c.lock_timeout_usec, &t->waited);
	if (k >= 0) {
		t->in = now_usec();
		usleep(settle_ms * 1000);
		t->out = now_usec();
		k = ap_fleet_mark_healthy(f, COMMIT);
	}
	if (k >= 0)
		k = ap_fleet_slot_release(f);
	ap_fleet_free(f);
	return k < 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The most hosts whose [in, out) overlap. */
static unsigned peak(const struct host_times *t, unsigned n)
{
	unsigned best = 0;

	for (unsigned i = 0; i < n; i++) {
		unsigned inside = 0;

		for (unsigned j = 0; j < n; j++)
			inside += t[j].in <= t[i].in && t[i].in < t[j].out;
		best = inside > best ? inside : best;
	}
	return best;
}

int main(int argc, char **argv)
{
	char *etcd[] = { argc > 1 ? argv[1] : NULL, NULL };
	struct ap_fleet_config c = { .enabled = true, .etcd = etcd,
				     .group = argc > 2 ? argv[2] : NULL,
				     .lock_timeout_usec = 600ULL * 1000000,
				     .lease_ttl_usec = 10ULL * 1000000 };
	unsigned n, settle, failed = 0;
	struct host_times *t;
	uint64_t start, end = 0, *waits;

	if (argc < 6)
		return fprintf(stderr, "usage: fleet-sim ENDPOINT GROUP HOSTS MAX_PARALLEL "
				       "SETTLE_MS [CANARY]\n"), 2;
	n = (unsigned)strtoul(argv[3], NULL, 10);
	c.max_parallel = (unsigned)strtoul(argv[4], NULL, 10);
	settle = (unsigned)strtoul(argv[5], NULL, 10);
	c.canary = argc > 6 ? (unsigned)strtoul(argv[6], NULL, 10) : 0;
	t = mmap(NULL, n * sizeof(*t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	waits = calloc(n ? n : 1, sizeof(*waits));
	if (n == 0 || c.max_parallel == 0 || t == MAP_FAILED || !waits)
		return 2;
	ap_log_set_max_level(AP_LOG_ERR);
	start = now_usec();
	for (unsigned i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid == 0)
			_exit(host(c, i, settle, &t[i]));
		if (pid < 0)
			return 2;
	}
	for (int st; wait(&st) > 0;)
		failed += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	for (unsigned i = 0; i < n; i++) {
		end = t[i].out > end ? t[i].out : end;
		waits[i] = t[i].waited;
	}
	end = end > start ? end : start; /* no host got through: failed says so */
	qsort(waits, n, sizeof(*waits), cmp_u64);
	printf("{\"hosts\": %u, \"max_parallel\": %u, \"canary\": %u, \"settle_ms\": %u, "
	       "\"wall_s\": %.2f, \"ideal_s\": %.2f, \"peak\": %u, \"slot_wait_median_s\": %.2f, "
	       "\"slot_wait_max_s\": %.2f, \"failed\": %u}\n",
	       n, c.max_parallel, c.canary, settle, (end - start) / 1e6,
	       (double)((n + c.max_parallel - 1) / c.max_parallel) * settle / 1e3, peak(t, n),
	       waits[n / 2] / 1e6, waits[n - 1] / 1e6, failed);
	return failed || peak(t, n) > c.max_parallel;
}
