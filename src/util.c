/* String vectors, bounded formatting, the escaping of text for terminals, logs and JSON, unit
 * globs, path checks, durations, clocks and relative times. No I/O beyond asking whether an
 * fd is a terminal. */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

void ap_strv_free(char **v)
{
	if (!v)
		return;
	for (char **i = v; *i; i++)
		free(*i);
	free(v);
}

size_t ap_strv_length(char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

bool ap_strv_contains(char *const *v, const char *s)
{
	for (size_t i = 0; v && v[i]; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

int ap_strv_push(char ***v, const char *s)
{
	size_t n = ap_strv_length(*v);
	char *copy = strdup(s);
	char **nv;

	if (!copy)
		return -ENOMEM;
	nv = realloc(*v, (n + 2) * sizeof(char *));
	if (!nv) {
		free(copy);
		return -ENOMEM;
	}
	nv[n] = copy;
	nv[n + 1] = NULL;
	*v = nv;
	return 0;
}

int ap_strv_push_unique(char ***v, const char *s)
{
	if (ap_strv_contains(*v, s))
		return 0;
	return ap_strv_push(v, s);
}

int ap_strv_copy(char *const *v, char ***ret)
{
	_cleanup_strv_builder_ struct ap_strv_builder b = { 0 };

	for (size_t i = 0; v && v[i]; i++)
		if (ap_strv_builder_push(&b, v[i]) < 0)
			return -ENOMEM;
	*ret = ap_strv_builder_take(&b);
	return 0;
}

int ap_strv_builder_push(struct ap_strv_builder *b, const char *s)
{
	char *copy = strdup(s);

	if (!copy)
		return -ENOMEM;
	if (b->len + 1 >= b->cap) { /* room for s and the terminator: double */
		size_t cap = b->cap ? 2 * b->cap : 16;
		char **nv = cap > b->cap ? reallocarray(b->v, cap, sizeof(char *)) : NULL;

		if (!nv) {
			free(copy);
			return -ENOMEM;
		}
		b->v = nv;
		b->cap = cap;
	}
	b->v[b->len++] = copy;
	b->v[b->len] = NULL;
	return 0;
}

char **ap_strv_builder_take(struct ap_strv_builder *b)
{
	char **v = b->v;

	*b = (struct ap_strv_builder){ 0 };
	return v;
}

void ap_strv_builder_clear(struct ap_strv_builder *b)
{
	ap_strv_free(ap_strv_builder_take(b));
}

void *ap_grow(void *v, size_t n, size_t *cap, size_t size)
{
	size_t c;
	void *nv;

	if (n < *cap)
		return v;
	/* From n, not *cap: a room of 0 (never set) on a vector of n entries still grows it. */
	c = n < 8 ? 16 : 2 * n;
	nv = c > n ? reallocarray(v, c, size) : NULL;
	if (nv)
		*cap = c;
	return nv;
}

struct ap_strindex_slot {
	const char *key; /* NULL: free */
	size_t hash, pos;
};

/* FNV-1a, its bits mixed at the end (MurmurHash3's finaliser): names that differ only in
 * their last characters ("svc-000001.service") must not fill one run of slots. */
static size_t strindex_hash(const char *s)
{
	unsigned long long h = 14695981039346656037ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return (size_t)h;
}

/* The slot holding key, or the free slot where it belongs (linear probing; never full). */
static struct ap_strindex_slot *strindex_slot(const struct ap_strindex *x, const char *key,
					      size_t hash)
{
	size_t i = hash & (x->cap - 1);

	while (x->slot[i].key && (x->slot[i].hash != hash || strcmp(x->slot[i].key, key) != 0))
		i = (i + 1) & (x->cap - 1);
	return &x->slot[i];
}

static int strindex_grow(struct ap_strindex *x)
{
	struct ap_strindex g = { .cap = x->cap ? 2 * x->cap : 16, .n = x->n };

	if (g.cap < x->cap || !(g.slot = calloc(g.cap, sizeof(*g.slot))))
		return -ENOMEM;
	for (size_t i = 0; i < x->cap; i++)
		if (x->slot[i].key)
			*strindex_slot(&g, x->slot[i].key, x->slot[i].hash) = x->slot[i];
	free(x->slot);
	*x = g;
	return 0;
}

int ap_strindex_add(struct ap_strindex *x, const char *key, size_t pos)
{
	size_t hash = strindex_hash(key);
	struct ap_strindex_slot *s;

	if (x->cap && strindex_slot(x, key, hash)->key)
		return 0;
	if ((x->n + 1) * 2 > x->cap && strindex_grow(x) < 0)
		return -ENOMEM;
	s = strindex_slot(x, key, hash);
	*s = (struct ap_strindex_slot){ .key = key, .hash = hash, .pos = pos };
	x->n++;
	return 1;
}

bool ap_strindex_find(const struct ap_strindex *x, const char *key, size_t *ret_pos)
{
	const struct ap_strindex_slot *s;

	if (!x->cap)
		return false;
	s = strindex_slot(x, key, strindex_hash(key));
	if (!s->key)
		return false;
	*ret_pos = s->pos;
	return true;
}

bool ap_strindex_remove(struct ap_strindex *x, const char *key, size_t *ret_pos)
{
	size_t mask = x->cap - 1, i, j;
	struct ap_strindex_slot *s;

	if (!x->cap)
		return false;
	s = strindex_slot(x, key, strindex_hash(key));
	if (!s->key)
		return false;
	*ret_pos = s->pos;
	/* Backward shift, no tombstones: each later key of the run moves into the hole unless
	 * its home slot lies after the hole, where a probe from home still reaches it. */
	i = (size_t)(s - x->slot);
	for (j = (i + 1) & mask; x->slot[j].key; j = (j + 1) & mask) {
		size_t home = x->slot[j].hash & mask;

		if (((j - home) & mask) < ((j - i) & mask))
			continue;
		x->slot[i] = x->slot[j];
		i = j;
	}
	x->slot[i] = (struct ap_strindex_slot){ 0 };
	x->n--;
	return true;
}

void ap_strindex_clear(struct ap_strindex *x)
{
	free(x->slot);
	*x = (struct ap_strindex){ 0 };
}

int ap_strset_add(struct ap_strset *s, const char *str)
{
	size_t pos;
	int r;

	if (ap_strindex_find(&s->index, str, &pos))
		return 0;
	r = ap_strv_builder_push(&s->names, str);
	if (r < 0)
		return r;
	r = ap_strindex_add(&s->index, s->names.v[s->names.len - 1], s->names.len - 1);
	if (r < 0) {
		free(s->names.v[--s->names.len]);
		s->names.v[s->names.len] = NULL;
	}
	return r;
}

bool ap_strset_has(const struct ap_strset *s, const char *str)
{
	size_t pos;

	return ap_strindex_find(&s->index, str, &pos);
}

int ap_strset_remove(struct ap_strset *s, const char *str)
{
	size_t pos;

	if (!ap_strindex_remove(&s->index, str, &pos))
		return 0;
	free(s->names.v[pos]);
	s->names.v[pos] = NULL; /* a hole, closed by ap_strset_take */
	return 1;
}

int ap_strset_adopt(struct ap_strset *s, char ***v)
{
	size_t n = ap_strv_length(*v);

	for (size_t i = 0; i < n; i++)
		if (ap_strindex_add(&s->index, (*v)[i], i) < 0) {
			ap_strindex_clear(&s->index);
			return -ENOMEM;
		}
	s->names = (struct ap_strv_builder){ .v = *v, .len = n, .cap = *v ? n + 1 : 0 };
	*v = NULL;
	return 0;
}

char **ap_strset_take(struct ap_strset *s)
{
	size_t k = 0;

	for (size_t i = 0; i < s->names.len; i++)
		if (s->names.v[i])
			s->names.v[k++] = s->names.v[i];
	if (s->names.v)
		s->names.v[k] = NULL;
	ap_strindex_clear(&s->index);
	return ap_strv_builder_take(&s->names);
}

void ap_strset_clear(struct ap_strset *s)
{
	ap_strv_free(ap_strset_take(s));
}

char *ap_strdupvf(const char *fmt, va_list ap)
{
	char *s = NULL;

	return vasprintf(&s, fmt, ap) < 0 ? NULL : s;
}

char *ap_strdupf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = ap_strdupvf(fmt, ap);
	va_end(ap);
	return s;
}

bool ap_startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool ap_endswith(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

bool ap_streq_ptr(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

bool ap_unit_glob_match(const char *pattern, const char *name)
{
	return fnmatch(pattern, name, FNM_NOESCAPE) == 0;
}

/* Checks every '/'-separated component of p (which starts at a component). */
static bool components_ok(const char *p)
{
	for (const char *c = p; *c;) {
		const char *e = strchrnul(c, '/');
		size_t n = (size_t)(e - c);

		if (n == 0 || n > NAME_MAX || (n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		c = *e ? e + 1 : e;
		if (*e && !*c)
			return true; /* a trailing slash is allowed (directory) */
	}
	return true;
}

bool ap_path_is_safe_relative(const char *p)
{
	size_t n = strlen(p);

	if (n == 0 || n >= PATH_MAX || p[0] == '/')
		return false;
	for (const char *c = p; *c; c++)
		if (iscntrl((unsigned char)*c))
			return false;
	return components_ok(p);
}

bool ap_path_is_normalized_absolute(const char *p)
{
	size_t n = strlen(p);

	if (n == 0 || n >= PATH_MAX || p[0] != '/')
		return false;
	for (const char *c = p; *c; c++)
		if (iscntrl((unsigned char)*c))
			return false;
	return n == 1 || components_ok(p + 1);
}

char *ap_path_parent(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash) {
		errno = EINVAL;
		return NULL;
	}
	return slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
}

int ap_buf_append(struct ap_buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *d;

		while (cap < b->len + n + 1)
			cap *= 2;
		d = realloc(b->data, cap);
		if (!d)
			return -ENOMEM;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int ap_buf_printf(struct ap_buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n, r;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	r = ap_buf_append(b, s, (size_t)n);
	free(s);
	return r;
}

/* The length (1 to 4) of the UTF-8 sequence at s when it is the shortest encoding of a code
 * point that is not a surrogate, else 0; the code point in *ret_cp. s is NUL-terminated, and
 * NUL is never a continuation byte, so this does not read past the end. */
static size_t utf8_char(const unsigned char *s, unsigned *ret_cp)
{
	unsigned cp;
	size_t n;

	if (s[0] < 0x80) {
		*ret_cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*ret_cp = cp;
	return n;
}

/* C0, DEL and C1: what a terminal may act on rather than show. */
static bool is_control(unsigned cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

size_t ap_escape(const char *s, unsigned flags, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *c = (const unsigned char *)s;
	size_t n = 0;

	if (size == 0)
		return 0;
	while (*c) {
		unsigned cp = 0;
		size_t len = utf8_char(c, &cp), k = 0;
		char e[8];

		if ((*c == '\n' && (flags & AP_ESCAPE_KEEP_NEWLINE)) ||
		    (*c == '\t' && (flags & AP_ESCAPE_KEEP_TAB)) || (len > 0 && !is_control(cp))) {
			memcpy(e, c, len), k = len;
		} else if (*c == '\n' || *c == '\t' || *c == '\r') {
			e[0] = '\\', e[1] = *c == '\n' ? 'n' : *c == '\t' ? 't' : 'r', k = 2;
		} else {
			/* a control character (C1 is two bytes) or a byte that is not UTF-8 */
			len = len ? len : 1;
			for (size_t i = 0; i < len; i++, k += 4)
				e[k] = '\\', e[k + 1] = 'x', e[k + 2] = hex[c[i] >> 4],
				e[k + 3] = hex[c[i] & 15];
		}
		if (n + k >= size)
			break; /* whole characters and escapes only */
		memcpy(out + n, e, k);
		n += k;
		c += len;
	}
	out[n] = '\0';
	return n;
}

int ap_buf_escape(struct ap_buf *b, const char *s, unsigned flags)
{
	size_t size = 4 * strlen(s) + 1;
	char *e = malloc(size);
	int r;

	if (!e)
		return -ENOMEM;
	r = ap_buf_append(b, e, ap_escape(s, flags, e, size));
	free(e);
	return r;
}

int ap_buf_linef(struct ap_buf *b, const char *fmt, ...)
{
	_cleanup_free_ char *line = NULL;
	va_list ap;
	int r;

	va_start(ap, fmt);
	line = ap_strdupvf(fmt, ap);
	va_end(ap);
	if (!line)
		return -ENOMEM;
	r = ap_buf_escape(b, line, 0);
	return r < 0 ? r : ap_buf_append(b, "\n", 1);
}

int ap_buf_json_string(struct ap_buf *b, const char *s)
{
	const unsigned char *c = (const unsigned char *)s;
	int r = ap_buf_append(b, "\"", 1);

	while (r >= 0 && *c) {
		unsigned cp = 0;
		size_t len = utf8_char(c, &cp);

		if (*c == '"' || *c == '\\') {
			char e[2] = { '\\', (char)*c };
			r = ap_buf_append(b, e, 2);
		} else if (len == 0) {
			r = ap_buf_printf(b, "\\u%04x", *c); /* not UTF-8: the byte as Latin-1 */
			len = 1;
		} else if (is_control(cp)) {
			r = ap_buf_printf(b, "\\u%04x", cp);
		} else {
			r = ap_buf_append(b, c, len);
		}
		c += len;
	}
	return r < 0 ? r : ap_buf_append(b, "\"", 1);
}

int ap_buf_json_string_or_null(struct ap_buf *b, const char *s)
{
	return s && *s ? ap_buf_json_string(b, s) : ap_buf_append(b, "null", 4);
}

void ap_buf_clear(struct ap_buf *b)
{
	free(b->data);
	*b = (struct ap_buf){ 0 };
}

static unsigned long long now_usec(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) < 0)
		return 0;
	return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
}

unsigned long long ap_now_monotonic_usec(void)
{
	return now_usec(CLOCK_MONOTONIC);
}

unsigned long long ap_now_realtime_usec(void)
{
	return now_usec(CLOCK_REALTIME);
}

int ap_parse_duration(const char *s, unsigned long long *ret_usec)
{
	static const struct {
		const char *suffix;
		unsigned long long mult;
	} units[] = {
		{ "ms", 1000ULL }, { "s", 1000000ULL }, { "m", 60000000ULL },
		{ "h", 3600000000ULL }, { "d", 86400000000ULL }, { "", 1000000ULL },
	};
	unsigned long long v, usec;
	char *end;

	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE; /* more digits than 64 bits hold */
	for (size_t i = 0; i < ELEMENTSOF(units); i++)
		if (strcmp(end, units[i].suffix) == 0) {
			if (__builtin_mul_overflow(v, units[i].mult, &usec) ||
			    usec > AP_DURATION_MAX_USEC)
				return -ERANGE;
			*ret_usec = usec;
			return 0;
		}
	return -EINVAL;
}

void ap_format_ago(unsigned long long then_usec, unsigned long long now_usec, char *buf,
		   size_t size)
{
	bool future = then_usec > now_usec;
	unsigned long long s = (future ? then_usec - now_usec : now_usec - then_usec) / 1000000;
	static const struct { unsigned long long div; const char *unit; } steps[] = {
		{ 86400, "d" }, { 3600, "h" }, { 60, "min" }, { 1, "s" },
	};

	if (s < 2) {
		snprintf(buf, size, "just now");
		return;
	}
	for (size_t i = 0; i < ELEMENTSOF(steps); i++)
		if (s >= steps[i].div) {
			snprintf(buf, size, "%s%llu %s%s", future ? "in " : "", s / steps[i].div,
				 steps[i].unit, future ? "" : " ago");
			return;
		}
}

bool ap_use_colour(int fd)
{
	return isatty(fd) && !secure_getenv("NO_COLOR");
}
