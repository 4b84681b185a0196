/* The configuration's YAML walker: the only file that sees libyaml. It refuses what the
 * schema cannot express (anchors, aliases, tags, merge keys, a second document, deep
 * nesting), walks mappings by schema tables (unknown, repeated and missing keys) and gives the
 * parsers checked scalars and sequence entries, every error with FILE:LINE:COL. libyaml's
 * convention (0 and problem/problem_mark) is translated here.
 *
 * Deliberately not here: what the keys are and what values they take (config-schema.c),
 * reading the file and the defaults (config.c). */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config-walk.h"
#include "log.h"
#include "util.h"

#define MAX_DEPTH 32 /* nested mappings and lists; the schema itself needs 4 */

/* The document and which nodes were already visited, so that a node reached twice (an
 * alias) is refused even if the event prescan missed it. */
struct ap_config_doc {
	yaml_document_t *doc;
	bool *seen;
	size_t n_nodes;
};

/* Our node handles are libyaml's nodes: only this file looks inside. */
static yaml_node_t *Y(const struct ap_config_node *n)
{
	return (yaml_node_t *)(void *)n;
}

static struct ap_config_node *N(yaml_node_t *n)
{
	return (struct ap_config_node *)(void *)n;
}

static int vfail_at(const char *file, yaml_mark_t m, const char *fmt, va_list ap) _printf_(3, 0);
static int vfail_at(const char *file, yaml_mark_t m, const char *fmt, va_list ap)
{
	char msg[512];

	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	return ap_log_error(-EINVAL, "%s:%zu:%zu: %s", file, m.line + 1, m.column + 1, msg);
}

static int fail_at(const char *file, yaml_mark_t m, const char *fmt, ...) _printf_(3, 4);
static int fail_at(const char *file, yaml_mark_t m, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vfail_at(file, m, fmt, ap);
	va_end(ap);
	return r;
}

int ap_config_fail(struct ap_config_walk *c, const struct ap_config_node *n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vfail_at(c->file, Y(n)->start_mark, fmt, ap);
	va_end(ap);
	return r;
}

void ap_config_warn(struct ap_config_walk *c, const struct ap_config_node *n, const char *fmt, ...)
{
	yaml_mark_t m = Y(n)->start_mark;
	_cleanup_free_ char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	msg = ap_strdupvf(fmt, ap);
	va_end(ap);
	ap_log_warning("%s:%zu:%zu: %s", c->file, m.line + 1, m.column + 1, msg ? msg : fmt);
}

#define fail(c, n, ...) fail_at((c)->file, (n)->start_mark, __VA_ARGS__)

/* Config text quoted in a message: bounded and without control characters, so that a
 * hostile key cannot forge extra log lines. */
const char *ap_config_shown(const struct ap_config_node *node, char buf[static AP_CONFIG_SHOWN_MAX])
{
	const yaml_node_t *n = Y(node);
	const unsigned char *s = n->data.scalar.value;
	size_t len = n->data.scalar.length, k = 0;

	for (size_t i = 0; i < len && k < AP_CONFIG_SHOWN_MAX - 4; i++)
		buf[k++] = (s[i] < 0x20 || s[i] == 0x7f) ? '?' : (char)s[i];
	if (k < len)
		k += (size_t)snprintf(buf + k, AP_CONFIG_SHOWN_MAX - k, "...");
	buf[k] = '\0';
	return buf;
}
#define shown(n, buf) ap_config_shown(N(n), buf)

static const char *type_name(yaml_node_type_t t)
{
	switch (t) {
	case YAML_SCALAR_NODE:
		return "string";
	case YAML_SEQUENCE_NODE:
		return "list";
	case YAML_MAPPING_NODE:
		return "mapping";
	default:
		return "nothing";
	}
}

static yaml_node_type_t yaml_type(enum ap_config_type t)
{
	switch (t) {
	case AP_CONFIG_SCALAR:
		return YAML_SCALAR_NODE;
	case AP_CONFIG_SEQUENCE:
		return YAML_SEQUENCE_NODE;
	case AP_CONFIG_MAPPING:
		return YAML_MAPPING_NODE;
	}
	return YAML_NO_NODE;
}

/* Only the default tags (also when spelled out as !!str, !!seq, !!map): any other tag would
 * ask for a type conversion that this loader does not do. */
static bool tag_is_default(const yaml_node_t *n)
{
	static const char *const tags[] = {
		[YAML_SCALAR_NODE] = YAML_DEFAULT_SCALAR_TAG,
		[YAML_SEQUENCE_NODE] = YAML_DEFAULT_SEQUENCE_TAG,
		[YAML_MAPPING_NODE] = YAML_DEFAULT_MAPPING_TAG,
	};

	return n->tag && (unsigned)n->type < ELEMENTSOF(tags) && tags[n->type] &&
	       strcmp((const char *)n->tag, tags[n->type]) == 0;
}

static int node_get(struct ap_config_walk *c, int id, yaml_node_type_t want, const char *what,
		    yaml_node_t **ret)
{
	struct ap_config_doc *d = c->doc;
	yaml_node_t *n = yaml_document_get_node(d->doc, id);

	if (!n || (size_t)id > d->n_nodes)
		return ap_log_error(-EINVAL, "%s: malformed YAML document", c->file);
	if (d->seen[id - 1])
		return fail(c, n, "%s: aliases are not allowed", what);
	d->seen[id - 1] = true;
	if (n->type != want)
		return fail(c, n, "%s: expected a %s, found a %s", what, type_name(want),
			    type_name(n->type));
	if (!tag_is_default(n))
		return fail(c, n, "%s: tag '%.64s' is not allowed", what, (const char *)n->tag);
	*ret = n;
	return 0;
}

/* YAML reads an unquoted ~ or null as "no value"; accepting them as the strings "~" and
 * "null" would be a surprise. */
static bool is_null_word(const yaml_node_t *n)
{
	static const char *const words[] = { "~", "null", "Null", "NULL" };
	const char *s = (const char *)n->data.scalar.value;

	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	for (size_t i = 0; i < ELEMENTSOF(words); i++)
		if (strcmp(s, words[i]) == 0)
			return true;
	return false;
}

/* The text of a scalar that must hold a value: no NUL (which would silently cut the string)
 * and no control characters. */
static int scalar_str(struct ap_config_walk *c, yaml_node_t *n, const char *key, bool empty_ok,
		      const char **ret)
{
	const unsigned char *s = n->data.scalar.value;
	size_t len = n->data.scalar.length;

	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] == 0x7f)
			return fail(c, n, "%s: control characters are not allowed", key);
	if (len == 0 ? !empty_ok : is_null_word(n))
		return fail(c, n, "%s: missing value", key);
	*ret = (const char *)s;
	return 0;
}

int ap_config_str(struct ap_config_walk *c, struct ap_config_node *node,
		  const struct ap_config_field *f, const char **ret)
{
	yaml_node_t *n = Y(node);
	char buf[AP_CONFIG_SHOWN_MAX];
	const char *s = NULL;
	int r;

	r = scalar_str(c, n, f->key, f->flags & AP_CONFIG_EMPTY_OK, &s);
	if (r < 0)
		return r;
	if (f->check && !f->check(s))
		return fail(c, n, "%s: '%s' %s", f->key, shown(n, buf), f->why);
	*ret = s;
	return 0;
}

bool ap_config_is(const struct ap_config_node *n, enum ap_config_type t)
{
	return Y(n)->type == yaml_type(t);
}

size_t ap_config_seq_len(const struct ap_config_node *n)
{
	return (size_t)(Y(n)->data.sequence.items.top - Y(n)->data.sequence.items.start);
}

bool ap_config_seq_is(struct ap_config_walk *c, const struct ap_config_node *n, size_t i,
		      enum ap_config_type t)
{
	yaml_node_t *e = yaml_document_get_node(c->doc->doc, Y(n)->data.sequence.items.start[i]);

	return e && e->type == yaml_type(t);
}

int ap_config_seq_get(struct ap_config_walk *c, const struct ap_config_node *n, size_t i,
		      enum ap_config_type want, const char *what, struct ap_config_node **ret)
{
	yaml_node_t *e;
	int r = node_get(c, Y(n)->data.sequence.items.start[i], yaml_type(want), what, &e);

	if (r >= 0)
		*ret = N(e);
	return r;
}

size_t ap_config_map_len(const struct ap_config_node *n)
{
	return (size_t)(Y(n)->data.mapping.pairs.top - Y(n)->data.mapping.pairs.start);
}

int ap_config_map_get(struct ap_config_walk *c, const struct ap_config_node *n, size_t i,
		      const struct ap_config_field *f, enum ap_config_type want, const char **ret_key,
		      struct ap_config_node **ret_value)
{
	const yaml_node_pair_t *p = &Y(n)->data.mapping.pairs.start[i];
	yaml_node_t *k, *v;
	int r = node_get(c, p->key, YAML_SCALAR_NODE, f->key, &k);

	if (r >= 0)
		r = ap_config_str(c, N(k), f, ret_key);
	if (r >= 0)
		r = node_get(c, p->value, yaml_type(want), *ret_key, &v);
	if (r >= 0)
		*ret_value = N(v);
	return r;
}

static const struct ap_config_field *field_find(const struct ap_config_schema *s,
						const yaml_node_t *k)
{
	for (size_t i = 0; i < s->n_fields; i++)
		if (strlen(s->fields[i].key) == k->data.scalar.length &&
		    memcmp(s->fields[i].key, k->data.scalar.value, k->data.scalar.length) == 0)
			return &s->fields[i];
	return NULL;
}

/* One key/value pair: libyaml keeps unknown and repeated keys (and "<<"), so refusing them
 * is ours to do. */
static int walk_pair(struct ap_config_walk *c, const yaml_node_pair_t *p,
		     const struct ap_config_schema *s, uint32_t *found, void *base)
{
	char buf[AP_CONFIG_SHOWN_MAX];
	const struct ap_config_field *f;
	yaml_node_t *k, *v;
	yaml_node_type_t want;
	uint32_t bit;
	int r;

	r = node_get(c, p->key, YAML_SCALAR_NODE, "mapping key", &k);
	if (r < 0)
		return r;
	f = field_find(s, k);
	if (!f)
		return fail(c, k, "unknown key '%s' in %s", shown(k, buf), s->where);
	bit = UINT32_C(1) << (f - s->fields);
	if (*found & bit)
		return fail(c, k, "duplicate key '%s' in %s", f->key, s->where);
	*found |= bit;
	want = yaml_type(f->type);
	v = yaml_document_get_node(c->doc->doc, p->value);
	if ((f->flags & AP_CONFIG_OR_LIST) && v && v->type == YAML_SEQUENCE_NODE)
		want = YAML_SEQUENCE_NODE;
	r = node_get(c, p->value, want, f->key, &v);
	if (r < 0)
		return r;
	return f->parse(c, N(v), f, base);
}

int ap_config_walk_mapping(struct ap_config_walk *c, struct ap_config_node *node,
			   const struct ap_config_schema *s, void *base)
{
	yaml_node_t *map = Y(node);
	uint32_t found = 0;
	int r;

	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		r = walk_pair(c, p, s, &found, base);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < s->n_fields; i++)
		if ((s->fields[i].flags & AP_CONFIG_REQUIRED) && !(found & (UINT32_C(1) << i)))
			return fail(c, map, "missing required key '%s' in %s", s->fields[i].key,
				    s->where);
	return 0;
}

/* Reader errors (bad UTF-8, control characters) carry a byte offset, not a mark. */
static yaml_mark_t mark_of_offset(const unsigned char *buf, size_t len, size_t offset)
{
	yaml_mark_t m = { 0 };

	for (size_t i = 0; i < offset && i < len; i++) {
		m.column++;
		if (buf[i] == '\n') {
			m.line++;
			m.column = 0;
		}
	}
	return m;
}

static int syntax_error(const char *file, const yaml_parser_t *p, const unsigned char *buf,
			size_t len)
{
	yaml_mark_t m = p->problem_mark;

	if (p->error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	if (p->error == YAML_READER_ERROR)
		m = mark_of_offset(buf, len, p->problem_offset);
	if (p->context)
		return fail_at(file, m, "%s (%s)", p->problem, p->context);
	return fail_at(file, m, "%s", p->problem ? p->problem : "invalid YAML");
}

/* What the document API cannot tell: anchors (it resolves them away), the nesting depth
 * (checked before anything is built) and a second document. */
static int check_event(const char *file, const yaml_event_t *e, unsigned *depth, unsigned *docs)
{
	const yaml_char_t *anchor = NULL;

	switch (e->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++*docs > 1)
			return fail_at(file, e->start_mark, "multiple documents are not allowed");
		return 0;
	case YAML_ALIAS_EVENT:
		return fail_at(file, e->start_mark, "aliases are not allowed");
	case YAML_SCALAR_EVENT:
		anchor = e->data.scalar.anchor;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = e->data.sequence_start.anchor;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = e->data.mapping_start.anchor;
		break;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		--*depth;
		return 0;
	default:
		return 0;
	}
	if (anchor)
		return fail_at(file, e->start_mark, "anchors are not allowed");
	if (e->type != YAML_SCALAR_EVENT && ++*depth > MAX_DEPTH)
		return fail_at(file, e->start_mark, "nesting is deeper than %d levels", MAX_DEPTH);
	return 0;
}

int ap_config_yaml_check(const char *file, const unsigned char *buf, size_t len)
{
	unsigned depth = 0, docs = 0;
	yaml_parser_t p;
	bool done = false;
	int r = 0;

	if (!yaml_parser_initialize(&p))
		return -ENOMEM;
	yaml_parser_set_input_string(&p, buf, len);
	while (r >= 0 && !done) {
		yaml_event_t e;

		if (!yaml_parser_parse(&p, &e)) {
			r = syntax_error(file, &p, buf, len);
			break;
		}
		r = check_event(file, &e, &depth, &docs);
		done = e.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&e);
	}
	yaml_parser_delete(&p);
	if (r >= 0 && docs == 0)
		r = fail_at(file, (yaml_mark_t){ 0 }, "empty configuration (repo.url is required)");
	return r;
}

static int walk_document(const char *file, yaml_document_t *doc, const char *host,
			 const char *short_host, const struct ap_config_schema *schema, void *base)
{
	struct ap_config_doc d = { .doc = doc };
	struct ap_config_walk c = { .file = file, .host = host, .short_host = short_host,
				    .doc = &d };
	yaml_node_t *root = yaml_document_get_root_node(doc);
	int r;

	if (!root || (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0))
		return fail_at(file, (yaml_mark_t){ 0 },
			       "empty configuration (repo.url is required)");
	d.n_nodes = (size_t)(doc->nodes.top - doc->nodes.start);
	d.seen = calloc(d.n_nodes, sizeof(bool));
	if (!d.seen)
		return -ENOMEM;
	r = node_get(&c, 1, YAML_MAPPING_NODE, "top level", &root);
	if (r >= 0)
		r = ap_config_walk_mapping(&c, N(root), schema, base);
	free(d.seen);
	return r;
}

int ap_config_yaml_walk(const char *file, const unsigned char *buf, size_t len, const char *host,
			const struct ap_config_schema *schema, void *base)
{
	char short_host[256];
	yaml_document_t doc;
	yaml_parser_t p;
	int r;

	if (!yaml_parser_initialize(&p))
		return -ENOMEM;
	yaml_parser_set_input_string(&p, buf, len);
	if (!yaml_parser_load(&p, &doc)) {
		r = syntax_error(file, &p, buf, len);
		yaml_parser_delete(&p);
		return r;
	}
	snprintf(short_host, sizeof(short_host), "%.*s", (int)strcspn(host, "."), host);
	r = walk_document(file, &doc, host, short_host, schema, base);
	yaml_document_delete(&doc);
	yaml_parser_delete(&p);
	return r;
}

