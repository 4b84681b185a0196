/* The sandbox of the shipped system units (see sandbox.h): which directories each unit writes
 * under a configuration, the drop-in that grants them, and reading that drop-in back. Pure.
 * It knows of the units' settings only the few that decide whether a path can be granted at
 * all (a private /tmp or /dev cannot be lifted by ReadWritePaths=); the unit files explain
 * the rest. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox.h"
#include "util.h"

static const char *const unit_names[AP_SANDBOX_N_UNITS] = {
	[AP_SANDBOX_APPLY] = "infrastructure-auto-pull.service",
	[AP_SANDBOX_HEARTBEAT] = "autopull-heartbeat.service",
};

const char *ap_sandbox_unit_name(enum ap_sandbox_unit u)
{
	return (unsigned)u < AP_SANDBOX_N_UNITS ? unit_names[u] : NULL;
}

/* Directories that the units' own settings replace with private or hidden ones. */
static const struct blocked {
	const char *prefix, *setting;
	bool heartbeat_only;
} blocked[] = {
	{ "/tmp", "PrivateTmp=yes", false },
	{ "/var/tmp", "PrivateTmp=yes", false },
	{ "/dev", "PrivateDevices=yes", false },
	/* the apply unit has ProtectHome=read-only, which ReadWritePaths= can lift */
	{ "/home", "ProtectHome=yes", true },
	{ "/root", "ProtectHome=yes", true },
	{ "/run/user", "ProtectHome=yes", true },
};

static bool beneath(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return true;
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static const char *blocked_by(const char *path, enum ap_sandbox_unit u)
{
	for (size_t i = 0; i < ELEMENTSOF(blocked); i++)
		if ((!blocked[i].heartbeat_only || u == AP_SANDBOX_HEARTBEAT) &&
		    beneath(path, blocked[i].prefix))
			return blocked[i].setting;
	return NULL;
}

static int add(struct ap_sandbox *s, enum ap_sandbox_unit u, char *path, mode_t mode,
	       const char *fmt, ...) _printf_(5, 6);
static int add(struct ap_sandbox *s, enum ap_sandbox_unit u, char *path, mode_t mode,
	       const char *fmt, ...)
{
	struct ap_sandbox_need *v;
	va_list ap;
	char *why = NULL;

	if (!path)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_needs; i++)
		if (strcmp(s->needs[i].path, path) == 0) {
			free(path); /* the first reason (and mode) stays */
			return 0;
		}
	va_start(ap, fmt);
	why = ap_strdupvf(fmt, ap);
	va_end(ap);
	v = why ? realloc(s->needs, (s->n_needs + 1) * sizeof(*v)) : NULL;
	if (!v) {
		free(why);
		free(path);
		return -ENOMEM;
	}
	s->needs = v;
	v[s->n_needs++] = (struct ap_sandbox_need){ .path = path, .why = why, .mode = mode,
						    .blocked = blocked_by(path, u) };
	return 0;
}

static int cmp_need(const void *a, const void *b)
{
	return strcmp(((const struct ap_sandbox_need *)a)->path,
		      ((const struct ap_sandbox_need *)b)->path);
}

static int add_rules(struct ap_sandbox *s, const struct ap_config *c)
{
	int r = 0;

	for (size_t i = 0; r >= 0 && i < c->n_files; i++) {
		const struct ap_file_rule *f = &c->files[i];
		size_t n = strlen(f->dest);
		/* a directory rule writes beneath dest itself, a file rule beside dest */
		char *dir = ap_endswith(f->dest, "/") ? strndup(f->dest, n > 1 ? n - 1 : n) :
							   ap_path_parent(f->dest);

		size_t before = s->n_needs;

		r = add(s, AP_SANDBOX_APPLY, dir, 0755, "files rule '%s' (dest '%s')", f->src,
			f->dest);
		if (r >= 0 && s->n_needs > before)
			s->needs[before].owner = f->owner;
		s->setid = s->setid || f->allow_setid;
	}
	return r;
}

int ap_sandbox_build(const struct ap_config *c, enum ap_sandbox_unit u, struct ap_sandbox *ret)
{
	struct ap_sandbox s = { 0 };
	int r = 0;

	if ((unsigned)u >= AP_SANDBOX_N_UNITS)
		return -EINVAL;
	if (u == AP_SANDBOX_APPLY)
		r = add(&s, u, strdup(c->unit_dir), 0755, "unit_dir");
	if (r >= 0)
		r = add(&s, u, strdup(c->state_dir), 0700, "state_dir");
	if (r >= 0 && c->guard.metrics_file)
		r = add(&s, u, ap_path_parent(c->guard.metrics_file), 0755, "guard.metrics (%s)",
			c->guard.metrics_file);
	if (r >= 0 && u == AP_SANDBOX_APPLY)
		r = add_rules(&s, c);
	/* guard.probe: an http or tcp probe (from health: or a unit file, which the generator
	 * cannot see) reaches the service; PrivateNetwork= would give it a loopback of its own. */
	s.network = u == AP_SANDBOX_HEARTBEAT && (c->guard.push_url || c->guard.probe);
	if (r < 0) {
		ap_sandbox_done(&s);
		return r;
	}
	qsort(s.needs, s.n_needs, sizeof(*s.needs), cmp_need);
	*ret = s;
	return 0;
}

void ap_sandbox_done(struct ap_sandbox *s)
{
	for (size_t i = 0; i < s->n_needs; i++) {
		free(s->needs[i].path);
		free(s->needs[i].why);
	}
	free(s->needs);
	*s = (struct ap_sandbox){ 0 };
}

/* One word of a unit file setting: as is when it has only plain characters, else in double
 * quotes with '"' and '\' escaped. '%' starts a specifier everywhere and '$' a variable in
 * Exec lines, so both are doubled. */
static int append_word(struct ap_buf *b, const char *s, bool exec)
{
	bool plain = true;
	int r;

	for (const char *p = s; *p && plain; p++)
		plain = isalnum((unsigned char)*p) || strchr("/_.:@+,=-", *p);
	if (plain)
		return ap_buf_append(b, s, strlen(s));
	r = ap_buf_append(b, "\"", 1);
	for (const char *p = s; r >= 0 && *p; p++) {
		if (*p == '%' || (exec && *p == '$'))
			r = ap_buf_append(b, p, 1);
		else if (*p == '"' || *p == '\\')
			r = ap_buf_append(b, "\\", 1);
		if (r >= 0)
			r = ap_buf_append(b, p, 1);
	}
	return r < 0 ? r : ap_buf_append(b, "\"", 1);
}

/* Whether need i is granted through another listed directory it is beneath. */
static bool covered_by_other(const struct ap_sandbox *s, size_t i)
{
	for (size_t k = 0; k < s->n_needs; k++)
		if (k != i && !s->needs[k].blocked && beneath(s->needs[i].path, s->needs[k].path))
			return true;
	return false;
}

/* ExecStartPre=+ runs outside the namespace, so it can create what ReadWritePaths= then
 * grants; the '-' on those tolerates a directory removed in between. */
static int render_mkdir(struct ap_buf *b, const struct ap_sandbox *s, mode_t mode)
{
	bool any = false;
	int r = 0;

	for (size_t i = 0; r >= 0 && i < s->n_needs; i++) {
		if (s->needs[i].blocked || s->needs[i].mode != mode || covered_by_other(s, i))
			continue;
		if (!any)
			r = ap_buf_printf(b, "ExecStartPre=+/bin/mkdir -p -m %04o --",
					  (unsigned)mode);
		any = true;
		if (r >= 0)
			r = ap_buf_append(b, " ", 1);
		if (r >= 0)
			r = append_word(b, s->needs[i].path, true);
	}
	return r < 0 || !any ? r : ap_buf_append(b, "\n", 1);
}

int ap_sandbox_render(const struct ap_sandbox *s, enum ap_sandbox_unit u, const char *config_path,
		      char **ret)
{
	struct ap_buf b = { 0 };
	int r;

	r = ap_buf_printf(&b, "# Generated by autopull-generator from %s: the directories\n"
			  "# %s may write. Do not edit: change the configuration,\n"
			  "# then run `systemctl daemon-reload`.\n[Service]\n",
			  config_path, ap_sandbox_unit_name(u));
	if (r >= 0)
		r = render_mkdir(&b, s, 0700);
	if (r >= 0)
		r = render_mkdir(&b, s, 0755);
	for (size_t i = 0; r >= 0 && i < s->n_needs; i++) {
		if (s->needs[i].blocked || covered_by_other(s, i))
			continue;
		r = ap_buf_printf(&b, "# %s\nReadWritePaths=-", s->needs[i].why);
		if (r >= 0)
			r = append_word(&b, s->needs[i].path, false);
		if (r >= 0)
			r = ap_buf_append(&b, "\n", 1);
	}
	if (r >= 0 && s->setid)
		r = ap_buf_printf(&b, "# allow_setid: true (chmod with setuid/setgid bits)\n"
				  "CapabilityBoundingSet=CAP_FSETID\nRestrictSUIDSGID=no\n");
	if (r >= 0 && s->network)
		r = ap_buf_printf(&b, "# guard.push or guard.probe: metrics POSTed, services probed\n"
				  "PrivateNetwork=no\nIPAddressDeny=\n"
				  "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n");
	if (r < 0) {
		ap_buf_clear(&b);
		return r;
	}
	*ret = b.data;
	return 0;
}

/* The inverse of append_word(..., false) for one value. */
static int unquote(const char *v, size_t len, char **ret)
{
	struct ap_buf b = { 0 };
	bool quoted = len >= 2 && v[0] == '"' && v[len - 1] == '"';
	const char *end = quoted ? v + len - 1 : v + len;
	int r = 0;

	for (const char *p = quoted ? v + 1 : v; r >= 0 && p < end; p++) {
		bool pair = p + 1 < end && ((*p == '\\' && quoted) || (*p == '%' && p[1] == '%'));

		if (pair)
			p++; /* the second character of the pair is the one meant */
		else if (strchr("%\"\\", *p) || (!quoted && isspace((unsigned char)*p)))
			r = -EINVAL;
		if (r >= 0)
			r = ap_buf_append(&b, p, 1);
	}
	if (r >= 0 && !b.data)
		r = -EINVAL;
	if (r < 0) {
		ap_buf_clear(&b);
		return r;
	}
	*ret = b.data;
	return 0;
}

/* The whole lines that lift a setting, and the flag each stands for. */
static const struct {
	const char *line;
	unsigned flag;
} lifts[] = {
	{ "RestrictSUIDSGID=no", AP_SANDBOX_SETID },
	{ "PrivateNetwork=no", AP_SANDBOX_NETWORK },
};

int ap_sandbox_parse(const char *text, char ***ret_paths, unsigned *ret_flags)
{
	_cleanup_strv_free_ char **paths = NULL;
	unsigned flags = 0;
	int r = 0;

	for (const char *l = text; r >= 0 && *l;) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		static const char key[] = "ReadWritePaths=";

		if (len > sizeof(key) - 1 && strncmp(l, key, sizeof(key) - 1) == 0) {
			const char *v = l + sizeof(key) - 1;
			char *p = NULL;

			v += *v == '-';
			r = unquote(v, len - (size_t)(v - l), &p);
			if (r >= 0)
				r = ap_strv_push(&paths, p);
			free(p);
		}
		for (size_t i = 0; i < ELEMENTSOF(lifts); i++)
			if (len == strlen(lifts[i].line) && strncmp(l, lifts[i].line, len) == 0)
				flags |= lifts[i].flag;
		l += len + (nl != NULL);
	}
	if (r < 0)
		return r;
	*ret_paths = TAKE_PTR(paths);
	*ret_flags = flags;
	return 0;
}

bool ap_sandbox_covers(char *const *granted, const char *path)
{
	for (size_t i = 0; granted && granted[i]; i++)
		if (beneath(path, granted[i]))
			return true;
	return false;
}
