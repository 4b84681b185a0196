/* Unit properties over D-Bus, for the settle loop, the guard and the heartbeat: one GetAll
 * per interface (Unit, and Service or Timer), read through a table of the properties
 * autopull uses into struct ap_unit_props. The connection is bus.c's. It deliberately
 * changes nothing in the manager and judges no unit: what a property means for a deploy is
 * the heartbeat's and the guard's business. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "bus-private.h"
#include "bus.h"
#include "log.h"
#include "util.h"

#define SD_UNIT SD_DEST ".Unit"
#define SD_SERVICE SD_DEST ".Service"
#define SD_TIMER SD_DEST ".Timer"

struct unit_prop {
	const char *iface, *name;
	char type;          /* D-Bus type; 'y' stands for "ay" (InvocationID), 'a' for "a(stt)" */
	size_t offset;      /* into struct ap_unit_props */
};

#define PROP(iface, name, type, field) \
	{ iface, name, type, offsetof(struct ap_unit_props, field) }
static const struct unit_prop unit_props[] = {
	PROP(SD_UNIT, "LoadState", 's', load_state),
	PROP(SD_UNIT, "ActiveState", 's', active_state),
	PROP(SD_UNIT, "SubState", 's', sub_state),
	PROP(SD_UNIT, "InvocationID", 'y', invocation_id),
	PROP(SD_UNIT, "NeedDaemonReload", 'b', need_daemon_reload),
	PROP(SD_UNIT, "RefuseManualStart", 'b', refuse_manual_start),
	PROP(SD_UNIT, "RefuseManualStop", 'b', refuse_manual_stop),
	PROP(SD_UNIT, "CanReload", 'b', can_reload),
	PROP(SD_UNIT, "ActiveEnterTimestampMonotonic", 't', active_enter_monotonic),
	PROP(SD_UNIT, "InactiveEnterTimestampMonotonic", 't', inactive_enter_monotonic),
	PROP(SD_UNIT, "ActiveEnterTimestamp", 't', active_enter_realtime),
	PROP(SD_SERVICE, "Result", 's', result),
	PROP(SD_SERVICE, "NRestarts", 'u', n_restarts),
	PROP(SD_SERVICE, "ExecMainStatus", 'i', exec_main_status),
	PROP(SD_TIMER, "Result", 's', result),
	PROP(SD_TIMER, "LastTriggerUSec", 't', last_trigger_usec),
	PROP(SD_TIMER, "NextElapseUSecMonotonic", 't', next_elapse_monotonic),
	PROP(SD_TIMER, "NextElapseUSecRealtime", 't', next_elapse_realtime),
	PROP(SD_TIMER, "TimersMonotonic", 'a', timer_interval_usec),
};
#undef PROP

/* The readers below take a reply positioned inside the property's variant. */

/* InvocationID is 16 bytes, or none when the unit never ran; as 32 hex digits or "". */
static int read_invocation_id(sd_bus_message *m, char **ret)
{
	const void *data;
	const uint8_t *id;
	size_t n;
	char *hex;
	int r = sd_bus_message_read_array(m, 'y', &data, &n);

	if (r < 0)
		return r;
	id = data;
	if (n != 0 && n != 16)
		return -EBADMSG;
	hex = malloc(2 * n + 1);
	if (!hex)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", id[i]);
	hex[2 * n] = '\0';
	free(*ret);
	*ret = hex;
	return 0;
}

/* TimersMonotonic a(stt): (base, value, next elapse). The repeating bases tell the
 * interval a heartbeat can expect between triggers. */
static int read_timer_interval(sd_bus_message *m, unsigned long long *ret)
{
	unsigned long long best = 0;
	const char *base;
	uint64_t value, next;
	int r = sd_bus_message_enter_container(m, 'a', "(stt)");

	while (r >= 0 && (r = sd_bus_message_read(m, "(stt)", &base, &value, &next)) > 0)
		if ((strcmp(base, "OnUnitActiveUSec") == 0 || strcmp(base,
								     "OnUnitInactiveUSec") == 0) &&
		    value > best)
			best = value;
	if (r < 0)
		return r;
	*ret = best;
	return sd_bus_message_exit_container(m);
}

/* Reads into a D-Bus-sized local first: the struct fields are plain C types. */
static int read_value(sd_bus_message *m, const struct unit_prop *p, void *field)
{
	union {
		int b;
		uint32_t u;
		int32_t i;
		uint64_t t;
		const char *s;
	} v = { 0 };
	int r;

	if (p->type == 'y')
		return read_invocation_id(m, (char **)field);
	if (p->type == 'a')
		return read_timer_interval(m, (unsigned long long *)field);
	r = sd_bus_message_read_basic(m, p->type, &v);
	if (r < 0)
		return r;
	switch (p->type) {
	case 's':
		free(*(char **)field);
		*(char **)field = strdup(v.s);
		return *(char **)field ? 0 : -ENOMEM;
	case 'b': *(bool *)field = v.b; break;
	case 'u': *(unsigned *)field = v.u; break;
	case 'i': *(int *)field = v.i; break;
	case 't': *(unsigned long long *)field = v.t; break;
	default: return -EINVAL;
	}
	return 0;
}

static const struct unit_prop *find_prop(const char *iface, const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(unit_props); i++)
		if (strcmp(unit_props[i].iface, iface) == 0 && strcmp(unit_props[i].name,
								      name) == 0)
			return &unit_props[i];
	return NULL;
}

static const char *variant_signature(char type, char buf[2])
{
	buf[0] = type;
	buf[1] = '\0';
	return type == 'y' ? "ay" : type == 'a' ? "a(stt)" : buf;
}

/* One GetAll per interface instead of one Get per property: the heartbeat and the settle
 * loop read many units often. */
static int read_interface(struct ap_bus *b, const char *path, const char *iface,
                          sd_bus_error *error, struct ap_unit_props *props)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	const char *name;
	char sig[2];
	int r;

	r = sd_bus_call_method(b->bus, SD_DEST, path, "org.freedesktop.DBus.Properties", "GetAll",
	                       error, &reply, "s", iface);
	if (r >= 0)
		r = sd_bus_message_enter_container(reply, 'a', "{sv}");
	while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
		const struct unit_prop *p;

		r = sd_bus_message_read_basic(reply, 's', &name);
		p = r >= 0 ? find_prop(iface, name) : NULL;
		if (r >= 0 && !p)
			r = sd_bus_message_skip(reply, "v");
		else if (r >= 0) {
			r = sd_bus_message_enter_container(reply, 'v', variant_signature(p->type,
											 sig));
			if (r >= 0)
				r = read_value(reply, p, (char *)props + p->offset);
			if (r >= 0)
				r = sd_bus_message_exit_container(reply);
		}
		if (r >= 0)
			r = sd_bus_message_exit_container(reply);
	}
	return r < 0 ? r : 0;
}

int ap_bus_get_unit_props(struct ap_bus *b, const char *unit, struct ap_unit_props *ret)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	_cleanup_(ap_unit_props_clear) struct ap_unit_props props = { 0 };
	_cleanup_free_ char *path = NULL;
	const char *ifaces[] = { SD_UNIT, ap_endswith(unit, ".service") ? SD_SERVICE
					  : ap_endswith(unit, ".timer") ? SD_TIMER : NULL };
	int r;

	r = sd_bus_path_encode(SD_PATH "/unit", unit, &path);
	for (size_t i = 0; r >= 0 && i < ELEMENTSOF(ifaces) && ifaces[i]; i++)
		r = read_interface(b, path, ifaces[i], &error, &props);
	if (r < 0)
		return ap_log_error(r, "failed to read the properties of unit '%s': %s", unit,
		                    bus_error_message(&error, r));
	/* Units that never ran have no strings for some properties; callers get "". */
	char **strs[] = { &props.load_state, &props.active_state, &props.sub_state };
	for (size_t i = 0; i < ELEMENTSOF(strs); i++)
		if (!*strs[i] && !(*strs[i] = strdup("")))
			return -ENOMEM;
	*ret = props;
	props = (struct ap_unit_props){ 0 };
	return 0;
}

int ap_bus_unit_triggers(struct ap_bus *b, const char *unit, char ***ret)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	_cleanup_free_ char *path = NULL;
	char **v = NULL;
	int r = sd_bus_path_encode(SD_PATH "/unit", unit, &path);

	if (r >= 0)
		r = sd_bus_get_property_strv(b->bus, SD_DEST, path, SD_UNIT, "Triggers", &error,
					     &v);
	if (r < 0)
		return ap_log_error(r, "failed to read what unit '%s' triggers: %s", unit,
		                    bus_error_message(&error, r));
	*ret = v;
	return 0;
}

int ap_bus_read_refusals(struct ap_bus *b, struct ap_unit_states *s)
{
	for (size_t i = 0; i < s->n; i++) {
		struct ap_unit_props p = { 0 };
		int r = ap_bus_get_unit_props(b, s->v[i].name, &p);

		if (r < 0)
			return r;
		s->v[i].refuse_start = p.refuse_manual_start;
		s->v[i].refuse_stop = p.refuse_manual_stop;
		s->v[i].can_reload = p.can_reload;
		ap_unit_props_clear(&p);
	}
	return 0;
}

void ap_unit_props_clear(struct ap_unit_props *p)
{
	free(p->load_state);
	free(p->active_state);
	free(p->sub_state);
	free(p->result);
	free(p->invocation_id);
	*p = (struct ap_unit_props){ 0 };
}

int ap_bus_own_unit(struct ap_bus *b, char **ret)
{
	_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	const char *path;
	char *id = NULL;
	int r;

	/* By our own pid, not by a name: whatever the unit is called in the repository, the one
	 * whose cgroup holds this process is the one a restart would kill. */
	r = sd_bus_call_method(b->bus, SD_DEST, SD_PATH, SD_MANAGER, "GetUnitByPID", &error,
			       &reply, "u", (uint32_t)getpid());
	if (r < 0 && (sd_bus_error_has_name(&error, SD_DEST ".NoUnitForPID") ||
		      sd_bus_error_has_name(&error, "org.freedesktop.DBus.Error.UnixProcessIdUnknown"))) {
		*ret = NULL;
		return 0;
	}
	if (r >= 0)
		r = sd_bus_message_read(reply, "o", &path);
	if (r >= 0)
		r = sd_bus_get_property_string(b->bus, SD_DEST, path, SD_UNIT, "Id", &error, &id);
	if (r < 0)
		return ap_log_error(r, "failed to ask the %s manager which unit runs autopull: %s",
				    b->scope, bus_error_message(&error, r));
	*ret = id;
	return 0;
}
