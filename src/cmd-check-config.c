/* autopull check-config: the configuration parses (config.c did that, with FILE:LINE:COL),
 * and what it names exists: every validator can be run, and every directory autopull writes
 * to can be written by the user it runs as, and by the shipped system units in their sandbox
 * (generator.c). Nothing is created or changed. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "exitcode.h"
#include "fsutil.h"
#include "generator.h"
#include "install.h"
#include "log.h"
#include "spawn.h"
#include "util.h"

struct check {
	struct ap_buf problems; /* JSON array items */
	size_t n;
	size_t unsafe; /* of n: destinations under a directory another user controls */
	bool json;
};

static void problem(struct check *k, const char *fmt, ...) _printf_(2, 3);
static void problem(struct check *k, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	msg = ap_strdupvf(fmt, ap);
	va_end(ap);
	if (!msg)
		return;
	ap_log_error(-EINVAL, "%s", msg);
	(void)ap_buf_printf(&k->problems, "%s", k->n++ ? ", " : "");
	(void)ap_buf_json_string(&k->problems, msg);
}

/* The nearest directory of path that exists (path itself when it does). */
static char *existing_ancestor(const char *path)
{
	char *p = strdup(path);

	while (p && access(p, F_OK) < 0 && errno == ENOENT) {
		char *slash = strrchr(p, '/');

		if (!slash || slash == p) {
			p[0] = '/';
			p[1] = '\0';
			break;
		}
		*slash = '\0';
	}
	return p;
}

static void check_writable(struct check *k, const char *dir, const char *what)
{
	_cleanup_free_ char *e = existing_ancestor(dir);

	if (e && access(e, W_OK) < 0)
		problem(k, "%s '%s' cannot be written by uid %u (%s: %s)", what, dir,
			(unsigned)geteuid(), e, strerror(errno));
}

/* The directories above a rule's destination: only root's (or the owner: user's). */
static void check_dest_safe(struct check *k, const struct ap_file_rule *r)
{
	_cleanup_free_ char *dir = strndup(r->dest, (size_t)(strrchr(r->dest, '/') - r->dest));
	_cleanup_free_ char *why = NULL;
	struct ap_fs_unsafe u;
	uid_t uid = (uid_t)-1;
	gid_t gid;
	int fd;

	if (!dir || (r->owner && ap_install_owner_ids(r->owner, NULL, &uid, &gid) < 0))
		return;
	fd = ap_fs_open_dir_safe(*dir ? dir : "/", strlen(dir), uid != (uid_t)-1 ? uid : geteuid(),
				 0, 0, &u);
	if (fd >= 0)
		close(fd);
	if ((fd != -EPERM && fd != -ELOOP) || ap_fs_unsafe_describe(&u, fd, &why) < 0)
		return;
	problem(k, "refusing destination '%s' of the rule for '%s': %s%s", r->dest, r->src, why,
		fd == -EPERM && !(u.mode & (S_IWGRP | S_IWOTH)) && geteuid() == 0
			? "; to install it as that user, set 'owner:' on the rule to them" : "");
	k->unsafe++;
}

static void check_rules(struct check *k, const struct ap_config *cfg)
{
	for (size_t i = 0; i < cfg->n_files; i++) {
		const struct ap_file_rule *r = &cfg->files[i];
		_cleanup_free_ char *dir = strndup(r->dest, strrchr(r->dest, '/') - r->dest + 1);
		_cleanup_free_ char *path = NULL;

		if (r->validate && ap_spawn_find(r->validate[0], &path) < 0)
			problem(k, "validator '%s' of the rule for '%s' is not an executable in "
				   "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				r->validate[0], r->src);
		if (dir)
			check_writable(k, dir, "destination");
		check_dest_safe(k, r);
	}
}

static void sandbox_problem(void *userdata, const char *msg)
{
	problem(userdata, "%s", msg);
}

int ap_cmd_check_config(const struct ap_opts *o, char **args)
{
	struct check k = { .json = o->json };
	struct ap_ctx c;
	int code = ap_ctx_open(o, AP_CTX_CONFIG_ONLY, &c);

	if (code != AP_EXIT_OK)
		return code;
	check_rules(&k, c.cfg);
	check_writable(&k, c.cfg->unit_dir, "unit directory");
	check_writable(&k, c.cfg->state_dir, "state directory");
	(void)ap_generator_check(c.cfg, sandbox_problem, &k); /* counted in k.n */
	if (o->json) {
		struct ap_buf b = { 0 };

		if (ap_buf_printf(&b, "{\"config\": ") >= 0 && ap_buf_json_string(&b, c.cfg->path) >= 0 &&
		    ap_buf_printf(&b, ", \"scope\": \"%s\", \"ok\": %s, \"file_rules\": %zu, "
				      "\"other_host_rules\": %zu, \"problems\": [%s]}\n",
				  ap_scope_to_string(c.cfg->scope), k.n ? "false" : "true",
				  c.cfg->n_files, c.cfg->other_host_rules,
				  k.problems.data ? k.problems.data : "") >= 0)
			fputs(b.data, stdout);
		ap_buf_free(&b);
	} else {
		struct ap_buf l = { 0 }, b = { 0 };
		int r = ap_buf_printf(&l, "%s: %s (%s scope, %zu file rule(s)", c.cfg->path,
				      k.n ? "PROBLEMS" : "ok", ap_scope_to_string(c.cfg->scope),
				      c.cfg->n_files);

		if (r >= 0 && c.cfg->other_host_rules)
			r = ap_buf_printf(&l, " and %zu for other hosts", c.cfg->other_host_rules);
		if (r >= 0)
			r = ap_buf_printf(&l, ", units from");
		for (size_t i = 0; r >= 0 && c.cfg->units && c.cfg->units[i]; i++)
			r = ap_buf_printf(&l, " '%s'", *c.cfg->units[i] ? c.cfg->units[i] : "/");
		if (r >= 0)
			r = ap_buf_linef(&b, "%s)", l.data);
		if (r >= 0)
			fputs(b.data, stdout);
		ap_buf_free(&l);
		ap_buf_free(&b);
	}
	ap_buf_free(&k.problems);
	ap_ctx_done(&c);
	/* A destination another user can steer is a refused source, not a typo. */
	return k.n > k.unsafe ? AP_EXIT_USAGE : k.n ? AP_EXIT_INVALID : AP_EXIT_OK;
}
