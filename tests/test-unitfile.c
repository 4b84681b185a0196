/* Unit names and the unit-file checks the planner relies on. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "unitfile.h"

#define S(x) x, strlen(x)

static void test_names(void **s)
{
	static const struct { const char *name; int valid, tmpl, candidate; } t[] = {
		{ "web.service", 1, 0, 1 }, { "foo@.service", 1, 1, 1 }, { "foo@a.service", 1, 0, 1 },
		{ "a-b_c:d.timer", 1, 0, 1 }, { "x.socket", 1, 0, 1 }, { "x.conf", 0, 0, 0 },
		{ ".service", 0, 0, 1 }, { "@.service", 0, 0, 1 }, { "a@b@c.service", 0, 0, 1 },
		{ "a b.service", 0, 0, 1 }, { "noext", 0, 0, 0 }, { "x.service.d", 0, 0, 0 },
		/* from systemd's own unit-name tests */
		{ "my app.service", 0, 0, 1 }, { "foo@@.service", 0, 0, 1 }, { "@piep.service", 0, 0, 1 },
		{ "foo.waldo", 0, 0, 0 }, { "", 0, 0, 0 }, { "foo@%i.service", 0, 0, 1 },
		{ "foo.target.wants/plain.service", 0, 0, 1 }, { "user@1000.slice", 1, 0, 1 },
		{ ".test.service", 1, 0, 1 }, { ".test@.service", 1, 1, 1 },
		{ "_strange::::.service", 1, 0, 1 }, { "dev-sda1.device", 1, 0, 1 },
		{ "foo\\x2dbar.service", 1, 0, 1 }, { "home-x\\x2dy.mount", 1, 0, 1 },
		{ "sys-devices-x.swap", 1, 0, 1 }, { "a.automount", 1, 0, 1 }, { "a.scope", 1, 0, 1 },
		{ "a.path", 1, 0, 1 }, { "a.target", 1, 0, 1 }, { "a.slice", 1, 0, 1 },
		/* not ASCII, not a name character, whatever the locale */
		{ "caf\xc3\xa9.service", 0, 0, 1 }, { "a\tb.service", 0, 0, 1 },
		{ "a/b.service", 0, 0, 1 }, { "a*.service", 0, 0, 1 }, { "a.Service", 0, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(ap_unit_name_is_valid(t[i].name), t[i].valid);
		assert_int_equal(ap_unit_name_is_template(t[i].name), t[i].tmpl);
		assert_int_equal(ap_unit_name_is_valid_candidate(t[i].name), t[i].candidate);
	}
}

/* UNIT_NAME_MAX is 256 with the NUL: 255 characters is the longest name. */
static void test_name_length(void **s)
{
	char name[300];

	memset(name, 'a', sizeof(name));
	memcpy(name + 255 - strlen(".service"), ".service", strlen(".service") + 1);
	assert_int_equal(strlen(name), 255);
	assert_true(ap_unit_name_is_valid(name));
	memset(name, 'a', sizeof(name));
	memcpy(name + 256 - strlen(".service"), ".service", strlen(".service") + 1);
	assert_false(ap_unit_name_is_valid(name));
	assert_true(ap_unit_name_is_valid_candidate(name));
}

/* Instance names as systemd's instance_from_socket() writes them. */
static void test_per_connection(void **s)
{
	static const char *const yes[] = {
		"sshd@3-10.0.0.1:22-10.0.0.2:51234.service",           /* IPv4 */
		"sshd@0-127.0.0.1:22-127.0.0.1:40000.service",
		"echo@12-fe80::1:7-fe80::2:40001.service",              /* IPv6 */
		"echo@1-2001:db8::1:7-2001:db8::99:65535.service",
		"echo@1-::ffff:1.2.3.4:7-2001:db8::9:1.service",        /* one side v4-mapped */
		"varlink@4-1234-1000.service",                          /* AF_UNIX pid-uid */
		"varlink@4-unknown.service",                            /* peer in another ns */
		"vm@7-2:1024-3:50000.service",                          /* AF_VSOCK cid:port */
		/* newer systemd: the socket cookie follows the counter */
		"sshd@3-4097-10.0.0.1:22-10.0.0.2:51234.service",
		"varlink@4-8193-1234-1000.service",
		"varlink@4-8193-1234_77-1000.service",                  /* pid_pidfdid-uid */
		"varlink@4-8193-unknown.service",
		"vm@7-55-2:1024-3:50000.service",
	};
	static const char *const no[] = {
		"sshd.service", "sshd@.service", "getty@tty1.service", "backup@2024-01-31.service",
		"sshd@3-10.0.0.1:22-10.0.0.2:51234.socket",             /* not a service */
		"sshd@3-10.0.0.1-10.0.0.2:51234.service",               /* no local port */
		"sshd@3-10.0.0.256:22-10.0.0.2:1.service",              /* not an address */
		"sshd@03-10.0.0.1:22-10.0.0.2:1.service",               /* leading zero */
		"sshd@x-10.0.0.1:22-10.0.0.2:1.service",
		"sshd@3-10.0.0.1:22-10.0.0.2:.service",
		"sshd@3-10.0.0.1:22-10.0.0.2:99999999999.service",      /* port beyond 32 bits */
		"varlink@4-1234.service", "varlink@4-1234-1000-5-6.service",
		"varlink@4-unknownx.service", "varlink@-1234-1000.service",
		"varlink@4-1234_-1000.service", "varlink@4-1234-1000-.service",
		"web@a-b-c.service", "web@1-2-3-4-5-6.service",
	};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		assert_true(ap_unit_instance_is_per_connection(yes[i]));
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_false(ap_unit_instance_is_per_connection(no[i]));
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

static void test_refusals(void **s)
{
	bool start = false, stop = false;

	ap_unitfile_refusals(S("[Unit]\nRefuseManualStop=yes\n[Service]\nRefuseManualStart=yes\n"),
			     &start, &stop);
	assert_false(start); /* only [Unit] counts */
	assert_true(stop);
	/* the last valid assignment wins, an invalid one is ignored */
	ap_unitfile_refusals(S("[Unit]\nRefuseManualStart = on\nRefuseManualStop=0\n"
			       "RefuseManualStart=maybe\n"), &start, &stop);
	assert_true(start);
	assert_false(stop);
	start = stop = false;
	ap_unitfile_refusals(S("[Unit]\nRefuseManualStartX=yes\n"), &start, &stop);
	assert_false(start);
}

static void test_only_metadata_changed(void **s)
{
	const char *a = "[Unit]\nDescription=a\nAfter=x.service\n[Service]\nExecStart=/bin/true\n";

	assert_true(ap_unitfile_only_metadata_changed(S(a),
		S("[Unit]\nDescription=b\nDocumentation=man:b(1)\nAfter=x.service\n[Service]\nExecStart=/bin/true\n")));
	/* a dependency, a [Service] line, or Description= outside [Unit] is no metadata */
	assert_false(ap_unitfile_only_metadata_changed(S(a),
		S("[Unit]\nDescription=a\nAfter=y.service\n[Service]\nExecStart=/bin/true\n")));
	assert_false(ap_unitfile_only_metadata_changed(S(a),
		S("[Unit]\nDescription=a\nAfter=x.service\n[Service]\nExecStart=/bin/false\n")));
	assert_false(ap_unitfile_only_metadata_changed(S(a),
		S("[Unit]\nDescription=a\nAfter=x.service\n[Service]\nExecStart=/bin/true\nDescription=z\n")));
	/* a continuation could carry a dependency inside a Description= line */
	assert_false(ap_unitfile_only_metadata_changed(S(a),
		S("[Unit]\nDescription=a \\\nAfter=x.service\n[Service]\nExecStart=/bin/true\n")));
	assert_false(ap_unitfile_only_metadata_changed(S(a),
		S("[Unit]\rDescription=b\nAfter=x.service\n[Service]\nExecStart=/bin/true\n")));
	/* a backslash inside a line is fine */
	assert_true(ap_unitfile_only_metadata_changed(S("[Service]\nExecStart=/bin/echo a\\b\n"),
		S("[Unit]\nDescription=q\n[Service]\nExecStart=/bin/echo a\\b\n")));
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

#define SAME(a, b) assert_true(ap_unitfile_only_comments_changed(S(a), S(b)))
#define DIFF(a, b) assert_false(ap_unitfile_only_comments_changed(S(a), S(b)))

static void test_only_comments_changed(void **s)
{
	const char *base = "[Unit]\nDescription=web\n\n[Service]\nExecStart=/bin/web\n";

	SAME(base, base);
	SAME(base, "# header\n[Unit]\nDescription=web\n; note\n[Service]\n  # indented\n"
		   "ExecStart=/bin/web\n\n\n");
	SAME("[Unit]\n# old text\nA=1\n", "[Unit]\n# new text\nA=1\n");
	SAME("", "# only a comment\n\n");
	SAME("A=1", "A=1\n");
	DIFF(base, "[Unit]\nDescription=web2\n[Service]\nExecStart=/bin/web\n");
	DIFF("A=1\n", "A=1\nB=2\n");
	DIFF("A=1\n", "");
	/* no inline comments in unit files: the text after '#' is part of the value */
	DIFF("A=1\n", "A=1 # one\n");
	/* only whitespace around a logical line is insignificant, not inside it */
	SAME("A=1\n", "  A=1 \t\n");
	DIFF("A=1\n", "A = 1\n");
}

/* systemd.syntax(7): comment lines after a line ending in a backslash are skipped and the
 * continuation goes on after them; an empty line is a line and ends the continuation. */
static void test_only_comments_changed_continuations(void **s)
{
	SAME("ExecStart=/bin/a \\\n  --flag\n", "ExecStart=/bin/a \\\n# why\n  --flag\n");
	SAME("ExecStart=/bin/a \\\n  --flag\n", "ExecStart=/bin/a \\\n; a\n  # b\n  --flag\n");
	/* an empty line ends the continuation: "--flag" becomes a line of its own */
	DIFF("ExecStart=/bin/a \\\n  --flag\n", "ExecStart=/bin/a \\\n\n  --flag\n");
	DIFF("ExecStart=/bin/a \\\n# c\n\n--flag\n", "ExecStart=/bin/a \\\n# c\n--flag\n");
	/* a comment line never continues, whatever it ends with */
	SAME("A=1\n", "# not continued \\\nA=1\n");
	/* an escaped backslash does not continue the line; an odd count does */
	SAME("A=x\\\\\nB=2\n", "A=x\\\\\n# c\nB=2\n");
	DIFF("A=x\\\\\nB=2\n", "A=x\\\\\\\nB=2\n");
	/* the backslash becomes a space: where the break falls matters */
	SAME("A=x \\\ny\n", "A=x \\\n# c\ny\n");
	SAME("A=x \\\ny\n", "A=x\\\n y\n");       /* both "A=x  y" */
	DIFF("A=x \\\ny\n", "A=x\\\ny\n");        /* "A=x  y" and "A=x y" */
	/* a continuation at the end of the file */
	SAME("A=x \\\n", "A=x \\\n# trailing\n");
	SAME("A=x\n", "A=x\\\n");                   /* "A=x " at the end, stripped */
	DIFF("A=x\nB=1\n", "A=x\\\nB=1\n");
}

/* Line ends as systemd's read_line(): \n, \r, \r\n, \n\r; and the BOM. */
static void test_only_comments_changed_line_ends(void **s)
{
	SAME("A=1\nB=2\n", "A=1\r\nB=2\r\n");
	SAME("A=1\nB=2\n", "A=1\rB=2\r");
	SAME("A=1\nB=2\n", "A=1\n\rB=2");
	SAME("A=1\nB=2\n", "A=1\r\n# c\r\nB=2\r\n");
	/* "\r\r" is two line ends, an empty line: it ends a continuation */
	DIFF("A=1 \\\r\nB=2\n", "A=1 \\\r\rB=2\n");
	SAME("A=1 \\\r\nB=2\n", "A=1 \\\nB=2\n");
	SAME("A=1\n", "\xef\xbb\xbf" "A=1\n");
	/* the BOM hides a comment from the comment check (systemd does the same) */
	DIFF("A=1\n", "\xef\xbb\xbf# c \\\nA=1\n");
}

static void test_check_text(void **s)
{
	static const struct { const char *text; size_t len; int ok; } t[] = {
		{ S("[Unit]\nDescription=caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n"), 1 },
		{ S(""), 1 },
		{ S("\xef\xbb\xbf[Unit]\n"), 1 },                  /* BOM */
		{ S("\xef\xbf\xbd"), 1 },                           /* U+FFFD */
		{ S("\xf4\x8f\xbf\xbd"), 1 },                      /* U+10FFFD */
		{ S("caf\xe9\n"), 0 },                               /* Latin-1 */
		{ S("\xc0\xaf"), 0 }, { S("\xe0\x80\xaf"), 0 },     /* overlong '/' */
		{ S("\xed\xa0\x80"), 0 },                           /* surrogate U+D800 */
		{ S("\xf4\x90\x80\x80"), 0 },                      /* U+110000 */
		{ S("\xf8\x88\x80\x80\x80"), 0 },                  /* 5-byte form */
		{ S("\xe2\x82"), 0 }, { S("\x80"), 0 },             /* cut, lone continuation */
		{ S("\xef\xbf\xbe"), 0 }, { S("\xef\xb7\x90"), 0 }, /* U+FFFE, U+FDD0 */
		{ "A=1\0B=2\n", 8, -1 },                            /* NUL */
		{ "\0", 1, -1 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *why = NULL;
		int r = ap_unitfile_check_text(t[i].text, t[i].len, &why);

		assert_int_equal(r, t[i].ok == 1 ? 0 : -EINVAL);
		if (t[i].ok == 1)
			assert_null(why);
		else
			assert_string_equal(why, t[i].ok == 0 ? "is not valid UTF-8" : "contains a NUL byte");
	}
	assert_int_equal(ap_unitfile_check_text(S("\xff"), NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names), cmocka_unit_test(test_template_of),
		cmocka_unit_test(test_name_length), cmocka_unit_test(test_per_connection),
		cmocka_unit_test(test_only_comments_changed),
		cmocka_unit_test(test_only_comments_changed_continuations),
		cmocka_unit_test(test_only_comments_changed_line_ends),
		cmocka_unit_test(test_check_text),
		cmocka_unit_test(test_has_install), cmocka_unit_test(test_onchange),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_only_metadata_changed),
		cmocka_unit_test(test_only_install_changed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
