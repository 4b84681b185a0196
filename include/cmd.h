/* The verbs, one file each (src/cmd-<verb>.c), called by main.c with the parsed options and
 * the verb's own arguments (as many as its row in the verb table allows). Layer 3: each
 * returns an exit code (exitcode.h). */
#pragma once
#include "context.h"
#include "util.h"

int ap_cmd_apply(const struct ap_opts *o, char **args);
int ap_cmd_status(const struct ap_opts *o, char **args);
int ap_cmd_log(const struct ap_opts *o, char **args);
int ap_cmd_pin(const struct ap_opts *o, char **args);
int ap_cmd_unpin(const struct ap_opts *o, char **args);
int ap_cmd_diff(const struct ap_opts *o, char **args);
int ap_cmd_check_config(const struct ap_opts *o, char **args);
int ap_cmd_heartbeat(const struct ap_opts *o, char **args);
int ap_cmd_trust(const struct ap_opts *o, char **args);
int ap_cmd_fleet(const struct ap_opts *o, char **args);
int ap_cmd_plan(const struct ap_opts *o, char **args);

/* `, "key": [{"commit", "time", "why"}]` (status and trust skip --json). */
int ap_cmd_json_commits(struct ap_buf *b, const char *key, const struct ap_bad *v, size_t n);
