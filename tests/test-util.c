/* Tests for util.c: durations at and beyond the largest accepted value; unit globs; the
 * escaping of human output and the JSON string writer; building string vectors; growing a
 * vector; the string index; the parent directory of a path. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util.h"

static void assert_duration(const char *s, int want_r, unsigned long long want)
{
	unsigned long long v = 4242;

	assert_int_equal(ap_parse_duration(s, &v), want_r);
	assert_true(want_r < 0 ? v == 4242 : v == want); /* untouched on failure */
}

static void test_duration_units(void **state)
{
	assert_duration("0", 0, 0);
	assert_duration("0ms", 0, 0);
	assert_duration("300", 0, 300000000ULL);
	assert_duration("10ms", 0, 10000ULL);
	assert_duration("10s", 0, 10000000ULL);
	assert_duration("5m", 0, 300000000ULL);
	assert_duration("2h", 0, 7200000000ULL);
	assert_duration("1d", 0, 86400000000ULL);
	assert_duration("", -EINVAL, 0);
	assert_duration("-1s", -EINVAL, 0);
	assert_duration("+1s", -EINVAL, 0);
	assert_duration(" 1s", -EINVAL, 0);
	assert_duration("1s ", -EINVAL, 0);
	assert_duration("1x", -EINVAL, 0);
	assert_duration("1 s", -EINVAL, 0);
	assert_duration("s", -EINVAL, 0);
	assert_int_equal(ap_parse_duration(NULL, &(unsigned long long){ 0 }), -EINVAL);
}

/* The largest value of each unit that stays within AP_DURATION_MAX_USEC, and one more. */
static void test_duration_edges(void **state)
{
	assert_int_equal(AP_DURATION_MAX_USEC, (unsigned long long)INT64_MAX);
	assert_duration("9223372036854775ms", 0, 9223372036854775000ULL);
	assert_duration("9223372036854776ms", -ERANGE, 0);
	assert_duration("9223372036854s", 0, 9223372036854000000ULL);
	assert_duration("9223372036855s", -ERANGE, 0);
	assert_duration("9223372036854", 0, 9223372036854000000ULL);
	assert_duration("9223372036855", -ERANGE, 0);
	assert_duration("153722867280m", 0, 9223372036800000000ULL);
	assert_duration("153722867281m", -ERANGE, 0);
	assert_duration("2562047788h", 0, 9223372036800000000ULL);
	assert_duration("2562047789h", -ERANGE, 0);
	assert_duration("106751991d", 0, 9223372022400000000ULL);
	assert_duration("106751992d", -ERANGE, 0);
	/* these wrapped around 64 bits and came back as short durations */
	assert_duration("213503983d", -ERANGE, 0);
	assert_duration("3153600000000m", -ERANGE, 0);
	assert_duration("18446744073709551615ms", -ERANGE, 0);
	/* more digits than 64 bits hold */
	assert_duration("18446744073709551616", -ERANGE, 0);
	assert_duration("99999999999999999999s", -ERANGE, 0);
	assert_duration("99999999999999999999x", -ERANGE, 0);
}

/* A backslash in a unit glob is a character of the name ("\x2d" is systemd's escape of
 * '-'), not a glob escape: systemd matches unit patterns with FNM_NOESCAPE. */
static void test_unit_glob_noescape(void **state)
{
	assert_true(ap_unit_glob_match("foo\\x2d*.service", "foo\\x2dbar.service"));
	assert_true(ap_unit_glob_match("foo\\x2dbar.service", "foo\\x2dbar.service"));
	assert_true(ap_unit_glob_match("*\\x2d?ar.service", "foo\\x2dbar.service"));
	assert_false(ap_unit_glob_match("foo\\x2d*.service", "foox2dbar.service"));
	assert_false(ap_unit_glob_match("foo\\*.service", "foo*.service"));
	assert_true(ap_unit_glob_match("foo\\*.service", "foo\\bar.service"));
	assert_true(ap_unit_glob_match("app-[0-9].service", "app-1.service"));
	assert_false(ap_unit_glob_match("app-*.service", "app-1.socket"));
}

static void assert_escaped(const char *s, unsigned flags, const char *want)
{
	char out[256];

	assert_int_equal(ap_escape(s, flags, out, sizeof(out)), strlen(want));
	assert_string_equal(out, want);
}

/* What reaches a terminal or a log: no control character, valid UTF-8, one line. */
static void test_escape(void **state)
{
	assert_escaped("ab\ncd\t\r", 0, "ab\\ncd\\t\\r");
	assert_escaped("a\nb\tc\r", AP_ESCAPE_KEEP_NEWLINE | AP_ESCAPE_KEEP_TAB, "a\nb\tc\\r");
	/* OSC 52 (clipboard write), a screen clear, BEL, DEL */
	assert_escaped("\x1b]52;c;aGk=\a\x1b[2J\x7f", 0, "\\x1b]52;c;aGk=\\x07\\x1b[2J\\x7f");
	/* C1 controls: CSI (U+009B) and NEL (U+0085) encoded in UTF-8 */
	assert_escaped("\xc2\x9b" "2J\xc2\x85", 0, "\\xc2\\x9b2J\\xc2\\x85");
	/* not UTF-8: Latin-1, a lone continuation byte, an overlong '/', a surrogate, past
	 * U+10FFFF, a sequence cut short */
	assert_escaped("Ren\xe9", 0, "Ren\\xe9");
	assert_escaped("\x80\xc0\xaf\xed\xa0\x80", 0, "\\x80\\xc0\\xaf\\xed\\xa0\\x80");
	assert_escaped("\xf4\x90\x80\x80\xe2\x82", 0, "\\xf4\\x90\\x80\\x80\\xe2\\x82");
	/* valid UTF-8 (2, 3 and 4 bytes, U+00A0 right after C1) and backslashes pass */
	assert_escaped("\xc3\xa9\xc2\xa0\xe2\x82\xac\xf0\x9f\x98\x80 a\\x2d", 0,
		       "\xc3\xa9\xc2\xa0\xe2\x82\xac\xf0\x9f\x98\x80 a\\x2d");
}

static void test_escape_buffer(void **state)
{
	char out[8];

	assert_int_equal(ap_escape("ab\ncd", 0, out, sizeof(out)), 6);
	assert_string_equal(out, "ab\\ncd");
	/* an escape or a character that does not fit whole is left out, not cut in half */
	assert_int_equal(ap_escape("abcde\x1b", 0, out, sizeof(out)), 5);
	assert_string_equal(out, "abcde");
	assert_int_equal(ap_escape("abcde\xe2\x82\xac", 0, out, sizeof(out)), 5);
	assert_string_equal(out, "abcde");
	assert_int_equal(ap_escape("\x7f\x7f", 0, out, sizeof(out)), 4);
	assert_string_equal(out, "\\x7f");
	assert_int_equal(ap_escape("x", 0, out, 1), 0);
	assert_string_equal(out, "");
	assert_int_equal(ap_escape("x", 0, out, 0), 0);
}

static void test_linef(void **state)
{
	struct ap_buf b = { 0 };

	assert_int_equal(ap_buf_linef(&b, "  applied: \"%s\" by %s", "x\ny\x1b[2J", "Ren\xe9"), 0);
	assert_string_equal(b.data, "  applied: \"x\\ny\\x1b[2J\" by Ren\\xe9\n");
	ap_buf_clear(&b);
}

static void assert_json(const char *s, const char *want)
{
	struct ap_buf b = { 0 };

	assert_int_equal(ap_buf_json_string(&b, s), 0);
	assert_string_equal(b.data, want);
	ap_buf_clear(&b);
}

/* JSON output is valid UTF-8 whatever the input: bytes that are not UTF-8 become \u00XX
 * (read as Latin-1), controls too; valid UTF-8 passes as it is. */
static void test_json_string(void **state)
{
	assert_json("a\"b\\c", "\"a\\\"b\\\\c\"");
	assert_json("\x1b]52;c;aGk=\a\n\x7f", "\"\\u001b]52;c;aGk=\\u0007\\u000a\\u007f\"");
	assert_json("Ren\xe9 M\xfcller", "\"Ren\\u00e9 M\\u00fcller\"");
	assert_json("\xc2\x9b\xc3\xa9\xe2\x82\xac", "\"\\u009b\xc3\xa9\xe2\x82\xac\"");
	assert_json("\xed\xa0\x80\xf0\x9f\x98\x80", "\"\\u00ed\\u00a0\\u0080\xf0\x9f\x98\x80\"");
}

/* The builder is a vector at every step, and it grows by doubling: n pushes reallocate
 * O(log n) times, which is what makes building a large vector (the trust cache's 100,000
 * ids) linear. Counted by the distinct capacities seen, not timed. */
static void test_strv_builder(void **state)
{
	_cleanup_strv_builder_ struct ap_strv_builder b = { 0 };
	_cleanup_strv_free_ char **copy = NULL, **none = NULL;
	size_t grew = 0, last_cap = 0;
	char one[16];

	assert_null(ap_strv_builder_take(&b));
	for (unsigned i = 0; i < 100000; i++) {
		snprintf(one, sizeof(one), "%u", i);
		assert_int_equal(ap_strv_builder_push(&b, one), 0);
		assert_int_equal(b.len, i + 1);
		assert_null(b.v[b.len]);
		assert_true(b.cap > b.len);
		grew += b.cap != last_cap;
		last_cap = b.cap;
	}
	assert_true(grew <= 14); /* 16 << 13 > 100000 */
	assert_int_equal(ap_strv_length(b.v), 100000);
	assert_string_equal(b.v[0], "0");
	assert_string_equal(b.v[99999], "99999");

	assert_int_equal(ap_strv_copy(b.v, &copy), 0);
	assert_int_equal(ap_strv_length(copy), 100000);
	assert_string_equal(copy[4242], "4242");
	assert_int_equal(ap_strv_copy(NULL, &none), 0);
	assert_null(none);
}

/* Growth doubles the room and keeps what is there; the room is taken as given. */
static void test_grow(void **state)
{
	size_t cap = 0, n;
	int *v = NULL, *nv;

	for (n = 0; n < 1000; n++) {
		nv = ap_grow(v, n, &cap, sizeof(*v));
		assert_non_null(nv);
		v = nv;
		v[n] = (int)n;
		assert_true(cap > n);
		assert_true(cap == 16 || cap / 2 <= n); /* doubled only when full */
	}
	assert_int_equal(cap, 1024);
	for (n = 0; n < 1000; n++)
		assert_int_equal(v[n], (int)n);
	assert_ptr_equal(ap_grow(v, 1000, &cap, sizeof(*v)), v); /* room left: no copy */
	cap = 0; /* room unknown: grown from the entries there */
	v = ap_grow(v, 1000, &cap, sizeof(*v));
	assert_non_null(v);
	assert_int_equal(cap, 2000);
	v[1999] = 1999;
	assert_int_equal(v[999], 999);
	free(v);
}

/* The index gives each key its position, finds keys by their text, not their address, and
 * keeps the first position of a key added twice (as a search of the vector would). */
static void test_strindex(void **state)
{
	_cleanup_strindex_ struct ap_strindex x = { 0 };
	char same[] = "b.service";
	size_t pos = 4242;

	assert_false(ap_strindex_find(&x, "a.service", &pos)); /* empty: nothing allocated */
	assert_int_equal(pos, 4242);
	assert_int_equal(ap_strindex_add(&x, "a.service", 0), 1);
	assert_int_equal(ap_strindex_add(&x, "b.service", 1), 1);
	assert_int_equal(ap_strindex_add(&x, same, 2), 0);
	assert_int_equal(ap_strindex_add(&x, "a.service", 3), 0);
	assert_int_equal(x.n, 2);
	assert_true(ap_strindex_find(&x, "a.service", &pos));
	assert_int_equal(pos, 0);
	assert_true(ap_strindex_find(&x, same, &pos));
	assert_int_equal(pos, 1);
	assert_true(ap_strindex_find(&x, "", &pos) == false);
	assert_int_equal(pos, 1);
	assert_int_equal(ap_strindex_add(&x, "", 5), 1); /* the empty string is a key too */
	assert_true(ap_strindex_find(&x, "", &pos));
	assert_int_equal(pos, 5);
	ap_strindex_clear(&x);
	assert_int_equal(x.n, 0);
	assert_false(ap_strindex_find(&x, "a.service", &pos));
}

/* Each string once, in the order first added; the vector taken is an ordinary one. */
static void test_strset(void **state)
{
	_cleanup_strset_ struct ap_strset s = { 0 };
	char **v;

	assert_false(ap_strset_has(&s, "/etc/a"));
	assert_null(ap_strset_take(&s)); /* empty: NULL, as an empty vector */
	assert_int_equal(ap_strset_add(&s, "/etc/b"), 1);
	assert_int_equal(ap_strset_add(&s, "/etc/a"), 1);
	assert_int_equal(ap_strset_add(&s, "/etc/b"), 0);
	assert_int_equal(ap_strset_add(&s, "/etc/c"), 1);
	assert_true(ap_strset_has(&s, "/etc/a"));
	assert_false(ap_strset_has(&s, "/etc/d"));
	v = ap_strset_take(&s);
	assert_int_equal(ap_strv_length(v), 3);
	assert_string_equal(v[0], "/etc/b");
	assert_string_equal(v[1], "/etc/a");
	assert_string_equal(v[2], "/etc/c");
	ap_strv_free(v);
	assert_false(ap_strset_has(&s, "/etc/a")); /* taken: empty again */
	assert_int_equal(ap_strset_add(&s, "/etc/a"), 1);
}

/* A removal leaves every other key findable at its position, however the runs of slots lie;
 * removed keys are gone and may come back. */
static void test_strindex_remove(void **state)
{
	_cleanup_strindex_ struct ap_strindex x = { 0 };
	_cleanup_strv_builder_ struct ap_strv_builder keys = { 0 };
	char name[32];
	size_t pos = 4242;

	assert_false(ap_strindex_remove(&x, "a", &pos)); /* empty: nothing allocated */
	assert_int_equal(pos, 4242);
	for (size_t i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "/etc/d%03zu/f-%06zu", i % 97, i);
		assert_int_equal(ap_strv_builder_push(&keys, name), 0);
		assert_int_equal(ap_strindex_add(&x, keys.v[i], i), 1);
	}
	for (size_t i = 0; i < 20000; i += 3) {
		assert_true(ap_strindex_remove(&x, keys.v[i], &pos));
		assert_int_equal(pos, i);
		assert_false(ap_strindex_remove(&x, keys.v[i], &pos));
	}
	assert_int_equal(x.n, 20000 - 6667);
	for (size_t i = 0; i < 20000; i++) {
		bool found = ap_strindex_find(&x, keys.v[i], &pos);

		assert_int_equal(found, i % 3 != 0);
		if (found)
			assert_int_equal(pos, i);
	}
	assert_int_equal(ap_strindex_add(&x, keys.v[0], 7), 1);
	assert_true(ap_strindex_find(&x, keys.v[0], &pos));
	assert_int_equal(pos, 7);
}

/* Removal keeps the order of the rest; a path owned again goes to the end, as a push did. */
static void test_strset_remove(void **state)
{
	_cleanup_strset_ struct ap_strset s = { 0 };
	char **v = NULL;

	assert_int_equal(ap_strv_push(&v, "/etc/a"), 0);
	assert_int_equal(ap_strv_push(&v, "/etc/b"), 0);
	assert_int_equal(ap_strv_push(&v, "/etc/c"), 0);
	assert_int_equal(ap_strset_adopt(&s, &v), 0);
	assert_null(v);
	assert_true(ap_strset_has(&s, "/etc/b"));
	assert_int_equal(ap_strset_remove(&s, "/etc/a"), 1);
	assert_int_equal(ap_strset_remove(&s, "/etc/a"), 0);
	assert_int_equal(ap_strset_remove(&s, "/etc/x"), 0);
	assert_false(ap_strset_has(&s, "/etc/a"));
	assert_int_equal(ap_strset_add(&s, "/etc/d"), 1);
	assert_int_equal(ap_strset_add(&s, "/etc/a"), 1);
	assert_int_equal(ap_strset_add(&s, "/etc/b"), 0);
	v = ap_strset_take(&s);
	assert_int_equal(ap_strv_length(v), 4);
	assert_string_equal(v[0], "/etc/b");
	assert_string_equal(v[1], "/etc/c");
	assert_string_equal(v[2], "/etc/d");
	assert_string_equal(v[3], "/etc/a");
	ap_strv_free(v);
	v = NULL;
	assert_int_equal(ap_strset_adopt(&s, &v), 0); /* the empty vector */
	assert_int_equal(ap_strset_add(&s, "/etc/e"), 1);
	assert_int_equal(ap_strset_remove(&s, "/etc/e"), 1);
	v = ap_strset_take(&s);
	assert_non_null(v); /* a vector once built stays one, emptied */
	assert_null(v[0]);
	ap_strv_free(v);
}

/* Through many growths every key keeps its position; near names do not find each other. */
static void test_strindex_growth(void **state)
{
	_cleanup_strindex_ struct ap_strindex x = { 0 };
	_cleanup_strv_builder_ struct ap_strv_builder keys = { 0 };
	char name[32];
	size_t pos;

	for (size_t i = 0; i < 100000; i++) {
		snprintf(name, sizeof(name), "svc-%06zu.service", i);
		assert_int_equal(ap_strv_builder_push(&keys, name), 0);
	}
	for (size_t i = 0; i < 100000; i++)
		assert_int_equal(ap_strindex_add(&x, keys.v[i], i), 1);
	for (size_t i = 0; i < 100000; i += 7)
		assert_int_equal(ap_strindex_add(&x, keys.v[i], 0), 0);
	assert_int_equal(x.n, 100000);
	assert_true(x.cap >= 2 * x.n);
	for (size_t i = 0; i < 100000; i++) {
		snprintf(name, sizeof(name), "svc-%06zu.service", i);
		assert_true(ap_strindex_find(&x, name, &pos));
		assert_int_equal(pos, i);
	}
	assert_false(ap_strindex_find(&x, "svc-100000.service", &pos));
	assert_false(ap_strindex_find(&x, "svc-00000.service", &pos));
	assert_false(ap_strindex_find(&x, "svc-000001.servic", &pos));
}

static void assert_parent(const char *path, const char *want)
{
	_cleanup_free_ char *p = ap_path_parent(path);

	if (!want) {
		assert_null(p);
		assert_int_equal(errno, EINVAL);
	} else
		assert_string_equal(p, want);
}

/* The root is a directory of its own, never "": callers open what this returns. */
static void test_path_parent(void **state)
{
	assert_parent("/etc/caddy/Caddyfile", "/etc/caddy");
	assert_parent("/etc/caddy/", "/etc/caddy");
	assert_parent("/motd", "/");
	assert_parent("/", "/");
	assert_parent("a/b", "a");
	assert_parent("motd", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_units),
		cmocka_unit_test(test_duration_edges),
		cmocka_unit_test(test_unit_glob_noescape),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_escape_buffer),
		cmocka_unit_test(test_linef),
		cmocka_unit_test(test_json_string),
		cmocka_unit_test(test_strv_builder),
		cmocka_unit_test(test_grow),
		cmocka_unit_test(test_strindex),
		cmocka_unit_test(test_strindex_growth),
		cmocka_unit_test(test_strset),
		cmocka_unit_test(test_strindex_remove),
		cmocka_unit_test(test_strset_remove),
		cmocka_unit_test(test_path_parent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
