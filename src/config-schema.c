/* The configuration's schema: one table per YAML mapping, one line per key, with the checks
 * each value must pass and the parsers that store it (struct ap_config); which file rules
 * and units entries are for this host, and the %H / %l specifiers of a rule's src. Nodes are
 * seen only through config-walk.h, so that this file never sees libyaml. Add a key by adding
 * a line.
 *
 * Deliberately not here: the YAML itself (config-walk.c), reading the file, the defaults and
 * the owners of the files the configuration names (config.c), the fleet: section
 * (config-fleet.c, with what the two share in config-private.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "config-private.h"
#include "config-schema.h"
#include "config-walk.h"
#include "config.h"
#include "log.h"
#include "util.h"

#define MAX_URL 4096
#define MAX_REF 255
#define MAX_UNIT_NAME 255

/* Value checks. */

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return true;
	return false;
}

static bool url_ok(const char *s)
{
	static const char *const schemes[] = { "file://", "http://", "https://", "ssh://" };

	if (strlen(s) > MAX_URL || has_control(s))
		return false;
	if (s[0] == '/')
		return ap_path_is_normalized_absolute(s);
	for (size_t i = 0; i < ELEMENTSOF(schemes); i++)
		if (ap_startswith(s, schemes[i]) && s[strlen(schemes[i])])
			return true;
	return false;
}

/* Where metrics are pushed, or etcd: http(s) with a host, and no user:password@ in it
 * (credentials come from files, so that the URL can be logged). */
bool config_http_url_ok(const char *s)
{
	const char *rest = ap_startswith(s, "http://")	  ? s + strlen("http://")
			   : ap_startswith(s, "https://") ? s + strlen("https://")
							  : NULL;
	size_t authority;

	if (!rest || strlen(s) > MAX_URL || has_control(s))
		return false;
	authority = strcspn(rest, "/?#");
	return authority > 0 && !memchr(rest, '@', authority);
}

/* A simple git ref name (git check-ref-format): what a branch can be called. */
static bool ref_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MAX_REF || has_control(s) || strpbrk(s, ":~^?*[\\"))
		return false;
	if (s[0] == '-' || s[0] == '/' || s[0] == '.' || strcmp(s, "@") == 0)
		return false;
	if (s[n - 1] == '/' || s[n - 1] == '.' || ap_endswith(s, ".lock"))
		return false;
	return !strstr(s, "..") && !strstr(s, "//") && !strstr(s, "/.") && !strstr(s, "@{");
}

/* A full commit id: an abbreviation could become ambiguous as the history grows. */
static bool commit_id_ok(const char *s)
{
	return strlen(s) == 40 && strspn(s, "0123456789abcdef") == 40;
}

bool config_abs_file_ok(const char *s)
{
	return ap_path_is_normalized_absolute(s) && !ap_endswith(s, "/");
}

static bool abs_ok(const char *s)
{
	return ap_path_is_normalized_absolute(s);
}

static bool units_dir_ok(const char *s)
{
	return !*s || strcmp(s, ".") == 0 || strcmp(s, "/") == 0 || ap_path_is_safe_relative(s);
}

static bool src_ok(const char *s)
{
	return ap_path_is_safe_relative(s);
}

static bool unit_char_ok(char ch, bool glob)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
		return true;
	return strchr(":_.\\-@", ch) || (glob && strchr("*?[]", ch));
}

/* NAME.TYPE as systemd accepts it (at most one '@', not first); watch may also glob NAME. */
static bool unit_name_check(const char *s, bool glob)
{
	static const char *const types[] = { "service", "socket", "timer", "path", "mount",
		"automount", "target", "slice", "swap", "device", "scope" };
	const char *dot = strrchr(s, '.'), *at = strchr(s, '@');
	size_t n = strlen(s);
	bool type_ok = false;

	if (n == 0 || n > MAX_UNIT_NAME || !dot || dot == s)
		return false;
	for (size_t i = 0; i < ELEMENTSOF(types); i++)
		type_ok = type_ok || strcmp(dot + 1, types[i]) == 0;
	for (const char *p = s; type_ok && p < dot; p++)
		type_ok = unit_char_ok(*p, glob);
	return type_ok && (!at || (at != s && at < dot && !strchr(at + 1, '@')));
}

static bool unit_glob_ok(const char *s)
{
	return unit_name_check(s, true);
}

/* A host name or a glob of one: letters, digits, '-', '.', and glob characters. */
static bool host_glob_ok(const char *s)
{
	if (!*s || strlen(s) > 253)
		return false;
	for (const char *c = s; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr("-._*?[]!", *c))
			return false;
	return true;
}

static bool host_matches(const struct ap_config_walk *c, char *const *hosts)
{
	for (size_t i = 0; hosts && hosts[i]; i++)
		if (fnmatch(hosts[i], c->host, FNM_CASEFOLD) == 0 ||
		    fnmatch(hosts[i], c->short_host, FNM_CASEFOLD) == 0)
			return true;
	return !hosts; /* no hosts: every host */
}

/* %H (host name), %l (short host name) and %% in a src path, like systemd's specifiers. The
 * result is checked again: a host name must not make a path unsafe. */
static int expand_specifiers(struct ap_config_walk *c, struct ap_config_node *n, char **path)
{
	struct ap_buf b = { 0 };
	int r = 0;

	if (!strchr(*path, '%'))
		return 0;
	for (const char *p = *path; r >= 0 && *p; p++) {
		if (*p != '%') {
			r = ap_buf_append(&b, p, 1);
			continue;
		}
		p++;
		if (*p == 'H' || *p == 'l')
			r = ap_buf_printf(&b, "%s", *p == 'H' ? c->host : c->short_host);
		else if (*p == '%')
			r = ap_buf_append(&b, "%", 1);
		else
			r = ap_config_fail(c, n, "src '%.64s': unknown specifier '%%%c' (known: "
					   "%%H, %%l, %%%%)", *path, *p ? *p : ' ');
		if (!*p)
			break;
	}
	if (r >= 0 && !ap_path_is_safe_relative(b.data ? b.data : ""))
		r = ap_config_fail(c, n, "src '%.64s' becomes the unsafe path '%.64s' on this host",
				   *path, b.data ? b.data : "");
	if (r < 0) {
		ap_buf_clear(&b);
		return r;
	}
	free(*path);
	*path = b.data;
	return 0;
}

/* Parsers: each stores one value at f->offset in base. */

int config_parse_str(struct ap_config_walk *c, struct ap_config_node *n,
		 const struct ap_config_field *f, void *base)
{
	const char *s = NULL;
	int r = ap_config_str(c, n, f, &s);

	if (r < 0)
		return r;
	*AP_CONFIG_FIELD(base, f, char *) = strdup(s);
	return *AP_CONFIG_FIELD(base, f, char *) ? 0 : -ENOMEM;
}

/* Directories are stored without a trailing '/' so that callers can append "/name". */
static int p_dir(struct ap_config_walk *c, struct ap_config_node *n,
		 const struct ap_config_field *f, void *base)
{
	int r = config_parse_str(c, n, f, base);
	char *s;
	size_t len;

	if (r < 0)
		return r;
	s = *AP_CONFIG_FIELD(base, f, char *);
	len = strlen(s);
	if (len > 1 && s[len - 1] == '/')
		s[len - 1] = '\0';
	return 0;
}

/* A value that is one of two words: 0 for a, 1 for b, or the error naming both. */
static int two_words(struct ap_config_walk *c, struct ap_config_node *n,
		     const struct ap_config_field *f, const char *a, const char *b)
{
	char buf[AP_CONFIG_SHOWN_MAX];
	const char *s = NULL;
	int r = ap_config_str(c, n, f, &s);

	if (r < 0 || strcmp(s, a) == 0 || strcmp(s, b) == 0)
		return r < 0 ? r : strcmp(s, b) == 0;
	return ap_config_fail(c, n, "%s: '%s' is not '%s' or '%s'", f->key,
			      ap_config_shown(n, buf), a, b);
}

static int p_scope(struct ap_config_walk *c, struct ap_config_node *n,
		   const struct ap_config_field *f, void *base)
{
	int r = two_words(c, n, f, "system", "user");

	if (r >= 0)
		*AP_CONFIG_FIELD(base, f, enum ap_scope) = r ? AP_SCOPE_USER : AP_SCOPE_SYSTEM;
	return r < 0 ? r : 0;
}

static int p_drift(struct ap_config_walk *c, struct ap_config_node *n,
		   const struct ap_config_field *f, void *base)
{
	int r = two_words(c, n, f, "warn", "revert");

	if (r >= 0)
		*AP_CONFIG_FIELD(base, f, bool) = r;
	return r < 0 ? r : 0;
}

/* decrypt: age, the one format a secret in the repository may have. */
static int p_decrypt(struct ap_config_walk *c, struct ap_config_node *n,
		     const struct ap_config_field *f, void *base)
{
	char buf[AP_CONFIG_SHOWN_MAX];
	const char *s = NULL;
	int r = ap_config_str(c, n, f, &s);

	if (r >= 0 && strcmp(s, "age") != 0)
		return ap_config_fail(c, n, "decrypt: '%s' is not 'age'", ap_config_shown(n, buf));
	if (r >= 0)
		*AP_CONFIG_FIELD(base, f, bool) = true;
	return r < 0 ? r : 0;
}

/* Octal as chmod writes it: 3 or 4 digits, quoted or not ("0644", 644, 4755). */
static int p_mode(struct ap_config_walk *c, struct ap_config_node *n,
		  const struct ap_config_field *f, void *base)
{
	struct ap_file_rule *rule = base;
	char buf[AP_CONFIG_SHOWN_MAX];
	const char *s = NULL;
	size_t len;
	int r = ap_config_str(c, n, f, &s);

	if (r < 0)
		return r;
	len = strlen(s);
	if (len < 3 || len > 4 || strspn(s, "01234567") != len)
		return ap_config_fail(c, n, "mode: '%s' is not an octal mode of 3 or 4 digits",
			    ap_config_shown(n, buf));
	rule->mode = (mode_t)strtoul(s, NULL, 8);
	rule->has_mode = true;
	return 0;
}

/* A decimal number from min to max, digits only (no sign, no fraction). */
bool config_number_in(const char *s, unsigned min, unsigned max, unsigned *ret)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end || errno || v < min || v > max)
		return false;
	*ret = (unsigned)v;
	return true;
}

int config_number(struct ap_config_walk *c, struct ap_config_node *n,
			const struct ap_config_field *f, unsigned min, unsigned max, unsigned *ret)
{
	char buf[AP_CONFIG_SHOWN_MAX];
	const char *s = NULL;
	int r = ap_config_str(c, n, f, &s);

	if (r < 0)
		return r;
	if (!config_number_in(s, min, max, ret))
		return ap_config_fail(c, n, "%s: '%s' is not a number from %u to %u", f->key,
				      ap_config_shown(n, buf), min, max);
	return 0;
}

static int p_uint(struct ap_config_walk *c, struct ap_config_node *n,
		  const struct ap_config_field *f, void *base)
{
	return config_number(c, n, f, 0, UINT_MAX, AP_CONFIG_FIELD(base, f, unsigned));
}

/* Only the words YAML 1.2 reads as booleans, lower case: "yes" or "on" would be a guess. */
static int p_bool(struct ap_config_walk *c, struct ap_config_node *n,
		  const struct ap_config_field *f, void *base)
{
	char buf[AP_CONFIG_SHOWN_MAX];
	const char *s = NULL;
	int r = ap_config_str(c, n, f, &s);

	if (r < 0)
		return r;
	if (strcmp(s, "true") != 0 && strcmp(s, "false") != 0)
		return ap_config_fail(c, n, "%s: '%s' is not true or false", f->key,
				      ap_config_shown(n, buf));
	*AP_CONFIG_FIELD(base, f, bool) = s[0] == 't';
	return 0;
}

static int p_require(struct ap_config_walk *c, struct ap_config_node *n,
		     const struct ap_config_field *f, void *base)
{
	static const char *const words[] = { [AP_TRUST_EVERY_COMMIT] = "every-commit",
					     [AP_TRUST_FIRST_PARENT] = "first-parent",
					     [AP_TRUST_TIP] = "tip" };
	char buf[AP_CONFIG_SHOWN_MAX];
	const char *s = NULL;
	int r = ap_config_str(c, n, f, &s);

	if (r < 0)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(words); i++)
		if (strcmp(s, words[i]) == 0) {
			*AP_CONFIG_FIELD(base, f, enum ap_trust_require) = (enum ap_trust_require)i;
			return 0;
		}
	return ap_config_fail(c, n, "require: '%s' is not every-commit, first-parent or tip",
			      ap_config_shown(n, buf));
}

int config_duration(struct ap_config_walk *c, struct ap_config_node *n,
		    const struct ap_config_field *f, unsigned long long *ret)
{
	char buf[AP_CONFIG_SHOWN_MAX];
	const char *s = NULL;
	int r = ap_config_str(c, n, f, &s);

	if (r < 0)
		return r;
	if (ap_parse_duration(s, ret) < 0)
		return ap_config_fail(c, n, "%s: '%s' is not a duration (such as 500ms, 10s, 5m, "
				      "2h, 1d)", f->key, ap_config_shown(n, buf));
	return 0;
}

static int p_duration(struct ap_config_walk *c, struct ap_config_node *n,
		      const struct ap_config_field *f, void *base)
{
	return config_duration(c, n, f, AP_CONFIG_FIELD(base, f, unsigned long long));
}

/* A list of checked strings. An explicit [] is stored as an empty vector, not NULL, so that
 * it stays distinct from "not set" (which gets the default). */
int config_parse_seq(struct ap_config_walk *c, struct ap_config_node *n,
		 const struct ap_config_field *f, void *base)
{
	size_t count = ap_config_seq_len(n);
	char **v;
	int r;

	if (count == 0 && (f->flags & AP_CONFIG_NONEMPTY))
		return ap_config_fail(c, n, "%s: must not be empty", f->key);
	v = calloc(count + 1, sizeof(char *));
	if (!v)
		return -ENOMEM;
	/* Partly filled is fine: ap_config_free() frees it. */
	*AP_CONFIG_FIELD(base, f, char **) = v;
	for (size_t i = 0; i < count; i++) {
		struct ap_config_node *e;
		const char *s;

		r = ap_config_seq_get(c, n, i, AP_CONFIG_SCALAR, f->key, &e);
		if (r < 0)
			return r;
		r = ap_config_str(c, e, f, &s);
		if (r < 0)
			return r;
		for (size_t j = 0; (f->flags & AP_CONFIG_UNIQUE) && j < i; j++)
			if (strcmp(v[j], s) == 0)
				return ap_config_fail(c, e, "%s: '%s' is named twice", f->key,
						      v[j]);
		v[i] = strdup(s);
		if (!v[i])
			return -ENOMEM;
	}
	return 0;
}

/* Unit directories end in '/', and "", "." and "/" all mean the repository root (""). */
static char *units_dir_norm(const char *d)
{
	if (strcmp(d, ".") == 0 || strcmp(d, "/") == 0)
		return strdup("");
	return !*d || ap_endswith(d, "/") ? strdup(d) : ap_strdupf("%s/", d);
}

struct units_entry {
	char *dir;
	char **hosts;
};

static const struct ap_config_schema units_entry_schema;

/* One entry of units: a directory, or {dir: DIR, hosts: [NAME or GLOB...]}: a directory
 * whose units belong to some hosts only (NULL in *ret on the others). */
static int units_entry(struct ap_config_walk *c, struct ap_config_node *n, size_t i,
		       const struct ap_config_field *f, char **ret)
{
	struct ap_config_node *e;
	struct units_entry u = { 0 };
	const char *s = NULL;
	int r;

	*ret = NULL;
	if (ap_config_seq_is(c, n, i, AP_CONFIG_MAPPING)) {
		r = ap_config_seq_get(c, n, i, AP_CONFIG_MAPPING, f->key, &e);
		if (r >= 0)
			r = ap_config_walk_mapping(c, e, &units_entry_schema, &u);
		if (r >= 0 && host_matches(c, u.hosts) && !(*ret = units_dir_norm(u.dir)))
			r = -ENOMEM;
		free(u.dir);
		ap_strv_free(u.hosts);
		return r;
	}
	r = ap_config_seq_get(c, n, i, AP_CONFIG_SCALAR, f->key, &e);
	if (r >= 0)
		r = ap_config_str(c, e, f, &s);
	if (r >= 0 && !(*ret = units_dir_norm(s)))
		r = -ENOMEM;
	return r;
}

static int p_units(struct ap_config_walk *c, struct ap_config_node *n,
		   const struct ap_config_field *f, void *base)
{
	size_t count = ap_config_seq_len(n);
	char ***v = AP_CONFIG_FIELD(base, f, char **);
	int r = 0;

	/* An explicit [] stays distinct from "not set" (which gets the default). */
	*v = calloc(1, sizeof(char *));
	for (size_t i = 0; *v && r >= 0 && i < count; i++) {
		_cleanup_free_ char *dir = NULL;

		r = units_entry(c, n, i, f, &dir);
		if (r >= 0 && dir)
			r = ap_strv_push(v, dir);
	}
	return *v ? r : -ENOMEM;
}

static int p_map(struct ap_config_walk *c, struct ap_config_node *n,
		 const struct ap_config_field *f, void *base)
{
	return ap_config_walk_mapping(c, n, f->sub, AP_CONFIG_FIELD(base, f, void));
}

#define PUSH_TIMEOUT_MAX_USEC (60ULL * 1000000)

/* Whether an http:// URL (push_url_ok) leaves the host: anything but localhost, 127.0.0.0/8
 * and [::1]. */
static bool url_plain_remote(const char *url)
{
	const char *rest = url + strlen("http://");
	char host[256];
	struct in_addr a4;
	struct in6_addr a6;
	size_t n;

	if (!ap_startswith(url, "http://"))
		return false;
	if (rest[0] == '[') /* [IPv6]:port */
		n = strcspn(rest + 1, "]/?#"), rest++;
	else
		n = strcspn(rest, ":/?#");
	if (n >= sizeof(host))
		return true;
	memcpy(host, rest, n);
	host[n] = '\0';
	if (strcasecmp(host, "localhost") == 0 ||
	    (n > 10 && strcasecmp(host + n - 10, ".localhost") == 0))
		return false;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) != 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return !IN6_IS_ADDR_LOOPBACK(&a6);
	return true;
}

/* The push settings belong together: one kind of credentials, none without a URL, and a
 * deadline short enough that a dead endpoint cannot hold up the heartbeat. */
static int p_guard(struct ap_config_walk *c, struct ap_config_node *n,
		   const struct ap_config_field *f, void *base)
{
	struct ap_guard_config *g = AP_CONFIG_FIELD(base, f, struct ap_guard_config);
	int r = ap_config_walk_mapping(c, n, f->sub, g);

	if (r < 0)
		return r;
	if (g->push_token_file && g->push_basic_auth_file)
		return ap_config_fail(c, n, "guard: push_token_file and push_basic_auth_file "
				      "exclude each other");
	if (!g->push_url && (g->push_token_file || g->push_basic_auth_file || g->push_ca_file))
		return ap_config_fail(c, n, "guard: push credentials or push_ca_file without push "
				      "(the URL)");
	if (g->push_timeout_usec == 0 || g->push_timeout_usec > PUSH_TIMEOUT_MAX_USEC)
		return ap_config_fail(c, n, "guard: push_timeout must be more than 0 and at most "
				      "60s");
	/* Allowed (a test endpoint, a private network), but anyone on the way can read it. */
	if ((g->push_token_file || g->push_basic_auth_file) && url_plain_remote(g->push_url))
		ap_config_warn(c, n, "guard: the push credentials go to '%s' unencrypted "
			       "(http:// to another host than this one); use https://",
			       g->push_url);
	return 0;
}

#define PROBE_SUCCESSES_MAX 100
#define PROBE_TIMEOUT_MAX_USEC (10ULL * 60 * 1000000)
#define PROBE_BUDGET_MAX_USEC (3600ULL * 1000000)

/* HOST:PORT for a tcp: probe: a name or an address ([v6] in brackets) and a port 1-65535. */
static bool host_port_ok(const char *s)
{
	const char *colon = strrchr(s, ':');
	unsigned port;

	if (!colon || colon == s || strlen(s) > 255 || has_control(s))
		return false;
	if (s[0] == '[' && colon[-1] != ']')
		return false;
	return config_number_in(colon + 1, 1, 65535, &port);
}

static bool probe_url_ok(const char *s)
{
	const char *rest = ap_startswith(s, "http://")	  ? s + strlen("http://")
			   : ap_startswith(s, "https://") ? s + strlen("https://")
							  : NULL;

	return rest && strcspn(rest, "/?#") > 0 && strlen(s) <= MAX_URL && !has_control(s);
}

static const struct ap_config_field probe_fields[] = {
	SEQ("exec", struct ap_probe, exec, AP_CONFIG_NONEMPTY, NULL, NULL),
	STR("http", struct ap_probe, http, 0, probe_url_ok, "is not an http:// or https:// URL"),
	STR("tcp", struct ap_probe, tcp, 0, host_port_ok, "is not HOST:PORT"),
	{ .key = "timeout", .type = AP_CONFIG_SCALAR, .parse = p_duration,
	  .offset = offsetof(struct ap_probe, timeout_usec) },
	{ .key = "interval", .type = AP_CONFIG_SCALAR, .parse = p_duration,
	  .offset = offsetof(struct ap_probe, interval_usec) },
	{ .key = "successes", .type = AP_CONFIG_SCALAR, .parse = p_uint,
	  .offset = offsetof(struct ap_probe, successes) },
};
static const struct ap_config_schema probe_schema = {
	"a health probe", probe_fields, ELEMENTSOF(probe_fields)
};

/* One probe: exactly one kind, a timeout that cannot hold a settle window up for long. */
static int probe_entry(struct ap_config_walk *c, struct ap_config_node *n, struct ap_probe *p)
{
	int r, kinds;

	*p = (struct ap_probe){ .timeout_usec = AP_PROBE_DEFAULT_TIMEOUT_USEC,
				.interval_usec = AP_PROBE_DEFAULT_INTERVAL_USEC, .successes = 1 };
	r = ap_config_walk_mapping(c, n, &probe_schema, p);
	if (r < 0)
		return r;
	kinds = !!p->exec + !!p->http + !!p->tcp;
	if (kinds != 1)
		return ap_config_fail(c, n, "a health probe needs exactly one of exec, http, tcp "
				      "(found %d)", kinds);
	p->kind = p->exec ? AP_PROBE_EXEC : p->http ? AP_PROBE_HTTP : AP_PROBE_TCP;
	if (p->timeout_usec == 0 || p->timeout_usec > PROBE_TIMEOUT_MAX_USEC)
		return ap_config_fail(c, n, "a health probe's timeout must be more than 0 and at "
				      "most 10m");
	if (p->successes == 0 || p->successes > PROBE_SUCCESSES_MAX)
		return ap_config_fail(c, n, "a health probe's successes must be from 1 to %u",
				      PROBE_SUCCESSES_MAX);
	/* 0 would retry a refused connection in a busy loop. */
	if (p->interval_usec == 0 || p->interval_usec > PROBE_TIMEOUT_MAX_USEC)
		return ap_config_fail(c, n, "a health probe's interval must be more than 0 and at "
				      "most 10m");
	/* The settle window waits this long at most for a probe: an apply must end. */
	if (p->successes * (p->timeout_usec + p->interval_usec) > PROBE_BUDGET_MAX_USEC)
		return ap_config_fail(c, n, "a health probe's successes x (timeout + interval) "
				      "must be at most 1h");
	return 0;
}

/* health: {UNIT or GLOB: PROBE, ...}; base is the whole config. */
static int p_health(struct ap_config_walk *c, struct ap_config_node *n,
		    const struct ap_config_field *f, void *base)
{
	struct ap_config *cfg = base;
	size_t count = ap_config_map_len(n);

	cfg->health = calloc(count ? count : 1, sizeof(*cfg->health));
	if (!cfg->health)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		struct ap_config_node *v;
		const char *unit;
		int r = ap_config_map_get(c, n, i, f, AP_CONFIG_MAPPING, &unit, &v);

		for (size_t k = 0; r >= 0 && k < cfg->n_health; k++)
			if (strcmp(cfg->health[k].unit, unit) == 0)
				r = ap_config_fail(c, v, "health: '%s' is named twice", unit);
		if (r >= 0 && !(cfg->health[i].unit = strdup(unit)))
			r = -ENOMEM;
		if (r < 0)
			return r;
		cfg->n_health++;
		r = probe_entry(c, v, &cfg->health[i].probe);
		if (r < 0)
			return r;
	}
	return 0;
}

/* A trust: mapping without a key source could only ever refuse. */
static int p_trust(struct ap_config_walk *c, struct ap_config_node *n,
		   const struct ap_config_field *f, void *base)
{
	struct ap_trust_config *t = AP_CONFIG_FIELD(base, f, struct ap_trust_config);
	int r = ap_config_walk_mapping(c, n, f->sub, t);

	if (r < 0)
		return r;
	if (!t->ssh_allowed_signers && !t->openpgp_keyring)
		return ap_config_fail(c, n, "trust: needs ssh_allowed_signers or openpgp_keyring "
				      "(or both)");
	t->enabled = true;
	return 0;
}

/* dest must name a directory exactly when src does, or files would land at odd places. A
 * setuid/setgid mode must be asked for twice: a typo in a mode must not make a root shell,
 * and the shipped service refuses such modes (RestrictSUIDSGID=) unless the rule says so. */
static int rule_check(struct ap_config_walk *c, struct ap_config_node *m,
		      const struct ap_file_rule *rule)
{
	if (ap_endswith(rule->src, "/") != ap_endswith(rule->dest, "/"))
		return ap_config_fail(c, m, "file rule '%.64s': src and dest must both end in "
				      "'/' (a directory rule) or neither", rule->src);
	if (rule->has_mode && (rule->mode & (S_ISUID | S_ISGID)) && !rule->allow_setid)
		return ap_config_fail(c, m, "file rule '%.64s': mode %04o sets the setuid/setgid "
				      "bit; add 'allow_setid: true' to the rule if that is meant",
				      rule->src, (unsigned)rule->mode);
	return 0;
}

/* Rules for other hosts are dropped here, so that nothing downstream needs to know. */
static int select_rules(struct ap_config_walk *c, struct ap_config *cfg)
{
	size_t kept = 0;

	for (size_t i = 0; i < cfg->n_files; i++) {
		if (host_matches(c, cfg->files[i].hosts)) {
			cfg->files[kept++] = cfg->files[i];
			continue;
		}
		ap_config_rule_clear(&cfg->files[i]);
		cfg->other_host_rules++;
	}
	cfg->n_files = kept;
	return 0;
}

/* base is the whole config: the rules and their count are stored together. */
static int p_files(struct ap_config_walk *c, struct ap_config_node *n,
		   const struct ap_config_field *f, void *base)
{
	struct ap_config *cfg = base;
	size_t count = ap_config_seq_len(n);
	int r;

	if (count == 0)
		return 0;
	cfg->files = calloc(count, sizeof(*cfg->files));
	if (!cfg->files)
		return -ENOMEM;
	cfg->n_files = count;
	for (size_t i = 0; i < count; i++) {
		struct ap_config_node *m;

		r = ap_config_seq_get(c, n, i, AP_CONFIG_MAPPING, "files entry", &m);
		if (r >= 0)
			r = ap_config_walk_mapping(c, m, f->sub, &cfg->files[i]);
		if (r >= 0)
			r = rule_check(c, m, &cfg->files[i]);
		if (r >= 0)
			r = expand_specifiers(c, m, &cfg->files[i].src);
		if (r < 0)
			return r;
	}
	return select_rules(c, cfg);
}

/* The schema. */

static const struct ap_config_field repo_fields[] = {
	STR("url", struct ap_config, repo_url, AP_CONFIG_REQUIRED, url_ok,
	    "is not a file://, http(s):// or ssh:// URL or an absolute path"),
	STR("branch", struct ap_config, branch, 0, ref_ok, "is not a valid branch name"),
	ABS_FILE("ssh_key", struct ap_config, ssh_key),
	ABS_FILE("known_hosts", struct ap_config, known_hosts),
	ABS_FILE("ca_file", struct ap_config, ca_file),
	{ .key = "allow_rewind", .type = AP_CONFIG_SCALAR, .parse = p_bool,
	  .offset = offsetof(struct ap_config, allow_rewind) },
	{ .key = "trust_owner", .type = AP_CONFIG_SCALAR, .parse = p_bool,
	  .offset = offsetof(struct ap_config, trust_owner) },
	{ .key = "connect_timeout", .type = AP_CONFIG_SCALAR, .parse = p_duration,
	  .offset = offsetof(struct ap_config, connect_timeout_usec) },
	{ .key = "io_timeout", .type = AP_CONFIG_SCALAR, .parse = p_duration,
	  .offset = offsetof(struct ap_config, io_timeout_usec) },
};

static const struct ap_config_field trust_fields[] = {
	ABS_FILE("ssh_allowed_signers", struct ap_trust_config, ssh_allowed_signers),
	ABS_FILE("openpgp_keyring", struct ap_trust_config, openpgp_keyring),
	{ .key = "require", .type = AP_CONFIG_SCALAR, .parse = p_require,
	  .offset = offsetof(struct ap_trust_config, require) },
	STR("since", struct ap_trust_config, since, 0, commit_id_ok,
	    "is not a full commit id (40 lower-case hex digits)"),
	{ .key = "max_date_skew", .type = AP_CONFIG_SCALAR, .parse = p_duration,
	  .offset = offsetof(struct ap_trust_config, max_date_skew_usec) },
};

static const struct ap_config_field rule_fields[] = {
	STR("src", struct ap_file_rule, src, AP_CONFIG_REQUIRED, src_ok,
	    "is not a safe relative repository path"),
	STR("dest", struct ap_file_rule, dest, AP_CONFIG_REQUIRED, abs_ok,
	    "is not an absolute normalised path"),
	{ .key = "mode", .type = AP_CONFIG_SCALAR, .parse = p_mode,
	  .offset = offsetof(struct ap_file_rule, mode) },
	STR("owner", struct ap_file_rule, owner, 0, NULL, NULL),
	STR("group", struct ap_file_rule, group, 0, NULL, NULL),
	{ .key = "allow_setid", .type = AP_CONFIG_SCALAR, .parse = p_bool,
	  .offset = offsetof(struct ap_file_rule, allow_setid) },
	SEQ("validate", struct ap_file_rule, validate, AP_CONFIG_NONEMPTY, NULL, NULL),
	SEQ("reload", struct ap_file_rule, reload, 0, unit_glob_ok, "is not a unit name or glob"),
	SEQ("restart", struct ap_file_rule, restart, 0, unit_glob_ok, "is not a unit name or glob"),
	{ .key = "takeover", .type = AP_CONFIG_SCALAR, .parse = p_bool,
	  .offset = offsetof(struct ap_file_rule, takeover) },
	SEQ("hosts", struct ap_file_rule, hosts, AP_CONFIG_NONEMPTY, host_glob_ok,
	    "is not a host name or glob"),
	{ .key = "decrypt", .type = AP_CONFIG_SCALAR, .parse = p_decrypt,
	  .offset = offsetof(struct ap_file_rule, decrypt) },
};

static const struct ap_config_field units_entry_fields[] = {
	STR("dir", struct units_entry, dir, AP_CONFIG_REQUIRED | AP_CONFIG_EMPTY_OK, units_dir_ok,
	    "is not a safe relative repository directory"),
	SEQ("hosts", struct units_entry, hosts, AP_CONFIG_NONEMPTY, host_glob_ok,
	    "is not a host name or glob"),
};
static const struct ap_config_schema units_entry_schema = {
	"a units entry", units_entry_fields, ELEMENTSOF(units_entry_fields)
};

static const struct ap_config_field hooks_fields[] = {
	SEQ("on_failure", struct ap_hooks, on_failure, AP_CONFIG_NONEMPTY, NULL, NULL),
	SEQ("on_rollback", struct ap_hooks, on_rollback, AP_CONFIG_NONEMPTY, NULL, NULL),
	SEQ("on_refused", struct ap_hooks, on_refused, AP_CONFIG_NONEMPTY, NULL, NULL),
};
static const struct ap_config_schema hooks_schema = {
	"hooks", hooks_fields, ELEMENTSOF(hooks_fields)
};

static const struct ap_config_field guard_fields[] = {
	SEQ("watch", struct ap_guard_config, watch, 0, unit_glob_ok, "is not a unit name or glob"),
	{ .key = "max_restarts", .type = AP_CONFIG_SCALAR, .parse = p_uint,
	  .offset = offsetof(struct ap_guard_config, max_restarts) },
	{ .key = "window", .type = AP_CONFIG_SCALAR, .parse = p_duration,
	  .offset = offsetof(struct ap_guard_config, window_usec) },
	{ .key = "settle", .type = AP_CONFIG_SCALAR, .parse = p_duration,
	  .offset = offsetof(struct ap_guard_config, settle_usec) },
	ABS_FILE("metrics", struct ap_guard_config, metrics_file),
	STR("push", struct ap_guard_config, push_url, 0, config_http_url_ok,
	    "is not an http(s):// URL without user:password@"),
	ABS_FILE("push_token_file", struct ap_guard_config, push_token_file),
	ABS_FILE("push_basic_auth_file", struct ap_guard_config, push_basic_auth_file),
	ABS_FILE("push_ca_file", struct ap_guard_config, push_ca_file),
	{ .key = "push_timeout", .type = AP_CONFIG_SCALAR, .parse = p_duration,
	  .offset = offsetof(struct ap_guard_config, push_timeout_usec) },
	{ .key = "probe", .type = AP_CONFIG_SCALAR, .parse = p_bool,
	  .offset = offsetof(struct ap_guard_config, probe) },
};

static const struct ap_config_schema repo_schema = {
	"repo", repo_fields, ELEMENTSOF(repo_fields)
};
static const struct ap_config_schema rule_schema = {
	"file rule", rule_fields, ELEMENTSOF(rule_fields)
};
static const struct ap_config_schema guard_schema = {
	"guard", guard_fields, ELEMENTSOF(guard_fields)
};
static const struct ap_config_schema trust_schema = {
	"trust", trust_fields, ELEMENTSOF(trust_fields)
};
static const struct ap_config_field secrets_fields[] = {
	ABS_FILE("identity", struct ap_config, secrets_identity),
};
static const struct ap_config_schema secrets_schema = {
	"secrets", secrets_fields, ELEMENTSOF(secrets_fields)
};

static const struct ap_config_field top_fields[] = {
	{ .key = "repo", .type = AP_CONFIG_MAPPING, .parse = p_map, .offset = 0,
	  .flags = AP_CONFIG_REQUIRED, .sub = &repo_schema },
	{ .key = "scope", .type = AP_CONFIG_SCALAR, .parse = p_scope,
	  .offset = offsetof(struct ap_config, scope) },
	{ .key = "state_dir", .type = AP_CONFIG_SCALAR, .parse = p_dir,
	  .offset = offsetof(struct ap_config, state_dir), .check = abs_ok,
	  .why = "is not an absolute normalised path" },
	{ .key = "unit_dir", .type = AP_CONFIG_SCALAR, .parse = p_dir,
	  .offset = offsetof(struct ap_config, unit_dir), .check = abs_ok,
	  .why = "is not an absolute normalised path" },
	{ .key = "units", .type = AP_CONFIG_SEQUENCE, .parse = p_units,
	  .offset = offsetof(struct ap_config, units), .flags = AP_CONFIG_EMPTY_OK,
	  .check = units_dir_ok, .why = "is not a safe relative repository directory" },
	{ .key = "files", .type = AP_CONFIG_SEQUENCE, .parse = p_files,
	  .offset = offsetof(struct ap_config, files), .sub = &rule_schema },
	{ .key = "guard", .type = AP_CONFIG_MAPPING, .parse = p_guard,
	  .offset = offsetof(struct ap_config, guard), .sub = &guard_schema },
	{ .key = "takeover_units", .type = AP_CONFIG_SCALAR, .parse = p_bool,
	  .offset = offsetof(struct ap_config, takeover_units) },
	{ .key = "drift", .type = AP_CONFIG_SCALAR, .parse = p_drift,
	  .offset = offsetof(struct ap_config, drift_revert) },
	{ .key = "hooks", .type = AP_CONFIG_MAPPING, .parse = p_map,
	  .offset = offsetof(struct ap_config, hooks), .sub = &hooks_schema },
	{ .key = "trust", .type = AP_CONFIG_MAPPING, .parse = p_trust,
	  .offset = offsetof(struct ap_config, trust), .sub = &trust_schema },
	{ .key = "fleet", .type = AP_CONFIG_MAPPING, .parse = config_parse_fleet,
	  .offset = offsetof(struct ap_config, fleet), .sub = &config_fleet_schema },
	{ .key = "health", .type = AP_CONFIG_MAPPING, .parse = p_health,
	  .offset = offsetof(struct ap_config, health), .check = unit_glob_ok,
	  .why = "is not a unit name or glob" },
	{ .key = "secrets", .type = AP_CONFIG_MAPPING, .parse = p_map, .offset = 0,
	  .sub = &secrets_schema },
};

const struct ap_config_schema ap_config_schema = {
	"the configuration", top_fields, ELEMENTSOF(top_fields)
};

/* Duplicate keys are tracked in a bit mask, one bit per field. */
_Static_assert(ELEMENTSOF(top_fields) <= 32 && ELEMENTSOF(repo_fields) <= 32 &&
		       ELEMENTSOF(rule_fields) <= 32 && ELEMENTSOF(guard_fields) <= 32 &&
		       ELEMENTSOF(trust_fields) <= 32 && ELEMENTSOF(probe_fields) <= 32,
	       "a schema table has more fields than the duplicate mask has bits");

void ap_config_rule_clear(struct ap_file_rule *r)
{
	ap_strv_free(r->hosts);
	free(r->src);
	free(r->dest);
	free(r->owner);
	free(r->group);
	ap_strv_free(r->validate);
	ap_strv_free(r->reload);
	ap_strv_free(r->restart);
}

