/* Loads the YAML configuration into struct ap_config and owns every rule about its shape:
 * the schema tables, value checks, per-scope defaults and FILE:LINE:COL diagnostics. This is
 * the only file that sees libyaml. It does not decide what the rules mean for a deploy
 * (that is plan.c) and never touches the paths it names. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "config.h"
#include "digest.h"
#include "fsutil.h"
#include "log.h"
#include "util.h"

#define MAX_DEPTH 32          /* nested mappings and lists; the schema itself needs 4 */
#define MAX_URL 4096
#define MAX_REF 255
#define MAX_UNIT_NAME 255
#define SHOWN_MAX 64          /* bytes of config text quoted back in an error message */

/* Walking state: which file (for messages), the document, and which nodes were already
 * visited, so that a node reached twice (an alias) is refused even if the event prescan
 * missed it. */
struct ctx {
	const char *file;
	yaml_document_t *doc;
	bool *seen;
	size_t n_nodes;
	const char *host, *short_host; /* for hosts: and %H / %l */
};

struct field;
typedef int (*parse_fn)(struct ctx *c, yaml_node_t *n, const struct field *f, void *base);

enum {
	F_REQUIRED = 1 << 0,  /* the key must be present */
	F_NONEMPTY = 1 << 1,  /* a list must have at least one entry */
	F_EMPTY_OK = 1 << 2,  /* "" is a valid string (units: the repo root) */
};

/* One key of one mapping: the node type it needs, the parser that stores it at offset
 * into the mapping's struct, and for strings (or each string of a list) the check it must
 * pass, with what to say when it does not. */
struct field {
	const char *key;
	yaml_node_type_t type;
	parse_fn parse;
	size_t offset;
	unsigned flags;
	bool (*check)(const char *s);
	const char *why;
	const struct schema *sub; /* for mappings and lists of mappings */
};

struct schema {
	const char *where;
	const struct field *fields;
	size_t n_fields;
};

#define FIELD(base, f, type) ((type *)(void *)((char *)(base) + (f)->offset))

static int fail_at(const char *file, yaml_mark_t m, const char *fmt, ...) _printf_(3, 4);
static int fail_at(const char *file, yaml_mark_t m, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);
	return ap_log_error(-EINVAL, "%s:%zu:%zu: %s", file, m.line + 1, m.column + 1, msg);
}
#define fail(c, n, ...) fail_at((c)->file, (n)->start_mark, __VA_ARGS__)

/* Config text quoted in a message: bounded and without control characters, so that a
 * hostile key cannot forge extra log lines. */
static const char *shown(const yaml_node_t *n, char buf[static SHOWN_MAX])
{
	const unsigned char *s = n->data.scalar.value;
	size_t len = n->data.scalar.length, k = 0;

	for (size_t i = 0; i < len && k < SHOWN_MAX - 4; i++)
		buf[k++] = (s[i] < 0x20 || s[i] == 0x7f) ? '?' : (char)s[i];
	if (k < len)
		k += (size_t)snprintf(buf + k, SHOWN_MAX - k, "...");
	buf[k] = '\0';
	return buf;
}

static const char *type_name(yaml_node_type_t t)
{
	switch (t) {
	case YAML_SCALAR_NODE:
		return "string";
	case YAML_SEQUENCE_NODE:
		return "list";
	case YAML_MAPPING_NODE:
		return "mapping";
	default:
		return "nothing";
	}
}

/* Only the default tags (also when spelled out as !!str, !!seq, !!map): any other tag would
 * ask for a type conversion that this loader does not do. */
static bool tag_is_default(const yaml_node_t *n)
{
	static const char *const tags[] = {
		[YAML_SCALAR_NODE] = YAML_DEFAULT_SCALAR_TAG,
		[YAML_SEQUENCE_NODE] = YAML_DEFAULT_SEQUENCE_TAG,
		[YAML_MAPPING_NODE] = YAML_DEFAULT_MAPPING_TAG,
	};

	return n->tag && (unsigned)n->type < ELEMENTSOF(tags) && tags[n->type] &&
	       strcmp((const char *)n->tag, tags[n->type]) == 0;
}

static int node_get(struct ctx *c, int id, yaml_node_type_t want, const char *what,
		    yaml_node_t **ret)
{
	yaml_node_t *n = yaml_document_get_node(c->doc, id);

	if (!n || (size_t)id > c->n_nodes)
		return ap_log_error(-EINVAL, "%s: malformed YAML document", c->file);
	if (c->seen[id - 1])
		return fail(c, n, "%s: aliases are not allowed", what);
	c->seen[id - 1] = true;
	if (n->type != want)
		return fail(c, n, "%s: expected a %s, found a %s", what, type_name(want),
			    type_name(n->type));
	if (!tag_is_default(n))
		return fail(c, n, "%s: tag '%.64s' is not allowed", what, (const char *)n->tag);
	*ret = n;
	return 0;
}

/* YAML reads an unquoted ~ or null as "no value"; accepting them as the strings "~" and
 * "null" would be a surprise. */
static bool is_null_word(const yaml_node_t *n)
{
	static const char *const words[] = { "~", "null", "Null", "NULL" };
	const char *s = (const char *)n->data.scalar.value;

	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	for (size_t i = 0; i < ELEMENTSOF(words); i++)
		if (strcmp(s, words[i]) == 0)
			return true;
	return false;
}

/* The text of a scalar that must hold a value: no NUL (which would silently cut the string)
 * and no control characters. */
static int scalar_str(struct ctx *c, yaml_node_t *n, const char *key, bool empty_ok,
		      const char **ret)
{
	const unsigned char *s = n->data.scalar.value;
	size_t len = n->data.scalar.length;

	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] == 0x7f)
			return fail(c, n, "%s: control characters are not allowed", key);
	if (len == 0 ? !empty_ok : is_null_word(n))
		return fail(c, n, "%s: missing value", key);
	*ret = (const char *)s;
	return 0;
}

static int check_str(struct ctx *c, yaml_node_t *n, const struct field *f, const char **ret)
{
	char buf[SHOWN_MAX];
	const char *s = NULL;
	int r;

	r = scalar_str(c, n, f->key, f->flags & F_EMPTY_OK, &s);
	if (r < 0)
		return r;
	if (f->check && !f->check(s))
		return fail(c, n, "%s: '%s' %s", f->key, shown(n, buf), f->why);
	*ret = s;
	return 0;
}

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

/* Where metrics are pushed: http(s) with a host, and no user:password@ in it (credentials
 * come from files, so that the URL can be logged). */
static bool push_url_ok(const char *s)
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

static bool abs_file_ok(const char *s)
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

static bool host_matches(const struct ctx *c, char *const *hosts)
{
	for (size_t i = 0; hosts && hosts[i]; i++)
		if (fnmatch(hosts[i], c->host, FNM_CASEFOLD) == 0 ||
		    fnmatch(hosts[i], c->short_host, FNM_CASEFOLD) == 0)
			return true;
	return !hosts; /* no hosts: every host */
}

/* %H (host name), %l (short host name) and %% in a src path, like systemd's specifiers. The
 * result is checked again: a host name must not make a path unsafe. */
static int expand_specifiers(struct ctx *c, yaml_node_t *n, char **path)
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
			r = fail(c, n, "src '%.64s': unknown specifier '%%%c' (known: %%H, %%l, %%%%)",
				 *path, *p ? *p : ' ');
		if (!*p)
			break;
	}
	if (r >= 0 && !ap_path_is_safe_relative(b.data ? b.data : ""))
		r = fail(c, n, "src '%.64s' becomes the unsafe path '%.64s' on this host", *path,
			 b.data ? b.data : "");
	if (r < 0) {
		ap_buf_free(&b);
		return r;
	}
	free(*path);
	*path = b.data;
	return 0;
}

/* Parsers: each stores one value at f->offset in base. */

static int p_str(struct ctx *c, yaml_node_t *n, const struct field *f, void *base)
{
	const char *s = NULL;
	int r = check_str(c, n, f, &s);

	if (r < 0)
		return r;
	*FIELD(base, f, char *) = strdup(s);
	return *FIELD(base, f, char *) ? 0 : -ENOMEM;
}

/* Directories are stored without a trailing '/' so that callers can append "/name". */
static int p_dir(struct ctx *c, yaml_node_t *n, const struct field *f, void *base)
{
	int r = p_str(c, n, f, base);
	char *s;
	size_t len;

	if (r < 0)
		return r;
	s = *FIELD(base, f, char *);
	len = strlen(s);
	if (len > 1 && s[len - 1] == '/')
		s[len - 1] = '\0';
	return 0;
}

static int p_scope(struct ctx *c, yaml_node_t *n, const struct field *f, void *base)
{
	char buf[SHOWN_MAX];
	const char *s = NULL;
	int r = check_str(c, n, f, &s);

	if (r < 0)
		return r;
	if (strcmp(s, "system") == 0)
		*FIELD(base, f, enum ap_scope) = AP_SCOPE_SYSTEM;
	else if (strcmp(s, "user") == 0)
		*FIELD(base, f, enum ap_scope) = AP_SCOPE_USER;
	else
		return fail(c, n, "scope: '%s' is not 'system' or 'user'", shown(n, buf));
	return 0;
}

static int p_drift(struct ctx *c, yaml_node_t *n, const struct field *f, void *base)
{
	char buf[SHOWN_MAX];
	const char *s = NULL;
	int r = check_str(c, n, f, &s);

	if (r < 0)
		return r;
	if (strcmp(s, "warn") == 0)
		*FIELD(base, f, bool) = false;
	else if (strcmp(s, "revert") == 0)
		*FIELD(base, f, bool) = true;
	else
		return fail(c, n, "drift: '%s' is not 'warn' or 'revert'", shown(n, buf));
	return 0;
}

/* Octal as chmod writes it: 3 or 4 digits, quoted or not ("0644", 644, 4755). */
static int p_mode(struct ctx *c, yaml_node_t *n, const struct field *f, void *base)
{
	struct ap_file_rule *rule = base;
	char buf[SHOWN_MAX];
	const char *s = NULL;
	size_t len;
	int r = check_str(c, n, f, &s);

	if (r < 0)
		return r;
	len = strlen(s);
	if (len < 3 || len > 4 || strspn(s, "01234567") != len)
		return fail(c, n, "mode: '%s' is not an octal mode of 3 or 4 digits",
			    shown(n, buf));
	rule->mode = (mode_t)strtoul(s, NULL, 8);
	rule->has_mode = true;
	return 0;
}

static int p_uint(struct ctx *c, yaml_node_t *n, const struct field *f, void *base)
{
	char buf[SHOWN_MAX], *end;
	unsigned long long v;
	const char *s = NULL;
	int r = check_str(c, n, f, &s);

	if (r < 0)
		return r;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end || errno || v > UINT_MAX)
		return fail(c, n, "%s: '%s' is not a number between 0 and %u", f->key,
			    shown(n, buf), UINT_MAX);
	*FIELD(base, f, unsigned) = (unsigned)v;
	return 0;
}

/* Only the words YAML 1.2 reads as booleans, lower case: "yes" or "on" would be a guess. */
static int p_bool(struct ctx *c, yaml_node_t *n, const struct field *f, void *base)
{
	char buf[SHOWN_MAX];
	const char *s = NULL;
	int r = check_str(c, n, f, &s);

	if (r < 0)
		return r;
	if (strcmp(s, "true") != 0 && strcmp(s, "false") != 0)
		return fail(c, n, "%s: '%s' is not true or false", f->key, shown(n, buf));
	*FIELD(base, f, bool) = s[0] == 't';
	return 0;
}

static int p_require(struct ctx *c, yaml_node_t *n, const struct field *f, void *base)
{
	static const char *const words[] = { [AP_TRUST_EVERY_COMMIT] = "every-commit",
					     [AP_TRUST_FIRST_PARENT] = "first-parent",
					     [AP_TRUST_TIP] = "tip" };
	char buf[SHOWN_MAX];
	const char *s = NULL;
	int r = check_str(c, n, f, &s);

	if (r < 0)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(words); i++)
		if (strcmp(s, words[i]) == 0) {
			*FIELD(base, f, enum ap_trust_require) = (enum ap_trust_require)i;
			return 0;
		}
	return fail(c, n, "require: '%s' is not every-commit, first-parent or tip", shown(n, buf));
}

static int p_duration(struct ctx *c, yaml_node_t *n, const struct field *f, void *base)
{
	char buf[SHOWN_MAX];
	const char *s = NULL;
	int r = check_str(c, n, f, &s);

	if (r < 0)
		return r;
	if (ap_parse_duration(s, FIELD(base, f, unsigned long long)) < 0)
		return fail(c, n, "%s: '%s' is not a duration (such as 500ms, 10s, 5m, 2h, 1d)",
			    f->key, shown(n, buf));
	return 0;
}

/* A list of checked strings. An explicit [] is stored as an empty vector, not NULL, so that
 * it stays distinct from "not set" (which gets the default). */
static int p_seq(struct ctx *c, yaml_node_t *n, const struct field *f, void *base)
{
	yaml_node_item_t *items = n->data.sequence.items.start;
	size_t count = (size_t)(n->data.sequence.items.top - items);
	char **v;
	int r;

	if (count == 0 && (f->flags & F_NONEMPTY))
		return fail(c, n, "%s: must not be empty", f->key);
	v = calloc(count + 1, sizeof(char *));
	if (!v)
		return -ENOMEM;
	*FIELD(base, f, char **) = v; /* partly filled is fine: ap_config_free() frees it */
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *e;
		const char *s;

		r = node_get(c, items[i], YAML_SCALAR_NODE, f->key, &e);
		if (r < 0)
			return r;
		r = check_str(c, e, f, &s);
		if (r < 0)
			return r;
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

static int walk_mapping(struct ctx *c, yaml_node_t *map, const struct schema *s, void *base);
static const struct schema units_entry_schema;

/* One entry of units: a directory, or {dir: DIR, hosts: [NAME or GLOB...]}: a directory
 * whose units belong to some hosts only (NULL in *ret on the others). */
static int units_entry(struct ctx *c, int id, const struct field *f, char **ret)
{
	yaml_node_t *e = yaml_document_get_node(c->doc, id);
	struct units_entry u = { 0 };
	const char *s = NULL;
	int r;

	*ret = NULL;
	if (e && e->type == YAML_MAPPING_NODE) {
		r = node_get(c, id, YAML_MAPPING_NODE, f->key, &e);
		if (r >= 0)
			r = walk_mapping(c, e, &units_entry_schema, &u);
		if (r >= 0 && host_matches(c, u.hosts) && !(*ret = units_dir_norm(u.dir)))
			r = -ENOMEM;
		free(u.dir);
		ap_strv_free(u.hosts);
		return r;
	}
	r = node_get(c, id, YAML_SCALAR_NODE, f->key, &e);
	if (r >= 0)
		r = check_str(c, e, f, &s);
	if (r >= 0 && !(*ret = units_dir_norm(s)))
		r = -ENOMEM;
	return r;
}

static int p_units(struct ctx *c, yaml_node_t *n, const struct field *f, void *base)
{
	yaml_node_item_t *items = n->data.sequence.items.start;
	size_t count = (size_t)(n->data.sequence.items.top - items);
	char ***v = FIELD(base, f, char **);
	int r = 0;

	/* An explicit [] stays distinct from "not set" (which gets the default). */
	*v = calloc(1, sizeof(char *));
	for (size_t i = 0; *v && r >= 0 && i < count; i++) {
		_cleanup_free_ char *dir = NULL;

		r = units_entry(c, items[i], f, &dir);
		if (r >= 0 && dir)
			r = ap_strv_push(v, dir);
	}
	return *v ? r : -ENOMEM;
}

static int walk_mapping(struct ctx *c, yaml_node_t *map, const struct schema *s, void *base);

static int p_map(struct ctx *c, yaml_node_t *n, const struct field *f, void *base)
{
	return walk_mapping(c, n, f->sub, FIELD(base, f, void));
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
static int p_guard(struct ctx *c, yaml_node_t *n, const struct field *f, void *base)
{
	struct ap_guard_config *g = FIELD(base, f, struct ap_guard_config);
	int r = walk_mapping(c, n, f->sub, g);

	if (r < 0)
		return r;
	if (g->push_token_file && g->push_basic_auth_file)
		return fail(c, n, "guard: push_token_file and push_basic_auth_file exclude each other");
	if (!g->push_url && (g->push_token_file || g->push_basic_auth_file || g->push_ca_file))
		return fail(c, n, "guard: push credentials or push_ca_file without push (the URL)");
	if (g->push_timeout_usec == 0 || g->push_timeout_usec > PUSH_TIMEOUT_MAX_USEC)
		return fail(c, n, "guard: push_timeout must be more than 0 and at most 60s");
	/* Allowed (a test endpoint, a private network), but anyone on the way can read it. */
	if ((g->push_token_file || g->push_basic_auth_file) && url_plain_remote(g->push_url))
		ap_log_warning("%s:%zu:%zu: guard: the push credentials go to '%s' unencrypted "
			       "(http:// to another host than this one); use https://", c->file,
			       n->start_mark.line + 1, n->start_mark.column + 1, g->push_url);
	return 0;
}

/* A trust: mapping without a key source could only ever refuse. */
static int p_trust(struct ctx *c, yaml_node_t *n, const struct field *f, void *base)
{
	struct ap_trust_config *t = FIELD(base, f, struct ap_trust_config);
	int r = walk_mapping(c, n, f->sub, t);

	if (r < 0)
		return r;
	if (!t->ssh_allowed_signers && !t->openpgp_keyring)
		return fail(c, n, "trust: needs ssh_allowed_signers or openpgp_keyring (or both)");
	t->enabled = true;
	return 0;
}

/* dest must name a directory exactly when src does, or files would land at odd places. A
 * setuid/setgid mode must be asked for twice: a typo in a mode must not make a root shell,
 * and the shipped service refuses such modes (RestrictSUIDSGID=) unless the rule says so. */
static int rule_check(struct ctx *c, yaml_node_t *m, const struct ap_file_rule *rule)
{
	if (ap_endswith(rule->src, "/") != ap_endswith(rule->dest, "/"))
		return fail(c, m, "file rule '%.64s': src and dest must both end in '/' (a "
			    "directory rule) or neither", rule->src);
	if (rule->has_mode && (rule->mode & (S_ISUID | S_ISGID)) && !rule->allow_setid)
		return fail(c, m, "file rule '%.64s': mode %04o sets the setuid/setgid bit; add "
			    "'allow_setid: true' to the rule if that is meant", rule->src,
			    (unsigned)rule->mode);
	return 0;
}

static void rule_free(struct ap_file_rule *r);

/* Rules for other hosts are dropped here, so that nothing downstream needs to know. */
static int select_rules(struct ctx *c, struct ap_config *cfg)
{
	size_t kept = 0;

	for (size_t i = 0; i < cfg->n_files; i++) {
		if (host_matches(c, cfg->files[i].hosts)) {
			cfg->files[kept++] = cfg->files[i];
			continue;
		}
		rule_free(&cfg->files[i]);
		cfg->other_host_rules++;
	}
	cfg->n_files = kept;
	return 0;
}

/* base is the whole config: the rules and their count are stored together. */
static int p_files(struct ctx *c, yaml_node_t *n, const struct field *f, void *base)
{
	struct ap_config *cfg = base;
	yaml_node_item_t *items = n->data.sequence.items.start;
	size_t count = (size_t)(n->data.sequence.items.top - items);
	int r;

	if (count == 0)
		return 0;
	cfg->files = calloc(count, sizeof(*cfg->files));
	if (!cfg->files)
		return -ENOMEM;
	cfg->n_files = count;
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *m;

		r = node_get(c, items[i], YAML_MAPPING_NODE, "files entry", &m);
		if (r >= 0)
			r = walk_mapping(c, m, f->sub, &cfg->files[i]);
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

#define STR(k, st, fld, fl, chk, w) \
	{ .key = k, .type = YAML_SCALAR_NODE, .parse = p_str, .offset = offsetof(st, fld), \
	  .flags = fl, .check = chk, .why = w }
#define SEQ(k, st, fld, fn, fl, chk, w) \
	{ .key = k, .type = YAML_SEQUENCE_NODE, .parse = fn, .offset = offsetof(st, fld), \
	  .flags = fl, .check = chk, .why = w }

static const struct field repo_fields[] = {
	STR("url", struct ap_config, repo_url, F_REQUIRED, url_ok,
	    "is not a file://, http(s):// or ssh:// URL or an absolute path"),
	STR("branch", struct ap_config, branch, 0, ref_ok, "is not a valid branch name"),
	STR("ssh_key", struct ap_config, ssh_key, 0, abs_file_ok, "is not an absolute file path"),
	STR("known_hosts", struct ap_config, known_hosts, 0, abs_file_ok,
	    "is not an absolute file path"),
	STR("ca_file", struct ap_config, ca_file, 0, abs_file_ok, "is not an absolute file path"),
	{ .key = "allow_rewind", .type = YAML_SCALAR_NODE, .parse = p_bool,
	  .offset = offsetof(struct ap_config, allow_rewind) },
	{ .key = "trust_owner", .type = YAML_SCALAR_NODE, .parse = p_bool,
	  .offset = offsetof(struct ap_config, trust_owner) },
	{ .key = "connect_timeout", .type = YAML_SCALAR_NODE, .parse = p_duration,
	  .offset = offsetof(struct ap_config, connect_timeout_usec) },
	{ .key = "io_timeout", .type = YAML_SCALAR_NODE, .parse = p_duration,
	  .offset = offsetof(struct ap_config, io_timeout_usec) },
};

static const struct field trust_fields[] = {
	STR("ssh_allowed_signers", struct ap_trust_config, ssh_allowed_signers, 0, abs_file_ok,
	    "is not an absolute file path"),
	STR("openpgp_keyring", struct ap_trust_config, openpgp_keyring, 0, abs_file_ok,
	    "is not an absolute file path"),
	{ .key = "require", .type = YAML_SCALAR_NODE, .parse = p_require,
	  .offset = offsetof(struct ap_trust_config, require) },
	STR("since", struct ap_trust_config, since, 0, commit_id_ok,
	    "is not a full commit id (40 lower-case hex digits)"),
	{ .key = "max_date_skew", .type = YAML_SCALAR_NODE, .parse = p_duration,
	  .offset = offsetof(struct ap_trust_config, max_date_skew_usec) },
};

static const struct field rule_fields[] = {
	STR("src", struct ap_file_rule, src, F_REQUIRED, src_ok,
	    "is not a safe relative repository path"),
	STR("dest", struct ap_file_rule, dest, F_REQUIRED, abs_ok,
	    "is not an absolute normalised path"),
	{ .key = "mode", .type = YAML_SCALAR_NODE, .parse = p_mode,
	  .offset = offsetof(struct ap_file_rule, mode) },
	STR("owner", struct ap_file_rule, owner, 0, NULL, NULL),
	STR("group", struct ap_file_rule, group, 0, NULL, NULL),
	{ .key = "allow_setid", .type = YAML_SCALAR_NODE, .parse = p_bool,
	  .offset = offsetof(struct ap_file_rule, allow_setid) },
	SEQ("validate", struct ap_file_rule, validate, p_seq, F_NONEMPTY, NULL, NULL),
	SEQ("reload", struct ap_file_rule, reload, p_seq, 0, unit_glob_ok,
	    "is not a unit name or glob"),
	SEQ("restart", struct ap_file_rule, restart, p_seq, 0, unit_glob_ok,
	    "is not a unit name or glob"),
	{ .key = "takeover", .type = YAML_SCALAR_NODE, .parse = p_bool,
	  .offset = offsetof(struct ap_file_rule, takeover) },
	SEQ("hosts", struct ap_file_rule, hosts, p_seq, F_NONEMPTY, host_glob_ok,
	    "is not a host name or glob"),
};

static const struct field units_entry_fields[] = {
	STR("dir", struct units_entry, dir, F_REQUIRED | F_EMPTY_OK, units_dir_ok,
	    "is not a safe relative repository directory"),
	SEQ("hosts", struct units_entry, hosts, p_seq, F_NONEMPTY, host_glob_ok,
	    "is not a host name or glob"),
};
static const struct schema units_entry_schema = { "a units entry", units_entry_fields,
						  ELEMENTSOF(units_entry_fields) };

static const struct field hooks_fields[] = {
	SEQ("on_failure", struct ap_hooks, on_failure, p_seq, F_NONEMPTY, NULL, NULL),
	SEQ("on_rollback", struct ap_hooks, on_rollback, p_seq, F_NONEMPTY, NULL, NULL),
	SEQ("on_refused", struct ap_hooks, on_refused, p_seq, F_NONEMPTY, NULL, NULL),
};
static const struct schema hooks_schema = { "hooks", hooks_fields, ELEMENTSOF(hooks_fields) };

static const struct field guard_fields[] = {
	SEQ("watch", struct ap_guard_config, watch, p_seq, 0, unit_glob_ok,
	    "is not a unit name or glob"),
	{ .key = "max_restarts", .type = YAML_SCALAR_NODE, .parse = p_uint,
	  .offset = offsetof(struct ap_guard_config, max_restarts) },
	{ .key = "window", .type = YAML_SCALAR_NODE, .parse = p_duration,
	  .offset = offsetof(struct ap_guard_config, window_usec) },
	{ .key = "settle", .type = YAML_SCALAR_NODE, .parse = p_duration,
	  .offset = offsetof(struct ap_guard_config, settle_usec) },
	STR("metrics", struct ap_guard_config, metrics_file, 0, abs_file_ok,
	    "is not an absolute file path"),
	STR("push", struct ap_guard_config, push_url, 0, push_url_ok,
	    "is not an http(s):// URL without user:password@"),
	STR("push_token_file", struct ap_guard_config, push_token_file, 0, abs_file_ok,
	    "is not an absolute file path"),
	STR("push_basic_auth_file", struct ap_guard_config, push_basic_auth_file, 0, abs_file_ok,
	    "is not an absolute file path"),
	STR("push_ca_file", struct ap_guard_config, push_ca_file, 0, abs_file_ok,
	    "is not an absolute file path"),
	{ .key = "push_timeout", .type = YAML_SCALAR_NODE, .parse = p_duration,
	  .offset = offsetof(struct ap_guard_config, push_timeout_usec) },
};

static const struct schema repo_schema = { "repo", repo_fields, ELEMENTSOF(repo_fields) };
static const struct schema rule_schema = { "file rule", rule_fields, ELEMENTSOF(rule_fields) };
static const struct schema guard_schema = { "guard", guard_fields, ELEMENTSOF(guard_fields) };
static const struct schema trust_schema = { "trust", trust_fields, ELEMENTSOF(trust_fields) };

static const struct field top_fields[] = {
	{ .key = "repo", .type = YAML_MAPPING_NODE, .parse = p_map, .offset = 0,
	  .flags = F_REQUIRED, .sub = &repo_schema },
	{ .key = "scope", .type = YAML_SCALAR_NODE, .parse = p_scope,
	  .offset = offsetof(struct ap_config, scope) },
	{ .key = "state_dir", .type = YAML_SCALAR_NODE, .parse = p_dir,
	  .offset = offsetof(struct ap_config, state_dir), .check = abs_ok,
	  .why = "is not an absolute normalised path" },
	{ .key = "unit_dir", .type = YAML_SCALAR_NODE, .parse = p_dir,
	  .offset = offsetof(struct ap_config, unit_dir), .check = abs_ok,
	  .why = "is not an absolute normalised path" },
	SEQ("units", struct ap_config, units, p_units, F_EMPTY_OK, units_dir_ok,
	    "is not a safe relative repository directory"),
	{ .key = "files", .type = YAML_SEQUENCE_NODE, .parse = p_files,
	  .offset = offsetof(struct ap_config, files), .sub = &rule_schema },
	{ .key = "guard", .type = YAML_MAPPING_NODE, .parse = p_guard,
	  .offset = offsetof(struct ap_config, guard), .sub = &guard_schema },
	{ .key = "takeover_units", .type = YAML_SCALAR_NODE, .parse = p_bool,
	  .offset = offsetof(struct ap_config, takeover_units) },
	{ .key = "drift", .type = YAML_SCALAR_NODE, .parse = p_drift,
	  .offset = offsetof(struct ap_config, drift_revert) },
	{ .key = "hooks", .type = YAML_MAPPING_NODE, .parse = p_map,
	  .offset = offsetof(struct ap_config, hooks), .sub = &hooks_schema },
	{ .key = "trust", .type = YAML_MAPPING_NODE, .parse = p_trust,
	  .offset = offsetof(struct ap_config, trust), .sub = &trust_schema },
};

static const struct schema top_schema = {
	"the configuration", top_fields, ELEMENTSOF(top_fields)
};

/* Duplicate keys are tracked in a bit mask, one bit per field. */
_Static_assert(ELEMENTSOF(top_fields) <= 32 && ELEMENTSOF(repo_fields) <= 32 &&
		       ELEMENTSOF(rule_fields) <= 32 && ELEMENTSOF(guard_fields) <= 32 &&
		       ELEMENTSOF(trust_fields) <= 32,
	       "a schema table has more fields than the duplicate mask has bits");

static const struct field *field_find(const struct schema *s, const yaml_node_t *k)
{
	for (size_t i = 0; i < s->n_fields; i++)
		if (strlen(s->fields[i].key) == k->data.scalar.length &&
		    memcmp(s->fields[i].key, k->data.scalar.value, k->data.scalar.length) == 0)
			return &s->fields[i];
	return NULL;
}

/* One key/value pair: libyaml keeps unknown and repeated keys (and "<<"), so refusing them
 * is ours to do. */
static int walk_pair(struct ctx *c, const yaml_node_pair_t *p, const struct schema *s,
		     uint32_t *found, void *base)
{
	char buf[SHOWN_MAX];
	const struct field *f;
	yaml_node_t *k, *v;
	uint32_t bit;
	int r;

	r = node_get(c, p->key, YAML_SCALAR_NODE, "mapping key", &k);
	if (r < 0)
		return r;
	f = field_find(s, k);
	if (!f)
		return fail(c, k, "unknown key '%s' in %s", shown(k, buf), s->where);
	bit = UINT32_C(1) << (f - s->fields);
	if (*found & bit)
		return fail(c, k, "duplicate key '%s' in %s", f->key, s->where);
	*found |= bit;
	r = node_get(c, p->value, f->type, f->key, &v);
	if (r < 0)
		return r;
	return f->parse(c, v, f, base);
}

static int walk_mapping(struct ctx *c, yaml_node_t *map, const struct schema *s, void *base)
{
	uint32_t found = 0;
	int r;

	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		r = walk_pair(c, p, s, &found, base);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < s->n_fields; i++)
		if ((s->fields[i].flags & F_REQUIRED) && !(found & (UINT32_C(1) << i)))
			return fail(c, map, "missing required key '%s' in %s", s->fields[i].key,
				    s->where);
	return 0;
}

/* Reading and parsing. */

static int read_bounded(int fd, unsigned char *buf, size_t size, size_t *ret_len)
{
	size_t len = 0;

	while (len < size) {
		ssize_t k = read(fd, buf + len, size - len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		len += (size_t)k;
	}
	*ret_len = len;
	return 0;
}

/* Reads the whole file, refusing more than AP_CONFIG_MAX_SIZE bytes. */
static int read_config(const char *path, unsigned char **ret, size_t *ret_len)
{
	_cleanup_free_ unsigned char *buf = NULL;
	size_t len = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		return ap_log_error(r, "failed to open config '%s': %s", path, strerror(-r));
	}
	buf = malloc(AP_CONFIG_MAX_SIZE + 1);
	r = buf ? read_bounded(fd, buf, AP_CONFIG_MAX_SIZE + 1, &len) : -ENOMEM;
	(void)close(fd); /* read-only: a failing close loses nothing */
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return ap_log_error(r, "failed to read config '%s': %s", path, strerror(-r));
	if (len > AP_CONFIG_MAX_SIZE)
		return fail_at(path, (yaml_mark_t){ 0 }, "configuration is larger than %d bytes",
			       AP_CONFIG_MAX_SIZE);
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

/* Reader errors (bad UTF-8, control characters) carry a byte offset, not a mark. */
static yaml_mark_t mark_of_offset(const unsigned char *buf, size_t len, size_t offset)
{
	yaml_mark_t m = { 0 };

	for (size_t i = 0; i < offset && i < len; i++) {
		m.column++;
		if (buf[i] == '\n') {
			m.line++;
			m.column = 0;
		}
	}
	return m;
}

static int syntax_error(const char *file, const yaml_parser_t *p, const unsigned char *buf,
			size_t len)
{
	yaml_mark_t m = p->problem_mark;

	if (p->error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	if (p->error == YAML_READER_ERROR)
		m = mark_of_offset(buf, len, p->problem_offset);
	if (p->context)
		return fail_at(file, m, "%s (%s)", p->problem, p->context);
	return fail_at(file, m, "%s", p->problem ? p->problem : "invalid YAML");
}

/* What the document API cannot tell: anchors (it resolves them away), the nesting depth
 * (checked before anything is built) and a second document. */
static int check_event(const char *file, const yaml_event_t *e, unsigned *depth, unsigned *docs)
{
	const yaml_char_t *anchor = NULL;

	switch (e->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++*docs > 1)
			return fail_at(file, e->start_mark, "multiple documents are not allowed");
		return 0;
	case YAML_ALIAS_EVENT:
		return fail_at(file, e->start_mark, "aliases are not allowed");
	case YAML_SCALAR_EVENT:
		anchor = e->data.scalar.anchor;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = e->data.sequence_start.anchor;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = e->data.mapping_start.anchor;
		break;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		--*depth;
		return 0;
	default:
		return 0;
	}
	if (anchor)
		return fail_at(file, e->start_mark, "anchors are not allowed");
	if (e->type != YAML_SCALAR_EVENT && ++*depth > MAX_DEPTH)
		return fail_at(file, e->start_mark, "nesting is deeper than %d levels", MAX_DEPTH);
	return 0;
}

static int prescan(const char *file, const unsigned char *buf, size_t len)
{
	unsigned depth = 0, docs = 0;
	yaml_parser_t p;
	bool done = false;
	int r = 0;

	if (!yaml_parser_initialize(&p))
		return -ENOMEM;
	yaml_parser_set_input_string(&p, buf, len);
	while (r >= 0 && !done) {
		yaml_event_t e;

		if (!yaml_parser_parse(&p, &e)) {
			r = syntax_error(file, &p, buf, len);
			break;
		}
		r = check_event(file, &e, &depth, &docs);
		done = e.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&e);
	}
	yaml_parser_delete(&p);
	if (r >= 0 && docs == 0)
		r = fail_at(file, (yaml_mark_t){ 0 }, "empty configuration (repo.url is required)");
	return r;
}

static int walk_document(const char *file, yaml_document_t *doc, const char *host,
			 const char *short_host, struct ap_config *cfg)
{
	struct ctx c = { .file = file, .doc = doc, .host = host, .short_host = short_host };
	yaml_node_t *root = yaml_document_get_root_node(doc);
	int r;

	if (!root || (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0))
		return fail_at(file, (yaml_mark_t){ 0 },
			       "empty configuration (repo.url is required)");
	c.n_nodes = (size_t)(doc->nodes.top - doc->nodes.start);
	c.seen = calloc(c.n_nodes, sizeof(bool));
	if (!c.seen)
		return -ENOMEM;
	r = node_get(&c, 1, YAML_MAPPING_NODE, "top level", &root);
	if (r >= 0)
		r = walk_mapping(&c, root, &top_schema, cfg);
	free(c.seen);
	return r;
}

static int load_document(const char *file, const unsigned char *buf, size_t len,
			 const char *host, struct ap_config *cfg)
{
	char short_host[256];
	yaml_document_t doc;
	yaml_parser_t p;
	int r;

	if (!yaml_parser_initialize(&p))
		return -ENOMEM;
	yaml_parser_set_input_string(&p, buf, len);
	if (!yaml_parser_load(&p, &doc)) {
		r = syntax_error(file, &p, buf, len);
		yaml_parser_delete(&p);
		return r;
	}
	snprintf(short_host, sizeof(short_host), "%.*s", (int)strcspn(host, "."), host);
	r = walk_document(file, &doc, host, short_host, cfg);
	yaml_document_delete(&doc);
	yaml_parser_delete(&p);
	return r;
}

/* Defaults. */

/* $VAR/suffix, or $HOME/fallback/suffix. Relative XDG values are ignored, as the XDG base
 * directory spec asks; without a usable HOME there is no default (-ENXIO). */
static int xdg_path(const char *var, const char *fallback, const char *suffix, char **ret)
{
	const char *base = secure_getenv(var), *mid = "";
	size_t n;
	char *p;

	if (!base || base[0] != '/') {
		base = secure_getenv("HOME");
		mid = fallback;
		if (!base || base[0] != '/')
			return -ENXIO;
	}
	n = strlen(base);
	if (n >= PATH_MAX)
		return -ENXIO;
	while (n > 0 && base[n - 1] == '/')
		n--;
	p = ap_strdupf("%.*s/%s%s", (int)n, base, mid, suffix);
	if (!p)
		return -ENOMEM;
	if (!ap_path_is_normalized_absolute(p)) {
		free(p);
		return -ENXIO;
	}
	*ret = p;
	return 0;
}

static int default_dir(const struct ap_config *cfg, char **dir, const char *key,
		       const char *system, const char *var, const char *fallback,
		       const char *suffix)
{
	int r;

	if (*dir)
		return 0;
	if (cfg->scope == AP_SCOPE_SYSTEM)
		return (*dir = strdup(system)) ? 0 : -ENOMEM;
	r = xdg_path(var, fallback, suffix, dir);
	if (r == -ENXIO)
		return ap_log_error(r, "%s: no default %s for scope user: set it, or set $HOME "
				    "(or $%s) to an absolute path", cfg->path, key, var);
	return r;
}

static int apply_defaults(struct ap_config *cfg, bool force_user)
{
	int r;

	if (force_user)
		cfg->scope = AP_SCOPE_USER;
	if (!cfg->branch && !(cfg->branch = strdup("main")))
		return -ENOMEM;
	if (!cfg->units && ap_strv_push(&cfg->units, "systemd/") < 0)
		return -ENOMEM;
	r = default_dir(cfg, &cfg->state_dir, "state_dir", "/var/lib/autopull", "XDG_STATE_HOME",
			".local/state/", "autopull");
	if (r < 0)
		return r;
	return default_dir(cfg, &cfg->unit_dir, "unit_dir", "/etc/systemd/system",
			   "XDG_CONFIG_HOME", ".config/", "systemd/user");
}

/* Public interface. */

const char *ap_scope_to_string(enum ap_scope s)
{
	switch (s) {
	case AP_SCOPE_SYSTEM:
		return "system";
	case AP_SCOPE_USER:
		return "user";
	}
	return "?";
}

int ap_config_default_path(enum ap_scope scope, char **ret)
{
	char *p;

	if (scope != AP_SCOPE_USER) {
		p = strdup("/etc/autopull/autopull.yaml");
		if (!p)
			return -ENOMEM;
		*ret = p;
		return 0;
	}
	return xdg_path("XDG_CONFIG_HOME", ".config/", "autopull/autopull.yaml", ret);
}

/* The files whose content decides what is trusted or who is let in, and the directories above
 * the state: nobody but root or the user autopull runs as may change them (or, for secrets,
 * read them). Each problem is logged with its fix; -EINVAL when there is one. */
static int check_file_owners(const struct ap_config *c)
{
	static const struct {
		const char *what;
		size_t offset;
		unsigned flags;
	} files[] = {
		{ "the configuration", offsetof(struct ap_config, path), 0 },
		{ "trust: ssh_allowed_signers", offsetof(struct ap_config, trust.ssh_allowed_signers), 0 },
		{ "trust: openpgp_keyring", offsetof(struct ap_config, trust.openpgp_keyring), 0 },
		{ "guard: push_token_file", offsetof(struct ap_config, guard.push_token_file),
		  AP_FS_FILE_SECRET },
		{ "guard: push_basic_auth_file", offsetof(struct ap_config, guard.push_basic_auth_file),
		  AP_FS_FILE_SECRET },
	};
	bool bad = false;

	for (size_t i = 0; i <= ELEMENTSOF(files); i++) {
		_cleanup_free_ char *msg = NULL;
		const char *p = i < ELEMENTSOF(files) ? *(char *const *)((const char *)c + files[i].offset)
						      : c->state_dir;
		int r;

		if (!p)
			continue;
		r = i < ELEMENTSOF(files) ? ap_fs_check_file(files[i].what, p, files[i].flags, &msg)
					  : ap_fs_check_parents("the state directory", p, &msg);
		if (r == -ENOMEM)
			return r;
		if (r == -EPERM) {
			ap_log_error(r, "%s", msg);
			bad = true;
		}
	}
	return bad ? -EINVAL : 0;
}

/* What the loaded configuration depends on: its bytes, the host name it was selected for and
 * the directories the defaults filled in. */
static int config_digest(const unsigned char *buf, size_t len, const char *host,
			 struct ap_config *cfg)
{
	struct ap_buf b = { 0 };
	int r = ap_buf_printf(&b, "autopull-config 1\nhost %s\nscope %d\nunits %s\nstate %s\n%zu\n",
			      host, (int)cfg->scope, cfg->unit_dir, cfg->state_dir, len);

	if (r >= 0 && len)
		r = ap_buf_append(&b, buf, len);
	if (r >= 0)
		r = ap_digest_sha256_hex(b.data, b.len, cfg->digest);
	ap_buf_free(&b);
	return r;
}

static int load(const char *path, bool force_user, const char *host, struct ap_config **ret)
{
	_cleanup_(ap_config_freep) struct ap_config *cfg = NULL;
	_cleanup_free_ unsigned char *buf = NULL;
	size_t len = 0;
	int r;

	r = read_config(path, &buf, &len);
	if (r < 0)
		return r;
	r = prescan(path, buf, len);
	if (r < 0)
		return r;
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg || !(cfg->path = strdup(path)))
		return -ENOMEM;
	cfg->connect_timeout_usec = 10ULL * 1000000;
	cfg->io_timeout_usec = 60ULL * 1000000;
	cfg->trust.max_date_skew_usec = 24ULL * 3600 * 1000000;
	cfg->guard = (struct ap_guard_config){ .max_restarts = 3,
					       .window_usec = 5ULL * 60 * 1000000,
					       .settle_usec = 10ULL * 1000000,
					       .push_timeout_usec = 5ULL * 1000000 };
	r = load_document(path, buf, len, host, cfg);
	if (r < 0)
		return r;
	r = apply_defaults(cfg, force_user);
	if (r >= 0)
		r = config_digest(buf, len, host, cfg);
	if (r < 0)
		return r;
	r = check_file_owners(cfg);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(cfg);
	return 0;
}

int ap_config_load_host(const char *path, bool force_user, const char *host,
			struct ap_config **ret)
{
	int r = load(path, force_user, host, ret);

	/* Every other error was logged where it was found, with its position. */
	if (r == -ENOMEM)
		return ap_log_error(r, "failed to load config '%s': %s", path, strerror(-r));
	return r;
}

int ap_config_load(const char *path, bool force_user, struct ap_config **ret)
{
	char host[256] = "";

	if (gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "localhost");
	return ap_config_load_host(path, force_user, host, ret);
}

static void rule_free(struct ap_file_rule *r)
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

void ap_config_free(struct ap_config *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->repo_url);
	free(c->branch);
	free(c->ssh_key);
	free(c->known_hosts);
	free(c->ca_file);
	free(c->state_dir);
	free(c->unit_dir);
	ap_strv_free(c->units);
	for (size_t i = 0; c->files && i < c->n_files; i++)
		rule_free(&c->files[i]);
	free(c->files);
	ap_strv_free(c->guard.watch);
	ap_strv_free(c->hooks.on_failure);
	ap_strv_free(c->hooks.on_rollback);
	ap_strv_free(c->hooks.on_refused);
	free(c->guard.metrics_file);
	free(c->guard.push_url);
	free(c->guard.push_token_file);
	free(c->guard.push_basic_auth_file);
	free(c->guard.push_ca_file);
	free(c->trust.ssh_allowed_signers);
	free(c->trust.openpgp_keyring);
	free(c->trust.since);
	free(c);
}
