/* Fuzzes the parsers of autopull's own state that a disk error or a hand edit can damage:
 * the journal, the event history and the inventory of owned files. The first byte picks the
 * parser. Invariants: whatever parses formats back to text that parses to the same value
 * (journal, event), every owned path is absolute and normalised, and nothing crashes. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "events.h"
#include "fuzz.h"
#include "journal.h"
#include "records.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void journal(const char *text)
{
	struct ap_journal j = { 0 }, back = { 0 };
	char *a = NULL, *b = NULL;

	if (ap_journal_parse(text, &j, NULL) < 0)
		return;
	FUZZ_CHECK(*j.to);
	FUZZ_CHECK(ap_journal_format(&j, &a) == 0);
	FUZZ_CHECK(ap_journal_parse(a, &back, NULL) == 0);
	FUZZ_CHECK(ap_journal_format(&back, &b) == 0);
	FUZZ_CHECK(strcmp(a, b) == 0);
	FUZZ_CHECK(back.n_units == j.n_units && back.done == j.done);
	for (size_t i = 0; i < j.n_units; i++)
		FUZZ_CHECK(ap_unit_action_rank(j.units[i].action) > 0);
	free(a);
	free(b);
	ap_journal_clear(&j);
	ap_journal_clear(&back);
}

static void event(const char *text)
{
	struct ap_event e = { 0 }, back = { 0 };
	char *a = NULL, *b = NULL;

	if (ap_event_parse(text, &e) < 0)
		return;
	FUZZ_CHECK(ap_event_format(&e, &a) == 0);
	FUZZ_CHECK(strchr(a, '\n') == a + strlen(a) - 1); /* one line */
	FUZZ_CHECK(ap_event_parse(a, &back) == 0);
	FUZZ_CHECK(ap_event_format(&back, &b) == 0);
	FUZZ_CHECK(strcmp(a, b) == 0);
	free(a);
	free(b);
	ap_event_clear(&e);
	ap_event_clear(&back);
}

static void owned(const char *text)
{
	char **v = NULL;

	if (ap_records_owned_parse(text, &v, NULL) < 0)
		return;
	for (size_t i = 0; v && v[i]; i++)
		FUZZ_CHECK(ap_path_is_normalized_absolute(v[i]) && strcmp(v[i], "/") != 0);
	ap_strv_free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_selected_text(data, size);

	if (!text)
		return 0;
	switch (data[0] % 3) {
	case 0: journal(text); break;
	case 1: event(text); break;
	default: owned(text); break;
	}
	free(text);
	return 0;
}
