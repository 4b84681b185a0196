/* The YAML walker of the configuration (config-walk.c, the only user of libyaml) and the
 * schema types it walks. A schema is data: one table of fields per mapping, each with the node
 * type it needs and the parser that stores it (config-schema.c). Parsers see nodes only
 * through the calls below, so that libyaml stays in one file; every error they report
 * carries the node's FILE:LINE:COL. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define AP_CONFIG_SHOWN_MAX 64 /* bytes of config text quoted back in an error message */

enum ap_config_type { AP_CONFIG_SCALAR, AP_CONFIG_SEQUENCE, AP_CONFIG_MAPPING };

enum {
	AP_CONFIG_REQUIRED = 1 << 0, /* the key must be present */
	AP_CONFIG_NONEMPTY = 1 << 1, /* a list must have at least one entry */
	AP_CONFIG_EMPTY_OK = 1 << 2, /* "" is a valid string (units: the repo root) */
	AP_CONFIG_OR_LIST = 1 << 3,  /* a scalar field that also takes a list (canary: 2 or [a, b]) */
	AP_CONFIG_UNIQUE = 1 << 4,   /* no entry of a list twice */
};

struct ap_config_node; /* a node of the document (opaque) */
struct ap_config_doc;  /* the walker's own state (opaque) */

/* One walk: the file (for messages), the host the rules are selected for, and the document. */
struct ap_config_walk {
	const char *file;
	const char *host, *short_host; /* for hosts: and %H / %l */
	struct ap_config_doc *doc;
};

struct ap_config_field;
typedef int (*ap_config_parse_fn)(struct ap_config_walk *c, struct ap_config_node *n,
				  const struct ap_config_field *f, void *base);

/* One key of one mapping: the node type it needs, the parser that stores it at offset
 * into the mapping's struct, and for strings (or each string of a list) the check it must
 * pass, with what to say when it does not. */
struct ap_config_field {
	const char *key;
	enum ap_config_type type;
	ap_config_parse_fn parse;
	size_t offset;
	unsigned flags;
	bool (*check)(const char *s);
	const char *why;
	const struct ap_config_schema *sub; /* for mappings and lists of mappings */
};

struct ap_config_schema {
	const char *where;
	const struct ap_config_field *fields;
	size_t n_fields; /* at most 32: duplicate keys are tracked in a bit mask */
};

#define AP_CONFIG_FIELD(base, f, type) ((type *)(void *)((char *)(base) + (f)->offset))

/* Refuses what libyaml's document API cannot tell apart afterwards (anchors, aliases, more
 * than one document, nesting deeper than the walker allows) and syntax errors, before
 * anything is built. -EINVAL, logged with FILE:LINE:COL. */
int ap_config_yaml_check(const char *file, const unsigned char *buf, size_t len);
/* Loads buf as one YAML document and walks its top-level mapping with schema into base;
 * host (and its first label) are what hosts: and %H / %l are matched against. */
int ap_config_yaml_walk(const char *file, const unsigned char *buf, size_t len, const char *host,
			const struct ap_config_schema *schema, void *base);

/* --- for the parsers ------------------------------------------------------------------- */

/* Logs "FILE:LINE:COL: message" at n and returns -EINVAL. */
int ap_config_fail(struct ap_config_walk *c, const struct ap_config_node *n, const char *fmt, ...)
	_printf_(3, 4);
/* The same as a warning, returning nothing. */
void ap_config_warn(struct ap_config_walk *c, const struct ap_config_node *n, const char *fmt, ...)
	_printf_(3, 4);
/* A scalar's text quoted in a message: bounded, control characters replaced. */
const char *ap_config_shown(const struct ap_config_node *n, char buf[static AP_CONFIG_SHOWN_MAX]);
/* The text of scalar n for field f: a value (no NUL, no control characters, not a null word,
 * "" only with AP_CONFIG_EMPTY_OK) that passes f->check. */
int ap_config_str(struct ap_config_walk *c, struct ap_config_node *n,
		  const struct ap_config_field *f, const char **ret);
/* The entries of sequence n: how many, whether entry i is of type t (without taking it), and
 * entry i checked to be of type want (what names it in messages). */
size_t ap_config_seq_len(const struct ap_config_node *n);
/* Whether n is of type t (for an AP_CONFIG_OR_LIST field's parser). */
bool ap_config_is(const struct ap_config_node *n, enum ap_config_type t);
bool ap_config_seq_is(struct ap_config_walk *c, const struct ap_config_node *n, size_t i,
		      enum ap_config_type t);
int ap_config_seq_get(struct ap_config_walk *c, const struct ap_config_node *n, size_t i,
		      enum ap_config_type want, const char *what, struct ap_config_node **ret);
/* The pairs of mapping n whose keys are names, not fields (health:): how many, and pair i,
 * its key checked like field f's value, its value of type want. */
size_t ap_config_map_len(const struct ap_config_node *n);
int ap_config_map_get(struct ap_config_walk *c, const struct ap_config_node *n, size_t i,
		      const struct ap_config_field *f, enum ap_config_type want, const char **ret_key,
		      struct ap_config_node **ret_value);
/* Walks mapping n with schema s into base: unknown, repeated and missing required keys are
 * errors. */
int ap_config_walk_mapping(struct ap_config_walk *c, struct ap_config_node *n,
			   const struct ap_config_schema *s, void *base);
