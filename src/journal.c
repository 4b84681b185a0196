/* The journal format (see journal.h): parse and format, nothing else. The text comes from our
 * own state directory, but a disk error or an older version can leave anything there, so the
 * parser checks every field and refuses what it does not understand rather than guessing. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "journal.h"
#include "unitfile.h"
#include "util.h"

#define JOURNAL_MAGIC "autopull-journal 2"
#define WHY_MAX 1024

static const char *const phase_names[AP_PHASE_MAX] = {
	[AP_PHASE_BACKUP] = "backup",	[AP_PHASE_DISABLE] = "disable",
	[AP_PHASE_STOP] = "stop",	[AP_PHASE_FILES] = "files",
	[AP_PHASE_ENABLE] = "enable",	[AP_PHASE_RELOAD] = "reload",
	[AP_PHASE_RESTART] = "restart", [AP_PHASE_RELOAD_UNITS] = "reload-units",
	[AP_PHASE_START] = "start",	[AP_PHASE_SETTLE] = "settle",
	[AP_PHASE_RECORD] = "record",
};

const char *ap_phase_to_string(enum ap_phase p)
{
	return (unsigned)p < AP_PHASE_MAX ? phase_names[p] : "?";
}

const char *ap_step_to_string(enum ap_step s)
{
	static const char *const names[] = { [AP_STEP_PENDING] = "pending",
					     [AP_STEP_DONE] = "done",
					     [AP_STEP_FAILED] = "failed" };
	return (unsigned)s < ELEMENTSOF(names) ? names[s] : "?";
}

void ap_journal_clear(struct ap_journal *j)
{
	for (size_t i = 0; i < j->n_units; i++)
		free(j->units[i].unit);
	free(j->units);
	free(j->why);
	*j = (struct ap_journal){ 0 };
}

struct ap_journal_unit *ap_journal_find_unit(const struct ap_journal *j, const char *unit)
{
	for (size_t i = 0; i < j->n_units; i++)
		if (strcmp(j->units[i].unit, unit) == 0)
			return &j->units[i];
	return NULL;
}

int ap_journal_add_unit(struct ap_journal *j, const char *unit, enum ap_unit_action_kind a,
			enum ap_step state, bool owed)
{
	struct ap_journal_unit *u = ap_journal_find_unit(j, unit), *v;

	if (u) {
		if (ap_unit_action_rank(a) > ap_unit_action_rank(u->action)) {
			u->action = a;
			u->state = state;
		}
		u->owed |= owed;
		return 0;
	}
	if (j->n_units >= AP_JOURNAL_MAX_UNITS)
		return -E2BIG;
	v = realloc(j->units, (j->n_units + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	j->units = v;
	v[j->n_units] = (struct ap_journal_unit){ .unit = strdup(unit), .action = a, .state = state,
						  .owed = owed };
	if (!v[j->n_units].unit)
		return -ENOMEM;
	j->n_units++;
	return 0;
}

bool ap_journal_units_finished(const struct ap_journal *j)
{
	for (size_t i = 0; i < j->n_units; i++)
		if (j->units[i].state != AP_STEP_DONE)
			return false;
	return true;
}

/* --- parsing ------------------------------------------------------------------------ */

static bool is_oid(const char *s, size_t n)
{
	if (n != AP_OID_HEXSZ)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* "<sha>" or "-" (none, allowed only when may_be_none). */
static int parse_oid(const char *v, bool may_be_none, char ret[AP_OID_HEXSZ + 1])
{
	if (may_be_none && strcmp(v, "-") == 0) {
		ret[0] = '\0';
		return 0;
	}
	if (!is_oid(v, strlen(v)))
		return -EBADMSG;
	memcpy(ret, v, AP_OID_HEXSZ + 1);
	return 0;
}

static int parse_done(char *v, uint32_t *ret)
{
	char *save = NULL;

	*ret = 0;
	for (char *w = strtok_r(v, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		size_t p = 0;

		while (p < AP_PHASE_MAX && strcmp(phase_names[p], w) != 0)
			p++;
		if (p == AP_PHASE_MAX)
			return -EBADMSG;
		*ret |= UINT32_C(1) << p;
	}
	return 0;
}

static int parse_step(const char *s, enum ap_step *ret)
{
	for (enum ap_step k = AP_STEP_PENDING; k <= AP_STEP_FAILED; k++)
		if (strcmp(s, ap_step_to_string(k)) == 0) {
			*ret = k;
			return 0;
		}
	return -EBADMSG;
}

/* "<action> <state> <new|owed> <name>" (version 2) or "<action> <name>" (version 1). */
static int parse_unit(struct ap_journal *j, char *v, bool v1)
{
	char *f[4] = { 0 }, *save = NULL;
	size_t n = 0, want = v1 ? 2 : 4;
	enum ap_unit_action_kind a;
	enum ap_step st = AP_STEP_PENDING;

	for (char *w = strtok_r(v, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		if (n == want)
			return -EBADMSG;
		f[n++] = w;
	}
	if (n != want || ap_unit_action_from_string(f[0], &a) < 0 || a == AP_ACTION_NONE)
		return -EBADMSG;
	if (!v1 && (parse_step(f[1], &st) < 0 ||
		    (strcmp(f[2], "new") != 0 && strcmp(f[2], "owed") != 0)))
		return -EBADMSG;
	if (!ap_unit_name_is_valid(f[want - 1]) || ap_journal_find_unit(j, f[want - 1]))
		return -EBADMSG;
	return ap_journal_add_unit(j, f[want - 1], a, st, !v1 && strcmp(f[2], "owed") == 0);
}

/* Version 1 had only "installed 0|1" and "reload 0|1": installed meant every phase before
 * the unit jobs was done; a daemon-reload still owed shows as a pending reload phase. */
static int parse_v1_flag(struct ap_journal *j, const char *key, const char *v)
{
	if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
		return -EBADMSG;
	if (strcmp(key, "installed") == 0 && *v == '1')
		j->done |= (UINT32_C(1) << AP_PHASE_BACKUP) | (UINT32_C(1) << AP_PHASE_DISABLE) |
			   (UINT32_C(1) << AP_PHASE_STOP) | (UINT32_C(1) << AP_PHASE_FILES) |
			   (UINT32_C(1) << AP_PHASE_ENABLE);
	if (strcmp(key, "reload") == 0 && *v == '0')
		ap_journal_set_done(j, AP_PHASE_RELOAD);
	return 0;
}

static int parse_line(struct ap_journal *j, char *line, bool v1, unsigned *seen)
{
	char *sp = strchr(line, ' ');
	const char *key = line;
	char *v = sp ? sp + 1 : line + strlen(line);
	static const char *const keys[] = { "from", "to", "base", "mode", "done", "why" };

	if (sp)
		*sp = '\0';
	for (unsigned i = 0; i < ELEMENTSOF(keys); i++)
		if (strcmp(key, keys[i]) == 0) {
			if (*seen & (1u << i))
				return -EBADMSG; /* a repeated key: which one would be right? */
			*seen |= 1u << i;
		}
	if (strcmp(key, "from") == 0)
		return parse_oid(v, true, j->from);
	if (strcmp(key, "to") == 0)
		return parse_oid(v, false, j->to);
	if (strcmp(key, "unit") == 0)
		return parse_unit(j, v, v1);
	if (v1)
		return strcmp(key, "installed") == 0 || strcmp(key, "reload") == 0
			       ? parse_v1_flag(j, key, v) : -EBADMSG;
	if (strcmp(key, "base") == 0)
		return parse_oid(v, true, j->base);
	if (strcmp(key, "done") == 0)
		return parse_done(v, &j->done);
	if (strcmp(key, "mode") == 0) {
		if (strcmp(v, "apply") != 0 && strcmp(v, "rollback") != 0)
			return -EBADMSG;
		j->mode = strcmp(v, "apply") == 0 ? AP_JOURNAL_APPLY : AP_JOURNAL_ROLLBACK;
		return 0;
	}
	if (strcmp(key, "why") == 0) {
		if (strlen(v) > WHY_MAX)
			return -EBADMSG;
		j->why = strdup(v);
		return j->why ? 0 : -ENOMEM;
	}
	return -EBADMSG;
}

/* The line number of l, a line of copy (cut in place), counted in text, which copy copies. */
static unsigned line_of(const char *text, const char *copy, const char *l)
{
	unsigned n = 1;

	for (size_t i = 0; i < (size_t)(l - copy); i++)
		n += text[i] == '\n';
	return n;
}

int ap_journal_parse(const char *text, struct ap_journal *ret, const char **ret_error)
{
	return ap_journal_parse_at(text, ret, ret_error, NULL);
}

int ap_journal_parse_at(const char *text, struct ap_journal *ret, const char **ret_error,
			unsigned *ret_line)
{
	_cleanup_free_ char *copy = strdup(text ? text : "");
	struct ap_journal j = { 0 };
	bool v1 = ap_startswith(copy ? copy : "", "from ");
	unsigned seen = 0, need = v1 ? 0x3u : 0x1fu; /* from to (base mode done) */
	char *save = NULL, *l;
	unsigned line = 0;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	l = strtok_r(copy, "\n", &save);
	if (!v1) {
		if (!l || strcmp(l, JOURNAL_MAGIC) != 0)
			r = -EBADMSG, line = l ? line_of(text, copy, l) : 1;
		l = strtok_r(NULL, "\n", &save);
	}
	for (; r >= 0 && l; l = strtok_r(NULL, "\n", &save))
		if ((r = parse_line(&j, l, v1, &seen)) == -EBADMSG)
			line = line_of(text, copy, l);
	if (r >= 0 && (seen & need) != need)
		r = -EBADMSG;
	if (r >= 0 && v1)
		memcpy(j.base, j.from, sizeof(j.base));
	if (r >= 0 && (j.mode == AP_JOURNAL_ROLLBACK) != (j.why != NULL))
		r = -EBADMSG;
	if (r < 0) {
		if (ret_line)
			*ret_line = line;
		if (ret_error)
			*ret_error = r == -ENOMEM ? "out of memory" : "malformed";
		ap_journal_clear(&j);
		return r;
	}
	*ret = j;
	return 0;
}

/* --- formatting --------------------------------------------------------------------- */

/* why comes from unit properties and validator output: one line of printable text. */
static int append_why(struct ap_buf *b, const char *why)
{
	int r = ap_buf_printf(b, "why ");
	size_t n = 0;

	for (const char *c = why; r >= 0 && *c && n < WHY_MAX; c++, n++)
		r = ap_buf_append(b, (unsigned char)*c < 0x20 || *c == 0x7f ? "?" : c, 1);
	return r < 0 ? r : ap_buf_append(b, "\n", 1);
}

int ap_journal_format(const struct ap_journal *j, char **ret)
{
	struct ap_buf b = { 0 };
	int r = ap_buf_printf(&b, JOURNAL_MAGIC "\nfrom %s\nto %s\nbase %s\nmode %s\ndone",
			      *j->from ? j->from : "-", j->to, *j->base ? j->base : "-",
			      j->mode == AP_JOURNAL_APPLY ? "apply" : "rollback");

	for (unsigned p = 0; r >= 0 && p < AP_PHASE_MAX; p++)
		if (ap_journal_is_done(j, p))
			r = ap_buf_printf(&b, " %s", phase_names[p]);
	if (r >= 0)
		r = ap_buf_append(&b, "\n", 1);
	if (r >= 0 && j->mode == AP_JOURNAL_ROLLBACK)
		r = append_why(&b, j->why ? j->why : "");
	for (size_t i = 0; r >= 0 && i < j->n_units; i++)
		r = ap_buf_printf(&b, "unit %s %s %s %s\n",
				  ap_unit_action_to_string(j->units[i].action),
				  ap_step_to_string(j->units[i].state),
				  j->units[i].owed ? "owed" : "new", j->units[i].unit);
	if (r < 0) {
		ap_buf_clear(&b);
		return r;
	}
	*ret = b.data;
	return 0;
}
