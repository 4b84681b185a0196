/* The configuration's schema (config-schema.c, the fleet: section in config-fleet.c): the
 * tables config.c has config-walk.c walk a document with into struct ap_config, and the one
 * destructor the schema and the loader share. */
#pragma once
#include "config-walk.h"
#include "config.h"

/* The top-level mapping; its base is a struct ap_config. Rules for other hosts are dropped
 * (counted in other_host_rules). */
extern const struct ap_config_schema ap_config_schema;

/* Frees what a file rule holds (not the rule itself). */
void ap_config_rule_clear(struct ap_file_rule *r);
