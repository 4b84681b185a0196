/* The users of the plan's units (unitusers.h). Deliberately not here: creating users (the
 * executor's setup runs systemd-sysusers) and anything of user scope. */
#include <errno.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "unitfile.h"
#include "unitusers.h"
#include "util.h"

#define USER_NAME_MAX 256

/* The next whitespace-separated field of [*p, end), or NULL; *p moves past it. */
static const char *field(const char **p, const char *end, size_t *ret_len)
{
	const char *s = *p;

	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	*p = s;
	while (*p < end && **p != ' ' && **p != '\t')
		(*p)++;
	*ret_len = (size_t)(*p - s);
	return *ret_len ? s : NULL;
}

int ap_unitusers_sysusers_names(const char *text, size_t len, char ***names)
{
	const char *end = text + len;
	int r = 0;

	for (const char *l = text; r >= 0 && l < end;) {
		const char *nl = memchr(l, '\n', (size_t)(end - l)), *le = nl ? nl : end, *p = l;
		const char *type, *name;
		size_t tlen, nlen;

		l = nl ? nl + 1 : end;
		type = field(&p, le, &tlen);
		name = type ? field(&p, le, &nlen) : NULL;
		/* "u" and "u!" make a user; the others groups, members, ranges */
		if (name && type[0] == 'u' && (tlen == 1 || (tlen == 2 && type[1] == '!'))) {
			_cleanup_free_ char *n = strndup(name, nlen);

			r = n ? ap_strv_push_unique(names, n) : -ENOMEM;
		}
	}
	return r;
}

/* The users the plan's sysusers.d files create. */
static int created_users(const struct ap_plan *p, const struct ap_install_source *src,
			 char ***ret)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < p->n_setup; i++) {
		if (p->setup[i].kind != AP_SETUP_SYSUSERS)
			continue;
		for (size_t k = 0; r >= 0 && k < p->n_files; k++) {
			const struct ap_file_op *f = &p->files[k];
			_cleanup_free_ char *buf = NULL;
			const char *data;
			size_t len;

			if (!f->install || strcmp(f->dest, p->setup[i].file) != 0)
				continue;
			r = ap_install_content(f, src, &buf, &data, &len);
			if (r >= 0)
				r = ap_unitusers_sysusers_names(data, len, ret);
		}
	}
	return r;
}

static bool user_exists(const char *name)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	return getpwnam_r(name, &pw, buf, sizeof(buf), &res) == 0 && res;
}

int ap_unitusers_check(const struct ap_plan *p, const struct ap_install_source *src,
		       enum ap_scope scope)
{
	_cleanup_strv_free_ char **created = NULL;
	bool invalid = false;
	int r;

	if (scope != AP_SCOPE_SYSTEM)
		return 0;
	r = created_users(p, src, &created);
	if (r < 0)
		return ap_log_error(r, "failed to read the sysusers.d files of %.12s: %s", p->to,
				    strerror(-r));
	for (size_t i = 0; i < p->n_files; i++) {
		const struct ap_file_op *f = &p->files[i];
		const struct ap_change *ch = f->change_ref;
		char user[USER_NAME_MAX];

		if (!f->install || f->kind == AP_KIND_FILE || !ch || !ch->new_data)
			continue;
		r = ap_unitfile_user(ch->new_data, ch->new_len, user, sizeof(user));
		if (r == 0 || (r > 0 && (user[strspn(user, "0123456789")] == '\0' ||
					 user_exists(user) || ap_strv_contains(created, user))))
			continue;
		invalid = true;
		if (r < 0)
			ap_log_error(-EINVAL, "'%s' sets a User= longer than %d bytes", f->path,
				     USER_NAME_MAX - 1);
		else
			ap_log_error(-EINVAL, "unit '%s' runs as User=%s ('%s'), which does not exist "
				     "on this host and no sysusers.d file of this commit creates it",
				     f->unit, user, f->path);
	}
	return invalid ? -EINVAL : 0;
}
