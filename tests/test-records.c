/* The small state files' formats: round trips, and every parser refusing negatives,
 * overflow, truncated lines and a wrong first word, with the number of the bad line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "records.h"
#include "util.h"

#define OID_A "0123456789abcdef0123456789abcdef01234567"
#define OID_B "89abcdef0123456789abcdef0123456789abcdef"
#define BIG "18446744073709551616" /* UINT64_MAX + 1 */
#define HUGE "99999999999999999999"

static void test_pin(void **state)
{
	struct ap_pin p = { .realtime_usec = 42, .reason = "hold\nthis\x1b[31m" }, back = { 0 };
	struct ap_records_error e;
	char *text = NULL;

	memcpy(p.commit, OID_A, sizeof(p.commit));
	assert_int_equal(ap_records_pin_format(&p, &text), 0);
	assert_string_equal(text, OID_A " 42 hold this [31m\n");
	assert_int_equal(ap_records_pin_parse(text, &back, &e), 0);
	assert_string_equal(back.commit, OID_A);
	assert_true(back.realtime_usec == 42);
	assert_string_equal(back.reason, "hold this [31m");
	ap_pin_clear(&back);
	free(text);
	static const char *const bad[] = {
		OID_A " -1 neg\n", OID_A " " HUGE " big\n", OID_A " " BIG " big\n",
		OID_A " +1 plus\n", OID_A " 1x nonum\n", OID_A "\n", OID_A " ", "0123 1 short\n", "",
		"autopull-pin 2\n" OID_A " 1 x\n",
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		e = (struct ap_records_error){ 0 };
		assert_int_equal(ap_records_pin_parse(bad[i], &back, &e), -EBADMSG);
		assert_int_equal(e.line, 1);
		assert_non_null(e.what);
	}
	assert_int_equal(ap_records_pin_parse(OID_A " 1 a\n" OID_B " 2 b\n", &back, &e), -EBADMSG);
	assert_int_equal(e.line, 2);
	/* the largest time fits */
	assert_int_equal(ap_records_pin_parse(OID_A " 18446744073709551615 max", &back, &e), 0);
	assert_true(back.realtime_usec == UINT64_MAX);
	ap_pin_clear(&back);
}

static void test_bad(void **state)
{
	struct ap_records_error e;
	struct ap_bad *v = NULL;
	size_t n = 0;
	char *a = NULL, *b = NULL, *text;

	assert_int_equal(ap_records_bad_format(OID_A, 7, "failed\nbadly", &a), 0);
	assert_int_equal(ap_records_bad_format(OID_B, 9, "", &b), 0);
	text = ap_strdupf("%s%s", a, b);
	assert_int_equal(ap_records_bad_parse(text, true, &v, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].commit, OID_A);
	assert_string_equal(v[0].why, "failed badly");
	assert_true(v[1].realtime_usec == 9);
	assert_string_equal(v[1].why, "");
	ap_bad_free(v, n);
	free(a), free(b), free(text);
	/* an empty reason leaves no blank after the time: such lines exist and still read */
	assert_int_equal(ap_records_bad_parse(OID_A " 9\n", true, &v, &n, &e), 0);
	assert_string_equal(v[0].why, "");
	ap_bad_free(v, n);

	static const char *const damaged[] = { OID_B " -9 neg", OID_B " " HUGE " big",
					       OID_B " " BIG " big", OID_B " 9x", OID_B, "",
					       "autopull-bad 2" };
	for (size_t i = 0; i < ELEMENTSOF(damaged); i++) {
		text = ap_strdupf(OID_A " 1 ok\n%s\n" OID_A " 2 ok\n", damaged[i]);
		assert_int_equal(ap_records_bad_parse(text, true, &v, &n, &e), -EBADMSG);
		assert_int_equal(e.line, 2);
		/* status still lists the good lines */
		assert_int_equal(ap_records_bad_parse(text, false, &v, &n, &e), 0);
		assert_int_equal(n, 2);
		assert_int_equal(e.line, *damaged[i] ? 2 : 0);
		ap_bad_free(v, n);
		free(text);
	}
}

static void test_overrides(void **state)
{
	struct ap_records_error e;
	struct ap_bad *v = NULL;
	size_t n = 0;
	char *a = NULL, *text;
	unsigned count;
	uint64_t last;

	assert_int_equal(ap_records_override_format(5, "guard", OID_A, "ok\tthen", &a), 0);
	assert_string_equal(a, "5 guard " OID_A " ok then\n");
	text = ap_strdupf("%s-1 guard " OID_B " neg\n" HUGE " guard " OID_B " big\n"
			  "6 rewind " OID_B " other kind\n7 guard " OID_B "\n8 guard " OID_B " r\n", a);
	assert_int_equal(ap_records_overrides_parse(text, "guard", &v, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_int_equal(e.line, 2);
	assert_string_equal(v[0].why, "ok then");
	assert_true(v[1].realtime_usec == 8);
	ap_bad_free(v, n);
	assert_int_equal(ap_records_overrides_parse(text, "rewind", &v, &n, NULL), 0);
	assert_int_equal(n, 1);
	ap_bad_free(v, n);
	assert_int_equal(ap_records_summary(text, 0, &count, &last), 0);
	assert_int_equal(count, 6);
	assert_true(last == 8);
	free(a), free(text);
}

static void test_probes(void **state)
{
	struct ap_probe_line in[2] = {
		{ .healthy = true, .failures = 0, .kind = "http", .unit = "web.service",
		  .result = "HTTP 200" },
		{ .healthy = false, .failures = UINT64_MAX, .kind = "exec", .times = { 5, 7 },
		  .n_times = 2, .unit = "app@a\\x2db.service", .result = "exit status 1:\ta\nb" },
	}, *v = NULL;
	struct ap_probe_line many = { .kind = "tcp", .unit = "x.service",
				      .n_times = AP_RECORDS_PROBE_TIMES_MAX };
	struct ap_records_error e;
	size_t n = 0;
	char *text = NULL;

	assert_int_equal(ap_records_probes_format(in, 2, &text), 0);
	assert_string_equal(text, "1 0 http - web.service\tHTTP 200\n"
				  "0 18446744073709551615 exec 5,7 app@a\\x2db.service\t"
				  "exit status 1: a b\n");
	assert_int_equal(ap_records_probes_parse(text, &v, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_int_equal(e.line, 0);
	assert_true(v[0].healthy && !v[1].healthy);
	assert_true(v[1].failures == UINT64_MAX);
	assert_int_equal(v[1].n_times, 2);
	assert_true(v[1].times[0] == 5 && v[1].times[1] == 7);
	assert_string_equal(v[1].unit, "app@a\\x2db.service");
	assert_string_equal(v[1].result, "exit status 1: a b");
	assert_string_equal(v[0].result, "HTTP 200");
	free(v), free(text);
	/* damaged lines are left out, the first one reported */
	assert_int_equal(ap_records_probes_parse("2 0 http - a.service\tx\n"
						 "1 -1 http - b.service\tx\n"
						 "1 0 http 5,,6 c.service\tx\n"
						 "1 0 http - d.service x\n"
						 "1 0 waytoolongkind - e.service\tx\n"
						 "1 0 http 1," BIG " f.service\tx\n"
						 "1 0 g\t\t - h.service\tx\n"
						 "1 0 HTTP - i.service\tx\n"
						 "0 3 tcp 9 g.service\t\n", &v, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].unit, "g.service");
	assert_int_equal(v[0].failures, 3);
	assert_string_equal(v[0].result, "");
	assert_int_equal(e.line, 1);
	free(v);
	/* at most AP_RECORDS_PROBE_TIMES_MAX times round-trip; a unit with a space cannot be written */
	assert_int_equal(ap_records_probes_format(&many, 1, &text), 0);
	assert_int_equal(ap_records_probes_parse(text, &v, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].n_times, AP_RECORDS_PROBE_TIMES_MAX);
	free(v), free(text);
	snprintf(many.unit, sizeof(many.unit), "a b.service");
	assert_int_equal(ap_records_probes_format(&many, 1, &text), -EINVAL);
}

static void test_counters(void **state)
{
	struct ap_counter in[2] = { { "apply:ok", 3 }, { "rollback", UINT64_MAX } }, *v = NULL;
	struct ap_records_error e;
	size_t n = 0;
	char *text = NULL;

	assert_int_equal(ap_records_counters_format(in, 2, &text), 0);
	assert_string_equal(text, "apply:ok 3\nrollback 18446744073709551615\n");
	assert_int_equal(ap_records_counters_parse(text, &v, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_int_equal(e.line, 0);
	assert_true(v[1].value == UINT64_MAX);
	free(v), free(text);
	assert_int_equal(ap_records_counters_parse("a 1\nb -1\nc " BIG "\nd " HUGE "\ne\n f 2\ng 2x\n"
						   "h 4\n", &v, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].name, "a");
	assert_string_equal(v[1].name, "h");
	assert_int_equal(e.line, 2);
	free(v);
	assert_true(ap_records_counter_name_ok("refused:guard"));
	assert_false(ap_records_counter_name_ok(""));
	assert_false(ap_records_counter_name_ok("a b"));
	assert_false(ap_records_counter_name_ok("0123456789012345678901234567890123456789012345678901234567890123"));
}

static void test_expected(void **state)
{
	struct ap_expected x = { .path = "/etc/x/a.conf", .repo_path = "x/a.conf", .root_len = 6,
				 .mode = 0640, .group = "adm" };
	struct ap_expected_set set = { .v = &x, .n = 1 }, back = { 0 };
	struct ap_records_error e;
	char *text = NULL, *again = NULL;

	memcpy(set.commit, OID_A, sizeof(set.commit));
	memset(set.config, 'c', sizeof(set.config) - 1);
	memcpy(x.oid, OID_B, sizeof(x.oid));
	assert_int_equal(ap_records_expected_format(&set, &text), 0);
	assert_int_equal(ap_records_expected_parse(text, &back, &e), 0);
	assert_int_equal(ap_records_expected_format(&back, &again), 0);
	assert_string_equal(text, again);
	assert_null(back.v[0].owner);
	assert_string_equal(back.v[0].group, "adm");
	ap_expected_set_clear(&back);
	free(text), free(again);
	/* a set read from an older file has no digest: it is written back as it was read */
	memset(set.config, 0, sizeof(set.config));
	assert_int_equal(ap_records_expected_format(&set, &text), 0);
	assert_int_equal(ap_records_expected_parse(text, &back, &e), 0);
	assert_string_equal(back.config, "");
	ap_expected_set_clear(&back);
	free(text);

	static const struct {
		const char *text;
		unsigned line;
	} bad[] = {
		{ "", 0 + 1 },
		{ "autopull-expected 2\ncommit " OID_A "\n", 1 },
		{ "commit 0123\n", 1 },
		{ "commit " OID_A "\nconfig short\n", 2 },
		{ "commit " OID_A "\n" OID_B " 0644 - - -6 x/a /etc/x/a\n", 2 },
		{ "commit " OID_A "\n" OID_B " 0644 - - " HUGE " x/a /etc/x/a\n", 2 },
		{ "commit " OID_A "\n" OID_B " 0644 - - 4 x/a /etc/x/a\n" OID_B " 0644 - -\n", 3 },
		{ "commit " OID_A "\n" OID_B " 0644 - - 4 x/a /etc/x/a extra\n", 2 },
		{ "commit " OID_A "\n" OID_B " 0648 - - 4 x/a /etc/x/a\n", 2 },
		{ "commit " OID_A "\n" OID_B " 0644 - - 4 x/a etc/x/a\n", 2 },
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		e = (struct ap_records_error){ 0 };
		assert_int_equal(ap_records_expected_parse(bad[i].text, &back, &e), -EBADMSG);
		assert_int_equal(e.line, bad[i].line);
	}
}

/* The fleet facts: same strictness as the tick. */
static void test_fleet(void **state)
{
	struct ap_fleet_tick t = { .blocked = 1, .wait_ms = 2500 }, back;
	struct ap_records_error e;
	char *text = NULL;
	static const struct {
		const char *text;
		unsigned line;
	} bad[] = {
		{ "blocked -2\nwait-ms 0\n", 1 },
		{ "blocked " HUGE "\nwait-ms 0\n", 1 },
		{ "blocked 1\nwait-ms -7\n", 2 },
		{ "blocked 1\n", 2 },
		{ "blocked 1\nwait-ms 2\nmore 3\n", 3 },
		{ "pending 1\ndrift 2\n", 1 },
		{ "blocked 1\nwait-ms 2\nwhat 3\n", 3 },
		{ "blocked 1\nwait-ms 2\nwhy x\nmore\n", 4 },
	};

	assert_int_equal(ap_records_fleet_format(&t, &text), 0);
	assert_string_equal(text, "blocked 1\nwait-ms 2500\n");
	assert_int_equal(ap_records_fleet_parse(text, &back, &e), 0);
	assert_true(back.blocked == 1 && back.wait_ms == 2500 && !*back.why);
	free(text);
	/* the why is one line, whatever etcd said */
	snprintf(t.why, sizeof(t.why), "waiting for web1\nblocked 0");
	assert_int_equal(ap_records_fleet_format(&t, &text), 0);
	assert_string_equal(text, "blocked 1\nwait-ms 2500\nwhy waiting for web1\n");
	assert_int_equal(ap_records_fleet_parse(text, &back, &e), 0);
	assert_string_equal(back.why, "waiting for web1");
	free(text);
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		assert_int_equal(ap_records_fleet_parse(bad[i].text, &back, &e), -EBADMSG);
		assert_int_equal(e.line, bad[i].line);
	}
}

static void test_tick(void **state)
{
	struct ap_tick t = { -1, 12 }, back;
	struct ap_records_error e;
	char *text = NULL;

	assert_int_equal(ap_records_tick_format(&t, &text), 0);
	assert_string_equal(text, "pending -1\ndrift 12\n");
	assert_int_equal(ap_records_tick_parse(text, &back, &e), 0);
	assert_true(back.pending == -1 && back.drift == 12);
	free(text);
	static const struct {
		const char *text;
		unsigned line;
	} bad[] = {
		{ "pending -2\ndrift 0\n", 1 },
		{ "pending " HUGE "\ndrift 0\n", 1 },
		{ "pending 9223372036854775808\ndrift 0\n", 1 },
		{ "pending 1\ndrift -7\n", 2 },
		{ "pending 1\ndrift " BIG "\n", 2 },
		{ "pending 1\n", 2 },
		{ "pending 1\ndrift\n", 2 },
		{ "pending 1 drift 2\n", 1 },
		{ "pending 1\ndrift 2\nmore 3\n", 3 },
		{ "autopull-tick 2\npending 1\ndrift 2\n", 1 },
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		e = (struct ap_records_error){ 0 };
		assert_int_equal(ap_records_tick_parse(bad[i].text, &back, &e), -EBADMSG);
		assert_int_equal(e.line, bad[i].line);
	}
}

static void test_last_apply(void **state)
{
	struct ap_last_apply la = { .realtime_usec = UINT64_MAX, .ok = true }, back;
	struct ap_records_error e;
	char *text = NULL;

	assert_int_equal(ap_records_last_apply_format(&la, &text), 0);
	assert_int_equal(ap_records_last_apply_parse(text, &back, &e), 0);
	assert_true(back.ok && back.realtime_usec == UINT64_MAX);
	free(text);
	static const char *const bad[] = { "-1 1\n", BIG " 1\n", HUGE " 0\n", "10 2\n", "10 -0\n",
					   "10\n", "10 ", "", " 10 1\n", "10 1 x\n" };
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		e = (struct ap_records_error){ 0 };
		assert_int_equal(ap_records_last_apply_parse(bad[i], &back, &e), -EBADMSG);
		assert_int_equal(e.line, 1);
	}
}

static void test_owned(void **state)
{
	char *in[] = { "/etc/b", "/etc/a", NULL }, **v = NULL, *text = NULL;
	struct ap_records_error e;

	assert_int_equal(ap_records_owned_format(in, &text), 0);
	assert_string_equal(text, "/etc/a\n/etc/b\n");
	assert_int_equal(ap_records_owned_parse(text, &v, &e), 0);
	assert_int_equal(ap_strv_length(v), 2);
	ap_strv_free(v);
	free(text);
	assert_int_equal(ap_records_owned_parse("/etc/a\n\n/etc/../b\n", &v, &e), -EBADMSG);
	assert_int_equal(e.line, 3);
	assert_int_equal(ap_records_owned_parse("/etc/a\n/\n", &v, &e), -EBADMSG);
	assert_int_equal(e.line, 2);
	assert_int_equal(ap_records_owned_format(NULL, &text), 0);
	assert_string_equal(text, "");
	free(text);
}

static void test_manifest(void **state)
{
	struct ap_host_file in[3] = {
		{ .id = 0, .path = "/etc/x/a.conf", .root_len = 6, .present = true, .mode = 04755,
		  .uid = 0, .gid = 4, .owned = true },
		{ .id = 1, .path = "/etc/x/gone", .root_len = 6, .uid = (uid_t)-1, .gid = (gid_t)-1 },
		{ .id = 2, .path = "/etc/x", .root_len = 0, .dir = true, .uid = (uid_t)-1,
		  .gid = (gid_t)-1 },
	}, *v = NULL;
	struct ap_records_error e;
	size_t n = 0;
	char *text = NULL, *again = NULL;

	assert_int_equal(ap_records_manifest_format(in, 3, &text), 0);
	assert_string_equal(text, "0 present 4755 0 4 1 6 /etc/x/a.conf\n"
				  "1 absent - - - 0 6 /etc/x/gone\n"
				  "2 absentdir - - - 0 0 /etc/x\n");
	assert_int_equal(ap_records_manifest_parse(text, &v, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_true(v[0].present && v[0].mode == 04755 && v[0].gid == 4 && v[0].owned);
	assert_true(!v[1].present && v[1].uid == (uid_t)-1 && !v[1].owned);
	assert_true(v[2].dir);
	assert_int_equal(ap_records_manifest_format(v, n, &again), 0);
	assert_string_equal(text, again);
	ap_records_manifest_free(v, n);
	free(text), free(again);
	/* the format before owners were kept: owned, owner unknown, beneath "/" */
	assert_int_equal(ap_records_manifest_parse("3 present 0644 /etc/a\n\n4 absent - /etc/b\n",
						   &v, &n, &e), 0);
	assert_int_equal(n, 2);
	assert_true(v[0].owned && v[0].uid == (uid_t)-1 && v[0].root_len == 0);
	ap_records_manifest_free(v, n);

	static const struct {
		const char *text;
		unsigned line;
	} bad[] = {
		{ "-1 present 0644 /etc/a\n", 1 },
		{ "4294967296 present 0644 /etc/a\n", 1 },
		{ "0 present 0644 -1 - 1 0 /etc/a\n", 1 },
		{ "0 present 0644 4294967295 - 1 0 /etc/a\n", 1 },
		{ "0 present 0644 - - 2 0 /etc/a\n", 1 },
		{ "0 present 0644 - - 1 " HUGE " /etc/a\n", 1 },
		{ "0 present 0644 - - 1 5 /etc/a\n", 1 },
		{ "0 present 0648 /etc/a\n", 1 },
		{ "0 present 0644 - -\n", 1 },
		{ "0 present 0644 /etc/a\n1 moved - /etc/b\n", 2 },
		{ "0 present 0644 /etc/a\n\n1 absent - etc/b\n", 3 },
		{ "autopull-manifest 2\n0 present 0644 /etc/a\n", 1 },
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		e = (struct ap_records_error){ 0 };
		assert_int_equal(ap_records_manifest_parse(bad[i].text, &v, &n, &e), -EBADMSG);
		assert_int_equal(e.line, bad[i].line);
	}
}

static void test_numbers(void **state)
{
	unsigned long long v;

	assert_true(ap_records_number("0", 0, &v) && v == 0);
	assert_true(ap_records_number("18446744073709551615", UINT64_MAX, &v) && v == UINT64_MAX);
	assert_false(ap_records_number(BIG, UINT64_MAX, &v));
	assert_false(ap_records_number("-1", UINT64_MAX, &v));
	assert_false(ap_records_number(" 1", UINT64_MAX, &v));
	assert_false(ap_records_number("+1", UINT64_MAX, &v));
	assert_false(ap_records_number("0x10", UINT64_MAX, &v));
	assert_false(ap_records_number("2", 1, &v));
	assert_false(ap_records_number("", 1, &v));
	assert_true(ap_records_is_mode("0755"));
	assert_false(ap_records_is_mode("10755"));
	assert_false(ap_records_is_mode("8"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pin),	     cmocka_unit_test(test_bad),
		cmocka_unit_test(test_overrides),    cmocka_unit_test(test_counters),
		cmocka_unit_test(test_probes),
		cmocka_unit_test(test_expected),     cmocka_unit_test(test_tick),
		cmocka_unit_test(test_fleet),
		cmocka_unit_test(test_last_apply),   cmocka_unit_test(test_owned),
		cmocka_unit_test(test_manifest),   cmocka_unit_test(test_numbers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
