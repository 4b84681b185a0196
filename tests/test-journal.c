/* The journal format: round trips, the earlier version, and everything malformed refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "journal.h"
#include "util.h"

#define OID_A "0123456789abcdef0123456789abcdef01234567"
#define OID_B "89abcdef0123456789abcdef0123456789abcdef"
#define HEAD "autopull-journal 2\nfrom " OID_A "\nto " OID_B "\nbase " OID_A "\nmode apply\n"

static void test_round_trip(void **state)
{
	struct ap_journal j = { .mode = AP_JOURNAL_ROLLBACK }, back;
	char *text = NULL, *again = NULL;

	strcpy(j.from, OID_A);
	strcpy(j.to, OID_B);
	j.why = strdup("unit 'a.service' failed\n\x1b[31m");
	ap_journal_set_done(&j, AP_PHASE_BACKUP);
	ap_journal_set_done(&j, AP_PHASE_RELOAD_UNITS);
	assert_int_equal(ap_journal_add_unit(&j, "a.service", AP_ACTION_RESTART, AP_STEP_FAILED, false), 0);
	assert_int_equal(ap_journal_add_unit(&j, "foo@x.service", AP_ACTION_REENABLE, AP_STEP_DONE, true), 0);
	/* the stronger action wins when a unit comes twice */
	assert_int_equal(ap_journal_add_unit(&j, "a.service", AP_ACTION_DISABLE_STOP, AP_STEP_PENDING, false), 0);
	assert_int_equal(j.n_units, 2);
	assert_int_equal(ap_journal_format(&j, &text), 0);
	assert_null(strchr(strstr(text, "why "), '\x1b')); /* one printable line */
	assert_int_equal(ap_journal_parse(text, &back, NULL), 0);
	assert_string_equal(back.from, OID_A);
	assert_string_equal(back.base, "");
	assert_int_equal(back.mode, AP_JOURNAL_ROLLBACK);
	assert_int_equal(back.done, j.done);
	assert_int_equal(back.units[0].action, AP_ACTION_DISABLE_STOP);
	assert_int_equal(back.units[1].state, AP_STEP_DONE);
	assert_true(back.units[1].owed);
	assert_int_equal(ap_journal_format(&back, &again), 0);
	assert_string_equal(text, again);
	free(text), free(again);
	ap_journal_clear(&back);
	ap_journal_clear(&j);
}

/* What the previous release wrote: its installed flag means every file phase was done. */
static void test_version_1(void **state)
{
	struct ap_journal j;

	assert_int_equal(ap_journal_parse("from -\nto " OID_B "\ninstalled 1\nreload 1\n"
					  "unit restart a.service\nunit enable b.service\n", &j, NULL), 0);
	assert_string_equal(j.from, "");
	assert_true(ap_journal_is_done(&j, AP_PHASE_FILES));
	assert_false(ap_journal_is_done(&j, AP_PHASE_RELOAD));
	assert_int_equal(j.units[1].action, AP_ACTION_REENABLE);
	assert_int_equal(j.units[1].state, AP_STEP_PENDING);
	ap_journal_clear(&j);
	assert_int_equal(ap_journal_parse("from -\nto " OID_B "\ninstalled 0\nreload 0\n", &j, NULL), 0);
	assert_false(ap_journal_is_done(&j, AP_PHASE_FILES));
	assert_true(ap_journal_is_done(&j, AP_PHASE_RELOAD));
	ap_journal_clear(&j);
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"autopull-journal 3\n",
		HEAD,                                           /* no done line */
		"autopull-journal 2\nfrom " OID_A "\nto -\nbase -\nmode apply\ndone\n",
		HEAD "done files\ndone files\n",                /* repeated key */
		HEAD "done files teleport\n",
		HEAD "done\nunit restart a.service\n",          /* version-1 unit line */
		HEAD "done\nunit restart done new my app.service\n",
		HEAD "done\nunit restart done new ../x.service\n",
		HEAD "done\nunit explode done new a.service\n",
		HEAD "done\nunit none done new a.service\n",
		HEAD "done\nunit restart maybe new a.service\n",
		HEAD "done\nunit restart done old a.service\n",
		HEAD "done\nunit restart done new a.service extra\n",
		HEAD "done\nunit restart done new a.service\nunit start done new a.service\n",
		HEAD "done\nwhy rollback without mode\n",
		"autopull-journal 2\nfrom " OID_A "\nto " OID_B "\nbase -\nmode rollback\ndone\n",
		HEAD "done\nfrobnicate 1\n",
		"from " OID_A "\nto " OID_B "\ninstalled 2\n",
		"from " OID_A "\nto " OID_B "\nmode apply\n",
		"autopull-journal 2\nfrom " OID_A "\nto 0123\nbase -\nmode apply\ndone\n",
		"autopull-journal 2\nfrom " OID_A "\nto " "0123456789ABCDEF0123456789abcdef01234567"
		"\nbase -\nmode apply\ndone\n",
	};

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		struct ap_journal j;
		const char *why = NULL;

		if (ap_journal_parse(bad[i], &j, &why) != -EBADMSG)
			fail_msg("accepted malformed journal #%zu:\n%s", i, bad[i]);
		assert_non_null(why);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_version_1),
		cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
