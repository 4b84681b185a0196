/* Plain data exchanged between the layer-1 modules through the engine: tree changes
 * (from repo), the plan (from plan), unit states (from bus). No behaviour beyond freeing. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AP_OID_HEXSZ 40
#define AP_MAX_BLOB_SIZE (16u * 1024 * 1024) /* largest file autopull installs */
#define AP_MAX_CHANGES 100000                /* largest number of changed paths in one diff */

/* git file modes as they appear in trees */
#define AP_GIT_MODE_BLOB 0100644u
#define AP_GIT_MODE_EXEC 0100755u
#define AP_GIT_MODE_LINK 0120000u
#define AP_GIT_MODE_GITLINK 0160000u

enum ap_change_kind {
	AP_CHANGE_ADD,
	AP_CHANGE_MODIFY, /* content changed (mode may have changed too) */
	AP_CHANGE_DELETE,
	AP_CHANGE_MODE,   /* only the mode changed, same blob */
	AP_CHANGE_RENAME, /* exact rename: same blob id, old path gone, new path added */
	AP_CHANGE_TYPE,   /* blob <-> symlink/gitlink */
};

/* One changed path between two trees. For DELETE only the old_* fields are set, for
 * ADD only the new_* fields. Paths are repository paths without a leading slash. */
struct ap_change {
	enum ap_change_kind kind;
	char *path;     /* new path; for DELETE the deleted path */
	char *old_path; /* RENAME only */
	uint32_t old_mode, new_mode; /* 0 when absent */
	char old_oid[AP_OID_HEXSZ + 1], new_oid[AP_OID_HEXSZ + 1]; /* "" when absent */
	/* Blob contents, filled by the engine for mapped paths (NULL when absent). */
	char *old_data, *new_data;
	size_t old_len, new_len;
};

struct ap_changes {
	struct ap_change *v;
	size_t n;
};

void ap_changes_clear(struct ap_changes *c);
const char *ap_change_kind_to_string(enum ap_change_kind k); /* add modify delete mode rename type */

/* --- unit states, read from the manager ---------------------------------------- */
struct ap_unit_state {
	char *name;
	char *load_state, *active_state, *sub_state; /* never NULL once filled */
	/* What the manager refuses to do by request (RefuseManualStart=, RefuseManualStop=),
	 * and whether it can reload: false when not read (ap_bus_read_refusals). */
	bool refuse_start, refuse_stop, can_reload;
	/* The unit's own X-AutoPull-OnChange= at the target commit, an enum ap_onchange
	 * (unitfile.h); 0 (restart) when its file is not autopull's (ap_unitpolicy_read). */
	int onchange;
};
struct ap_unit_states {
	struct ap_unit_state *v;
	size_t n;
	bool known; /* false: no bus was reachable, every state is unknown */
	/* The unit running this autopull (ap_bus_own_unit), or NULL: restarting it from inside
	 * would kill the apply half-way, so the plan leaves it to its next run. */
	char *self;
};
void ap_unit_states_clear(struct ap_unit_states *s);
const struct ap_unit_state *ap_unit_states_find(const struct ap_unit_states *s, const char *name);

/* --- the plan -------------------------------------------------------------------- */
enum ap_file_kind { AP_KIND_UNIT, AP_KIND_DROPIN, AP_KIND_FILE };
const char *ap_file_kind_to_string(enum ap_file_kind k); /* unit dropin file */

struct ap_file_op {
	enum ap_change_kind change;
	enum ap_file_kind kind;
	char *path, *old_path;  /* repo paths; old_path for renames */
	char *dest, *old_dest;  /* host paths; old_dest for renames (removed) */
	/* dest[0..root_len) is the configured directory dest is resolved beneath ("" = "/"). */
	size_t root_len, old_root_len;
	bool install;           /* write new content to dest */
	bool takeover;          /* may replace a file autopull did not install (kept in adopted/) */
	bool remove;            /* remove dest (delete) or old_dest (rename) */
	mode_t mode;            /* permission bits to install with */
	char *owner, *group;    /* NULL: the running user */
	char **validate;        /* argv template with "%s", or NULL */
	const struct ap_change *change_ref; /* borrowed: content lives in the changes */
	char *unit;             /* unit the file belongs to (unit and drop-in kinds) */
	bool secret;            /* decrypt: age — its content is shown nowhere (secrets.h) */
};

enum ap_unit_action_kind {
	AP_ACTION_NONE,
	AP_ACTION_RESTART,      /* try-restart: only if active */
	AP_ACTION_RELOAD,       /* reload-or-try-restart: only if active */
	AP_ACTION_START,
	AP_ACTION_STOP,
	AP_ACTION_ENABLE_START,
	AP_ACTION_DISABLE_STOP,
	AP_ACTION_REENABLE,     /* [Install] changed only: disable and enable again, no restart */
};
const char *ap_unit_action_to_string(enum ap_unit_action_kind a);
/* Parses an action name as printed by ap_unit_action_to_string. */
int ap_unit_action_from_string(const char *s, enum ap_unit_action_kind *ret);
/* Higher wins when several changes ask for different actions on one unit. */
int ap_unit_action_rank(enum ap_unit_action_kind a);

struct ap_unit_action {
	char *unit;
	enum ap_unit_action_kind action;
	bool if_active;   /* the state was unknown: the action happens only if the unit is active */
	char *state;      /* ActiveState seen when planning, or NULL when unknown */
	char *note;       /* why this action (e.g. "inactive: the next start uses it"), or NULL */
	char **reasons;   /* repo paths that caused it */
	bool owed;        /* carried over from the journal of an unfinished apply */
};

/* What a tmpfiles.d or sysusers.d file asks for once it is installed (after the files, before
 * any unit is enabled, reloaded or started): the users first, then the directories. */
enum ap_setup_kind {
	AP_SETUP_SYSUSERS,        /* systemd-sysusers FILE (system scope) */
	AP_SETUP_TMPFILES_CREATE, /* systemd-tmpfiles [--user] --create FILE */
	AP_SETUP_NONE,            /* a removed file: shown with why nothing runs */
};
const char *ap_setup_kind_to_string(enum ap_setup_kind k); /* sysusers tmpfiles-create none */

struct ap_setup_action {
	enum ap_setup_kind kind;
	char *file;       /* host path of the installed (or removed) file */
	char *reason;     /* the repository path that caused it */
	const char *note; /* static text, or NULL */
};

struct ap_plan {
	char from[AP_OID_HEXSZ + 1]; /* "" on first run */
	char to[AP_OID_HEXSZ + 1];
	struct ap_file_op *files;
	size_t n_files;
	bool daemon_reload;
	struct ap_unit_action *units;
	size_t n_units;
	char **unmapped;
	struct ap_setup_action *setup; /* sysusers first, then tmpfiles (ap_plan_build) */
	size_t n_setup;
};
void ap_plan_free(struct ap_plan *p);
static inline void ap_plan_freep(struct ap_plan **p) { if (*p) ap_plan_free(*p); }

/* --- jobs of the service manager ----------------------------------------------------- */
enum ap_job_kind {
	AP_JOB_START,
	AP_JOB_STOP,
	AP_JOB_TRY_RESTART,
	AP_JOB_RELOAD_OR_TRY_RESTART,
	AP_JOB_RESTART, /* also starts a stopped unit: only for a rollback's units */
	AP_JOB_RUN,     /* a transient oneshot service named unit runs argv (StartTransientUnit) */
};
const char *ap_job_kind_to_string(enum ap_job_kind k);

struct ap_job {
	const char *unit;       /* borrowed */
	enum ap_job_kind kind;
	char *const *argv;      /* AP_JOB_RUN: the command, borrowed */
	/* results */
	int error;              /* 0 when the job finished "done" (or needed no job) */
	char result[32];        /* job result ("done", "failed", …) or the D-Bus error name tail */
};

/* --- a host file as it was (backups, adopted originals) -------------------------------- */
struct ap_host_file {
	char *path;       /* absolute host path */
	size_t root_len;  /* path[0..root_len) is the configured directory it lies beneath */
	bool present;     /* false: the path did not exist */
	mode_t mode;      /* permission bits (present only) */
	uid_t uid;
	gid_t gid;
	bool owned;       /* autopull had installed it (listed in the inventory) */
	bool dir;         /* a directory that did not exist (created by the apply) */
	char *data;       /* bytes, when loaded */
	size_t len;
	unsigned id;      /* the number of its copy in a backup set */
};
void ap_host_file_clear(struct ap_host_file *f);
