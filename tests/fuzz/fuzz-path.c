/* Fuzzes repository-path checks and mapping: ap_path_is_safe_relative against a plain
 * second implementation, and ap_plan_map_path over a fixed config. Invariants (plan.h,
 * util.h): unsafe paths are refused with -EINVAL, a dest that would reach PATH_MAX with
 * -ENAMETOOLONG; a mapped dest is a normalised absolute
 * path strictly below its configured root (dest[0..root_len) is the root, then '/'), never
 * has a "." or ".." component, names a file (no trailing '/'), and a unit or drop-in names
 * a valid unit. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "fuzz.h"
#include "plan.h"
#include "unitfile.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char config_text[] =
	"repo:\n  url: file:///srv/infra.git\n"
	"state_dir: /var/lib/autopull\nunit_dir: /etc/systemd/system\n"
	"units: [systemd/, user/units/]\n"
	"files:\n"
	"  - src: caddy/Caddyfile\n    dest: /etc/caddy/Caddyfile\n"
	"  - src: sudoers/\n    dest: /etc/sudoers.d/\n"
	"  - src: systemd/extra/\n    dest: /etc/extra/\n"
	"  - src: env/\n    dest: /etc/default/\n"
	"  - src: top\n    dest: /top\n";

static struct ap_config *cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet_env();
	if (fuzz_config_load(config_text, sizeof(config_text) - 1, false, &cfg) < 0)
		abort();
	return 0;
}

/* The documented rule, written out the long way: relative, no control characters, no
 * empty, "." or ".." component (one trailing '/' allowed), components of at most NAME_MAX
 * bytes, shorter than PATH_MAX. */
static bool oracle_safe(const char *p)
{
	size_t n = strlen(p), start = 0;

	if (n == 0 || n >= PATH_MAX || p[0] == '/')
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && (unsigned char)p[i] < 0x20)
			return false;
		if (i < n && (unsigned char)p[i] == 0x7f)
			return false;
		if (i == n || p[i] == '/') {
			size_t len = i - start;

			if (len == 0 && !(i == n && n > 0 && p[n - 1] == '/'))
				return false;
			if (len > NAME_MAX || (len == 1 && p[start] == '.') ||
			    (len == 2 && p[start] == '.' && p[start + 1] == '.'))
				return false;
			start = i + 1;
		}
	}
	return true;
}

static const char *root_of(const struct ap_path_map *m)
{
	return m->kind == AP_MAP_FILE ? m->rule->dest : cfg->unit_dir;
}

static void check_mapped(const char *path, const struct ap_path_map *m)
{
	FUZZ_CHECK(m->dest && ap_path_is_normalized_absolute(m->dest));
	FUZZ_CHECK(!ap_endswith(m->dest, "/"));
	FUZZ_CHECK(!strstr(m->dest, "/../") && !strstr(m->dest, "/./"));
	FUZZ_CHECK(m->root_len < strlen(m->dest) && m->dest[m->root_len] == '/');
	FUZZ_CHECK(strncmp(m->dest, root_of(m), m->root_len) == 0);
	FUZZ_CHECK(ap_path_is_safe_relative(m->dest + m->root_len + 1));
	if (m->kind == AP_MAP_FILE) {
		FUZZ_CHECK(m->rule >= cfg->files && m->rule < cfg->files + cfg->n_files);
		FUZZ_CHECK(!m->unit);
		/* a file rule's root is its dest's directory; a directory rule's is its dest */
		FUZZ_CHECK(ap_endswith(m->rule->src, "/") ? m->root_len == strlen(m->rule->dest) - 1
							: strcmp(m->dest, m->rule->dest) == 0);
	} else {
		FUZZ_CHECK(m->root_len == strlen(cfg->unit_dir));
		FUZZ_CHECK(m->unit && ap_unit_name_is_valid(m->unit));
		FUZZ_CHECK(m->kind != AP_MAP_UNIT || ap_endswith(m->dest, m->unit));
	}
	(void)path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *path = strndup((const char *)data, size);
	struct ap_path_map m = { 0 };
	bool safe;
	int r;

	if (!path)
		return 0;
	safe = ap_path_is_safe_relative(path);
	FUZZ_CHECK(safe == oracle_safe(path));
	r = ap_plan_map_path(cfg, path, &m);
	if (!safe || ap_endswith(path, "/")) {
		FUZZ_CHECK(r == -EINVAL);
	} else if (r == -ENAMETOOLONG) {
		/* the config's roots add fewer than 32 bytes to a path shorter than PATH_MAX */
		FUZZ_CHECK(strlen(path) + 32 >= PATH_MAX);
	} else {
		FUZZ_CHECK(r == 0);
		if (m.kind == AP_MAP_IGNORED || m.kind == AP_MAP_UNMAPPED)
			FUZZ_CHECK(!m.dest && !m.unit && !m.rule);
		else
			check_mapped(path, &m);
		ap_path_map_clear(&m);
	}
	free(path);
	return 0;
}
