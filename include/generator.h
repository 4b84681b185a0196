/* autopull-generator (systemd.generator(7)): writes the sandbox drop-ins of the shipped system
 * units from the system configuration, and check-config's check of the drop-ins in effect. */
#pragma once
#include <stdbool.h>

#define AP_GENERATOR_NAME "autopull-generator"
/* Where PID 1 has the generators write (their "normal" directory). */
#define AP_GENERATOR_DIR "/run/systemd/generator"

/* Whether argv[0] names the generator (a link to the autopull binary). */
bool ap_generator_invoked_as(const char *argv0);

/* main() of `autopull-generator NORMAL-DIR [EARLY-DIR LATE-DIR]`. Writes
 * NORMAL-DIR/UNIT.d/50-autopull-sandbox.conf for both system services from
 * /etc/autopull/autopull.yaml. Exit 0: written, or nothing to do (no configuration, user
 * scope). Exit 1: bad arguments or a configuration error (logged; nothing is written, so
 * the services fail on the same error when they start). Never blocks a boot. */
int ap_generator_main(int argc, char **argv);

/* The sandbox part of check-config: calls report(userdata, message) for every directory cfg
 * needs that the drop-in in effect does not let the shipped units write, each message with
 * the fix, and returns how many. 0 when everything is writable or the check does not apply
 * (user scope, not booted with systemd, shipped units not installed). */
struct ap_config;
int ap_generator_check(const struct ap_config *cfg, void (*report)(void *userdata, const char *msg),
		       void *userdata);
