/* autopull-generator and check-config's sandbox check (see generator.h): the I/O around the
 * pure sandbox.c. The generator runs early at boot and on every daemon-reload, before units
 * are loaded, with nothing but the root file system: it reads one file, writes two, talks to
 * no one and never blocks a boot (a broken configuration gives no drop-in, and the services
 * then fail on that configuration error with its message). It does not create the
 * directories it grants: the drop-in's ExecStartPre=+ does, when the service starts. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "generator.h"
#include "log.h"
#include "sandbox.h"
#include "util.h"

bool ap_generator_invoked_as(const char *argv0)
{
	const char *base = argv0 ? strrchr(argv0, '/') : NULL;

	return argv0 && strcmp(base ? base + 1 : argv0, AP_GENERATOR_NAME) == 0;
}

/* Why root may not write into need's directory (allocated), or NULL when it may: a directory
 * another user controls on the way (the rule's owner: aside), or a symlink root did not make.
 * ReadWritePaths= is resolved when the service starts, so such a path is not granted at all;
 * the apply checks it again. A directory that does not exist yet is judged by its parents. */
static char *unsafe_need(const struct ap_sandbox_need *n)
{
	char buf[4096], *why = NULL;
	struct passwd pw, *pwr = NULL;
	struct ap_fs_unsafe un;
	uid_t trusted = 0;
	int fd;

	if (n->owner && getpwnam_r(n->owner, &pw, buf, sizeof(buf), &pwr) == 0 && pwr)
		trusted = pwr->pw_uid;
	fd = ap_fs_open_dir_safe(n->path, strlen(n->path), trusted, 0, 0, &un);
	if (fd >= 0)
		close(fd);
	if ((fd == -EPERM || fd == -ELOOP) && ap_fs_unsafe_describe(&un, fd, &why) < 0)
		return strdup("out of memory");
	return why;
}

/* Marks the needs root may not write as blocked (not granted), reporting each. */
static int block_unsafe(struct ap_sandbox *s, char ***whys)
{
	for (size_t i = 0; i < s->n_needs; i++) {
		_cleanup_free_ char *why = s->needs[i].blocked ? NULL : unsafe_need(&s->needs[i]);
		_cleanup_free_ char *msg = NULL;

		if (!why)
			continue;
		s->needs[i].blocked = "an unsafe path";
		msg = ap_strdupf("'%s' is not granted, needed by %s: %s", s->needs[i].path,
				 s->needs[i].why, why);
		if (!msg || ap_strv_push(whys, msg) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int write_dropin(const char *dir, const struct ap_config *c, enum ap_sandbox_unit u)
{
	_cleanup_(ap_sandbox_done) struct ap_sandbox s = { 0 };
	_cleanup_free_ char *text = NULL, *d = NULL;
	_cleanup_close_ int fd = -1;
	int r;

	_cleanup_strv_free_ char **whys = NULL;

	r = ap_sandbox_build(c, u, &s);
	if (r >= 0)
		r = block_unsafe(&s, &whys);
	for (size_t i = 0; whys && whys[i]; i++)
		ap_log_warning("%s: %s", AP_GENERATOR_NAME, whys[i]);
	if (r >= 0)
		r = ap_sandbox_render(&s, u, c->path, &text);
	d = ap_strdupf("%s/%s.d", dir, ap_sandbox_unit_name(u));
	if (r < 0 || !d)
		return ap_log_error(-ENOMEM, "%s: %s", AP_GENERATOR_NAME, strerror(ENOMEM));
	fd = ap_fs_open_dir(d, 1, 0755);
	r = fd < 0 ? fd : ap_fs_write_atomic(fd, AP_SANDBOX_DROPIN, text, strlen(text), 0644,
					     (uid_t)-1, (gid_t)-1);
	if (r < 0)
		return ap_log_error(r, "%s: failed to write '%s/%s': %s", AP_GENERATOR_NAME, d,
				    AP_SANDBOX_DROPIN, strerror(-r));
	return 0;
}

int ap_generator_main(int argc, char **argv)
{
	_cleanup_(ap_config_freep) struct ap_config *c = NULL;
	_cleanup_free_ char *path = NULL;
	const char *scope = secure_getenv("SYSTEMD_SCOPE");

	/* PID 1 gives generators no log sink but the kernel log (systemd.generator(7)); a
	 * terminal is kept for someone running it by hand. */
	if (!isatty(STDERR_FILENO)) {
		int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC | O_NOCTTY);

		if (fd > STDERR_FILENO) {
			(void)dup2(fd, STDERR_FILENO); /* on failure stderr stays as it was */
			close(fd);
		}
	}
	if (argc != 2 && argc != 4) {
		ap_log_error(-EINVAL, "usage: %s NORMAL-DIR [EARLY-DIR LATE-DIR]",
			     AP_GENERATOR_NAME);
		return 1;
	}
	/* The user units have no file system sandbox to widen. */
	if (scope && strcmp(scope, "system") != 0)
		return 0;
	if (ap_config_default_path(AP_SCOPE_SYSTEM, &path) < 0)
		return 1;
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return 0; /* installed, not configured yet */
	if (ap_config_load(path, false, &c) < 0) {
		ap_log_error(-EINVAL, "%s: configuration error (see above): no sandbox drop-in "
			     "written; the services will fail on the same error",
			     AP_GENERATOR_NAME);
		return 1;
	}
	if (c->scope != AP_SCOPE_SYSTEM)
		return 0;
	for (enum ap_sandbox_unit u = 0; u < AP_SANDBOX_N_UNITS; u++)
		if (write_dropin(argv[1], c, u) < 0)
			return 1;
	return 0;
}

/* Whether the unit file is installed where the system manager looks for it; only then is its
 * sandbox worth checking. */
static bool unit_installed(const char *unit)
{
	static const char *const dirs[] = { "/etc/systemd/system", "/run/systemd/system",
		"/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system" };

	for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
		_cleanup_free_ char *p = ap_strdupf("%s/%s", dirs[i], unit);

		if (p && access(p, F_OK) == 0)
			return true;
	}
	return false;
}

/* The drop-in in effect for unit u: what it grants. present is false when there is none. */
static int read_dropin(enum ap_sandbox_unit u, bool *present, char ***granted, unsigned *flags)
{
	_cleanup_close_ int dfd = open(AP_GENERATOR_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ char *rel = ap_strdupf("%s.d/%s", ap_sandbox_unit_name(u),
					      AP_SANDBOX_DROPIN);
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r;

	*present = false;
	if (!rel)
		return -ENOMEM;
	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	r = ap_fs_read_beneath(dfd, rel, AP_SANDBOX_DROPIN_MAX, &text, &len);
	if (r == -ENOENT)
		return 0;
	if (r < 0 || (r = ap_sandbox_parse(text, granted, flags)) < 0)
		return ap_log_error(r, "cannot read '%s/%s': %s", AP_GENERATOR_DIR, rel,
				    strerror(-r));
	*present = true;
	return 0;
}

/* What to tell an operator whose unit cannot write a directory it needs. */
static const char *fix_text(bool default_config, bool present)
{
	if (!default_config)
		return "the sandbox is generated from /etc/autopull/autopull.yaml only; fix: "
		       "install this configuration there, then systemctl daemon-reload";
	if (!present)
		return "no sandbox drop-in was generated; fix: systemctl daemon-reload (with "
		       "autopull-generator installed in /lib/systemd/system-generators/)";
	return "the sandbox was generated from an older configuration; fix: systemctl "
	       "daemon-reload";
}

struct reporter {
	void (*report)(void *userdata, const char *msg);
	void *userdata;
	int n;
};

static void say(struct reporter *rep, const char *fmt, ...) _printf_(2, 3);
static void say(struct reporter *rep, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	msg = ap_strdupvf(fmt, ap);
	va_end(ap);
	rep->n++;
	rep->report(rep->userdata, msg ? msg : "out of memory");
}

/* Reports what unit u cannot write. */
static void check_unit(const struct ap_config *c, enum ap_sandbox_unit u, bool default_config,
		       struct reporter *rep)
{
	_cleanup_(ap_sandbox_done) struct ap_sandbox s = { 0 };
	_cleanup_strv_free_ char **granted = NULL;
	const char *unit = ap_sandbox_unit_name(u), *fix;
	bool present = false;
	unsigned flags = 0;

	_cleanup_strv_free_ char **whys = NULL;

	if (ap_sandbox_build(c, u, &s) < 0 || block_unsafe(&s, &whys) < 0 ||
	    read_dropin(u, &present, &granted, &flags) < 0 ||
	    ap_strv_push(&granted, "/var/lib/autopull") < 0) { /* StateDirectory=autopull */
		say(rep, "%s: cannot check its sandbox (see above)", unit);
		return;
	}
	fix = fix_text(default_config, present);
	for (size_t i = 0; i < s.n_needs; i++) {
		const struct ap_sandbox_need *n = &s.needs[i];

		if (n->blocked && strcmp(n->blocked, "an unsafe path") == 0)
			continue; /* check-config refuses the rule itself */
		if (n->blocked)
			say(rep,
			    "%s cannot write '%s', needed by %s: %s gives the service its own; "
				 "fix: choose a directory outside it", unit, n->path, n->why,
				 n->blocked);
		else if (!ap_sandbox_covers(granted, n->path))
			say(rep, "%s cannot write '%s', needed by %s: %s", unit, n->path, n->why,
			    fix);
	}
	if (s.setid && !(flags & AP_SANDBOX_SETID))
		say(rep, "%s cannot set setuid/setgid modes (allow_setid: true): %s", unit, fix);
	if (s.network && !(flags & AP_SANDBOX_NETWORK))
		say(rep, "%s cannot reach guard.push (it has no network): %s", unit, fix);
}

int ap_generator_check(const struct ap_config *cfg, void (*report)(void *userdata, const char *msg),
		       void *userdata)
{
	struct reporter rep = { .report = report, .userdata = userdata };
	_cleanup_free_ char *def = NULL;

	/* user scope, or not booted with systemd: there is no sandbox to compare with */
	if (cfg->scope != AP_SCOPE_SYSTEM || access("/run/systemd/system", F_OK) < 0)
		return 0;
	if (ap_config_default_path(AP_SCOPE_SYSTEM, &def) < 0) {
		say(&rep, "cannot check the sandbox: %s", strerror(ENOMEM));
		return rep.n;
	}
	for (enum ap_sandbox_unit u = 0; u < AP_SANDBOX_N_UNITS; u++)
		if (unit_installed(ap_sandbox_unit_name(u)))
			check_unit(cfg, u, strcmp(cfg->path, def) == 0, &rep);
	return rep.n;
}
