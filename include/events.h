/* The history of what autopull did on this host (autopull log): one line per event, pure
 * format and parse (state.c stores the lines, bounded). Events are the ones an operator asks
 * about after an incident: applies with their result, refusals, rollbacks, overrides, pins.
 * A tick with nothing to do is not an event.
 *
 * <usec> <kind> from=<sha|-> to=<sha|-> result=<word> ms=<n> trigger=<word> units=<list>
 * reason=<text>
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

/* The journal entry of an event (autopull(8), JOURNAL): one MESSAGE_ID per outcome, so that
 * `journalctl MESSAGE_ID=…` lists every apply, refusal, rollback or pin of a fleet. */
#define AP_MSGID_APPLIED      "a978748bdd5c4aae8e527f2decae3d0c"
#define AP_MSGID_APPLY_FAILED "3c53a8e61f054cb4a0b141f36449275c" /* failed, restored */
#define AP_MSGID_ROLLED_BACK  "6da2f327fe6347cbb5a0a71c8081210b" /* rolled-back, rollback-failed */
#define AP_MSGID_REFUSED      "ff05618c7fd24baeb162196823065dd1"
#define AP_MSGID_OVERRIDE     "36ac976ddc2b4a9d8b67eb1b88d42acd"
#define AP_MSGID_PINNED       "02237c9df7274f5e91955f80c87b781a"
#define AP_MSGID_UNPINNED     "73147e8265cd4f369a99766cbc0f813f"
#define AP_MSGID_REVERTED     "14d46a75c0c440d5bce80babe3e663fa"
#define AP_EVENT_ENTRY_UNITS_MAX 25 /* units named one per field; AUTOPULL_UNITS has them all */

struct ap_event_entry {
	int level;              /* AP_LOG_* */
	const char *message_id; /* static */
	char *message;          /* one line, for MESSAGE= or stderr */
	char **fields;          /* "KEY=value": AUTOPULL_ACTION, _RESULT, _COMMIT, _FROM, _TRIGGER,
				 * _DURATION_MS, _UNITS, _REASON, and per unit UNIT= and
				 * OBJECT_SYSTEMD_[USER_]UNIT= (what `journalctl -u` matches) */
};
/* Pure. user: the unit fields are the user manager's. */
int ap_event_entry(const struct ap_event *e, bool user, struct ap_event_entry *ret);
void ap_event_entry_clear(struct ap_event_entry *x);

/* The unit names of a units value ("restart=a,b;reload=c": a, b, c), in order. */
int ap_event_unit_names(const char *units, char ***ret);

/* "restart=a.service,b.service;reload=c.service" from action/unit pairs (units[i] got
 * actions[i]); NULL when there are none. */
int ap_event_units(char *const *units, const enum ap_unit_action_kind *actions, size_t n,
		   char **ret);
