/* Fuzzes the YAML config loader (config*.c, libyaml behind it). Invariants: a rejected file
 * returns one of the documented errors and leaves *ret alone; an accepted one has every
 * path in the shape config.h promises, and loads the same way with --user forced. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "fuzz.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet_env();
	return 0;
}

static bool is_unit_dir(const char *s)
{
	return !*s || (ap_endswith(s, "/") && s[0] != '/' && !strstr(s, "//"));
}

static void check_rule(const struct ap_file_rule *r)
{
	bool dir = ap_endswith(r->src, "/");
	size_t n = strlen(r->src);

	FUZZ_CHECK(n > 0 && r->src[0] != '/');
	if (dir) {
		char *s = strndup(r->src, n - 1);

		FUZZ_CHECK(s && ap_path_is_safe_relative(s));
		free(s);
	} else {
		FUZZ_CHECK(ap_path_is_safe_relative(r->src));
	}
	FUZZ_CHECK(ap_path_is_normalized_absolute(r->dest));
	FUZZ_CHECK(ap_endswith(r->dest, "/") == dir);
	FUZZ_CHECK(!r->has_mode || (r->mode & ~07777) == 0);
	FUZZ_CHECK(!r->validate || r->validate[0]);
}

static void check_config(const struct ap_config *c, bool force_user)
{
	FUZZ_CHECK(c->path && c->repo_url && *c->repo_url && c->branch && *c->branch);
	FUZZ_CHECK(c->scope == AP_SCOPE_SYSTEM || c->scope == AP_SCOPE_USER);
	FUZZ_CHECK(!force_user || c->scope == AP_SCOPE_USER);
	FUZZ_CHECK(ap_path_is_normalized_absolute(c->state_dir));
	FUZZ_CHECK(ap_path_is_normalized_absolute(c->unit_dir));
	FUZZ_CHECK(strcmp(c->unit_dir, "/") == 0 || !ap_endswith(c->unit_dir, "/"));
	FUZZ_CHECK(c->units);
	for (size_t i = 0; c->units[i]; i++)
		FUZZ_CHECK(is_unit_dir(c->units[i]));
	FUZZ_CHECK((c->files == NULL) == (c->n_files == 0));
	for (size_t i = 0; i < c->n_files; i++)
		check_rule(&c->files[i]);
	FUZZ_CHECK(c->guard.window_usec <= AP_DURATION_MAX_USEC);
	FUZZ_CHECK(c->guard.settle_usec <= AP_DURATION_MAX_USEC);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ap_config *c = (struct ap_config *)(uintptr_t)1, *u = NULL;
	int r = fuzz_config_load(data, size, false, &c);

	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL || r == -ENOMEM);
		FUZZ_CHECK(c == (struct ap_config *)(uintptr_t)1);
		return 0;
	}
	FUZZ_CHECK(r == 0 && c);
	check_config(c, false);
	/* Forcing --user changes the scope and the defaults, never validity. */
	FUZZ_CHECK(fuzz_config_load(data, size, true, &u) == 0);
	check_config(u, true);
	FUZZ_CHECK(u->n_files == c->n_files && strcmp(u->repo_url, c->repo_url) == 0);
	ap_config_free(u);
	ap_config_free(c);
	return 0;
}
