/* Unit properties over D-Bus, for the settle loop, the guard and the heartbeat: one GetAll
 * per interface (Unit, and Service or Timer), read through a table of the properties
 * autopull uses into struct ap_unit_props. The calls for many units go out together, a
 * bounded number at a time, so that a sample costs about one round trip and not one per
 * unit. The connection is bus.c's. It deliberately changes nothing in the manager and
 * judges no unit: what a property means for a deploy is the heartbeat's and the guard's
 * business. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
static int read_interface(sd_bus_message *reply, const char *iface, struct ap_unit_props *props)
{
	const char *name;
	char sig[2];
	int r = sd_bus_message_enter_container(reply, 'a', "{sv}");

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

/* --- many units at once ----------------------------------------------------------- */

/* Enough to hide the round trips of any watch list people write, few enough that a
 * thousand units do not queue two thousand calls on the manager's socket at once. */
#define PROPS_IN_FLIGHT 64

struct props_batch;

/* One GetAll: a unit's Unit interface, or its Service or Timer one. */
struct props_call {
	struct props_batch *batch;
	size_t unit;
	const char *iface;
	sd_bus_slot *slot; /* while it is out, and after: unref'd (and so cancelled) at the end */
	bool done;
};

struct props_batch {
	struct ap_bus *b;
	char *const *units;
	struct ap_unit_props *props;
	int *errors;              /* per unit */
	sd_bus_error *bus_errors; /* per unit: the manager's message, when it sent one */
	struct props_call *calls;
	size_t n, n_calls, next, in_flight;
	unsigned long long deadline;
	bool strict, failed;
};

static void batch_fail(struct props_batch *pb, size_t unit, int r, const sd_bus_error *e)
{
	pb->failed = true;
	if (pb->errors[unit] < 0)
		return;
	pb->errors[unit] = r;
	if (e)
		(void)sd_bus_error_copy(&pb->bus_errors[unit], e);
}

static int on_props_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	struct props_call *c = userdata;
	struct props_batch *pb = c->batch;
	const sd_bus_error *e = sd_bus_message_get_error(m);
	int r = e ? -sd_bus_message_get_errno(m)
		  : read_interface(m, c->iface, &pb->props[c->unit]);

	(void)ret_error;
	c->done = true;
	pb->in_flight--;
	if (r < 0)
		batch_fail(pb, c->unit, r, e);
	/* Always 0: a negative return would end sd_bus_process, not this unit's read. */
	return 0;
}

static int call_send(struct props_batch *pb, struct props_call *c)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
	_cleanup_free_ char *path = NULL;
	unsigned long long now = ap_now_monotonic_usec();
	int r = sd_bus_path_encode(SD_PATH "/unit", pb->units[c->unit], &path);

	if (r >= 0)
		r = sd_bus_message_new_method_call(pb->b->bus, &m, SD_DEST, path,
						   "org.freedesktop.DBus.Properties", "GetAll");
	if (r >= 0)
		r = sd_bus_message_append(m, "s", c->iface);
	/* Each call times out at the read's deadline: sd-bus answers it with a timeout error. */
	if (r >= 0)
		r = sd_bus_call_async(pb->b->bus, &c->slot, m, on_props_reply, c,
				      pb->deadline > now ? pb->deadline - now : 1);
	if (r < 0)
		return r;
	pb->in_flight++;
	return 0;
}

/* Sends calls until PROPS_IN_FLIGHT are out; a strict read sends none after a failure. */
static void batch_fill(struct props_batch *pb)
{
	while (pb->in_flight < PROPS_IN_FLIGHT && pb->next < pb->n_calls &&
	       !(pb->strict && pb->failed)) {
		struct props_call *c = &pb->calls[pb->next++];
		int r = call_send(pb, c);

		if (r < 0)
			batch_fail(pb, c->unit, r, NULL);
	}
}

/* Dispatches replies and sleeps in sd_bus_wait until none is out. A strict read stops at its
 * first failure; the calls still out are cancelled when their slots go. r < 0: the
 * connection broke, or (a net beside sd-bus' own call timeouts) the deadline passed. */
static int batch_wait(struct props_batch *pb)
{
	int r = 0;

	for (batch_fill(pb); pb->in_flight > 0 && !(pb->strict && pb->failed); batch_fill(pb)) {
		unsigned long long now;

		r = sd_bus_process(pb->b->bus, NULL);
		if (r < 0)
			return r;
		if (r > 0)
			continue; /* more may be queued: drain before sleeping */
		now = ap_now_monotonic_usec();
		if (now >= pb->deadline)
			return -ETIMEDOUT;
		r = sd_bus_wait(pb->b->bus, pb->deadline - now);
		if (r < 0 && r != -EINTR)
			return r;
	}
	return 0;
}

static int batch_init(struct props_batch *pb, unsigned long long timeout_usec)
{
	unsigned long long now = ap_now_monotonic_usec();

	pb->deadline = timeout_usec >= ULLONG_MAX - now ? ULLONG_MAX : now + timeout_usec;
	pb->errors = calloc(pb->n ? pb->n : 1, sizeof(*pb->errors));
	pb->bus_errors = calloc(pb->n ? pb->n : 1, sizeof(*pb->bus_errors));
	pb->calls = calloc(pb->n ? 2 * pb->n : 1, sizeof(*pb->calls));
	if (!pb->errors || !pb->bus_errors || !pb->calls)
		return -ENOMEM;
	for (size_t i = 0; i < pb->n; i++) {
		const char *unit = pb->units[i];
		const char *more = ap_endswith(unit, ".service") ? SD_SERVICE
				 : ap_endswith(unit, ".timer") ? SD_TIMER : NULL;

		pb->props[i] = (struct ap_unit_props){ 0 };
		pb->calls[pb->n_calls++] = (struct props_call){ pb, i, SD_UNIT, NULL, false };
		if (more)
			pb->calls[pb->n_calls++] = (struct props_call){ pb, i, more, NULL, false };
	}
	return 0;
}

/* The calls that never answered, when the wait ended early. */
static void batch_fail_pending(struct props_batch *pb, int r)
{
	for (size_t i = 0; i < pb->next; i++)
		if (pb->calls[i].slot && !pb->calls[i].done)
			batch_fail(pb, pb->calls[i].unit, r, NULL);
}

/* Logs each unit that failed, as a read of one unit did (a strict read only the first in
 * unit order), and gives those read "" for the strings a unit that never ran lacks. */
static int batch_finish(struct props_batch *pb)
{
	int first = 0;

	for (size_t i = 0; i < pb->n; i++) {
		struct ap_unit_props *p = &pb->props[i];
		char **strs[] = { &p->load_state, &p->active_state, &p->sub_state };

		if (pb->errors[i] < 0 && (!first || !pb->strict))
			ap_log_error(pb->errors[i], "failed to read the properties of unit '%s': %s",
				     pb->units[i], bus_error_message(&pb->bus_errors[i],
								     pb->errors[i]));
		if (pb->errors[i] < 0 && !first)
			first = pb->errors[i];
		for (size_t k = 0; pb->errors[i] >= 0 && k < ELEMENTSOF(strs); k++)
			if (!*strs[k] && !(*strs[k] = strdup("")))
				return -ENOMEM;
	}
	return pb->strict ? first : 0;
}

static void batch_free(struct props_batch *pb)
{
	for (size_t i = 0; pb->calls && i < pb->n_calls; i++)
		sd_bus_slot_unref(pb->calls[i].slot);
	for (size_t i = 0; pb->bus_errors && i < pb->n; i++)
		sd_bus_error_free(&pb->bus_errors[i]);
	free(pb->calls);
	free(pb->bus_errors);
	free(pb->errors);
}

int ap_bus_get_units_props(struct ap_bus *b, char *const *units, size_t n,
			   unsigned long long timeout_usec, struct ap_unit_props *ret,
			   int *ret_errors)
{
	struct props_batch pb = { .b = b, .units = units, .n = n, .props = ret,
				  .strict = !ret_errors };
	int r = batch_init(&pb, timeout_usec);

	if (r >= 0)
		r = batch_wait(&pb);
	if (r < 0 && r != -ENOMEM)
		batch_fail_pending(&pb, r);
	if (r != -ENOMEM)
		r = batch_finish(&pb);
	for (size_t i = 0; pb.errors && i < n; i++) {
		if (r < 0 || pb.errors[i] < 0)
			ap_unit_props_clear(&ret[i]);
		if (ret_errors)
			ret_errors[i] = pb.errors[i];
	}
	batch_free(&pb);
	return r;
}

int ap_bus_get_unit_props(struct ap_bus *b, const char *unit, struct ap_unit_props *ret)
{
	char *const units[] = { (char *)unit, NULL };

	return ap_bus_get_units_props(b, units, 1, AP_BUS_PROPS_TIMEOUT_USEC, ret, NULL);
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
	struct ap_unit_props *props = calloc(s->n ? s->n : 1, sizeof(*props));
	char **units = calloc(s->n + 1, sizeof(*units));
	int r = props && units ? 0 : -ENOMEM;

	for (size_t i = 0; r >= 0 && i < s->n; i++)
		units[i] = s->v[i].name;
	if (r >= 0)
		r = ap_bus_get_units_props(b, units, s->n, AP_BUS_PROPS_TIMEOUT_USEC, props, NULL);
	for (size_t i = 0; r >= 0 && i < s->n; i++) {
		s->v[i].refuse_start = props[i].refuse_manual_start;
		s->v[i].refuse_stop = props[i].refuse_manual_stop;
		s->v[i].can_reload = props[i].can_reload;
	}
	for (size_t i = 0; props && i < s->n; i++)
		ap_unit_props_clear(&props[i]);
	free(props);
	free(units);
	return r;
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
