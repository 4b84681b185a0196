/* State files: applied commit, journal, inventory, backups and the lock, in a temp dir. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "state-fileset.h"
#include "fsutil.h"
#include "state.h"
#include "util.h"

#define OID_A "0123456789abcdef0123456789abcdef01234567"
#define OID_B "89abcdef0123456789abcdef0123456789abcdef"

static int setup(void **s)
{
	char *dir = NULL;

	assert_int_equal(ap_fs_mkdtemp("test-state", &dir), 0);
	*s = dir;
	return 0;
}

static int teardown(void **s)
{
	ap_fs_rm_rf(*s);
	free(*s);
	return 0;
}

static struct ap_state *open_state(void **s)
{
	struct ap_state *st = NULL;
	char *sub = ap_strdupf("%s/state", (char *)*s);

	assert_int_equal(ap_state_open(sub, &st), 0);
	free(sub);
	return st;
}

/* Writes a state file as a person or a damaged disk might leave it. */
static void put_state(void **s, const char *name, const char *text)
{
	char *path = ap_strdupf("%s/state/%s", (char *)*s, name);
	FILE *fp = fopen(path, "we");

	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
	free(path);
}

static int mkdir_state(void **s, const char *name)
{
	char *path = ap_strdupf("%s/state/%s", (char *)*s, name);
	int r = mkdir(path, 0700);

	free(path);
	return r;
}

static void test_applied(void **s)
{
	struct ap_state *st = open_state(s);
	char oid[AP_OID_HEXSZ + 1];

	assert_int_equal(ap_state_read_applied(st, oid), -ENOENT);
	assert_int_equal(ap_state_write_applied(st, OID_A), 0);
	assert_int_equal(ap_state_read_applied(st, oid), 0);
	assert_string_equal(oid, OID_A);
	ap_state_free(st);
}

static void test_journal(void **s)
{
	struct ap_state *st = open_state(s);
	struct ap_journal j = { 0 }, back = { 0 };
	char *path = ap_strdupf("%s/state/journal", (char *)*s);
	FILE *f;

	assert_int_equal(ap_state_read_journal(st, &back), -ENOENT);
	strcpy(j.to, OID_B);
	ap_journal_set_done(&j, AP_PHASE_FILES);
	assert_int_equal(ap_journal_add_unit(&j, "a.service", AP_ACTION_RESTART, AP_STEP_FAILED, true), 0);
	assert_int_equal(ap_state_write_journal(st, &j), 0);
	assert_int_equal(ap_state_read_journal(st, &back), 0);
	assert_string_equal(back.from, "");
	assert_string_equal(back.to, OID_B);
	assert_true(ap_journal_is_done(&back, AP_PHASE_FILES));
	assert_int_equal(back.n_units, 1);
	assert_int_equal(back.units[0].state, AP_STEP_FAILED);
	assert_true(back.units[0].owed);
	ap_journal_clear(&back);
	/* garbage is refused, not guessed at */
	f = fopen(path, "we");
	fputs("autopull-journal 2\nfrom nonsense\n", f);
	fclose(f);
	assert_int_equal(ap_state_read_journal(st, &back), -EBADMSG);
	assert_int_equal(ap_state_clear_journal(st), 0);
	assert_int_equal(ap_state_read_journal(st, &back), -ENOENT);
	ap_journal_clear(&j);
	free(path);
	ap_state_free(st);
}

static void test_owned(void **s)
{
	struct ap_state *st = open_state(s);
	char **v = NULL, *in[] = { "/etc/b", "/etc/a", NULL };

	assert_int_equal(ap_state_read_owned(st, &v), 0);
	assert_null(v);
	assert_int_equal(ap_state_write_owned(st, in), 0);
	assert_int_equal(ap_state_read_owned(st, &v), 0);
	assert_int_equal(ap_strv_length(v), 2);
	assert_string_equal(v[0], "/etc/a");
	ap_strv_free(v);
	assert_int_equal(ap_state_write_owned(st, NULL), 0);
	assert_int_equal(ap_state_read_owned(st, &v), 0);
	assert_null(v);
	ap_state_free(st);
}

static struct ap_host_file hf(const char *path, bool present, const char *data, mode_t mode)
{
	return (struct ap_host_file){ .path = (char *)path, .root_len = 0, .present = present,
				      .data = (char *)data, .len = data ? strlen(data) : 0,
				      .mode = mode, .uid = 7, .gid = 8, .owned = present };
}

static void test_fileset(void **s)
{
	struct ap_state *st = open_state(s);
	struct ap_fileset *f = NULL;
	const struct ap_host_file *e;
	struct ap_host_file a = hf("/etc/a.conf", true, "old bytes", 0640), b = hf("/etc/none", false, NULL, 0);
	struct ap_host_file again = hf("/etc/a.conf", true, "new bytes", 0600);
	char name[48], *data = NULL;
	size_t len;

	assert_int_equal(ap_state_fileset_open(st, ap_state_backup_name(OID_A, name), false, &f), -ENOENT);
	assert_int_equal(ap_state_fileset_open(st, name, true, &f), 0);
	assert_int_equal(ap_state_fileset_add(f, &a), 0);
	assert_int_equal(ap_state_fileset_add(f, &again), 0); /* the first copy wins */
	assert_int_equal(ap_state_fileset_add(f, &b), 0);
	assert_int_equal(ap_state_fileset_commit(f), 0);
	ap_state_fileset_free(f);
	/* reopened: metadata, ownership and the bytes come back */
	assert_int_equal(ap_state_fileset_open(st, name, false, &f), 0);
	assert_int_equal(ap_state_fileset_count(f), 2);
	e = ap_state_fileset_find(f, "/etc/a.conf");
	assert_non_null(e);
	assert_true(e->present && e->owned);
	assert_int_equal(e->mode, 0640);
	assert_int_equal(e->uid, 7);
	assert_int_equal(e->gid, 8);
	assert_int_equal(ap_state_fileset_read(f, e, &data, &len), 0);
	assert_string_equal(data, "old bytes");
	free(data);
	e = ap_state_fileset_find(f, "/etc/none");
	assert_false(e->present || e->owned);
	ap_state_fileset_free(f);
	/* pruning keeps only the named commits' backups */
	assert_int_equal(ap_state_fileset_open(st, ap_state_backup_name(OID_B, name), true, &f), 0);
	assert_int_equal(ap_state_fileset_add(f, &a), 0);
	assert_int_equal(ap_state_fileset_commit(f), 0);
	ap_state_fileset_free(f);
	assert_int_equal(ap_state_backup_prune(st, (const char *[]){ OID_B, "", NULL }), 0);
	assert_int_equal(ap_state_fileset_open(st, ap_state_backup_name(OID_A, name), false, &f), -ENOENT);
	assert_int_equal(ap_state_fileset_open(st, ap_state_backup_name(OID_B, name), false, &f), 0);
	ap_state_fileset_free(f);
	ap_state_free(st);
}

/* A set read back keeps the first entry of a path listed twice, and its next copy gets the
 * id after the highest; many paths added are each found, with the ids that follow. */
static void test_fileset_ids_and_many(void **s)
{
	struct ap_state *st = open_state(s);
	struct ap_fileset *f = NULL;
	struct ap_host_file z = hf("/etc/z.conf", true, "zz", 0644);
	const struct ap_host_file *e;
	char path[64], *data = NULL;
	size_t len;

	assert_true(mkdir_state(s, "backup") == 0 || errno == EEXIST);
	assert_int_equal(mkdir_state(s, "backup/" OID_A), 0);
	put_state(s, "backup/" OID_A "/manifest",
		  "5 present 0644 /etc/x.conf\n2 absent - /etc/y.conf\n9 absent - /etc/x.conf\n");
	assert_int_equal(ap_state_fileset_open(st, "backup/" OID_A, true, &f), 0);
	assert_int_equal(ap_state_fileset_count(f), 3);
	e = ap_state_fileset_find(f, "/etc/x.conf");
	assert_true(e->present);
	assert_int_equal(e->id, 5);
	assert_int_equal(ap_state_fileset_add(f, &(struct ap_host_file){ .path = "/etc/x.conf" }),
			 0);
	assert_int_equal(ap_state_fileset_count(f), 3); /* there already: not added */
	assert_int_equal(ap_state_fileset_add(f, &z), 0);
	assert_int_equal(ap_state_fileset_find(f, "/etc/z.conf")->id, 10);
	for (unsigned i = 0; i < 2000; i++) {
		snprintf(path, sizeof(path), "/etc/d%u/f%u.conf", i % 7, i);
		assert_int_equal(ap_state_fileset_add(f, &(struct ap_host_file){ .path = path }), 0);
	}
	assert_int_equal(ap_state_fileset_commit(f), 0);
	ap_state_fileset_free(f);

	assert_int_equal(ap_state_fileset_open(st, "backup/" OID_A, true, &f), 0);
	assert_int_equal(ap_state_fileset_count(f), 2004);
	for (unsigned i = 0; i < 2000; i++) {
		snprintf(path, sizeof(path), "/etc/d%u/f%u.conf", i % 7, i);
		e = ap_state_fileset_find(f, path);
		assert_non_null(e);
		assert_int_equal(e->id, 11 + i);
		assert_ptr_equal(e, ap_state_fileset_entry(f, 4 + i));
	}
	assert_null(ap_state_fileset_find(f, "/etc/d1/f0.conf"));
	e = ap_state_fileset_find(f, "/etc/z.conf");
	assert_int_equal(ap_state_fileset_read(f, e, &data, &len), 0);
	assert_string_equal(data, "zz");
	free(data);
	assert_int_equal(ap_state_fileset_add(f, &(struct ap_host_file){ .path = "/etc/last" }), 0);
	assert_int_equal(ap_state_fileset_find(f, "/etc/last")->id, 2011);
	ap_state_fileset_free(f);
	ap_state_free(st);
}

/* A backup written by an earlier version: mode only, no owner, beneath "/". */
static void test_fileset_old_manifest(void **s)
{
	struct ap_state *st = open_state(s);
	struct ap_fileset *f = NULL;
	char *dir = ap_strdupf("%s/state/backup/%s", (char *)*s, OID_A), *m = ap_strdupf("%s/manifest", dir);
	const struct ap_host_file *e;
	FILE *fp;

	assert_true(close(ap_fs_open_dir(dir, 1, 0700)) == 0);
	fp = fopen(m, "we");
	assert_non_null(fp);
	fputs("0 present 0644 /etc/x.conf\n1 absent - /etc/y.conf\n", fp);
	fclose(fp);
	assert_int_equal(ap_state_fileset_open(st, "backup/" OID_A, false, &f), 0);
	e = ap_state_fileset_find(f, "/etc/x.conf");
	assert_non_null(e);
	assert_int_equal(e->uid, (uid_t)-1);
	assert_int_equal(e->mode, 0644);
	assert_false(ap_state_fileset_find(f, "/etc/y.conf")->present);
	ap_state_fileset_free(f);
	/* a broken manifest line is an error, not a silent loss */
	fp = fopen(m, "we");
	fputs("0 present 0644 relative/path\n", fp);
	fclose(fp);
	assert_int_equal(ap_state_fileset_open(st, "backup/" OID_A, false, &f), -EBADMSG);
	/* numbers are digits only: a negative uid is not "the user autopull runs as" */
	put_state(s, "backup/" OID_A "/manifest", "0 present 0644 -5 - 1 4 /etc/x.conf\n");
	assert_int_equal(ap_state_fileset_open(st, "backup/" OID_A, false, &f), -EBADMSG);
	put_state(s, "backup/" OID_A "/manifest", "-1 present 0644 /etc/x.conf\n");
	assert_int_equal(ap_state_fileset_open(st, "backup/" OID_A, false, &f), -EBADMSG);
	put_state(s, "backup/" OID_A "/manifest", "0 present 0644 0 0 1 4 /etc/x.conf\n");
	assert_int_equal(ap_state_fileset_open(st, "backup/" OID_A, false, &f), 0);
	assert_int_equal(ap_state_fileset_find(f, "/etc/x.conf")->uid, 0);
	ap_state_fileset_free(f);
	free(dir), free(m);
	ap_state_free(st);
}

static void test_guard_files(void **s)
{
	struct ap_state *st = open_state(s);
	struct ap_last_apply la = { 0 };
	char *why = NULL, **v = NULL, *units[] = { "a.service", "b.timer", NULL };

	assert_int_equal(ap_state_find_bad(st, OID_A, &why), 0);
	assert_int_equal(ap_state_add_bad(st, OID_A, "unit 'x' failed\nESC\x1b"), 0);
	assert_int_equal(ap_state_find_bad(st, OID_A, &why), 1);
	assert_null(strchr(why, '\n'));
	assert_null(strchr(why, '\x1b'));
	assert_non_null(strstr(why, "unit 'x' failed"));
	free(why);
	assert_int_equal(ap_state_find_bad(st, OID_B, NULL), 0);
	{
		unsigned n = 0;
		uint64_t last = 0;

		assert_int_equal(ap_state_add_bad(st, OID_B, "second"), 0);
		assert_int_equal(ap_state_summary_bad(st, &n, &last), 0);
		assert_int_equal(n, 2);
		assert_true(last > 0);
		assert_int_equal(ap_state_summary_overrides(st, &n, &last), 0);
		assert_int_equal(n, 0);
		assert_int_equal(last, 0);
		assert_int_equal(ap_state_count(st, "push_failures"), 0);
		assert_int_equal(ap_state_count(st, "push_failures"), 0);
		assert_int_equal(ap_state_count(st, "apply:ok"), 0);
		assert_int_equal(ap_state_counter(st, "push_failures"), 2);
		assert_int_equal(ap_state_counter(st, "apply:ok"), 1);
		assert_int_equal(ap_state_counter(st, "never"), 0);
		assert_int_equal(ap_state_count(st, "bad name"), -EINVAL);
	}
	assert_int_equal(ap_state_add_override(st, "guard", OID_B, "fix for web"), 0);
	assert_int_equal(ap_state_read_restarted(st, &v), 0);
	assert_null(v);
	assert_int_equal(ap_state_write_restarted(st, units), 0);
	assert_int_equal(ap_state_read_restarted(st, &v), 0);
	assert_int_equal(ap_strv_length(v), 2);
	ap_strv_free(v);
	assert_int_equal(ap_state_read_last_apply(st, &la), -ENOENT);
	assert_int_equal(ap_state_write_last_apply(st, &(struct ap_last_apply){ 1234, true }), 0);
	assert_int_equal(ap_state_read_last_apply(st, &la), 0);
	assert_true(la.ok && la.realtime_usec == 1234);
	assert_int_equal(ap_state_read_tripped(st, &why), -ENOENT);
	assert_int_equal(ap_state_write_tripped(st, "rollback failed"), 0);
	assert_int_equal(ap_state_read_tripped(st, &why), 0);
	free(why);
	assert_int_equal(ap_state_clear_tripped(st), 0);
	assert_int_equal(ap_state_read_tripped(st, &why), -ENOENT);
	ap_state_free(st);
}

/* A list of rolled-back commits that cannot be trusted is an error, not "not listed": a
 * damaged line may be the commit's own. Numbers are digits only: no sign, no overflow. */
static void test_bad_strict(void **s)
{
	struct ap_state *st = open_state(s);
	struct ap_bad *v = NULL;
	char *why = NULL;
	size_t n = 0;

	put_state(s, "bad", OID_A " 1700000000000000 unit failed\n");
	assert_int_equal(ap_state_find_bad(st, OID_A, &why), 1);
	assert_string_equal(why, "unit failed");
	free(why), why = NULL;
	put_state(s, "bad", OID_B " 1 ok\n" OID_A " -1 wrapped\n");
	assert_int_equal(ap_state_find_bad(st, OID_A, &why), -EBADMSG);
	assert_null(why);
	assert_int_equal(ap_state_find_bad(st, OID_B, &why), -EBADMSG);
	put_state(s, "bad", OID_A " 99999999999999999999 overflow\n");
	assert_int_equal(ap_state_find_bad(st, OID_A, NULL), -EBADMSG);
	put_state(s, "bad", OID_A " 12x not a number\n");
	assert_int_equal(ap_state_find_bad(st, OID_A, NULL), -EBADMSG);
	put_state(s, "bad", "\n" OID_A " 1 an empty line before\n");
	assert_int_equal(ap_state_find_bad(st, OID_A, NULL), -EBADMSG);
	put_state(s, "bad", OID_A); /* cut short */
	assert_int_equal(ap_state_find_bad(st, OID_A, NULL), -EBADMSG);
	/* status shows the lines it can read */
	put_state(s, "bad", OID_B " 5 ok\ngarbage\n");
	assert_int_equal(ap_state_list_bad(st, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].realtime_usec, 5);
	ap_bad_free(v, n);
	/* unreadable: an error too */
	put_state(s, "bad", "");
	assert_int_equal(ap_state_find_bad(st, OID_A, NULL), 0);
	{
		char *path = ap_strdupf("%s/state/bad", (char *)*s);

		assert_int_equal(unlink(path), 0);
		assert_int_equal(mkdir(path, 0700), 0);
		assert_true(ap_state_find_bad(st, OID_A, NULL) < 0);
		assert_int_equal(rmdir(path), 0);
		free(path);
	}
	ap_state_free(st);
}

static void test_pin_and_numbers_strict(void **s)
{
	struct ap_state *st = open_state(s);
	struct ap_pin pin = { 0 };
	struct ap_last_apply la;
	struct ap_counter *c = NULL;
	size_t n = 0;

	put_state(s, "pin", OID_A " 42 hold\n");
	assert_int_equal(ap_state_read_pin(st, &pin), 0);
	assert_int_equal(pin.realtime_usec, 42);
	assert_string_equal(pin.reason, "hold");
	ap_pin_clear(&pin);
	put_state(s, "pin", OID_A " -42 hold\n");
	assert_int_equal(ap_state_read_pin(st, &pin), -EBADMSG);
	put_state(s, "pin", OID_A " +42 hold\n");
	assert_int_equal(ap_state_read_pin(st, &pin), -EBADMSG);
	put_state(s, "pin", OID_A " 42 hold\n" OID_B " 43 another\n");
	assert_int_equal(ap_state_read_pin(st, &pin), -EBADMSG);
	put_state(s, "pin", "0123 42 short id\n");
	assert_int_equal(ap_state_read_pin(st, &pin), -EBADMSG);
	put_state(s, "last-apply", "-1 1\n");
	assert_int_equal(ap_state_read_last_apply(st, &la), -EBADMSG);
	put_state(s, "last-apply", "10 2\n");
	assert_int_equal(ap_state_read_last_apply(st, &la), -EBADMSG);
	put_state(s, "last-apply", "10 1\n");
	assert_int_equal(ap_state_read_last_apply(st, &la), 0);
	assert_true(la.ok && la.realtime_usec == 10);
	put_state(s, "counters", "a 3\nb -1\nc 18446744073709551616\nd 18446744073709551615\n");
	assert_int_equal(ap_state_read_counters(st, &c, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(c[0].name, "a");
	assert_string_equal(c[1].name, "d");
	assert_true(c[1].value == UINT64_MAX);
	free(c);
	ap_state_free(st);
}

/* One load reads everything an apply decides on; a damaged file fails the whole load and
 * leaves nothing half-read. */
static void test_load(void **s)
{
	struct ap_state *st = open_state(s);
	struct ap_state_snapshot snap = { 0 };
	char *owned[] = { "/etc/b", "/etc/a", NULL };
	struct ap_journal j = { 0 };

	assert_int_equal(ap_state_load(st, &snap), 0);
	assert_string_equal(snap.applied, "");
	assert_null(snap.owned);
	assert_false(snap.pinned || snap.has_journal);
	assert_int_equal(snap.n_bad, 0);
	assert_null(snap.tripped);
	ap_state_snapshot_clear(&snap);

	assert_int_equal(ap_state_write_applied(st, OID_A), 0);
	assert_int_equal(ap_state_write_owned(st, owned), 0);
	assert_int_equal(ap_state_write_pin(st, &(struct ap_pin){ .commit = OID_A, .reason = "hold" }), 0);
	snprintf(j.to, sizeof(j.to), "%s", OID_B);
	assert_int_equal(ap_state_write_journal(st, &j), 0);
	assert_int_equal(ap_state_add_bad(st, OID_B, "it failed"), 0);
	assert_int_equal(ap_state_write_tripped(st, "rollback failed"), 0);
	assert_int_equal(ap_state_load(st, &snap), 0);
	assert_string_equal(snap.applied, OID_A);
	assert_string_equal(snap.owned[0], "/etc/a");
	assert_true(snap.pinned && strcmp(snap.pin.reason, "hold") == 0);
	assert_true(snap.has_journal && strcmp(snap.journal.to, OID_B) == 0);
	assert_int_equal(snap.n_bad, 1);
	assert_string_equal(ap_state_snapshot_find_bad(&snap, OID_B)->why, "it failed");
	assert_null(ap_state_snapshot_find_bad(&snap, OID_A));
	assert_string_equal(snap.tripped, "rollback failed\n");
	ap_state_snapshot_clear(&snap);

	/* a damaged bad list or guard-tripped is the run's to judge: the load carries the error */
	put_state(s, "bad", OID_B " 1 ok\n" OID_A " -1 negative\n");
	assert_int_equal(ap_state_clear_tripped(st), 0);
	assert_int_equal(mkdir_state(s, "guard-tripped"), 0);
	assert_int_equal(ap_state_load(st, &snap), 0);
	assert_int_equal(snap.bad_error, -EBADMSG);
	assert_int_equal(snap.n_bad, 0);
	assert_true(snap.tripped_error < 0);
	assert_null(snap.tripped);
	ap_state_snapshot_clear(&snap);
	put_state(s, "bad", "");
	/* the others fail the whole load, leaving nothing half-read */
	put_state(s, "pin", OID_A " 99999999999999999999 overflow\n");
	assert_int_equal(ap_state_load(st, &snap), -EBADMSG);
	assert_null(snap.owned);
	ap_state_free(st);
}

/* The tick file feeds the metrics: a value that is not -1 or a decimal number in range
 * reads as unknown, never as a wrapped or saturated number. */
static void test_tick_strict(void **s)
{
	struct ap_state *st = open_state(s);
	struct ap_tick t;

	assert_int_equal(ap_state_write_tick(st, &(struct ap_tick){ 3, 0 }), 0);
	ap_state_read_tick(st, &t);
	assert_true(t.pending == 3 && t.drift == 0);
	put_state(s, "tick", "pending -1\ndrift -1\n");
	ap_state_read_tick(st, &t);
	assert_true(t.pending == -1 && t.drift == -1);
	put_state(s, "tick", "pending 99999999999999999999\ndrift 0\n");
	ap_state_read_tick(st, &t);
	assert_true(t.pending == -1 && t.drift == -1);
	put_state(s, "tick", "pending -5\ndrift 2\n");
	ap_state_read_tick(st, &t);
	assert_true(t.pending == -1 && t.drift == -1);
	put_state(s, "tick", "pending 3\ndrift 4x\n");
	ap_state_read_tick(st, &t);
	assert_true(t.pending == -1 && t.drift == -1);
	put_state(s, "tick", "pending +3\ndrift 4\n");
	ap_state_read_tick(st, &t);
	assert_true(t.pending == -1 && t.drift == -1);
	ap_state_free(st);
}

/* The expected set names the configuration it was computed under; one without (an older
 * autopull's) reads with an empty digest, so it never matches and is computed again. */
static void test_expected(void **s)
{
	struct ap_state *st = open_state(s);
	struct ap_expected_set e = { 0 }, back = { 0 };
	struct ap_expected x = { .path = "/etc/x/a.conf", .repo_path = "x/a.conf", .root_len = 6,
				 .mode = 04755, .owner = "root" };

	snprintf(e.commit, sizeof(e.commit), "%s", OID_A);
	memset(e.config, 'c', sizeof(e.config) - 1);
	snprintf(x.oid, sizeof(x.oid), "%s", OID_B);
	e.v = &x, e.n = 1;
	assert_int_equal(ap_state_write_expected(st, &e), 0);
	assert_int_equal(ap_state_read_expected(st, &back), 0);
	assert_string_equal(back.config, e.config);
	assert_int_equal(back.n, 1);
	assert_int_equal(back.v[0].mode, 04755);
	assert_int_equal(back.v[0].root_len, 6);
	assert_null(back.v[0].group);
	ap_expected_set_clear(&back);
	put_state(s, "expected", "commit " OID_A "\n" OID_B " 0644 - - 6 x/a.conf /etc/x/a.conf\n");
	assert_int_equal(ap_state_read_expected(st, &back), 0);
	assert_string_equal(back.config, "");
	ap_expected_set_clear(&back);
	put_state(s, "expected", "commit " OID_A "\n" OID_B " 0644 - - -6 x/a.conf /etc/x/a.conf\n");
	assert_int_equal(ap_state_read_expected(st, &back), -EBADMSG);
	put_state(s, "expected", "commit " OID_A "\n" OID_B " 0644 - - 6 x/a.conf /etc/x/a.conf extra\n");
	assert_int_equal(ap_state_read_expected(st, &back), -EBADMSG);
	put_state(s, "expected", "commit " OID_A "\nconfig short\n");
	assert_int_equal(ap_state_read_expected(st, &back), -EBADMSG);
	ap_state_free(st);
}

static bool state_has(void **s, const char *name)
{
	char *path = ap_strdupf("%s/state/%s", (char *)*s, name);
	bool r = access(path, F_OK) == 0;

	free(path);
	return r;
}

/* Reports kept for one write are read back from memory (a counter counted twice in a run
 * counts 2), appear on disk only at the commit, and leave no temp file behind. */
static void test_reports_batch(void **s)
{
	struct ap_state *st = open_state(s);
	struct ap_counter *v = NULL;
	size_t n = 0;

	ap_state_reports_begin(st);
	assert_int_equal(ap_state_count(st, "applies"), 0);
	assert_int_equal(ap_state_count(st, "applies"), 0);
	assert_false(state_has(s, "counters"));
	assert_int_equal(ap_state_read_counters(st, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].value, 2);
	free(v);
	assert_int_equal(ap_state_reports_commit(st), 0);
	assert_true(state_has(s, "counters"));
	ap_state_free(st);
	st = open_state(s);
	assert_int_equal(ap_state_read_counters(st, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].value, 2);
	free(v);
	/* Without a batch, a report is written at once. */
	assert_int_equal(ap_state_count(st, "applies"), 0);
	ap_state_free(st);
	st = open_state(s);
	assert_int_equal(ap_state_read_counters(st, &v, &n), 0);
	assert_int_equal(v[0].value, 3);
	free(v);
	assert_int_equal(ap_state_reports_commit(st), 0); /* nothing kept: nothing to do */
	ap_state_free(st);
}

/* A history too large to read is moved aside, not fatal forever. */
static void test_history_rotation(void **s)
{
	struct ap_state *st = open_state(s);
	char *path = ap_strdupf("%s/state/heartbeat", (char *)*s), *old = ap_strdupf("%s.old", path), *t = NULL;

	assert_int_equal(truncate(path, 0) == 0 || errno == ENOENT, 1);
	assert_int_equal(close(open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600)), 0);
	assert_int_equal(truncate(path, 64L * 1024 * 1024), 0);
	assert_int_equal(ap_state_read_history(st, &t), -ENOENT);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(access(old, F_OK), 0);
	assert_int_equal(ap_state_write_history(st, "x\n"), 0);
	assert_int_equal(ap_state_read_history(st, &t), 0);
	free(t);
	free(path), free(old);
	ap_state_free(st);
}

/* A run killed inside an atomic write leaves ".#name.XXXXXX"; the next lock removes it, and
 * only the exact pattern. */
static void test_stale_temps(void **s)
{
	struct ap_state *st = open_state(s);
	char *tmp = ap_strdupf("%s/state/.#journal.Ab3dE9", (char *)*s);
	char *lock = ap_strdupf("%s/state/.#journal", (char *)*s);

	assert_int_equal(close(open(tmp, O_CREAT | O_WRONLY | O_CLOEXEC, 0600)), 0);
	assert_int_equal(symlink("x", lock), 0);
	assert_int_equal(ap_state_lock(st, 0), 0);
	assert_int_equal(access(tmp, F_OK), -1);
	assert_int_equal(faccessat(AT_FDCWD, lock, F_OK, AT_SYMLINK_NOFOLLOW), 0);
	free(tmp), free(lock);
	ap_state_free(st);
}

static void test_parse_owned(void **s)
{
	char **v = NULL;

	/* the first of each path, in the order read */
	assert_int_equal(ap_records_owned_parse("/etc/b\n/etc/a\n/etc/b\n", &v, NULL), 0);
	assert_int_equal(ap_strv_length(v), 2);
	assert_string_equal(v[0], "/etc/b");
	assert_string_equal(v[1], "/etc/a");
	ap_strv_free(v);
	v = NULL;
	assert_int_equal(ap_records_owned_parse("/etc/../x\n", &v, NULL), -EBADMSG);
	assert_int_equal(ap_records_owned_parse("relative\n", &v, NULL), -EBADMSG);
	assert_int_equal(ap_records_owned_parse("/\n", &v, NULL), -EBADMSG);
	assert_int_equal(ap_records_owned_parse("", &v, NULL), 0);
	assert_null(v);
}

static void test_lock_contention(void **s)
{
	struct ap_state *st = open_state(s), *other = NULL;
	int pipefd[2];
	pid_t pid;
	char c;

	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	if (pid == 0) { /* the holder */
		struct ap_state *h = open_state(s);
		if (ap_state_lock(h, 0) < 0)
			_exit(1);
		(void)!write(pipefd[1], "x", 1);
		pause();
		_exit(0);
	}
	assert_int_equal(read(pipefd[0], &c, 1), 1);
	assert_int_equal(ap_state_lock(st, 0), -EAGAIN);
	assert_int_equal(ap_state_lock(st, 1), -EAGAIN); /* waited, still held */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	other = open_state(s);
	assert_int_equal(ap_state_lock(other, 2), 0);
	ap_state_free(other);
	ap_state_free(st);
	close(pipefd[0]);
	close(pipefd[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_applied, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reports_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_owned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fileset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fileset_ids_and_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fileset_old_manifest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guard_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_strict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pin_and_numbers_strict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tick_strict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_history_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_temps, setup, teardown),
		cmocka_unit_test(test_parse_owned),
		cmocka_unit_test_setup_teardown(test_lock_contention, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
