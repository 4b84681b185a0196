/* Loads the configuration into struct ap_config: reads the file (bounded), has config-walk.c
 * walk it with the schema of config-schema.c, fills in the per-scope defaults, and checks that
 * nobody but root or autopull's user controls the files it names. Every error is reported
 * once, as FILE:LINE:COL where it concerns the text. It does not decide what the rules mean
 * for a deploy (that is plan.c) and never touches the paths it names but to check owners. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config-schema.h"
#include "config-walk.h"
#include "config.h"
#include "digest.h"
#include "fsutil.h"
#include "log.h"
#include "util.h"

/* Reading and parsing. */

static int read_bounded(int fd, unsigned char *buf, size_t size, size_t *ret_len)
{
	size_t len = 0;

	while (len < size) {
		ssize_t k = read(fd, buf + len, size - len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		len += (size_t)k;
	}
	*ret_len = len;
	return 0;
}

/* Reads the whole file, refusing more than AP_CONFIG_MAX_SIZE bytes. */
static int read_config(const char *path, unsigned char **ret, size_t *ret_len)
{
	_cleanup_free_ unsigned char *buf = NULL;
	size_t len = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		return ap_log_error(r, "failed to open config '%s': %s", path, strerror(-r));
	}
	buf = malloc(AP_CONFIG_MAX_SIZE + 1);
	r = buf ? read_bounded(fd, buf, AP_CONFIG_MAX_SIZE + 1, &len) : -ENOMEM;
	(void)close(fd); /* read-only: a failing close loses nothing */
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return ap_log_error(r, "failed to read config '%s': %s", path, strerror(-r));
	if (len > AP_CONFIG_MAX_SIZE) /* FILE:LINE:COL like every other error of the text */
		return ap_log_error(-EINVAL, "%s:1:1: configuration is larger than %d bytes", path,
				    AP_CONFIG_MAX_SIZE);
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

/* Defaults. */

/* $VAR/suffix, or $HOME/fallback/suffix. Relative XDG values are ignored, as the XDG base
 * directory spec asks; without a usable HOME there is no default (-ENXIO). */
static int xdg_path(const char *var, const char *fallback, const char *suffix, char **ret)
{
	const char *base = secure_getenv(var), *mid = "";
	size_t n;
	char *p;

	if (!base || base[0] != '/') {
		base = secure_getenv("HOME");
		mid = fallback;
		if (!base || base[0] != '/')
			return -ENXIO;
	}
	n = strlen(base);
	if (n >= PATH_MAX)
		return -ENXIO;
	while (n > 0 && base[n - 1] == '/')
		n--;
	p = ap_strdupf("%.*s/%s%s", (int)n, base, mid, suffix);
	if (!p)
		return -ENOMEM;
	if (!ap_path_is_normalized_absolute(p)) {
		free(p);
		return -ENXIO;
	}
	*ret = p;
	return 0;
}

static int default_dir(const struct ap_config *cfg, char **dir, const char *key,
		       const char *system, const char *var, const char *fallback,
		       const char *suffix)
{
	int r;

	if (*dir)
		return 0;
	if (cfg->scope == AP_SCOPE_SYSTEM)
		return (*dir = strdup(system)) ? 0 : -ENOMEM;
	r = xdg_path(var, fallback, suffix, dir);
	if (r == -ENXIO)
		return ap_log_error(r, "%s: no default %s for scope user: set it, or set $HOME "
				    "(or $%s) to an absolute path", cfg->path, key, var);
	return r;
}

static bool uses_secrets(const struct ap_config *cfg)
{
	for (size_t i = 0; i < cfg->n_files; i++)
		if (cfg->files[i].decrypt)
			return true;
	return false;
}

static int apply_defaults(struct ap_config *cfg, bool force_user)
{
	int r;

	if (force_user)
		cfg->scope = AP_SCOPE_USER;
	if (!cfg->branch && !(cfg->branch = strdup("main")))
		return -ENOMEM;
	if (!cfg->units && ap_strv_push(&cfg->units, "systemd/") < 0)
		return -ENOMEM;
	r = default_dir(cfg, &cfg->state_dir, "state_dir", "/var/lib/autopull", "XDG_STATE_HOME",
			".local/state/", "autopull");
	if (r >= 0 && uses_secrets(cfg))
		r = default_dir(cfg, &cfg->secrets_identity, "secrets: identity",
				"/etc/autopull/age.key", "XDG_CONFIG_HOME", ".config/",
				"autopull/age.key");
	if (r < 0)
		return r;
	return default_dir(cfg, &cfg->unit_dir, "unit_dir", "/etc/systemd/system",
			   "XDG_CONFIG_HOME", ".config/", "systemd/user");
}

/* Public interface. */

const char *ap_scope_to_string(enum ap_scope s)
{
	switch (s) {
	case AP_SCOPE_SYSTEM:
		return "system";
	case AP_SCOPE_USER:
		return "user";
	}
	return "?";
}

int ap_config_default_path(enum ap_scope scope, char **ret)
{
	char *p;

	if (scope != AP_SCOPE_USER) {
		p = strdup("/etc/autopull/autopull.yaml");
		if (!p)
			return -ENOMEM;
		*ret = p;
		return 0;
	}
	return xdg_path("XDG_CONFIG_HOME", ".config/", "autopull/autopull.yaml", ret);
}

/* The files whose content decides what is trusted or who is let in, and the directories above
 * the state: nobody but root or the user autopull runs as may change them (or, for secrets,
 * read them). Each problem is logged with its fix; -EINVAL when there is one. */
static int check_file_owners(const struct ap_config *c)
{
	static const struct {
		const char *what;
		size_t offset;
		unsigned flags;
	} files[] = {
		{ "the configuration", offsetof(struct ap_config, path), 0 },
		{ "trust: ssh_allowed_signers", offsetof(struct ap_config, trust.ssh_allowed_signers), 0 },
		{ "trust: openpgp_keyring", offsetof(struct ap_config, trust.openpgp_keyring), 0 },
		{ "guard: push_token_file", offsetof(struct ap_config, guard.push_token_file),
		  AP_FS_FILE_SECRET },
		{ "guard: push_basic_auth_file", offsetof(struct ap_config, guard.push_basic_auth_file),
		  AP_FS_FILE_SECRET },
		{ "fleet: ca_file", offsetof(struct ap_config, fleet.ca_file), 0 },
		{ "fleet: cert_file", offsetof(struct ap_config, fleet.cert_file), 0 },
		{ "fleet: key_file", offsetof(struct ap_config, fleet.key_file), AP_FS_FILE_SECRET },
	};
	bool bad = false;

	for (size_t i = 0; i <= ELEMENTSOF(files); i++) {
		_cleanup_free_ char *msg = NULL;
		const char *p = i < ELEMENTSOF(files) ? *(char *const *)((const char *)c + files[i].offset)
						      : c->state_dir;
		int r;

		if (!p)
			continue;
		r = i < ELEMENTSOF(files) ? ap_fs_check_file(files[i].what, p, files[i].flags, &msg)
					  : ap_fs_check_parents("the state directory", p, &msg);
		if (r == -ENOMEM)
			return r;
		if (r == -EPERM) {
			ap_log_error(r, "%s", msg);
			bad = true;
		}
	}
	return bad ? -EINVAL : 0;
}

int ap_config_check_identity(const struct ap_config *c)
{
	_cleanup_free_ char *msg = NULL;
	int r;

	if (!uses_secrets(c))
		return 0;
	r = ap_fs_check_file("secrets: identity", c->secrets_identity, AP_FS_FILE_PRIVATE, &msg);
	if (r == -ENOENT)
		return ap_log_error(-EINVAL, "secrets: identity '%s' does not exist; fix: "
				    "age-keygen -o '%s' (and add its public key to the "
				    "repository's recipients)", c->secrets_identity,
				    c->secrets_identity);
	if (r == -EPERM)
		return ap_log_error(-EINVAL, "%s", msg);
	if (r < 0)
		return ap_log_error(r, "cannot check secrets: identity '%s': %s",
				    c->secrets_identity, strerror(-r));
	return 0;
}

/* What the loaded configuration depends on: its bytes, the host name it was selected for and
 * the directories the defaults filled in. */
static int config_digest(const unsigned char *buf, size_t len, const char *host,
			 struct ap_config *cfg)
{
	struct ap_buf b = { 0 };
	int r = ap_buf_printf(&b, "autopull-config 1\nhost %s\nscope %d\nunits %s\nstate %s\n%zu\n",
			      host, (int)cfg->scope, cfg->unit_dir, cfg->state_dir, len);

	if (r >= 0 && len)
		r = ap_buf_append(&b, buf, len);
	if (r >= 0)
		r = ap_digest_sha256_hex(b.data, b.len, cfg->digest);
	ap_buf_clear(&b);
	return r;
}

static int load(const char *path, bool force_user, const char *host, struct ap_config **ret)
{
	_cleanup_(ap_config_freep) struct ap_config *cfg = NULL;
	_cleanup_free_ unsigned char *buf = NULL;
	size_t len = 0;
	int r;

	r = read_config(path, &buf, &len);
	if (r < 0)
		return r;
	r = ap_config_yaml_check(path, buf, len);
	if (r < 0)
		return r;
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg || !(cfg->path = strdup(path)))
		return -ENOMEM;
	cfg->connect_timeout_usec = 10ULL * 1000000;
	cfg->io_timeout_usec = 60ULL * 1000000;
	cfg->trust.max_date_skew_usec = 24ULL * 3600 * 1000000;
	cfg->guard = (struct ap_guard_config){ .max_restarts = 3,
					       .window_usec = 5ULL * 60 * 1000000,
					       .settle_usec = 10ULL * 1000000,
					       .push_timeout_usec = 5ULL * 1000000 };
	cfg->fleet = (struct ap_fleet_config){ .max_parallel = 1,
					       .lock_timeout_usec = 10ULL * 60 * 1000000,
					       .lease_ttl_usec = 30ULL * 1000000 };
	r = ap_config_yaml_walk(path, buf, len, host, &ap_config_schema, cfg);
	if (r < 0)
		return r;
	r = apply_defaults(cfg, force_user);
	if (r >= 0)
		r = config_digest(buf, len, host, cfg);
	if (r < 0)
		return r;
	r = check_file_owners(cfg);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(cfg);
	return 0;
}

static int load_logged(const char *path, bool force_user, const char *host,
		       struct ap_config **ret)
{
	int r = load(path, force_user, host, ret);

	/* Every other error was logged where it was found, with its position. */
	if (r == -ENOMEM)
		return ap_log_error(r, "failed to load config '%s': %s", path, strerror(-r));
	return r;
}

int ap_config_load_host(const char *path, bool force_user, const char *host,
			struct ap_config **ret)
{
	return load_logged(path, force_user, host, ret);
}

int ap_config_load(const char *path, bool force_user, struct ap_config **ret)
{
	char host[256] = "";

	if (gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "localhost");
	return ap_config_load_host(path, force_user, host, ret);
}

void ap_probe_clear(struct ap_probe *p)
{
	ap_strv_free(p->exec);
	free(p->http);
	free(p->tcp);
	*p = (struct ap_probe){ 0 };
}

void ap_config_free(struct ap_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; c->health && i < c->n_health; i++) {
		free(c->health[i].unit);
		ap_probe_clear(&c->health[i].probe);
	}
	free(c->health);
	free(c->path);
	free(c->repo_url);
	free(c->branch);
	free(c->ssh_key);
	free(c->known_hosts);
	free(c->ca_file);
	free(c->state_dir);
	free(c->unit_dir);
	ap_strv_free(c->units);
	for (size_t i = 0; c->files && i < c->n_files; i++)
		ap_config_rule_clear(&c->files[i]);
	free(c->files);
	ap_strv_free(c->guard.watch);
	ap_strv_free(c->hooks.on_failure);
	ap_strv_free(c->hooks.on_rollback);
	ap_strv_free(c->hooks.on_refused);
	free(c->guard.metrics_file);
	free(c->guard.push_url);
	free(c->guard.push_token_file);
	free(c->guard.push_basic_auth_file);
	free(c->guard.push_ca_file);
	free(c->trust.ssh_allowed_signers);
	free(c->trust.openpgp_keyring);
	free(c->trust.since);
	ap_strv_free(c->fleet.etcd);
	free(c->fleet.ca_file);
	free(c->fleet.cert_file);
	free(c->fleet.key_file);
	free(c->fleet.group);
	free(c->fleet.host);
	ap_strv_free(c->fleet.canary_hosts);
	free(c->secrets_identity);
	free(c);
}
