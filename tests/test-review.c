/* The plan of several hosts as a review comment (print-review.c): Markdown whose table
 * structure no repository path can break, and JSON that parses. Plans are made up here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "print.h"
#include "util.h"

#define FROM "1111111111111111111111111111111111111111"
#define TO "2222222222222222222222222222222222222222"

/* Names that try to end a cell, start a row, open a tag, a code span, a link, or reach a
 * terminal raw. */
static char hostile_path[] = "caddy/a|b`c<script>x</script>\n| evil | row |\x1b[31m[l](j:x)*_";
static char hostile_unit[] = "we|b`<b>.service";
static char *reasons[] = { hostile_path, NULL };
static char *unmapped[] = { "systemd/notes|<i>.txt", NULL };

static struct ap_file_op files[] = {
	{ .change = AP_CHANGE_MODIFY, .kind = AP_KIND_FILE, .path = "secret/db.env",
	  .dest = "/etc/db.env", .install = true, .mode = 0600, .secret = true },
	{ .change = AP_CHANGE_MODIFY, .kind = AP_KIND_FILE, .path = hostile_path,
	  .dest = "/etc/caddy/a|b", .install = true, .mode = 0644 },
	{ .change = AP_CHANGE_ADD, .kind = AP_KIND_UNIT, .path = "systemd/web.service",
	  .dest = "/etc/systemd/system/web.service", .install = true, .mode = 0644 },
	{ .change = AP_CHANGE_DELETE, .kind = AP_KIND_UNIT, .path = "systemd/old.service",
	  .dest = "/etc/systemd/system/old.service", .remove = true },
};
static struct ap_unit_action units[] = {
	{ .unit = hostile_unit, .action = AP_ACTION_RESTART, .if_active = true, .reasons = reasons },
	{ .unit = "caddy.service", .action = AP_ACTION_RELOAD, .if_active = true,
	  .reasons = reasons },
	{ .unit = "web.service", .action = AP_ACTION_ENABLE_START, .reasons = reasons },
	{ .unit = "old.service", .action = AP_ACTION_DISABLE_STOP, .reasons = reasons },
	{ .unit = "tmpl@.service", .action = AP_ACTION_NONE, .reasons = reasons,
	  .note = "template: instances start by name" },
};
static struct ap_setup_action setup[] = {
	{ .kind = AP_SETUP_TMPFILES_CREATE, .file = "/etc/tmpfiles.d/a|b.conf",
	  .reason = "tmpfiles/a|b.conf", .note = "x<y" },
};
static struct ap_plan plan = { .from = FROM, .to = TO, .files = files, .n_files = 4,
			       .daemon_reload = true, .units = units, .n_units = 5,
			       .setup = setup, .n_setup = 1, .unmapped = unmapped };
static struct ap_plan empty = { .from = FROM, .to = TO };
static char *refusals[] = { "'systemd/x|y.service' is a symlink\nsecond line", NULL };

/* The number of '|' in a line that are not escaped with a backslash. */
static size_t cells(const char *l, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (l[i] == '\\') {
			i++;
			continue;
		}
		n += l[i] == '|';
	}
	return n;
}

/* Every table row has as many cell separators as its header; nothing can open a tag or reach
 * a terminal. */
static void assert_tables_intact(const char *md)
{
	size_t want = 0;

	assert_null(strchr(md, '\x1b'));
	assert_null(strchr(md, '<'));
	for (const char *c = md; (c = strchr(c, '`')); c++)
		assert_true(c > md && c[-1] == '\\'); /* no code span can open */
	for (const char *l = md; *l;) {
		const char *end = strchrnul(l, '\n');
		size_t len = (size_t)(end - l);

		if (len && l[0] == '|') {
			if (want == 0)
				want = cells(l, len);
			assert_int_equal(cells(l, len), want);
		} else {
			want = 0;
		}
		l = *end ? end + 1 : end;
	}
}

static void test_hostile_names_cannot_break_the_table(void **state)
{
	const struct ap_review_host hosts[] = {
		{ .host = "web|1", .plan = &plan, .validation = "passed" },
	};
	const struct ap_review r = { FROM, TO, hosts, 1 };
	struct ap_buf b = { 0 };

	assert_int_equal(ap_review_markdown(&r, &b), 0);
	assert_tables_intact(b.data);
	/* the escapes are there, the text is still readable */
	assert_non_null(strstr(b.data, "caddy/a\\|b\\`c&lt;script&gt;x&lt;/script&gt;\\\\n\\| evil"));
	assert_non_null(strstr(b.data, "\\\\x1b\\[31m\\[l\\](j:x)\\*\\_"));
	assert_non_null(strstr(b.data, "| web\\|1 | 4 | 1 / 1 / 1 / 1 | 0 |"));
	assert_non_null(strstr(b.data, "| restart | we\\|b\\`&lt;b&gt;.service | if running |"));
	assert_non_null(strstr(b.data, "- systemd/notes\\|&lt;i&gt;.txt\n"));
	assert_non_null(strstr(b.data, "| modify | file | secret/db.env | /etc/db.env "
				       "(0600, secret) |\n"));
	assert_non_null(strstr(b.data, "| tmpfiles-create | /etc/tmpfiles.d/a\\|b.conf | "
				       "tmpfiles/a\\|b.conf (x&lt;y) |\n"));
	ap_buf_clear(&b);
}

static void test_refusals_and_validation_are_listed(void **state)
{
	const struct ap_review_host hosts[] = {
		{ .host = "db1", .plan = NULL, .refusals = refusals,
		  .validation = "skipped: systemd-analyze not found" },
		{ .host = "web1", .plan = &empty },
	};
	const struct ap_review r = { FROM, TO, hosts, 2 };
	struct ap_buf b = { 0 };

	assert_int_equal(ap_review_affected(&r), 1);
	assert_int_equal(ap_review_markdown(&r, &b), 0);
	assert_tables_intact(b.data);
	assert_non_null(strstr(b.data, "| db1 | 0 | 0 / 0 / 0 / 0 | 1 |\n"));
	assert_non_null(strstr(b.data, "| web1 | 0 | nothing to do | 0 |\n"));
	/* one refusal stays one list item */
	assert_non_null(strstr(b.data, "- 'systemd/x\\|y.service' is a symlink\\\\nsecond line\n"));
	assert_non_null(strstr(b.data, "Validation: skipped: systemd-analyze not found\n"));
	/* a host with nothing to do gets no section */
	assert_null(strstr(b.data, "#### web1"));
	ap_buf_clear(&b);
}

static void test_no_host_affected(void **state)
{
	const struct ap_review_host hosts[] = { { .host = "a", .plan = &empty },
						{ .host = "b", .plan = &empty } };
	const struct ap_review r = { FROM, TO, hosts, 2 };
	struct ap_buf b = { 0 };

	assert_int_equal(ap_review_affected(&r), 0);
	assert_int_equal(ap_review_markdown(&r, &b), 0);
	assert_string_equal(b.data, "### autopull plan 111111111111..222222222222\n\n"
				    "No host affected: nothing this range changes is installed on "
				    "a, b.\n");
	ap_buf_clear(&b);
}

static void test_json_parses_with_hostile_names(void **state)
{
	const struct ap_review_host hosts[] = {
		{ .host = "web\"1\n", .plan = &plan, .validation = "passed" },
		{ .host = "db1", .refusals = refusals },
	};
	const struct ap_review r = { FROM, TO, hosts, 2 };
	struct ap_buf b = { 0 };
	struct json_object *o, *h, *v;

	assert_int_equal(ap_review_json(&r, &b), 0);
	o = json_tokener_parse(b.data);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "hosts", &h));
	assert_int_equal(json_object_array_length(h), 2);
	assert_true(json_object_object_get_ex(json_object_array_get_idx(h, 0), "host", &v));
	assert_string_equal(json_object_get_string(v), "web\"1\n");
	assert_true(json_object_object_get_ex(json_object_array_get_idx(h, 0), "plan", &v));
	assert_true(json_object_object_get_ex(v, "files", &v));
	assert_true(json_object_object_get_ex(json_object_array_get_idx(v, 0), "path", &v));
	/* the escape character is kept as "\u001b" in the JSON text, not raw */
	assert_null(strchr(b.data, '\x1b'));
	assert_true(json_object_object_get_ex(json_object_array_get_idx(h, 1), "plan", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(o, "affected", &v));
	assert_int_equal(json_object_get_int(v), 2);
	json_object_put(o);
	ap_buf_clear(&b);
}

/* A large range: each table stops at AP_REVIEW_MAX_ROWS rows and says how many it left out;
 * the summary counts them all. */
static void test_large_plans_are_cut(void **state)
{
	struct ap_file_op many[AP_REVIEW_MAX_ROWS + 12];
	char *why[ELEMENTSOF(many) + 1] = { NULL };
	struct ap_unit_action app = { .unit = "app.service", .action = AP_ACTION_RESTART,
				      .if_active = true, .reasons = why };
	struct ap_plan big = { .from = FROM, .to = TO, .files = many, .n_files = ELEMENTSOF(many),
			       .units = &app, .n_units = 1 };
	const struct ap_review_host hosts[] = { { .host = "web1", .plan = &big } };
	const struct ap_review r = { FROM, TO, hosts, 1 };
	struct ap_buf b = { 0 };
	size_t rows = 0;

	for (size_t i = 0; i < ELEMENTSOF(many); i++)
		many[i] = (struct ap_file_op){ .change = AP_CHANGE_ADD, .kind = AP_KIND_FILE,
					       .path = "etc/f", .dest = "/etc/f", .install = true },
		why[i] = "etc/f";
	assert_int_equal(ap_review_markdown(&r, &b), 0);
	for (const char *l = b.data; (l = strstr(l, "\n| add | file |")); l++)
		rows++;
	assert_int_equal(rows, AP_REVIEW_MAX_ROWS);
	assert_non_null(strstr(b.data, "\n... and 12 more (--format json lists them all)\n"));
	assert_non_null(strstr(b.data, "| web1 | 42 | 1 / 0 / 0 / 0 | 0 |\n"));
	/* one unit restarted for every file names five of them */
	assert_non_null(strstr(b.data, "| restart | app.service | if running | etc/f, etc/f, etc/f, "
				       "etc/f, etc/f and 37 more |\n"));
	ap_buf_clear(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostile_names_cannot_break_the_table),
		cmocka_unit_test(test_refusals_and_validation_are_listed),
		cmocka_unit_test(test_no_host_affected),
		cmocka_unit_test(test_json_parses_with_hostile_names),
		cmocka_unit_test(test_large_plans_are_cut),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
