/* The fleet: section of the configuration: its table, the checks of an etcd endpoint and of
 * a group or host name, and the parsers of max_parallel, canary and lease_ttl; which settings
 * belong together, and the host name a fleet uses when host: is not set.
 *
 * Deliberately not here: etcd itself, the slots and the rollout (fleet.c, rollout.c), the
 * checks and parsers other sections share (config-schema.c, config-private.h). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config-private.h"
#include "config-walk.h"
#include "config.h"
#include "util.h"

#define FLEET_MAX_SLOTS 1024U /* slot/0 .. slot/1023: a host looks at each while it waits */
#define FLEET_NAME_WHY "is not a name of letters, digits, '_', '.' and '-' (at most 253)"

/* An etcd client endpoint: fleet.c appends /v3/... to it, which a query or a fragment would
 * swallow. */
static bool etcd_url_ok(const char *s)
{
	return config_http_url_ok(s) && !strpbrk(s, "?#");
}

/* A fleet's group or host: it becomes one component of an etcd key (/autopull/GROUP/...)
 * and is shown to operators, so nothing that could separate or forge one. */
static bool fleet_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 253 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

/* A duration into a uint64_t (struct ap_fleet_config). */
static int p_usec64(struct ap_config_walk *c, struct ap_config_node *n,
		    const struct ap_config_field *f, void *base)
{
	unsigned long long v;
	int r = config_duration(c, n, f, &v);

	if (r >= 0)
		*AP_CONFIG_FIELD(base, f, uint64_t) = v;
	return r;
}

/* max_parallel: 0 slots would make every host wait for ever. */
static int p_max_parallel(struct ap_config_walk *c, struct ap_config_node *n,
			  const struct ap_config_field *f, void *base)
{
	return config_number(c, n, f, 1, FLEET_MAX_SLOTS, AP_CONFIG_FIELD(base, f, unsigned));
}

/* canary: how many hosts go first (any of them), or which ones (their count is the number). */
static int p_canary(struct ap_config_walk *c, struct ap_config_node *n,
		    const struct ap_config_field *f, void *base)
{
	struct ap_fleet_config *fl = base;
	const struct ap_config_field hosts = {
		.key = f->key, .offset = offsetof(struct ap_fleet_config, canary_hosts),
		.flags = AP_CONFIG_NONEMPTY | AP_CONFIG_UNIQUE, .check = fleet_name_ok,
		.why = FLEET_NAME_WHY,
	};
	char buf[AP_CONFIG_SHOWN_MAX];
	const char *s = NULL;
	int r;

	if (ap_config_is(n, AP_CONFIG_SEQUENCE)) {
		r = config_parse_seq(c, n, &hosts, base);
		if (r >= 0)
			fl->canary = (unsigned)ap_strv_length(fl->canary_hosts);
		return r;
	}
	r = ap_config_str(c, n, f, &s);
	if (r < 0)
		return r;
	if (!config_number_in(s, 0, FLEET_MAX_SLOTS, &fl->canary))
		return ap_config_fail(c, n, "%s: '%s' is not a number of hosts (0 to %u) or a "
				      "list of host names", f->key, ap_config_shown(n, buf),
				      FLEET_MAX_SLOTS);
	return 0;
}

/* etcd leases count whole seconds; with 1 s a keepalive could never come in time. */
static int p_lease_ttl(struct ap_config_walk *c, struct ap_config_node *n,
		       const struct ap_config_field *f, void *base)
{
	char buf[AP_CONFIG_SHOWN_MAX];
	int r = p_usec64(c, n, f, base);
	uint64_t v = *AP_CONFIG_FIELD(base, f, uint64_t);

	if (r >= 0 && (v < 2000000 || v % 1000000))
		return ap_config_fail(c, n, "%s: '%s' must be whole seconds, at least 2s", f->key,
				      ap_config_shown(n, buf));
	return r;
}

/* The TLS files belong together and to https://; the host defaults to the name the
 * configuration is loaded for, which must then be usable as a fleet name too. */
int config_parse_fleet(struct ap_config_walk *c, struct ap_config_node *n,
		       const struct ap_config_field *f, void *base)
{
	struct ap_fleet_config *fl = AP_CONFIG_FIELD(base, f, struct ap_fleet_config);
	bool https = false;
	int r = ap_config_walk_mapping(c, n, f->sub, fl);

	if (r < 0)
		return r;
	if (!fl->cert_file != !fl->key_file)
		return ap_config_fail(c, n, "fleet: cert_file and key_file go together (a "
				      "client certificate and its key)");
	for (size_t i = 0; fl->etcd[i]; i++)
		https = https || ap_startswith(fl->etcd[i], "https://");
	if ((fl->ca_file || fl->cert_file) && !https)
		return ap_config_fail(c, n, "fleet: ca_file, cert_file and key_file need an "
				      "https:// endpoint in etcd");
	if (!fl->host && !fleet_name_ok(c->host))
		return ap_config_fail(c, n, "fleet: this host's name '%.64s' %s; set host:",
				      c->host, FLEET_NAME_WHY);
	if (!fl->host && !(fl->host = strdup(c->host)))
		return -ENOMEM;
	fl->enabled = true;
	return 0;
}

static const struct ap_config_field fleet_fields[] = {
	SEQ("etcd", struct ap_fleet_config, etcd, AP_CONFIG_REQUIRED | AP_CONFIG_NONEMPTY,
	    etcd_url_ok, "is not an http(s):// URL of an endpoint (no user:password@, query or "
	    "fragment)"),
	ABS_FILE("ca_file", struct ap_fleet_config, ca_file),
	ABS_FILE("cert_file", struct ap_fleet_config, cert_file),
	ABS_FILE("key_file", struct ap_fleet_config, key_file),
	STR("group", struct ap_fleet_config, group, AP_CONFIG_REQUIRED, fleet_name_ok,
	    FLEET_NAME_WHY),
	STR("host", struct ap_fleet_config, host, 0, fleet_name_ok, FLEET_NAME_WHY),
	{ .key = "max_parallel", .type = AP_CONFIG_SCALAR, .parse = p_max_parallel,
	  .offset = offsetof(struct ap_fleet_config, max_parallel) },
	{ .key = "canary", .type = AP_CONFIG_SCALAR, .parse = p_canary,
	  .offset = offsetof(struct ap_fleet_config, canary), .flags = AP_CONFIG_OR_LIST },
	{ .key = "lock_timeout", .type = AP_CONFIG_SCALAR, .parse = p_usec64,
	  .offset = offsetof(struct ap_fleet_config, lock_timeout_usec) },
	{ .key = "lease_ttl", .type = AP_CONFIG_SCALAR, .parse = p_lease_ttl,
	  .offset = offsetof(struct ap_fleet_config, lease_ttl_usec) },
};

const struct ap_config_schema config_fleet_schema = {
	"fleet", fleet_fields, ELEMENTSOF(fleet_fields)
};

/* Duplicate keys are tracked in a bit mask, one bit per field. */
_Static_assert(ELEMENTSOF(fleet_fields) <= 32,
	       "a schema table has more fields than the duplicate mask has bits");
