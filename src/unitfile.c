/* Unit names and the little of the unit-file syntax the planner needs: section headers,
 * "Key=Value" lines, comments and backslash continuations. It does not interpret values
 * beyond X-AutoPull-OnChange=, and never reads files itself. */
#include <ctype.h>
#include <string.h>

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

bool ap_unit_name_is_valid(const char *name)
{
	const char *type = unit_type(name);
	size_t stem, n = strlen(name);

	if (!type || n > 255)
		return false;
	stem = (size_t)(type - 1 - name);
	if (stem == 0)
		return false;
	for (size_t i = 0; i < stem; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr(":_.-\\@", name[i]))
			return false;
	/* at most one '@', and not as the first character */
	const char *at = memchr(name, '@', stem);
	return !at || (at != name && !memchr(at + 1, '@', stem - (size_t)(at + 1 - name)));
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
		val = memchr(l, '=', n) + 1;
		vlen = n - (size_t)(val - l);
		while (vlen && isspace((unsigned char)*val))
			val++, vlen--;
		v = AP_ONCHANGE_INVALID; /* the last assignment wins, as in systemd */
		for (size_t i = 0; i < ELEMENTSOF(words); i++)
			if (vlen == strlen(words[i].word) && memcmp(val, words[i].word, vlen) == 0)
				v = words[i].v;
	}
	return v;
}

/* Compares the next significant non-[Install] line of two iterators. */
static bool next_non_install(struct line_iter *it, const char **l, size_t *n)
{
	while (next_line(it, l, n))
		if (strcmp(it->section, "Install") != 0)
			return true;
	return false;
}

bool ap_unitfile_only_install_changed(const char *old, size_t old_len, const char *new_text,
				      size_t new_len)
{
	struct line_iter a = { .p = old, .end = old + old_len };
	struct line_iter b = { .p = new_text, .end = new_text + new_len };

	for (;;) {
		const char *la, *lb;
		size_t na, nb;
		bool ha = next_non_install(&a, &la, &na), hb = next_non_install(&b, &lb, &nb);

		if (!ha || !hb)
			return ha == hb;
		if (na != nb || memcmp(la, lb, na) != 0 || strcmp(a.section, b.section) != 0)
			return false;
	}
}
