/* Tests for validate.c alone: the functions it calls in spawn.c and install.c are defined
 * here (link-time stubs), so a validator or systemd-analyze can fail, time out or be missing
 * on demand, and every run is recorded with its argv, environment and the bytes it was given.
 * Staging is real (fsutil.c, in a temp dir per test).
 *
 * Not covered here: posix_spawn itself (test-spawn.c), which rule gives a file its validator
 * (test-config.c, test-plan.c). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "fsutil.h"
#include "install.h"
#include "log.h"
#include "spawn.h"
#include "util.h"
#include "unitusers.h"
#include "validate.h"

#include "capture.h"

/* --- stubs of spawn.c ---------------------------------------------------------------- */

/* What a program does when run: spawn_error < 0 means it could not be started. output may
 * hold one "%s", replaced by the last argument (the staged file). */
struct prog {
	const char *name;
	int spawn_error;
	int exit_status;
	int timed_out;
	const char *output;
};

static struct {
	const struct prog *progs; /* terminated by a NULL name; unknown programs exit 0 */
	unsigned calls;
	struct ap_buf argv;       /* every call's argv, one line per call */
	char **env;               /* the last call's environment */
	char *seen;               /* the bytes of the last call's last argument, read at the call */
	bool stage_existed;       /* the last argument existed when the program ran */
	unsigned started, joined, aborted; /* ap_spawn_start, _join, _abort calls */
} spawn;

int ap_spawn_run(char *const argv[], char *const env[], unsigned long long timeout_usec,
		 struct ap_spawn_result *ret)
{
	const struct prog *p = NULL;
	const char *last = argv[0];
	size_t len;

	assert_int_equal(timeout_usec, AP_VALIDATE_TIMEOUT_USEC);
	spawn.calls++;
	for (size_t i = 0; argv[i]; i++) {
		ap_buf_printf(&spawn.argv, "%s%s", i ? " " : "", argv[i]);
		last = argv[i];
	}
	ap_buf_printf(&spawn.argv, "\n");
	ap_strv_free(spawn.env);
	spawn.env = NULL;
	for (size_t i = 0; env && env[i]; i++)
		assert_int_equal(ap_strv_push(&spawn.env, env[i]), 0);
	free(spawn.seen);
	spawn.seen = NULL;
	spawn.stage_existed = ap_fs_read_file(last, 1 << 20, &spawn.seen, &len) >= 0;
	for (size_t i = 0; spawn.progs && spawn.progs[i].name && !p; i++)
		if (strcmp(spawn.progs[i].name, argv[0]) == 0)
			p = &spawn.progs[i];
	*ret = (struct ap_spawn_result){ 0 };
	if (!p)
		return 0;
	if (p->spawn_error < 0)
		return p->spawn_error;
	ret->exit_status = p->exit_status;
	ret->timed_out = p->timed_out;
	if (p->output) {
		/* the format comes from the test table */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		ret->output = ap_strdupf(p->output, last);
#pragma GCC diagnostic pop
		assert_non_null(ret->output);
		ret->output_len = strlen(ret->output);
	}
	return 0;
}

/* A started program "runs" at once; its result waits for the join. */
struct ap_spawn {
	int r;
	struct ap_spawn_result res;
};

int ap_spawn_start(char *const argv[], char *const env[], unsigned long long timeout_usec,
		   struct ap_spawn **ret)
{
	struct ap_spawn *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	s->r = ap_spawn_run(argv, env, timeout_usec, &s->res);
	if (s->r < 0) {
		int r = s->r;

		free(s);
		return r;
	}
	spawn.started++;
	*ret = s;
	return 0;
}

int ap_spawn_join(struct ap_spawn *s, struct ap_spawn_result *ret)
{
	spawn.joined++;
	*ret = s->res;
	free(s);
	return 0;
}

void ap_spawn_abort(struct ap_spawn *s)
{
	if (!s)
		return;
	spawn.aborted++;
	ap_spawn_result_clear(&s->res);
	free(s);
}

void ap_spawn_result_clear(struct ap_spawn_result *r)
{
	free(r->output);
	*r = (struct ap_spawn_result){ 0 };
}

int ap_spawn_expand_argv(char *const tmpl[], const char *path, char ***ret)
{
	char **v = NULL;

	for (size_t i = 0; tmpl[i]; i++)
		assert_int_equal(ap_strv_push(&v, strcmp(tmpl[i], "%s") == 0 ? path : tmpl[i]), 0);
	*ret = v;
	return 0;
}

/* --- stubs of install.c -------------------------------------------------------------- */

int ap_install_content(const struct ap_file_op *f, const struct ap_install_source *src,
		       char **ret_buf, const char **ret_data, size_t *ret_len)
{
	int r;

	if (f->change_ref->new_data) {
		*ret_data = f->change_ref->new_data;
		*ret_len = f->change_ref->new_len;
		return 0;
	}
	if (!src)
		return -ENODATA;
	r = src->read(src->userdata, f->change_ref, ret_buf, ret_len);
	*ret_data = *ret_buf;
	return r;
}

int ap_install_owner_of(const struct ap_file_op *f, uid_t *ret_uid, gid_t *ret_gid)
{
	*ret_uid = (uid_t)-1;
	*ret_gid = (gid_t)-1;
	if (f->owner && strcmp(f->owner, "nosuchuser") == 0)
		return ap_log_error(-ESRCH, "the owner or group of '%s' does not exist", f->path);
	return 0;
}

/* --- fixture ------------------------------------------------------------------------- */

struct fixture {
	char *dir;   /* the test's temp dir */
	char *stage; /* dir/stage, what validate is given */
	char *units; /* dir/units, the installed unit files */
	char *log;   /* what the last validate() logged */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || ap_fs_mkdtemp("test-validate-", &f->dir) < 0)
		return -1;
	f->stage = ap_strdupf("%s/stage", f->dir);
	f->units = ap_strdupf("%s/units", f->dir);
	if (!f->stage || !f->units || mkdir(f->stage, 0700) < 0 || mkdir(f->units, 0755) < 0)
		return -1;
	spawn.progs = NULL;
	spawn.calls = spawn.started = spawn.joined = spawn.aborted = 0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	int r = ap_fs_rm_rf(f->dir);

	ap_buf_clear(&spawn.argv);
	ap_strv_free(spawn.env);
	spawn.env = NULL;
	free(spawn.seen);
	spawn.seen = NULL;
	free(f->dir);
	free(f->stage);
	free(f->units);
	free(f->log);
	free(f);
	return r < 0 ? -1 : 0;
}

/* Runs ap_validate_plan on files with stderr caught in fx->log. */
static int validate(struct fixture *fx, struct ap_file_op *files, size_t n, enum ap_scope scope,
		    const struct ap_install_source *src)
{
	struct ap_plan p = { .files = files, .n_files = n };
	struct capture cap;
	int r;

	capture_start(&cap, fx->dir);
	r = ap_validate_plan(&p, src, scope, fx->units, fx->stage);
	free(fx->log);
	fx->log = capture_end(&cap);
	return r;
}

#define assert_logged(fx, s) assert_non_null(strstr((fx)->log, (s)))

#define CHANGE(data) { .kind = AP_CHANGE_ADD, .new_data = (data), .new_len = sizeof(data) - 1 }

static char *check_argv[] = { "app-check", "-c", "%s", NULL };

/* A config file with a validate: rule, installed to /etc/app/app.conf. */
static struct ap_file_op config_file(const struct ap_change *ch)
{
	return (struct ap_file_op){ .kind = AP_KIND_FILE, .path = "app/app.conf",
				    .dest = "/etc/app/app.conf", .root_len = strlen("/etc/app"),
				    .install = true, .mode = 0644, .validate = check_argv,
				    .change_ref = ch };
}

/* A unit file or drop-in of web.service from the repository. */
static struct ap_file_op unit_file(const char *path, const char *dest, enum ap_file_kind kind,
				   const struct ap_change *ch)
{
	return (struct ap_file_op){ .kind = kind, .path = (char *)path, .dest = (char *)dest,
				    .root_len = strlen("/etc/systemd/system"), .install = true,
				    .mode = 0644, .change_ref = ch, .unit = "web.service" };
}

/* The stage is private and temporary: gone once validation is over, whatever the outcome. */
static void assert_stage_gone(const struct fixture *fx)
{
	assert_int_equal(access(fx->stage, F_OK), -1);
	assert_int_equal(errno, ENOENT);
}

/* --- failures first -------------------------------------------------------------------- */

static void test_validator_fails(void **state)
{
	struct fixture *fx = *state;
	static const struct prog progs[] = {
		{ "app-check", 0, 2, 0, "checking config\nline 3: unknown directive 'lisen'\n" },
		{ NULL } };
	struct ap_change ch = CHANGE("lisen 80\n");
	struct ap_file_op f = config_file(&ch);

	spawn.progs = progs;
	assert_int_equal(validate(fx, &f, 1, AP_SCOPE_SYSTEM, NULL), -EINVAL);
	assert_int_equal(spawn.calls, 1);
	/* named by its repo path, the tool's last line first */
	assert_logged(fx, "validation of 'app/app.conf' failed (exit 2): line 3: unknown directive "
			  "'lisen' | checking config");
	assert_stage_gone(fx);
}

/* A secret's checker may quote the line it refuses: its output is not logged. */
static void test_secret_validator_output_hidden(void **state)
{
	struct fixture *fx = *state;
	static const struct prog progs[] = {
		{ "app-check", 0, 1, 0, "line 1: bad value 'TOKEN=hunter2'\n" }, { NULL } };
	struct ap_change ch = CHANGE("TOKEN=hunter2\n");
	struct ap_file_op f = config_file(&ch);

	f.secret = true;
	spawn.progs = progs;
	assert_int_equal(validate(fx, &f, 1, AP_SCOPE_SYSTEM, NULL), -EINVAL);
	assert_logged(fx, "validation of 'app/app.conf' failed (exit 1); the output of a secret's "
			  "validator is not shown");
	assert_null(strstr(fx->log, "hunter2"));
	assert_stage_gone(fx);
}

/* A validator still running at the timeout is a failure even if what was killed exited 0
 * (a child holding its output open, say). */
static void test_validator_times_out(void **state)
{
	struct fixture *fx = *state;
	static const struct prog progs[] = { { "app-check", 0, 0, 1, NULL }, { NULL } };
	struct ap_change ch = CHANGE("listen 80\n");
	struct ap_file_op f = config_file(&ch);

	spawn.progs = progs;
	assert_int_equal(validate(fx, &f, 1, AP_SCOPE_SYSTEM, NULL), -EINVAL);
	assert_logged(fx, "validation of 'app/app.conf' failed (timed out, status 0): (no output)");
	assert_stage_gone(fx);
}

/* A validator that is not installed refuses the file (fix the config), it is not a passing
 * check; a validator that cannot be started for another reason is the host's problem now. */
static void test_validator_missing_or_unstartable(void **state)
{
	struct fixture *fx = *state;
	static const struct prog missing[] = { { "app-check", -ENOENT, 0, 0, NULL }, { NULL } };
	static const struct prog busy[] = { { "app-check", -EAGAIN, 0, 0, NULL }, { NULL } };
	struct ap_change ch = CHANGE("listen 80\n");
	struct ap_file_op f = config_file(&ch);

	spawn.progs = missing;
	assert_int_equal(validate(fx, &f, 1, AP_SCOPE_SYSTEM, NULL), -EINVAL);
	assert_logged(fx, "validator 'app-check' for 'app/app.conf' could not run");
	spawn.progs = busy;
	assert_int_equal(mkdir(fx->stage, 0700), 0);
	assert_int_equal(validate(fx, &f, 1, AP_SCOPE_SYSTEM, NULL), -EAGAIN);
	assert_logged(fx, "failed to stage files for validation");
	assert_stage_gone(fx);
}

/* Every file is checked even after one failed, so that one run reports every problem. */
static void test_every_failure_reported(void **state)
{
	struct fixture *fx = *state;
	static const struct prog progs[] = { { "app-check", 0, 1, 0, "bad\n" }, { NULL } };
	struct ap_change a = CHANGE("a\n"), b = CHANGE("b\n"), c = CHANGE("c\n");
	struct ap_file_op files[3] = { config_file(&a), config_file(&b), config_file(&c) };

	files[1].path = "app/other.conf";
	files[1].dest = "/etc/app/other.conf";
	files[2].owner = "nosuchuser";
	files[2].path = "app/third.conf";
	files[2].validate = NULL;
	spawn.progs = progs;
	assert_int_equal(validate(fx, files, 3, AP_SCOPE_SYSTEM, NULL), -EINVAL);
	assert_int_equal(spawn.calls, 2);
	assert_logged(fx, "validation of 'app/app.conf' failed (exit 1): bad");
	assert_logged(fx, "validation of 'app/other.conf' failed (exit 1): bad");
	assert_logged(fx, "the owner or group of 'app/third.conf' does not exist");
}

/* systemd-analyze verify failing: each of its lines is reported with the repository path in
 * place of the staged one. */
static void test_verify_fails(void **state)
{
	struct fixture *fx = *state;
	static const struct prog progs[] = { { "systemd-analyze", 0, 1, 0,
					     "%s:4: Invalid user/group name or numeric ID: r00t\n"
					     "web.service: Failed to create web.service/start: "
					     "Unit web.service has a bad unit file setting.\n" },
					    { NULL } };
	struct ap_change ch = CHANGE("[Service]\nExecStart=/bin/true\n\nUser=r00t\n");
	struct ap_file_op f = unit_file("units/web.service", "/etc/systemd/system/web.service",
					AP_KIND_UNIT, &ch);

	spawn.progs = progs;
	assert_int_equal(validate(fx, &f, 1, AP_SCOPE_SYSTEM, NULL), -EINVAL);
	assert_logged(fx, "validation of 'units/web.service' failed: units/web.service:4: Invalid "
			  "user/group name or numeric ID: r00t");
	assert_logged(fx, "validation of 'units/web.service' failed: web.service: Failed to create");
	assert_null(strstr(fx->log, fx->stage));
	assert_stage_gone(fx);
}

/* Exit 0 with an unknown key or section is still an error: systemd would ignore the line and
 * run the service without it. Other warnings on exit 0 pass. */
static void test_verify_unknown_key_is_an_error(void **state)
{
	struct fixture *fx = *state;
	static const struct prog unknown[] = {
		{ "systemd-analyze", 0, 0, 0,
		  "%s:3: Unknown key name 'ExecStrat' in section 'Service', ignoring.\n" },
		{ NULL } };
	static const struct prog warning[] = {
		{ "systemd-analyze", 0, 0, 0, "%s: Command 'true' is not executable\n" },
		{ NULL } };
	struct ap_change ch = CHANGE("[Service]\nType=oneshot\nExecStrat=/bin/true\n");
	struct ap_file_op f = unit_file("units/web.service", "/etc/systemd/system/web.service",
					AP_KIND_UNIT, &ch);

	spawn.progs = unknown;
	assert_int_equal(validate(fx, &f, 1, AP_SCOPE_SYSTEM, NULL), -EINVAL);
	assert_logged(fx, "validation of 'units/web.service' failed: units/web.service:3: Unknown key");
	spawn.progs = warning;
	assert_int_equal(mkdir(fx->stage, 0700), 0);
	assert_int_equal(validate(fx, &f, 1, AP_SCOPE_SYSTEM, NULL), 0);
}

/* A program the unit runs that is not installed: a failure on the host (it would not start),
 * none where the commands live elsewhere (autopull plan on a CI runner), but still counted;
 * a real error beside it fails there too. */
static void test_verify_program_elsewhere(void **state)
{
	struct fixture *fx = *state;
	static const struct prog missing[] = {
		{ "systemd-analyze", 0, 1, 0,
		  "web.service: Command /usr/bin/webd is not executable: No such file or directory\n" },
		{ NULL } };
	static const struct prog both[] = {
		{ "systemd-analyze", 0, 1, 0,
		  "%s:3: Unknown section 'Bogus'. Ignoring.\n"
		  "web.service: Command /usr/bin/webd is not executable: No such file or directory\n" },
		{ NULL } };
	struct ap_change ch = CHANGE("[Service]\nExecStart=/usr/bin/webd\n");
	struct ap_file_op f = unit_file("units/web.service", "/etc/systemd/system/web.service",
					AP_KIND_UNIT, &ch);
	struct ap_plan p = { .files = &f, .n_files = 1 };
	size_t n = 99;

	spawn.progs = missing;
	assert_int_equal(validate(fx, &f, 1, AP_SCOPE_SYSTEM, NULL), -EINVAL);
	assert_int_equal(mkdir(fx->stage, 0700), 0);
	assert_int_equal(ap_validate_plan_where(&p, NULL, AP_SCOPE_SYSTEM, fx->units, fx->stage,
						AP_VALIDATE_ELSEWHERE, &n), 0);
	assert_int_equal(n, 1);
	spawn.progs = both;
	assert_int_equal(mkdir(fx->stage, 0700), 0);
	assert_int_equal(ap_validate_plan_where(&p, NULL, AP_SCOPE_SYSTEM, fx->units, fx->stage,
						AP_VALIDATE_ELSEWHERE, &n), -EINVAL);
	assert_stage_gone(fx);
}

/* Elsewhere the owners and validators of the rules are the host's: an owner this machine does
 * not know and a validator it does not have refuse nothing (on the host they do). */
static void test_owner_and_validator_left_to_the_host(void **state)
{
	struct fixture *fx = *state;
	struct ap_change ch = CHANGE("listen 80\n");
	struct ap_file_op f = config_file(&ch);
	struct ap_plan p = { .files = &f, .n_files = 1 };

	f.owner = "nosuchuser";
	assert_int_equal(validate(fx, &f, 1, AP_SCOPE_SYSTEM, NULL), -EINVAL);
	f.owner = NULL;
	assert_int_equal(mkdir(fx->stage, 0700), 0);
	assert_int_equal(validate(fx, &f, 1, AP_SCOPE_SYSTEM, NULL), 0);
	assert_int_equal(spawn.calls, 1); /* the validator ran on the host */
	f.owner = "nosuchuser";
	assert_int_equal(mkdir(fx->stage, 0700), 0);
	assert_int_equal(ap_validate_plan_where(&p, NULL, AP_SCOPE_SYSTEM, fx->units, fx->stage,
						AP_VALIDATE_ELSEWHERE, NULL), 0);
	assert_int_equal(spawn.calls, 1); /* and not elsewhere */
	assert_stage_gone(fx);
}

static void test_verify_times_out(void **state)
{
	struct fixture *fx = *state;
	static const struct prog progs[] = { { "systemd-analyze", 0, 0, 1, NULL }, { NULL } };
	struct ap_change ch = CHANGE("[Service]\nExecStart=/bin/true\n");
	struct ap_file_op f = unit_file("units/web.service", "/etc/systemd/system/web.service",
					AP_KIND_UNIT, &ch);

	spawn.progs = progs;
	assert_int_equal(validate(fx, &f, 1, AP_SCOPE_SYSTEM, NULL), -EINVAL);
	assert_logged(fx, "validation of unit files failed: systemd-analyze verify timed out, "
			  "status 0");
	assert_stage_gone(fx);
}

/* The bytes come from the source when the change does not carry them: a failed read stops
 * validation with its error, it does not pass the file unchecked. */
static int read_fails(void *u, const struct ap_change *ch, char **ret, size_t *ret_len)
{
	return -EIO;
}

static void test_source_read_fails(void **state)
{
	struct fixture *fx = *state;
	const struct ap_install_source src = { .read = read_fails };
	struct ap_change ch = { .kind = AP_CHANGE_ADD };
	struct ap_file_op f = config_file(&ch);

	assert_int_equal(validate(fx, &f, 1, AP_SCOPE_SYSTEM, &src), -EIO);
	assert_int_equal(spawn.calls, 0);
	assert_logged(fx, "failed to stage files for validation");
	assert_stage_gone(fx);
}

/* A unit path that would leave the stage is not written outside it. */
static void test_stage_path_cannot_escape(void **state)
{
	struct fixture *fx = *state;
	struct ap_change ch = CHANGE("[Service]\nExecStart=/bin/true\n");
	_cleanup_free_ char *outside = ap_strdupf("%s/escaped", fx->dir);
	struct ap_buf dest = { 0 };
	struct ap_file_op f;

	/* as many ".." as lead from the stage up to "/", then down to outside */
	assert_true(ap_buf_printf(&dest, "/etc/systemd/system") >= 0);
	for (const char *c = fx->stage; (c = strchr(c, '/')); c++)
		assert_true(ap_buf_printf(&dest, "/..") >= 0);
	assert_true(ap_buf_printf(&dest, "%s/web.service", outside) >= 0);
	f = unit_file("units/web.service", dest.data, AP_KIND_UNIT, &ch);
	assert_true(validate(fx, &f, 1, AP_SCOPE_SYSTEM, NULL) < 0);
	assert_int_equal(spawn.calls, 0);
	assert_int_equal(access(outside, F_OK), -1);
	assert_stage_gone(fx);
	ap_buf_clear(&dest);
}

/* --- the users units run as ------------------------------------------------------------- */

#define UNIT_AS(user) "[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\nUser=" user "\n"

/* A unit whose User= the host does not know is refused before anything changes (systemd would
 * fail its start with 217/USER), unless a sysusers.d file of the same plan creates it. */
static void test_unknown_user_refused(void **state)
{
	struct ap_change unit = { .kind = AP_CHANGE_ADD, .new_data = (char *)UNIT_AS("apnosuchuser"),
				  .new_len = strlen(UNIT_AS("apnosuchuser")) };
	struct ap_change known = { .kind = AP_CHANGE_ADD, .new_data = (char *)UNIT_AS("root"),
				   .new_len = strlen(UNIT_AS("root")) };
	struct ap_change dyn = { .kind = AP_CHANGE_ADD,
				 .new_data = (char *)UNIT_AS("apnosuchuser") "DynamicUser=yes\n",
				 .new_len = strlen(UNIT_AS("apnosuchuser") "DynamicUser=yes\n") };
	struct ap_change sysu = { .kind = AP_CHANGE_ADD,
				  .new_data = (char *)"# app\ng apgroup -\nu  apnosuchuser - \"App\"\n",
				  .new_len = strlen("# app\ng apgroup -\nu  apnosuchuser - \"App\"\n") };
	struct ap_file_op files[] = {
		{ .kind = AP_KIND_UNIT, .install = true, .path = "systemd/app.service",
		  .dest = "/u/app.service", .unit = "app.service", .change_ref = &unit },
		{ .kind = AP_KIND_UNIT, .install = true, .path = "systemd/ok.service",
		  .dest = "/u/ok.service", .unit = "ok.service", .change_ref = &known },
		{ .kind = AP_KIND_UNIT, .install = true, .path = "systemd/dyn.service",
		  .dest = "/u/dyn.service", .unit = "dyn.service", .change_ref = &dyn },
		{ .kind = AP_KIND_FILE, .install = true, .path = "sysusers/app.conf",
		  .dest = "/etc/sysusers.d/app.conf", .change_ref = &sysu },
	};
	struct ap_setup_action setup = { .kind = AP_SETUP_SYSUSERS,
					 .file = "/etc/sysusers.d/app.conf" };
	struct ap_plan p = { .to = "abc", .files = files, .n_files = 3 };

	assert_int_equal(ap_unitusers_check(&p, NULL, AP_SCOPE_SYSTEM), -EINVAL);
	assert_int_equal(ap_unitusers_check(&p, NULL, AP_SCOPE_USER), 0);
	p.n_files = 4;
	assert_int_equal(ap_unitusers_check(&p, NULL, AP_SCOPE_SYSTEM), -EINVAL);
	p.setup = &setup;
	p.n_setup = 1;
	assert_int_equal(ap_unitusers_check(&p, NULL, AP_SCOPE_SYSTEM), 0);
	(void)state;
}

#define TMPF_OK "# owners\nd /run/a 0750 root root -\nd /run/b 0750 apnosuchuser apnosuchuser\n" \
	"d /run/c 0750 - apgroup\nd /run/d 0750 1234 %U\n"
#define TMPF_BAD TMPF_OK "d /run/e 0750 root apnosuchgroup -\n"

/* A tmpfiles.d line's user and group must exist or be made by the plan's sysusers.d files
 * ("u" makes a user and its group, "g" a group); "-", numbers and specifiers are left to it. */
static void test_tmpfiles_owner_refused(void **state)
{
	struct ap_change sysu = { .kind = AP_CHANGE_ADD,
				  .new_data = (char *)"g apgroup -\nu apnosuchuser -\n",
				  .new_len = strlen("g apgroup -\nu apnosuchuser -\n") };
	struct ap_change ok = { .kind = AP_CHANGE_ADD, .new_data = (char *)TMPF_OK,
				.new_len = strlen(TMPF_OK) };
	struct ap_change bad = { .kind = AP_CHANGE_ADD, .new_data = (char *)TMPF_BAD,
				 .new_len = strlen(TMPF_BAD) };
	struct ap_file_op files[] = {
		{ .kind = AP_KIND_FILE, .install = true, .path = "sysusers/app.conf",
		  .dest = "/etc/sysusers.d/app.conf", .change_ref = &sysu },
		{ .kind = AP_KIND_FILE, .install = true, .path = "tmpfiles/app.conf",
		  .dest = "/etc/tmpfiles.d/app.conf", .change_ref = &ok },
	};
	struct ap_setup_action setup[] = {
		{ .kind = AP_SETUP_SYSUSERS, .file = "/etc/sysusers.d/app.conf" },
		{ .kind = AP_SETUP_TMPFILES_CREATE, .file = "/etc/tmpfiles.d/app.conf" },
	};
	struct ap_plan p = { .to = "abc", .files = files, .n_files = 2, .setup = setup,
			     .n_setup = 2 };

	assert_int_equal(ap_unitusers_check(&p, NULL, AP_SCOPE_SYSTEM), 0);
	files[1].change_ref = &bad;
	assert_int_equal(ap_unitusers_check(&p, NULL, AP_SCOPE_SYSTEM), -EINVAL);
	files[1].change_ref = &ok;
	p.n_setup = 1;
	p.setup = &setup[1]; /* without the sysusers.d file its names are unknown */
	assert_int_equal(ap_unitusers_check(&p, NULL, AP_SCOPE_SYSTEM), -EINVAL);
	(void)state;
}

/* --- what a passing validation sees ------------------------------------------------------ */

/* The validator runs on a staged copy with the new bytes, in a clean environment whose home
 * and XDG dirs lie in the stage. */
static void test_validator_sees_new_bytes(void **state)
{
	struct fixture *fx = *state;
	struct ap_change ch = CHANGE("listen 8080\n");
	struct ap_file_op f = config_file(&ch);
	_cleanup_free_ char *home = ap_strdupf("HOME=%s/.home", fx->stage);

	assert_int_equal(validate(fx, &f, 1, AP_SCOPE_SYSTEM, NULL), 0);
	assert_int_equal(spawn.calls, 1);
	assert_true(spawn.stage_existed);
	assert_string_equal(spawn.seen, "listen 8080\n");
	assert_true(ap_startswith(spawn.argv.data, "app-check -c "));
	assert_true(ap_strv_contains(spawn.env, home));
	assert_true(ap_strv_contains(spawn.env, "LANG=C.UTF-8"));
	assert_int_equal(ap_strv_length(spawn.env), 6); /* PATH LANG HOME and 3 XDG */
	assert_stage_gone(fx);
}

/* A drop-in is verified with its unit: the installed one (here in unit_dir) when the plan
 * brings none, in the user manager's mode for --user. */
static void test_dropin_verified_with_installed_unit(void **state)
{
	struct fixture *fx = *state;
	struct ap_change ch = CHANGE("[Service]\nEnvironment=A=1\n");
	struct ap_file_op f = unit_file("units/web.service.d/env.conf",
					"/etc/systemd/system/web.service.d/env.conf",
					AP_KIND_DROPIN, &ch);
	_cleanup_free_ char *unit = ap_strdupf("%s/web.service", fx->units);
	_cleanup_free_ char *want = ap_strdupf("systemd-analyze verify --man=no --user %s/web.service\n",
					       fx->stage);
	int fd;

	fd = open(unit, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "[Service]\nExecStart=/bin/true\n", 30), 30);
	close(fd);
	assert_int_equal(validate(fx, &f, 1, AP_SCOPE_USER, NULL), 0);
	assert_string_equal(spawn.argv.data, want);
	assert_string_equal(spawn.seen, "[Service]\nExecStart=/bin/true\n");
}

/* A drop-in whose unit is nowhere installed is not verified (nothing to verify it with). */
static void test_dropin_without_unit_not_verified(void **state)
{
	struct fixture *fx = *state;
	struct ap_change ch = CHANGE("[Service]\nEnvironment=A=1\n");
	struct ap_file_op f = unit_file("units/nosuch-xyz.service.d/env.conf",
					"/etc/systemd/system/nosuch-xyz.service.d/env.conf",
					AP_KIND_DROPIN, &ch);

	f.unit = "nosuch-xyz.service";
	assert_int_equal(validate(fx, &f, 1, AP_SCOPE_SYSTEM, NULL), 0);
	assert_int_equal(spawn.calls, 0);
}

/* --- a verify started early ------------------------------------------------------------ */

static const struct prog verify_fails[] = {
	{ "systemd-analyze", 0, 1, 0, "%s:2: Unknown key name 'ExecStrat'\n" }, { NULL } };

/* ap_validate_start on web.service with text, which must log nothing. */
static struct ap_validation *start_web(struct fixture *fx, struct ap_change *ch,
				       struct ap_file_op *f, struct ap_plan *p)
{
	struct ap_validation *v = NULL;
	struct capture cap;
	char *log;

	*f = unit_file("units/web.service", "/etc/systemd/system/web.service", AP_KIND_UNIT, ch);
	*p = (struct ap_plan){ .files = f, .n_files = 1 };
	capture_start(&cap, fx->dir);
	assert_int_equal(ap_validate_start(p, NULL, AP_SCOPE_SYSTEM, fx->units, fx->stage, 0, &v),
			 0);
	log = capture_end(&cap);
	assert_string_equal(log, ""); /* nothing is reported before the finish */
	free(log);
	return v;
}

/* ap_validate_finish with what it logs in fx->log. */
static int finish(struct fixture *fx, struct ap_validation *v)
{
	struct capture cap;
	int r;

	capture_start(&cap, fx->dir);
	r = ap_validate_finish(v, NULL);
	free(fx->log);
	fx->log = capture_end(&cap);
	return r;
}

/* The verify runs from the start, before the caller's other work, and its failure is
 * reported at the finish just as ap_validate_plan reports it; the stage goes at the end. */
static void test_verify_started_before_finish(void **state)
{
	struct fixture *fx = *state;
	struct ap_change ch = CHANGE("[Service]\nExecStrat=/bin/true\n");
	struct ap_file_op f;
	struct ap_plan p;
	struct ap_validation *v;

	spawn.progs = verify_fails;
	v = start_web(fx, &ch, &f, &p);
	assert_int_equal(spawn.started, 1);
	assert_int_equal(spawn.joined, 0);
	assert_true(spawn.stage_existed);
	assert_int_equal(finish(fx, v), -EINVAL);
	assert_int_equal(spawn.joined, 1);
	assert_logged(fx, "validation of 'units/web.service' failed: units/web.service:2: Unknown "
			  "key name 'ExecStrat'");
	assert_stage_gone(fx);
}

/* A run that ends before the finish kills the verify and removes the stage, saying nothing. */
static void test_abort_kills_verify(void **state)
{
	struct fixture *fx = *state;
	struct ap_change ch = CHANGE("[Service]\nExecStrat=/bin/true\n");
	struct ap_file_op f;
	struct ap_plan p;

	spawn.progs = verify_fails;
	ap_validate_abort(start_web(fx, &ch, &f, &p));
	ap_validate_abort(NULL);
	assert_int_equal(spawn.aborted, 1);
	assert_int_equal(spawn.joined, 0);
	assert_stage_gone(fx);
}

/* A probe that does not parse stops the staging before any verify, and is reported at the
 * finish, not before. */
static void test_bad_health_reported_at_finish(void **state)
{
	struct fixture *fx = *state;
	struct ap_change ch = CHANGE("[Unit]\nX-AutoPull-Health=ping web\n[Service]\n"
				     "ExecStart=/bin/true\n");
	struct ap_file_op f;
	struct ap_plan p;
	struct ap_validation *v = start_web(fx, &ch, &f, &p);

	assert_int_equal(spawn.started, 0);
	assert_int_equal(finish(fx, v), -EINVAL);
	assert_logged(fx, "units/web.service:2: X-AutoPull-Health=: the kind is not exec, http or "
			  "tcp");
	assert_stage_gone(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unknown_user_refused),
		cmocka_unit_test(test_tmpfiles_owner_refused),
		cmocka_unit_test_setup_teardown(test_validator_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secret_validator_output_hidden, setup, teardown),
		cmocka_unit_test_setup_teardown(test_validator_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_validator_missing_or_unstartable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_failure_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_unknown_key_is_an_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_program_elsewhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_owner_and_validator_left_to_the_host, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_verify_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_source_read_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stage_path_cannot_escape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_validator_sees_new_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dropin_verified_with_installed_unit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dropin_without_unit_not_verified, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_started_before_finish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_kills_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_health_reported_at_finish, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
