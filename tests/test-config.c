/* Tests for config.c: YAML written to temp files is loaded and checked field by field, with
 * the per-scope defaults taken from a controlled environment. Every bad config must fail with
 * -EINVAL and exactly one "FILE:LINE:COL: message" line on stderr, at the right place. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "config.h"
#include "util.h"

static char tmpdir[] = "/tmp/test-config-XXXXXX";

/* Writes len bytes of text to a new file in tmpdir; the caller unlinks and frees it. */
static char *write_file(const char *text, size_t len)
{
	char *path = ap_strdupf("%s/cfg-XXXXXX", tmpdir);
	size_t done = 0;
	int fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	while (done < len) {
		ssize_t k = write(fd, text + done, len - done);

		assert_true(k > 0);
		done += (size_t)k;
	}
	assert_int_equal(close(fd), 0);
	return path;
}

/* Runs ap_config_load() with fd 2 pointed at a temp file, and returns what was logged. */
/* Loads path, and with identity checks the secrets identity as a verb that decrypts does,
 * stderr into err. */
static int load_captured_how(const char *path, bool force_user, bool identity,
			     struct ap_config **ret, char *err, size_t size)
{
	char *log = ap_strdupf("%s/stderr-XXXXXX", tmpdir);
	int fd, saved, r;
	ssize_t n;

	assert_non_null(log);
	fd = mkstemp(log);
	assert_true(fd >= 0);
	assert_int_equal(fflush(stderr), 0);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	r = ap_config_load(path, force_user, ret);
	if (r >= 0 && identity)
		r = ap_config_check_identity(*ret);
	assert_int_equal(fflush(stderr), 0);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	assert_int_equal(close(saved), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	n = read(fd, err, size - 1);
	assert_true(n >= 0);
	err[n] = '\0';
	assert_int_equal(close(fd), 0);
	assert_int_equal(unlink(log), 0);
	free(log);
	return r;
}

static int load_captured(const char *path, bool force_user, struct ap_config **ret, char *err,
			 size_t size)
{
	return load_captured_how(path, force_user, false, ret, err, size);
}

/* Loads text, which must succeed without a word on stderr. */
static struct ap_config *load_ok(const char *text, bool force_user)
{
	struct ap_config *c = NULL;
	char *path = write_file(text, strlen(text));
	char err[4096];
	int r = load_captured(path, force_user, &c, err, sizeof(err));

	if (r != 0)
		print_error("unexpected failure %d: %s", r, err);
	assert_int_equal(r, 0);
	assert_string_equal(err, "");
	assert_non_null(c);
	assert_string_equal(c->path, path);
	assert_int_equal(unlink(path), 0);
	free(path);
	return c;
}

/* Loads len bytes that must be refused; returns the error (one line) in err. */
static int load_bad(const char *text, size_t len, char *err, size_t size)
{
	struct ap_config *c = NULL;
	char *path = write_file(text, len);
	int r = load_captured(path, false, &c, err, size);

	assert_null(c);
	assert_non_null(strstr(err, path)); /* messages name the file */
	assert_int_equal(unlink(path), 0);
	free(path);
	return r;
}

static void assert_strv(char **v, const char *const *want, size_t n)
{
	assert_non_null(v);
	assert_int_equal(ap_strv_length(v), n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(v[i], want[i]);
}

static void env_reset(void)
{
	assert_int_equal(setenv("HOME", "/home/tester", 1), 0);
	assert_int_equal(unsetenv("XDG_STATE_HOME"), 0);
	assert_int_equal(unsetenv("XDG_CONFIG_HOME"), 0);
}

#define REPO "repo:\n  url: /srv/infra.git\n"
/* fleet: on lines 3-5; its further keys go on line 6. */
#define FLEET_ETCD REPO "fleet:\n  etcd: [http://127.0.0.1:2379]\n"
#define FLEET FLEET_ETCD "  group: web\n"
#define FLEET_TLS REPO "fleet:\n  etcd: [https://etcd.example:2379]\n  group: web\n"
#define LONG_NAME "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 64 */ \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 257 */

/* Per-host variants: rules and unit directories for other hosts are dropped, %H and %l in
 * src become this host's names. */
static void test_hosts(void **state)
{
	const char *text = REPO "units:\n  - systemd/\n  - {dir: systemd-wsl/, hosts: [\"wsl-*\"]}\n"
			   "  - {dir: systemd-web/, hosts: [web1]}\n"
			   "files:\n  - {src: a, dest: /a, hosts: [db1, \"web*\"]}\n"
			   "  - {src: b, dest: /b, hosts: [db1]}\n"
			   "  - {src: \"hosts/%H/c\", dest: /c}\n  - {src: \"short/%l/d%%\", dest: /d}\n"
			   "hooks:\n  on_failure: [/usr/local/bin/page, \"%s\"]\n";
	char *path = write_file(text, strlen(text));
	struct ap_config *c = NULL;

	assert_int_equal(ap_config_load_host(path, false, "web1.example.org", &c), 0);
	assert_int_equal(ap_strv_length(c->units), 2);
	assert_string_equal(c->units[1], "systemd-web/");
	assert_int_equal(c->n_files, 3);
	assert_string_equal(c->files[0].src, "a");
	assert_string_equal(c->files[1].src, "hosts/web1.example.org/c");
	assert_string_equal(c->files[2].src, "short/web1/d%");
	assert_int_equal(c->other_host_rules, 1);
	assert_string_equal(c->hooks.on_failure[0], "/usr/local/bin/page");
	assert_null(c->hooks.on_rollback);
	ap_config_free(c);
	assert_int_equal(ap_config_load_host(path, false, "wsl-laptop", &c), 0);
	assert_int_equal(ap_strv_length(c->units), 2);
	assert_string_equal(c->units[1], "systemd-wsl/");
	assert_int_equal(c->n_files, 2);
	ap_config_free(c);
	unlink(path);
	free(path);
}

static void test_full(void **state)
{
	static const char *const units[] = { "systemd/", "", "more/" };
	static const char *const argv[] = { "caddy", "validate", "--config", "%s" };
	static const char *const watch[] = { "caddy.service", "web-*.service",
					     "getty@tty1.service" };
	struct ap_config *c = load_ok("repo:\n"
				      "  url: https://git.example.org/infra.git\n"
				      "  branch: release/v2\n"
				      "  ssh_key: /etc/autopull/deploy_ed25519\n"
				      "  known_hosts: /etc/autopull/known_hosts\n"
				      "  ca_file: /etc/autopull/ca.crt\n"
				      "  allow_rewind: true\n"
				      "  trust_owner: false\n"
				      "  connect_timeout: 3s\n"
				      "  io_timeout: 2m\n"
				      "scope: system\n"
				      "state_dir: /srv/state/\n"
				      "unit_dir: /etc/systemd/system\n"
				      "units: [systemd/, \"\", more]\n"
				      "files:\n"
				      "  - src: caddy/Caddyfile\n"
				      "    dest: /etc/caddy/Caddyfile\n"
				      "    mode: \"0644\"\n"
				      "    owner: root\n"
				      "    group: www-data\n"
				      "    validate: [caddy, validate, --config, \"%s\"]\n"
				      "    reload: [caddy.service]\n"
				      "    restart: []\n"
				      "  - src: sudoers.d/\n"
				      "    dest: /etc/sudoers.d/\n"
				      "    mode: 440\n"
				      "guard:\n"
				      "  watch: [caddy.service, \"web-*.service\",\n"
				      "          getty@tty1.service]\n"
				      "  max_restarts: 0\n"
				      "  window: 2h\n"
				      "  settle: 500ms\n"
				      "  push: https://vm.example.org:8428/api/v1/import/prometheus\n"
				      "  push_token_file: /etc/autopull/push-token\n"
				      "  push_ca_file: /etc/autopull/vm-ca.crt\n"
				      "  push_timeout: 2s\n"
				      "trust:\n"
				      "  ssh_allowed_signers: /etc/autopull/allowed_signers\n"
				      "  openpgp_keyring: /etc/autopull/trusted.gpg\n"
				      "  require: first-parent\n"
				      "  since: 0123456789abcdef0123456789abcdef01234567\n",
				      false);

	assert_string_equal(c->repo_url, "https://git.example.org/infra.git");
	assert_string_equal(c->branch, "release/v2");
	assert_string_equal(c->ssh_key, "/etc/autopull/deploy_ed25519");
	assert_string_equal(c->known_hosts, "/etc/autopull/known_hosts");
	assert_string_equal(c->ca_file, "/etc/autopull/ca.crt");
	assert_int_equal(c->scope, AP_SCOPE_SYSTEM);
	assert_string_equal(c->state_dir, "/srv/state");
	assert_string_equal(c->unit_dir, "/etc/systemd/system");
	assert_strv(c->units, units, ELEMENTSOF(units));
	assert_int_equal(c->n_files, 2);
	assert_string_equal(c->files[0].src, "caddy/Caddyfile");
	assert_string_equal(c->files[0].dest, "/etc/caddy/Caddyfile");
	assert_true(c->files[0].has_mode);
	assert_int_equal(c->files[0].mode, 0644);
	assert_string_equal(c->files[0].owner, "root");
	assert_string_equal(c->files[0].group, "www-data");
	assert_strv(c->files[0].validate, argv, ELEMENTSOF(argv));
	assert_strv(c->files[0].reload, (const char *const[]){ "caddy.service" }, 1);
	assert_strv(c->files[0].restart, NULL, 0); /* explicit [] is empty, not unset */
	assert_string_equal(c->files[1].src, "sudoers.d/");
	assert_string_equal(c->files[1].dest, "/etc/sudoers.d/");
	assert_int_equal(c->files[1].mode, 0440);
	assert_null(c->files[1].owner);
	assert_null(c->files[1].validate);
	assert_null(c->files[1].reload);
	assert_strv(c->guard.watch, watch, ELEMENTSOF(watch));
	assert_int_equal(c->guard.max_restarts, 0);
	assert_int_equal(c->guard.window_usec, 2ULL * 3600 * 1000000);
	assert_int_equal(c->guard.settle_usec, 500ULL * 1000);
	assert_string_equal(c->guard.push_url, "https://vm.example.org:8428/api/v1/import/prometheus");
	assert_string_equal(c->guard.push_token_file, "/etc/autopull/push-token");
	assert_null(c->guard.push_basic_auth_file);
	assert_string_equal(c->guard.push_ca_file, "/etc/autopull/vm-ca.crt");
	assert_int_equal(c->guard.push_timeout_usec, 2ULL * 1000000);
	assert_true(c->allow_rewind);
	assert_false(c->trust_owner);
	assert_int_equal(c->connect_timeout_usec, 3ULL * 1000000);
	assert_int_equal(c->io_timeout_usec, 120ULL * 1000000);
	assert_true(c->trust.enabled);
	assert_string_equal(c->trust.ssh_allowed_signers, "/etc/autopull/allowed_signers");
	assert_string_equal(c->trust.openpgp_keyring, "/etc/autopull/trusted.gpg");
	assert_int_equal(c->trust.require, AP_TRUST_FIRST_PARENT);
	assert_string_equal(c->trust.since, "0123456789abcdef0123456789abcdef01234567");
	ap_config_free(c);
}

/* The digest drift keys its expected files on: the same file gives the same digest, a rule
 * removed gives another. */
static void test_digest(void **state)
{
	struct ap_config *a = load_ok(REPO, false), *b = load_ok(REPO, false);
	struct ap_config *c = load_ok(REPO "files:\n  - src: env/\n    dest: /etc/app/\n", false);
	struct ap_config *u = load_ok(REPO, true);

	assert_int_equal(strlen(a->digest), 64);
	assert_string_equal(a->digest, b->digest);
	assert_string_not_equal(a->digest, c->digest);
	assert_string_not_equal(a->digest, u->digest); /* another scope, other directories */
	ap_config_free(a), ap_config_free(b), ap_config_free(c), ap_config_free(u);
}

static void test_defaults_system(void **state)
{
	struct ap_config *c = load_ok(REPO, false);

	assert_string_equal(c->repo_url, "/srv/infra.git");
	assert_string_equal(c->branch, "main");
	assert_null(c->ssh_key);
	assert_null(c->known_hosts);
	assert_null(c->ca_file);
	assert_int_equal(c->scope, AP_SCOPE_SYSTEM);
	assert_string_equal(c->state_dir, "/var/lib/autopull");
	assert_string_equal(c->unit_dir, "/etc/systemd/system");
	assert_strv(c->units, (const char *const[]){ "systemd/" }, 1);
	assert_null(c->files);
	assert_int_equal(c->n_files, 0);
	assert_null(c->guard.watch);
	assert_int_equal(c->guard.max_restarts, 3);
	assert_int_equal(c->guard.window_usec, 5ULL * 60 * 1000000);
	assert_int_equal(c->guard.settle_usec, 10ULL * 1000000);
	assert_null(c->guard.push_url);
	assert_int_equal(c->guard.push_timeout_usec, 5ULL * 1000000);
	assert_false(c->allow_rewind);
	assert_false(c->trust_owner);
	assert_int_equal(c->connect_timeout_usec, 10ULL * 1000000);
	assert_int_equal(c->io_timeout_usec, 60ULL * 1000000);
	assert_false(c->trust.enabled);
	assert_null(c->trust.ssh_allowed_signers);
	ap_config_free(c);
}

/* trust: with one key source; require defaults to every-commit. */
static void test_trust_defaults(void **state)
{
	struct ap_config *c = load_ok(REPO "trust:\n  openpgp_keyring: /etc/k.gpg\n", false);

	assert_true(c->trust.enabled);
	assert_null(c->trust.ssh_allowed_signers);
	assert_string_equal(c->trust.openpgp_keyring, "/etc/k.gpg");
	assert_int_equal(c->trust.require, AP_TRUST_EVERY_COMMIT);
	assert_null(c->trust.since);
	ap_config_free(c);
	c = load_ok(REPO "trust: {ssh_allowed_signers: /etc/s, require: tip}\n", false);
	assert_int_equal(c->trust.require, AP_TRUST_TIP);
	ap_config_free(c);
}

/* Without fleet: nothing of it is set; with it, the defaults of what it leaves out, and the
 * host is this host's name. */
static void test_fleet_defaults(void **state)
{
	struct ap_config *c = load_ok(REPO, false);
	char host[256] = "";

	assert_false(c->fleet.enabled);
	assert_null(c->fleet.etcd);
	assert_null(c->fleet.group);
	assert_null(c->fleet.host);
	assert_null(c->fleet.canary_hosts);
	ap_config_free(c);

	assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
	c = load_ok(FLEET, false);
	assert_true(c->fleet.enabled);
	assert_strv(c->fleet.etcd, (const char *const[]){ "http://127.0.0.1:2379" }, 1);
	assert_string_equal(c->fleet.group, "web");
	assert_string_equal(c->fleet.host, host);
	assert_int_equal(c->fleet.max_parallel, 1);
	assert_int_equal(c->fleet.canary, 0);
	assert_null(c->fleet.canary_hosts);
	assert_true(c->fleet.lock_timeout_usec == 10ULL * 60 * 1000000);
	assert_true(c->fleet.lease_ttl_usec == 30ULL * 1000000);
	assert_null(c->fleet.ca_file);
	assert_null(c->fleet.cert_file);
	assert_null(c->fleet.key_file);
	ap_config_free(c);
}

/* Every key set; canary as a number and as a list of hosts (its count is the number). The
 * default host is the name the configuration is loaded for. */
static void test_fleet_full(void **state)
{
	const char *text = REPO "fleet:\n  etcd: [\"https://e1:2379\", \"http://10.0.0.2:2379/\"]\n"
			   "  ca_file: /etc/autopull/etcd-ca.pem\n  cert_file: /etc/autopull/c.pem\n"
			   "  key_file: /etc/autopull/k.pem\n  group: web_eu-1.a\n  max_parallel: 1024\n"
			   "  canary: [web1, Web-2.example_x]\n  lock_timeout: 0\n  lease_ttl: 2s\n";
	char *path = write_file(text, strlen(text));
	struct ap_config *c = NULL;

	assert_int_equal(ap_config_load_host(path, false, "web1.example.org", &c), 0);
	assert_true(c->fleet.enabled);
	assert_strv(c->fleet.etcd, (const char *const[]){ "https://e1:2379", "http://10.0.0.2:2379/" }, 2);
	assert_string_equal(c->fleet.ca_file, "/etc/autopull/etcd-ca.pem");
	assert_string_equal(c->fleet.cert_file, "/etc/autopull/c.pem");
	assert_string_equal(c->fleet.key_file, "/etc/autopull/k.pem");
	assert_string_equal(c->fleet.group, "web_eu-1.a");
	assert_string_equal(c->fleet.host, "web1.example.org");
	assert_int_equal(c->fleet.max_parallel, 1024);
	assert_int_equal(c->fleet.canary, 2);
	assert_strv(c->fleet.canary_hosts, (const char *const[]){ "web1", "Web-2.example_x" }, 2);
	assert_true(c->fleet.lock_timeout_usec == 0);
	assert_true(c->fleet.lease_ttl_usec == 2ULL * 1000000);
	ap_config_free(c);

	c = load_ok(FLEET "  host: db-1\n  canary: 3\n  max_parallel: 2\n  lease_ttl: 1m\n", false);
	assert_string_equal(c->fleet.host, "db-1");
	assert_int_equal(c->fleet.canary, 3);
	assert_null(c->fleet.canary_hosts);
	assert_int_equal(c->fleet.max_parallel, 2);
	assert_true(c->fleet.lease_ttl_usec == 60ULL * 1000000);
	ap_config_free(c);
	c = load_ok(FLEET "  canary: 0\n", false);
	assert_int_equal(c->fleet.canary, 0);
	assert_null(c->fleet.canary_hosts);
	ap_config_free(c);
	assert_int_equal(unlink(path), 0);
	free(path);
}

/* A host name that cannot be a fleet host name (gethostname() gives what the admin set) is an
 * error only when fleet: leaves host: out. */
static void test_fleet_host_default(void **state)
{
	char *path = write_file(FLEET, strlen(FLEET));
	const char *named = FLEET "  host: web1\n";
	char *path2 = write_file(named, strlen(named));
	struct ap_config *c = NULL;

	assert_int_equal(ap_config_load_host(path, false, "web 1", &c), -EINVAL);
	assert_null(c);
	assert_int_equal(ap_config_load_host(path2, false, "web 1", &c), 0);
	assert_string_equal(c->fleet.host, "web1");
	ap_config_free(c);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(unlink(path2), 0);
	free(path);
	free(path2);
}

/* Per-scope defaults from the environment: {XDG_STATE_HOME, XDG_CONFIG_HOME, HOME}. */
static void test_defaults_user(void **state)
{
	static const struct {
		const char *state_home, *config_home, *home;
		const char *state_dir, *unit_dir;
	} rows[] = {
		{ NULL, NULL, "/home/tester", "/home/tester/.local/state/autopull",
		  "/home/tester/.config/systemd/user" },
		{ "/x/state", "/x/config/", "/home/tester", "/x/state/autopull",
		  "/x/config/systemd/user" },
		{ "/x/state", "/x/config", NULL, "/x/state/autopull", "/x/config/systemd/user" },
		{ "relative", "", "/home/t/", "/home/t/.local/state/autopull",
		  "/home/t/.config/systemd/user" },
		{ NULL, NULL, "/", "/.local/state/autopull", "/.config/systemd/user" },
	};

	for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
		struct ap_config *c;

		env_reset();
		assert_int_equal(unsetenv("HOME"), 0);
		if (rows[i].state_home)
			assert_int_equal(setenv("XDG_STATE_HOME", rows[i].state_home, 1), 0);
		if (rows[i].config_home)
			assert_int_equal(setenv("XDG_CONFIG_HOME", rows[i].config_home, 1), 0);
		if (rows[i].home)
			assert_int_equal(setenv("HOME", rows[i].home, 1), 0);
		c = load_ok(REPO "scope: user\n", false);
		assert_int_equal(c->scope, AP_SCOPE_USER);
		assert_string_equal(c->state_dir, rows[i].state_dir);
		assert_string_equal(c->unit_dir, rows[i].unit_dir);
		ap_config_free(c);
	}
	env_reset();
}

static void test_force_user(void **state)
{
	struct ap_config *c;

	env_reset();
	c = load_ok(REPO "scope: system\n", true);
	assert_int_equal(c->scope, AP_SCOPE_USER);
	assert_string_equal(c->state_dir, "/home/tester/.local/state/autopull");
	assert_string_equal(c->unit_dir, "/home/tester/.config/systemd/user");
	ap_config_free(c);

	/* Explicit directories win over the scope's defaults. */
	c = load_ok(REPO "state_dir: /srv/s\nunit_dir: /srv/u/\n", true);
	assert_int_equal(c->scope, AP_SCOPE_USER);
	assert_string_equal(c->state_dir, "/srv/s");
	assert_string_equal(c->unit_dir, "/srv/u");
	ap_config_free(c);
}

/* A user scope without HOME (or XDG_*) has no defaults, unless the config gives them. */
static void test_user_without_home(void **state)
{
	struct ap_config *c = NULL;
	char err[4096], *path = write_file(REPO "scope: user\n", strlen(REPO "scope: user\n"));

	env_reset();
	assert_int_equal(unsetenv("HOME"), 0);
	assert_int_equal(load_captured(path, false, &c, err, sizeof(err)), -ENXIO);
	assert_null(c);
	assert_non_null(strstr(err, "no default state_dir"));
	assert_int_equal(setenv("XDG_STATE_HOME", "/x/state", 1), 0);
	assert_int_equal(load_captured(path, false, &c, err, sizeof(err)), -ENXIO);
	assert_non_null(strstr(err, "no default unit_dir"));
	assert_int_equal(unlink(path), 0);
	free(path);

	c = load_ok(REPO "scope: user\nstate_dir: /s\nunit_dir: /u\n", false);
	assert_string_equal(c->state_dir, "/s");
	ap_config_free(c);
	env_reset();
}

static void test_units_normalised(void **state)
{
	static const char *const want[] = { "", "", "", "a/", "b/", "c/d/" };
	struct ap_config *c = load_ok(REPO "units:\n  - \"\"\n  - .\n  - /\n  - a\n  - b/\n"
					   "  - c/d\n",
				      false);

	assert_strv(c->units, want, ELEMENTSOF(want));
	ap_config_free(c);
	c = load_ok(REPO "units: []\nfiles: []\n", false);
	assert_strv(c->units, NULL, 0); /* no unit directories at all, not the default */
	assert_int_equal(c->n_files, 0);
	ap_config_free(c);
}

static void test_modes(void **state)
{
	static const struct {
		const char *text;
		mode_t mode;
	} rows[] = {
		{ "0644", 0644 }, { "\"0755\"", 0755 }, { "644", 0644 }, { "'600'", 0600 },
		{ "4755", 04755 }, { "7777", 07777 }, { "000", 0 }, { "2750", 02750 },
		{ "1777", 01777 },
	};

	for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
		/* setuid/setgid modes load only when the rule allows them */
		char *text = ap_strdupf(REPO "files:\n  - src: a\n    dest: /a\n    mode: %s\n%s",
					rows[i].text, rows[i].mode & 06000 ?
					"    allow_setid: true\n" : "");
		struct ap_config *c;

		assert_non_null(text);
		c = load_ok(text, false);
		assert_true(c->files[0].has_mode);
		assert_int_equal(c->files[0].mode, rows[i].mode);
		ap_config_free(c);
		free(text);
	}
}

/* Values at the edge of what each check allows, all of which must load. */
static void test_good_values(void **state)
{
	static const char *const rows[] = {
		"repo:\n  url: file:///srv/infra.git\n",
		"repo:\n  url: http://h/x.git\n",
		"repo:\n  url: ssh://git@h:22/x.git\n",
		"repo: {url: /srv/x, branch: feature/a-b_c.1}\n",
		"repo: {url: /srv/x, branch: v1.0}\n",
		REPO "scope: user\n",
		REPO "guard:\n  watch: [\"foo@.service\", \"a:b\\\\x2d.mount\",\n"
		     "          \"web-?[12].socket\"]\n",
		REPO "files:\n  - src: a\n    dest: /a\n    restart: [x.timer, y.path, z.target]\n",
		REPO "files:\n  - src: a\n    dest: /a\n    reload: [-.slice, dev-sda.device]\n",
		REPO "guard: {max_restarts: 4294967295, window: 300, settle: 0}\n",
		REPO "guard: {push: \"http://127.0.0.1:8428/api/v1/import/prometheus\"}\n",
		REPO "guard: {push: \"http://[::1]:9091/metrics/job/autopull?x=a@b\"}\n",
		REPO "guard: {push: https://vm, push_basic_auth_file: /etc/a, push_timeout: 60s}\n",
		REPO "state_dir: !!str /srv/s\n",
		"%YAML 1.1\n---\n" REPO "...\n",
		"\xef\xbb\xbf" REPO "# a comment\n",
	};

	for (size_t i = 0; i < ELEMENTSOF(rows); i++)
		ap_config_free(load_ok(rows[i], false));
}

struct bad {
	const char *name;
	const char *yaml;
	unsigned line, col;
	const char *keyword;
};

/* Each must fail with -EINVAL and one line "FILE:LINE:COL: ..." containing keyword. */
static struct bad bad_configs[] = {
	{ "empty file", "", 1, 1, "empty configuration (repo.url is required)" },
	{ "only comments", "# nothing\n\n", 1, 1, "empty configuration" },
	{ "empty document", "---\n", 1, 1, "empty configuration" },
	{ "root is a list", "- a\n", 1, 1, "expected a mapping, found a list" },
	{ "unknown top key", REPO "foo: 1\n", 3, 1, "unknown key 'foo' in the configuration" },
	{ "unknown repo key", REPO "  brnach: main\n", 3, 3, "unknown key 'brnach' in repo" },
	{ "unknown rule key", REPO "files:\n  - src: a\n    dest: /a\n    bogus: x\n", 6, 5,
	  "unknown key 'bogus' in file rule" },
	{ "unknown guard key", REPO "guard: {watch: [], restarts: 1}\n", 3, 20,
	  "unknown key 'restarts' in guard" },
	{ "key with newline", REPO "\"a\\nb\": 1\n", 3, 1, "unknown key 'a?b'" },
	{ "duplicate key", REPO "  url: /srv/other\n", 3, 3, "duplicate key 'url' in repo" },
	{ "duplicate top key", REPO "scope: user\nscope: system\n", 4, 1,
	  "duplicate key 'scope'" },
	{ "duplicate rule key", REPO "files:\n  - {src: a, dest: /a, restart: [], restart: []}\n",
	  4, 37, "duplicate key 'restart'" },
	{ "alias", REPO "state_dir: *dir\n", 3, 12, "aliases are not allowed" },
	{ "anchor", "repo:\n  url: &u /srv/x\n", 2, 8, "anchors are not allowed" },
	{ "anchor on mapping", "repo: &r\n  url: /srv/x\n", 1, 7, "anchors are not allowed" },
	{ "merge key", REPO "  <<: {branch: x}\n", 3, 3, "unknown key '<<' in repo" },
	{ "mode 0999", REPO "files:\n  - src: a\n    dest: /a\n    mode: \"0999\"\n", 6, 11,
	  "mode: '0999' is not an octal mode" },
	{ "mode abc", REPO "files:\n  - src: a\n    dest: /a\n    mode: abc\n", 6, 11,
	  "'abc' is not an octal mode" },
	{ "mode 12345", REPO "files:\n  - src: a\n    dest: /a\n    mode: 12345\n", 6, 11,
	  "'12345' is not an octal mode" },
	{ "mode 2 digits", REPO "files:\n  - src: a\n    dest: /a\n    mode: 44\n", 6, 11,
	  "'44' is not an octal mode" },
	{ "mode list", REPO "files:\n  - src: a\n    dest: /a\n    mode: [644]\n", 6, 11,
	  "mode: expected a string, found a list" },
	{ "setuid mode", REPO "files:\n  - src: a\n    dest: /a\n    mode: 4755\n", 4, 5,
	  "file rule 'a': mode 4755 sets the setuid/setgid bit; add 'allow_setid: true'" },
	{ "setgid mode", REPO "files:\n  - {src: d/, dest: /d/, mode: \"2755\"}\n", 4, 5,
	  "mode 2755 sets the setuid/setgid bit" },
	{ "setuid not allowed", REPO "files:\n  - {src: a, dest: /a, mode: 6755, allow_setid: false}\n",
	  4, 5, "mode 6755 sets the setuid/setgid bit" },
	{ "allow_setid yes", REPO "files:\n  - {src: a, dest: /a, allow_setid: yes}\n", 4, 37,
	  "allow_setid: 'yes' is not true or false" },
	{ "allow_setid list", REPO "files:\n  - {src: a, dest: /a, allow_setid: []}\n", 4, 37,
	  "allow_setid: expected a string, found a list" },
	{ "relative dest", REPO "files:\n  - src: a\n    dest: etc/a\n", 5, 11,
	  "dest: 'etc/a' is not an absolute normalised path" },
	{ "dotdot dest", REPO "files:\n  - src: a\n    dest: /etc/../a\n", 5, 11,
	  "is not an absolute normalised path" },
	{ "dotdot src", REPO "files:\n  - src: a/../../etc/shadow\n    dest: /a\n", 4, 10,
	  "src: 'a/../../etc/shadow' is not a safe relative repository path" },
	{ "absolute src", REPO "files:\n  - src: /etc/a\n    dest: /a\n", 4, 10,
	  "is not a safe relative" },
	{ "dir rule mismatch", REPO "files:\n  - src: a\n    dest: /a\n  - src: d/\n    dest: /d\n",
	  6, 5, "src and dest must both end in '/'" },
	{ "file rule to dir", REPO "files:\n  - {src: a, dest: /etc/}\n", 4, 5,
	  "src and dest must both end in '/'" },
	{ "missing dest", REPO "files:\n  - src: a\n", 4, 5,
	  "missing required key 'dest' in file rule" },
	{ "missing repo", "scope: user\n", 1, 1, "missing required key 'repo'" },
	{ "missing url", "repo:\n  branch: main\n", 2, 3, "missing required key 'url' in repo" },
	{ "empty url", "repo:\n  url: \"\"\n", 2, 8, "url: missing value" },
	{ "null url", "repo:\n  url: ~\n", 2, 8, "url: missing value" },
	{ "no url value", "repo:\n  url:\nscope: user\n", 2, 7, "url: missing value" },
	{ "bad url scheme", "repo:\n  url: ftp://h/x\n", 2, 8, "'ftp://h/x' is not a file://" },
	{ "relative url", "repo:\n  url: srv/x\n", 2, 8, "is not a file://" },
	{ "url with space", "repo:\n  url: \"https://h/a b\"\n", 2, 8, "is not a file://" },
	{ "branch dotdot", REPO "  branch: a..b\n", 3, 11, "'a..b' is not a valid branch name" },
	{ "branch dash", REPO "  branch: \"-x\"\n", 3, 11, "is not a valid branch name" },
	{ "branch space", REPO "  branch: a b\n", 3, 11, "is not a valid branch name" },
	{ "branch colon", REPO "  branch: \"a:b\"\n", 3, 11, "is not a valid branch name" },
	{ "branch lock", REPO "  branch: x.lock\n", 3, 11, "is not a valid branch name" },
	{ "relative ssh_key", REPO "  ssh_key: keys/id\n", 3, 12, "is not an absolute file path" },
	{ "bad scope", REPO "scope: global\n", 3, 8, "scope: 'global' is not 'system' or 'user'" },
	{ "relative state_dir", REPO "state_dir: var/lib\n", 3, 12, "is not an absolute" },
	{ "unsafe units", REPO "units: [systemd, ../x]\n", 3, 18,
	  "'../x' is not a safe relative repository directory" },
	{ "units not a list", REPO "units: systemd/\n", 3, 8,
	  "units: expected a list, found a string" },
	{ "units entry mapping", REPO "units:\n  - {a: b}\n", 4, 6,
	  "unknown key 'a' in a units entry" },
	{ "units entry without dir", REPO "units:\n  - {hosts: [web1]}\n", 4, 5,
	  "missing required key 'dir' in a units entry" },
	{ "units entry bad host", REPO "units:\n  - {dir: wsl/, hosts: [\"a b\"]}\n", 4, 25,
	  "'a b' is not a host name or glob" },
	{ "rule hosts empty", REPO "files:\n  - {src: a, dest: /a, hosts: []}\n", 4, 31,
	  "hosts: must not be empty" },
	{ "unknown specifier", REPO "files:\n  - {src: \"hosts/%m/a\", dest: /a}\n", 4, 5,
	  "unknown specifier '%m'" },
	{ "hooks not argv", REPO "hooks:\n  on_failure: notify\n", 4, 15,
	  "on_failure: expected a list" },
	{ "hooks unknown", REPO "hooks:\n  on_success: [x]\n", 4, 3,
	  "unknown key 'on_success' in hooks" },
	{ "url is a mapping", "repo:\n  url: {a: b}\n", 2, 8,
	  "url: expected a string, found a mapping" },
	{ "repo is a string", "repo: /srv/x\n", 1, 7, "repo: expected a mapping, found a string" },
	{ "files is a mapping", REPO "files: {src: a}\n", 3, 8, "files: expected a list" },
	{ "rule is a string", REPO "files: [a]\n", 3, 9,
	  "files entry: expected a mapping, found a string" },
	{ "key is a list", REPO "? [a]\n: b\n", 3, 3, "mapping key: expected a string" },
	{ "bad duration", REPO "guard:\n  window: 5 minutes\n", 4, 11,
	  "window: '5 minutes' is not a duration" },
	{ "negative duration", REPO "guard:\n  settle: -1s\n", 4, 11, "is not a duration" },
	{ "max_restarts word", REPO "guard:\n  max_restarts: abc\n", 4, 17,
	  "max_restarts: 'abc' is not a number" },
	{ "max_restarts negative", REPO "guard:\n  max_restarts: -1\n", 4, 17, "is not a number" },
	{ "max_restarts fraction", REPO "guard:\n  max_restarts: 3.5\n", 4, 17,
	  "is not a number" },
	{ "max_restarts overflow", REPO "guard:\n  max_restarts: 4294967296\n", 4, 17,
	  "is not a number" },
	{ "unit without type", REPO "files:\n  - {src: a, dest: /a, reload: [caddy]}\n", 4, 33,
	  "'caddy' is not a unit name" },
	{ "unit bad type", REPO "files:\n  - {src: a, dest: /a, restart: [x.bar]}\n", 4, 34,
	  "'x.bar' is not a unit name" },
	{ "unit with space", REPO "files:\n  - {src: a, dest: /a, restart: [\"a b.service\"]}\n",
	  4, 34, "is not a unit name" },
	{ "restart glob without a type",
	  REPO "files:\n  - {src: a, dest: /a, restart: [\"web-*\"]}\n", 4, 34,
	  "'web-*' is not a unit name or glob" },
	{ "unit two ats", REPO "guard: {watch: [a@b@c.service]}\n", 3, 17,
	  "is not a unit name or glob" },
	{ "watch without type", REPO "guard: {watch: [\"web-*\"]}\n", 3, 17,
	  "'web-*' is not a unit name or glob" },
	{ "empty validate", REPO "files:\n  - {src: a, dest: /a, validate: []}\n", 4, 34,
	  "validate: must not be empty" },
	{ "validate string", REPO "files:\n  - {src: a, dest: /a, validate: visudo}\n", 4, 34,
	  "validate: expected a list, found a string" },
	{ "empty owner", REPO "files:\n  - {src: a, dest: /a, owner: ''}\n", 4, 31,
	  "owner: missing value" },
	{ "nul in string", REPO "files:\n  - {src: a, dest: /a, owner: \"ro\\0ot\"}\n", 4, 31,
	  "owner: control characters are not allowed" },
	{ "int tag", REPO "guard: {max_restarts: !!int 3}\n", 3, 23,
	  "tag 'tag:yaml.org,2002:int'" },
	{ "local tag", REPO "scope: !foo user\n", 3, 8, "tag '!foo' is not allowed" },
	{ "bad indentation", "repo:\n  url: /srv/x\n   branch: main\n", 3, 10,
	  "mapping values are not allowed in this context" },
	{ "unclosed flow", REPO "units: [a, b\n", 4, 1, "did not find expected ',' or ']'" },
	{ "tab indentation", "repo:\n\turl: /srv/x\n", 2, 1, "found character that cannot start" },
	{ "second document", REPO "---\nrepo:\n  url: /srv/y\n", 3, 1,
	  "multiple documents are not allowed" },
	{ "invalid utf-8", REPO "scope: \xff\n", 3, 8, "invalid leading UTF-8 octet" },
	{ "push not http", REPO "guard: {push: \"ftp://vm/x\"}\n", 3, 15,
	  "'ftp://vm/x' is not an http(s):// URL" },
	{ "push without host", REPO "guard: {push: \"http:///x\"}\n", 3, 15, "is not an http(s)" },
	{ "push with password", REPO "guard: {push: \"https://u:pw@vm/x\"}\n", 3, 15,
	  "without user:password@" },
	{ "push with space", REPO "guard: {push: \"http://vm/a b\"}\n", 3, 15, "is not an http(s)" },
	{ "push token relative", REPO "guard: {push: http://vm, push_token_file: tok}\n", 3, 43,
	  "push_token_file: 'tok' is not an absolute file path" },
	{ "push two credentials",
	  REPO "guard: {push: http://vm, push_token_file: /a, push_basic_auth_file: /b}\n", 3, 8,
	  "push_token_file and push_basic_auth_file exclude each other" },
	{ "push credentials without url", REPO "guard: {push_token_file: /a}\n", 3, 8,
	  "without push (the URL)" },
	{ "push timeout zero", REPO "guard: {push: http://vm, push_timeout: 0}\n", 3, 8,
	  "push_timeout must be more than 0 and at most 60s" },
	{ "push timeout long", REPO "guard: {push: http://vm, push_timeout: 2m}\n", 3, 8,
	  "push_timeout must be more than 0" },
	{ "bool word", REPO "  allow_rewind: yes\n", 3, 17, "allow_rewind: 'yes' is not true or false" },
	{ "bool capital", REPO "  trust_owner: True\n", 3, 16, "is not true or false" },
	{ "timeout word", REPO "  connect_timeout: soon\n", 3, 20, "is not a duration" },
	{ "trust without keys", REPO "trust:\n  require: tip\n", 4, 3,
	  "trust: needs ssh_allowed_signers or openpgp_keyring" },
	{ "trust empty", REPO "trust: {}\n", 3, 8, "trust: needs ssh_allowed_signers" },
	{ "trust relative file", REPO "trust: {ssh_allowed_signers: signers}\n", 3, 30,
	  "is not an absolute file path" },
	{ "trust bad require", REPO "trust: {openpgp_keyring: /k, require: all}\n", 3, 39,
	  "require: 'all' is not every-commit, first-parent or tip" },
	{ "trust short since", REPO "trust: {openpgp_keyring: /k, since: abc123}\n", 3, 37,
	  "is not a full commit id" },
	{ "trust upper since", REPO "trust: {openpgp_keyring: /k, since: "
	  "0123456789ABCDEF0123456789abcdef01234567}\n", 3, 37, "is not a full commit id" },
	{ "trust unknown key", REPO "trust: {openpgp_keyring: /k, keys: x}\n", 3, 30,
	  "unknown key 'keys' in trust" },
	{ "trust list", REPO "trust: [a]\n", 3, 8, "trust: expected a mapping, found a list" },
	{ "fleet a string", REPO "fleet: web\n", 3, 8, "fleet: expected a mapping, found a string" },
	{ "fleet empty", REPO "fleet: {}\n", 3, 8, "missing required key 'etcd' in fleet" },
	{ "fleet without etcd", REPO "fleet:\n  group: web\n", 4, 3,
	  "missing required key 'etcd' in fleet" },
	{ "fleet etcd empty", REPO "fleet: {etcd: [], group: web}\n", 3, 15, "etcd: must not be empty" },
	{ "fleet etcd a string", REPO "fleet: {etcd: http://e:2379, group: web}\n", 3, 15,
	  "etcd: expected a list, found a string" },
	{ "fleet etcd not http", REPO "fleet: {etcd: [\"unix:///run/etcd.sock\"], group: web}\n", 3, 16,
	  "etcd: 'unix:///run/etcd.sock' is not an http(s):// URL" },
	{ "fleet etcd second not http", REPO "fleet:\n  etcd: [http://a:2379, \"e:2379\"]\n  group: w\n",
	  4, 25, "etcd: 'e:2379' is not an http(s):// URL" },
	{ "fleet etcd without host", REPO "fleet: {etcd: [\"http://\"], group: web}\n", 3, 16,
	  "is not an http(s):// URL" },
	{ "fleet etcd with password", REPO "fleet: {etcd: [\"https://root:pw@e:2379\"], group: w}\n", 3,
	  16, "(no user:password@" },
	{ "fleet etcd with query", REPO "fleet: {etcd: [\"http://e:2379/?a=b\"], group: w}\n", 3, 16,
	  "etcd: 'http://e:2379/?a=b' is not an http(s):// URL of an endpoint (no user:password@, "
	  "query or fragment)" },
	{ "fleet etcd with fragment", REPO "fleet: {etcd: [\"https://e:2379#top\"], group: w}\n", 3,
	  16, "(no user:password@, query or fragment)" },
	{ "fleet without group", REPO "fleet:\n  etcd: [http://e:2379]\n", 4, 3,
	  "missing required key 'group' in fleet" },
	{ "fleet group slash", FLEET_ETCD "  group: web/eu\n", 5, 10,
	  "group: 'web/eu' is not a name of letters, digits, '_', '.' and '-'" },
	{ "fleet group space", FLEET_ETCD "  group: \"web eu\"\n", 5, 10, "is not a name of letters" },
	{ "fleet group too long", FLEET_ETCD "  group: " LONG_NAME "\n", 5, 10,
	  "is not a name of letters" },
	{ "fleet host charset", FLEET "  host: \"db 1\"\n", 6, 9,
	  "host: 'db 1' is not a name of letters, digits, '_', '.' and '-'" },
	{ "fleet host glob", FLEET "  host: \"web*\"\n", 6, 9, "is not a name of letters" },
	{ "fleet max_parallel zero", FLEET "  max_parallel: 0\n", 6, 17,
	  "max_parallel: '0' is not a number from 1 to 1024" },
	{ "fleet max_parallel too many", FLEET "  max_parallel: 1025\n", 6, 17,
	  "is not a number from 1 to 1024" },
	{ "fleet max_parallel negative", FLEET "  max_parallel: -1\n", 6, 17,
	  "is not a number from 1 to 1024" },
	{ "fleet canary negative", FLEET "  canary: -1\n", 6, 11,
	  "canary: '-1' is not a number of hosts (0 to 1024) or a list of host names" },
	{ "fleet canary word", FLEET "  canary: web1\n", 6, 11, "is not a number of hosts" },
	{ "fleet canary too many", FLEET "  canary: 1025\n", 6, 11, "is not a number of hosts" },
	{ "fleet canary empty list", FLEET "  canary: []\n", 6, 11, "canary: must not be empty" },
	{ "fleet canary bad host", FLEET "  canary: [web1, \"a b\"]\n", 6, 18,
	  "canary: 'a b' is not a name of letters" },
	{ "fleet canary twice", FLEET "  canary: [web1, web2, web1]\n", 6, 24,
	  "canary: 'web1' is named twice" },
	{ "fleet canary mapping", FLEET "  canary: {web1: 1}\n", 6, 11,
	  "canary: expected a string, found a mapping" },
	{ "fleet canary list of lists", FLEET "  canary: [[web1]]\n", 6, 12,
	  "canary: expected a string, found a list" },
	{ "fleet cert without key", FLEET_TLS "  cert_file: /etc/c.pem\n", 4, 3,
	  "fleet: cert_file and key_file go together" },
	{ "fleet key without cert", FLEET_TLS "  key_file: /etc/k.pem\n", 4, 3,
	  "fleet: cert_file and key_file go together" },
	{ "fleet tls without https", FLEET "  ca_file: /etc/ca.pem\n", 4, 3,
	  "fleet: ca_file, cert_file and key_file need an https:// endpoint in etcd" },
	{ "fleet relative ca_file", FLEET_TLS "  ca_file: ca.pem\n", 6, 12,
	  "ca_file: 'ca.pem' is not an absolute file path" },
	{ "fleet lease_ttl short", FLEET "  lease_ttl: 1s\n", 6, 14,
	  "lease_ttl: '1s' must be whole seconds, at least 2s" },
	{ "fleet lease_ttl zero", FLEET "  lease_ttl: 0\n", 6, 14, "must be whole seconds, at least 2s" },
	{ "fleet lease_ttl fraction", FLEET "  lease_ttl: 2500ms\n", 6, 14,
	  "must be whole seconds, at least 2s" },
	{ "fleet lease_ttl word", FLEET "  lease_ttl: long\n", 6, 14, "'long' is not a duration" },
	{ "fleet lock_timeout word", FLEET "  lock_timeout: soon\n", 6, 17,
	  "lock_timeout: 'soon' is not a duration" },
	{ "fleet unknown key", FLEET "  slots: 2\n", 6, 3, "unknown key 'slots' in fleet" },
	{ "fleet duplicate key", FLEET "  group: db\n", 6, 3, "duplicate key 'group' in fleet" },
	{ "decrypt not age", REPO "files:\n  - {src: a, dest: /a, decrypt: sops}\n", 4, 33,
	  "decrypt: 'sops' is not 'age'" },
	{ "secrets identity relative", REPO "secrets: {identity: age.key}\n", 3, 21,
	  "identity: 'age.key' is not an absolute file path" },
	{ "secrets unknown key", REPO "secrets: {recipients: /r}\n", 3, 11,
	  "unknown key 'recipients' in secrets" },
};

static void test_bad_config(void **state)
{
	const struct bad *b = *state;
	char err[4096], *pos;

	assert_int_equal(load_bad(b->yaml, strlen(b->yaml), err, sizeof(err)), -EINVAL);
	pos = ap_strdupf(":%u:%u: ", b->line, b->col);
	assert_non_null(pos);
	if (!strstr(err, pos) || !strstr(err, b->keyword))
		print_error("want '%s' and '%s' in: %s", pos, b->keyword, err);
	assert_non_null(strstr(err, pos));
	assert_non_null(strstr(err, b->keyword));
	assert_non_null(strchr(err, '\n'));
	assert_string_equal(strchr(err, '\n'), "\n"); /* exactly one line */
	free(pos);
}

static void test_too_deep(void **state)
{
	struct ap_buf b = { 0 };
	char err[4096];

	assert_int_equal(ap_buf_printf(&b, "%sunits: ", REPO), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(ap_buf_append(&b, "[", 1), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(ap_buf_append(&b, "]", 1), 0);
	assert_int_equal(load_bad(b.data, b.len, err, sizeof(err)), -EINVAL);
	/* level 1 is the top mapping, so the 32nd '[' (column 8 + 31) is level 33 */
	assert_non_null(strstr(err, ":3:39: nesting is deeper than 32 levels"));
	ap_buf_clear(&b);
}

static void test_too_large(void **state)
{
	size_t len = AP_CONFIG_MAX_SIZE + 1;
	char *text = malloc(len), err[4096];

	assert_non_null(text);
	memset(text, '#', len);
	memcpy(text, REPO, strlen(REPO));
	text[len - 1] = '\n';
	assert_int_equal(load_bad(text, len, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":1:1: configuration is larger than 1048576 bytes"));

	/* Exactly the limit is fine. */
	len = AP_CONFIG_MAX_SIZE;
	text[len - 1] = '\n';
	{
		char *path = write_file(text, len);
		struct ap_config *c = NULL;

		assert_int_equal(load_captured(path, false, &c, err, sizeof(err)), 0);
		assert_string_equal(err, "");
		ap_config_free(c);
		assert_int_equal(unlink(path), 0);
		free(path);
	}
	free(text);
}

static void test_unreadable(void **state)
{
	struct ap_config *c = NULL;
	char err[4096];
	char *path = ap_strdupf("%s/does-not-exist.yaml", tmpdir);

	assert_non_null(path);
	assert_int_equal(load_captured(path, false, &c, err, sizeof(err)), -ENOENT);
	assert_null(c);
	assert_non_null(strstr(err, "failed to open config '"));
	assert_non_null(strstr(err, "No such file or directory"));
	free(path);

	assert_int_equal(load_captured(tmpdir, false, &c, err, sizeof(err)), -EISDIR);
	assert_non_null(strstr(err, "failed to read config '"));
}

static void test_default_path(void **state)
{
	char *p = NULL;

	env_reset();
	assert_int_equal(ap_config_default_path(AP_SCOPE_SYSTEM, &p), 0);
	assert_string_equal(p, "/etc/autopull/autopull.yaml");
	free(p);
	assert_int_equal(ap_config_default_path(AP_SCOPE_USER, &p), 0);
	assert_string_equal(p, "/home/tester/.config/autopull/autopull.yaml");
	free(p);
	assert_int_equal(setenv("XDG_CONFIG_HOME", "/x/cfg", 1), 0);
	assert_int_equal(ap_config_default_path(AP_SCOPE_USER, &p), 0);
	assert_string_equal(p, "/x/cfg/autopull/autopull.yaml");
	free(p);
	p = NULL;
	assert_int_equal(unsetenv("XDG_CONFIG_HOME"), 0);
	assert_int_equal(unsetenv("HOME"), 0);
	assert_int_equal(ap_config_default_path(AP_SCOPE_USER, &p), -ENXIO);
	assert_null(p);
	assert_int_equal(ap_config_default_path(AP_SCOPE_SYSTEM, &p), 0); /* needs no HOME */
	free(p);
	env_reset();
}

static void test_scope_to_string(void **state)
{
	assert_string_equal(ap_scope_to_string(AP_SCOPE_SYSTEM), "system");
	assert_string_equal(ap_scope_to_string(AP_SCOPE_USER), "user");
}

static void test_free_null(void **state)
{
	ap_config_free(NULL);
	ap_config_free(calloc(1, sizeof(struct ap_config))); /* a partly filled struct */
}

static int group_setup(void **state)
{
	if (!mkdtemp(tmpdir))
		return -1;
	env_reset();
	return 0;
}

static int group_teardown(void **state)
{
	return rmdir(tmpdir);
}

/* Loads text from a file of the given mode; returns the result and the log in err. */
static int load_mode(const char *text, mode_t mode, char *err, size_t size)
{
	struct ap_config *c = NULL;
	char *path = write_file(text, strlen(text));
	int r;

	assert_int_equal(chmod(path, mode), 0);
	r = load_captured(path, false, &c, err, size);
	ap_config_free(c);
	assert_int_equal(unlink(path), 0);
	free(path);
	return r;
}

static void make_file(const char *path, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(close(fd), 0);
	assert_int_equal(chmod(path, mode), 0);
}

/* text loads, but its identity is refused by the check of the verbs that decrypt; the
 * message names what and says said. */
static void assert_identity_refused(const char *text, const char *what, const char *said)
{
	struct ap_config *c = NULL;
	char *path = write_file(text, strlen(text));
	char err[4096];

	assert_int_equal(load_captured_how(path, false, true, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(c);
	ap_config_free(c);
	assert_int_equal(unlink(path), 0);
	free(path);
	assert_non_null(strstr(err, what));
	assert_non_null(strstr(err, said));
}

/* text is refused at load; the message names what and says said. */
static void assert_refused(const char *text, const char *what, const char *said)
{
	char err[4096];

	assert_int_equal(load_mode(text, 0644, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, what));
	assert_non_null(strstr(err, said));
}

static void test_trusted_file_modes(void **state)
{
	_cleanup_free_ char *tok = ap_strdupf("%s/token", tmpdir), *sig = ap_strdupf("%s/signers", tmpdir);
	_cleanup_free_ char *open_dir = ap_strdupf("%s/open", tmpdir), *text = NULL;
	char err[4096];

	(void)state;
	assert_int_equal(load_mode(REPO, 0644, err, sizeof(err)), 0);
	assert_int_equal(load_mode(REPO, 0666, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "the configuration '"));
	assert_non_null(strstr(err, "can be written by others (mode 0666); fix: chmod go-w '"));
	assert_int_equal(load_mode(REPO, 0620, err, sizeof(err)), -EINVAL);

	/* a token others can read is no secret; group read is allowed */
	make_file(tok, 0644);
	text = ap_strdupf(REPO "guard:\n  push: https://m.example/\n  push_token_file: %s\n", tok);
	assert_refused(text, "guard: push_token_file '",
		       "can be read by others (mode 0644); fix: chmod g-w,o-rwx '");
	assert_int_equal(chmod(tok, 0640), 0);
	assert_int_equal(load_mode(text, 0644, err, sizeof(err)), 0);
	free(text);

	/* allowed_signers others can write; a missing one is for trust.c to report */
	make_file(sig, 0666);
	text = ap_strdupf(REPO "trust: {ssh_allowed_signers: %s}\n", sig);
	assert_refused(text, "trust: ssh_allowed_signers '", "(mode 0666); fix: chmod go-w '");
	assert_int_equal(unlink(sig), 0);
	assert_int_equal(load_mode(text, 0644, err, sizeof(err)), 0);
	free(text);

	/* a state directory in a directory anyone can write */
	assert_int_equal(mkdir(open_dir, 0755), 0);
	assert_int_equal(chmod(open_dir, 0777), 0);
	text = ap_strdupf(REPO "state_dir: %s/state\n", open_dir);
	assert_refused(text, "the state directory '", "(mode 0777); fix: chmod go-w '");
	assert_int_equal(chmod(open_dir, 0755), 0);
	assert_int_equal(load_mode(text, 0644, err, sizeof(err)), 0);
	free(text);
	text = NULL;
	assert_int_equal(rmdir(open_dir), 0);
	assert_int_equal(unlink(tok), 0);
}

/* fleet: the client key is a secret; the CA and certificate decide whom the host believes. */
static void test_fleet_file_modes(void **state)
{
	_cleanup_free_ char *key = ap_strdupf("%s/etcd.key", tmpdir), *ca = ap_strdupf("%s/ca", tmpdir);
	_cleanup_free_ char *text = NULL;
	char err[4096];

	(void)state;
	make_file(key, 0644);
	make_file(ca, 0666);
	text = ap_strdupf(FLEET_TLS "  ca_file: %s\n  cert_file: /etc/c.pem\n  key_file: %s\n", ca,
			  key);
	assert_refused(text, "fleet: key_file '", "can be read by others (mode 0644); fix: chmod");
	assert_refused(text, "fleet: ca_file '", "can be written by others (mode 0666); fix: chmod");
	assert_int_equal(chmod(key, 0600), 0);
	assert_int_equal(chmod(ca, 0644), 0);
	assert_int_equal(load_mode(text, 0644, err, sizeof(err)), 0);
	assert_int_equal(unlink(key), 0);
	assert_int_equal(unlink(ca), 0);
}

/* The load never requires the identity: away from the host (autopull plan on a CI runner)
 * there is none, nor may there be, and on the host status and log must work while it is
 * broken. The verbs that decrypt check it (ap_config_check_identity). */
static void test_secrets_identity_elsewhere(void **state)
{
	_cleanup_free_ char *text = ap_strdupf(REPO "files:\n  - {src: e.age, dest: /etc/e, "
					       "decrypt: age}\nsecrets: {identity: %s/none.key}\n",
					       tmpdir);
	char *path = write_file(text, strlen(text));
	struct ap_config *c = NULL;

	(void)state;
	assert_int_equal(ap_config_load_host(path, false, "web1", &c), 0);
	assert_true(c->files[0].decrypt);
	assert_int_equal(ap_config_check_identity(c), -EINVAL);
	ap_config_free(c);
	unlink(path);
	free(path);
}

/* secrets: the age identity must be the user's own and 0600 when a rule decrypts, with the
 * fix in the message; without such a rule it is not looked at. */
static void test_secrets_identity(void **state)
{
	_cleanup_free_ char *key = ap_strdupf("%s/age.key", tmpdir), *text = NULL;
	struct ap_config *c = NULL;
	char err[4096];

	(void)state;
	text = ap_strdupf(REPO "files:\n  - {src: e.age, dest: /etc/e, decrypt: age}\n"
			  "secrets: {identity: %s}\n", key);
	assert_identity_refused(text, "secrets: identity '", "does not exist; fix: age-keygen -o '");
	make_file(key, 0640);
	assert_identity_refused(text, "secrets: identity '", "can be read by others (mode 0640); fix: chmod "
						     "0600 '");
	assert_int_equal(chmod(key, 0600), 0);
	if (geteuid() == 0) { /* root's own file is not enough for another user, nor the reverse */
		assert_int_equal(chown(key, 65534, 65534), 0);
		assert_identity_refused(text, "secrets: identity '", "not by uid 0; fix: chown 0 '");
		assert_int_equal(chown(key, 0, 0), 0);
	}
	assert_int_equal(load_mode(text, 0644, err, sizeof(err)), 0);
	c = load_ok(text, false);
	assert_true(c->files[0].decrypt);
	assert_int_equal(c->files[0].has_mode, false);
	ap_config_free(c);
	assert_int_equal(unlink(key), 0);
	/* the default, and none when no rule decrypts */
	c = load_ok(REPO "files:\n  - {src: e, dest: /etc/e}\n", false);
	assert_null(c->secrets_identity);
	ap_config_free(c);
	free(text);
	text = ap_strdupf(REPO "files:\n  - {src: e.age, dest: /etc/e, decrypt: age}\n");
	if (access("/etc/autopull/age.key", F_OK) < 0)
		assert_identity_refused(text, "secrets: identity '/etc/autopull/age.key' does not exist",
			       "fix");
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_hosts),
		cmocka_unit_test(test_digest),
		cmocka_unit_test(test_defaults_system),
		cmocka_unit_test(test_trust_defaults),
		cmocka_unit_test(test_fleet_defaults),
		cmocka_unit_test(test_fleet_full),
		cmocka_unit_test(test_fleet_host_default),
		cmocka_unit_test(test_defaults_user),
		cmocka_unit_test(test_force_user),
		cmocka_unit_test(test_user_without_home),
		cmocka_unit_test(test_units_normalised),
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_good_values),
		cmocka_unit_test(test_too_deep),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_unreadable),
		cmocka_unit_test(test_default_path),
		cmocka_unit_test(test_scope_to_string),
		cmocka_unit_test(test_free_null),
		cmocka_unit_test(test_trusted_file_modes),
		cmocka_unit_test(test_fleet_file_modes),
		cmocka_unit_test(test_secrets_identity),
		cmocka_unit_test(test_secrets_identity_elsewhere),
	};
	struct CMUnitTest tests[ELEMENTSOF(fixed) + ELEMENTSOF(bad_configs)];
	size_t n = 0;

	/* One cmocka test per bad config, named after its row. */
	for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
		tests[n++] = fixed[i];
	for (size_t i = 0; i < ELEMENTSOF(bad_configs); i++)
		tests[n++] = (struct CMUnitTest){ .name = bad_configs[i].name,
						  .test_func = test_bad_config,
						  .initial_state = &bad_configs[i] };
	return _cmocka_run_group_tests("config", tests, n, group_setup, group_teardown);
}
