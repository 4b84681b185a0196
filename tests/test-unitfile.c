/* Unit names and the unit-file checks the planner relies on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "unitfile.h"

#define S(x) x, strlen(x)

static void test_names(void **s)
{
	static const struct { const char *name; int valid, tmpl; } t[] = {
		{ "web.service", 1, 0 }, { "foo@.service", 1, 1 }, { "foo@a.service", 1, 0 },
		{ "a-b_c:d.timer", 1, 0 }, { "x.socket", 1, 0 }, { "x.conf", 0, 0 },
		{ ".service", 0, 0 }, { "@.service", 0, 0 }, { "a@b@c.service", 0, 0 },
		{ "a b.service", 0, 0 }, { "noext", 0, 0 }, { "x.service.d", 0, 0 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(ap_unit_name_is_valid(t[i].name), t[i].valid);
		assert_int_equal(ap_unit_name_is_template(t[i].name), t[i].tmpl);
	}
}

static void test_template_of(void **s)
{
	char buf[64];

	assert_true(ap_unit_name_template_of("foo@a.service", buf, sizeof(buf)));
	assert_string_equal(buf, "foo@.service");
	assert_false(ap_unit_name_template_of("foo@.service", buf, sizeof(buf)));
	assert_false(ap_unit_name_template_of("foo.service", buf, sizeof(buf)));
	assert_false(ap_unit_name_template_of("foo@a.service", buf, 5));
	assert_true(ap_unit_name_is_restartable("a.path"));
	assert_false(ap_unit_name_is_restartable("a.target"));
}

static void test_has_install(void **s)
{
	assert_true(ap_unitfile_has_install(S("[Install]\nWantedBy=default.target\n")));
	assert_true(ap_unitfile_has_install(S("[Unit]\n[Install]\n  Alias = x.service\n")));
	assert_false(ap_unitfile_has_install(S("[Install]\n# WantedBy=x\n")));
	assert_false(ap_unitfile_has_install(S("[Service]\nWantedBy=x\n")));
	assert_false(ap_unitfile_has_install(S("")));
}

static void test_onchange(void **s)
{
	assert_int_equal(ap_unitfile_onchange(S("[Unit]\nDescription=x\n")), AP_ONCHANGE_RESTART);
	assert_int_equal(ap_unitfile_onchange(S("[Unit]\nX-AutoPull-OnChange=reload\n")), AP_ONCHANGE_RELOAD);
	assert_int_equal(ap_unitfile_onchange(S("[Unit]\nX-AutoPull-OnChange = none \n")), AP_ONCHANGE_NONE);
	assert_int_equal(ap_unitfile_onchange(S("[Unit]\nX-AutoPull-OnChange=bogus\n")), AP_ONCHANGE_INVALID);
	/* only [Unit] counts */
	assert_int_equal(ap_unitfile_onchange(S("[Service]\nX-AutoPull-OnChange=none\n")), AP_ONCHANGE_RESTART);
}

static void test_only_install_changed(void **s)
{
	const char *a = "[Unit]\nDescription=x\n[Install]\nWantedBy=a.target\n";
	const char *b = "[Unit]\nDescription=x\n\n[Install]\nWantedBy=b.target\n";
	const char *c = "[Unit]\nDescription=y\n[Install]\nWantedBy=a.target\n";

	assert_true(ap_unitfile_only_install_changed(S(a), S(b)));
	assert_false(ap_unitfile_only_install_changed(S(a), S(c)));
	assert_true(ap_unitfile_only_install_changed(S("[Unit]\nA=1\n"), S("[Unit]\nA=1\n[Install]\nWantedBy=x\n")));
	assert_false(ap_unitfile_only_install_changed(S("[Unit]\nA=1\n"), S("[Service]\nA=1\n")));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names), cmocka_unit_test(test_template_of),
		cmocka_unit_test(test_has_install), cmocka_unit_test(test_onchange),
		cmocka_unit_test(test_only_install_changed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
