/* Unit names and the little of the unit-file syntax the planner needs: section headers,
 * "Key=Value" lines, comments and backslash continuations. It does not interpret values
 * beyond X-AutoPull-OnChange=, and never reads files itself.
 *
 * Two readers of the text live here. next_line() is the planner's simple one (lines split at
 * '\n', continuations not joined). next_logical() reproduces systemd's config_parse() and
 * read_line() exactly, for the questions where a near miss changes the answer ("did only
 * comments change?"): lines end at \n, \r, \r\n, \n\r or NUL; a physical line whose first
 * non-blank character is '#' or ';' is dropped even in the middle of a continuation; a line
 * ending in an unescaped backslash continues with the next one (the backslash becomes a
 * space), and an empty line ends a continuation. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "unitfile.h"
#include "util.h"

static const char *const unit_types[] = {
	"service", "socket", "timer", "path", "mount", "automount",
	"target", "slice", "swap", "device", "scope",
};

static const char *unit_type(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (!dot)
		return NULL;
	for (size_t i = 0; i < ELEMENTSOF(unit_types); i++)
		if (strcmp(dot + 1, unit_types[i]) == 0)
			return dot + 1;
	return NULL;
}

/* systemd's VALID_CHARS (ASCII letters and digits, ":-_.\\") plus '@'; isalnum() would
 * follow the locale. */
static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr(":-_.\\@", c));
}

/* systemd's unit_name_is_valid(name, UNIT_NAME_ANY) with one deliberate difference: systemd
 * lets an instance contain '@' ("foo@a@b.service", "foo@@.service"); we refuse a second '@',
 * which no unit we map needs, so that prefix, instance and template are never ambiguous. */
bool ap_unit_name_is_valid(const char *name)
{
	const char *type = unit_type(name);
	size_t stem, n = strlen(name);

	if (!type || n >= AP_UNIT_NAME_MAX)
		return false;
	stem = (size_t)(type - 1 - name);
	if (stem == 0)
		return false;
	for (size_t i = 0; i < stem; i++)
		if (!is_name_char(name[i]))
			return false;
	/* at most one '@', and not as the first character */
	const char *at = memchr(name, '@', stem);
	return !at || (at != name && !memchr(at + 1, '@', stem - (size_t)(at + 1 - name)));
}

bool ap_unit_name_is_valid_candidate(const char *name)
{
	return unit_type(name) != NULL;
}

bool ap_unit_name_is_template(const char *name)
{
	const char *type = unit_type(name);

	return ap_unit_name_is_valid(name) && type - name >= 2 && type[-2] == '@';
}

bool ap_unit_name_template_of(const char *name, char *ret, size_t size)
{
	const char *type = unit_type(name), *at = strchr(name, '@');
	size_t prefix;

	if (!ap_unit_name_is_valid(name) || !at || at + 1 == type - 1 || !type)
		return false;
	prefix = (size_t)(at + 1 - name);
	if (prefix + 1 + strlen(type) + 1 > size)
		return false;
	memcpy(ret, name, prefix);
	ret[prefix] = '.';
	memcpy(ret + prefix + 1, type, strlen(type) + 1);
	return true;
}

bool ap_unit_name_is_restartable(const char *name)
{
	return ap_endswith(name, ".service") || ap_endswith(name, ".socket") ||
	       ap_endswith(name, ".timer") || ap_endswith(name, ".path");
}

/* Iterates logical lines: calls fn(section, line, len) for each non-empty, non-comment
 * line, with continuation lines joined logically by being reported in the same section. */
struct line_iter {
	const char *p, *end;
	char section[64];
};

static bool next_line(struct line_iter *it, const char **ret, size_t *ret_len)
{
	while (it->p < it->end) {
		const char *s = it->p, *e = memchr(s, '\n', (size_t)(it->end - s));

		if (!e)
			e = it->end;
		it->p = e < it->end ? e + 1 : e;
		while (s < e && isspace((unsigned char)*s))
			s++;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		if (s == e || *s == '#' || *s == ';')
			continue;
		if (*s == '[' && e[-1] == ']') {
			size_t n = (size_t)(e - s - 2);
			if (n >= sizeof(it->section))
				n = sizeof(it->section) - 1;
			memcpy(it->section, s + 1, n);
			it->section[n] = '\0';
			continue;
		}
		*ret = s;
		*ret_len = (size_t)(e - s);
		return true;
	}
	return false;
}

static bool key_is(const char *line, size_t len, const char *key)
{
	size_t k = strlen(key);

	if (len <= k || strncmp(line, key, k) != 0)
		return false;
	for (size_t i = k; i < len; i++) {
		if (line[i] == '=')
			return true;
		if (!isspace((unsigned char)line[i]))
			return false;
	}
	return false;
}

/* The value of a "Key=value" line, without the white space after '='. */
static const char *value_of(const char *line, size_t len, size_t *ret_len)
{
	const char *val = (const char *)memchr(line, '=', len) + 1;
	size_t n = len - (size_t)(val - line);

	while (n && isspace((unsigned char)*val))
		val++, n--;
	*ret_len = n;
	return val;
}

bool ap_unitfile_has_install(const char *text, size_t len)
{
	static const char *const keys[] = { "WantedBy", "RequiredBy", "UpheldBy", "Alias", "Also" };
	struct line_iter it = { .p = text, .end = text + len };
	const char *l;
	size_t n;

	while (next_line(&it, &l, &n)) {
		if (strcmp(it.section, "Install") != 0)
			continue;
		for (size_t i = 0; i < ELEMENTSOF(keys); i++)
			if (key_is(l, n, keys[i]))
				return true;
	}
	return false;
}

enum ap_onchange ap_unitfile_onchange(const char *text, size_t len)
{
	static const struct {
		const char *word;
		enum ap_onchange v;
	} words[] = { { "restart", AP_ONCHANGE_RESTART }, { "reload", AP_ONCHANGE_RELOAD },
		      { "none", AP_ONCHANGE_NONE } };
	struct line_iter it = { .p = text, .end = text + len };
	enum ap_onchange v = AP_ONCHANGE_RESTART;
	const char *l;
	size_t n;

	while (next_line(&it, &l, &n)) {
		const char *val;
		size_t vlen;

		if (strcmp(it.section, "Unit") != 0 || !key_is(l, n, "X-AutoPull-OnChange"))
			continue;
		val = value_of(l, n, &vlen);
		v = AP_ONCHANGE_INVALID; /* the last assignment wins, as in systemd */
		for (size_t i = 0; i < ELEMENTSOF(words); i++)
			if (vlen == strlen(words[i].word) && memcmp(val, words[i].word, vlen) == 0)
				v = words[i].v;
	}
	return v;
}

int ap_unitfile_health(const char *text, size_t len, char **ret, unsigned *ret_line)
{
	struct line_iter it = { .p = text, .end = text + len };
	const char *l, *val = NULL;
	size_t n, vlen = 0;

	while (next_line(&it, &l, &n)) {
		if (strcmp(it.section, "Unit") != 0 || !key_is(l, n, "X-AutoPull-Health"))
			continue;
		val = value_of(l, n, &vlen);
	}
	if (!val || vlen == 0)
		return 0;
	*ret = strndup(val, vlen);
	if (!*ret)
		return -ENOMEM;
	*ret_line = 1;
	for (const char *p = text; p < val; p++)
		*ret_line += *p == '\n';
	return 1;
}

/* systemd's parse_boolean(); -1 for anything else. */
static int parse_bool(const char *v, size_t n)
{
	static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
	static const char *const no[] = { "0", "no", "n", "false", "f", "off" };

	for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
		if (n == strlen(yes[i]) && strncasecmp(v, yes[i], n) == 0)
			return 1;
		if (n == strlen(no[i]) && strncasecmp(v, no[i], n) == 0)
			return 0;
	}
	return -1;
}

void ap_unitfile_refusals(const char *text, size_t len, bool *refuse_start, bool *refuse_stop)
{
	struct line_iter it = { .p = text, .end = text + len };
	const char *l;
	size_t n;

	while (next_line(&it, &l, &n)) {
		bool start = key_is(l, n, "RefuseManualStart");
		const char *val;
		size_t vlen;
		int b;

		if (strcmp(it.section, "Unit") != 0 || (!start && !key_is(l, n,
									  "RefuseManualStop")))
			continue;
		val = value_of(l, n, &vlen);
		/* the last valid assignment wins; systemd ignores an invalid one */
		if ((b = parse_bool(val, vlen)) >= 0)
			*(start ? refuse_start : refuse_stop) = b;
	}
}

int ap_unitfile_user(const char *text, size_t len, char *ret, size_t size)
{
	struct line_iter it = { .p = text, .end = text + len };
	bool dynamic = false;
	const char *l, *user = NULL;
	size_t n, ulen = 0;

	while (next_line(&it, &l, &n)) {
		const char *val;
		size_t vlen;
		int b;

		if (strcmp(it.section, "Service") != 0)
			continue;
		if (key_is(l, n, "User")) {
			user = value_of(l, n, &ulen);
		} else if (key_is(l, n, "DynamicUser")) {
			val = value_of(l, n, &vlen);
			if ((b = parse_bool(val, vlen)) >= 0)
				dynamic = b;
		}
	}
	/* the manager makes a DynamicUser= one itself; a specifier is resolved by the manager */
	if (!user || ulen == 0 || dynamic || memchr(user, '%', ulen))
		return 0;
	if (ulen >= size)
		return -ENAMETOOLONG;
	memcpy(ret, user, ulen);
	ret[ulen] = '\0';
	return 1;
}

/* True when old and new have the same lines in the same sections once the lines skip()
 * accepts are dropped from both. */
static bool same_except(const char *old, size_t old_len, const char *new_text, size_t new_len,
			bool (*skip)(const struct line_iter *it, const char *l, size_t n))
{
	struct line_iter a = { .p = old, .end = old + old_len };
	struct line_iter b = { .p = new_text, .end = new_text + new_len };

	for (;;) {
		const char *la = NULL, *lb = NULL;
		size_t na = 0, nb = 0;
		bool ha, hb;

		while ((ha = next_line(&a, &la, &na)) && skip(&a, la, na))
			;
		while ((hb = next_line(&b, &lb, &nb)) && skip(&b, lb, nb))
			;
		if (!ha || !hb)
			return ha == hb;
		if (na != nb || memcmp(la, lb, na) != 0 || strcmp(a.section, b.section) != 0)
			return false;
	}
}

static bool in_install(const struct line_iter *it, const char *l, size_t n)
{
	return strcmp(it->section, "Install") == 0;
}

bool ap_unitfile_only_install_changed(const char *old, size_t old_len, const char *new_text,
				      size_t new_len)
{
	return same_except(old, old_len, new_text, new_len, in_install);
}

/* [Unit] keys that only describe the unit: the manager shows them, the process never sees
 * them and no dependency follows from them. */
static bool is_metadata(const struct line_iter *it, const char *l, size_t n)
{
	return strcmp(it->section, "Unit") == 0 &&
	       (key_is(l, n, "Description") || key_is(l, n, "Documentation"));
}

/* next_line() neither joins continuations nor ends lines at a carriage return as systemd
 * does: a text with either could hide a dependency inside what looks like a Description=. */
static bool plain_lines(const char *text, size_t len)
{
	const char *end = text + len;

	if (memchr(text, '\r', len))
		return false;
	for (const char *p = text; p < end;) {
		const char *e = memchr(p, '\n', (size_t)(end - p)), *t;

		e = e ? e : end;
		t = e;
		while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if (t > p && t[-1] == '\\')
			return false;
		p = e + 1;
	}
	return true;
}

bool ap_unitfile_only_metadata_changed(const char *old, size_t old_len, const char *new_text,
				       size_t new_len)
{
	return plain_lines(old, old_len) && plain_lines(new_text, new_len) &&
	       same_except(old, old_len, new_text, new_len, is_metadata);
}

/* ---- per-connection instances ---- */

/* A decimal as printf("%u") writes it: digits, no sign, no leading zero, at most max. */
static bool is_decimal(const char *s, size_t n, unsigned long long max)
{
	unsigned long long v = 0;

	if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || __builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (unsigned long long)(s[i] - '0'), &v))
			return false;
	}
	return v <= max;
}

/* "ADDR:PORT" with an IPv4 or IPv6 address (IN6_ADDR_TO_STRING: no brackets, no scope) or
 * an AF_VSOCK context id; the port is a 16-bit port or a 32-bit vsock port. */
static bool is_endpoint(const char *s, size_t n)
{
	const char *colon = NULL;
	char addr[INET6_ADDRSTRLEN];
	unsigned char bin[sizeof(struct in6_addr)];
	size_t alen;

	for (size_t i = 0; i < n; i++)
		if (s[i] == ':')
			colon = s + i;
	if (!colon)
		return false;
	alen = (size_t)(colon - s);
	if (alen == 0 || alen >= sizeof(addr) || !is_decimal(colon + 1, n - alen - 1, UINT32_MAX))
		return false;
	if (is_decimal(s, alen, UINT32_MAX))
		return true; /* vsock CID */
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	return inet_pton(AF_INET, addr, bin) == 1 || inet_pton(AF_INET6, addr, bin) == 1;
}

/* "PID-UID", "PID_PIDFDID-UID" (AF_UNIX with peer credentials), "unknown" (peer in another
 * namespace) or "LOCAL-REMOTE" endpoints (IP, vsock): what follows "NR-" or "NR-COOKIE-". */
static bool is_peer(const char *s, size_t n)
{
	const char *dash = memchr(s, '-', n), *us;
	size_t a;

	if (n == strlen("unknown") && memcmp(s, "unknown", n) == 0)
		return true;
	if (!dash || memchr(dash + 1, '-', n - (size_t)(dash + 1 - s)))
		return false;
	a = (size_t)(dash - s);
	if (is_endpoint(s, a) && is_endpoint(dash + 1, n - a - 1))
		return true;
	us = memchr(s, '_', a);
	if (us && !is_decimal(us + 1, a - (size_t)(us + 1 - s), UINT64_MAX))
		return false;
	return is_decimal(s, us ? (size_t)(us - s) : a, INT32_MAX) &&
	       is_decimal(dash + 1, n - a - 1, UINT32_MAX);
}

bool ap_unit_instance_is_per_connection(const char *name)
{
	const char *at, *dot, *rest, *dash;

	if (!ap_unit_name_is_valid(name) || !ap_endswith(name, ".service"))
		return false;
	at = strchr(name, '@');
	dot = strrchr(name, '.');
	if (!at || dot == at + 1)
		return false;
	dash = memchr(at + 1, '-', (size_t)(dot - at - 1));
	if (!dash || !is_decimal(at + 1, (size_t)(dash - at - 1), UINT32_MAX))
		return false; /* "NR-": the socket's connection counter */
	rest = dash + 1;
	if (is_peer(rest, (size_t)(dot - rest)))
		return true;
	/* systemd 256 and later put the socket cookie after the counter */
	dash = memchr(rest, '-', (size_t)(dot - rest));
	return dash && is_decimal(rest, (size_t)(dash - rest), UINT64_MAX) &&
	       is_peer(dash + 1, (size_t)(dot - dash - 1));
}

/* ---- systemd's reading of unit-file text ---- */

enum { EOL_NL = 1, EOL_CR = 2, EOL_NUL = 4 };

static unsigned eol_kind(char c)
{
	return c == '\n' ? EOL_NL : c == '\r' ? EOL_CR : c == '\0' ? EOL_NUL : 0;
}

/* One physical line as read_line() cuts it: up to EOF or a run of end-of-line bytes in which
 * no kind repeats and nothing follows a NUL ("\r\n" is one end, "\n\n" two). */
static bool next_physical(const char **p, const char *end, const char **ret, size_t *ret_len)
{
	const char *s = *p, *e = s;
	unsigned seen = 0;

	if (s >= end)
		return false;
	while (e < end && !eol_kind(*e))
		e++;
	*ret = s;
	*ret_len = (size_t)(e - s);
	for (; e < end; e++) {
		unsigned k = eol_kind(*e);

		if (!k || (seen & k) || (seen & EOL_NUL))
			break;
		seen |= k;
	}
	*p = e;
	return true;
}

/* systemd's WHITESPACE; isspace() would add \v and \f. */
static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* True when the line ends in a backslash that is not itself escaped. */
static bool continues(const char *l, size_t n)
{
	bool escaped = false;

	for (size_t i = 0; i < n; i++)
		escaped = !escaped && l[i] == '\\';
	return escaped;
}

struct logical_iter {
	const char *p, *end;
	bool bom_seen;
	struct ap_buf line;
};

#define UTF8_BOM "\xef\xbb\xbf"

/* The next logical line, stripped of whitespace at both ends (as parse_line() does first);
 * empty ones included. 1: a line, 0: end of text, -ENOMEM. */
static int next_logical(struct logical_iter *it, const char **ret, size_t *ret_len)
{
	const char *l, *s;
	size_t n;
	bool any = false;
	int r;

	it->line.len = 0;
	while (next_physical(&it->p, it->end, &l, &n)) {
		size_t k = 0;

		while (k < n && (l[k] == ' ' || l[k] == '\t'))
			k++;
		if (k < n && (l[k] == '#' || l[k] == ';'))
			continue; /* a comment, even inside a continuation */
		/* config_parse() strips one BOM: from the first non-comment line that has one */
		if (!it->bom_seen && n >= 3 && memcmp(l, UTF8_BOM, 3) == 0) {
			it->bom_seen = true;
			l += 3;
			n -= 3;
		}
		r = ap_buf_append(&it->line, l, n);
		if (r < 0)
			return r;
		any = true;
		if (!continues(l, n))
			break;
		it->line.data[it->line.len - 1] = ' ';
	}
	if (!any)
		return 0;
	s = it->line.data;
	n = it->line.len;
	while (n && is_ws(*s))
		s++, n--;
	while (n && is_ws(s[n - 1]))
		n--;
	*ret = s;
	*ret_len = n;
	return 1;
}

/* Like next_logical, but skips empty logical lines. */
static int next_significant(struct logical_iter *it, const char **ret, size_t *ret_len)
{
	int r;

	while ((r = next_logical(it, ret, ret_len)) > 0)
		if (*ret_len > 0)
			break;
	return r;
}

bool ap_unitfile_only_comments_changed(const char *old, size_t old_len, const char *new_text,
				       size_t new_len)
{
	struct logical_iter a = { .p = old, .end = old + old_len };
	struct logical_iter b = { .p = new_text, .end = new_text + new_len };
	bool same = false;

	for (;;) {
		const char *la = NULL, *lb = NULL;
		size_t na = 0, nb = 0;
		int ra = next_significant(&a, &la, &na), rb = next_significant(&b, &lb, &nb);

		if (ra < 0 || rb < 0)
			break; /* out of memory: call it a change */
		if (ra == 0 || rb == 0) {
			same = ra == rb;
			break;
		}
		if (na != nb || memcmp(la, lb, na) != 0)
			break;
	}
	ap_buf_clear(&a.line);
	ap_buf_clear(&b.line);
	return same;
}

/* Length of the UTF-8 sequence at s (at most n bytes) if it encodes a character systemd's
 * utf8_is_valid() accepts, else 0: no overlong forms, no UTF-16 surrogates, nothing above
 * U+10FFFF, and none of the noncharacters U+FDD0..U+FDEF and U+xxFFFE/U+xxFFFF. */
static size_t utf8_char_len(const unsigned char *s, size_t n)
{
	static const unsigned long min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3
		   : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
	unsigned long c;

	if (len == 0 || len > n)
		return 0;
	c = len == 1 ? s[0] : s[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff) ||
	    (c >= 0xfdd0 && c <= 0xfdef) || (c & 0xfffe) == 0xfffe)
		return 0;
	return len;
}

int ap_unitfile_check_text(const char *data, size_t len, const char **ret_reason)
{
	const unsigned char *s = (const unsigned char *)data;

	for (size_t i = 0; i < len;) {
		size_t k;

		if (s[i] == '\0') {
			if (ret_reason)
				*ret_reason = "contains a NUL byte";
			return -EINVAL;
		}
		k = utf8_char_len(s + i, len - i);
		if (k == 0) {
			if (ret_reason)
				*ret_reason = "is not valid UTF-8";
			return -EINVAL;
		}
		i += k;
	}
	return 0;
}
