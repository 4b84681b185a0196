/* Command line: options are parsed here only, into struct ap_opts; a verb table maps the
 * verb to its cmd-<verb>.c function with the number of arguments it takes. Exit codes come
 * from exitcode.h. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "exitcode.h"
#include "generator.h"
#include "log.h"

#define AP_VERSION "0.1.0"

static void help(void)
{
	printf("usage: autopull [OPTIONS] [VERB]\n\n"
	       "Pull-based deploys of an infrastructure git repository onto this host.\n\n"
	       "verbs:\n"
	       "  apply          fetch, plan, validate, install, restart affected units (default)\n"
	       "  status         the applied commit, pending commits, pin, last apply, guard, drift\n"
	       "  log [UNIT...]  what autopull did here: applies, refusals, rollbacks, pins\n"
	       "  pin REV        freeze deploys at REV (applied if needed); needs --reason\n"
	       "  unpin          deploy the branch tip again\n"
	       "  diff           how managed files on the host differ from the applied commit\n"
	       "  check-config   validate the configuration file and exit\n"
	       "  heartbeat      sample the watched units, update the history and the metrics\n"
	       "  trust skip REV let commit REV through the signature check; needs --reason\n"
	       "  fleet status   the group in etcd: slots, hosts, bad commits, canaries\n"
	       "  plan           what --from..--commit would change on each --host (CI, no manager)\n\n"
	       "options:\n"
	       "  -c, --config FILE   configuration file (default /etc/autopull/autopull.yaml,\n"
	       "                      with --user $XDG_CONFIG_HOME/autopull/autopull.yaml)\n"
	       "      --user          manage the calling user's service manager\n"
	       "      --dry-run       print the plan and why; change nothing on the host\n"
	       "      --json          one JSON document on stdout (apply, status, log, check-config,\n"
	       "                      heartbeat, fleet status)\n"
	       "  -n, --lines N       log: the newest N events (default 20)\n"
	       "      --commit REV    apply (or plan) this commit of the branch instead of its tip;\n"
	       "                      applying it pins it (see pin); REV: an id, main~1, HEAD~2;\n"
	       "                      fleet status: whose canary progress to show\n"
	       "      --from REV      plan from this commit instead of the applied one\n"
	       "      --no-fetch      work from the local mirror (remote down)\n"
	       "      --host NAME     plan: a host to plan for (repeat; default this host)\n"
	       "      --repo PATH     plan: the repository checkout (default .)\n"
	       "      --format FORMAT plan: markdown (default) or json\n"
	       "      --allow-empty   allow a plan that removes every installed file\n"
	       "      --wait SECONDS  wait this long for another run's lock (default 0)\n"
	       "      --override-guard --reason TEXT\n"
	       "                      apply although a watched unit is looping (recorded)\n"
	       "      --allow-rewind --reason TEXT\n"
	       "                      apply a tip that does not descend from the applied commit\n"
	       "                      (force-push, rewind; recorded)\n"
	       "  -v, --verbose       log debug messages\n"
	       "  -q, --quiet         log warnings and errors only\n"
	       "  -h, --help          this help\n"
	       "      --version       print the version\n\n"
	       "guard: apply refuses (exit 3) while a unit in guard.watch is looping (more than\n"
	       "guard.max_restarts automatic restarts within guard.window, auto-restart after an\n"
	       "unclean exit, or failed after restarts). Units an apply restarts are watched for\n"
	       "guard.settle; if one fails, the apply is rolled back (previous files restored, units\n"
	       "restarted) and the commit is marked bad and skipped until the branch moves on. The\n"
	       "heartbeat writes Prometheus metrics to guard.metrics (default STATE_DIR/metrics.prom).\n\n"
	       "source: the new tip must descend from the applied commit (a rewritten history is\n"
	       "refused, exit 4, unless --allow-rewind or repo.allow_rewind: true); with trust: in\n"
	       "the configuration, every commit in applied..tip (require: every-commit, the\n"
	       "default), its first-parent chain (first-parent) or the tip alone (tip) must carry\n"
	       "a valid signature by a key in trust.ssh_allowed_signers or trust.openpgp_keyring;\n"
	       "a commit that cannot be signed any more is let through with 'trust skip'.\n\n"
	       "exit codes: 0 applied or nothing to do, 1 apply failed, 2 usage or configuration\n"
	       "error, 3 refused by the guard, 4 validation failed or source refused (host\n"
	       "unchanged), 5 the remote refused us or did not verify (authentication, host key,\n"
	       "TLS, no such repository or branch), 75 try again later (remote unreachable or\n"
	       "timed out, lock held).\n");
}

enum { OPT_USER = 256, OPT_DRY_RUN, OPT_JSON, OPT_COMMIT, OPT_FROM, OPT_NO_FETCH, OPT_ALLOW_EMPTY,
       OPT_WAIT, OPT_VERSION, OPT_OVERRIDE_GUARD, OPT_REASON, OPT_ALLOW_REWIND,
       OPT_HOST, OPT_REPO, OPT_FORMAT };

static int parse_uint(const char *s, unsigned *ret)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > UINT_MAX / 2)
		return -EINVAL;
	*ret = (unsigned)v;
	return 0;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "autopull: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see autopull --help)\n");
	return AP_EXIT_USAGE;
}

/* Returns -1 to go on, or an exit code. */
static int parse_args(int argc, char **argv, struct ap_opts *o)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' }, { "user", no_argument, NULL, OPT_USER },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN }, { "json", no_argument, NULL,
								 OPT_JSON },
		{ "lines", required_argument, NULL, 'n' },
		{ "commit", required_argument, NULL, OPT_COMMIT },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "no-fetch", no_argument, NULL, OPT_NO_FETCH },
		{ "allow-empty", no_argument, NULL, OPT_ALLOW_EMPTY },
		{ "wait", required_argument, NULL, OPT_WAIT }, { "verbose", no_argument, NULL,
								 'v' },
		{ "quiet", no_argument, NULL, 'q' }, { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "override-guard", no_argument, NULL, OPT_OVERRIDE_GUARD },
		{ "reason", required_argument, NULL, OPT_REASON },
		{ "allow-rewind", no_argument, NULL, OPT_ALLOW_REWIND },
		{ "host", required_argument, NULL, OPT_HOST },
		{ "repo", required_argument, NULL, OPT_REPO },
		{ "format", required_argument, NULL, OPT_FORMAT }, {},
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "c:n:vqh", opts, NULL)) >= 0) {
		switch (c) {
		case 'c': o->config_path = optarg; break;
		case OPT_USER: o->user = true; break;
		case OPT_DRY_RUN: o->dry_run = true; break;
		case 'n':
			if (parse_uint(optarg, &o->lines) < 0 || o->lines == 0)
				return usage_error("-n needs a positive number, not '%s'", optarg);
			break;
		case OPT_JSON: o->json = true; break;
		case OPT_COMMIT: o->commit = optarg; break;
		case OPT_FROM: o->from = optarg; break;
		case OPT_NO_FETCH: o->no_fetch = true; break;
		case OPT_ALLOW_EMPTY: o->allow_empty = true; break;
		case OPT_WAIT:
			if (parse_uint(optarg, &o->wait_sec) < 0)
				return usage_error("--wait needs a number of seconds, not '%s'",
						   optarg);
			break;
		case 'v': ap_log_set_max_level(AP_LOG_DEBUG); break;
		case 'q': ap_log_set_max_level(AP_LOG_WARNING); break;
		case 'h': help(); return AP_EXIT_OK;
		case OPT_VERSION: printf("autopull %s\n", AP_VERSION); return AP_EXIT_OK;
		case OPT_OVERRIDE_GUARD: o->override_guard = true; break;
		case OPT_REASON: o->reason = optarg; break;
		case OPT_ALLOW_REWIND: o->allow_rewind = true; break;
		case OPT_HOST:
			if (o->n_hosts == AP_OPTS_MAX_HOSTS)
				return usage_error("at most %d --host", AP_OPTS_MAX_HOSTS);
			o->hosts[o->n_hosts++] = optarg;
			break;
		case OPT_REPO: o->repo = optarg; break;
		case OPT_FORMAT:
			if (strcmp(optarg, "markdown") != 0 && strcmp(optarg, "json") != 0)
				return usage_error("--format is markdown or json, not '%s'", optarg);
			o->format = optarg;
			break;
		default:
			return usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (o->override_guard && (!o->reason || !*o->reason))
		return usage_error("%s needs --reason TEXT (it is recorded)", "--override-guard");
	if (o->allow_rewind && (!o->reason || !*o->reason))
		return usage_error("%s needs --reason TEXT (it is recorded)", "--allow-rewind");
	if (o->reason && strpbrk(o->reason, "\n\r"))
		return usage_error("--reason must be one line (it is recorded as one)");
	return -1;
}

static const struct verb {
	const char *name;
	unsigned min_args, max_args;
	int (*fn)(const struct ap_opts *o, char **args);
} verbs[] = {
	{ "apply", 0, 0, ap_cmd_apply },
	{ "status", 0, 0, ap_cmd_status },
	{ "log", 0, 64, ap_cmd_log },
	{ "pin", 1, 1, ap_cmd_pin },
	{ "unpin", 0, 0, ap_cmd_unpin },
	{ "diff", 0, 0, ap_cmd_diff },
	{ "check-config", 0, 0, ap_cmd_check_config },
	{ "heartbeat", 0, 0, ap_cmd_heartbeat },
	{ "trust", 1, 2, ap_cmd_trust },
	{ "fleet", 1, 1, ap_cmd_fleet },
	{ "plan", 0, 0, ap_cmd_plan },
};

int main(int argc, char **argv)
{
	struct ap_opts o = { .lines = 20 };
	const char *name;
	unsigned nargs;
	int code;

	ap_log_init();
	if (argc > 0 && ap_generator_invoked_as(argv[0]))
		return ap_generator_main(argc, argv);
	code = parse_args(argc, argv, &o);
	if (code >= 0)
		return code;
	name = optind < argc ? argv[optind++] : "apply";
	/* plan plans a range without a host; every other verb plans from the applied commit */
	if (o.from && !o.dry_run && strcmp(name, "plan") != 0)
		return usage_error("%s can only be used with --dry-run or plan", "--from");
	if ((o.n_hosts || o.repo || o.format) && strcmp(name, "plan") != 0)
		return usage_error("--host, --repo and --format are options of plan");
	nargs = (unsigned)(argc - optind);
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(verbs[i].name, name) != 0)
			continue;
		if (nargs < verbs[i].min_args)
			return usage_error("%s needs an argument", name);
		if (nargs > verbs[i].max_args)
			return usage_error("unexpected argument '%s'",
					   argv[optind + verbs[i].max_args]);
		return verbs[i].fn(&o, argv + optind);
	}
	return usage_error("unknown verb '%s'", name);
}
