/* Fuzzes the heartbeat history format and the guard over what it parses. Invariants:
 * format(parse(x)) parses to the same samples and formats to the same text; pruning keeps
 * at most max_samples, none dated after "now" and none older than the window; the verdict
 * for each unit is computed without crashing and is "looping" only with a reason. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "fuzz.h"
#include "heartbeat.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_sample(const struct ap_hb_sample *a, const struct ap_hb_sample *b)
{
	return strcmp(a->unit, b->unit) == 0 && strcmp(a->boot_id, b->boot_id) == 0 &&
	       a->mono_usec == b->mono_usec && a->real_usec == b->real_usec &&
	       strcmp(a->invocation_id, b->invocation_id) == 0 && a->n_restarts == b->n_restarts &&
	       strcmp(a->active_state, b->active_state) == 0 &&
	       strcmp(a->sub_state, b->sub_state) == 0 && strcmp(a->result, b->result) == 0 &&
	       a->exec_main_status == b->exec_main_status &&
	       a->active_enter_real_usec == b->active_enter_real_usec &&
	       a->last_trigger_real_usec == b->last_trigger_real_usec &&
	       a->interval_usec == b->interval_usec;
}

static void check_round_trip(const struct ap_hb_history *h)
{
	struct ap_hb_history back = { 0 };
	char *text = NULL, *again = NULL;

	FUZZ_CHECK(ap_hb_history_format(h, &text) == 0);
	FUZZ_CHECK(ap_hb_history_parse(text, &back) == 0);
	FUZZ_CHECK(back.n == h->n);
	for (size_t i = 0; i < h->n; i++)
		FUZZ_CHECK(same_sample(&h->v[i], &back.v[i]));
	FUZZ_CHECK(ap_hb_history_format(&back, &again) == 0);
	FUZZ_CHECK(strcmp(text, again) == 0);
	free(text);
	free(again);
	ap_hb_history_clear(&back);
}

/* "now" is the first sample's time plus a little, so that the history straddles it. */
static void check_guard(struct ap_hb_history *h)
{
	char boot[sizeof(h->v[0].boot_id)]; /* a copy: pruning moves the samples */
	uint64_t now_mono = h->v[0].mono_usec + 60000000, now_real = h->v[0].real_usec + 60000000;
	uint64_t window = 300000000;

	memcpy(boot, h->v[0].boot_id, sizeof(boot));

	for (size_t i = 0; i < h->n && i < 8; i++) {
		struct ap_hb_verdict v;
		int r = ap_hb_judge(h, h->v[i].unit, boot, now_mono, now_real, window, 3, &v);

		FUZZ_CHECK(r == 0 || r == -ENOENT);
		FUZZ_CHECK(!v.looping || v.why[0]);
	}
	ap_hb_history_prune(h, boot, now_mono, now_real, window, 16);
	FUZZ_CHECK(h->n <= 16);
	for (size_t i = 0; i < h->n; i++) {
		const struct ap_hb_sample *s = &h->v[i];
		bool same_boot = strcmp(s->boot_id, boot) == 0;
		uint64_t t = same_boot ? s->mono_usec : s->real_usec;
		uint64_t now = same_boot ? now_mono : now_real;

		FUZZ_CHECK(t <= now && now - t <= window);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = strndup((const char *)data, size);
	struct ap_hb_history h = { 0 };

	if (!text)
		return 0;
	FUZZ_CHECK(ap_hb_history_parse(text, &h) == 0);
	check_round_trip(&h);
	if (h.n > 0 && h.v[0].mono_usec < UINT64_MAX / 2 && h.v[0].real_usec < UINT64_MAX / 2)
		check_guard(&h);
	ap_hb_history_clear(&h);
	free(text);
	return 0;
}
