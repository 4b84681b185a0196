/* What the sandbox of the shipped system units (ProtectSystem=strict) must let autopull write,
 * derived from the configuration, and the drop-in that grants it. Pure: no I/O. The
 * generator (generator.c) writes the drop-in; check-config compares the one in effect. */
#pragma once
#include <stdbool.h>
#include <sys/types.h>

#include "config.h"

enum ap_sandbox_unit { AP_SANDBOX_APPLY, AP_SANDBOX_HEARTBEAT, AP_SANDBOX_N_UNITS };

/* The drop-in's file name in UNIT.d/ of the generator's output directory. */
#define AP_SANDBOX_DROPIN "50-autopull-sandbox.conf"
/* Its size limit when read back. */
#define AP_SANDBOX_DROPIN_MAX (256 * 1024)

/* "infrastructure-auto-pull.service" or "autopull-heartbeat.service". */
const char *ap_sandbox_unit_name(enum ap_sandbox_unit u);

struct ap_sandbox_need {
	char *path;          /* absolute directory the unit writes into */
	char *why;           /* what in the configuration needs it, for messages */
	const char *blocked; /* NULL, or the unit setting that no drop-in can lift for path */
	mode_t mode;         /* mode to create it with when missing */
	const char *owner;   /* borrowed: the owner: of the (first) files rule writing there, or NULL */
};

struct ap_sandbox {
	struct ap_sandbox_need *needs; /* sorted by path, one entry per path */
	size_t n_needs;
	bool setid;   /* a files: rule has allow_setid: true (apply unit only) */
	bool network; /* guard.push or guard.probe is set: the heartbeat POSTs its metrics or
		       * probes services over the network (heartbeat only) */
};

/* Everything unit u writes under configuration c. */
int ap_sandbox_build(const struct ap_config *c, enum ap_sandbox_unit u, struct ap_sandbox *ret);
void ap_sandbox_done(struct ap_sandbox *s);

/* The drop-in text for unit u: a header naming config_path, ExecStartPre=+mkdir lines that
 * create missing directories before the namespace is set up, one ReadWritePaths=-PATH per
 * writable directory (not the blocked ones, nor paths beneath another listed one), with
 * setid CAP_FSETID + RestrictSUIDSGID=no, with network the internet address families and no
 * private network. Paths are quoted and escaped for unit files. */
int ap_sandbox_render(const struct ap_sandbox *s, enum ap_sandbox_unit u, const char *config_path,
		      char **ret);

/* What a rendered drop-in grants: its ReadWritePaths= (unquoted), and in *ret_flags
 * AP_SANDBOX_SETID when it lifts RestrictSUIDSGID=, AP_SANDBOX_NETWORK when it lifts
 * PrivateNetwork=. Lines this module does not write are ignored. -EINVAL on a
 * ReadWritePaths= value it cannot read back. */
enum { AP_SANDBOX_SETID = 1 << 0, AP_SANDBOX_NETWORK = 1 << 1 };
int ap_sandbox_parse(const char *text, char ***ret_paths, unsigned *ret_flags);

/* Whether path is one of granted or beneath one of them. */
bool ap_sandbox_covers(char *const *granted, const char *path);
