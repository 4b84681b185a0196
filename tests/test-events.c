/* Tests for events.c: a history line survives format and parse whatever its strings carry,
 * a damaged line is refused, and each outcome has the journal entry autopull(8) documents. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "events.h"
#include "log.h"
#include "util.h"

#define OID_A "0123456789abcdef0123456789abcdef01234567"
#define OID_B "89abcdef0123456789abcdef0123456789abcdef"

static struct ap_event event(enum ap_event_kind kind, const char *result, char *units, char *reason)
{
	struct ap_event e = { .realtime_usec = 1700000000000000ULL, .kind = kind,
			      .duration_ms = 1234, .units = units, .reason = reason };

	snprintf(e.from, sizeof(e.from), "%s", OID_A);
	snprintf(e.to, sizeof(e.to), "%s", OID_B);
	snprintf(e.result, sizeof(e.result), "%s", result);
	snprintf(e.trigger, sizeof(e.trigger), "timer");
	return e;
}

static void test_round_trip(void **state)
{
	struct ap_event e = event(AP_EVENT_APPLY, "ok", "restart=a.service;reload=b@x.service",
				  "line one\nline two %41 é"), back;
	char *line;

	assert_int_equal(ap_event_format(&e, &line), 0);
	assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1); /* one line */
	assert_int_equal(ap_event_parse(line, &back), 0);
	assert_int_equal(back.kind, AP_EVENT_APPLY);
	assert_string_equal(back.to, OID_B);
	assert_string_equal(back.units, e.units);
	assert_string_equal(back.reason, e.reason);
	assert_int_equal(back.duration_ms, 1234);
	ap_event_clear(&back);
	free(line);
	assert_int_equal(ap_event_parse("1 apply from=- to=- result=%00 ms=1 trigger=x units=- "
					"reason=-", &back), -EBADMSG);
	assert_int_equal(ap_event_parse("x apply", &back), -EBADMSG);
}

static bool has_field(char **fields, const char *f)
{
	for (size_t i = 0; fields && fields[i]; i++)
		if (strcmp(fields[i], f) == 0)
			return true;
	return false;
}

static void test_entry_of_an_apply(void **state)
{
	struct ap_event e = event(AP_EVENT_APPLY, "ok", "restart=a.service,c.service;reload=b.service",
				  NULL);
	struct ap_event_entry x;

	assert_int_equal(ap_event_entry(&e, false, &x), 0);
	assert_string_equal(x.message_id, AP_MSGID_APPLIED);
	assert_int_equal(x.level, AP_LOG_NOTICE);
	assert_string_equal(x.message, "applied 89abcdef0123 (from 0123456789ab) in 1234 ms: "
				       "restart=a.service,c.service;reload=b.service");
	ap_event_entry_clear(&x);
	/* a first apply, rolled back: there was nothing before */
	e.from[0] = '\0';
	snprintf(e.result, sizeof(e.result), "rolled-back");
	assert_int_equal(ap_event_entry(&e, false, &x), 0);
	assert_string_equal(x.message, "rolled back 89abcdef0123 to nothing");
	assert_false(has_field(x.fields, "AUTOPULL_FROM="));
	ap_event_entry_clear(&x);
	snprintf(e.from, sizeof(e.from), "%s", OID_A);
	snprintf(e.result, sizeof(e.result), "ok");
	assert_int_equal(ap_event_entry(&e, false, &x), 0);
	assert_true(has_field(x.fields, "AUTOPULL_ACTION=applied"));
	assert_true(has_field(x.fields, "AUTOPULL_COMMIT=" OID_B));
	assert_true(has_field(x.fields, "AUTOPULL_FROM=" OID_A));
	assert_true(has_field(x.fields, "AUTOPULL_TRIGGER=timer"));
	assert_true(has_field(x.fields, "AUTOPULL_DURATION_MS=1234"));
	for (const char *const *u = (const char *const[]){ "a.service", "b.service", "c.service", NULL };
	     *u; u++) {
		char f[64];

		snprintf(f, sizeof(f), "UNIT=%s", *u);
		assert_true(has_field(x.fields, f));
		snprintf(f, sizeof(f), "OBJECT_SYSTEMD_UNIT=%s", *u);
		assert_true(has_field(x.fields, f));
	}
	assert_false(has_field(x.fields, "AUTOPULL_REASON="));
	ap_event_entry_clear(&x);
	/* the user manager's units are matched by journalctl --user-unit */
	assert_int_equal(ap_event_entry(&e, true, &x), 0);
	assert_true(has_field(x.fields, "OBJECT_SYSTEMD_USER_UNIT=b.service"));
	assert_false(has_field(x.fields, "OBJECT_SYSTEMD_UNIT=b.service"));
	ap_event_entry_clear(&x);
}

/* Each outcome has its MESSAGE_ID, priority and action word. */
static void test_entry_of_each_outcome(void **state)
{
	static const struct {
		enum ap_event_kind kind;
		const char *result, *id, *action, *message;
		int level;
	} cases[] = {
		{ AP_EVENT_APPLY, "failed", AP_MSGID_APPLY_FAILED, "apply-failed",
		  "apply of 89abcdef0123 failed: why", AP_LOG_ERR },
		{ AP_EVENT_APPLY, "restored", AP_MSGID_APPLY_FAILED, "apply-failed",
		  "apply of 89abcdef0123 failed, files put back: why", AP_LOG_ERR },
		{ AP_EVENT_APPLY, "rolled-back", AP_MSGID_ROLLED_BACK, "rolled-back",
		  "rolled back 89abcdef0123 to 0123456789ab: why", AP_LOG_WARNING },
		{ AP_EVENT_APPLY, "rollback-failed", AP_MSGID_ROLLED_BACK, "rollback-failed",
		  "apply of 89abcdef0123 could not be rolled back: why", AP_LOG_ERR },
		{ AP_EVENT_REFUSED, "guard", AP_MSGID_REFUSED, "refused",
		  "refused 89abcdef0123 (guard): why", AP_LOG_WARNING },
		{ AP_EVENT_OVERRIDE, "rewind", AP_MSGID_OVERRIDE, "override",
		  "rewind check overridden for 89abcdef0123: why", AP_LOG_WARNING },
		{ AP_EVENT_PIN, "ok", AP_MSGID_PINNED, "pinned", "pinned at 89abcdef0123: why",
		  AP_LOG_NOTICE },
		{ AP_EVENT_UNPIN, "", AP_MSGID_UNPINNED, "unpinned", "unpinned from 0123456789ab: why",
		  AP_LOG_NOTICE },
		{ AP_EVENT_REVERT, "ok", AP_MSGID_REVERTED, "reverted",
		  "put back drifted files to 89abcdef0123: why", AP_LOG_NOTICE },
		{ AP_EVENT_REVERT, "failed", AP_MSGID_REVERTED, "revert-failed",
		  "failed to put back drifted files to 89abcdef0123: why", AP_LOG_ERR },
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct ap_event e = event(cases[i].kind, cases[i].result, NULL, "why");
		struct ap_event_entry x;
		char action[64];

		assert_int_equal(ap_event_entry(&e, false, &x), 0);
		assert_string_equal(x.message_id, cases[i].id);
		assert_string_equal(x.message, cases[i].message);
		assert_int_equal(x.level, cases[i].level);
		snprintf(action, sizeof(action), "AUTOPULL_ACTION=%s", cases[i].action);
		assert_true(has_field(x.fields, action));
		assert_true(has_field(x.fields, "AUTOPULL_REASON=why"));
		assert_false(has_field(x.fields, "UNIT="));
		ap_event_entry_clear(&x);
	}
}

/* A change of hundreds of units names the first few one per field, and all in AUTOPULL_UNITS. */
static void test_entry_units_bounded(void **state)
{
	struct ap_buf b = { 0 };
	struct ap_event e;
	struct ap_event_entry x;
	size_t units = 0;

	ap_buf_printf(&b, "restart=");
	for (int i = 0; i < 300; i++)
		ap_buf_printf(&b, "%su%03d.service", i ? "," : "", i);
	e = event(AP_EVENT_APPLY, "ok", b.data, NULL);
	assert_int_equal(ap_event_entry(&e, false, &x), 0);
	for (size_t i = 0; x.fields[i]; i++)
		units += strncmp(x.fields[i], "UNIT=", 5) == 0;
	assert_int_equal(units, AP_EVENT_ENTRY_UNITS_MAX);
	assert_true(has_field(x.fields, "UNIT=u000.service"));
	ap_event_entry_clear(&x);
	ap_buf_clear(&b);
}

static void test_unit_names(void **state)
{
	char **v = NULL;

	assert_int_equal(ap_event_unit_names("restart=a.service,b.service;reload=c@x.service", &v), 0);
	assert_non_null(v);
	assert_string_equal(v[0], "a.service");
	assert_string_equal(v[1], "b.service");
	assert_string_equal(v[2], "c@x.service");
	assert_null(v[3]);
	ap_strv_free(v);
	assert_int_equal(ap_event_unit_names(NULL, &v), 0);
	assert_null(v);
	assert_int_equal(ap_event_unit_names("", &v), 0);
	assert_null(v);
}

/* Many units: grouped by action in the value, each group in the order given, and split again
 * in the value's order. */
static void test_unit_names_many(void **state)
{
	enum { N = 5000 };
	_cleanup_strv_builder_ struct ap_strv_builder b = { 0 };
	enum ap_unit_action_kind acts[N];
	char name[32], *units = NULL, **v = NULL;

	for (size_t i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "u%04zu.service", i);
		assert_int_equal(ap_strv_builder_push(&b, name), 0);
		acts[i] = i % 2 ? AP_ACTION_RELOAD : AP_ACTION_RESTART;
	}
	assert_int_equal(ap_event_units(b.v, acts, N, &units), 0);
	assert_true(strncmp(units, "restart=u0000.service,u0002.service,", 36) == 0);
	assert_non_null(strstr(units, ",u4998.service;reload=u0001.service,u0003.service,"));
	assert_int_equal(ap_event_unit_names(units, &v), 0);
	assert_int_equal(ap_strv_length(v), N);
	for (size_t i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "u%04zu.service", i < N / 2 ? 2 * i : 2 * (i - N / 2) + 1);
		assert_string_equal(v[i], name);
	}
	ap_strv_free(v);
	free(units);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_entry_of_an_apply),
		cmocka_unit_test(test_entry_of_each_outcome),
		cmocka_unit_test(test_entry_units_bounded),
		cmocka_unit_test(test_unit_names),
		cmocka_unit_test(test_unit_names_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
