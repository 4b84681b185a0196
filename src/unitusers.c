/* The users of the plan's units and tmpfiles.d lines (unitusers.h). Deliberately not here:
 * creating users (the executor's setup runs systemd-sysusers) and anything of user scope. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "unitfile.h"
#include "unitusers.h"
#include "util.h"

#define USER_NAME_MAX 256
#define FIELDS 5 /* of a line that matter here: type, path/name, mode/id, user, group */

/* One pass over the plan's setup files: what its sysusers.d files make, and whether a
 * tmpfiles.d line names someone nobody makes. */
struct scan {
	char **users, **groups;
	const char *path; /* the repository path of the file being read, for messages */
	bool invalid;
};

static void scan_done(struct scan *m)
{
	ap_strv_free(m->users);
	ap_strv_free(m->groups);
}

/* Splits the line [l, end) at blanks into up to FIELDS fields (a comment or blank line has
 * none); returns how many. Quoted fields are not unquoted: names never need quotes. */
static size_t split(const char *l, const char *end, char f[FIELDS][USER_NAME_MAX])
{
	size_t n = 0;

	while (n < FIELDS) {
		const char *s;

		while (l < end && (*l == ' ' || *l == '\t'))
			l++;
		if (l == end || (n == 0 && *l == '#'))
			break;
		s = l;
		while (l < end && *l != ' ' && *l != '\t')
			l++;
		snprintf(f[n++], USER_NAME_MAX, "%.*s", (int)(l - s), s);
	}
	return n;
}

/* Calls fn for each line of text with its fields and its number. */
static int each_line(const char *text, size_t len, void *userdata,
		     int (*fn)(void *userdata, char f[FIELDS][USER_NAME_MAX], size_t n,
			       unsigned line))
{
	const char *end = text + len;
	unsigned line = 0;
	int r = 0;

	for (const char *l = text; r >= 0 && l < end;) {
		const char *nl = memchr(l, '\n', (size_t)(end - l));
		char f[FIELDS][USER_NAME_MAX];
		size_t n = split(l, nl ? nl : end, f);

		line++;
		l = nl ? nl + 1 : end;
		if (n > 0)
			r = fn(userdata, f, n, line);
	}
	return r;
}

/* "u NAME" makes a user and its group, "g NAME" a group; "u!" is "u" with a locked account. */
static int sysusers_line(void *userdata, char f[FIELDS][USER_NAME_MAX], size_t n, unsigned line)
{
	struct scan *m = userdata;
	bool user = strcmp(f[0], "u") == 0 || strcmp(f[0], "u!") == 0;
	int r = 0;

	if (n < 2 || (!user && strcmp(f[0], "g") != 0))
		return 0;
	if (user)
		r = ap_strv_push_unique(&m->users, f[1]);
	return r < 0 ? r : ap_strv_push_unique(&m->groups, f[1]);
}

static const struct ap_file_op *file_of(const struct ap_plan *p, const char *dest)
{
	for (size_t i = 0; i < p->n_files; i++)
		if (p->files[i].install && strcmp(p->files[i].dest, dest) == 0)
			return &p->files[i];
	return NULL;
}

/* Calls fn on every line of the plan's setup files of kind k. */
static int each_setup_line(const struct ap_plan *p, const struct ap_install_source *src,
			   enum ap_setup_kind k, struct scan *userdata,
			   int (*fn)(void *, char[FIELDS][USER_NAME_MAX], size_t, unsigned))
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < p->n_setup; i++) {
		const struct ap_file_op *f = p->setup[i].kind == k ? file_of(p, p->setup[i].file)
								    : NULL;
		_cleanup_free_ char *buf = NULL;
		const char *data;
		size_t len;

		if (!f)
			continue;
		userdata->path = f->path;
		r = ap_install_content(f, src, &buf, &data, &len);
		if (r >= 0)
			r = each_line(data, len, userdata, fn);
		if (r < 0)
			return ap_log_error(r, "failed to read '%s': %s", f->path, strerror(-r));
	}
	return r;
}

/* A name the host must resolve: not a number, not "-", no specifier. */
static bool is_name(const char *s)
{
	return *s && strcmp(s, "-") != 0 && s[strspn(s, "0123456789")] != '\0' && !strchr(s, '%');
}

static bool user_exists(const char *name)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	return getpwnam_r(name, &pw, buf, sizeof(buf), &res) == 0 && res;
}

static bool group_exists(const char *name)
{
	struct group gr, *res = NULL;
	char buf[4096];

	return getgrnam_r(name, &gr, buf, sizeof(buf), &res) == 0 && res;
}

/* One owner field of a tmpfiles.d line: what names it ("user", "group"), how the host knows
 * it, and what the plan's sysusers.d files make. */
static void check_owner(struct scan *t, unsigned line, const char *what, const char *name,
			bool (*exists)(const char *), char *const *made)
{
	if (!is_name(name) || exists(name) || ap_strv_contains(made, name))
		return;
	t->invalid = true;
	ap_log_error(-EINVAL, "'%s' line %u gives %s '%s', which does not exist on this host and "
		     "no sysusers.d file of this commit creates it", t->path, line, what, name);
}

/* A tmpfiles.d line: type path mode user group [age [argument]]. */
static int tmpfiles_line(void *userdata, char f[FIELDS][USER_NAME_MAX], size_t n, unsigned line)
{
	struct scan *t = userdata;

	if (n >= 4)
		check_owner(t, line, "user", f[3], user_exists, t->users);
	if (n >= 5)
		check_owner(t, line, "group", f[4], group_exists, t->groups);
	return 0;
}

static bool units_ok(const struct ap_plan *p, const struct scan *m)
{
	bool ok = true;

	for (size_t i = 0; i < p->n_files; i++) {
		const struct ap_file_op *f = &p->files[i];
		const struct ap_change *ch = f->change_ref;
		char user[USER_NAME_MAX];
		int r;

		if (!f->install || f->kind == AP_KIND_FILE || !ch || !ch->new_data)
			continue;
		r = ap_unitfile_user(ch->new_data, ch->new_len, user, sizeof(user));
		if (r == 0 || (r > 0 && (!is_name(user) || user_exists(user) ||
					 ap_strv_contains(m->users, user))))
			continue;
		ok = false;
		if (r < 0)
			ap_log_error(-EINVAL, "'%s' sets a User= longer than %d bytes", f->path,
				     USER_NAME_MAX - 1);
		else
			ap_log_error(-EINVAL, "unit '%s' runs as User=%s ('%s'), which does not exist "
				     "on this host and no sysusers.d file of this commit creates it",
				     f->unit, user, f->path);
	}
	return ok;
}

int ap_unitusers_check(const struct ap_plan *p, const struct ap_install_source *src,
		       enum ap_scope scope)
{
	_cleanup_(scan_done) struct scan m = { 0 };
	bool ok;
	int r;

	if (scope != AP_SCOPE_SYSTEM)
		return 0;
	r = each_setup_line(p, src, AP_SETUP_SYSUSERS, &m, sysusers_line);
	if (r >= 0)
		r = each_setup_line(p, src, AP_SETUP_TMPFILES_CREATE, &m, tmpfiles_line);
	if (r < 0)
		return r;
	ok = units_ok(p, &m);
	return ok && !m.invalid ? 0 : -EINVAL;
}
