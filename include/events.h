/* The history of what autopull did on this host (autopull log): one line per event, pure
 * format and parse (state.c stores the lines, bounded). Events are the ones an operator asks
 * about after an incident: applies with their result, refusals, rollbacks, overrides, pins.
 * A tick with nothing to do is not an event.
 *
 *   <usec> <kind> from=<sha|-> to=<sha|-> result=<word> ms=<n> trigger=<word> units=<list> reason=<text>
 *
 * Values are percent-encoded (anything but [A-Za-z0-9._@:,;/+=-]), so a line always splits on
 * spaces; units is "restart=a.service,b.service;reload=c.service" (or "-"). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "model.h"

#define AP_EVENTS_MAX 1000 /* the history keeps the newest this many */

enum ap_event_kind {
	AP_EVENT_APPLY,    /* result: ok failed restored rolled-back rollback-failed */
	AP_EVENT_REFUSED,  /* result: guard tripped invalid preflight rewind */
	AP_EVENT_OVERRIDE, /* result: the kind overridden (guard, rewind) */
	AP_EVENT_PIN,
	AP_EVENT_UNPIN,
	AP_EVENT_REVERT,   /* drift reverted; result as for an apply */
	AP_EVENT_MAX,
};
const char *ap_event_kind_to_string(enum ap_event_kind k);

struct ap_event {
	uint64_t realtime_usec;
	enum ap_event_kind kind;
	char from[AP_OID_HEXSZ + 1], to[AP_OID_HEXSZ + 1];
	char result[24];
	uint64_t duration_ms;
	char trigger[16]; /* timer, service, manual */
	char *units;      /* NULL or "restart=a,b;reload=c" */
	char *reason;     /* NULL or free text */
};
void ap_event_clear(struct ap_event *e);

/* One line, with its '\n'. */
int ap_event_format(const struct ap_event *e, char **ret);
/* -EBADMSG for a malformed line. */
int ap_event_parse(const char *line, struct ap_event *ret);

/* "restart=a.service,b.service;reload=c.service" from action/unit pairs (units[i] got
 * actions[i]); NULL when there are none. */
int ap_event_units(char *const *units, const enum ap_unit_action_kind *actions, size_t n,
		   char **ret);
