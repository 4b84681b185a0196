/* The group as etcd holds it, for `autopull fleet status` (see fleet.h): the slots taken,
 * each host's last result, the commits marked bad and a commit's canary progress. Only
 * reads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet-private.h"
#include "log.h"
#include "util.h"

/* One more zeroed element at the end of *array (n elements of size bytes), or NULL. */
static void *append_one(void *array, size_t n, size_t size)
{
	char **a = array, *more = realloc(*a, (n + 1) * size);

	if (!more)
		return NULL;
	*a = more;
	return memset(more + n * size, 0, size);
}

/* "HOST REST" into its two parts. */
static int split_host(const char *value, char **ret_host, char **ret_rest)
{
	const char *sp = strchr(value, ' ');

	*ret_host = sp ? strndup(value, (size_t)(sp - value)) : strdup(value);
	*ret_rest = strdup(sp ? sp + 1 : "");
	return *ret_host && *ret_rest ? 0 : -ENOMEM;
}

static int collect_slot(const char *key, const char *value, int64_t lease, void *userdata)
{
	struct ap_fleet_status *s = userdata;
	struct ap_fleet_slot_holder *h;
	unsigned long n;
	char *end;

	errno = 0;
	n = strtoul(key + strlen("slot/"), &end, 10);
	if (errno || *end || n > PARALLEL_MAX)
		return 0;
	h = append_one(&s->slots, s->n_slots, sizeof(*h));
	if (!h)
		return -ENOMEM;
	s->n_slots++;
	h->n = (unsigned)n;
	return split_host(value, &h->host, &h->commit);
}

static int collect_host(const char *key, const char *value, int64_t lease, void *userdata)
{
	struct ap_fleet_status *s = userdata;
	struct ap_fleet_host_state *h;
	char commit[VALUE_MAX], result[VALUE_MAX];
	unsigned long long usec = 0;

	if (sscanf(value, "%1023s %1023s %llu", commit, result, &usec) < 2)
		return 0;
	h = append_one(&s->hosts, s->n_hosts, sizeof(*h));
	if (!h)
		return -ENOMEM;
	s->n_hosts++;
	h->usec = usec;
	h->host = strdup(key + strlen("host/"));
	h->commit = strdup(commit);
	h->result = strdup(result);
	return h->host && h->commit && h->result ? 0 : -ENOMEM;
}

static int collect_bad(const char *key, const char *value, int64_t lease, void *userdata)
{
	struct ap_fleet_status *s = userdata;
	struct ap_fleet_bad *b = append_one(&s->bad, s->n_bad, sizeof(*b));

	if (!b)
		return -ENOMEM;
	s->n_bad++;
	b->commit = strdup(key + strlen("bad/"));
	return b->commit ? split_host(value, &b->host, &b->reason) : -ENOMEM;
}

int ap_fleet_status(struct ap_fleet *f, const char *commit, struct ap_fleet_status *ret)
{
	struct ap_fleet_status s = { 0 };
	int r;

	if (commit && !fleet_commit_ok(commit))
		return ap_log_error(-EINVAL, "fleet: '%s' is not a commit id", commit);
	r = fleet_range(f, "slot/", true, collect_slot, &s);
	if (r >= 0)
		r = fleet_range(f, "host/", true, collect_host, &s);
	if (r >= 0)
		r = fleet_range(f, "bad/", true, collect_bad, &s);
	if (r >= 0 && commit)
		r = fleet_names_of(f, "started", commit, false, &s.started);
	if (r >= 0 && commit)
		r = fleet_names_of(f, "healthy", commit, false, &s.healthy);
	if (r >= 0 && commit && f->c->canary_hosts)
		r = ap_strv_copy(f->c->canary_hosts, &s.canaries);
	else if (r >= 0 && commit)
		r = fleet_names_of(f, "canary", commit, true, &s.canaries);
	if (r < 0) {
		ap_fleet_status_clear(&s);
		return r;
	}
	*ret = s;
	return 0;
}

void ap_fleet_status_clear(struct ap_fleet_status *s)
{
	for (size_t i = 0; i < s->n_slots; i++) {
		free(s->slots[i].host);
		free(s->slots[i].commit);
	}
	for (size_t i = 0; i < s->n_hosts; i++) {
		free(s->hosts[i].host);
		free(s->hosts[i].commit);
		free(s->hosts[i].result);
	}
	for (size_t i = 0; i < s->n_bad; i++) {
		free(s->bad[i].commit);
		free(s->bad[i].host);
		free(s->bad[i].reason);
	}
	free(s->slots);
	free(s->hosts);
	free(s->bad);
	ap_strv_free(s->started);
	ap_strv_free(s->healthy);
	ap_strv_free(s->canaries);
	*s = (struct ap_fleet_status){ 0 };
}
