/* Fuzzes the parsers of the small state files (records.h): pin, bad, overrides, counters, probes,
 * expected, tick, last-apply, owned and file-set manifests. The first byte picks the parser.
 * Invariants: what parses formats to text that parses again and formats to the same bytes, a
 * refusal names a line of the text, and nothing crashes. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "fuzz.h"
#include "records.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned count_lines(const char *text)
{
	unsigned n = 0;

	for (const char *p = text; *p; p++)
		n += *p == '\n' || p[1] == '\0';
	return n;
}

/* A refusal points at a line that exists, or at the one after the last (something missing). */
static void check_error(int r, const struct ap_records_error *e, const char *text)
{
	FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -ENOMEM);
	if (r == -EBADMSG)
		FUZZ_CHECK(e->what && e->line >= 1 && e->line <= count_lines(text) + 1);
}

static void pin(const char *text)
{
	struct ap_pin p = { 0 }, back = { 0 };
	struct ap_records_error e;
	char *a = NULL, *b = NULL;
	int r = ap_records_pin_parse(text, &p, &e);

	check_error(r, &e, text);
	if (r < 0)
		return;
	FUZZ_CHECK(ap_records_pin_format(&p, &a) == 0);
	FUZZ_CHECK(ap_records_pin_parse(a, &back, &e) == 0);
	FUZZ_CHECK(ap_records_pin_format(&back, &b) == 0);
	FUZZ_CHECK(strcmp(a, b) == 0 && back.realtime_usec == p.realtime_usec);
	free(a), free(b);
	ap_pin_clear(&p);
	ap_pin_clear(&back);
}

/* bad and overrides: every line kept formats to a line that the strict parser takes. */
static void commits(const char *text, bool overrides, bool strict)
{
	struct ap_bad *v = NULL, *back = NULL;
	size_t n = 0, n_back = 0;
	struct ap_records_error e;
	struct ap_buf b = { 0 };
	int r = overrides ? ap_records_overrides_parse(text, "guard", &v, &n, &e)
			  : ap_records_bad_parse(text, strict, &v, &n, &e);

	check_error(r, &e, text);
	if (r < 0)
		return;
	FUZZ_CHECK(ap_buf_append(&b, "", 0) == 0);
	for (size_t i = 0; i < n; i++) {
		char *l = NULL;

		FUZZ_CHECK(overrides ? ap_records_override_format(v[i].realtime_usec, "guard",
								  v[i].commit, v[i].why, &l) == 0
				     : ap_records_bad_format(v[i].commit, v[i].realtime_usec, v[i].why,
							     &l) == 0);
		FUZZ_CHECK(ap_buf_append(&b, l, strlen(l) + (i + 1 == n)) == 0);
		free(l);
	}
	r = overrides ? ap_records_overrides_parse(b.data, "guard", &back, &n_back, &e)
		      : ap_records_bad_parse(b.data, true, &back, &n_back, &e);
	FUZZ_CHECK(r == 0 && n_back == n && e.line == 0);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(strcmp(back[i].commit, v[i].commit) == 0 &&
			   back[i].realtime_usec == v[i].realtime_usec);
	ap_buf_clear(&b);
	ap_bad_free(v, n);
	ap_bad_free(back, n_back);
}

static void counters(const char *text)
{
	struct ap_counter *v = NULL, *back = NULL;
	size_t n = 0, n_back = 0;
	struct ap_records_error e;
	char *a = NULL, *b = NULL;

	FUZZ_CHECK(ap_records_counters_parse(text, &v, &n, &e) == 0);
	check_error(e.line ? -EBADMSG : 0, &e, text);
	FUZZ_CHECK(ap_records_counters_format(v, n, &a) == 0);
	FUZZ_CHECK(ap_records_counters_parse(a, &back, &n_back, &e) == 0 && e.line == 0);
	FUZZ_CHECK(ap_records_counters_format(back, n_back, &b) == 0);
	FUZZ_CHECK(n_back == n && strcmp(a, b) == 0);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(ap_records_counter_name_ok(v[i].name));
	free(a), free(b), free(v), free(back);
}

static void expected(const char *text)
{
	struct ap_expected_set set = { 0 }, back = { 0 };
	struct ap_records_error e;
	char *a = NULL, *b = NULL;
	int r = ap_records_expected_parse(text, &set, &e);

	check_error(r, &e, text);
	if (r < 0)
		return;
	FUZZ_CHECK(ap_records_expected_format(&set, &a) == 0);
	FUZZ_CHECK(ap_records_expected_parse(a, &back, &e) == 0);
	FUZZ_CHECK(ap_records_expected_format(&back, &b) == 0);
	FUZZ_CHECK(strcmp(a, b) == 0 && back.n == set.n);
	for (size_t i = 0; i < set.n; i++)
		FUZZ_CHECK(set.v[i].root_len < strlen(set.v[i].path) && set.v[i].path[0] == '/');
	free(a), free(b);
	ap_expected_set_clear(&set);
	ap_expected_set_clear(&back);
}

static void small(const char *text, unsigned which)
{
	struct ap_records_error e;
	char *a = NULL, *b = NULL;
	int r;

	if (which == 0) {
		struct ap_tick t, back;

		check_error(r = ap_records_tick_parse(text, &t, &e), &e, text);
		if (r < 0)
			return;
		FUZZ_CHECK(t.pending >= -1 && t.drift >= -1);
		FUZZ_CHECK(ap_records_tick_format(&t, &a) == 0);
		FUZZ_CHECK(ap_records_tick_parse(a, &back, &e) == 0);
		FUZZ_CHECK(back.pending == t.pending && back.drift == t.drift);
	} else {
		struct ap_last_apply la, back;

		check_error(r = ap_records_last_apply_parse(text, &la, &e), &e, text);
		if (r < 0)
			return;
		FUZZ_CHECK(ap_records_last_apply_format(&la, &a) == 0);
		FUZZ_CHECK(ap_records_last_apply_parse(a, &back, &e) == 0);
		FUZZ_CHECK(ap_records_last_apply_format(&back, &b) == 0);
		FUZZ_CHECK(strcmp(a, b) == 0);
	}
	free(a), free(b);
}

static void manifest(const char *text)
{
	struct ap_host_file *v = NULL, *back = NULL;
	size_t n = 0, n_back = 0;
	struct ap_records_error e;
	char *a = NULL, *b = NULL;
	int r = ap_records_manifest_parse(text, &v, &n, &e);

	check_error(r, &e, text);
	if (r < 0)
		return;
	FUZZ_CHECK(ap_records_manifest_format(v, n, &a) == 0);
	FUZZ_CHECK(ap_records_manifest_parse(a, &back, &n_back, &e) == 0);
	FUZZ_CHECK(ap_records_manifest_format(back, n_back, &b) == 0);
	FUZZ_CHECK(n_back == n && strcmp(a, b) == 0);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(v[i].path[0] == '/' && (v[i].dir || v[i].root_len < strlen(v[i].path)));
	free(a), free(b);
	ap_records_manifest_free(v, n);
	ap_records_manifest_free(back, n_back);
}

static void owned(const char *text)
{
	struct ap_records_error e;
	char **v = NULL, **back = NULL, *a = NULL, *b = NULL;
	int r = ap_records_owned_parse(text, &v, &e);
	unsigned n;
	uint64_t last;

	check_error(r, &e, text);
	FUZZ_CHECK(ap_records_summary(text, (unsigned)strlen(text) % 4, &n, &last) == 0);
	FUZZ_CHECK(n <= count_lines(text));
	if (r < 0)
		return;
	FUZZ_CHECK(ap_records_owned_format(v, &a) == 0);
	FUZZ_CHECK(ap_records_owned_parse(a, &back, &e) == 0);
	FUZZ_CHECK(ap_records_owned_format(back, &b) == 0);
	FUZZ_CHECK(strcmp(a, b) == 0 && ap_strv_length(v) == ap_strv_length(back));
	free(a), free(b);
	ap_strv_free(v);
	ap_strv_free(back);
}

/* The probes file: whatever it parses formats, parses back whole and formats the same (pass
 * 0 reads the input, pass 1 what pass 0 wrote). */
static void probes(const char *text)
{
	char *out[2] = { NULL, NULL };
	size_t n[2] = { 0, 0 };

	for (int pass = 0; pass < 2; pass++) {
		struct ap_probe_line *v = NULL;
		struct ap_records_error e;

		FUZZ_CHECK(ap_records_probes_parse(pass ? out[0] : text, &v, &n[pass], &e) == 0);
		if (pass)
			FUZZ_CHECK(e.line == 0);
		else
			check_error(e.line ? -EBADMSG : 0, &e, text);
		FUZZ_CHECK(ap_records_probes_format(v, n[pass], &out[pass]) == 0);
		free(v);
	}
	FUZZ_CHECK(n[0] == n[1] && strcmp(out[0], out[1]) == 0);
	free(out[0]);
	free(out[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_selected_text(data, size);

	if (!text)
		return 0;
	switch (data[0] % 10) {
	case 0: pin(text); break;
	case 1: commits(text, false, true); break;
	case 2: commits(text, true, false); break;
	case 3: counters(text); probes(text); break;
	case 4: expected(text); break;
	case 5: small(text, 0); break;
	case 6: small(text, 1); break;
	case 7: owned(text); break;
	case 8: commits(text, false, false); break;
	default: manifest(text); break;
	}
	free(text);
	return 0;
}
