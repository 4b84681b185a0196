/* The source of a run (source.h). Everything about "may these commits be applied at all"
 * is here: it runs once the target is known and before anything is planned, for apply and
 * dry run alike. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "exitcode.h"
#include "log.h"
#include "source.h"
#include "trust-io.h"
#include "util.h"

/* repo.h says which fetch failures pass by themselves and which need an operator. */
static int fetch_exit_code(int k, bool no_fetch)
{
	if (k == -EHOSTUNREACH || no_fetch)
		return AP_EXIT_TEMPFAIL;
	if (k == -EPERM || k == -EINVAL)
		return AP_EXIT_USAGE;
	if (k == -EACCES || k == -EKEYREJECTED || k == -ENOENT || k == -EREMOTEIO)
		return AP_EXIT_REMOTE;
	if (k == -EBADMSG)
		return AP_EXIT_INVALID; /* the source is refused; a retry gets the same objects */
	return AP_EXIT_FAILED;
}

/* The one way a source is refused, whatever refused it: the message naming the commit and
 * the reason; the caller records the `refused` event (reason is its result and the metric's
 * label, why its reason). Returns the exit code of a refused source. */
static int refuse_source(const struct ap_source_in *in, struct ap_source *out, const char *reason,
			 const char *commit, const char *why, const char *fmt, ...) _printf_(6, 7);
static int refuse_source(const struct ap_source_in *in, struct ap_source *out, const char *reason,
			 const char *commit, const char *why, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	ap_log_error(-EPERM, "refusing %.12s: %s; nothing was changed", commit,
		     msg ? msg : why);
	out->refused = reason;
	snprintf(out->why, sizeof(out->why), "%s", why);
	return AP_EXIT_INVALID;
}

struct source_walk {
	struct ap_trust *trust;
	bool dry_run;
	FILE *out;                  /* where a dry run lists every verdict */
	bool has_applied_time;
	long long applied_time;     /* the applied commit's date, when moving forward from it */
	const char *target;         /* its own signature is never skipped */
	const struct ap_bad *skips; /* commits 'autopull trust skip' lets through */
	size_t n_skips;
	char current[AP_OID_HEXSZ + 1]; /* the commit being verified */
	char bad[AP_OID_HEXSZ + 1]; /* the first commit that failed */
	char line[512];             /* its verdict, for people */
	char reason[320];           /* the same without what the repository says (the author) */
};

static const struct ap_bad *find_skip(const struct source_walk *w, const char *id)
{
	for (size_t i = 0; strcmp(id, w->target) != 0 && i < w->n_skips; i++)
		if (strcmp(w->skips[i].commit, id) == 0)
			return &w->skips[i];
	return NULL;
}

static int source_commit(void *userdata, const struct ap_repo_commit *rc)
{
	struct source_walk *w = userdata;
	struct ap_trust_commit c = { .id = rc->id, .author = rc->author, .time = rc->time,
				     .has_floor = rc->parents > 0 && rc->parent_time != LLONG_MIN,
				     .floor = rc->parent_time, .signature = rc->signature,
				     .signature_len = rc->signature_len,
				     .payload = rc->signed_data, .payload_len = rc->signed_len };
	struct ap_trust_verdict v;
	struct ap_buf b = { 0 };
	const struct ap_bad *skip;
	int k;

	if (w->has_applied_time && (!c.has_floor || w->applied_time > c.floor))
		c.has_floor = true, c.floor = w->applied_time;
	memcpy(w->current, rc->id, sizeof(w->current));
	k = ap_trust_verify(w->trust, &c, &v);
	if (k >= 0)
		k = ap_trust_format_verdict(&c, &v, &b);
	if (k >= 0 && w->dry_run)
		fprintf(w->out, "source: %s", b.data);
	skip = k >= 0 && v.status != AP_TRUST_GOOD ? find_skip(w, rc->id) : NULL;
	if (skip)
		ap_log_warning("letting commit %.*s through: 'autopull trust skip' (%s)",
			       (int)b.len - 1, b.data, skip->why);
	else if (k >= 0 && v.status != AP_TRUST_GOOD && !*w->bad) {
		memcpy(w->bad, rc->id, sizeof(w->bad));
		snprintf(w->line, sizeof(w->line), "%.*s", (int)b.len - 1, b.data);
		snprintf(w->reason, sizeof(w->reason), "%s %s: %s", rc->id,
			 ap_trust_status_to_string(v.status), v.why);
	}
	ap_buf_clear(&b);
	return k < 0 ? k : *w->bad && !w->dry_run;
}

/* A rewritten history is applied only when the operator said so, with a reason. */
static int allow_rewind(const struct ap_source_in *in, struct ap_source *out, const char *applied,
			const char *target)
{
	if (!in->o->allow_rewind && !in->cfg->allow_rewind)
		return refuse_source(in, out, "rewind", target, "history was rewritten",
				     "it does not descend from the applied commit %.12s: history "
				     "was rewritten (force-push or rewind). To apply it anyway: "
				     "autopull apply --allow-rewind --reason TEXT (or "
				     "repo.allow_rewind: true)", applied);
	ap_log_warning("history was rewritten: %.12s does not descend from the applied commit "
		       "%.12s; applying it (%s)", target, applied,
		       in->o->allow_rewind ? in->o->reason : "repo.allow_rewind: true");
	if (!in->o->allow_rewind || in->o->dry_run)
		return AP_EXIT_OK;
	out->rewind_override = true;
	return AP_EXIT_OK;
}

/* A walk that gave no verdict. The operator's side (a verifier not installed or not
 * executable) is configuration, a verifier that hangs may pass, the machine running out is a
 * failure; any other failure while reading or checking a commit refuses the source, recorded
 * like a bad signature, so that a crafted commit cannot stop deploys without an alert. */
static int walk_failed(const struct ap_source_in *in, struct ap_source *out,
		       const struct source_walk *w, const char *target, int k)
{
	if (k == -ENOENT || k == -EACCES)
		return AP_EXIT_USAGE;
	if (k == -ETIMEDOUT)
		return AP_EXIT_TEMPFAIL;
	if (k == -ENOMEM || k == -ENOSPC || k == -EDQUOT || k == -EMFILE || k == -ENFILE)
		return AP_EXIT_FAILED;
	return refuse_source(in, out, "untrusted", target, "the signature could not be checked",
			     "commit %.12s: its signature could not be checked (%s)",
			     *w->current ? w->current : target, strerror(-k));
}

/* The applied commit's date bounds the dates of the commits that follow it. */
static void applied_time(const struct ap_source_in *in, enum ap_source_move m, const char *applied,
			 struct source_walk *w)
{
	struct ap_commit_info info = { 0 };

	if (m != AP_MOVE_FORWARD || ap_repo_commit_info(in->repo, applied, &info) < 0)
		return;
	w->has_applied_time = true;
	w->applied_time = (long long)info.time;
	ap_commit_info_clear(&info);
}

static int check_signatures(const struct ap_source_in *in, struct ap_source *out,
			    const struct ap_trust_range *range, enum ap_source_move m,
			    const char *applied, const char *target)
{
	const struct ap_trust_config *t = &in->cfg->trust;
	/* stdout stays one JSON document with --json */
	struct source_walk w = { .dry_run = in->o->dry_run, .out = in->o->json ? stderr : stdout,
				 .skips = in->s->skips, .n_skips = in->s->n_skips,
				 .target = target };
	int k;

	/* ap_trust_range() hands out trust.since itself on a first run */
	if (range->from && range->from == t->since &&
	    ap_repo_is_ancestor(in->repo, t->since, target) != 1) {
		ap_log_error(-EINVAL,
			     "trust.since %.12s is not an ancestor of %.12s on branch '%s'",
			     t->since, target, in->cfg->branch);
		return AP_EXIT_USAGE;
	}
	if (ap_trust_open(t, in->st, (long long)(ap_now_realtime_usec() / 1000000),
			  &w.trust) < 0)
		return AP_EXIT_USAGE;
	applied_time(in, m, applied, &w);
	if (in->s->skips_error < 0) {
		ap_trust_free(w.trust);
		return ap_log_error(in->s->skips_error,
				    "refusing to check the signatures of %.12s: "
				    "the trust-skip overrides cannot be read", target),
				    AP_EXIT_FAILED;
	}
	k = ap_repo_walk(in->repo, range->from, target, range->first_parent, source_commit, &w);
	if (k >= 0 && !in->o->dry_run)
		(void)ap_trust_save(w.trust); /* the good ones stay good, whatever came after */
	ap_trust_free(w.trust);
	if (k < 0)
		return walk_failed(in, out, &w, target, k);
	if (!*w.bad)
		return AP_EXIT_OK;
	k = refuse_source(in, out, "untrusted", target, w.reason, "commit %s", w.line);
	if (strcmp(w.bad, target) != 0)
		ap_log_error(-EPERM,
			     "a signed commit on top does not vouch for %.12s; to let this one "
			     "commit through: autopull trust skip %.12s --reason TEXT (recorded, shown "
			     "in status; see autopull(8))", w.bad, w.bad);
	return k;
}

static int check_source(const struct ap_source_in *in, struct ap_source *out, const char *applied,
			const char *target)
{
	char from[AP_OID_HEXSZ + 1] = "";
	int fwd = 1, back = 0, code = AP_EXIT_OK;
	struct ap_trust_range range;
	enum ap_source_move m;

	/* --from plans between two commits of the infra repo's own CI: its range is checked,
	 * but it has no applied commit to have rewritten. */
	if (in->o->from && ap_repo_resolve_on_branch(in->repo, in->cfg->branch, in->o->from,
						     from) < 0)
		return AP_EXIT_USAGE;
	if (*from)
		applied = from;
	if (*applied && strcmp(applied, target) != 0 &&
	    ((fwd = ap_repo_is_ancestor(in->repo, applied, target)) < 0 ||
	     (back = ap_repo_is_ancestor(in->repo, target, applied)) < 0))
		return AP_EXIT_FAILED;
	/* a pin is a chosen commit, like --commit: going back to it is a rollback */
	m = ap_trust_classify(applied, target, fwd > 0, back > 0,
			      in->o->commit != NULL || in->s->pin.commit[0]);
	if (m == AP_MOVE_REWIND && !*from && (code = allow_rewind(in, out, applied,
								  target)) != AP_EXIT_OK)
		return code;
	ap_trust_range(&in->cfg->trust, m, applied, &range);
	if (range.check)
		code = check_signatures(in, out, &range, m, applied, target);
	return code;
}

static int find_target(const struct ap_source_in *in, struct ap_source *out,
		       char ret[AP_OID_HEXSZ + 1])
{
	const struct ap_opts *o = in->o;
	const struct ap_remote_opts ro = { .url = in->cfg->repo_url, .branch = in->cfg->branch,
					   .ssh_key = in->cfg->ssh_key,
					   .known_hosts = in->cfg->known_hosts,
					   .ca_file = in->cfg->ca_file,
					   .trust_owner = in->cfg->trust_owner,
					   .connect_timeout_usec = in->cfg->connect_timeout_usec,
					   .io_timeout_usec = in->cfg->io_timeout_usec };
	char tip[AP_OID_HEXSZ + 1];
	int k = o->no_fetch ? ap_repo_branch_tip(in->repo, in->cfg->branch, tip)
			    : ap_repo_fetch(in->repo, &ro, tip);

	if (k == -ENOENT && o->no_fetch)
		ap_log_error(k, "--no-fetch: nothing was fetched into '%s/repo.git' yet",
			     ap_state_path(in->st));
	if (k < 0)
		return fetch_exit_code(k, o->no_fetch);
	memcpy(out->tip, tip, sizeof(tip));
	if (!o->commit && in->s->pin.commit[0]) {
		memcpy(ret, in->s->pin.commit, sizeof(in->s->pin.commit));
		return AP_EXIT_OK;
	}
	if (!o->commit) {
		memcpy(ret, tip, sizeof(tip));
		return AP_EXIT_OK;
	}
	if (ap_repo_resolve_on_branch(in->repo, in->cfg->branch, o->commit, ret) < 0)
		return AP_EXIT_USAGE;
	k = ap_repo_is_ancestor(in->repo, ret, tip);
	if (k == 0)
		ap_log_error(-EINVAL, "commit '%s' is not on branch '%s'", o->commit,
			     in->cfg->branch);
	if (k <= 0)
		return k == 0 ? AP_EXIT_USAGE : AP_EXIT_FAILED;
	return AP_EXIT_OK;
}

int ap_source_is_bad(const struct ap_state_snapshot *s, const char *target, bool chosen, bool warn)
{
	const struct ap_bad *bad;

	if (chosen || strcmp(target, s->applied) == 0)
		return 0;
	if (s->bad_error < 0)
		return ap_log_error(s->bad_error,
				    "refusing to apply %.12s: the list of rolled-back "
				    "commits cannot be read; nothing was changed", target);
	bad = ap_state_snapshot_find_bad(s, target);
	if (bad && warn)
		ap_log_warning("skipping %.12s: its apply was rolled back (%s); push a newer commit, "
			       "or run 'autopull apply --commit %.12s' to retry it", target,
			       bad->why,
			       target);
	return bad != NULL;
}

int ap_source_choose(const struct ap_source_in *in, struct ap_source *out)
{
	int code = find_target(in, out, out->target);

	return code == AP_EXIT_OK ? check_source(in, out, in->applied, out->target) : code;
}
