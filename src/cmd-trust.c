/* autopull trust skip [COMMIT --reason TEXT]: the operator's way past one commit that the
 * signature check refuses (an unsigned commit under trust: require: every-commit blocks every
 * later tick, and a signed commit on top cannot vouch for it). The skip is an override like
 * --override-guard: written to state_dir/overrides (kind "trust-skip"), recorded in the
 * history and the journal, shown by 'autopull status' and by this verb without a commit. It
 * lets exactly that commit through the walk (engine.c); the target of an apply is never
 * skipped, so the tip must still carry a good signature. It does not fetch: the commit must be
 * on the mirrored branch already (a refused apply fetched it). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "exitcode.h"
#include "log.h"
#include "record.h"
#include "util.h"

static int list(struct ap_ctx *c)
{
	struct ap_bad *v = NULL;
	unsigned long long now = ap_now_realtime_usec();
	struct ap_buf b = { 0 };
	size_t n = 0;
	char ago[32];
	int k;

	if (ap_state_list_overrides(c->st, "trust-skip", &v, &n) < 0)
		return AP_EXIT_FAILED;
	if (c->o->json) {
		/* {"trust_skips": [...]}: the helper writes the leading ", " of a member */
		k = ap_cmd_json_commits(&b, "trust_skips", v, n);
		if (k >= 0)
			printf("{%s}\n", b.data + 2);
		ap_buf_clear(&b);
		ap_bad_free(v, n);
		return k < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
	}
	if (n == 0)
		printf("no commit is let through the signature check\n");
	for (size_t i = 0; i < n; i++) {
		char why[4096]; /* an operator's words, printed without raw control bytes */

		(void)ap_escape(v[i].why, 0, why, sizeof(why));
		ap_format_ago(v[i].realtime_usec, now, ago, sizeof(ago));
		printf("%s  skipped %s: %s\n", v[i].commit, ago, why);
	}
	ap_bad_free(v, n);
	return AP_EXIT_OK;
}

/* The commit named, on the branch as mirrored. */
static int resolve(struct ap_ctx *c, const char *rev, char ret[AP_OID_HEXSZ + 1])
{
	char tip[AP_OID_HEXSZ + 1];
	int k;

	if (!ap_ctx_repo(c) || ap_repo_branch_tip(c->repo, c->cfg->branch, tip) < 0)
		return AP_EXIT_FAILED;
	if (ap_repo_resolve_on_branch(c->repo, c->cfg->branch, rev, ret) < 0)
		return AP_EXIT_USAGE;
	k = ap_repo_is_ancestor(c->repo, ret, tip);
	if (k == 0)
		ap_log_error(-EINVAL, "commit '%s' is not on branch '%s' (as last fetched)", rev,
			     c->cfg->branch);
	return k < 0 ? AP_EXIT_FAILED : k == 0 ? AP_EXIT_USAGE : AP_EXIT_OK;
}

static int skip(struct ap_ctx *c, const char *rev, const char *reason)
{
	struct ap_bad *v = NULL;
	char id[AP_OID_HEXSZ + 1];
	size_t n = 0;
	int code = resolve(c, rev, id);

	if (code != AP_EXIT_OK)
		return code;
	if (ap_state_list_overrides(c->st, "trust-skip", &v, &n) < 0)
		return AP_EXIT_FAILED;
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].commit, id) == 0) {
			printf("%.12s is let through the signature check already\n", id);
			ap_bad_free(v, n);
			return AP_EXIT_OK;
		}
	ap_bad_free(v, n);
	if (ap_record_override_now(c, "trust-skip", id, reason) < 0)
		return AP_EXIT_FAILED;
	printf("%.12s is let through the signature check from now on (%s); the tip of an apply "
	       "must still be signed\n", id, reason);
	return AP_EXIT_OK;
}

int ap_cmd_trust(const struct ap_opts *o, char **args)
{
	struct ap_ctx c;
	int code;

	if (strcmp(args[0], "skip") != 0) {
		fprintf(stderr, "autopull: unknown trust command '%s' (see autopull --help)\n",
			args[0]);
		return AP_EXIT_USAGE;
	}
	if (args[1] && (!o->reason || !*o->reason)) {
		fprintf(stderr, "autopull: trust skip needs --reason TEXT (it is recorded) "
				"(see autopull --help)\n");
		return AP_EXIT_USAGE;
	}
	code = ap_ctx_open(o, AP_CTX_CONFIG_ONLY, &c);
	if (code != AP_EXIT_OK)
		return code;
	/* Only who may apply may widen what is applied: root for the system. Said before the
	 * state directory (root's alone) would refuse a user with a less helpful message. */
	if (args[1] && c.cfg->scope == AP_SCOPE_SYSTEM && geteuid() != 0) {
		ap_log_error(-EPERM, "trust skip: only root may let a commit through the signature "
				     "check of the system's deploys");
		code = AP_EXIT_USAGE;
	}
	if (code == AP_EXIT_OK && ap_state_open(c.cfg->state_dir, &c.st) < 0)
		code = AP_EXIT_FAILED;
	if (code == AP_EXIT_OK && args[1])
		code = ap_ctx_lock(&c);
	if (code == AP_EXIT_OK)
		code = args[1] ? skip(&c, args[1], o->reason) : list(&c);
	ap_ctx_done(&c);
	return code;
}
