/* Fuzzes every text function of unitfile.c. The input is two texts, old and new, split at
 * a position taken from the first byte. Invariants: only_comments_changed and
 * only_install_changed are reflexive and symmetric, only_metadata_changed is symmetric;
 * adding comment lines (at the start, or after a line end at the end) is only a comment
 * change; check_text accepts no NUL and
 * gives a reason exactly when it refuses; the name predicates nest (template or
 * per-connection instance => valid => candidate, shorter than AP_UNIT_NAME_MAX); a User= is
 * returned only when it fits. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "fuzz.h"
#include "unitfile.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text_funcs(const char *t, size_t n)
{
	const char *why = NULL;
	enum ap_onchange oc = ap_unitfile_onchange(t, n);
	int r = ap_unitfile_check_text(t, n, &why);
	char *more = malloc(n + 32);

	FUZZ_CHECK(oc >= AP_ONCHANGE_RESTART && oc <= AP_ONCHANGE_INVALID);
	FUZZ_CHECK(r == 0 || r == -EINVAL);
	FUZZ_CHECK((r == 0) == (why == NULL));
	if (r == 0)
		FUZZ_CHECK(!memchr(t, '\0', n));
	bool start = false, stop = false;

	(void)ap_unitfile_has_install(t, n);
	ap_unitfile_refusals(t, n, &start, &stop);
	char user[8];
	int u = ap_unitfile_user(t, n, user, sizeof(user));
	FUZZ_CHECK(u == 0 || u == -ENAMETOOLONG || (u == 1 && strlen(user) < sizeof(user)));
	FUZZ_CHECK(ap_unitfile_only_comments_changed(t, n, t, n));
	FUZZ_CHECK(ap_unitfile_only_install_changed(t, n, t, n));
	if (!more)
		return;
	/* comment lines in front, and after the last line */
	memcpy(more, "# a\n ;b\n", 8);
	memcpy(more + 8, t, n);
	FUZZ_CHECK(ap_unitfile_only_comments_changed(t, n, more, n + 8));
	memcpy(more, t, n);
	memcpy(more + n, "\n\t# c \\\n", 8);
	FUZZ_CHECK(ap_unitfile_only_comments_changed(t, n, more, n + 8));
	free(more);
}

static void check_name(const char *t, size_t n)
{
	char *name = strndup(t, n), tmpl[AP_UNIT_NAME_MAX];
	bool valid;

	if (!name)
		return;
	valid = ap_unit_name_is_valid(name);
	FUZZ_CHECK(!valid || (ap_unit_name_is_valid_candidate(name) && strlen(name) < AP_UNIT_NAME_MAX));
	FUZZ_CHECK(!ap_unit_name_is_template(name) || valid);
	FUZZ_CHECK(!ap_unit_instance_is_per_connection(name) ||
		   (valid && strchr(name, '@') && ap_endswith(name, ".service") &&
		    !ap_unit_name_is_template(name)));
	if (ap_unit_name_template_of(name, tmpl, sizeof(tmpl)))
		FUZZ_CHECK(ap_unit_name_is_template(tmpl) && !ap_unit_name_is_template(name));
	free(name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *a, *b;
	size_t split, na, nb;

	if (size == 0)
		return 0;
	split = size > 1 ? data[0] * (size - 1) / 255 : 0;
	a = (const char *)data + 1;
	na = split;
	b = a + split;
	nb = size - 1 - split;
	check_text_funcs(a, na);
	check_text_funcs(b, nb);
	FUZZ_CHECK(ap_unitfile_only_comments_changed(a, na, b, nb) ==
		   ap_unitfile_only_comments_changed(b, nb, a, na));
	FUZZ_CHECK(ap_unitfile_only_install_changed(a, na, b, nb) ==
		   ap_unitfile_only_install_changed(b, nb, a, na));
	FUZZ_CHECK(ap_unitfile_only_metadata_changed(a, na, b, nb) ==
		   ap_unitfile_only_metadata_changed(b, nb, a, na));
	check_name(a, na);
	check_name(b, nb);
	return 0;
}
