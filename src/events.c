/* The event history format (see events.h): format and parse, nothing else. Lines may come
 * from a file an operator edited or a disk that lied, so every field is checked. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "events.h"
#include "log.h"
#include "util.h"

#define VALUE_MAX 4096

static const char *const kind_names[AP_EVENT_MAX] = {
	[AP_EVENT_APPLY] = "apply",   [AP_EVENT_REFUSED] = "refused",
	[AP_EVENT_OVERRIDE] = "override", [AP_EVENT_PIN] = "pin",
	[AP_EVENT_UNPIN] = "unpin",   [AP_EVENT_REVERT] = "revert",
};

const char *ap_event_kind_to_string(enum ap_event_kind k)
{
	return (unsigned)k < AP_EVENT_MAX ? kind_names[k] : "?";
}

void ap_event_clear(struct ap_event *e)
{
	free(e->units);
	free(e->reason);
	*e = (struct ap_event){ 0 };
}

static bool plain(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("._@:,;/+=-", c);
}

static int encode(struct ap_buf *b, const char *s)
{
	int r = 0;
	size_t n = 0;

	if (!s || !*s)
		return ap_buf_append(b, "-", 1);
	for (const char *c = s; r >= 0 && *c && n < VALUE_MAX; c++, n++)
		r = plain(*c) ? ap_buf_append(b, c, 1)
			      : ap_buf_printf(b, "%%%02X", (unsigned)(unsigned char)*c);
	return r;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
		: c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "-" is empty (NULL); %XX decoded; a NUL byte or a bad escape is malformed. */
static int decode(const char *v, char **ret)
{
	struct ap_buf b = { 0 };
	int r = 0;

	*ret = NULL;
	if (strcmp(v, "-") == 0)
		return 0;
	for (const char *c = v; r >= 0 && *c; c++) {
		char ch = *c;

		if (ch == '%') {
			int hi = hexval(c[1]), lo = hi < 0 ? -1 : hexval(c[2]);

			if (lo < 0 || (hi == 0 && lo == 0)) {
				r = -EBADMSG;
				break;
			}
			ch = (char)(hi * 16 + lo);
			c += 2;
		} else if (!plain(ch))
			r = -EBADMSG;
		if (r >= 0)
			r = ap_buf_append(&b, &ch, 1);
	}
	if (r >= 0 && b.len > VALUE_MAX)
		r = -EBADMSG;
	if (r < 0) {
		ap_buf_clear(&b);
		return r;
	}
	*ret = b.data;
	return 0;
}

int ap_event_format(const struct ap_event *e, char **ret)
{
	struct ap_buf b = { 0 };
	int r = ap_buf_printf(&b, "%" PRIu64 " %s from=%s to=%s result=", e->realtime_usec,
			      ap_event_kind_to_string(e->kind), *e->from ? e->from : "-",
			      *e->to ? e->to : "-");

	if (r >= 0)
		r = encode(&b, e->result);
	if (r >= 0)
		r = ap_buf_printf(&b, " ms=%" PRIu64 " trigger=", e->duration_ms);
	if (r >= 0)
		r = encode(&b, e->trigger);
	if (r >= 0)
		r = ap_buf_printf(&b, " units=");
	if (r >= 0)
		r = encode(&b, e->units);
	if (r >= 0)
		r = ap_buf_printf(&b, " reason=");
	if (r >= 0)
		r = encode(&b, e->reason);
	if (r >= 0)
		r = ap_buf_append(&b, "\n", 1);
	if (r < 0) {
		ap_buf_clear(&b);
		return r;
	}
	*ret = b.data;
	return 0;
}

static bool is_oid(const char *s)
{
	if (strlen(s) != AP_OID_HEXSZ)
		return false;
	for (const char *c = s; *c; c++)
		if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
			return false;
	return true;
}

static int parse_oid(const char *v, char ret[AP_OID_HEXSZ + 1])
{
	if (strcmp(v, "-") == 0) {
		ret[0] = '\0';
		return 0;
	}
	if (!is_oid(v))
		return -EBADMSG;
	memcpy(ret, v, AP_OID_HEXSZ + 1);
	return 0;
}

static int parse_word(const char *v, char *ret, size_t size)
{
	_cleanup_free_ char *d = NULL;
	int r = decode(v, &d);

	if (r < 0 || (d && strlen(d) >= size))
		return r < 0 ? r : -EBADMSG;
	snprintf(ret, size, "%s", d ? d : "");
	return 0;
}

static int parse_u64(const char *v, uint64_t *ret)
{
	char *end;

	if (!*v || *v == '-' || *v == '+')
		return -EBADMSG;
	errno = 0;
	*ret = strtoull(v, &end, 10);
	return errno || *end ? -EBADMSG : 0;
}

/* The fields after the time and the kind, in their fixed order. */
static int parse_fields(char *rest, struct ap_event *e)
{
	static const char *const keys[] = { "from", "to", "result", "ms", "trigger", "units",
					    "reason" };
	char *save = NULL, *w = strtok_r(rest, " ", &save);
	int r = 0;

	for (size_t i = 0; r >= 0 && i < ELEMENTSOF(keys); i++, w = strtok_r(NULL, " ", &save)) {
		size_t k = strlen(keys[i]);

		if (!w || strncmp(w, keys[i], k) != 0 || w[k] != '=')
			return -EBADMSG;
		w += k + 1;
		switch (i) {
		case 0: r = parse_oid(w, e->from); break;
		case 1: r = parse_oid(w, e->to); break;
		case 2: r = parse_word(w, e->result, sizeof(e->result)); break;
		case 3: r = parse_u64(w, &e->duration_ms); break;
		case 4: r = parse_word(w, e->trigger, sizeof(e->trigger)); break;
		case 5: r = decode(w, &e->units); break;
		default: r = decode(w, &e->reason); break;
		}
	}
	return r < 0 || w ? -EBADMSG : 0;
}

int ap_event_parse(const char *line, struct ap_event *ret)
{
	_cleanup_free_ char *copy = strndup(line, strcspn(line, "\n"));
	struct ap_event e = { 0 };
	char *sp1, *sp2;
	int r = -EBADMSG;

	if (!copy)
		return -ENOMEM;
	sp1 = strchr(copy, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp2)
		return -EBADMSG;
	*sp1 = *sp2 = '\0';
	for (size_t k = 0; k < AP_EVENT_MAX; k++)
		if (strcmp(sp1 + 1, kind_names[k]) == 0) {
			e.kind = (enum ap_event_kind)k;
			r = 0;
		}
	if (r >= 0)
		r = parse_u64(copy, &e.realtime_usec);
	if (r >= 0)
		r = parse_fields(sp2 + 1, &e);
	if (r < 0) {
		ap_event_clear(&e);
		return r == -ENOMEM ? r : -EBADMSG;
	}
	*ret = e;
	return 0;
}

int ap_event_units(char *const *units, const enum ap_unit_action_kind *actions, size_t n,
		   char **ret)
{
	struct ap_buf b = { 0 };
	int r = 0;

	for (enum ap_unit_action_kind a = AP_ACTION_NONE + 1; r >= 0 &&
	     a <= AP_ACTION_REENABLE; a++) {
		bool first = true;

		for (size_t i = 0; r >= 0 && i < n; i++) {
			if (actions[i] != a)
				continue;
			r = first ? ap_buf_printf(&b, "%s%s=%s", b.len ? ";" : "",
						  ap_unit_action_to_string(a), units[i])
				  : ap_buf_printf(&b, ",%s", units[i]);
			first = false;
		}
	}
	if (r < 0) {
		ap_buf_clear(&b);
		return r;
	}
	*ret = b.data; /* NULL when nothing was appended */
	return 0;
}

/* --- the journal entry ------------------------------------------------------------------ */

struct outcome {
	const char *action, *id;
	int level;
};

static struct outcome outcome_of(const struct ap_event *e)
{
	bool ok = strcmp(e->result, "ok") == 0;

	switch (e->kind) {
	case AP_EVENT_APPLY:
		if (ok)
			return (struct outcome){ "applied", AP_MSGID_APPLIED, AP_LOG_NOTICE };
		if (strcmp(e->result, "rolled-back") == 0)
			return (struct outcome){ "rolled-back", AP_MSGID_ROLLED_BACK,
						 AP_LOG_WARNING };
		if (strcmp(e->result, "rollback-failed") == 0)
			return (struct outcome){ "rollback-failed", AP_MSGID_ROLLED_BACK,
						 AP_LOG_ERR };
		return (struct outcome){ "apply-failed", AP_MSGID_APPLY_FAILED, AP_LOG_ERR };
	case AP_EVENT_REFUSED:
		return (struct outcome){ "refused", AP_MSGID_REFUSED, AP_LOG_WARNING };
	case AP_EVENT_OVERRIDE:
		return (struct outcome){ "override", AP_MSGID_OVERRIDE, AP_LOG_WARNING };
	case AP_EVENT_PIN:
		return (struct outcome){ "pinned", AP_MSGID_PINNED, AP_LOG_NOTICE };
	case AP_EVENT_UNPIN:
		return (struct outcome){ "unpinned", AP_MSGID_UNPINNED, AP_LOG_NOTICE };
	case AP_EVENT_REVERT:
	default:
		return ok ? (struct outcome){ "reverted", AP_MSGID_REVERTED, AP_LOG_NOTICE }
			  : (struct outcome){ "revert-failed", AP_MSGID_REVERTED, AP_LOG_ERR };
	}
}

static char *message_of(const struct ap_event *e, const struct outcome *o)
{
	const char *why = e->reason ? e->reason : "", *sep = e->reason ? ": " : "";
	const char *units = e->units ? e->units : "no unit actions";

	switch (e->kind) {
	case AP_EVENT_APPLY:
		if (strcmp(o->action, "applied") == 0)
			return ap_strdupf("applied %.12s (from %.12s) in %" PRIu64 " ms: %s", e->to,
					  *e->from ? e->from : "nothing", e->duration_ms, units);
		if (strcmp(o->action, "rolled-back") == 0)
			return ap_strdupf("rolled back %.12s to %.12s%s%s", e->to,
					  *e->from ? e->from : "nothing", sep, why);
		return ap_strdupf("apply of %.12s %s%s%s", e->to,
				  strcmp(e->result, "rollback-failed") == 0
				  ? "could not be rolled back"
				  : strcmp(e->result, "restored") == 0 ? "failed, files put back"
								      : "failed",
				  sep, why);
	case AP_EVENT_REFUSED:
		return ap_strdupf("refused %.12s (%s)%s%s", e->to, e->result, sep, why);
	case AP_EVENT_OVERRIDE:
		return ap_strdupf("%s check overridden for %.12s%s%s", e->result, e->to, sep, why);
	case AP_EVENT_PIN:
		return ap_strdupf("pinned at %.12s%s%s", e->to, sep, why);
	case AP_EVENT_UNPIN:
		return ap_strdupf("unpinned%s%.12s%s%s", *e->from ? " from " : "", e->from, sep,
				  why);
	case AP_EVENT_REVERT:
	default:
		return ap_strdupf("%s drifted files to %.12s%s%s",
				  strcmp(o->action, "reverted") == 0 ? "put back"
				  : "failed to put back",
				  e->to, sep, why);
	}
}

static int push_field(char ***v, const char *key, const char *value)
{
	_cleanup_free_ char *f = NULL;

	if (!value || !*value)
		return 0;
	f = ap_strdupf("%s=%s", key, value);
	return f ? ap_strv_push(v, f) : -ENOMEM;
}

int ap_event_unit_names(const char *units, char ***ret)
{
	_cleanup_free_ char *copy = units ? strdup(units) : NULL;
	_cleanup_strv_builder_ struct ap_strv_builder b = { 0 };
	char *save = NULL, *tok;
	int r = 0;

	*ret = NULL;
	if (!units)
		return 0;
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ";,", &save); r >= 0 && tok; tok = strtok_r(NULL, ";,", &save)) {
		const char *eq = strchr(tok, '=');

		r = ap_strv_builder_push(&b, eq ? eq + 1 : tok);
	}
	if (r >= 0)
		*ret = ap_strv_builder_take(&b);
	return r;
}

/* UNIT= and OBJECT_SYSTEMD_[USER_]UNIT= per unit of "restart=a,b;reload=c", the first few. */
static int push_units(char ***v, const char *units, bool user)
{
	_cleanup_strv_free_ char **names = NULL;
	int r = ap_event_unit_names(units, &names);

	for (size_t i = 0; r >= 0 && names && names[i] && i < AP_EVENT_ENTRY_UNITS_MAX; i++) {
		r = push_field(v, "UNIT", names[i]);
		if (r >= 0)
			r = push_field(v, user ? "OBJECT_SYSTEMD_USER_UNIT" : "OBJECT_SYSTEMD_UNIT",
				       names[i]);
	}
	return r;
}

int ap_event_entry(const struct ap_event *e, bool user, struct ap_event_entry *ret)
{
	struct outcome o = outcome_of(e);
	struct ap_event_entry x = { .level = o.level, .message_id = o.id, .message = message_of(e,
		&o) };
	char ms[24];
	int r = x.message ? 0 : -ENOMEM;

	snprintf(ms, sizeof(ms), "%" PRIu64, e->duration_ms);
	if (r >= 0)
		r = push_field(&x.fields, "AUTOPULL_ACTION", o.action);
	if (r >= 0)
		r = push_field(&x.fields, "AUTOPULL_RESULT", e->result);
	if (r >= 0)
		r = push_field(&x.fields, "AUTOPULL_COMMIT", e->to);
	if (r >= 0)
		r = push_field(&x.fields, "AUTOPULL_FROM", e->from);
	if (r >= 0)
		r = push_field(&x.fields, "AUTOPULL_TRIGGER", e->trigger);
	if (r >= 0 && e->kind != AP_EVENT_PIN && e->kind != AP_EVENT_UNPIN)
		r = push_field(&x.fields, "AUTOPULL_DURATION_MS", ms);
	if (r >= 0)
		r = push_field(&x.fields, "AUTOPULL_UNITS", e->units);
	if (r >= 0)
		r = push_field(&x.fields, "AUTOPULL_REASON", e->reason);
	if (r >= 0)
		r = push_units(&x.fields, e->units, user);
	if (r < 0) {
		ap_event_entry_clear(&x);
		return r;
	}
	*ret = x;
	return 0;
}

void ap_event_entry_clear(struct ap_event_entry *x)
{
	free(x->message);
	ap_strv_free(x->fields);
	*x = (struct ap_event_entry){ 0 };
}
