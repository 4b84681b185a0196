/* autopull plan --from REV --commit REV [--host NAME...] [--format markdown|json]
 * [--repo PATH]: what a commit range would change on each named host, for the review of a
 * pull request, on a CI runner: no service manager, no state directory, no lock, no fetch.
 * Each host's configuration is loaded as that host would load it (hosts:, %H, %l), the plan
 * is made by the one planning pipeline (planning.h) without unit states, and the checks that
 * need no host run here: what the planner refuses (unsafe paths, symlinks, submodules, files
 * too large) and systemd-analyze verify of the unit files, when the runner has it.
 *
 * Deliberately not here: the checks that need the host (preflight: destinations writable,
 * files in the way; the emptying check: what is installed now; validate: commands, which
 * are the host's tools) and the guard. The exit code says whether a host would refuse. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "exitcode.h"
#include "log.h"
#include "planning.h"
#include "print.h"
#include "spawn.h"
#include "validate.h"

#define REASON_MAX 1024
#define HOST_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."

struct host_plan {
	char host[256];
	struct ap_config *cfg;
	struct ap_changes changes; /* the plan borrows file contents from here */
	struct ap_plan *plan;
	char **refusals;
	char *validation;
};

static void host_plan_done(struct host_plan *h)
{
	ap_plan_free(h->plan);
	ap_changes_clear(&h->changes);
	ap_config_free(h->cfg);
	ap_strv_free(h->refusals);
	free(h->validation);
}

static bool plan_has_units(const struct ap_plan *p)
{
	for (size_t i = 0; i < p->n_files; i++)
		if (p->files[i].install && p->files[i].kind != AP_KIND_FILE)
			return true;
	return false;
}

static bool plan_has_validators(const struct ap_plan *p)
{
	for (size_t i = 0; i < p->n_files; i++)
		if (p->files[i].install && p->files[i].validate)
			return true;
	return false;
}

/* systemd-analyze verify of the plan's unit files and drop-ins, in a private stage; the
 * rules' owners and validate: commands are the host's users and tools, left to the host. */
static int verify(struct host_plan *h, struct ap_repo *repo)
{
	_cleanup_free_ char *analyze = NULL, *tmpl = NULL;
	const char *tmp = secure_getenv("TMPDIR");
	struct ap_install_source src;
	char why[REASON_MAX];
	size_t missing = 0;
	const char *host_only = plan_has_validators(h->plan)
		? "; validate: commands run on each host only" : "";
	int k;

	if (!plan_has_units(h->plan)) {
		h->validation = *host_only ? strdup(host_only + 2) : NULL;
		return *host_only && !h->validation ? -ENOMEM : 0;
	}
	if (ap_spawn_find("systemd-analyze", &analyze) < 0) {
		h->validation = ap_strdupf("skipped: systemd-analyze is not installed here (each "
					   "host verifies its unit files before it installs them)%s",
					   host_only);
		return h->validation ? 0 : -ENOMEM;
	}
	tmpl = ap_strdupf("%s/autopull-plan.XXXXXX", tmp && *tmp == '/' ? tmp : "/tmp");
	if (!tmpl)
		return -ENOMEM;
	if (!mkdtemp(tmpl))
		return ap_log_error(-errno, "cannot create a directory for the validation: %s",
				    strerror(errno));
	ap_planning_source(repo, &src);
	ap_log_reason_begin();
	/* the runner need not have the programs, users and validators of the host */
	k = ap_validate_plan_where(h->plan, &src, h->cfg->scope, h->cfg->unit_dir, tmpl,
				   AP_VALIDATE_ELSEWHERE, &missing);
	ap_log_reason_end(why, sizeof(why));
	(void)rmdir(tmpl); /* the validation removes its stage; nothing to do if it did */
	if (k == -EINVAL) {
		h->validation = ap_strdupf("failed: systemd-analyze verify on this runner%s",
					   host_only);
		return !h->validation ? -ENOMEM
			: ap_strv_push(&h->refusals, *why ? why : "a unit file failed validation");
	}
	if (k < 0)
		return k;
	if (missing)
		h->validation = ap_strdupf("passed: systemd-analyze verify (%zu program(s) the units "
					   "run are not installed here and were not checked)%s",
					   missing, host_only);
	else
		h->validation = ap_strdupf("passed: systemd-analyze verify%s", host_only);
	return h->validation ? 0 : -ENOMEM;
}

/* One host: its configuration, its plan, its refusals. Returns an exit code. */
static int plan_host(const struct ap_opts *o, const char *cfg_path, struct ap_repo *repo,
		     const char *from, const char *to, struct host_plan *h)
{
	struct ap_planning in = { .repo = repo, .dry_run = true, .offline = true };
	char why[REASON_MAX];
	int k;

	if (ap_config_load_host(cfg_path, o->user, h->host, &h->cfg) < 0)
		return AP_EXIT_USAGE;
	in.cfg = h->cfg;
	ap_log_reason_begin();
	k = ap_planning_build(&in, from, to, &h->changes, &h->plan);
	ap_log_reason_end(why, sizeof(why));
	if (k == -EINVAL || k == -EFBIG)
		return ap_strv_push(&h->refusals, *why ? why : "the planner refused the range") < 0
			? AP_EXIT_FAILED : AP_EXIT_OK;
	if (k >= 0)
		k = verify(h, repo);
	return k < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
}

static int print_review(const struct ap_opts *o, const char *from, const char *to,
			const struct host_plan *hp, size_t n)
{
	struct ap_review_host *rh = calloc(n, sizeof(*rh));
	const struct ap_review r = { from, to, rh, n };
	struct ap_buf b = { 0 };
	int k = rh ? 0 : -ENOMEM;

	for (size_t i = 0; rh && i < n; i++)
		rh[i] = (struct ap_review_host){ .host = hp[i].host, .plan = hp[i].plan,
						 .refusals = hp[i].refusals,
						 .validation = hp[i].validation };
	if (k >= 0)
		k = o->json || (o->format && strcmp(o->format, "json") == 0)
			? ap_review_json(&r, &b) : ap_review_markdown(&r, &b);
	if (k >= 0 && (fwrite(b.data, 1, b.len, stdout) != b.len || fflush(stdout) != 0))
		k = -EIO;
	if (k < 0)
		ap_log_error(k, "cannot print the plan: %s", strerror(-k));
	ap_buf_clear(&b);
	free(rh);
	return k;
}

static int plan_hosts(const struct ap_opts *o, const char *cfg_path, struct ap_repo *repo,
		      const char *from, const char *to, struct host_plan *hp, size_t n)
{
	bool refused = false;

	for (size_t i = 0; i < n; i++) {
		int code = plan_host(o, cfg_path, repo, from, to, &hp[i]);

		if (code != AP_EXIT_OK)
			return code;
		refused |= hp[i].refusals != NULL;
	}
	if (print_review(o, from, to, hp, n) < 0)
		return AP_EXIT_FAILED;
	return refused ? AP_EXIT_INVALID : AP_EXIT_OK;
}

static int host_names(const struct ap_opts *o, struct host_plan *hp, size_t *ret_n)
{
	size_t n = o->n_hosts ? o->n_hosts : 1;

	if (!o->n_hosts && gethostname(hp[0].host, sizeof(hp[0].host) - 1) < 0)
		return ap_log_error(-errno, "cannot read the host name: %s", strerror(errno));
	for (size_t i = 0; i < o->n_hosts; i++) {
		/* what gethostname() can give a host: it is also what %H puts in a path */
		if (!*o->hosts[i] || strlen(o->hosts[i]) >= sizeof(hp[i].host) ||
		    o->hosts[i][strspn(o->hosts[i], HOST_CHARS)] || o->hosts[i][0] == '.' ||
		    o->hosts[i][0] == '-')
			return ap_log_error(-EINVAL, "--host '%s' is not a host name (letters, "
					    "digits, '-', '_' and '.', at most %zu)", o->hosts[i],
					    sizeof(hp[i].host) - 1);
		for (size_t j = 0; j < i; j++)
			if (strcmp(o->hosts[i], o->hosts[j]) == 0)
				return ap_log_error(-EINVAL, "host '%s' is named twice",
						    o->hosts[i]);
		snprintf(hp[i].host, sizeof(hp[i].host), "%s", o->hosts[i]);
	}
	*ret_n = n;
	return 0;
}

int ap_cmd_plan(const struct ap_opts *o, char **args)
{
	struct host_plan hp[AP_OPTS_MAX_HOSTS] = { 0 };
	_cleanup_(ap_repo_freep) struct ap_repo *repo = NULL;
	_cleanup_free_ char *def = NULL;
	const char *cfg_path = o->config_path;
	char from[AP_OID_HEXSZ + 1], to[AP_OID_HEXSZ + 1];
	size_t n = 0;
	int code = AP_EXIT_USAGE;

	if (!o->from || !o->commit) {
		ap_log_error(-EINVAL, "plan needs --from REV and --commit REV (the range to plan)");
		return AP_EXIT_USAGE;
	}
	if (o->json && o->format && strcmp(o->format, "json") != 0) {
		ap_log_error(-EINVAL, "--json and --format %s contradict each other", o->format);
		return AP_EXIT_USAGE;
	}
	if (host_names(o, hp, &n) < 0)
		return AP_EXIT_USAGE;
	if (!cfg_path && ap_config_default_path(o->user ? AP_SCOPE_USER : AP_SCOPE_SYSTEM,
						&def) < 0)
		return AP_EXIT_USAGE;
	cfg_path = cfg_path ? cfg_path : def;
	if (ap_repo_open_existing(o->repo ? o->repo : ".", &repo) >= 0 &&
	    ap_repo_resolve(repo, o->from, from) >= 0 && ap_repo_resolve(repo, o->commit, to) >= 0)
		code = plan_hosts(o, cfg_path, repo, from, to, hp, n);
	for (size_t i = 0; i < n; i++)
		host_plan_done(&hp[i]);
	return code;
}
