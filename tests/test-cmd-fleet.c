/* `autopull fleet status` alone: the context, the mirror and fleet.h are replaced at link time
 * by stubs that answer what the test says, so that the output (text and JSON), the escaping of
 * what other hosts wrote into etcd, the commit whose canaries are shown and every exit code
 * are checked without an etcd. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cmd.h"
#include "exitcode.h"
#include "fleet.h"
#include "util.h"

#define OID_A "0123456789abcdef0123456789abcdef01234567"
#define OID_B "89abcdef0123456789abcdef0123456789abcdef"
#define MIN5 (5ULL * 60 * 1000000)

static char *etcd[] = { "http://127.0.0.1:2379", "http://10.0.0.2:2379", NULL };
static char *started[] = { "web1", "web2", NULL };
static char *healthy[] = { "web1", NULL };
static char *canaries[] = { "web1", NULL };
static struct ap_fleet_slot_holder slots[] = { { .n = 1, .host = "web2", .commit = OID_A } };
static struct ap_fleet_host_state hosts[] = {
	{ .host = "web1", .commit = OID_A, .result = "applied" },
	{ .host = "web2", .commit = OID_B, .result = "rolled-back" },
};
static struct ap_fleet_bad bad[] = {
	{ .commit = OID_B, .host = "web2", .reason = "app.service did not settle" },
};

/* What the stubs answer, and what they were asked. */
static struct {
	struct ap_config cfg;
	const char *tip;        /* NULL: nothing fetched */
	int open, status;       /* whether the handle opens (< 0: not), ap_fleet_status's return */
	struct ap_fleet_status st;
	int status_calls, cleared, repo_calls;
	char asked[64];         /* the commit ap_fleet_status was asked for, "(null)" */
} t;

/* --- stubs ---------------------------------------------------------------------------------- */
int ap_ctx_open(const struct ap_opts *o, unsigned flags, struct ap_ctx *ret)
{
	*ret = (struct ap_ctx){ .o = o, .cfg = &t.cfg };
	return AP_EXIT_OK;
}
void ap_ctx_done(struct ap_ctx *c) {}
struct ap_repo *ap_ctx_repo(struct ap_ctx *c)
{
	t.repo_calls++;
	return c->repo = (struct ap_repo *)&t;
}
int ap_repo_branch_tip(struct ap_repo *r, const char *branch, char ret[AP_OID_HEXSZ + 1])
{
	if (!t.tip)
		return -ENOENT;
	snprintf(ret, AP_OID_HEXSZ + 1, "%s", t.tip);
	return 0;
}
int ap_repo_resolve_on_branch(struct ap_repo *r, const char *branch, const char *rev,
			      char ret[AP_OID_HEXSZ + 1])
{
	if (strcmp(rev, "HEAD~1") != 0)
		return -ENOENT;
	snprintf(ret, AP_OID_HEXSZ + 1, "%s", OID_B);
	return 0;
}
struct ap_fleet *ap_ctx_fleet(struct ap_ctx *c)
{
	return c->fleet = t.open < 0 || !c->cfg->fleet.enabled ? NULL : (struct ap_fleet *)&t;
}
int ap_fleet_status(struct ap_fleet *f, const char *commit, struct ap_fleet_status *ret)
{
	t.status_calls++;
	snprintf(t.asked, sizeof(t.asked), "%s", commit ? commit : "(null)");
	if (t.status < 0)
		return t.status;
	*ret = t.st;
	return 0;
}
void ap_fleet_status_clear(struct ap_fleet_status *s) { t.cleared++; }

/* --- running the verb ----------------------------------------------------------------------- */
static char tmpdir[] = "/tmp/test-cmd-fleet-XXXXXX";

static char *slurp(const char *path)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "re");

	assert_non_null(f);
	if (getdelim(&text, &len, '\0', f) < 0) { /* empty */
		assert_true(feof(f));
		free(text);
		text = strdup("");
	}
	fclose(f);
	assert_non_null(text);
	return text;
}

/* Runs `autopull [--json] [--commit REV] fleet SUB` with stdout and stderr in files. */
static int run(const char *sub, bool json, const char *commit, char **ret_out, char **ret_err)
{
	struct ap_opts o = { .json = json, .commit = commit };
	char *args[] = { (char *)sub, NULL };
	_cleanup_free_ char *out = ap_strdupf("%s/out", tmpdir), *err = ap_strdupf("%s/err", tmpdir);
	int fo, fe, so, se, code;

	fo = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	fe = open(err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fo >= 0 && fe >= 0);
	fflush(stdout);
	fflush(stderr);
	so = dup(STDOUT_FILENO);
	se = dup(STDERR_FILENO);
	assert_true(dup2(fo, STDOUT_FILENO) >= 0 && dup2(fe, STDERR_FILENO) >= 0);
	code = ap_cmd_fleet(&o, args);
	fflush(stdout);
	fflush(stderr);
	assert_true(dup2(so, STDOUT_FILENO) >= 0 && dup2(se, STDERR_FILENO) >= 0);
	close(so);
	close(se);
	close(fo);
	close(fe);
	*ret_out = slurp(out);
	*ret_err = slurp(err);
	return code;
}

static int setup(void **state)
{
	unsigned long long now = ap_now_realtime_usec();

	memset(&t, 0, sizeof(t));
	t.cfg.path = "/etc/autopull/autopull.yaml";
	t.cfg.branch = "main";
	t.cfg.state_dir = tmpdir; /* with a repo.git: fetched before */
	t.cfg.fleet = (struct ap_fleet_config){ .enabled = true, .etcd = etcd, .group = "web",
						.host = "web1", .max_parallel = 2, .canary = 1 };
	t.tip = OID_A;
	hosts[0].usec = now - MIN5;
	hosts[1].usec = now - 12 * MIN5; /* an hour */
	t.st = (struct ap_fleet_status){ .slots = slots, .n_slots = 1, .hosts = hosts, .n_hosts = 2,
					 .bad = bad, .n_bad = 1, .started = started,
					 .healthy = healthy, .canaries = canaries };
	return 0;
}

static char *mirror(void) { return ap_strdupf("%s/repo.git", tmpdir); }

static int group_setup(void **state)
{
	_cleanup_free_ char *m = NULL;

	if (!mkdtemp(tmpdir) || !(m = mirror()))
		return -1;
	return mkdir(m, 0700);
}

static int group_teardown(void **state)
{
	_cleanup_free_ char *out = ap_strdupf("%s/out", tmpdir), *err = ap_strdupf("%s/err", tmpdir);

	_cleanup_free_ char *m = mirror();

	unlink(out);
	unlink(err);
	rmdir(m);
	return rmdir(tmpdir);
}

/* --- tests ---------------------------------------------------------------------------------- */

static void test_text(void **state)
{
	char *out, *err;

	assert_int_equal(run("status", false, NULL, &out, &err), AP_EXIT_OK);
	assert_string_equal(out,
		"fleet 'web' (this host: web1): max_parallel 2, canary 1, etcd http://127.0.0.1:2379 "
		"http://10.0.0.2:2379\n"
		"slots: 1 of 2 taken\n"
		"  slot 1: web2 applying 0123456789ab\n"
		"hosts:\n"
		"  web1             0123456789ab applied      5 min ago\n"
		"  web2             89abcdef0123 rolled-back  1 h ago\n"
		"bad commits:\n"
		"  89abcdef0123 by web2: app.service did not settle\n"
		"canaries of 0123456789ab (the branch tip as last fetched): 1 of 1 healthy; every "
		"host may start it\n"
		"  canaries: web1\n"
		"  started: web1 web2\n"
		"  healthy: web1\n");
	assert_string_equal(err, "");
	assert_string_equal(t.asked, OID_A); /* the tip's canaries were asked for */
	assert_int_equal(t.cleared, 1);
	free(out);
	free(err);
}

static void test_json(void **state)
{
	char *out, *err, *want;

	assert_int_equal(run("status", true, NULL, &out, &err), AP_EXIT_OK);
	want = ap_strdupf(
		"{\"group\": \"web\", \"host\": \"web1\", \"etcd\": [\"http://127.0.0.1:2379\", "
		"\"http://10.0.0.2:2379\"], \"max_parallel\": 2, \"canary\": 1, "
		"\"slots\": [{\"slot\": 1, \"host\": \"web2\", \"commit\": \"" OID_A "\"}], "
		"\"hosts\": [{\"host\": \"web1\", \"commit\": \"" OID_A "\", \"result\": \"applied\", "
		"\"time_usec\": %llu}, {\"host\": \"web2\", \"commit\": \"" OID_B "\", "
		"\"result\": \"rolled-back\", \"time_usec\": %llu}], "
		"\"bad\": [{\"commit\": \"" OID_B "\", \"host\": \"web2\", "
		"\"reason\": \"app.service did not settle\"}], "
		"\"canary_progress\": {\"commit\": \"" OID_A "\", \"canaries\": [\"web1\"], "
		"\"started\": [\"web1\", \"web2\"], \"healthy\": [\"web1\"], "
		"\"others_may_start\": true}}\n",
		(unsigned long long)hosts[0].usec, (unsigned long long)hosts[1].usec);
	assert_string_equal(out, want);
	assert_string_equal(err, "");
	free(want);
	free(out);
	free(err);
}

/* A canary that has not reported yet: the others wait; nothing taken, nothing recorded. */
static void test_waiting_and_empty(void **state)
{
	char *out, *err;

	t.st = (struct ap_fleet_status){ .started = started, .canaries = canaries };
	assert_int_equal(run("status", false, NULL, &out, &err), AP_EXIT_OK);
	assert_non_null(strstr(out, "slots: 0 of 2 taken\nhosts: none recorded yet\nbad commits: none\n"));
	assert_non_null(strstr(out, "canaries of 0123456789ab (the branch tip as last fetched): 0 "
				    "of 1 healthy; the other hosts wait\n"));
	assert_non_null(strstr(out, "  healthy: none\n"));
	free(out);
	free(err);
	assert_int_equal(run("status", true, NULL, &out, &err), AP_EXIT_OK);
	assert_non_null(strstr(out, "\"slots\": [], \"hosts\": [], \"bad\": [], "));
	assert_non_null(strstr(out, "\"healthy\": null, \"others_may_start\": false}}\n"));
	free(out);
	free(err);
}

/* Hosts, results and reasons are what other hosts wrote: no control byte reaches the
 * terminal, and a newline cannot make a line of its own. */
static void test_hostile_etcd(void **state)
{
	struct ap_fleet_bad evil = { .commit = OID_B, .host = "web2\x1b]0;x\a",
				     .reason = "\x1b[31mred\nslots: 0 of 2 taken" };
	struct ap_fleet_slot_holder evil_slot = { .n = 0, .host = "a\rb", .commit = "c\x7f" };
	char *out, *err;

	t.st.bad = &evil;
	t.st.slots = &evil_slot;
	assert_int_equal(run("status", false, NULL, &out, &err), AP_EXIT_OK);
	for (const char *p = out; *p; p++)
		assert_true(*p == '\n' || ((unsigned char)*p >= 0x20 && *p != 0x7f));
	assert_null(strstr(out, "\nslots: 0")); /* the reason's newline made no line */
	{
		size_t lines = 0;

		for (const char *p = out; *p; p++)
			lines += *p == '\n';
		assert_int_equal(lines, 12); /* as many as without hostile values */
	}
	free(out);
	free(err);
	assert_int_equal(run("status", true, NULL, &out, &err), AP_EXIT_OK);
	assert_non_null(strstr(out, "\"reason\": \"\\u001b[31mred\\u000aslots: 0 of 2 taken\""));
	assert_non_null(strstr(out, "\"host\": \"a\\u000db\", \"commit\": \"c\\u007f\""));
	free(out);
	free(err);
}

/* Nothing fetched yet: no commit to show canaries for (and none asked). */
static void test_no_tip(void **state)
{
	char *out, *err;

	t.tip = NULL;
	assert_int_equal(run("status", false, NULL, &out, &err), AP_EXIT_OK);
	assert_string_equal(t.asked, "(null)");
	assert_non_null(strstr(out, "canaries: 1; no commit to show them for (nothing fetched yet; "
				    "try --commit REV)\n"));
	free(out);
	free(err);
	assert_int_equal(run("status", true, NULL, &out, &err), AP_EXIT_OK);
	assert_non_null(strstr(out, "\"canary_progress\": null}\n"));
	free(out);
	free(err);
}

/* A host that never fetched has no mirror: none is opened (or created), no canaries shown,
 * and only a full id can be asked for. */
static void test_no_mirror(void **state)
{
	_cleanup_free_ char *m = mirror();
	char *out, *err;

	assert_int_equal(rmdir(m), 0);
	assert_int_equal(run("status", false, NULL, &out, &err), AP_EXIT_OK);
	assert_int_equal(t.repo_calls, 0);
	assert_string_equal(t.asked, "(null)");
	assert_non_null(strstr(out, "no commit to show them for (nothing fetched yet"));
	free(out);
	free(err);
	assert_int_equal(run("status", false, "HEAD~1", &out, &err), AP_EXIT_USAGE);
	assert_non_null(strstr(err, "nothing was fetched here yet to find 'HEAD~1' in: give a full "
				    "commit id"));
	free(out);
	free(err);
	assert_int_equal(run("status", false, OID_B, &out, &err), AP_EXIT_OK);
	assert_string_equal(t.asked, OID_B);
	assert_int_equal(t.repo_calls, 0);
	free(out);
	free(err);
	assert_int_equal(mkdir(m, 0700), 0);
}

/* --commit REV: that commit's canaries (a full id need not be in the mirror); a REV not on the
 * branch is a usage error, before etcd is asked. */
static void test_commit_option(void **state)
{
	char *out, *err;

	assert_int_equal(run("status", false, "HEAD~1", &out, &err), AP_EXIT_OK);
	assert_string_equal(t.asked, OID_B);
	assert_non_null(strstr(out, "canaries of 89abcdef0123 (HEAD~1): 1 of 1 healthy"));
	free(out);
	free(err);
	assert_int_equal(run("status", false, OID_A, &out, &err), AP_EXIT_OK);
	assert_string_equal(t.asked, OID_A); /* a full id as it is, fetched here or not */
	assert_non_null(strstr(out, "canaries of 0123456789ab (--commit): 1 of 1 healthy"));
	free(out);
	free(err);
	t.status_calls = 0;
	assert_int_equal(run("status", false, "nope", &out, &err), AP_EXIT_USAGE);
	assert_int_equal(t.status_calls, 0);
	assert_string_equal(out, "");
	free(out);
	free(err);
}

static void test_no_canaries(void **state)
{
	char *out, *err;

	t.cfg.fleet.canary = 0;
	t.st.canaries = t.st.started = t.st.healthy = NULL;
	assert_int_equal(run("status", false, NULL, &out, &err), AP_EXIT_OK);
	assert_non_null(strstr(out, "\ncanaries: none (every host may start a commit at once)\n"));
	free(out);
	free(err);
	assert_int_equal(run("status", true, NULL, &out, &err), AP_EXIT_OK);
	assert_non_null(strstr(out, "\"canary\": 0, "));
	assert_non_null(strstr(out, "\"canary_progress\": null}\n"));
	free(out);
	free(err);
}

/* Exit codes: no fleet: 2; etcd unreachable 75 and nothing on stdout; another error 1; an
 * unknown subcommand 2. */
static void test_exit_codes(void **state)
{
	char *out, *err;

	t.cfg.fleet.enabled = false;
	assert_int_equal(run("status", false, NULL, &out, &err), AP_EXIT_USAGE);
	assert_non_null(strstr(err, "'/etc/autopull/autopull.yaml' has no fleet: section"));
	assert_int_equal(t.status_calls, 0);
	free(out);
	free(err);
	t.cfg.fleet.enabled = true;

	t.status = -EHOSTUNREACH;
	assert_int_equal(run("status", true, NULL, &out, &err), AP_EXIT_TEMPFAIL);
	assert_string_equal(out, "");
	free(out);
	free(err);
	t.status = -EPROTO;
	assert_int_equal(run("status", false, NULL, &out, &err), AP_EXIT_FAILED);
	assert_string_equal(out, "");
	free(out);
	free(err);
	t.status = 0;
	t.open = -EINVAL;
	assert_int_equal(run("status", false, NULL, &out, &err), AP_EXIT_USAGE);
	free(out);
	free(err);
	t.open = 0;

	assert_int_equal(run("stats", false, NULL, &out, &err), AP_EXIT_USAGE);
	assert_non_null(strstr(err, "unknown fleet command 'stats' (known: status)"));
	assert_string_equal(out, "");
	free(out);
	free(err);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_text, setup),
		cmocka_unit_test_setup(test_json, setup),
		cmocka_unit_test_setup(test_waiting_and_empty, setup),
		cmocka_unit_test_setup(test_hostile_etcd, setup),
		cmocka_unit_test_setup(test_no_tip, setup),
		cmocka_unit_test_setup(test_no_mirror, setup),
		cmocka_unit_test_setup(test_commit_option, setup),
		cmocka_unit_test_setup(test_no_canaries, setup),
		cmocka_unit_test_setup(test_exit_codes, setup),
	};

	return cmocka_run_group_tests_name("cmd-fleet", tests, group_setup, group_teardown);
}
