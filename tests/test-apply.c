/* The executor with fake effects: the order of effects, what each failing phase leaves behind,
 * what a retry redoes, the rollback's order, and resuming an interrupted undo. Every effect is
 * logged as one word in a call log that the tests compare whole. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "apply.h"
#include "util.h"

#define OID_A "0123456789abcdef0123456789abcdef01234567"
#define OID_B "89abcdef0123456789abcdef0123456789abcdef"
#define OID_C "fedcba9876543210fedcba9876543210fedcba98"

struct fake {
	struct ap_buf log;
	const char *fail;       /* the effect that fails, e.g. "install", "reload" */
	const char *job_fail;   /* the unit whose jobs fail */
	const char *job_result; /* their result ("failed" when NULL) */
	int settle_fails;       /* how many settle calls fail with -EIO */
	char *saved;            /* the last journal saved, formatted */
	bool cleared;
	bool rolled_back_settled;
	int saves;
};

static void note(struct fake *f, const char *fmt, ...) _printf_(2, 3);
static void note(struct fake *f, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ap_buf_printf(&f->log, "%s%s", f->log.len ? " " : "", buf);
}

static void note_units(struct fake *f, const char *what, char *const *units)
{
	struct ap_buf b = { 0 };

	for (size_t i = 0; units && units[i]; i++)
		ap_buf_printf(&b, "%s%s", i ? "," : "", units[i]);
	note(f, "%s:%s", what, b.data ? b.data : "");
	ap_buf_clear(&b);
}

static int fails(struct fake *f, const char *what)
{
	return f->fail && strcmp(f->fail, what) == 0 ? -EIO : 0;
}

static int f_save(void *u, const struct ap_journal *j)
{
	struct fake *f = u;

	free(f->saved);
	f->saves++;
	f->cleared = false;
	return ap_journal_format(j, &f->saved) < 0 ? -ENOMEM : fails(f, "save");
}

static int f_clear(void *u)
{
	struct fake *f = u;

	note(f, "clear");
	f->cleared = true;
	return 0;
}

static int f_backup(void *u, const struct ap_plan *p, const char *commit)
{
	note(u, "backup");
	return fails(u, "backup");
}

static int f_install(void *u, const struct ap_plan *p)
{
	note(u, "install");
	return fails(u, "install");
}

static int f_setup(void *u, const struct ap_plan *p)
{
	for (size_t i = 0; i < p->n_setup; i++)
		note(u, "%s:%s", ap_setup_kind_to_string(p->setup[i].kind), p->setup[i].file);
	return fails(u, "setup");
}

static int f_restore(void *u, const char *commit)
{
	note(u, "restore:%.7s", commit);
	return fails(u, "restore");
}

#define UNITS_OP(name)                                         \
	static int f_##name(void *u, char *const *units)       \
	{                                                      \
		note_units(u, #name, units);                   \
		return fails(u, #name);                        \
	}
UNITS_OP(enable)
UNITS_OP(reenable)
UNITS_OP(disable)
UNITS_OP(reset_failed)

static int f_reload(void *u)
{
	note(u, "reload");
	return fails(u, "reload");
}

static int f_jobs(void *u, struct ap_job *jobs, size_t n)
{
	struct fake *f = u;

	for (size_t i = 0; i < n; i++) {
		bool bad = f->job_fail && strcmp(f->job_fail, jobs[i].unit) == 0;

		note(f, "%s:%s", ap_job_kind_to_string(jobs[i].kind), jobs[i].unit);
		jobs[i].error = bad ? -EIO : 0;
		snprintf(jobs[i].result, sizeof(jobs[i].result), "%s",
			 !bad ? "done" : f->job_result ? f->job_result : "failed");
	}
	return 0;
}

static int f_settle(void *u, char *const *units, char **ret_why)
{
	struct fake *f = u;

	note_units(f, "settle", units);
	if (f->settle_fails > 0) {
		f->settle_fails--;
		*ret_why = strdup("unit 'x' failed");
		return -EIO;
	}
	return 0;
}

static int f_record(void *u, const struct ap_journal *j, char *const *restarted)
{
	note_units(u, "record", restarted);
	return fails(u, "record");
}

static int f_record_rollback(void *u, const struct ap_journal *j, const char *why, bool settled,
			     const char *settle_why)
{
	struct fake *f = u;

	note(f, "bad:%.7s:%s", j->to, settled ? "settled" : "tripped");
	f->rolled_back_settled = settled;
	return 0;
}

static struct ap_buf crash_log;
static void f_crash(void *u, const char *point)
{
	ap_buf_printf(&crash_log, "%s%s", crash_log.len ? " " : "", point);
}

static struct ap_apply_ops ops_for(struct fake *f)
{
	return (struct ap_apply_ops){
		.userdata = f, .save_journal = f_save, .clear_journal = f_clear, .backup = f_backup,
		.install = f_install, .setup = f_setup, .restore = f_restore, .enable = f_enable,
		.reenable = f_reenable, .disable = f_disable, .reload = f_reload,
		.reset_failed = f_reset_failed, .run_jobs = f_jobs, .settle = f_settle,
		.record = f_record, .record_rollback = f_record_rollback,
	};
}

/* A plan from OID_A to OID_B with one file and: a.service restart, b.service reload,
 * c.service new (enable-start), d.service removed (disable-stop). */
static struct ap_plan *plan_abcd(void)
{
	static struct ap_change ch = { .kind = AP_CHANGE_MODIFY };
	static struct ap_file_op file = { .change = AP_CHANGE_MODIFY, .install = true,
					  .path = "systemd/a.service", .dest = "/etc/a.service",
					  .change_ref = &ch };
	static struct ap_unit_action units[] = {
		{ .unit = "a.service", .action = AP_ACTION_RESTART },
		{ .unit = "b.service", .action = AP_ACTION_RELOAD },
		{ .unit = "c.service", .action = AP_ACTION_ENABLE_START },
		{ .unit = "d.service", .action = AP_ACTION_DISABLE_STOP },
		{ .unit = "e.service", .action = AP_ACTION_NONE },
	};
	static struct ap_plan p = { .from = OID_A, .to = OID_B, .files = &file, .n_files = 1,
				    .daemon_reload = true, .units = units, .n_units = 5 };
	return &p;
}

static void fake_done(struct fake *f)
{
	ap_buf_clear(&f->log);
	free(f->saved);
}

static const char *log_of(struct fake *f)
{
	return f->log.data ? f->log.data : "";
}

static void start(struct fake *f, struct ap_journal *j, const char *base)
{
	assert_int_equal(ap_apply_journal_new(plan_abcd(), base, NULL, j), 0);
	*f = (struct fake){ 0 };
}

static void test_order_of_effects(void **state)
{
	struct fake f;
	struct ap_journal j;
	struct ap_apply_ops ops;
	enum ap_apply_outcome out;

	start(&f, &j, OID_A);
	ops = ops_for(&f);
	assert_int_equal(j.n_units, 4); /* "none" is not an action */
	assert_int_equal(ap_apply_run(&j, plan_abcd(), &ops, &out), 0);
	assert_int_equal(out, AP_APPLY_OK);
	assert_string_equal(log_of(&f),
			    "backup disable:d.service stop:d.service reset_failed:d.service install "
			    "enable:c.service reload try-restart:a.service "
			    "reload-or-try-restart:b.service start:c.service "
			    "settle:a.service,b.service,c.service record:a.service,b.service clear");
	assert_true(f.cleared);
	ap_journal_clear(&j);
	fake_done(&f);
}

/* plan_abcd with a sysusers.d and a tmpfiles.d file: users, then directories. */
static struct ap_plan *plan_setup(void)
{
	static struct ap_setup_action setup[] = {
		{ .kind = AP_SETUP_SYSUSERS, .file = "/etc/sysusers.d/app.conf" },
		{ .kind = AP_SETUP_TMPFILES_CREATE, .file = "/etc/tmpfiles.d/app.conf" },
	};
	static struct ap_plan p;

	p = *plan_abcd();
	p.setup = setup;
	p.n_setup = ELEMENTSOF(setup);
	return &p;
}

#define SETUP_BEFORE                                                                       \
	"backup disable:d.service stop:d.service reset_failed:d.service install "          \
	"sysusers:/etc/sysusers.d/app.conf tmpfiles-create:/etc/tmpfiles.d/app.conf "

static void run_setup_plan(const char *fail, enum ap_apply_outcome want, const char *want_log)
{
	struct fake f;
	struct ap_journal j;
	struct ap_apply_ops ops;
	enum ap_apply_outcome out;

	start(&f, &j, OID_A);
	f.fail = fail;
	ops = ops_for(&f);
	assert_int_equal(ap_apply_run(&j, plan_setup(), &ops, &out), 0);
	assert_int_equal(out, want);
	assert_string_equal(log_of(&f), want_log);
	ap_journal_clear(&j);
	fake_done(&f);
}

/* After the files, before any unit is enabled, reloaded or started: a unit that needs the
 * user or the directory finds it. A tool that fails puts the files back like a failed write:
 * no unit sees half a commit. */
static void test_setup_runs_after_files_before_units(void **state)
{
	run_setup_plan(NULL, AP_APPLY_OK,
		       SETUP_BEFORE "enable:c.service reload try-restart:a.service "
		       "reload-or-try-restart:b.service start:c.service "
		       "settle:a.service,b.service,c.service record:a.service,b.service clear");
	run_setup_plan("setup", AP_APPLY_RESTORED,
		       SETUP_BEFORE "restore:89abcde enable:d.service reload start:d.service clear");
}

/* Before the files: nothing of the plan may stay. */
static void test_backup_fails(void **state)
{
	struct fake f;
	struct ap_journal j;
	struct ap_apply_ops ops;
	enum ap_apply_outcome out;

	start(&f, &j, OID_A);
	f.fail = "backup";
	ops = ops_for(&f);
	assert_int_equal(ap_apply_run(&j, plan_abcd(), &ops, &out), 0);
	assert_int_equal(out, AP_APPLY_RESTORED);
	assert_string_equal(log_of(&f), "backup clear");
	ap_journal_clear(&j);
	fake_done(&f);
}

/* A write that fails half-way puts every file back and brings the stopped unit back. */
static void test_install_fails(void **state)
{
	struct fake f;
	struct ap_journal j;
	struct ap_apply_ops ops;
	enum ap_apply_outcome out;

	start(&f, &j, OID_A);
	f.fail = "install";
	ops = ops_for(&f);
	assert_int_equal(ap_apply_run(&j, plan_abcd(), &ops, &out), 0);
	assert_int_equal(out, AP_APPLY_RESTORED);
	assert_string_equal(log_of(&f),
			    "backup disable:d.service stop:d.service reset_failed:d.service install "
			    "restore:89abcde enable:d.service reload start:d.service clear");
	ap_journal_clear(&j);
	fake_done(&f);
}

/* A failed job leaves that one action owed; the retry redoes only it (not a.service). */
static void test_failed_job_retries_only_what_is_owed(void **state)
{
	struct fake f;
	struct ap_journal j, back;
	struct ap_apply_ops ops;
	enum ap_apply_outcome out;

	start(&f, &j, OID_A);
	f.job_fail = "b.service";
	ops = ops_for(&f);
	assert_int_equal(ap_apply_run(&j, plan_abcd(), &ops, &out), 0);
	assert_int_equal(out, AP_APPLY_FAILED);
	assert_null(strstr(log_of(&f), "settle"));
	assert_null(strstr(log_of(&f), "record"));
	assert_false(f.cleared);
	assert_int_equal(ap_journal_parse(f.saved, &back, NULL), 0);
	assert_int_equal(ap_journal_find_unit(&back, "a.service")->state, AP_STEP_DONE);
	assert_int_equal(ap_journal_find_unit(&back, "b.service")->state, AP_STEP_FAILED);
	assert_true(ap_journal_is_done(&back, AP_PHASE_FILES));
	/* the next run: files are done, no plan needed */
	ap_buf_clear(&f.log);
	f.log = (struct ap_buf){ 0 };
	f.job_fail = NULL;
	assert_int_equal(ap_apply_run(&back, NULL, &ops, &out), 0);
	assert_int_equal(out, AP_APPLY_OK);
	assert_string_equal(log_of(&f), "reload-or-try-restart:b.service "
					"settle:a.service,b.service,c.service "
					"record:a.service,b.service clear");
	ap_journal_clear(&back);
	ap_journal_clear(&j);
	fake_done(&f);
}

/* A job the manager refuses for good (RefuseManualStop=, masked) is let go once: the apply
 * succeeds and nothing is owed, so later runs do not ask again. */
static void test_refused_job_is_not_owed(void **state)
{
	static const char *const results[] = { "only-by-dependency", "unit-masked",
					       "job-type-not-applicable" };

	for (size_t k = 0; k < ELEMENTSOF(results); k++) {
		struct fake f;
		struct ap_journal j;
		struct ap_apply_ops ops;
		enum ap_apply_outcome out;

		start(&f, &j, OID_A);
		f.job_fail = "a.service";
		f.job_result = results[k];
		ops = ops_for(&f);
		assert_int_equal(ap_apply_run(&j, plan_abcd(), &ops, &out), 0);
		assert_int_equal(out, AP_APPLY_OK);
		assert_true(f.cleared);
		assert_non_null(strstr(log_of(&f), "record:"));
		ap_journal_clear(&j);
		fake_done(&f);
	}
}

/* The manager did not reload: the files stay, the journal says what is left. */
static void test_reload_fails(void **state)
{
	struct fake f;
	struct ap_journal j, back;
	struct ap_apply_ops ops;
	enum ap_apply_outcome out;

	start(&f, &j, OID_A);
	f.fail = "reload";
	ops = ops_for(&f);
	assert_int_equal(ap_apply_run(&j, plan_abcd(), &ops, &out), 0);
	assert_int_equal(out, AP_APPLY_FAILED);
	assert_null(strstr(log_of(&f), "restore"));
	assert_int_equal(ap_journal_parse(f.saved, &back, NULL), 0);
	assert_true(ap_journal_is_done(&back, AP_PHASE_ENABLE));
	assert_false(ap_journal_is_done(&back, AP_PHASE_RELOAD));
	ap_buf_clear(&f.log);
	f.log = (struct ap_buf){ 0 };
	f.fail = NULL;
	assert_int_equal(ap_apply_run(&back, NULL, &ops, &out), 0);
	assert_int_equal(out, AP_APPLY_OK);
	assert_true(ap_startswith(log_of(&f), "reload try-restart:a.service"));
	ap_journal_clear(&back);
	ap_journal_clear(&j);
	fake_done(&f);
}

/* A unit started because it was failed: its failed state is reset first (or the start limit
 * that ended its loop refuses the start); it settles in a window of its own, and one that stays
 * down is not the commit's doing: no rollback. */
static void test_failed_unit_started_again(void **state)
{
	static struct ap_change ch = { .kind = AP_CHANGE_MODIFY };
	static struct ap_file_op file = { .change = AP_CHANGE_MODIFY, .install = true,
					  .path = "systemd/f.service", .dest = "/etc/f.service",
					  .change_ref = &ch };
	static struct ap_unit_action units[] = {
		{ .unit = "a.service", .action = AP_ACTION_RESTART },
		{ .unit = "f.service", .action = AP_ACTION_START },
	};
	static struct ap_plan p = { .from = OID_A, .to = OID_B, .files = &file, .n_files = 1,
				    .daemon_reload = true, .units = units, .n_units = 2 };
	static struct ap_plan only_f = { .from = OID_A, .to = OID_B, .files = &file, .n_files = 1,
					 .daemon_reload = true, .units = &units[1], .n_units = 1 };
	struct fake f = { 0 };
	struct ap_journal j;
	struct ap_apply_ops ops = ops_for(&f);
	enum ap_apply_outcome out;

	assert_int_equal(ap_apply_journal_new(&p, OID_A, NULL, &j), 0);
	assert_int_equal(ap_apply_run(&j, &p, &ops, &out), 0);
	assert_int_equal(out, AP_APPLY_OK);
	assert_string_equal(log_of(&f), "backup install reload try-restart:a.service "
					"reset_failed:f.service start:f.service settle:a.service "
					"settle:f.service record:a.service clear");
	ap_journal_clear(&j);
	fake_done(&f);

	f = (struct fake){ .settle_fails = 1 };
	ops = ops_for(&f);
	assert_int_equal(ap_apply_journal_new(&only_f, OID_A, NULL, &j), 0);
	assert_int_equal(ap_apply_run(&j, &only_f, &ops, &out), 0);
	assert_int_equal(out, AP_APPLY_OK); /* still down: reported by the engine, not undone */
	assert_null(strstr(log_of(&f), "restore"));
	assert_string_equal(j.why, "unit 'x' failed"); /* for the engine to report */
	ap_journal_clear(&j);
	fake_done(&f);
}

/* The changed units did not settle: new units stop and go away while their files exist,
 * the files come back, removed units come back, changed ones restart on the old files. */
static void test_rollback_order(void **state)
{
	struct fake f;
	struct ap_journal j;
	struct ap_apply_ops ops;
	enum ap_apply_outcome out;

	start(&f, &j, OID_A);
	f.settle_fails = 1;
	ops = ops_for(&f);
	assert_int_equal(ap_apply_run(&j, plan_abcd(), &ops, &out), 0);
	assert_int_equal(out, AP_APPLY_ROLLED_BACK);
	assert_non_null(strstr(log_of(&f),
			       "settle:a.service,b.service,c.service stop:c.service "
			       "disable:c.service restore:89abcde enable:d.service reload "
			       "restart:a.service restart:b.service start:d.service "
			       "settle:a.service,b.service,d.service bad:89abcde:settled clear"));
	assert_true(f.rolled_back_settled);
	ap_journal_clear(&j);
	fake_done(&f);
}

static void test_rollback_does_not_settle(void **state)
{
	struct fake f;
	struct ap_journal j;
	struct ap_apply_ops ops;
	enum ap_apply_outcome out;

	start(&f, &j, OID_A);
	f.settle_fails = 2;
	ops = ops_for(&f);
	assert_int_equal(ap_apply_run(&j, plan_abcd(), &ops, &out), 0);
	assert_int_equal(out, AP_APPLY_ROLLBACK_FAILED);
	assert_non_null(strstr(log_of(&f), "bad:89abcde:tripped clear"));
	ap_journal_clear(&j);
	fake_done(&f);
}

/* A kill during the rollback: the rollback journal is finished by the next run, without
 * undoing twice what was undone. */
static void test_interrupted_rollback_resumes(void **state)
{
	struct fake f = { 0 };
	struct ap_journal j;
	struct ap_apply_ops ops = ops_for(&f);
	enum ap_apply_outcome out;
	const char *text = "autopull-journal 2\nfrom " OID_A "\nto " OID_B "\nbase " OID_A
			   "\nmode rollback\ndone backup disable stop\nwhy unit 'x' failed\n"
			   "unit restart done new a.service\n"
			   "unit disable-stop done new d.service\n";

	assert_int_equal(ap_journal_parse(text, &j, NULL), 0);
	assert_int_equal(ap_apply_undo(&j, &ops, true, j.why, &out), 0);
	assert_int_equal(out, AP_APPLY_ROLLED_BACK);
	assert_string_equal(log_of(&f), "restore:89abcde enable:d.service reload restart:a.service "
					"start:d.service settle:a.service,d.service "
					"bad:89abcde:settled clear");
	ap_journal_clear(&j);
	fake_done(&f);
}

/* A kill after the last phase was undone, before the manager reloaded: the journal still says
 * the backup is done, so the next run restores again (nothing to write) and reloads before it
 * restarts anything. Without that reload the old units restart on the new definitions. */
static void test_interrupted_rollback_reloads(void **state)
{
	struct fake f = { 0 };
	struct ap_journal j, back;
	struct ap_apply_ops ops = ops_for(&f);
	enum ap_apply_outcome out;
	const char *text = "autopull-journal 2\nfrom " OID_A "\nto " OID_B "\nbase " OID_A
			   "\nmode rollback\ndone backup disable stop files enable reload restart "
			   "start\nwhy unit 'x' failed\n"
			   "unit restart done new a.service\n"
			   "unit enable-start done new c.service\n";

	/* the first undo is killed right after its last phase: only the backup's bit is left */
	assert_int_equal(ap_journal_parse(text, &j, NULL), 0);
	ops.crash_point = f_crash;
	assert_int_equal(ap_apply_undo(&j, &ops, true, j.why, &out), 0);
	assert_non_null(strstr(crash_log.data, "undo-disable undo-finish undo-backup"));
	ap_buf_clear(&crash_log);
	ap_journal_clear(&j);
	fake_done(&f);
	f = (struct fake){ 0 };
	assert_int_equal(ap_journal_parse(text, &j, NULL), 0);
	j.done = UINT32_C(1) << AP_PHASE_BACKUP;
	assert_int_equal(ap_apply_undo(&j, &ops, true, j.why, &out), 0);
	assert_int_equal(out, AP_APPLY_ROLLED_BACK);
	assert_string_equal(log_of(&f), "restore:89abcde reload restart:a.service "
					"settle:a.service bad:89abcde:settled clear");
	/* killed once the manager ran the old files: nothing left to reload */
	ap_buf_clear(&f.log);
	f.log = (struct ap_buf){ 0 };
	assert_int_equal(ap_journal_parse(text, &back, NULL), 0);
	back.done = 0;
	assert_int_equal(ap_apply_undo(&back, &ops, true, back.why, &out), 0);
	assert_string_equal(log_of(&f), "restart:a.service settle:a.service bad:89abcde:settled clear");
	ap_buf_clear(&crash_log);
	ap_journal_clear(&back);
	ap_journal_clear(&j);
	fake_done(&f);
}

/* A run killed before all files were written: undo restores and clears; when that apply had
 * superseded an unfinished one, that one is owed again instead. */
static void test_restore_brings_back_superseded_journal(void **state)
{
	struct fake f = { 0 };
	struct ap_journal j, back;
	struct ap_apply_ops ops = ops_for(&f);
	enum ap_apply_outcome out;
	const char *text = "autopull-journal 2\nfrom " OID_B "\nto " OID_C "\nbase " OID_A
			   "\nmode apply\ndone backup\n"
			   "unit restart pending owed w.service\n"
			   "unit restart pending new a.service\n";

	assert_int_equal(ap_journal_parse(text, &j, NULL), 0);
	assert_int_equal(ap_apply_undo(&j, &ops, false, NULL, &out), 0);
	assert_int_equal(out, AP_APPLY_RESTORED);
	assert_string_equal(log_of(&f), "restore:fedcba9 reload");
	assert_false(f.cleared);
	assert_int_equal(ap_journal_parse(f.saved, &back, NULL), 0);
	assert_string_equal(back.from, OID_A);
	assert_string_equal(back.to, OID_B);
	assert_true(ap_journal_is_done(&back, AP_PHASE_FILES));
	assert_false(ap_journal_is_done(&back, AP_PHASE_RELOAD));
	assert_int_equal(back.n_units, 1);
	assert_string_equal(back.units[0].unit, "w.service");
	assert_int_equal(back.units[0].state, AP_STEP_PENDING);
	ap_journal_clear(&back);
	ap_journal_clear(&j);
	fake_done(&f);
}

/* Owed actions belong to the state a rollback returns to: not reversed. */
static void test_rollback_keeps_owed_actions(void **state)
{
	struct fake f = { 0 };
	struct ap_journal j;
	struct ap_apply_ops ops = ops_for(&f);
	enum ap_apply_outcome out;
	const char *text = "autopull-journal 2\nfrom " OID_B "\nto " OID_C "\nbase " OID_A
			   "\nmode apply\ndone backup disable stop files enable reload restart "
			   "reload-units start\n"
			   "unit enable-start done owed n.service\n"
			   "unit restart done new a.service\n";

	assert_int_equal(ap_journal_parse(text, &j, NULL), 0);
	assert_int_equal(ap_apply_undo(&j, &ops, true, "unit 'a.service' failed", &out), 0);
	assert_null(strstr(log_of(&f), "n.service"));
	assert_non_null(strstr(log_of(&f), "restart:a.service"));
	ap_journal_clear(&j);
	fake_done(&f);
}

static void test_journal_write_fails(void **state)
{
	struct fake f;
	struct ap_journal j;
	struct ap_apply_ops ops;
	enum ap_apply_outcome out = AP_APPLY_OK;

	start(&f, &j, OID_A);
	f.fail = "save";
	ops = ops_for(&f);
	assert_int_equal(ap_apply_run(&j, plan_abcd(), &ops, &out), -EIO);
	assert_string_equal(log_of(&f), "");
	ap_journal_clear(&j);
	fake_done(&f);
}

/* record failing keeps the journal: the next run records without acting again. */
static void test_record_fails(void **state)
{
	struct fake f;
	struct ap_journal j, back;
	struct ap_apply_ops ops;
	enum ap_apply_outcome out;

	start(&f, &j, OID_A);
	f.fail = "record";
	ops = ops_for(&f);
	assert_int_equal(ap_apply_run(&j, plan_abcd(), &ops, &out), 0);
	assert_int_equal(out, AP_APPLY_FAILED);
	assert_int_equal(ap_journal_parse(f.saved, &back, NULL), 0);
	ap_buf_clear(&f.log);
	f.log = (struct ap_buf){ 0 };
	f.fail = NULL;
	assert_int_equal(ap_apply_run(&back, NULL, &ops, &out), 0);
	assert_int_equal(out, AP_APPLY_OK);
	assert_string_equal(log_of(&f), "record:a.service,b.service clear");
	ap_journal_clear(&back);
	ap_journal_clear(&j);
	fake_done(&f);
}

/* One unit restarted: the job phases without a job are done before they start, so the
 * journal is written once per phase that acts (it is fsynced twice per write). */
static void test_idle_phases_write_no_journal(void **state)
{
	static struct ap_change ch = { .kind = AP_CHANGE_MODIFY };
	static struct ap_file_op file = { .change = AP_CHANGE_MODIFY, .install = true,
					  .path = "systemd/a.service", .dest = "/etc/a.service",
					  .change_ref = &ch };
	static struct ap_unit_action units[] = { { .unit = "a.service", .action = AP_ACTION_RESTART } };
	struct ap_plan p = { .from = OID_A, .to = OID_B, .files = &file, .n_files = 1,
			     .daemon_reload = true, .units = units, .n_units = 1 };
	struct fake f = { 0 };
	struct ap_journal j;
	struct ap_apply_ops ops = ops_for(&f);
	enum ap_apply_outcome out;

	assert_int_equal(ap_apply_journal_new(&p, OID_A, NULL, &j), 0);
	assert_true(ap_journal_is_done(&j, AP_PHASE_RELOAD_UNITS));
	assert_true(ap_journal_is_done(&j, AP_PHASE_START));
	assert_false(ap_journal_is_done(&j, AP_PHASE_RESTART));
	assert_int_equal(ap_apply_run(&j, &p, &ops, &out), 0);
	assert_int_equal(out, AP_APPLY_OK);
	assert_string_equal(log_of(&f), "backup install reload try-restart:a.service "
					"settle:a.service record:a.service clear");
	/* the start, backup, files, reload, restart and settle phases */
	assert_int_equal(f.saves, 6);
	ap_journal_clear(&j);
	fake_done(&f);
}

static void test_journal_new_marks_nothing_to_do(void **state)
{
	struct ap_plan empty = { .from = OID_A, .to = OID_B };
	struct ap_journal j, owed = { 0 };

	assert_int_equal(ap_apply_journal_new(&empty, OID_A, NULL, &j), 0);
	for (unsigned p = AP_PHASE_BACKUP; p <= AP_PHASE_RELOAD; p++)
		assert_true(ap_journal_is_done(&j, p));
	ap_journal_clear(&j);
	/* an owed restart and an owed reload of the earlier journal are carried */
	assert_int_equal(ap_journal_add_unit(&owed, "w.service", AP_ACTION_RESTART, AP_STEP_FAILED, false), 0);
	assert_int_equal(ap_journal_add_unit(&owed, "x.service", AP_ACTION_RESTART, AP_STEP_DONE, false), 0);
	assert_int_equal(ap_apply_journal_new(&empty, OID_A, &owed, &j), 0);
	assert_int_equal(j.n_units, 1);
	assert_true(j.units[0].owed);
	assert_int_equal(j.units[0].state, AP_STEP_PENDING);
	assert_false(ap_journal_is_done(&j, AP_PHASE_RELOAD));
	ap_journal_clear(&j);
	ap_journal_clear(&owed);
}

static void test_resolve_unit(void **state)
{
	struct ap_journal_unit u = { .action = AP_ACTION_RESTART, .state = AP_STEP_FAILED };

	ap_apply_resolve_unit(&u, "failed");
	assert_int_equal(u.action, AP_ACTION_START);
	assert_int_equal(u.state, AP_STEP_PENDING);
	u = (struct ap_journal_unit){ .action = AP_ACTION_RELOAD, .state = AP_STEP_PENDING };
	ap_apply_resolve_unit(&u, "inactive");
	assert_int_equal(u.state, AP_STEP_DONE);
	u = (struct ap_journal_unit){ .action = AP_ACTION_RESTART, .state = AP_STEP_PENDING };
	ap_apply_resolve_unit(&u, "active");
	assert_int_equal(u.action, AP_ACTION_RESTART);
	assert_int_equal(u.state, AP_STEP_PENDING);
}


/* The crash points the executor passes are the documented list, in order. */
static void test_crash_points(void **state)
{
	struct fake f;
	struct ap_journal j;
	struct ap_apply_ops ops;
	enum ap_apply_outcome out;
	struct ap_buf want = { 0 };

	start(&f, &j, OID_A);
	ops = ops_for(&f);
	ops.crash_point = f_crash;
	assert_int_equal(ap_apply_run(&j, plan_abcd(), &ops, &out), 0);
	for (size_t i = 0; ap_apply_crash_points[i]; i++)
		if (strcmp(ap_apply_crash_points[i], "after-file") != 0 &&
		    !ap_startswith(ap_apply_crash_points[i], "undo-"))
			ap_buf_printf(&want, "%s%s", want.len ? " " : "", ap_apply_crash_points[i]);
	/* before-record comes inside the record phase, after after-settle */
	assert_string_equal(crash_log.data, want.data);
	ap_buf_clear(&want);
	ap_buf_clear(&crash_log);
	ap_journal_clear(&j);
	fake_done(&f);
}

/* A rollback passes every "undo-" point of the list, in order, after the apply's own. */
static void test_crash_points_of_a_rollback(void **state)
{
	struct fake f;
	struct ap_journal j;
	struct ap_apply_ops ops;
	enum ap_apply_outcome out;
	struct ap_buf want = { 0 };
	const char *undo;

	start(&f, &j, OID_A);
	f.settle_fails = 1;
	ops = ops_for(&f);
	ops.crash_point = f_crash;
	assert_int_equal(ap_apply_run(&j, plan_abcd(), &ops, &out), 0);
	assert_int_equal(out, AP_APPLY_ROLLED_BACK);
	for (size_t i = 0; ap_apply_crash_points[i]; i++)
		if (ap_startswith(ap_apply_crash_points[i], "undo-"))
			ap_buf_printf(&want, "%s%s", want.len ? " " : "", ap_apply_crash_points[i]);
	undo = strstr(crash_log.data, "undo-");
	assert_non_null(undo);
	assert_string_equal(undo, want.data);
	ap_buf_clear(&want);
	ap_buf_clear(&crash_log);
	ap_journal_clear(&j);
	fake_done(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_of_effects),
		cmocka_unit_test(test_backup_fails),
		cmocka_unit_test(test_install_fails),
		cmocka_unit_test(test_failed_job_retries_only_what_is_owed),
		cmocka_unit_test(test_refused_job_is_not_owed),
		cmocka_unit_test(test_reload_fails),
		cmocka_unit_test(test_failed_unit_started_again),
		cmocka_unit_test(test_rollback_order),
		cmocka_unit_test(test_rollback_does_not_settle),
		cmocka_unit_test(test_interrupted_rollback_resumes),
		cmocka_unit_test(test_interrupted_rollback_reloads),
		cmocka_unit_test(test_restore_brings_back_superseded_journal),
		cmocka_unit_test(test_rollback_keeps_owed_actions),
		cmocka_unit_test(test_journal_write_fails),
		cmocka_unit_test(test_record_fails),
		cmocka_unit_test(test_idle_phases_write_no_journal),
		cmocka_unit_test(test_journal_new_marks_nothing_to_do),
		cmocka_unit_test(test_resolve_unit),
		cmocka_unit_test(test_setup_runs_after_files_before_units),
		cmocka_unit_test(test_crash_points),
		cmocka_unit_test(test_crash_points_of_a_rollback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
