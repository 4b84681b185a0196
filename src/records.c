/* The small state files' formats (see records.h): parse and format, nothing else. The text
 * comes from our own state directory, but a disk error, a hand edit or an older version can
 * leave anything there, so every field is checked and a number that does not fit is refused
 * rather than wrapped (sscanf's %llu takes "-1" and saturates or wraps on overflow).
 *
 * Deliberately not here: reading, writing and naming the files, and what to tell the
 * operator about a damaged one (state.c); the journal (journal.c) and events (events.c). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "records.h"
#include "util.h"

/* --- words and lines ----------------------------------------------------------------- */

static int fail(struct ap_records_error *err, unsigned line, const char *what)
{
	if (err)
		*err = (struct ap_records_error){ .line = line, .what = what };
	return -EBADMSG;
}

/* The first damaged line of a lenient parse, kept for the caller. */
static void note_damage(struct ap_records_error *err, unsigned line)
{
	if (err && !err->line)
		*err = (struct ap_records_error){ .line = line, .what = "is malformed" };
}

static void clear_error(struct ap_records_error *err)
{
	if (err)
		*err = (struct ap_records_error){ 0 };
}

/* The next line of a text being cut in place, NULL at its end. An empty line is a line (it
 * counts for the line numbers in messages). */
static char *cut_line(char **cursor)
{
	char *l = *cursor, *nl;

	if (!l || !*l)
		return NULL;
	nl = strchr(l, '\n');
	if (nl) {
		*nl = '\0';
		*cursor = nl + 1;
	} else {
		*cursor = l + strlen(l);
	}
	return l;
}

/* A decimal number, strictly: it starts with a digit (strtoull itself skips blanks and takes
 * a sign, so "-1" would wrap to the largest value), and it is at most max. Returns the end,
 * or NULL. */
static const char *parse_number(const char *p, unsigned long long max, unsigned long long *ret)
{
	unsigned long long v;
	char *end;

	if (*p < '0' || *p > '9')
		return NULL;
	errno = 0;
	v = strtoull(p, &end, 10);
	if (errno == ERANGE || v > max)
		return NULL;
	*ret = v;
	return end;
}

/* The same, ending at a space (skipped) or at the end of the line. */
static const char *parse_word_number(const char *p, unsigned long long max,
				     unsigned long long *ret)
{
	p = parse_number(p, max, ret);
	if (!p || (*p != ' ' && *p != '\0'))
		return NULL;
	return *p == ' ' ? p + 1 : p;
}

bool ap_records_number(const char *w, unsigned long long max, unsigned long long *ret)
{
	const char *end = parse_number(w, max, ret);

	return end && !*end;
}

static bool is_oid(const char *s, size_t n)
{
	if (n != AP_OID_HEXSZ)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!s[i] || !strchr("0123456789abcdef", s[i]))
			return false;
	return true;
}

bool ap_records_is_mode(const char *w)
{
	return *w && strlen(w) <= 4 && strspn(w, "01234567") == strlen(w);
}

char *ap_records_one_line(const char *s)
{
	size_t n = strnlen(s ? s : "", AP_RECORDS_REASON_MAX);
	char *v = strndup(s ? s : "", n);

	for (char *c = v; c && *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = ' ';
	return v;
}

/* A copy of text to cut into lines. */
static int copy_text(const char *text, char **ret)
{
	*ret = strdup(text ? text : "");
	return *ret ? 0 : -ENOMEM;
}

/* The lines of a text, numbered from 1, for the files of one record per line. */
struct lines {
	char *copy, *cur;
	unsigned no;
};

static int lines_open(struct lines *ls, const char *text, struct ap_records_error *err)
{
	clear_error(err);
	*ls = (struct lines){ 0 };
	if (copy_text(text, &ls->copy) < 0)
		return -ENOMEM;
	ls->cur = ls->copy;
	return 0;
}

static char *lines_next(struct lines *ls)
{
	char *l = cut_line(&ls->cur);

	ls->no += l != NULL;
	return l;
}

static void lines_close(struct lines *ls)
{
	free(ls->copy);
}

/* --- pin ---------------------------------------------------------------------------- */

void ap_pin_clear(struct ap_pin *p)
{
	free(p->reason);
	*p = (struct ap_pin){ 0 };
}

/* "<sha> <usec> <rest>": rest (within l), or NULL when l is not such a line. */
static const char *parse_commit_usec(const char *l, unsigned long long *ret_usec)
{
	if (!is_oid(l, strcspn(l, " ")) || l[AP_OID_HEXSZ] != ' ')
		return NULL;
	return parse_word_number(l + AP_OID_HEXSZ + 1, UINT64_MAX, ret_usec);
}

int ap_records_pin_parse(const char *text, struct ap_pin *ret, struct ap_records_error *err)
{
	_cleanup_free_ char *copy = NULL;
	unsigned long long usec;
	const char *reason = NULL;
	char *cur, *l;

	clear_error(err);
	if (copy_text(text, &copy) < 0)
		return -ENOMEM;
	cur = copy;
	l = cut_line(&cur);
	if (l)
		reason = parse_commit_usec(l, &usec);
	if (!reason)
		return fail(err, 1, "is malformed");
	if (cut_line(&cur))
		return fail(err, 2, "is one line too many");
	*ret = (struct ap_pin){ .realtime_usec = usec, .reason = strdup(reason) };
	memcpy(ret->commit, l, AP_OID_HEXSZ);
	ret->commit[AP_OID_HEXSZ] = '\0';
	return ret->reason ? 0 : -ENOMEM;
}

int ap_records_pin_format(const struct ap_pin *p, char **ret)
{
	_cleanup_free_ char *clean = ap_records_one_line(p->reason);

	*ret = clean ? ap_strdupf("%.40s %llu %s\n", p->commit,
				  (unsigned long long)p->realtime_usec, clean) : NULL;
	return *ret ? 0 : -ENOMEM;
}

/* --- bad, overrides ------------------------------------------------------------------- */

void ap_bad_free(struct ap_bad *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].why);
	free(v);
}

/* Appends commit (40 hex digits), usec and why to the list *v of *n. */
static int bad_push(struct ap_bad **v, size_t *n, const char *commit, uint64_t usec,
		    const char *why)
{
	struct ap_bad *w = realloc(*v, (*n + 1) * sizeof(**v));

	if (!w)
		return -ENOMEM;
	*v = w;
	w[*n] = (struct ap_bad){ .realtime_usec = usec, .why = strdup(why) };
	memcpy(w[*n].commit, commit, AP_OID_HEXSZ);
	w[*n].commit[AP_OID_HEXSZ] = '\0';
	return w[(*n)++].why ? 0 : -ENOMEM;
}

/* A line of "bad": "<sha> <usec> <why>". */
static bool parse_bad(const char *l, const void *unused, const char **ret_sha, uint64_t *ret_usec,
		      const char **ret_why)
{
	unsigned long long usec;
	const char *why = parse_commit_usec(l, &usec);

	if (!why)
		return false;
	*ret_sha = l, *ret_usec = usec, *ret_why = why;
	return true;
}

/* A line of "overrides": "<usec> <kind> <sha> <reason>"; *ret_sha NULL when it is of another
 * kind. */
static bool parse_override(const char *l, const void *kind, const char **ret_sha,
			   uint64_t *ret_usec, const char **ret_why)
{
	unsigned long long usec;
	const char *sha, *p = parse_word_number(l, UINT64_MAX, &usec);
	size_t klen;

	if (!p || !(klen = strcspn(p, " ")) || p[klen] != ' ')
		return false;
	sha = p + klen + 1;
	if (!is_oid(sha, strcspn(sha, " ")) || sha[AP_OID_HEXSZ] != ' ')
		return false;
	*ret_sha = strlen(kind) == klen && strncmp(p, kind, klen) == 0 ? sha : NULL;
	*ret_usec = usec, *ret_why = sha + AP_OID_HEXSZ + 1;
	return true;
}

/* The lines parse gives a commit, time and reason for, oldest first. */
static int list_commits(const char *text, bool strict,
			bool (*parse)(const char *, const void *, const char **, uint64_t *,
				      const char **),
			const void *userdata, struct ap_bad **ret, size_t *ret_n,
			struct ap_records_error *err)
{
	struct ap_bad *v = NULL;
	size_t n = 0;
	struct lines ls;
	char *l;
	int r = lines_open(&ls, text, err);

	while (r >= 0 && (l = lines_next(&ls))) {
		const char *sha = NULL, *why;
		uint64_t usec;

		if (parse(l, userdata, &sha, &usec, &why)) {
			if (sha)
				r = bad_push(&v, &n, sha, usec, why);
		} else if (strict) {
			r = fail(err, ls.no, "is malformed");
		} else if (*l) {
			note_damage(err, ls.no);
		}
	}
	lines_close(&ls);
	if (r < 0) {
		ap_bad_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int ap_records_bad_parse(const char *text, bool strict, struct ap_bad **ret, size_t *ret_n,
			 struct ap_records_error *err)
{
	return list_commits(text, strict, parse_bad, NULL, ret, ret_n, err);
}

int ap_records_bad_format(const char *commit, uint64_t usec, const char *why, char **ret)
{
	_cleanup_free_ char *clean = ap_records_one_line(why);

	*ret = clean ? ap_strdupf("%.40s %llu %s\n", commit, (unsigned long long)usec, clean)
		: NULL;
	return *ret ? 0 : -ENOMEM;
}

int ap_records_overrides_parse(const char *text, const char *kind, struct ap_bad **ret,
			       size_t *ret_n, struct ap_records_error *err)
{
	return list_commits(text, false, parse_override, kind, ret, ret_n, err);
}

int ap_records_override_format(uint64_t usec, const char *kind, const char *commit,
			       const char *reason, char **ret)
{
	_cleanup_free_ char *clean = ap_records_one_line(reason);

	*ret = clean ? ap_strdupf("%llu %s %.40s %s\n", (unsigned long long)usec, kind, commit,
				  clean) : NULL;
	return *ret ? 0 : -ENOMEM;
}

int ap_records_summary(const char *text, unsigned usec_word, unsigned *ret_n,
		       uint64_t *ret_last_usec)
{
	_cleanup_free_ char *copy = NULL;
	char *cur, *l;

	*ret_n = 0;
	*ret_last_usec = 0;
	if (copy_text(text, &copy) < 0)
		return -ENOMEM;
	for (cur = copy; (l = cut_line(&cur));) {
		char *w = l;
		unsigned long long t;

		if (!*l)
			continue;
		for (unsigned i = 0; i < usec_word && w; i++)
			w = (w = strchr(w, ' ')) ? w + 1 : NULL;
		if (w && parse_word_number(w, UINT64_MAX, &t) && t > *ret_last_usec)
			*ret_last_usec = t;
		(*ret_n)++;
	}
	return 0;
}

/* --- counters -------------------------------------------------------------------------- */

bool ap_records_counter_name_ok(const char *name)
{
	return *name && strlen(name) < sizeof(((struct ap_counter *)0)->name) &&
	       !strpbrk(name, " \n");
}

int ap_records_counters_parse(const char *text, struct ap_counter **ret, size_t *ret_n,
			      struct ap_records_error *err)
{
	struct ap_counter *v = NULL;
	size_t n = 0;
	struct lines ls;
	char *l;
	int r = lines_open(&ls, text, err);

	while (r >= 0 && (l = lines_next(&ls))) {
		struct ap_counter c = { 0 }, *w;
		unsigned long long value;
		size_t nl = strcspn(l, " ");

		if (!*l)
			continue;
		if (nl == 0 || nl >= sizeof(c.name) || l[nl] != ' ' ||
		    !ap_records_number(l + nl + 1, UINT64_MAX, &value)) {
			note_damage(err, ls.no);
			continue;
		}
		memcpy(c.name, l, nl);
		c.value = value;
		w = realloc(v, (n + 1) * sizeof(*v));
		if (!w) {
			r = -ENOMEM;
			break;
		}
		v = w;
		v[n++] = c;
	}
	lines_close(&ls);
	if (r < 0) {
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int ap_records_counters_format(const struct ap_counter *v, size_t n, char **ret)
{
	struct ap_buf b = { 0 };
	int r = ap_buf_append(&b, "", 0);

	for (size_t i = 0; r >= 0 && i < n; i++)
		r = ap_buf_printf(&b, "%s %llu\n", v[i].name, (unsigned long long)v[i].value);
	if (r < 0) {
		ap_buf_clear(&b);
		return r;
	}
	*ret = b.data;
	return 0;
}

/* --- expected files ------------------------------------------------------------------------ */

/* The text built in b when r says it was built whole; b is freed otherwise. */
static int buf_take(struct ap_buf *b, int r, char **ret)
{
	if (r < 0) {
		ap_buf_clear(b);
		return r;
	}
	*ret = b->data;
	return 0;
}

/* A probe's kind is a word of lower-case letters ("http", "exec", "tcp"). */
#define PROBE_KIND_CHARS "abcdefghijklmnopqrstuvwxyz"

/* "<0|1> <failures> <kind> <times|-> <unit>\t<result>" */
static bool parse_probe_line(const char *l, struct ap_probe_line *p)
{
	unsigned long long v;
	size_t n;

	*p = (struct ap_probe_line){ 0 };
	if ((l[0] != '0' && l[0] != '1') || l[1] != ' ')
		return false;
	p->healthy = l[0] == '1';
	if (!(l = parse_word_number(l + 2, UINT64_MAX, &v)))
		return false;
	p->failures = v;
	n = strspn(l, PROBE_KIND_CHARS);
	if (n == 0 || n >= sizeof(p->kind) || l[n] != ' ')
		return false;
	memcpy(p->kind, l, n);
	l += n + 1;
	if (l[0] == '-' && l[1] == ' ') {
		l += 2;
	} else {
		for (;;) {
			if (p->n_times == AP_RECORDS_PROBE_TIMES_MAX ||
			    !(l = parse_number(l, UINT64_MAX, &v)))
				return false;
			p->times[p->n_times++] = v;
			if (*l == ' ')
				break;
			if (*l++ != ',')
				return false;
		}
		l++;
	}
	n = strcspn(l, " \t");
	if (n == 0 || n >= sizeof(p->unit) || l[n] != '\t' ||
	    strlen(l + n + 1) >= sizeof(p->result))
		return false;
	memcpy(p->unit, l, n);
	memcpy(p->result, l + n + 1, strlen(l + n + 1) + 1);
	return true;
}

int ap_records_probes_parse(const char *text, struct ap_probe_line **ret, size_t *ret_n,
			    struct ap_records_error *err)
{
	struct ap_probe_line *v = NULL;
	size_t n = 0;
	struct lines ls;
	char *l;
	int r = lines_open(&ls, text, err);

	while (r >= 0 && (l = lines_next(&ls))) {
		struct ap_probe_line p, *w;

		if (!*l)
			continue;
		if (!parse_probe_line(l, &p)) {
			note_damage(err, ls.no);
			continue;
		}
		w = realloc(v, (n + 1) * sizeof(*v));
		if (!w) {
			r = -ENOMEM;
			break;
		}
		v = w;
		v[n++] = p;
	}
	lines_close(&ls);
	if (r < 0) {
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int ap_records_probes_format(const struct ap_probe_line *v, size_t n, char **ret)
{
	struct ap_buf b = { 0 };
	int r = ap_buf_append(&b, "", 0);

	for (size_t i = 0; r >= 0 && i < n; i++) {
		const struct ap_probe_line *p = &v[i];

		size_t kind = strnlen(p->kind, sizeof(p->kind));

		if (!*p->unit || strpbrk(p->unit, " \t\n") || kind == 0 ||
		    kind == sizeof(p->kind) || strspn(p->kind, PROBE_KIND_CHARS) != kind ||
		    p->n_times > AP_RECORDS_PROBE_TIMES_MAX) {
			r = -EINVAL;
			break;
		}
		r = ap_buf_printf(&b, "%d %llu %s ", p->healthy, (unsigned long long)p->failures,
				  p->kind);
		for (size_t k = 0; r >= 0 && k < p->n_times; k++)
			r = ap_buf_printf(&b, "%s%llu", k ? "," : "", (unsigned long long)p->times[k]);
		if (r >= 0)
			r = ap_buf_printf(&b, "%s %s\t", p->n_times ? "" : "-", p->unit);
		for (const char *c = p->result; r >= 0 && *c; c++)
			r = ap_buf_append(&b, *c == '\t' || *c == '\n' ? " " : c, 1);
		if (r >= 0)
			r = ap_buf_append(&b, "\n", 1);
	}
	return buf_take(&b, r, ret);
}

void ap_expected_set_clear(struct ap_expected_set *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->v[i].path);
		free(e->v[i].repo_path);
		free(e->v[i].owner);
		free(e->v[i].group);
	}
	free(e->v);
	*e = (struct ap_expected_set){ 0 };
}

/* "<oid> <mode> <owner|-> <group|-> <root_len> <repo_path> <path>"; paths have no spaces
 * (repository paths are checked, host paths are derived from them and the config). */
static int parse_expected(char *l, struct ap_expected *e)
{
	char *w[7];
	unsigned long long root_len;

	for (size_t i = 0; i < ELEMENTSOF(w); i++)
		if (!(w[i] = strsep(&l, " ")) || !*w[i])
			return -EBADMSG;
	if (l || !is_oid(w[0], strlen(w[0])) || !ap_records_is_mode(w[1]) ||
	    !ap_records_number(w[4], SIZE_MAX, &root_len) ||
	    !ap_path_is_normalized_absolute(w[6]) || root_len >= strlen(w[6]))
		return -EBADMSG;
	memcpy(e->oid, w[0], sizeof(e->oid));
	e->mode = (mode_t)strtoul(w[1], NULL, 8) & 07777;
	e->root_len = (size_t)root_len;
	e->path = strdup(w[6]);
	e->repo_path = strdup(w[5]);
	e->owner = strcmp(w[2], "-") ? strdup(w[2]) : NULL;
	e->group = strcmp(w[3], "-") ? strdup(w[3]) : NULL;
	return e->path && e->repo_path ? 0 : -ENOMEM;
}

int ap_records_expected_parse(const char *text, struct ap_expected_set *ret,
			      struct ap_records_error *err)
{
	_cleanup_free_ char *copy = NULL;
	struct ap_expected_set set = { 0 };
	unsigned n = 1;
	char *cur, *l;
	int r = copy_text(text, &copy);

	clear_error(err);
	if (r < 0)
		return r;
	cur = copy;
	l = cut_line(&cur);
	if (!l || strncmp(l, "commit ", 7) != 0 || !is_oid(l + 7, strlen(l + 7)))
		return fail(err, 1, "is not 'commit <id>'");
	memcpy(set.commit, l + 7, sizeof(set.commit));
	if (ap_startswith(cur, "config ")) {
		l = cut_line(&cur);
		n++;
		if (strlen(l + 7) != sizeof(set.config) - 1)
			return fail(err, n, "is not 'config <digest>'");
		memcpy(set.config, l + 7, sizeof(set.config));
	}
	for (; r >= 0 && (l = cut_line(&cur)); n++) {
		struct ap_expected *w = realloc(set.v, (set.n + 1) * sizeof(*w));

		if (!w) {
			r = -ENOMEM;
			break;
		}
		set.v = w;
		w[set.n] = (struct ap_expected){ 0 };
		r = parse_expected(l, &w[set.n]);
		set.n++;
	}
	if (r < 0) {
		ap_expected_set_clear(&set);
		return r == -EBADMSG ? fail(err, n, "is malformed") : r;
	}
	*ret = set;
	return 0;
}

int ap_records_expected_format(const struct ap_expected_set *e, char **ret)
{
	struct ap_buf b = { 0 };
	int r = ap_buf_printf(&b, "commit %s\n", e->commit);

	/* A set without a configuration digest (an older one, read back) is written as it was
	 * read: "config " alone would not parse. */
	if (r >= 0 && *e->config)
		r = ap_buf_printf(&b, "config %s\n", e->config);

	for (size_t i = 0; r >= 0 && i < e->n; i++) {
		const struct ap_expected *x = &e->v[i];

		r = ap_buf_printf(&b, "%s %04o %s %s %zu %s %s\n", x->oid, (unsigned)x->mode,
				  x->owner ? x->owner : "-", x->group ? x->group : "-", x->root_len,
				  x->repo_path, x->path);
	}
	if (r < 0) {
		ap_buf_clear(&b);
		return r;
	}
	*ret = b.data;
	return 0;
}

/* --- tick, last-apply ------------------------------------------------------------------------ */

/* "<key> <n>" with n -1 or a count that fits a long. */
static bool parse_tick_line(const char *l, const char *key, long *ret)
{
	size_t klen = strlen(key);
	unsigned long long v;

	if (strncmp(l, key, klen) != 0 || l[klen] != ' ')
		return false;
	l += klen + 1;
	if (strcmp(l, "-1") == 0) {
		*ret = -1;
		return true;
	}
	if (!ap_records_number(l, LONG_MAX, &v))
		return false;
	*ret = (long)v;
	return true;
}

/* Two "<key> <n>" lines (bad ones named by what1, what2), then, when why is given, an
 * optional "why <text>" line. */
static int parse_two(const char *text, const char *k1, long *v1, const char *what1,
		     const char *k2, long *v2, const char *what2, char *why, size_t why_size,
		     struct ap_records_error *err)
{
	_cleanup_free_ char *copy = NULL;
	char *cur, *l;

	clear_error(err);
	if (copy_text(text, &copy) < 0)
		return -ENOMEM;
	cur = copy;
	if (!(l = cut_line(&cur)) || !parse_tick_line(l, k1, v1))
		return fail(err, 1, what1);
	if (!(l = cut_line(&cur)) || !parse_tick_line(l, k2, v2))
		return fail(err, 2, what2);
	l = why ? cut_line(&cur) : NULL;
	if (l && !ap_startswith(l, "why "))
		return fail(err, 3, "is not 'why <text>'");
	if (why)
		snprintf(why, why_size, "%s", l ? l + 4 : "");
	if (cut_line(&cur))
		return fail(err, l ? 4 : 3, "is one line too many");
	return 0;
}

int ap_records_tick_parse(const char *text, struct ap_tick *ret, struct ap_records_error *err)
{
	/* *ret may be half-written when the text is refused: the readers say "not known" then */
	return parse_two(text, "pending", &ret->pending, "is not 'pending <n>'", "drift",
			 &ret->drift, "is not 'drift <n>'", NULL, 0, err);
}

int ap_records_tick_format(const struct ap_tick *t, char **ret)
{
	*ret = ap_strdupf("pending %ld\ndrift %ld\n", t->pending, t->drift);
	return *ret ? 0 : -ENOMEM;
}

int ap_records_fleet_parse(const char *text, struct ap_fleet_tick *ret,
			   struct ap_records_error *err)
{
	return parse_two(text, "blocked", &ret->blocked, "is not 'blocked <n>'", "wait-ms",
			 &ret->wait_ms, "is not 'wait-ms <n>'", ret->why, sizeof(ret->why), err);
}

int ap_records_fleet_format(const struct ap_fleet_tick *t, char **ret)
{
	/* the why is one line: what came from etcd is cut at a line break */
	*ret = *t->why ? ap_strdupf("blocked %ld\nwait-ms %ld\nwhy %.*s\n", t->blocked, t->wait_ms,
				    (int)strcspn(t->why, "\r\n"), t->why)
		       : ap_strdupf("blocked %ld\nwait-ms %ld\n", t->blocked, t->wait_ms);
	return *ret ? 0 : -ENOMEM;
}

int ap_records_last_apply_parse(const char *text, struct ap_last_apply *ret,
				struct ap_records_error *err)
{
	_cleanup_free_ char *copy = NULL;
	unsigned long long ts, ok;
	const char *p;

	clear_error(err);
	if (copy_text(text, &copy) < 0)
		return -ENOMEM;
	/* one line; what follows it was never read */
	copy[strcspn(copy, "\n")] = '\0';
	if (!(p = parse_word_number(copy, UINT64_MAX, &ts)) || !ap_records_number(p, 1, &ok))
		return fail(err, 1, "is malformed");
	*ret = (struct ap_last_apply){ .realtime_usec = ts, .ok = ok != 0 };
	return 0;
}

int ap_records_last_apply_format(const struct ap_last_apply *la, char **ret)
{
	*ret = ap_strdupf("%llu %d\n", (unsigned long long)la->realtime_usec, la->ok);
	return *ret ? 0 : -ENOMEM;
}

/* --- owned -------------------------------------------------------------------------------- */

int ap_records_owned_parse(const char *text, char ***ret, struct ap_records_error *err)
{
	_cleanup_strset_ struct ap_strset v = { 0 };
	struct lines ls;
	char *l;
	int r = lines_open(&ls, text, err);

	while (r >= 0 && (l = lines_next(&ls))) {
		if (!*l)
			continue;
		if (!ap_path_is_normalized_absolute(l) || strcmp(l, "/") == 0)
			r = fail(err, ls.no, "is not an absolute path");
		else
			r = ap_strset_add(&v, l);
	}
	lines_close(&ls);
	if (r < 0)
		return r;
	*ret = ap_strset_take(&v);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int ap_records_owned_format(char *const *owned, char **ret)
{
	_cleanup_strv_free_ char **sorted = NULL;
	struct ap_buf b = { 0 };
	int r = ap_strv_copy(owned, &sorted);

	if (r < 0)
		return r;
	if (sorted)
		qsort(sorted, ap_strv_length(sorted), sizeof(char *), cmp_str);
	r = ap_buf_append(&b, "", 0);
	for (size_t i = 0; r >= 0 && sorted && sorted[i]; i++)
		r = ap_buf_printf(&b, "%s\n", sorted[i]);
	if (r < 0) {
		ap_buf_clear(&b);
		return r;
	}
	*ret = b.data;
	return 0;
}

/* --- file-set manifests ----------------------------------------------------------------------- */

/* "-" (the user autopull runs as) or a uid/gid. */
static int parse_id(const char *w, unsigned *ret)
{
	unsigned long long v;

	if (strcmp(w, "-") == 0) {
		*ret = (unsigned)-1;
		return 0;
	}
	if (!ap_records_number(w, (unsigned)-2, &v))
		return -EBADMSG;
	*ret = (unsigned)v;
	return 0;
}

/* "<id> <kind> <mode> <uid> <gid> <owned> <root_len> <path>", or before owners were kept
 * "<id> <kind> <mode> <path>". The path is the rest of the line and starts with '/', which no
 * other word does. */
static int parse_manifest_line(char *l, struct ap_host_file *e)
{
	char *w[7], *path = l;
	unsigned long long id, owned = 1, root_len = 0;
	unsigned uid = (unsigned)-1, gid = (unsigned)-1;
	size_t n = 0;

	while (n < ELEMENTSOF(w) && path && *path != '/')
		w[n++] = strsep(&path, " ");
	if (!path || *path != '/' || (n != 3 && n != 7) ||
	    !ap_records_number(w[0], (unsigned)-1, &id))
		return -EBADMSG;
	if (n == 7 && (parse_id(w[3], &uid) < 0 || parse_id(w[4], &gid) < 0 ||
		       !ap_records_number(w[5], 1, &owned) ||
		       !ap_records_number(w[6], SIZE_MAX, &root_len)))
		return -EBADMSG;
	e->dir = strcmp(w[1], "absentdir") == 0;
	e->present = strcmp(w[1], "present") == 0;
	/* A created directory may be the configured root or above it: no relation to check. */
	if (!ap_path_is_normalized_absolute(path) || (e->present && !ap_records_is_mode(w[2])) ||
	    (!e->dir && (root_len >= strlen(path) || (root_len && path[root_len] != '/'))) ||
	    (!e->present && strcmp(w[1], "absent") != 0 && !e->dir))
		return -EBADMSG;
	e->uid = (uid_t)uid;
	e->gid = (gid_t)gid;
	e->id = (unsigned)id;
	e->mode = e->present ? (mode_t)strtoul(w[2], NULL, 8) & 07777 : 0;
	e->owned = (unsigned)owned;
	e->root_len = (size_t)root_len;
	e->path = strdup(path);
	return e->path ? 0 : -ENOMEM;
}

void ap_records_manifest_free(struct ap_host_file *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ap_host_file_clear(&v[i]);
	free(v);
}

int ap_records_manifest_parse(const char *text, struct ap_host_file **ret, size_t *ret_n,
			      struct ap_records_error *err)
{
	struct ap_host_file *v = NULL;
	size_t n = 0;
	struct lines ls;
	char *l;
	int r = lines_open(&ls, text, err);

	while (r >= 0 && (l = lines_next(&ls))) {
		struct ap_host_file e = { 0 }, *w;

		if (!*l)
			continue;
		r = parse_manifest_line(l, &e);
		if (r == -EBADMSG)
			r = fail(err, ls.no, "is malformed");
		if (r >= 0 && !(w = realloc(v, (n + 1) * sizeof(*v))))
			r = -ENOMEM;
		if (r >= 0) {
			v = w;
			v[n++] = e;
		} else {
			ap_host_file_clear(&e);
		}
	}
	lines_close(&ls);
	if (r < 0) {
		ap_records_manifest_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int ap_records_manifest_format(const struct ap_host_file *v, size_t n, char **ret)
{
	struct ap_buf b = { 0 };
	int r = ap_buf_append(&b, "", 0);

	for (size_t i = 0; r >= 0 && i < n; i++) {
		const struct ap_host_file *e = &v[i];
		char uid[24] = "-", gid[24] = "-";

		if (e->uid != (uid_t)-1)
			snprintf(uid, sizeof(uid), "%u", (unsigned)e->uid);
		if (e->gid != (gid_t)-1)
			snprintf(gid, sizeof(gid), "%u", (unsigned)e->gid);
		if (e->present)
			r = ap_buf_printf(&b, "%u present %04o %s %s %d %zu %s\n", e->id,
					  (unsigned)e->mode, uid, gid, e->owned, e->root_len,
					  e->path);
		else
			r = ap_buf_printf(&b, "%u %s - - - %d %zu %s\n", e->id,
					  e->dir ? "absentdir" : "absent", e->owned, e->root_len,
					  e->path);
	}
	if (r < 0) {
		ap_buf_clear(&b);
		return r;
	}
	*ret = b.data;
	return 0;
}
