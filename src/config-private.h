/* What the schema files share (config-schema.c defines it, config-fleet.c uses it too): the
 * value checks and parsers more than one section needs, the macros their tables are written
 * with, and the fleet: section's parser and table. Nothing outside the config module sees
 * this. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "config-walk.h"

/* A key whose value is one checked string, or a list of them (config_parse_seq). */
#define STR(k, st, fld, fl, chk, w) \
	{ .key = k, .type = AP_CONFIG_SCALAR, .parse = config_parse_str, \
	  .offset = offsetof(st, fld), .flags = fl, .check = chk, .why = w }
#define SEQ(k, st, fld, fl, chk, w) \
	{ .key = k, .type = AP_CONFIG_SEQUENCE, .parse = config_parse_seq, \
	  .offset = offsetof(st, fld), .flags = fl, .check = chk, .why = w }
/* An optional key naming a file by its absolute path (a key, a certificate, a CA). */
#define ABS_FILE(k, st, fld) STR(k, st, fld, 0, config_abs_file_ok, "is not an absolute file path")

/* Value checks. */
bool config_abs_file_ok(const char *s);
/* http(s) with a host, and no user:password@ in it. */
bool config_http_url_ok(const char *s);
/* A decimal number from min to max, digits only (no sign, no fraction). */
bool config_number_in(const char *s, unsigned min, unsigned max, unsigned *ret);

/* Parsers: each stores one value at f->offset in base. */
int config_parse_str(struct ap_config_walk *c, struct ap_config_node *n,
		     const struct ap_config_field *f, void *base);
/* A list of checked strings; an explicit [] is an empty vector, not NULL. */
int config_parse_seq(struct ap_config_walk *c, struct ap_config_node *n,
		     const struct ap_config_field *f, void *base);
/* The same checks into *ret, for parsers that store the value themselves. */
int config_number(struct ap_config_walk *c, struct ap_config_node *n,
		  const struct ap_config_field *f, unsigned min, unsigned max, unsigned *ret);
int config_duration(struct ap_config_walk *c, struct ap_config_node *n,
		    const struct ap_config_field *f, unsigned long long *ret);

/* The fleet: section (config-fleet.c): its table, and the parser that walks it into a
 * struct ap_fleet_config and checks what belongs together. */
extern const struct ap_config_schema config_fleet_schema;
int config_parse_fleet(struct ap_config_walk *c, struct ap_config_node *n,
		       const struct ap_config_field *f, void *base);
