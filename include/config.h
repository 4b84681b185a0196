/* The YAML configuration (libyaml is used only by config-walk.c). Strict: unknown keys,
 * duplicate keys, aliases, merge keys, wrong types, bad modes and unsafe paths are errors
 * reported once as "FILE:LINE:COL: message". The loaded config is immutable. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum ap_scope { AP_SCOPE_SYSTEM, AP_SCOPE_USER };
const char *ap_scope_to_string(enum ap_scope s);

#define AP_CONFIG_MAX_SIZE (1024 * 1024)

struct ap_file_rule {
	char *src;       /* repo path; a directory rule ends in '/' */
	char *dest;      /* absolute host path; a directory rule ends in '/' */
	bool has_mode;
	mode_t mode;
	char *owner, *group; /* NULL when not set */
	bool allow_setid; /* allow_setid: true; without it a setuid/setgid mode is refused */
	char **validate; /* argv template, NULL-terminated, or NULL */
	char **reload;   /* units, NULL-terminated, or NULL */
	char **restart;
	bool takeover;   /* may replace an existing file autopull did not install */
	char **hosts;    /* host names or globs this rule is for; NULL: every host */
	bool decrypt;    /* decrypt: age — the repository holds it age-encrypted (secrets.h) */
};

/* A health probe (probe.h runs it): exactly one of exec, http, tcp is set. */
enum ap_probe_kind { AP_PROBE_EXEC, AP_PROBE_HTTP, AP_PROBE_TCP };
struct ap_probe {
	enum ap_probe_kind kind;
	char **exec;       /* argv, exit 0 = healthy */
	char *http;        /* http(s) URL, 2xx = healthy */
	char *tcp;         /* HOST:PORT, a connection = healthy */
	unsigned long long timeout_usec;  /* one attempt; default 5 s */
	unsigned long long interval_usec; /* between attempts; default 1 s */
	unsigned successes;               /* consecutive passes needed; default 1 */
};
#define AP_PROBE_DEFAULT_TIMEOUT_USEC (5ULL * 1000000)
#define AP_PROBE_DEFAULT_INTERVAL_USEC (1ULL * 1000000)
void ap_probe_clear(struct ap_probe *p);

/* health: one entry per unit name or glob, in the order of the file (the first that matches
 * a unit is its probe). */
struct ap_health_rule {
	char *unit;
	struct ap_probe probe;
};

/* argv lists run when an apply fails, rolls back or is refused (NULL: none). */
struct ap_hooks {
	char **on_failure, **on_rollback, **on_refused;
};

struct ap_guard_config {
	char **watch;              /* unit names or globs */
	unsigned max_restarts;     /* default 3 */
	unsigned long long window_usec; /* default 5 min */
	unsigned long long settle_usec; /* default 10 s */
	char *metrics_file;        /* Prometheus text file; NULL: state_dir/metrics.prom */
	/* Where the same samples are POSTed after each heartbeat and apply (NULL: no push),
	 * with optional credentials from files (a bearer token, or "user:password"), a CA
	 * bundle and a total deadline (default 5 s). */
	char *push_url;
	char *push_token_file, *push_basic_auth_file, *push_ca_file;
	unsigned long long push_timeout_usec;
	bool probe; /* guard.probe: the heartbeat runs the watched units' probes too */
};

/* trust: which commits may be applied (trust.c decides; this is only the shape). */
enum ap_trust_require {
	AP_TRUST_EVERY_COMMIT, /* every commit in applied..tip, through all parents (default) */
	AP_TRUST_FIRST_PARENT, /* the first-parent chain only: a signed merge vouches for its branch */
	AP_TRUST_TIP,          /* the tip alone */
};

struct ap_trust_config {
	bool enabled;               /* a trust: mapping is present */
	char *ssh_allowed_signers;  /* OpenSSH allowed_signers file, or NULL */
	char *openpgp_keyring;      /* binary OpenPGP keyring for gpgv, or NULL */
	enum ap_trust_require require;
	char *since;                /* first run: verify since..tip (a full commit id), or NULL: the tip */
	unsigned long long max_date_skew_usec; /* how much older than what it follows a commit
						* may be dated; default 1 day */
};

/* fleet: the hosts of one group take turns through slots kept in etcd (fleet.h). */
struct ap_fleet_config {
	bool enabled;            /* fleet: present */
	char **etcd;             /* endpoints, NULL-terminated */
	char *ca_file, *cert_file, *key_file;
	char *group, *host;      /* host: defaults to the hostname at load time */
	unsigned max_parallel;   /* >= 1 */
	unsigned canary;         /* number of canary hosts (0: none) */
	char **canary_hosts;     /* or NULL; when set, canary = their count and only they go first */
	uint64_t lock_timeout_usec, lease_ttl_usec;
};

struct ap_config {
	char *path;        /* file it was loaded from */
	char digest[65];   /* SHA-256 (hex) of what the loaded configuration depends on */
	char *repo_url;
	char *branch;      /* default "main" */
	char *ssh_key;     /* optional: private key file (ed25519); public key is ssh_key + ".pub" */
	char *known_hosts; /* optional: known_hosts file for ssh:// */
	char *ca_file;     /* optional: CA bundle for https:// */
	bool allow_rewind; /* accept a tip that does not descend from the applied commit */
	bool trust_owner;  /* fetch from a local repository owned by another user */
	unsigned long long connect_timeout_usec; /* default 10 s */
	unsigned long long io_timeout_usec;      /* no byte from the remote for this long; default 60 s */
	enum ap_scope scope;
	char *state_dir;   /* absolute */
	char *unit_dir;    /* absolute */
	char **units;      /* repo dirs holding unit files; each ends in '/' ("" = repo root) */
	struct ap_file_rule *files;
	size_t n_files;
	struct ap_guard_config guard;
	bool takeover_units; /* unit files and drop-ins may replace ones autopull did not install */
	bool drift_revert;   /* drift: revert — put drifted managed files back on each apply tick */
	struct ap_hooks hooks;
	size_t other_host_rules; /* files: rules for other hosts (dropped) */
	struct ap_trust_config trust;
	struct ap_fleet_config fleet;
	struct ap_health_rule *health; /* health: */
	size_t n_health;
	/* secrets: the age identity that decrypts the rules with decrypt: age (default
	 * /etc/autopull/age.key, user scope $XDG_CONFIG_HOME/autopull/age.key). */
	char *secrets_identity;
};

/* Default config path for the scope: /etc/autopull/autopull.yaml or
 * $XDG_CONFIG_HOME/autopull/autopull.yaml (~/.config when unset). */
int ap_config_default_path(enum ap_scope scope, char **ret);

/* Loads and validates path. force_user makes the scope "user" whatever the file says.
 * Per-scope defaults (state_dir, unit_dir) come from the environment (XDG_*, HOME).
 * Errors are logged as FILE:LINE:COL: message; returns -EINVAL (bad content),
 * -errno (cannot read), -ENXIO (user scope without HOME), -ENOMEM. */
int ap_config_load(const char *path, bool force_user, struct ap_config **ret);
/* The same for a given host name (hosts:, %H and %l); ap_config_load uses gethostname(). */
int ap_config_load_host(const char *path, bool force_user, const char *host,
			struct ap_config **ret);
/* The age identity decrypts every secret of the host: only autopull's user may hold it.
 * When a rule has decrypt: age it must exist, be a regular file and be private (0600, ours):
 * 0, or -EINVAL (logged with the fix: the age-keygen or chmod to run). Not part of the load:
 * only the verbs that decrypt need it (context.h AP_CTX_DECRYPTS), so that status, log and
 * pin's reads still work on a host whose key is broken, and autopull plan, away from the
 * host, never has one. */
int ap_config_check_identity(const struct ap_config *c);
void ap_config_free(struct ap_config *c);
static inline void ap_config_freep(struct ap_config **c) { if (*c) ap_config_free(*c); }
