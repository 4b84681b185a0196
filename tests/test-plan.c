/* Table-driven tests of the planner: tree changes + unit states in, plan out. Also the
 * JSON rendering against golden files in tests/golden/. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "plan.h"
#include "print.h"
#include "unitfile.h"
#include "util.h"

static char *units_dirs[] = { "systemd/", NULL };
static char *reload_web[] = { "web.service", NULL };
static char *restart_worker[] = { "worker.service", NULL };
static char *validate_argv[] = { "caddy", "validate", "%s", NULL };
static struct ap_file_rule rules[] = {
	{ .src = "caddy/Caddyfile", .dest = "/etc/caddy/Caddyfile", .reload = reload_web,
	  .validate = validate_argv },
	{ .src = "env/", .dest = "/etc/env/", .restart = restart_worker },
	{ .src = "bin/tool", .dest = "/usr/local/bin/tool", .has_mode = true, .mode = 0750 },
	{ .src = "secret/", .dest = "/etc/secret/", .decrypt = true, .restart = restart_worker },
};
static const struct ap_config cfg = {
	.path = "test.yaml", .repo_url = "file:///x", .branch = "main", .scope = AP_SCOPE_USER,
	.state_dir = "/s", .unit_dir = "/u", .units = units_dirs, .files = rules,
	.n_files = ELEMENTSOF(rules),
};

/* A unit state as ListUnitsByPatterns gives it; the refusals and the policy default to none. */
#define ST(n, load, active, sub) \
	.name = n, .load_state = load, .active_state = active, .sub_state = sub
static struct ap_unit_state state_v[] = {
	{ ST("web.service", "loaded", "active", "running") },
	{ ST("worker.service", "loaded", "inactive", "dead") },
	{ ST("foo@a.service", "loaded", "active", "running") },
	{ ST("foo@b.service", "loaded", "active", "running") },
	{ ST("backup.timer", "loaded", "active", "waiting") },
	{ ST("old.service", "loaded", "active", "running") },
};
static const struct ap_unit_states states = { .v = state_v, .n = ELEMENTSOF(state_v),
					       .known = true };
static const struct ap_unit_states no_states = { .v = NULL, .n = 0, .known = false };

#define SVC "[Unit]\nDescription=x\n[Service]\nExecStart=/bin/sleep infinity\n"
#define SVC2 "[Unit]\nDescription=y\n[Service]\nExecStart=/bin/sleep 1000\n"
#define INST "[Install]\nWantedBy=default.target\n"

struct chg {
	enum ap_change_kind kind;
	const char *path, *old_path;
	uint32_t old_mode, new_mode;
	const char *old_data, *new_data;
};

static void make_changes(const struct chg *c, size_t n, struct ap_changes *ret)
{
	ret->v = calloc(n, sizeof(*ret->v));
	ret->n = n;
	assert_non_null(ret->v);
	for (size_t i = 0; i < n; i++) {
		struct ap_change *x = &ret->v[i];
		x->kind = c[i].kind;
		x->path = strdup(c[i].path);
		x->old_path = c[i].old_path ? strdup(c[i].old_path) : NULL;
		x->old_mode = c[i].old_mode;
		x->new_mode = c[i].new_mode;
		snprintf(x->old_oid, sizeof(x->old_oid), "%s", c[i].old_mode ? "1111" : "");
		snprintf(x->new_oid, sizeof(x->new_oid), "%s", c[i].new_mode ? "2222" : "");
		if (c[i].old_data) {
			x->old_data = strdup(c[i].old_data);
			x->old_len = strlen(c[i].old_data);
		}
		if (c[i].new_data) {
			x->new_data = strdup(c[i].new_data);
			x->new_len = strlen(c[i].new_data);
		}
	}
}

static struct ap_plan *build(const struct chg *c, size_t n, const struct ap_unit_states *st,
			     struct ap_changes *ch)
{
	struct ap_plan *p = NULL;
	char *err = NULL;

	make_changes(c, n, ch);
	assert_int_equal(ap_plan_build(&cfg, ch, st, "aaaa", "bbbb", &p, &err), 0);
	assert_null(err);
	return p;
}

static const struct ap_unit_action *unit(const struct ap_plan *p, const char *name)
{
	for (size_t i = 0; i < p->n_units; i++)
		if (strcmp(p->units[i].unit, name) == 0)
			return &p->units[i];
	fail_msg("unit %s not in plan", name);
	return NULL;
}

static void assert_unit(const struct ap_plan *p, const char *name, const char *action)
{
	assert_string_equal(ap_unit_action_to_string(unit(p, name)->action), action);
}

static void assert_file(const struct ap_plan *p, size_t i, const char *change, const char *kind,
			const char *dest)
{
	assert_true(i < p->n_files);
	assert_string_equal(ap_change_kind_to_string(p->files[i].change), change);
	assert_string_equal(ap_file_kind_to_string(p->files[i].kind), kind);
	assert_string_equal(p->files[i].dest, dest);
}

#define BUILD(st, ...)                                                                     \
	struct ap_changes ch = { 0 };                                                      \
	const struct chg c[] = { __VA_ARGS__ };                                            \
	struct ap_plan *p = build(c, ELEMENTSOF(c), st, &ch)
#define DONE()                                                                             \
	do {                                                                               \
		ap_plan_free(p);                                                           \
		ap_changes_clear(&ch);                                                     \
	} while (0)
#define B AP_GIT_MODE_BLOB
#define X AP_GIT_MODE_EXEC
#define L AP_GIT_MODE_LINK

static void test_new_unit_with_install(void **s)
{
	BUILD(&states, { AP_CHANGE_ADD, "systemd/new.service", NULL, 0, B, NULL, SVC INST });
	assert_int_equal(p->n_files, 1);
	assert_file(p, 0, "add", "unit", "/u/new.service");
	assert_int_equal(p->files[0].mode, 0644);
	assert_true(p->daemon_reload);
	assert_unit(p, "new.service", "enable-start");
	DONE();
}

static void test_new_unit_without_install(void **s)
{
	BUILD(&states, { AP_CHANGE_ADD, "systemd/job.service", NULL, 0, B, NULL, SVC });
	assert_unit(p, "job.service", "none");
	assert_non_null(strstr(unit(p, "job.service")->note, "[Install]"));
	DONE();
}

static void test_modified_active_and_inactive(void **s)
{
	BUILD(&states, { AP_CHANGE_MODIFY, "systemd/web.service", NULL, B, B, SVC, SVC2 },
	      { AP_CHANGE_MODIFY, "systemd/worker.service", NULL, B, B, SVC, SVC2 });
	assert_true(p->daemon_reload);
	assert_unit(p, "web.service", "restart");
	assert_string_equal(unit(p, "web.service")->state, "active");
	assert_unit(p, "worker.service", "none");
	assert_string_equal(unit(p, "worker.service")->state, "inactive");
	assert_false(unit(p, "worker.service")->if_active);
	DONE();
}

/* A failed unit whose files changed was meant to run: it is started on the new files,
 * whether its unit file, a drop-in or a file it restarts or reloads for changed. */
static void test_modified_failed_unit_is_started(void **s)
{
	static struct ap_unit_state v[] = {
		{ .name = "web.service", .load_state = "loaded", .active_state = "failed", .sub_state = "failed" },
		{ .name = "worker.service", .load_state = "loaded", .active_state = "failed",
		  .sub_state = "failed" },
	};
	static const struct ap_unit_states failed = { .v = v, .n = ELEMENTSOF(v), .known = true };

	BUILD(&failed, { AP_CHANGE_MODIFY, "systemd/web.service", NULL, B, B, SVC, SVC2 },
	      { AP_CHANGE_MODIFY, "env/a", NULL, B, B, "x", "y" });
	assert_unit(p, "web.service", "start");
	assert_string_equal(unit(p, "web.service")->state, "failed");
	assert_string_equal(unit(p, "web.service")->note, "failed: started again on the new files");
	assert_unit(p, "worker.service", "start");
	DONE();
}

/* The service running this autopull (found by its pid, whatever its name) is installed and
 * reloaded but not restarted from inside itself; its timer restarts as any unit does, and a
 * restart asked for by a file rule or a drop-in is held back the same way. */
static void test_own_unit_not_restarted(void **s)
{
	static struct ap_unit_state v[] = {
		{ ST("web.service", "loaded", "activating", "start") },
		{ ST("worker.service", "loaded", "activating", "start") },
		{ ST("backup.timer", "loaded", "active", "waiting") },
	};
	struct ap_unit_states own = { .v = v, .n = ELEMENTSOF(v), .known = true,
				      .self = (char *)"web.service" };

	BUILD(&own, { AP_CHANGE_MODIFY, "systemd/web.service", NULL, B, B, SVC, SVC2 },
	      { AP_CHANGE_MODIFY, "systemd/backup.timer", NULL, B, B,
		"[Timer]\nOnCalendar=daily\n", "[Timer]\nOnCalendar=hourly\n" },
	      { AP_CHANGE_MODIFY, "caddy/Caddyfile", NULL, B, B, "a", "b" },
	      { AP_CHANGE_MODIFY, "systemd/worker.service", NULL, B, B, SVC, SVC2 });
	assert_true(p->daemon_reload);
	assert_file(p, 0, "modify", "unit", "/u/web.service");
	assert_unit(p, "web.service", "none");
	assert_string_equal(unit(p, "web.service")->note, "own unit: takes effect on the next run");
	assert_unit(p, "backup.timer", "restart");
	assert_unit(p, "worker.service", "restart");
	DONE();
}

/* Removed from the repository, it is not stopped from inside either: it ends with this run. */
static void test_own_unit_removed_not_stopped(void **s)
{
	static struct ap_unit_state v[] = { { ST("web.service", "loaded", "activating", "start") } };
	struct ap_unit_states own = { .v = v, .n = ELEMENTSOF(v), .known = true,
				      .self = (char *)"web.service" };

	BUILD(&own, { AP_CHANGE_DELETE, "systemd/web.service", NULL, B, 0, SVC, NULL });
	assert_file(p, 0, "delete", "unit", "/u/web.service");
	assert_unit(p, "web.service", "none");
	assert_string_equal(unit(p, "web.service")->note,
			    "own unit: not stopped from inside; it ends with this run");
	DONE();
}

/* tmpfiles.d (user-tmpfiles.d in user scope) and sysusers.d (system scope): an added or
 * changed file runs its tool, checked first by a validator of its own; a removed one runs
 * nothing and says so; a file anywhere else is just a file. */
static void test_setup_actions(void **s)
{
	static struct ap_file_rule r[] = {
		{ .src = "tmpfiles/", .dest = "/h/.config/user-tmpfiles.d/" },
		{ .src = "sysusers/", .dest = "/etc/sysusers.d/" },
		{ .src = "systmp/", .dest = "/etc/tmpfiles.d/" },
		{ .src = "own/app.conf", .dest = "/etc/tmpfiles.d/own.conf",
		  .validate = validate_argv },
	};
	struct ap_config user = cfg, sys = cfg;
	const struct chg c[] = {
		{ AP_CHANGE_MODIFY, "tmpfiles/app.conf", NULL, B, B, "a", "b" },
		{ AP_CHANGE_DELETE, "tmpfiles/old.conf", NULL, B, 0, "a", NULL },
		{ AP_CHANGE_MODE, "tmpfiles/mode.conf", NULL, B, X, "a", "a" },
		{ AP_CHANGE_ADD, "sysusers/app.conf", NULL, 0, B, NULL, "u app - -" },
		{ AP_CHANGE_ADD, "systmp/app.conf", NULL, 0, B, NULL, "d /run/app" },
		{ AP_CHANGE_ADD, "own/app.conf", NULL, 0, B, NULL, "d /run/own" },
	};
	struct ap_changes ch = { 0 };
	struct ap_plan *p = NULL;

	user.files = sys.files = r;
	user.n_files = sys.n_files = ELEMENTSOF(r);
	sys.scope = AP_SCOPE_SYSTEM;
	make_changes(c, ELEMENTSOF(c), &ch);

	assert_int_equal(ap_plan_build(&user, &ch, &states, "a", "b", &p, NULL), 0);
	assert_int_equal(p->n_setup, 2);
	assert_int_equal(p->setup[0].kind, AP_SETUP_TMPFILES_CREATE);
	assert_string_equal(p->setup[0].file, "/h/.config/user-tmpfiles.d/app.conf");
	assert_string_equal(p->setup[0].reason, "tmpfiles/app.conf");
	assert_null(p->setup[0].note);
	assert_int_equal(p->setup[1].kind, AP_SETUP_NONE);
	assert_string_equal(p->setup[1].file, "/h/.config/user-tmpfiles.d/old.conf");
	assert_string_equal(p->setup[1].note, "tmpfiles.d file removed: what it created stays");
	assert_string_equal(p->files[0].validate[0], "systemd-tmpfiles");
	assert_string_equal(p->files[0].validate[1], "--user");
	assert_null(p->files[3].validate); /* user scope: sysusers.d is just a file */
	ap_plan_free(p);

	assert_int_equal(ap_plan_build(&sys, &ch, &states, "a", "b", &p, NULL), 0);
	assert_int_equal(p->n_setup, 3);
	assert_int_equal(p->setup[0].kind, AP_SETUP_SYSUSERS);
	assert_string_equal(p->setup[0].file, "/etc/sysusers.d/app.conf");
	assert_int_equal(p->setup[1].kind, AP_SETUP_TMPFILES_CREATE);
	assert_string_equal(p->setup[1].file, "/etc/tmpfiles.d/app.conf");
	assert_int_equal(p->setup[2].kind, AP_SETUP_TMPFILES_CREATE);
	assert_string_equal(p->setup[2].file, "/etc/tmpfiles.d/own.conf");
	assert_string_equal(p->files[3].validate[0], "systemd-sysusers");
	assert_string_equal(p->files[3].validate[1], "--dry-run");
	assert_string_equal(p->files[4].validate[1], "--create");
	assert_string_equal(p->files[5].validate[0], validate_argv[0]); /* the rule's own */
	ap_plan_free(p);
	ap_changes_clear(&ch);
}

static void test_unknown_states_are_conditional(void **s)
{
	BUILD(&no_states, { AP_CHANGE_MODIFY, "systemd/web.service", NULL, B, B, SVC, SVC2 });
	assert_unit(p, "web.service", "restart");
	assert_true(unit(p, "web.service")->if_active);
	assert_null(unit(p, "web.service")->state);
	DONE();
}

/* No manager (a dry run without one, autopull plan): the states are unknown, the units' own
 * X-AutoPull-OnChange= is not, and wins over the rules as it does on the host. */
static struct ap_unit_state policy_v[] = {
	{ ST("web.service", "", "", ""), .onchange = AP_ONCHANGE_RELOAD },
	{ ST("worker.service", "", "", ""), .onchange = AP_ONCHANGE_NONE },
};
static const struct ap_unit_states policy_only = { .v = policy_v, .n = ELEMENTSOF(policy_v) };

static void test_unknown_states_keep_the_units_policy(void **s)
{
	BUILD(&policy_only, { AP_CHANGE_MODIFY, "systemd/web.service", NULL, B, B, SVC, SVC2 },
	      { AP_CHANGE_MODIFY, "env/app.env", NULL, B, B, NULL, NULL });
	assert_unit(p, "web.service", "reload");
	assert_true(unit(p, "web.service")->if_active);
	assert_null(unit(p, "web.service")->state);
	assert_non_null(strstr(unit(p, "web.service")->note, "X-AutoPull-OnChange=reload"));
	assert_unit(p, "worker.service", "none");
	assert_false(unit(p, "worker.service")->if_active);
	DONE();
}

static void test_timer_and_dropin(void **s)
{
	BUILD(&states, { AP_CHANGE_MODIFY, "systemd/backup.timer", NULL, B, B, "[Timer]\nOnCalendar=daily\n", "[Timer]\nOnCalendar=hourly\n" },
	      { AP_CHANGE_ADD, "systemd/web.service.d/10-env.conf", NULL, 0, B, NULL, "[Service]\nEnvironment=A=1\n" });
	assert_file(p, 1, "add", "dropin", "/u/web.service.d/10-env.conf");
	assert_string_equal(p->files[1].unit, "web.service");
	assert_unit(p, "backup.timer", "restart");
	assert_unit(p, "web.service", "restart");
	assert_true(p->daemon_reload);
	DONE();
}

static void test_template_instances(void **s)
{
	BUILD(&states, { AP_CHANGE_MODIFY, "systemd/foo@.service", NULL, B, B, SVC, SVC2 });
	assert_int_equal(p->n_units, 2);
	assert_unit(p, "foo@a.service", "restart");
	assert_unit(p, "foo@b.service", "restart");
	DONE();
}

static void test_template_dropin_without_instances(void **s)
{
	BUILD(&states, { AP_CHANGE_ADD, "systemd/bar@.service.d/x.conf", NULL, 0, B, NULL, "[Service]\n" });
	assert_unit(p, "bar@.service", "none");
	DONE();
}

static void test_deleted_unit(void **s)
{
	BUILD(&states, { AP_CHANGE_DELETE, "systemd/old.service", NULL, B, 0, SVC, NULL });
	assert_file(p, 0, "delete", "unit", "/u/old.service");
	assert_true(p->files[0].remove);
	assert_false(p->files[0].install);
	assert_unit(p, "old.service", "disable-stop");
	assert_true(p->daemon_reload);
	DONE();
}

static void test_file_rules(void **s)
{
	BUILD(&states, { AP_CHANGE_MODIFY, "caddy/Caddyfile", NULL, B, B, NULL, "x" },
	      { AP_CHANGE_ADD, "env/sub/app.env", NULL, 0, B, NULL, "A=1" },
	      { AP_CHANGE_ADD, "bin/tool", NULL, 0, X, NULL, "#!/bin/sh" },
	      { AP_CHANGE_ADD, "README.md", NULL, 0, B, NULL, "hi" });
	assert_int_equal(p->n_files, 3);
	assert_file(p, 0, "modify", "file", "/etc/caddy/Caddyfile");
	assert_int_equal(p->files[0].root_len, strlen("/etc/caddy"));
	assert_string_equal(p->files[0].validate[0], "caddy");
	assert_file(p, 1, "add", "file", "/etc/env/sub/app.env");
	assert_int_equal(p->files[1].root_len, strlen("/etc/env"));
	assert_file(p, 2, "add", "file", "/usr/local/bin/tool");
	assert_int_equal(p->files[2].mode, 0750);
	assert_false(p->daemon_reload);
	assert_unit(p, "web.service", "reload");
	assert_unit(p, "worker.service", "none"); /* inactive */
	DONE();
}

/* A decrypted file is its owner's alone (0600) and is marked so that no output shows more
 * than that it changed. */
static void test_secret(void **s)
{
	struct ap_buf b = { 0 };

	BUILD(&states, { AP_CHANGE_ADD, "secret/app.env", NULL, 0, B, NULL, "TOKEN=x" },
	      { AP_CHANGE_ADD, "env/app.env", NULL, 0, B, NULL, "A=1" });
	assert_int_equal(p->n_files, 2);
	assert_true(p->files[0].secret);
	assert_int_equal(p->files[0].mode, 0600);
	assert_false(p->files[1].secret);
	assert_int_equal(p->files[1].mode, 0644);
	assert_int_equal(ap_print_plan_human(p, &b), 0);
	assert_non_null(strstr(b.data, "-> /etc/secret/app.env (0600, secret changed)\n"));
	assert_non_null(strstr(b.data, "-> /etc/env/app.env (0644)\n"));
	ap_buf_clear(&b);
	assert_int_equal(ap_print_plan_json(p, NULL, &b), 0);
	assert_non_null(strstr(b.data, "\"mode\": \"0600\", \"secret\": true}"));
	assert_non_null(strstr(b.data, "\"mode\": \"0644\"}"));
	ap_buf_clear(&b);
	DONE();
}

static void test_rename_unit(void **s)
{
	BUILD(&states, { AP_CHANGE_RENAME, "systemd/new.service", "systemd/old.service", B, B, NULL, SVC INST });
	assert_int_equal(p->n_files, 1);
	assert_file(p, 0, "rename", "unit", "/u/new.service");
	assert_string_equal(p->files[0].old_path, "systemd/old.service");
	assert_string_equal(p->files[0].old_dest, "/u/old.service");
	assert_true(p->files[0].install && p->files[0].remove);
	assert_unit(p, "old.service", "disable-stop");
	assert_unit(p, "new.service", "enable-start");
	DONE();
}

static void test_rename_out_of_mapping_is_delete(void **s)
{
	BUILD(&states, { AP_CHANGE_RENAME, "attic/old.service", "systemd/old.service", B, B, NULL, SVC });
	assert_file(p, 0, "delete", "unit", "/u/old.service");
	assert_unit(p, "old.service", "disable-stop");
	DONE();
}

/* From a real repository's history: the new name is not a unit, so this is a removal of the
 * old unit (named by its old path) and the new path is merely unmapped. */
static void test_rename_to_non_unit_name(void **s)
{
	BUILD(&states, { AP_CHANGE_RENAME, "systemd/eco-server.template.sevice",
			 "systemd/eco-server.service", B, B, NULL, SVC });
	assert_int_equal(p->n_files, 1);
	assert_file(p, 0, "delete", "unit", "/u/eco-server.service");
	assert_string_equal(p->files[0].path, "systemd/eco-server.service");
	assert_unit(p, "eco-server.service", "disable-stop");
	assert_string_equal(p->units[0].reasons[0], "systemd/eco-server.service");
	assert_int_equal(ap_strv_length(p->unmapped), 1);
	assert_string_equal(p->unmapped[0], "systemd/eco-server.template.sevice");
	DONE();
}

/* restart: and reload: take globs, like guard.watch: every loaded unit they match. */
static void test_rule_glob(void **s)
{
	static char *restart_foo[] = { "foo@*.service", NULL };
	struct ap_file_rule globbed[] = { { .src = "conf/x", .dest = "/etc/x", .restart = restart_foo } };
	struct ap_config c = cfg;
	struct ap_changes ch = { 0 };
	struct ap_plan *p = NULL;
	const struct chg in[] = { { AP_CHANGE_MODIFY, "conf/x", NULL, B, B, "a", "b" } };

	c.files = globbed;
	c.n_files = 1;
	make_changes(in, 1, &ch);
	assert_int_equal(ap_plan_build(&c, &ch, &states, "a", "b", &p, NULL), 0);
	assert_unit(p, "foo@a.service", "restart");
	assert_unit(p, "foo@b.service", "restart");
	assert_int_equal(p->n_units, 2);
	ap_plan_free(p);
	p = NULL;
	assert_int_equal(ap_plan_build(&c, &ch, &no_states, "a", "b", &p, NULL), 0);
	assert_unit(p, "foo@*.service", "restart");
	assert_true(p->units[0].if_active);
	ap_plan_free(p);
	ap_changes_clear(&ch);
}

/* A unit file systemd would read differently from what the repository shows is refused. */
static void test_unit_text_refused(void **s)
{
	static const char nul[] = "[Unit]\nDescription=x\0Documentation=man:x(1)\n[Service]\nExecStart=/bin/true\n";
	struct ap_changes ch = { 0 };
	struct ap_plan *p = NULL;
	char *error = NULL;
	const struct chg in[] = { { AP_CHANGE_ADD, "systemd/nul.service", NULL, 0, B, NULL, "x" } };

	make_changes(in, 1, &ch);
	free(ch.v[0].new_data);
	ch.v[0].new_data = malloc(sizeof(nul));
	memcpy(ch.v[0].new_data, nul, sizeof(nul));
	ch.v[0].new_len = sizeof(nul) - 1;
	assert_int_equal(ap_plan_build(&cfg, &ch, &states, "a", "b", &p, &error), -EINVAL);
	assert_non_null(strstr(error, "systemd/nul.service"));
	assert_non_null(strstr(error, "NUL byte"));
	free(error);
	ap_changes_clear(&ch);
}

/* A comment-only change installs the file and restarts nothing. */
static void test_comment_only_change(void **s)
{
	BUILD(&states, { AP_CHANGE_MODIFY, "systemd/web.service", NULL, B, B, SVC,
			 "# owned by the web team\n" SVC });
	assert_unit(p, "web.service", "none");
	assert_non_null(strstr(p->units[0].note, "only comments changed"));
	DONE();
}

/* "my app.service" or "@.service" is meant as a unit: refused, not listed as unmapped. */
static void test_invalid_unit_name(void **s)
{
	static const char *const names[] = { "systemd/my app.service", "systemd/@.service",
					     "systemd/foo@@.service" };

	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		struct ap_changes ch = { 0 };
		struct ap_plan *p = NULL;
		char *error = NULL;
		const struct chg in[] = { { AP_CHANGE_ADD, names[i], NULL, 0, B, NULL, SVC } };

		make_changes(in, 1, &ch);
		assert_int_equal(ap_plan_build(&cfg, &ch, &states, "a", "b", &p, &error), -EINVAL);
		assert_non_null(strstr(error, "is not a valid unit name"));
		free(error);
		ap_changes_clear(&ch);
	}
}

/* A changed template restarts its running instances, but not the per-connection instances
 * of an Accept=yes socket: the next connection uses the new file anyway. */
static void test_template_skips_per_connection(void **s)
{
	static struct ap_unit_state st[] = {
		{ ST("sshd@0-1234-0.service", "loaded", "active", "running") },
		{ ST("sshd@3-10.0.0.1:22-10.0.0.9:51234.service", "loaded", "active", "running") },
		{ ST("sshd@ops.service", "loaded", "active", "running") },
	};
	const struct ap_unit_states sts = { .v = st, .n = ELEMENTSOF(st), .known = true };

	BUILD(&sts, { AP_CHANGE_MODIFY, "systemd/sshd@.service", NULL, B, B, SVC, SVC2 });
	assert_unit(p, "sshd@ops.service", "restart");
	assert_unit(p, "sshd@0-1234-0.service", "none");
	assert_unit(p, "sshd@3-10.0.0.1:22-10.0.0.9:51234.service", "none");
	DONE();
}

static void test_mode_change(void **s)
{
	BUILD(&states, { AP_CHANGE_MODE, "env/app.env", NULL, B, X, NULL, "A=1" });
	assert_file(p, 0, "mode", "file", "/etc/env/app.env");
	assert_int_equal(p->files[0].mode, 0755);
	DONE();
}

static void test_unmapped_and_ignored(void **s)
{
	BUILD(&states, { AP_CHANGE_ADD, "systemd/notes.txt", NULL, 0, B, NULL, "x" },
	      { AP_CHANGE_ADD, "docs/x.md", NULL, 0, B, NULL, "x" });
	assert_int_equal(p->n_files, 0);
	assert_int_equal(ap_strv_length(p->unmapped), 1);
	assert_string_equal(p->unmapped[0], "systemd/notes.txt");
	assert_true(ap_plan_is_empty(p));
	DONE();
}

static void test_onchange_policy(void **s)
{
	BUILD(&states, { AP_CHANGE_MODIFY, "systemd/web.service", NULL, B, B, SVC,
			 "[Unit]\nX-AutoPull-OnChange=reload\n[Service]\nExecStart=/bin/true\n" },
	      { AP_CHANGE_MODIFY, "systemd/old.service", NULL, B, B, SVC,
		"[Unit]\nX-AutoPull-OnChange=none\n[Service]\nExecStart=/bin/true\n" });
	assert_unit(p, "web.service", "reload");
	assert_unit(p, "old.service", "none");
	DONE();
}

static void test_install_only_change(void **s)
{
	BUILD(&states, { AP_CHANGE_MODIFY, "systemd/web.service", NULL, B, B, SVC INST,
			 SVC "[Install]\nWantedBy=multi-user.target\n" });
	assert_unit(p, "web.service", "reenable");
	DONE();
}

static void test_merge_prefers_stronger_action(void **s)
{
	/* the Caddyfile asks for a reload, the unit file for a restart: restart wins */
	BUILD(&states, { AP_CHANGE_MODIFY, "caddy/Caddyfile", NULL, B, B, NULL, "x" },
	      { AP_CHANGE_MODIFY, "systemd/web.service", NULL, B, B, SVC, SVC2 });
	assert_unit(p, "web.service", "restart");
	assert_int_equal(ap_strv_length(unit(p, "web.service")->reasons), 2);
	DONE();
}

static void expect_refusal(const struct chg *c, const char *needle)
{
	struct ap_changes ch = { 0 };
	struct ap_plan *p = NULL;
	char *err = NULL;

	make_changes(c, 1, &ch);
	assert_int_equal(ap_plan_build(&cfg, &ch, &states, "", "b", &p, &err), -EINVAL);
	assert_null(p);
	assert_non_null(err);
	assert_non_null(strstr(err, needle));
	free(err);
	ap_changes_clear(&ch);
}

static void test_refusals(void **s)
{
	const struct chg link = { AP_CHANGE_ADD, "systemd/alias.service", NULL, 0, L, NULL, "x.service" };
	const struct chg sub = { AP_CHANGE_ADD, "env/vendor", NULL, 0, AP_GIT_MODE_GITLINK, NULL, NULL };
	const struct chg type = { AP_CHANGE_TYPE, "caddy/Caddyfile", NULL, B, L, NULL, "/etc/passwd" };
	const struct chg bad = { AP_CHANGE_MODIFY, "systemd/web.service", NULL, B, B, SVC,
				 "[Unit]\nX-AutoPull-OnChange=sometimes\n" };

	expect_refusal(&link, "'systemd/alias.service' is a symlink");
	expect_refusal(&sub, "'env/vendor' is a submodule");
	expect_refusal(&type, "'caddy/Caddyfile' is a symlink");
	expect_refusal(&bad, "X-AutoPull-OnChange");
}

/* Units the manager would refuse to restart by request are not asked: the plan says why. */
static void test_manager_refusals_known_beforehand(void **s)
{
	struct ap_unit_state v[] = {
		{ ST("web.service", "loaded", "active", "running"), .refuse_stop = true },
		{ ST("worker.service", "loaded", "active", "running"), .refuse_start = true },
		{ ST("old.service", "masked", "active", "running") },
		{ ST("foo@a.service", "loaded", "active", "running"), .refuse_start = true,
		  .can_reload = true },
	};
	const struct ap_unit_states sts = { .v = v, .n = ELEMENTSOF(v), .known = true };

	BUILD(&sts, { AP_CHANGE_MODIFY, "systemd/web.service", NULL, B, B, SVC, SVC2 },
	      { AP_CHANGE_MODIFY, "systemd/worker.service", NULL, B, B, SVC, SVC2 },
	      { AP_CHANGE_MODIFY, "systemd/old.service", NULL, B, B, SVC, SVC2 },
	      { AP_CHANGE_MODIFY, "systemd/foo@.service", NULL, B, B, SVC,
		"[Unit]\nX-AutoPull-OnChange=reload\n[Service]\nExecStart=/bin/true\n" });
	assert_unit(p, "web.service", "none");
	assert_string_equal(unit(p, "web.service")->note,
			    "refuses manual stop: new definition loaded, applies at its next start");
	assert_unit(p, "worker.service", "none");
	assert_string_equal(unit(p, "worker.service")->note,
			    "refuses manual start: new definition loaded, applies at its next start");
	assert_unit(p, "old.service", "none");
	assert_non_null(strstr(unit(p, "old.service")->note, "masked"));
	/* a real reload is no restart: RefuseManualStart= does not stop it */
	assert_unit(p, "foo@a.service", "reload");
	DONE();
}

/* A unit's own X-AutoPull-OnChange= wins over a file rule's restart: and over a drop-in. */
static void test_unit_optout_wins_over_rule(void **s)
{
	struct ap_unit_state v[] = {
		{ ST("worker.service", "loaded", "active", "running"), .onchange = AP_ONCHANGE_RELOAD },
		{ ST("web.service", "loaded", "active", "running"), .onchange = AP_ONCHANGE_NONE },
		{ ST("old.service", "loaded", "active", "running") },
	};
	const struct ap_unit_states sts = { .v = v, .n = ELEMENTSOF(v), .known = true };

	BUILD(&sts, { AP_CHANGE_MODIFY, "env/app.env", NULL, B, B, NULL, "x" },
	      { AP_CHANGE_MODIFY, "caddy/Caddyfile", NULL, B, B, NULL, "x" },
	      { AP_CHANGE_MODIFY, "systemd/old.service.d/x.conf", NULL, B, B, "[Service]\nA=1\n",
		"[Service]\nA=2\n" });
	assert_unit(p, "worker.service", "reload");
	assert_string_equal(unit(p, "worker.service")->note,
			    "X-AutoPull-OnChange=reload wins over the restart asked for");
	assert_unit(p, "web.service", "none");
	assert_string_equal(unit(p, "web.service")->note,
			    "X-AutoPull-OnChange=none wins over the reload asked for");
	assert_unit(p, "old.service", "restart");
	DONE();
}

/* The new definition refuses (the state still shows the old one): not asked either; a new
 * unit is still enabled and started (the executor lets a refused start go). */
static void test_refusal_in_new_definition(void **s)
{
	BUILD(&states, { AP_CHANGE_MODIFY, "systemd/web.service", NULL, B, B, SVC,
			 "[Unit]\nRefuseManualStop=yes\n[Service]\nExecStart=/bin/true\n" },
	      { AP_CHANGE_MODIFY, "systemd/foo@.service.d/x.conf", NULL, B, B, "[Unit]\n",
		"[Unit]\nRefuseManualStart=true\n" },
	      { AP_CHANGE_ADD, "systemd/new.service", NULL, 0, B, NULL,
		"[Unit]\nRefuseManualStart=yes\n[Service]\nExecStart=/bin/true\n" INST });
	assert_unit(p, "web.service", "none");
	assert_non_null(strstr(unit(p, "web.service")->note, "refuses manual stop"));
	assert_unit(p, "foo@a.service", "none");
	assert_non_null(strstr(unit(p, "foo@a.service")->note, "refuses manual start"));
	assert_unit(p, "new.service", "enable-start");
	DONE();
}

static void test_refusal_by_action(void **s)
{
	struct ap_unit_state st = { ST("a.service", "loaded", "active", "running"), .refuse_start = true };

	assert_non_null(ap_plan_refusal(AP_ACTION_RESTART, &st));
	assert_non_null(ap_plan_refusal(AP_ACTION_START, &st));
	assert_null(ap_plan_refusal(AP_ACTION_ENABLE_START, &st)); /* the enabling must happen */
	assert_non_null(ap_plan_refusal(AP_ACTION_RELOAD, &st)); /* cannot reload: a restart */
	assert_null(ap_plan_refusal(AP_ACTION_STOP, &st));
	st.can_reload = true;
	assert_null(ap_plan_refusal(AP_ACTION_RELOAD, &st));
	st = (struct ap_unit_state){ ST("a.service", "loaded", "active", "running"), .refuse_stop = true };
	assert_non_null(ap_plan_refusal(AP_ACTION_RESTART, &st));
	assert_null(ap_plan_refusal(AP_ACTION_START, &st));
	assert_null(ap_plan_refusal(AP_ACTION_NONE, &st));
	st = (struct ap_unit_state){ ST("a.service", "loaded", "active", "running") };
	assert_null(ap_plan_refusal(AP_ACTION_RESTART, &st));
}

/* A changed socket whose service runs: the plan says the service is stopped first. */
static void test_socket_with_running_service(void **s)
{
	struct ap_unit_state v[] = {
		{ ST("echo.socket", "loaded", "active", "listening") },
		{ ST("echo.service", "loaded", "active", "running") },
		{ ST("idle.socket", "loaded", "active", "listening") },
	};
	const struct ap_unit_states sts = { .v = v, .n = ELEMENTSOF(v), .known = true };
	const char *sock1 = "[Socket]\nListenStream=/run/a\n", *sock2 = "[Socket]\nListenStream=/run/b\n";

	BUILD(&sts, { AP_CHANGE_MODIFY, "systemd/echo.socket", NULL, B, B, sock1, sock2 },
	      { AP_CHANGE_MODIFY, "systemd/idle.socket", NULL, B, B, sock1, sock2 });
	assert_unit(p, "echo.socket", "restart");
	assert_non_null(strstr(unit(p, "echo.socket")->note, "its service echo.service runs"));
	assert_unit(p, "idle.socket", "restart");
	assert_null(unit(p, "idle.socket")->note);
	DONE();
}

static void test_socket_service_state_needed(void **s)
{
	struct ap_changes ch = { 0 };
	const struct chg c[] = { { AP_CHANGE_MODIFY, "systemd/echo.socket", NULL, B, B, "a", "b" } };
	char **v = NULL;

	make_changes(c, 1, &ch);
	assert_int_equal(ap_plan_units_needed(&cfg, &ch, &v), 0);
	assert_int_equal(ap_strv_length(v), 2);
	assert_string_equal(v[0], "echo.service");
	assert_string_equal(v[1], "echo.socket");
	ap_strv_free(v);
	ap_changes_clear(&ch);
}

/* Description=/Documentation= alone: a daemon-reload, no restart; anything else restarts. */
static void test_metadata_only_change(void **s)
{
	BUILD(&states, { AP_CHANGE_MODIFY, "systemd/web.service", NULL, B, B, SVC,
			 "[Unit]\nDescription=better\nDocumentation=man:x(1)\n[Service]\n"
			 "ExecStart=/bin/sleep infinity\n" },
	      { AP_CHANGE_MODIFY, "systemd/old.service", NULL, B, B, SVC,
		"[Unit]\nDescription=x\nRequires=db.service\n[Service]\nExecStart=/bin/sleep infinity\n" });
	assert_unit(p, "web.service", "none");
	assert_non_null(strstr(unit(p, "web.service")->note, "only Description=/Documentation="));
	assert_true(p->daemon_reload);
	assert_unit(p, "old.service", "restart");
	DONE();
}

static void test_symlink_outside_mapping_is_fine(void **s)
{
	BUILD(&states, { AP_CHANGE_ADD, "docs/link", NULL, 0, L, NULL, "x" },
	      { AP_CHANGE_DELETE, "systemd/was-a-link.service", NULL, L, 0, NULL, NULL });
	assert_true(ap_plan_is_empty(p));
	DONE();
}

static void test_map_path(void **s)
{
	struct ap_path_map m;

	assert_int_equal(ap_plan_map_path(&cfg, "../etc/passwd", &m), -EINVAL);
	assert_int_equal(ap_plan_map_path(&cfg, "systemd/../x", &m), -EINVAL);
	assert_int_equal(ap_plan_map_path(&cfg, "systemd/a.service.d/sub/x.conf", &m), 0);
	assert_int_equal(m.kind, AP_MAP_UNMAPPED);
	ap_path_map_clear(&m);
	assert_int_equal(ap_plan_map_path(&cfg, "systemd/a.service.d/x.txt", &m), 0);
	assert_int_equal(m.kind, AP_MAP_UNMAPPED);
	ap_path_map_clear(&m);
	assert_int_equal(ap_plan_map_path(&cfg, "systemd/web.service", &m), 0);
	assert_int_equal(m.kind, AP_MAP_UNIT);
	assert_string_equal(m.unit, "web.service");
	ap_path_map_clear(&m);
}

/* A repository path just short of PATH_MAX under env/ (dest /etc/env/) would name a
 * destination of PATH_MAX or more: refused by name, not mapped. */
static char *long_env_path(size_t len)
{
	char *p = malloc(len + 1);

	assert_non_null(p);
	memset(p, 'a', len);
	memcpy(p, "env/", 4);
	for (size_t i = 4 + 200; i < len - 1; i += 201)
		p[i] = '/';
	p[len] = '\0';
	return p;
}

static void test_map_path_too_long(void **s)
{
	char *path = long_env_path(PATH_MAX - 2);
	struct ap_changes ch = { 0 };
	struct ap_plan *p = NULL;
	struct ap_path_map m;
	char *error = NULL;

	assert_true(ap_path_is_safe_relative(path));
	assert_int_equal(ap_plan_map_path(&cfg, path, &m), -ENAMETOOLONG);
	const struct chg in[] = { { AP_CHANGE_ADD, path, NULL, 0, B, NULL, "x" } };
	make_changes(in, 1, &ch);
	assert_int_equal(ap_plan_build(&cfg, &ch, &states, "a", "b", &p, &error), -EINVAL);
	assert_non_null(strstr(error, "longer than the system allows"));
	free(error);
	ap_changes_clear(&ch);
	free(path);
	path = long_env_path(PATH_MAX - 8); /* dest PATH_MAX - 3: still mapped */
	assert_int_equal(ap_plan_map_path(&cfg, path, &m), 0);
	assert_true(ap_path_is_normalized_absolute(m.dest));
	ap_path_map_clear(&m);
	free(path);
}

static void test_units_needed(void **s)
{
	struct ap_changes ch = { 0 };
	const struct chg c[] = { { AP_CHANGE_MODIFY, "systemd/foo@.service", NULL, B, B, SVC, SVC2 },
				 { AP_CHANGE_MODIFY, "caddy/Caddyfile", NULL, B, B, NULL, "x" } };
	char **v = NULL;

	make_changes(c, 2, &ch);
	assert_int_equal(ap_plan_units_needed(&cfg, &ch, &v), 0);
	assert_int_equal(ap_strv_length(v), 2);
	assert_string_equal(v[0], "foo@*.service");
	assert_string_equal(v[1], "web.service");
	ap_strv_free(v);
	ap_changes_clear(&ch);
}

static void test_owed_actions_merge(void **s)
{
	BUILD(&states, { AP_CHANGE_MODIFY, "caddy/Caddyfile", NULL, B, B, NULL, "x" });
	assert_int_equal(ap_plan_add_owed(p, "web.service", AP_ACTION_RESTART, "journal"), 0);
	assert_int_equal(ap_plan_add_owed(p, "db.service", AP_ACTION_RELOAD, "journal"), 0);
	assert_unit(p, "web.service", "restart");
	assert_unit(p, "db.service", "reload");
	DONE();
}


#define MANY 2000

/* Many units, each named by a unit file and a drop-in: every unit once, its reasons merged in
 * the order of the changes, refusals of the new definitions kept per unit (twice for some),
 * the first of two states of one name read, and unmapped paths in the order of the changes. */
static void test_many_units(void **s)
{
	static const char stop[] = "[Unit]\nRefuseManualStop=yes\n";
	struct chg *c = calloc(3 * MANY, sizeof(*c));
	struct ap_unit_state *sv = calloc(MANY + 1, sizeof(*sv));
	struct ap_unit_states st = { .v = sv, .n = MANY + 1, .known = true };
	struct ap_changes ch = { 0 };
	struct ap_plan *p;
	char name[64];
	size_t n = 0;

	assert_non_null(c);
	assert_non_null(sv);
	for (size_t i = 0; i < MANY; i++) {
		snprintf(name, sizeof(name), "%04zu.service", MANY - 1 - i); /* sorted at the end */
		sv[i] = (struct ap_unit_state){ ST(strdup(name), "loaded", "active", "running") };
		c[n++] = (struct chg){ AP_CHANGE_MODIFY, ap_strdupf("systemd/%s", name), NULL, B, B,
				       SVC, i % 3 == 0 ? stop : SVC2 };
		c[n++] = (struct chg){ AP_CHANGE_ADD, ap_strdupf("systemd/%s.d/x.conf", name), NULL,
				       0, B, NULL, i % 2 == 0 ? stop : "[Unit]\n" };
		if (i % 4 == 0)
			c[n++] = (struct chg){ AP_CHANGE_ADD, ap_strdupf("systemd/n%04zu.txt", i),
					       NULL, 0, B, NULL, "x" };
	}
	/* a second state of a unit restarted: not the one read */
	sv[MANY] = (struct ap_unit_state){ ST(strdup(sv[1].name), "loaded", "inactive", "dead") };
	p = build(c, n, &st, &ch);
	assert_int_equal(p->n_units, MANY);
	assert_int_equal(p->n_files, 2 * MANY);
	assert_int_equal(ap_strv_length(p->unmapped), MANY / 4);
	for (size_t i = 0; i < MANY / 4; i++) {
		snprintf(name, sizeof(name), "systemd/n%04zu.txt", 4 * i);
		assert_string_equal(p->unmapped[i], name);
	}
	for (size_t i = 0; i < MANY; i++) {
		const struct ap_unit_action *u = &p->units[i];
		size_t k = MANY - 1 - i; /* the change that named it */

		snprintf(name, sizeof(name), "%04zu.service", i);
		assert_string_equal(u->unit, name);
		assert_int_equal(ap_strv_length(u->reasons), 2);
		assert_string_equal(u->reasons[0] + strlen("systemd/"), name);
		assert_string_equal(u->state, "active");
		if (k % 3 == 0 || k % 2 == 0) {
			assert_int_equal(u->action, AP_ACTION_NONE);
			assert_non_null(strstr(u->note, "refuses manual stop"));
		} else
			assert_int_equal(u->action, AP_ACTION_RESTART);
	}
	ap_plan_free(p);
	ap_changes_clear(&ch);
	for (size_t i = 0; i < n; i++)
		free((char *)c[i].path);
	for (size_t i = 0; i <= MANY; i++)
		free(sv[i].name);
	free(c);
	free(sv);
}

/* The patterns of many changes: each once, in the order of the changes that first name
 * them (a socket's service before it, a template as the pattern of its instances). */
static void test_units_needed_many(void **s)
{
	struct chg *c = calloc(2 * MANY, sizeof(*c));
	struct ap_changes ch = { 0 };
	char **v = NULL, name[64];

	assert_non_null(c);
	for (size_t i = 0; i < MANY; i++) {
		c[2 * i] = (struct chg){ AP_CHANGE_MODIFY, ap_strdupf("systemd/s%04zu.socket", i),
					 NULL, B, B, SVC, SVC2 };
		c[2 * i + 1] = (struct chg){ AP_CHANGE_ADD,
					     ap_strdupf("systemd/t%04zu@.service.d/x.conf",
							i % 10), NULL, 0, B, NULL, "[Unit]\n" };
	}
	make_changes(c, 2 * MANY, &ch);
	assert_int_equal(ap_plan_units_needed(&cfg, &ch, &v), 0);
	assert_int_equal(ap_strv_length(v), 2 * MANY + 10);
	for (size_t i = 0, k = 0; i < MANY; i++) {
		snprintf(name, sizeof(name), "s%04zu.service", i);
		assert_string_equal(v[k++], name);
		snprintf(name, sizeof(name), "s%04zu.socket", i);
		assert_string_equal(v[k++], name);
		if (i < 10) {
			snprintf(name, sizeof(name), "t%04zu@*.service", i);
			assert_string_equal(v[k++], name);
		}
	}
	ap_strv_free(v);
	ap_changes_clear(&ch);
	for (size_t i = 0; i < 2 * MANY; i++)
		free((char *)c[i].path);
	free(c);
}

/* A unit asked for by many paths names each once, in the order of the changes, even when a
 * path asks again later (the old side of a rename). */
static void test_many_reasons(void **s)
{
	struct chg *c = calloc(MANY + 1, sizeof(*c));
	struct ap_changes ch = { 0 };
	const struct ap_unit_action *u;
	struct ap_plan *p;
	char name[64];

	assert_non_null(c);
	for (size_t i = 0; i < MANY; i++)
		c[i] = (struct chg){ AP_CHANGE_ADD, ap_strdupf("env/a%04zu.env", i), NULL, 0, B,
				     NULL, "A=1" };
	c[MANY] = (struct chg){ AP_CHANGE_RENAME, strdup("env/b.env"), "env/a0000.env", B, B,
				"A=1", "A=1" };
	p = build(c, MANY + 1, &states, &ch);
	assert_int_equal(p->n_units, 1);
	u = unit(p, "worker.service");
	assert_int_equal(ap_strv_length(u->reasons), MANY + 1);
	for (size_t i = 0; i < MANY; i++) {
		snprintf(name, sizeof(name), "env/a%04zu.env", i);
		assert_string_equal(u->reasons[i], name);
	}
	assert_string_equal(u->reasons[MANY], "env/b.env");
	ap_plan_free(p);
	ap_changes_clear(&ch);
	for (size_t i = 0; i <= MANY; i++)
		free((char *)c[i].path);
	free(c);
}

/* The units a journal still owes merge into the plan's (each once, the stronger action) and
 * the new ones follow them in the journal's order; a unit owed twice is added once. */
static void test_owed_journal_many(void **s)
{
	BUILD(&states, { AP_CHANGE_MODIFY, "caddy/Caddyfile", NULL, B, B, NULL, "x" },
	      { AP_CHANGE_MODIFY, "systemd/old.service", NULL, B, B, SVC, SVC2 });
	struct ap_journal j = { .to = "cccccccccccc", .n_units = MANY + 3 };
	char name[64];

	j.units = calloc(j.n_units, sizeof(*j.units));
	assert_non_null(j.units);
	for (size_t i = 0; i < MANY; i++) {
		j.units[i].unit = ap_strdupf("owed-%04zu.service", i);
		j.units[i].action = AP_ACTION_RESTART;
		j.units[i].state = i % 2 ? AP_STEP_PENDING : AP_STEP_DONE;
	}
	j.units[MANY] = (struct ap_journal_unit){ strdup("web.service"), AP_ACTION_RESTART,
						  AP_STEP_PENDING, false };
	j.units[MANY + 1] = (struct ap_journal_unit){ strdup("owed-0001.service"),
						      AP_ACTION_STOP, AP_STEP_PENDING, false };
	j.units[MANY + 2] = (struct ap_journal_unit){ strdup("old.service"), AP_ACTION_RELOAD,
						      AP_STEP_FAILED, false };
	assert_int_equal(ap_plan_add_owed_journal(p, &j), 0);
	assert_int_equal(p->n_units, 2 + MANY / 2);
	assert_string_equal(p->units[0].unit, "old.service");
	assert_unit(p, "old.service", "restart"); /* a reload owed does not weaken it */
	assert_true(p->units[0].owed);
	assert_string_equal(p->units[1].unit, "web.service");
	assert_unit(p, "web.service", "restart");
	assert_true(p->units[1].owed);
	for (size_t i = 0; i < MANY / 2; i++) {
		snprintf(name, sizeof(name), "owed-%04zu.service", 2 * i + 1);
		assert_string_equal(p->units[2 + i].unit, name);
		assert_true(p->units[2 + i].owed);
	}
	assert_unit(p, "owed-0001.service", "stop");
	assert_int_equal(ap_strv_length(unit(p, "owed-0001.service")->reasons), 1);
	ap_journal_clear(&j);
	DONE();
}

/* Renders the plan as JSON and compares it with tests/golden/NAME. */
static void assert_golden(const struct ap_plan *p, const char *name)
{
	struct ap_buf b = { 0 };
	char path[512], *want = NULL;
	size_t n = 0;
	FILE *f;

	assert_int_equal(ap_print_plan_json(p, NULL, &b), 0);
	snprintf(path, sizeof(path), "%s/golden/%s", TESTS_DIR, name);
	f = fopen(path, "re");
	if (!f) { /* first run: write it, then fail so that it gets reviewed */
		f = fopen(path, "we");
		assert_non_null(f);
		fwrite(b.data, 1, b.len, f);
		fclose(f);
		fail_msg("wrote new golden file %s; review and commit it", path);
	}
	assert_true(getdelim(&want, &n, '\0', f) >= 0);
	fclose(f);
	assert_string_equal(b.data, want);
	free(want);
	ap_buf_clear(&b);
}

static void test_golden_json(void **s)
{
	BUILD(&states, { AP_CHANGE_MODIFY, "caddy/Caddyfile", NULL, B, B, NULL, "x" },
	      { AP_CHANGE_RENAME, "systemd/new.service", "systemd/old.service", B, B, NULL, SVC INST },
	      { AP_CHANGE_ADD, "systemd/notes.txt", NULL, 0, B, NULL, "x" },
	      { AP_CHANGE_MODIFY, "systemd/worker.service", NULL, B, B, SVC, SVC2 });
	assert_golden(p, "plan-mixed.json");
	DONE();
}

static void test_golden_first_run_without_bus(void **s)
{
	struct ap_changes ch = { 0 };
	const struct chg c[] = { { AP_CHANGE_ADD, "systemd/web.service", NULL, 0, B, NULL, SVC INST },
				 { AP_CHANGE_ADD, "caddy/Caddyfile", NULL, 0, B, NULL, "x" } };
	struct ap_plan *p = NULL;

	make_changes(c, 2, &ch);
	assert_int_equal(ap_plan_build(&cfg, &ch, &no_states, "", "bbbb", &p, NULL), 0);
	assert_golden(p, "plan-first-run.json");
	DONE();
}

/* Destructors of what is handed out by pointer take NULL, as free() does, so that every
 * cleanup path can call them unconditionally. */
static void test_free_null(void **state)
{
	struct ap_changes none = { 0 };

	ap_plan_free(NULL);
	ap_changes_clear(&none);
	ap_changes_clear(&none); /* cleared twice: the first left it empty */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_free_null),
		cmocka_unit_test(test_new_unit_with_install),
		cmocka_unit_test(test_new_unit_without_install),
		cmocka_unit_test(test_modified_active_and_inactive),
		cmocka_unit_test(test_modified_failed_unit_is_started),
		cmocka_unit_test(test_unknown_states_are_conditional),
		cmocka_unit_test(test_unknown_states_keep_the_units_policy),
		cmocka_unit_test(test_timer_and_dropin),
		cmocka_unit_test(test_template_instances),
		cmocka_unit_test(test_template_dropin_without_instances),
		cmocka_unit_test(test_deleted_unit),
		cmocka_unit_test(test_file_rules),
		cmocka_unit_test(test_secret),
		cmocka_unit_test(test_rename_unit),
		cmocka_unit_test(test_rename_out_of_mapping_is_delete),
		cmocka_unit_test(test_rename_to_non_unit_name),
		cmocka_unit_test(test_rule_glob),
		cmocka_unit_test(test_unit_text_refused),
		cmocka_unit_test(test_comment_only_change),
		cmocka_unit_test(test_invalid_unit_name),
		cmocka_unit_test(test_template_skips_per_connection),
		cmocka_unit_test(test_mode_change),
		cmocka_unit_test(test_unmapped_and_ignored),
		cmocka_unit_test(test_many_units),
		cmocka_unit_test(test_many_reasons),
		cmocka_unit_test(test_units_needed_many),
		cmocka_unit_test(test_owed_journal_many),
		cmocka_unit_test(test_onchange_policy),
		cmocka_unit_test(test_install_only_change),
		cmocka_unit_test(test_merge_prefers_stronger_action),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_manager_refusals_known_beforehand),
		cmocka_unit_test(test_refusal_in_new_definition),
		cmocka_unit_test(test_refusal_by_action),
		cmocka_unit_test(test_unit_optout_wins_over_rule),
		cmocka_unit_test(test_socket_with_running_service),
		cmocka_unit_test(test_socket_service_state_needed),
		cmocka_unit_test(test_metadata_only_change),
		cmocka_unit_test(test_symlink_outside_mapping_is_fine),
		cmocka_unit_test(test_own_unit_not_restarted),
		cmocka_unit_test(test_own_unit_removed_not_stopped),
		cmocka_unit_test(test_setup_actions),
		cmocka_unit_test(test_map_path),
		cmocka_unit_test(test_map_path_too_long),
		cmocka_unit_test(test_units_needed),
		cmocka_unit_test(test_owed_actions_merge),
		cmocka_unit_test(test_golden_json),
		cmocka_unit_test(test_golden_first_run_without_bus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
