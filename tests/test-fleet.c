/* The fleet module against a real etcd (Debian etcd-server), started here on 127.0.0.1 with
 * free ports and a temporary data directory and stopped by its pid. Every test uses its own
 * group, so the tests share one etcd. The failure paths come first: no etcd, a configuration
 * the loader should have refused, no free slot, a host killed while holding its slot. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "capture.h"
#include "digest.h"
#include "fleet.h"
#include "http.h"
#include "util.h"

#define ETCD "/usr/bin/etcd"
#define SEC 1000000ULL
#define C1 "1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d"
#define C2 "ffffeeeeddddccccbbbbaaaa9999888877776666"

static struct {
	pid_t pid;
	char dir[PATH_MAX];
	char client[64], peer[64];
} etcd;

static char *endpoints[2];

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void print_log(void)
{
	char path[PATH_MAX + 8], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/log", etcd.dir);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		fprintf(stderr, "etcd: %s", line);
	if (f)
		fclose(f);
}

/* Starts etcd on etcd.dir (its data survives a restart) and waits until it answers. */
static void etcd_start(void)
{
	char data[PATH_MAX + 8], log[PATH_MAX + 8], cluster[96];
	char body[] = "{\"key\":\"AA==\"}";
	char url[96], why[256];
	struct ap_http_request rq = { .url = url, .content_type = "application/json",
				      .body = body, .len = strlen(body), .timeout_usec = SEC };

	snprintf(data, sizeof(data), "%s/data", etcd.dir);
	snprintf(log, sizeof(log), "%s/log", etcd.dir);
	snprintf(cluster, sizeof(cluster), "t=%s", etcd.peer);
	snprintf(url, sizeof(url), "%s/v3/kv/range", etcd.client);
	etcd.pid = fork();
	assert_true(etcd.pid >= 0);
	if (etcd.pid == 0) {
		char *env[] = { "PATH=/usr/bin:/bin", NULL };
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		execle(ETCD, "etcd", "--name", "t", "--data-dir", data, "--listen-client-urls",
		       etcd.client, "--advertise-client-urls", etcd.client, "--listen-peer-urls",
		       etcd.peer, "--initial-advertise-peer-urls", etcd.peer, "--initial-cluster",
		       cluster, "--log-level", "warn", (char *)NULL, env);
		_exit(127);
	}
	for (int i = 0; i < 300; i++) {
		int status;

		if (ap_http_post(&rq, NULL, why, sizeof(why)) == 0)
			return;
		if (waitpid(etcd.pid, &status, WNOHANG) == etcd.pid) {
			print_log();
			fail_msg("etcd exited (status %d) before it answered", status);
		}
		sleep_ms(100);
	}
	print_log();
	fail_msg("etcd did not answer within 30 s: %s", why);
}

static void etcd_stop(void)
{
	if (etcd.pid <= 0)
		return;
	kill(etcd.pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(etcd.pid, NULL, WNOHANG) == etcd.pid) {
			etcd.pid = 0;
			return;
		}
		sleep_ms(100);
	}
	kill(etcd.pid, SIGKILL);
	waitpid(etcd.pid, NULL, 0);
	etcd.pid = 0;
}

static int setup_etcd(void **state)
{
	snprintf(etcd.dir, sizeof(etcd.dir), "/tmp/test-fleet.XXXXXX");
	if (!mkdtemp(etcd.dir))
		return -1;
	snprintf(etcd.client, sizeof(etcd.client), "http://127.0.0.1:%d", free_port());
	snprintf(etcd.peer, sizeof(etcd.peer), "http://127.0.0.1:%d", free_port());
	endpoints[0] = etcd.client;
	etcd_start();
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path) < 0 ? -1 : 0;
}

static int teardown_etcd(void **state)
{
	etcd_stop();
	if (etcd.dir[0])
		nftw(etcd.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* A host of group: max_parallel slots, 2 s leases (the shortest etcd keeps as asked). */
static struct ap_fleet_config config(const char *group, const char *host, unsigned max_parallel)
{
	return (struct ap_fleet_config){ .enabled = true, .etcd = endpoints,
					 .group = (char *)group, .host = (char *)host,
					 .max_parallel = max_parallel, .lock_timeout_usec = 10 * SEC,
					 .lease_ttl_usec = 2 * SEC };
}

static struct ap_fleet *open_fleet(const struct ap_fleet_config *c)
{
	struct ap_fleet *f = NULL;

	assert_int_equal(ap_fleet_open(c, &f), 0);
	return f;
}

/* The holders of group's slots, as "N=HOST COMMIT, …" sorted by N. */
static void holders(struct ap_fleet *f, char *out, size_t size)
{
	struct ap_fleet_status s = { 0 };
	size_t len = 0;

	assert_int_equal(ap_fleet_status(f, NULL, &s), 0);
	out[0] = '\0';
	for (unsigned n = 0; n < 16; n++)
		for (size_t i = 0; i < s.n_slots; i++)
			if (s.slots[i].n == n)
				len += (size_t)snprintf(out + len, size - len, "%s%u=%s %.4s",
							len ? ", " : "", n, s.slots[i].host,
							s.slots[i].commit);
	ap_fleet_status_clear(&s);
}

/* etcd's keys and values travel as base64: RFC 4648's vectors both ways. */
static void test_base64(void **state)
{
	static const char *const v[][2] = { { "", "" },         { "f", "Zg==" },
					    { "fo", "Zm8=" },   { "foo", "Zm9v" },
					    { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
					    { "foobar", "Zm9vYmFy" } };
	char enc[16];
	unsigned char dec[16];
	size_t n;

	for (size_t i = 0; i < ELEMENTSOF(v); i++) {
		assert_int_equal(ap_digest_base64_encode(v[i][0], strlen(v[i][0]), enc, sizeof(enc)), 0);
		assert_string_equal(enc, v[i][1]);
		assert_int_equal(ap_digest_base64_decode(enc, strlen(enc), dec, sizeof(dec), &n), 0);
		assert_int_equal(n, strlen(v[i][0]));
		assert_memory_equal(dec, v[i][0], n);
	}
	assert_int_equal(ap_digest_base64_encode("foo", 3, enc, 4), -ENOBUFS); /* no room for NUL */
	assert_int_equal(ap_digest_base64_encode("foo", 3, enc, 5), 0);
}

static void test_open_refuses_bad_config(void **state)
{
	char *none[] = { NULL }, *ftp[] = { "ftp://127.0.0.1:1", NULL };
	struct ap_fleet_config c = config("g", "h", 1);
	struct ap_fleet *f = NULL;

	c.etcd = none;
	assert_int_equal(ap_fleet_open(&c, &f), -EINVAL);
	c.etcd = ftp;
	assert_int_equal(ap_fleet_open(&c, &f), -EINVAL);
	c = config("a/b", "h", 1);
	assert_int_equal(ap_fleet_open(&c, &f), -EINVAL);
	c = config("g", "h\n", 1);
	assert_int_equal(ap_fleet_open(&c, &f), -EINVAL);
	c = config("g", "h", 0);
	assert_int_equal(ap_fleet_open(&c, &f), -EINVAL);
	c = config("g", "h", 1);
	c.lease_ttl_usec = 0;
	assert_int_equal(ap_fleet_open(&c, &f), -EINVAL);
	assert_null(f);
}

static void test_bad_commit_refused(void **state)
{
	struct ap_fleet_config c = config("badcommit", "h", 1);
	_cleanup_(ap_fleet_freep) struct ap_fleet *f = open_fleet(&c);
	char why[256];

	assert_int_equal(ap_fleet_slot_acquire(f, "../x", 0, NULL), -EINVAL);
	assert_int_equal(ap_fleet_mark_bad(f, "ABC/def", "r"), -EINVAL);
	assert_int_equal(ap_fleet_may_start(f, "", why, sizeof(why)), -EINVAL);
	assert_int_equal(ap_fleet_slot(f), -1);
}

/* Nothing listens on either endpoint: -EHOSTUNREACH at once, not after the lock timeout. */
static void test_etcd_down(void **state)
{
	char a[64], b[64];
	char *dead[] = { a, b, NULL };
	struct ap_fleet_config c = config("down", "h", 1);
	_cleanup_(ap_fleet_freep) struct ap_fleet *f = NULL;
	uint64_t waited = 1;
	char why[256];
	char *bad = NULL;

	snprintf(a, sizeof(a), "http://127.0.0.1:%d", free_port());
	snprintf(b, sizeof(b), "http://127.0.0.1:%d/", free_port());
	c.etcd = dead;
	c.canary = 1;
	f = open_fleet(&c);
	assert_int_equal(ap_fleet_slot_acquire(f, C1, 60 * SEC, &waited), -EHOSTUNREACH);
	assert_true(waited < 60 * SEC);
	print_message("etcd down detected after %.1f ms\n", (double)waited / 1000);
	assert_int_equal(ap_fleet_slot(f), -1);
	assert_int_equal(ap_fleet_is_bad(f, C1, &bad), -EHOSTUNREACH);
	assert_null(bad);
	assert_int_equal(ap_fleet_may_start(f, C1, why, sizeof(why)), -EHOSTUNREACH);
	assert_int_equal(ap_fleet_mark_healthy(f, C1), -EHOSTUNREACH);
	assert_int_equal(ap_fleet_slot_release(f), 0);
}

/* etcd accepts connections but never answers (stopped): the request's deadline makes it
 * -EHOSTUNREACH too. */
static void test_etcd_frozen(void **state)
{
	struct ap_fleet_config c = config("frozen", "h", 1);
	_cleanup_(ap_fleet_freep) struct ap_fleet *f = open_fleet(&c);
	uint64_t waited = 0;
	int r;

	assert_int_equal(kill(etcd.pid, SIGSTOP), 0);
	r = ap_fleet_slot_acquire(f, C1, 0, &waited);
	assert_int_equal(kill(etcd.pid, SIGCONT), 0);
	assert_int_equal(r, -EHOSTUNREACH);
	print_message("frozen etcd detected after %.1f s\n", (double)waited / SEC);
	assert_int_equal(ap_fleet_slot_acquire(f, C1, 10 * SEC, NULL), 0);
	assert_int_equal(ap_fleet_slot_release(f), 0);
}

/* The first endpoint is dead: the second answers. */
static void test_next_endpoint(void **state)
{
	char dead[64];
	char *eps[] = { dead, etcd.client, NULL };
	struct ap_fleet_config c = config("failover", "h", 1);
	_cleanup_(ap_fleet_freep) struct ap_fleet *f = NULL;
	char got[256];

	snprintf(dead, sizeof(dead), "http://127.0.0.1:%d", free_port());
	c.etcd = eps;
	f = open_fleet(&c);
	assert_int_equal(ap_fleet_slot_acquire(f, C1, 0, NULL), 0);
	holders(f, got, sizeof(got));
	assert_string_equal(got, "0=h 1a2b");
	assert_int_equal(ap_fleet_slot_release(f), 0);
	holders(f, got, sizeof(got));
	assert_string_equal(got, "");
}

/* max_parallel 2, three hosts: the third gets no slot until one is released. */
static void test_third_host_waits(void **state)
{
	struct ap_fleet_config ca = config("par", "a", 2), cb = config("par", "b", 2),
			       cc = config("par", "c", 2);
	_cleanup_(ap_fleet_freep) struct ap_fleet *a = open_fleet(&ca);
	_cleanup_(ap_fleet_freep) struct ap_fleet *b = open_fleet(&cb);
	_cleanup_(ap_fleet_freep) struct ap_fleet *c = open_fleet(&cc);
	uint64_t waited = 0;
	char got[256];

	assert_int_equal(ap_fleet_slot_acquire(a, C1, 0, NULL), 0);
	assert_int_equal(ap_fleet_slot_acquire(b, C1, 0, NULL), 0);
	assert_int_equal(ap_fleet_slot_acquire(a, C1, 0, NULL), -EBUSY);
	assert_int_equal(ap_fleet_slot_acquire(c, C1, 300 * 1000, &waited), -ETIMEDOUT);
	assert_true(waited >= 300 * 1000);
	assert_int_equal(ap_fleet_slot(c), -1);
	holders(c, got, sizeof(got));
	assert_string_equal(got, "0=a 1a2b, 1=b 1a2b");

	assert_int_equal(ap_fleet_slot_release(a), 0);
	assert_int_equal(ap_fleet_slot_acquire(c, C1, 10 * SEC, &waited), 0);
	assert_int_equal(ap_fleet_slot(c), 0);
	holders(c, got, sizeof(got));
	assert_string_equal(got, "0=c 1a2b, 1=b 1a2b");
	assert_int_equal(ap_fleet_slot_release(b), 0);
	assert_int_equal(ap_fleet_slot_release(c), 0);
	holders(c, got, sizeof(got));
	assert_string_equal(got, "");
}

/* The keep-alive holds the slot past its lease's TTL. */
static void test_keepalive_holds_slot(void **state)
{
	struct ap_fleet_config ca = config("keep", "a", 1), cb = config("keep", "b", 1);
	_cleanup_(ap_fleet_freep) struct ap_fleet *a = open_fleet(&ca);
	_cleanup_(ap_fleet_freep) struct ap_fleet *b = open_fleet(&cb);
	char got[256];

	assert_int_equal(ap_fleet_slot_acquire(a, C1, 0, NULL), 0);
	sleep_ms(5000); /* 2.5 TTLs */
	assert_int_equal(ap_fleet_slot_acquire(b, C1, 0, NULL), -ETIMEDOUT);
	holders(b, got, sizeof(got));
	assert_string_equal(got, "0=a 1a2b");
	assert_int_equal(ap_fleet_slot_release(a), 0);
}

/* A host killed while holding its slot (its handle freed: no keep-alive, no revoke): the
 * slot is free again once the lease expires. */
static void test_killed_host_slot_expires(void **state)
{
	struct ap_fleet_config ca = config("killed", "a", 1), cb = config("killed", "b", 1);
	struct ap_fleet *a = open_fleet(&ca);
	_cleanup_(ap_fleet_freep) struct ap_fleet *b = open_fleet(&cb);
	uint64_t waited = 0;
	char got[256];

	assert_int_equal(ap_fleet_slot_acquire(a, C1, 0, NULL), 0);
	ap_fleet_free(a);
	assert_int_equal(ap_fleet_slot_acquire(b, C1, 0, NULL), -ETIMEDOUT);
	holders(b, got, sizeof(got));
	assert_string_equal(got, "0=a 1a2b");
	assert_int_equal(ap_fleet_slot_acquire(b, C1, 10 * SEC, &waited), 0);
	print_message("slot of a killed host free after %.1f s (lease TTL 2 s)\n",
		      (double)waited / SEC);
	holders(b, got, sizeof(got));
	assert_string_equal(got, "0=b 1a2b");
	assert_int_equal(ap_fleet_slot_release(b), 0);
}

/* Revokes every lease etcd has, as etcd does with a lease whose keep-alives stopped reaching
 * it for its TTL. */
static void revoke_all_leases(void)
{
	char url[96], why[256], body[64];
	struct ap_buf answer = { 0 };
	struct ap_http_request rq = { .url = url, .content_type = "application/json", .body = "{}",
				      .len = 2, .timeout_usec = 5 * SEC, .answer = &answer,
				      .answer_max = 65536 };
	const char *p;
	int n = 0;

	snprintf(url, sizeof(url), "%s/v3/lease/leases", etcd.client);
	assert_int_equal(ap_http_post(&rq, NULL, why, sizeof(why)), 0);
	assert_int_equal(ap_buf_append(&answer, "", 1), 0);
	snprintf(url, sizeof(url), "%s/v3/lease/revoke", etcd.client);
	for (p = answer.data; (p = strstr(p, "\"ID\":\"")); p += 6, n++) {
		struct ap_http_request rv = { .url = url, .content_type = "application/json",
					      .body = body, .timeout_usec = 5 * SEC };

		rv.len = (size_t)snprintf(body, sizeof(body), "{\"ID\":\"%llu\"}",
					  strtoull(p + 6, NULL, 10));
		assert_int_equal(ap_http_post(&rv, NULL, why, sizeof(why)), 0);
	}
	assert_true(n > 0);
	ap_buf_clear(&answer);
}

/* The holder's lease ends while it works (etcd revoked it): the slot goes with it, another
 * host may take it, and the holder says so when it releases. */
static void test_lease_lost_while_held(void **state)
{
	struct ap_fleet_config ca = config("lost", "a", 1), cb = config("lost", "b", 1);
	_cleanup_(ap_fleet_freep) struct ap_fleet *a = open_fleet(&ca);
	_cleanup_(ap_fleet_freep) struct ap_fleet *b = open_fleet(&cb);
	_cleanup_free_ char *said = NULL;
	struct capture cap;
	char got[256];

	assert_int_equal(ap_fleet_slot_acquire(a, C1, 0, NULL), 0);
	revoke_all_leases();
	sleep_ms(1500); /* two keep-alive periods (TTL/3) */
	assert_int_equal(ap_fleet_slot_acquire(b, C1, 0, NULL), 0);
	capture_start(&cap, etcd.dir);
	assert_int_equal(ap_fleet_slot_release(a), 0);
	said = capture_end(&cap);
	assert_non_null(strstr(said, "fleet: the lease of '/autopull/lost/slot/0' expired while it "
				     "was held"));
	holders(b, got, sizeof(got));
	assert_string_equal(got, "0=b 1a2b"); /* a's release did not take b's slot */
	assert_int_equal(ap_fleet_slot_release(b), 0);
}

static void test_bad_round_trip(void **state)
{
	struct ap_fleet_config ca = config("bad", "a", 1), cb = config("bad", "b", 1);
	_cleanup_(ap_fleet_freep) struct ap_fleet *a = open_fleet(&ca);
	_cleanup_(ap_fleet_freep) struct ap_fleet *b = open_fleet(&cb);
	_cleanup_free_ char *why = NULL;
	struct ap_fleet_status s = { 0 };

	assert_int_equal(ap_fleet_is_bad(b, C1, &why), 0);
	assert_null(why);
	assert_int_equal(ap_fleet_mark_bad(a, C1, "web.service failed: exit-code"), 0);
	assert_int_equal(ap_fleet_is_bad(b, C1, &why), 1);
	assert_string_equal(why, "a: web.service failed: exit-code");
	assert_int_equal(ap_fleet_is_bad(b, C2, NULL), 0);
	assert_int_equal(ap_fleet_status(b, NULL, &s), 0);
	assert_int_equal(s.n_bad, 1);
	assert_string_equal(s.bad[0].commit, C1);
	assert_string_equal(s.bad[0].host, "a");
	ap_fleet_status_clear(&s);
}

static void test_record_host(void **state)
{
	struct ap_fleet_config ca = config("rec", "a", 1);
	_cleanup_(ap_fleet_freep) struct ap_fleet *a = open_fleet(&ca);
	struct ap_fleet_status s = { 0 };

	assert_int_equal(ap_fleet_record_host(a, C1, "bad result"), -EINVAL);
	assert_int_equal(ap_fleet_record_host(a, C1, "applied"), 0);
	assert_int_equal(ap_fleet_record_host(a, C2, "rolled-back"), 0);
	assert_int_equal(ap_fleet_status(a, NULL, &s), 0);
	assert_int_equal(s.n_hosts, 1);
	assert_string_equal(s.hosts[0].host, "a");
	assert_string_equal(s.hosts[0].commit, C2);
	assert_string_equal(s.hosts[0].result, "rolled-back");
	assert_true(s.hosts[0].usec > 0);
	ap_fleet_status_clear(&s);
}

/* canary: 1: the first host goes, the second waits until the first reports healthy. */
static void test_canary_count(void **state)
{
	struct ap_fleet_config ca = config("can", "web1", 1), cb = config("can", "web2", 1);
	_cleanup_(ap_fleet_freep) struct ap_fleet *a = NULL, *b = NULL;
	char why[256];

	ca.canary = cb.canary = 1;
	a = open_fleet(&ca);
	b = open_fleet(&cb);
	assert_int_equal(ap_fleet_may_start(a, C1, why, sizeof(why)), 1);
	assert_int_equal(ap_fleet_may_start(b, C1, why, sizeof(why)), 0);
	assert_string_equal(why, "waiting for 1 of 1 canary host(s) to report 1a2b3c4d5e6f healthy "
				 "(canary: web1)");
	assert_int_equal(ap_fleet_may_start(a, C1, why, sizeof(why)), 1); /* started already */
	assert_int_equal(ap_fleet_mark_started(a, C1), 0);
	assert_int_equal(ap_fleet_may_start(b, C1, why, sizeof(why)), 0);
	/* another commit has its own canaries: b is first this time */
	assert_int_equal(ap_fleet_may_start(b, C2, why, sizeof(why)), 1);
	assert_int_equal(ap_fleet_mark_healthy(a, C1), 0);
	assert_int_equal(ap_fleet_may_start(b, C1, why, sizeof(why)), 1);
}

struct racer {
	struct ap_fleet_config c;
	char host[16];
	int r;
};

static void *race(void *userdata)
{
	struct racer *x = userdata;
	struct ap_fleet *f = NULL;
	char why[256];

	x->r = ap_fleet_open(&x->c, &f);
	if (x->r == 0)
		x->r = ap_fleet_may_start(f, C1, why, sizeof(why));
	ap_fleet_free(f);
	return NULL;
}

struct slot_racer {
	struct ap_fleet_config c;
	struct ap_fleet *f;
	char host[16];
	int r;
};

static void *race_slot(void *userdata)
{
	struct slot_racer *x = userdata;

	x->r = ap_fleet_slot_acquire(x->f, C1, 0, NULL);
	return NULL;
}

/* max_parallel 2, eight hosts taking a slot at once: exactly two get one, and they hold
 * different slots. */
static void test_slot_race(void **state)
{
	static struct slot_racer x[8];
	pthread_t t[8];
	int got = 0;
	char who[256];

	for (int i = 0; i < 8; i++) {
		snprintf(x[i].host, sizeof(x[i].host), "h%d", i);
		x[i].c = config("slotrace", x[i].host, 2);
		x[i].f = open_fleet(&x[i].c);
	}
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&t[i], NULL, race_slot, &x[i]), 0);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_true(x[i].r == 0 || x[i].r == -ETIMEDOUT);
		got += x[i].r == 0;
	}
	assert_int_equal(got, 2);
	holders(x[0].f, who, sizeof(who));
	for (int i = 0; i < 8; i++) {
		char mine[32];

		snprintf(mine, sizeof(mine), "%d=%s 1a2b", ap_fleet_slot(x[i].f), x[i].host);
		assert_true(x[i].r != 0 || strstr(who, mine));
		assert_int_equal(ap_fleet_slot_release(x[i].f), 0);
		ap_fleet_free(x[i].f);
	}
}

/* canary: 2, eight hosts asking at once: exactly two go. */
static void test_canary_race(void **state)
{
	struct racer x[8];
	pthread_t t[8];
	int go = 0;

	for (int i = 0; i < 8; i++) {
		snprintf(x[i].host, sizeof(x[i].host), "h%d", i);
		x[i].c = config("race", x[i].host, 1);
		x[i].c.canary = 2;
		assert_int_equal(pthread_create(&t[i], NULL, race, &x[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_true(x[i].r == 0 || x[i].r == 1);
		go += x[i].r;
	}
	assert_int_equal(go, 2);
}

/* canary: [web1, web2]: they go; the others wait for both. */
static void test_canary_hosts(void **state)
{
	char *list[] = { "web1", "web2", NULL };
	struct ap_fleet_config c1 = config("canl", "web1", 1), c2 = config("canl", "web2", 1),
			       c3 = config("canl", "web3", 1);
	_cleanup_(ap_fleet_freep) struct ap_fleet *a = NULL, *b = NULL, *c = NULL;
	char why[256];

	c1.canary_hosts = c2.canary_hosts = c3.canary_hosts = list;
	c1.canary = c2.canary = c3.canary = 2;
	a = open_fleet(&c1);
	b = open_fleet(&c2);
	c = open_fleet(&c3);
	assert_int_equal(ap_fleet_may_start(c, C1, why, sizeof(why)), 0);
	assert_string_equal(why, "waiting for 2 of 2 canary host(s) to report 1a2b3c4d5e6f healthy "
				 "(canary: web1, web2)");
	assert_int_equal(ap_fleet_may_start(b, C1, why, sizeof(why)), 1);
	assert_int_equal(ap_fleet_may_start(a, C1, why, sizeof(why)), 1);
	assert_int_equal(ap_fleet_mark_healthy(a, C1), 0);
	assert_int_equal(ap_fleet_may_start(c, C1, why, sizeof(why)), 0);
	assert_string_equal(why, "waiting for 1 of 2 canary host(s) to report 1a2b3c4d5e6f healthy "
				 "(canary: web1, web2)");
	assert_int_equal(ap_fleet_mark_healthy(c, C1), 0); /* not a canary: does not count */
	assert_int_equal(ap_fleet_may_start(c, C1, why, sizeof(why)), 0);
	assert_int_equal(ap_fleet_mark_healthy(b, C1), 0);
	assert_int_equal(ap_fleet_may_start(c, C1, why, sizeof(why)), 1);
}

struct waiter {
	struct ap_fleet *f;
	uint64_t waited;
	int r;
};

static void *wait_slot(void *userdata)
{
	struct waiter *w = userdata;

	w->r = ap_fleet_slot_acquire(w->f, C2, 60 * SEC, &w->waited);
	return NULL;
}

/* etcd restarts (same data) while a host waits for a slot: it gets the slot afterwards. */
static void test_etcd_restart_mid_wait(void **state)
{
	struct ap_fleet_config ca = config("restart", "a", 1), cb = config("restart", "b", 1);
	_cleanup_(ap_fleet_freep) struct ap_fleet *a = NULL, *b = NULL;
	struct waiter w = { 0 };
	pthread_t t;
	char got[256];

	ca.lease_ttl_usec = cb.lease_ttl_usec = 10 * SEC; /* outlives the restart */
	a = open_fleet(&ca);
	b = open_fleet(&cb);
	w.f = b;
	assert_int_equal(ap_fleet_slot_acquire(a, C1, 0, NULL), 0);
	assert_int_equal(pthread_create(&t, NULL, wait_slot, &w), 0);
	sleep_ms(500);
	etcd_stop();
	sleep_ms(1000);
	etcd_start();
	holders(a, got, sizeof(got));
	assert_string_equal(got, "0=a 1a2b");
	assert_int_equal(ap_fleet_slot_release(a), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(w.r, 0);
	holders(a, got, sizeof(got));
	assert_string_equal(got, "0=b ffff");
	assert_int_equal(ap_fleet_slot_release(b), 0);
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/* Taking a free slot, over and over: reported, not asserted (AP_FLEET_BENCH=N for more). */
static void test_free_slot_latency(void **state)
{
	struct ap_fleet_config c = config("lat", "a", 1);
	_cleanup_(ap_fleet_freep) struct ap_fleet *f = open_fleet(&c);
	const char *env = getenv("AP_FLEET_BENCH");
	size_t n = env ? strtoul(env, NULL, 10) : 20;
	_cleanup_free_ uint64_t *t = calloc(n ? n : 1, sizeof(*t));

	assert_non_null(t);
	for (size_t i = 0; i < n; i++) {
		uint64_t start = ap_now_monotonic_usec();

		assert_int_equal(ap_fleet_slot_acquire(f, C1, 0, NULL), 0);
		t[i] = ap_now_monotonic_usec() - start;
		assert_int_equal(ap_fleet_slot_release(f), 0);
	}
	if (n == 0)
		return;
	qsort(t, n, sizeof(*t), cmp_u64);
	print_message("free slot acquisition over %zu: median %.2f ms, p95 %.2f ms, max %.2f ms\n",
		      n, (double)t[n / 2] / 1000, (double)t[(n * 95) / 100 < n ? (n * 95) / 100 : n - 1] / 1000,
		      (double)t[n - 1] / 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_open_refuses_bad_config),
		cmocka_unit_test(test_bad_commit_refused),
		cmocka_unit_test(test_etcd_down),
		cmocka_unit_test(test_etcd_frozen),
		cmocka_unit_test(test_next_endpoint),
		cmocka_unit_test(test_third_host_waits),
		cmocka_unit_test(test_slot_race),
		cmocka_unit_test(test_killed_host_slot_expires),
		cmocka_unit_test(test_keepalive_holds_slot),
		cmocka_unit_test(test_lease_lost_while_held),
		cmocka_unit_test(test_bad_round_trip),
		cmocka_unit_test(test_record_host),
		cmocka_unit_test(test_canary_count),
		cmocka_unit_test(test_canary_race),
		cmocka_unit_test(test_canary_hosts),
		cmocka_unit_test(test_etcd_restart_mid_wait),
		cmocka_unit_test(test_free_slot_latency),
	};

	return cmocka_run_group_tests(tests, setup_etcd, teardown_etcd);
}
