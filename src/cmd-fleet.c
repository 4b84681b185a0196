/* autopull fleet status [--json]: what the group of this host's fleet: section looks like in
 * etcd: who holds a slot and for which commit, each host's last commit and result, the
 * commits that halted the group, and how far the canaries of one commit got (the branch tip
 * as last fetched, or --commit REV). It only reads: no slot is taken, nothing is marked, and
 * not even the state directory is created.
 *
 * Deliberately not here: talking to etcd (fleet.c, through fleet.h alone) and deciding
 * anything for an apply. Everything in the output that came from etcd is escaped: another host
 * wrote it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "exitcode.h"
#include "fleet.h"
#include "log.h"
#include "util.h"

#define SHORT 12 /* commit ids in the text output */

/* Whether the hosts that are not canaries may start commit: no canaries, or as many healthy
 * reports as there are to be canaries (the gate of ap_fleet_may_start, as etcd shows it). */
static bool canaries_done(const struct ap_fleet_config *c, const struct ap_fleet_status *s)
{
	return c->canary == 0 || ap_strv_length(s->healthy) >= c->canary;
}

/* One line: prefix, then " a b c" (or " none"). */
static int text_list(struct ap_buf *b, const char *prefix, char *const *v)
{
	struct ap_buf l = { 0 };
	int r = ap_buf_printf(&l, "%s", prefix);

	for (size_t i = 0; r >= 0 && v && v[i]; i++)
		r = ap_buf_printf(&l, " %s", v[i]);
	if (r >= 0 && !ap_strv_length(v))
		r = ap_buf_printf(&l, " none");
	if (r >= 0)
		r = ap_buf_linef(b, "%s", l.data);
	ap_buf_clear(&l);
	return r;
}

static int text_canaries(struct ap_buf *b, const struct ap_fleet_config *c,
			 const struct ap_fleet_status *s, const char *commit, const char *whence)
{
	int r;

	if (c->canary == 0)
		return ap_buf_linef(b, "canaries: none (every host may start a commit at once)");
	if (!commit)
		return ap_buf_linef(b, "canaries: %u; no commit to show them for (nothing fetched yet; "
				       "try --commit REV)", c->canary);
	r = ap_buf_linef(b, "canaries of %.*s (%s): %zu of %u healthy; %s", SHORT, commit, whence,
			 ap_strv_length(s->healthy), c->canary,
			 canaries_done(c, s) ? "every host may start it"
					     : "the other hosts wait");
	if (r >= 0)
		r = text_list(b, "  canaries:", s->canaries);
	if (r >= 0)
		r = text_list(b, "  started:", s->started);
	if (r >= 0)
		r = text_list(b, "  healthy:", s->healthy);
	return r;
}

/* The text output; each line through ap_buf_linef, which escapes it whole. */
static int fleet_text(struct ap_buf *b, const struct ap_fleet_config *c,
		      const struct ap_fleet_status *s, const char *commit, const char *whence,
		      unsigned long long now)
{
	_cleanup_free_ char *head = ap_strdupf("fleet '%s' (this host: %s): max_parallel %u, "
					       "canary %u, etcd", c->group, c->host,
					       c->max_parallel, c->canary);
	char ago[32];
	int r = head ? text_list(b, head, c->etcd) : -ENOMEM;

	if (r >= 0)
		r = ap_buf_linef(b, "slots: %zu of %u taken", s->n_slots, c->max_parallel);
	for (size_t i = 0; r >= 0 && i < s->n_slots; i++)
		r = ap_buf_linef(b, "  slot %u: %s applying %.*s", s->slots[i].n, s->slots[i].host,
				 SHORT, s->slots[i].commit);
	if (r >= 0)
		r = ap_buf_linef(b, "hosts:%s", s->n_hosts ? "" : " none recorded yet");
	for (size_t i = 0; r >= 0 && i < s->n_hosts; i++) {
		ap_format_ago(s->hosts[i].usec, now, ago, sizeof(ago));
		r = ap_buf_linef(b, "  %-16s %-*.*s %-12s %s", s->hosts[i].host, SHORT, SHORT,
				 s->hosts[i].commit, s->hosts[i].result, ago);
	}
	if (r >= 0)
		r = ap_buf_linef(b, "bad commits:%s", s->n_bad ? "" : " none");
	for (size_t i = 0; r >= 0 && i < s->n_bad; i++)
		r = ap_buf_linef(b, "  %.*s by %s: %s", SHORT, s->bad[i].commit, s->bad[i].host,
				 s->bad[i].reason);
	return r < 0 ? r : text_canaries(b, c, s, commit, whence);
}

/* `, "key": ["a", "b"]`, or null for NULL. */
static int json_strv(struct ap_buf *b, const char *key, char *const *v)
{
	int r = ap_buf_printf(b, ", \"%s\": %s", key, v ? "[" : "null");

	for (size_t i = 0; r >= 0 && v && v[i]; i++)
		if ((r = ap_buf_printf(b, "%s", i ? ", " : "")) >= 0)
			r = ap_buf_json_string(b, v[i]);
	return r < 0 || !v ? r : ap_buf_printf(b, "]");
}

/* open, then `"key": "value", ...` (null for NULL; values may be anything etcd held), close. */
static int json_object(struct ap_buf *b, const char *open, const char *const pairs[][2], size_t n,
		       const char *close)
{
	int r = ap_buf_printf(b, "%s", open);

	for (size_t i = 0; r >= 0 && i < n; i++)
		if ((r = ap_buf_printf(b, "%s\"%s\": ", i ? ", " : "", pairs[i][0])) >= 0)
			r = ap_buf_json_string_or_null(b, pairs[i][1]);
	return r < 0 ? r : ap_buf_printf(b, "%s", close);
}

static int fleet_json(struct ap_buf *b, const struct ap_fleet_config *c,
		      const struct ap_fleet_status *s, const char *commit)
{
	char open[64], close[64];
	int r = json_object(b, "{", (const char *const[][2]){ { "group", c->group }, { "host", c->host } },
			    2, "");

	if (r >= 0)
		r = json_strv(b, "etcd", c->etcd);
	if (r >= 0)
		r = ap_buf_printf(b, ", \"max_parallel\": %u, \"canary\": %u, \"slots\": [",
				  c->max_parallel, c->canary);
	for (size_t i = 0; r >= 0 && i < s->n_slots; i++) {
		snprintf(open, sizeof(open), "%s{\"slot\": %u, ", i ? ", " : "", s->slots[i].n);
		r = json_object(b, open, (const char *const[][2]){ { "host", s->slots[i].host },
								   { "commit", s->slots[i].commit } },
				2, "}");
	}
	if (r >= 0)
		r = ap_buf_printf(b, "], \"hosts\": [");
	for (size_t i = 0; r >= 0 && i < s->n_hosts; i++) {
		snprintf(close, sizeof(close), ", \"time_usec\": %llu}",
			 (unsigned long long)s->hosts[i].usec);
		r = json_object(b, i ? ", {" : "{",
				(const char *const[][2]){ { "host", s->hosts[i].host },
							  { "commit", s->hosts[i].commit },
							  { "result", s->hosts[i].result } },
				3, close);
	}
	if (r >= 0)
		r = ap_buf_printf(b, "], \"bad\": [");
	for (size_t i = 0; r >= 0 && i < s->n_bad; i++)
		r = json_object(b, i ? ", {" : "{",
				(const char *const[][2]){ { "commit", s->bad[i].commit },
							  { "host", s->bad[i].host },
							  { "reason", s->bad[i].reason } },
				3, "}");
	if (r >= 0)
		r = ap_buf_printf(b, "], \"canary_progress\": ");
	if (r >= 0 && (!commit || c->canary == 0))
		return ap_buf_printf(b, "null}\n");
	if (r >= 0)
		r = json_object(b, "{", (const char *const[][2]){ { "commit", commit } }, 1, "");
	if (r >= 0)
		r = json_strv(b, "canaries", s->canaries);
	if (r >= 0)
		r = json_strv(b, "started", s->started);
	if (r >= 0)
		r = json_strv(b, "healthy", s->healthy);
	if (r >= 0)
		r = ap_buf_printf(b, ", \"others_may_start\": %s}}\n",
				  canaries_done(c, s) ? "true" : "false");
	return r;
}

/* The commit whose canaries to show: --commit REV (a full id as it is: this host need not have
 * fetched it; else resolved on the branch), or the tip as last fetched (none when nothing was
 * fetched yet). The mirror is opened only when it is there: this verb creates nothing. */
static int pick_commit(struct ap_ctx *c, char ret[AP_OID_HEXSZ + 1], const char **ret_whence)
{
	_cleanup_free_ char *mirror = ap_strdupf("%s/repo.git", c->cfg->state_dir);
	const char *rev = c->o->commit;
	int k;

	*ret_whence = "the branch tip as last fetched";
	if (rev && strlen(rev) == AP_OID_HEXSZ && strspn(rev, "0123456789abcdef") == AP_OID_HEXSZ) {
		*ret_whence = "--commit";
		memcpy(ret, rev, AP_OID_HEXSZ + 1);
		return AP_EXIT_OK;
	}
	if (!mirror)
		return AP_EXIT_FAILED;
	if (access(mirror, F_OK) < 0 && errno == ENOENT) {
		if (rev)
			ap_log_error(-ENOENT, "nothing was fetched here yet to find '%s' in: give a full "
					      "commit id", rev);
		return rev ? AP_EXIT_USAGE : AP_EXIT_OK;
	}
	if (!ap_ctx_repo(c))
		return c->o->commit ? AP_EXIT_FAILED : AP_EXIT_OK;
	if (c->o->commit) {
		*ret_whence = c->o->commit;
		k = ap_repo_resolve_on_branch(c->repo, c->cfg->branch, c->o->commit, ret);
		return k < 0 ? AP_EXIT_USAGE : AP_EXIT_OK;
	}
	k = ap_repo_branch_tip(c->repo, c->cfg->branch, ret);
	return k < 0 && k != -ENOENT ? AP_EXIT_FAILED : AP_EXIT_OK;
}

static int status(struct ap_ctx *c)
{
	const struct ap_fleet_config *fc = &c->cfg->fleet;
	struct ap_fleet_status s = { 0 };
	struct ap_fleet *f;
	char commit[AP_OID_HEXSZ + 1] = "";
	const char *whence = NULL;
	struct ap_buf b = { 0 };
	int code, k;

	if (!fc->enabled) {
		ap_log_error(-EINVAL, "'%s' has no fleet: section", c->cfg->path);
		return AP_EXIT_USAGE;
	}
	code = pick_commit(c, commit, &whence);
	if (code != AP_EXIT_OK)
		return code;
	f = ap_ctx_fleet(c);
	if (!f) /* fleet.c refused the settings (logged) */
		return AP_EXIT_USAGE;
	/* fleet.c logged what went wrong, with the endpoint */
	k = ap_fleet_status(f, *commit ? commit : NULL, &s);
	if (k < 0)
		return k == -EHOSTUNREACH ? AP_EXIT_TEMPFAIL : AP_EXIT_FAILED;
	if (c->o->json)
		k = fleet_json(&b, fc, &s, *commit ? commit : NULL);
	else
		k = fleet_text(&b, fc, &s, *commit ? commit : NULL, whence, ap_now_realtime_usec());
	if (k >= 0)
		fputs(b.data, stdout);
	ap_buf_clear(&b);
	ap_fleet_status_clear(&s);
	return k < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
}

int ap_cmd_fleet(const struct ap_opts *o, char **args)
{
	struct ap_ctx c;
	int code;

	if (strcmp(args[0], "status") != 0) {
		ap_log_error(-EINVAL, "unknown fleet command '%s' (known: status)", args[0]);
		return AP_EXIT_USAGE;
	}
	code = ap_ctx_open(o, AP_CTX_CONFIG_ONLY, &c);
	if (code != AP_EXIT_OK)
		return code;
	code = status(&c);
	ap_ctx_done(&c);
	return code;
}
