/* linear: checks that building every list that grows with the repository or the host is
 * linear (or n log n) in its length: each builder runs with 10,000 and with 100,000 entries
 * and the ratio of the two CPU times must stay below LIMIT (10 for linear, ~12 for
 * n log n, 100 for quadratic). A ratio, not an absolute time: the check means the same on a
 * fast or a loaded machine. Built and run by bench/run.sh (make bench-linear alone).
 *
 *   linear [-n SMALL]      SMALL entries and 10 x SMALL (default 10000)
 *
 * Before the lists it checks itself on a builder known to be quadratic (ap_strv_push counts
 * and reallocates the vector on every push, util.h): that one must exceed the limit, or the
 * check could not tell and exits 1. Exit 0 when every list is linear, 1 otherwise. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "events.h"
#include "heartbeat.h"
#include "model.h"
#include "plan.h"
#include "records.h"
#include "state-fileset.h"
#include "state.h"
#include "util.h"

#define LIMIT 25.0
#define REPEAT 3

static char tmpdir[] = "/tmp/aplinear-XXXXXX";
static struct ap_config *config;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 ? -errno : 0;
}

static double cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Each builder builds n entries and frees them; it returns 0 or -errno. */
typedef int (*builder_fn)(size_t n);

/* n unit names into a vector: with the builder, or (push) with ap_strv_push, which counts
 * and reallocates the vector on every push: the quadratic builder the check must catch. */
static int build_strv(size_t n, bool push)
{
	_cleanup_strv_builder_ struct ap_strv_builder b = { 0 };
	_cleanup_strv_free_ char **v = NULL;
	char name[64];

	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "svc-%06zu.service", i);
		if ((push ? ap_strv_push(&v, name) : ap_strv_builder_push(&b, name)) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int build_strv_push(size_t n)
{
	return build_strv(n, true);
}

static int build_strv_builder(size_t n)
{
	return build_strv(n, false);
}

static const char unit_old[] = "[Service]\nExecStart=/bin/sleep infinity\n";
static const char unit_new[] = "[Service]\nExecStart=/bin/sleep infinity\nEnvironment=REV=1\n";

/* A diff of n changed unit files into a plan: file ops, one action per unit. */
static int build_plan(size_t n)
{
	struct ap_changes ch = { .v = calloc(n, sizeof(struct ap_change)), .n = 0 };
	struct ap_unit_states states = { 0 };
	struct ap_plan *plan = NULL;
	char *error = NULL;
	char path[64];
	int r = 0;

	if (!ch.v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct ap_change *c = &ch.v[ch.n];
		snprintf(path, sizeof(path), "systemd/svc-%06zu.service", i);
		c->kind = AP_CHANGE_MODIFY;
		c->path = strdup(path);
		c->old_mode = c->new_mode = 0100644;
		snprintf(c->old_oid, sizeof(c->old_oid), "%040zx", 2 * i + 1);
		snprintf(c->new_oid, sizeof(c->new_oid), "%040zx", 2 * i + 2);
		c->old_data = strdup(unit_old);
		c->new_data = strdup(unit_new);
		c->old_len = strlen(unit_old);
		c->new_len = strlen(unit_new);
		ch.n++;
		if (!c->path || !c->old_data || !c->new_data) {
			r = -ENOMEM;
			goto out;
		}
	}
	r = ap_plan_build(config, &ch, &states, "1111111111111111111111111111111111111111",
			  "2222222222222222222222222222222222222222", &plan, &error);
	if (r >= 0 && (plan->n_files != n || plan->n_units != n)) {
		fprintf(stderr, "linear: plan of %zu changes has %zu files, %zu units\n", n,
			plan->n_files, plan->n_units);
		r = -EBADMSG;
	}
out:
	if (plan)
		ap_plan_free(plan);
	free(error);
	ap_changes_clear(&ch);
	return r;
}

/* n changed unit files, with the sockets' services: the units asked of the manager. */
static int build_units_needed(size_t n)
{
	struct ap_changes ch = { .v = calloc(n, sizeof(struct ap_change)), .n = 0 };
	_cleanup_strv_free_ char **v = NULL;
	int r = ch.v ? 0 : -ENOMEM;

	for (size_t i = 0; i < n && r >= 0; i++, ch.n++) {
		ch.v[i].kind = AP_CHANGE_MODIFY;
		ch.v[i].path = ap_strdupf("systemd/svc-%06zu.%s", i, i % 2 ? "socket" : "service");
		ch.v[i].old_mode = ch.v[i].new_mode = 0100644;
		if (!ch.v[i].path)
			r = -ENOMEM;
	}
	if (r >= 0)
		r = ap_plan_units_needed(config, &ch, &v);
	if (r >= 0 && ap_strv_length(v) != n + n / 2)
		r = -EBADMSG;
	ap_changes_clear(&ch);
	return r;
}

/* n changed files under a rule restarting one unit: its n reasons. */
static int build_plan_reasons(size_t n)
{
	struct ap_changes ch = { .v = calloc(n, sizeof(struct ap_change)), .n = 0 };
	struct ap_unit_states states = { 0 };
	struct ap_plan *plan = NULL;
	int r = ch.v ? 0 : -ENOMEM;

	for (size_t i = 0; i < n && r >= 0; i++, ch.n++) {
		ch.v[i].kind = AP_CHANGE_ADD;
		ch.v[i].path = ap_strdupf("env/app-%06zu.env", i);
		ch.v[i].new_mode = 0100644;
		snprintf(ch.v[i].new_oid, sizeof(ch.v[i].new_oid), "%040zx", i + 1);
		if (!ch.v[i].path)
			r = -ENOMEM;
	}
	if (r >= 0)
		r = ap_plan_build(config, &ch, &states, "", "2222222222222222222222222222222222222222",
				  &plan, NULL);
	if (r >= 0 && (plan->n_units != 1 || ap_strv_length(plan->units[0].reasons) != n))
		r = -EBADMSG;
	if (plan)
		ap_plan_free(plan);
	ap_changes_clear(&ch);
	return r;
}

/* The backup set of an apply touching n paths (absent ones: no copies to write). */
static int build_fileset(size_t n)
{
	_cleanup_(ap_state_freep) struct ap_state *s = NULL;
	_cleanup_(ap_state_fileset_freep) struct ap_fileset *f = NULL;
	char dir[64], path[96], name[48];
	static unsigned run;
	int r;

	snprintf(dir, sizeof(dir), "%s/state-%u", tmpdir, run++);
	r = ap_state_open(dir, &s);
	if (r < 0)
		return r;
	r = ap_state_fileset_open(s, ap_state_backup_name("3333333333333333333333333333333333333333",
							  name), true, &f);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r >= 0; i++) {
		struct ap_host_file hf = { .path = path, 
					    .root_len = 4, .present = false };
		snprintf(path, sizeof(path), "/etc/d%03zu/file-%06zu.conf", i % 997, i);
		r = ap_state_fileset_add(f, &hf);
	}
	if (r >= 0 && ap_state_fileset_count(f) != n)
		r = -EBADMSG;
	return r;
}

/* The manifest of a backup set of n entries, written and read back. */
static int build_manifest(size_t n)
{
	struct ap_host_file *v = calloc(n, sizeof(*v)), *back = NULL;
	struct ap_records_error err = { 0 };
	char *text = NULL;
	size_t n_back = 0;
	int r = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n && r >= 0; i++) {
		v[i].path = ap_strdupf("/etc/d%03zu/file-%06zu.conf", i % 997, i);
		v[i].root_len = 4;
		v[i].present = true;
		v[i].mode = 0644;
		v[i].id = (unsigned)i;
		if (!v[i].path)
			r = -ENOMEM;
	}
	if (r >= 0)
		r = ap_records_manifest_format(v, n, &text);
	if (r >= 0)
		r = ap_records_manifest_parse(text, &back, &n_back, &err);
	if (r >= 0 && n_back != n)
		r = -EBADMSG;
	ap_records_manifest_free(v, n);
	if (back)
		ap_records_manifest_free(back, n_back);
	free(text);
	return r;
}

/* The guard's history of n samples: appended, written, read back. */
static int build_history(size_t n)
{
	struct ap_hb_history h = { 0 }, back = { 0 };
	char *text = NULL;
	int r = 0;

	for (size_t i = 0; i < n && r >= 0; i++) {
		struct ap_hb_sample s = { .mono_usec = 1000 + i, .real_usec = 1700000000000000 + i,
					  .n_restarts = 0, .active_enter_real_usec = 1 };
		snprintf(s.unit, sizeof(s.unit), "svc-%06zu.service", i % 1000);
		memcpy(s.boot_id, "0123456789abcdef0123456789abcdef", 33);
		memcpy(s.invocation_id, "fedcba9876543210fedcba9876543210", 33);
		strcpy(s.active_state, "active");
		strcpy(s.sub_state, "running");
		strcpy(s.result, "success");
		r = ap_hb_history_append(&h, &s);
	}
	if (r >= 0)
		r = ap_hb_history_format(&h, &text);
	if (r >= 0)
		r = ap_hb_history_parse(text, &back);
	if (r >= 0 && back.n != n)
		r = -EBADMSG;
	ap_hb_history_clear(&h);
	ap_hb_history_clear(&back);
	free(text);
	return r;
}

/* An event naming n units: its units value built and split again. */
static int build_event_units(size_t n)
{
	_cleanup_strv_builder_ struct ap_strv_builder b = { 0 };
	_cleanup_strv_free_ char **names = NULL;
	enum ap_unit_action_kind *acts = calloc(n, sizeof(*acts));
	char *units = NULL, name[64];
	int r = acts ? 0 : -ENOMEM;

	for (size_t i = 0; i < n && r >= 0; i++) {
		snprintf(name, sizeof(name), "svc-%06zu.service", i);
		acts[i] = i % 2 ? AP_ACTION_RESTART : AP_ACTION_RELOAD;
		r = ap_strv_builder_push(&b, name);
	}
	if (r >= 0)
		r = ap_event_units(b.v, acts, n, &units);
	if (r >= 0)
		r = ap_event_unit_names(units, &names);
	if (r >= 0 && ap_strv_length(names) != n)
		r = -EBADMSG;
	free(acts);
	free(units);
	return r;
}

/* The inventory of n owned files, written and read back with every tenth path listed twice
 * (the parse keeps the first): a no-op tick reads it. */
static int build_owned(size_t n)
{
	_cleanup_strv_builder_ struct ap_strv_builder b = { 0 };
	_cleanup_strv_free_ char **back = NULL;
	struct ap_records_error err = { 0 };
	struct ap_buf dup = { 0 };
	char *text = NULL, path[96];
	int r = 0;

	for (size_t i = 0; i < n && r >= 0; i++) {
		snprintf(path, sizeof(path), "/etc/d%03zu/file-%06zu.conf", i % 997, i);
		r = ap_strv_builder_push(&b, path);
	}
	if (r >= 0)
		r = ap_records_owned_format(b.v, &text);
	if (r >= 0)
		r = ap_buf_append(&dup, text, strlen(text));
	for (size_t i = 0; i < n && r >= 0; i += 10)
		r = ap_buf_printf(&dup, "%s\n", b.v[i]);
	if (r >= 0)
		r = ap_records_owned_parse(dup.data, &back, &err);
	if (r >= 0 && ap_strv_length(back) != n)
		r = -EBADMSG;
	ap_buf_clear(&dup);
	free(text);
	return r;
}

/* The units the last apply restarted, as the guard reads them on every tick: written and
 * read back. */
static int build_restarted(size_t n)
{
	_cleanup_(ap_state_freep) struct ap_state *s = NULL;
	_cleanup_strv_builder_ struct ap_strv_builder b = { 0 };
	_cleanup_strv_free_ char **back = NULL;
	static unsigned run;
	char dir[64], name[64];
	int r = 0;

	for (size_t i = 0; i < n && r >= 0; i++) {
		snprintf(name, sizeof(name), "svc-%06zu.service", i);
		r = ap_strv_builder_push(&b, name);
	}
	snprintf(dir, sizeof(dir), "%s/restarted-%u", tmpdir, run++);
	if (r >= 0)
		r = ap_state_open(dir, &s);
	if (r >= 0)
		r = ap_state_write_restarted(s, b.v);
	if (r >= 0)
		r = ap_state_read_restarted(s, &back);
	if (r >= 0 && ap_strv_length(back) != n)
		r = -EBADMSG;
	return r;
}

/* The best of up to REPEAT runs (noise only ever adds time); stops early once a run is as
 * fast as good_ms or the runs took more than budget_ms (a quadratic list at 100,000 entries
 * takes seconds per run: one run says enough). */
static int measure(builder_fn fn, size_t n, double good_ms, double budget_ms, double *ret_ms)
{
	double best = -1, spent = 0;

	for (int k = 0; k < REPEAT; k++) {
		double t0 = cpu_ms(), t;
		int r = fn(n);
		if (r < 0)
			return r;
		t = cpu_ms() - t0;
		spent += t;
		if (best < 0 || t < best)
			best = t;
		if (best <= good_ms || spent > budget_ms)
			break;
	}
	*ret_ms = best;
	return 0;
}

/* Prints one row; returns 1 when linear, 0 when not, -errno when the builder failed. */
static int check(const char *name, builder_fn fn, size_t small)
{
	double a, b, ratio;
	int r;

	r = measure(fn, small, 0, 1e9, &a);
	if (a < 0.001)
		a = 0.001;
	if (r >= 0)
		r = measure(fn, small * 10, a * LIMIT, 2000, &b);
	if (r < 0) {
		printf("| %s | %zu | failed: %s | | | |\n", name, small, strerror(-r));
		return r;
	}
	ratio = b / a;
	printf("| %s | %zu | %.2f | %.1f | %.1f | %s |\n", name, small, a, b, ratio,
	       ratio <= LIMIT ? "linear" : "**not linear**");
	fflush(stdout);
	return ratio <= LIMIT;
}

static const char config_text[] =
	"repo:\n  url: file:///nonexistent/repo.git\n  branch: main\n"
	"scope: user\nstate_dir: %s/state\nunit_dir: %s/units\nunits: [systemd/]\n"
	"files:\n  - src: env/\n    dest: %s/etc/env/\n    restart: [worker.service]\n";

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		builder_fn fn;
	} lists[] = {
		{ "strv builder (unit names)", build_strv_builder },
		{ "plan (changed unit files → file ops, unit actions)", build_plan },
		{ "units asked of the manager (ap_plan_units_needed)", build_units_needed },
		{ "plan (one unit restarted by n changed files: its reasons)", build_plan_reasons },
		{ "backup file set (ap_state_fileset_add)", build_fileset },
		{ "backup manifest (format + parse)", build_manifest },
		{ "guard history (append + format + parse)", build_history },
		{ "event units value (build + split)", build_event_units },
		{ "owned files (ap_records_owned_format + parse)", build_owned },
		{ "units restarted, read by the guard (state write + read)", build_restarted },
	};
	size_t small = 10000;
	char cpath[96];
	FILE *fp;
	int opt, r, bad = 0;

	while ((opt = getopt(argc, argv, "n:")) != -1) {
		if (opt != 'n' || (small = strtoul(optarg, NULL, 10)) == 0) {
			fprintf(stderr, "usage: linear [-n SMALL]\n");
			return 2;
		}
	}
	if (!mkdtemp(tmpdir)) {
		perror("linear: mkdtemp");
		return 2;
	}
	snprintf(cpath, sizeof(cpath), "%s/autopull.yaml", tmpdir);
	fp = fopen(cpath, "w");
	if (!fp || fprintf(fp, config_text, tmpdir, tmpdir, tmpdir) < 0 || fclose(fp) != 0) {
		perror("linear: config");
		return 2;
	}
	r = ap_config_load(cpath, true, &config);
	if (r < 0) {
		fprintf(stderr, "linear: config: %s\n", strerror(-r));
		return 2;
	}

	printf("CPU ms to build N and 10 N entries (best of %d); ratio <= %.0f: linear or n log n "
	       "(quadratic: 100)\n\n", REPEAT, LIMIT);
	printf("| list | N | ms at N | ms at 10 N | ratio | |\n|---|---:|---:|---:|---:|---|\n");
	/* The check itself: a quadratic builder must be caught (at a tenth of the size, at least
	 * 1,000: below that the constant costs hide the square). */
	r = check("self-check: ap_strv_push, quadratic by design", build_strv_push,
		  small / 10 > 1000 ? small / 10 : 1000);
	if (r != 0) {
		fprintf(stderr, "linear: the quadratic builder passed as linear: the check is blind\n");
		return 1;
	}
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		if (check(lists[i].name, lists[i].fn, small) != 1)
			bad++;
	ap_config_free(config);
	nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	if (bad)
		fprintf(stderr, "linear: %d list(s) not linear\n", bad);
	return bad ? 1 : 0;
}
