/* What a run prints: the plan (for people before it runs; for programs one JSON document
 * with the result), the closing line of an apply, and the outcome of a run that ended before
 * a plan. Everything the repository says is escaped (ap_buf_linef, ap_buf_json_string). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "exitcode.h"
#include "log.h"
#include "print.h"
#include "report.h"

/* `, "refused": {"kind": …, "reason": …}` when this run was refused. */
static int refused_json(const struct ap_report *rp, struct ap_buf *b)
{
	int k;

	if (!rp->refused)
		return 0;
	k = ap_buf_printf(b, ", \"refused\": {\"kind\": \"%s\", \"reason\": ", rp->refused);
	if (k >= 0)
		k = ap_buf_json_string(b, rp->why);
	return k < 0 ? k : ap_buf_printf(b, "}");
}

int ap_report_plan(struct ap_report *rp, const char *result, const struct ap_journal *j)
{
	struct ap_buf b = { 0 }, g = { 0 };
	int k = ap_buf_printf(&g, rp->json ? "\"guard\": " : "");

	if (k >= 0 && rp->guard)
		k = ap_guard_format(rp->guard, rp->json, &g);
	else if (k >= 0 && rp->json)
		k = ap_buf_printf(&g, "null");
	if (k >= 0 && rp->json && result)
		k = ap_buf_printf(&g, ", \"result\": \"%s\", \"duration_ms\": %llu", result,
				  (ap_now_monotonic_usec() - rp->start) / 1000);
	if (k >= 0 && rp->json && j)
		k = ap_print_journal_units_json(j, &g);
	if (k >= 0 && rp->json)
		k = refused_json(rp, &g);
	if (k >= 0)
		k = rp->json ? ap_print_plan_json(rp->plan, g.data, &b)
			: ap_print_plan_human(rp->plan, &b);
	if (k >= 0 && !rp->json && rp->guard)
		k = ap_buf_append(&b, g.data, g.len);
	/* the reason quotes the repository: the line is escaped */
	if (k >= 0 && !rp->json && rp->refused)
		k = ap_buf_linef(&b, "refused (%s): %s", rp->refused, rp->why);
	ap_buf_clear(&g);

	if (k >= 0 && fwrite(b.data, 1, b.len, stdout) != b.len)
		k = -EIO;
	fflush(stdout);
	ap_buf_clear(&b);
	rp->printed |= rp->json;
	return k;
}

int ap_report_plan_before(struct ap_report *rp)
{
	/* --json prints one document, with the result, at the end. */
	return rp->json && !rp->dry_run ? 0 : ap_report_plan(rp, NULL, NULL);
}

void ap_report_applied(const struct ap_report *rp, const struct ap_journal *j)
{
	unsigned n[AP_ACTION_REENABLE + 1] = { 0 };

	for (size_t i = 0; i < j->n_units; i++)
		if (j->units[i].state == AP_STEP_DONE && j->units[i].action <= AP_ACTION_REENABLE)
			n[j->units[i].action]++;
	if (rp->json)
		return;
	/* Under the timer the journal entry of the apply already says it, with its fields. */
	if (!ap_log_stdout_is_journal())
		printf("applied %.12s in %.1f s: %u restarted, %u reloaded, %u started, %u stopped\n",
		       j->to, (ap_now_monotonic_usec() - rp->start) / 1e6, n[AP_ACTION_RESTART],
		       n[AP_ACTION_RELOAD], n[AP_ACTION_START] + n[AP_ACTION_ENABLE_START],
		       n[AP_ACTION_STOP] + n[AP_ACTION_DISABLE_STOP]);
	/* The plan started these because they were failed: did the new files bring them back?
	 * The settle's verdict, not a look now: a crashing unit is "active" for a moment. */
	for (size_t i = 0; rp->plan && i < rp->plan->n_units; i++) {
		const struct ap_unit_action *u = &rp->plan->units[i];
		const struct ap_journal_unit *ju = ap_journal_find_unit(j, u->unit);
		_cleanup_free_ char *named = ap_strdupf("unit '%s' ", u->unit);

		if (u->action != AP_ACTION_START || !ap_streq_ptr(u->state, "failed") || !ju ||
		    ju->state != AP_STEP_DONE)
			continue;
		if (named && j->why && ap_startswith(j->why, named))
			printf("  %s was failed: still failing after the settle: %s\n", u->unit,
			       j->why);
		else
			printf("  %s was failed: came back, up after the settle\n", u->unit);
	}
	fflush(stdout);
}

int ap_report_nothing_to_do(struct ap_report *rp, const struct ap_pin *pin)
{
	struct ap_buf b = { 0 };
	char ago[32];

	if (rp->json)
		return ap_report_plan(rp, "nothing-to-do", NULL) < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
	if (!pin) {
		printf("nothing to do: %.12s is applied\n", rp->plan->to);
		return AP_EXIT_OK;
	}
	/* the reason is whatever the pin's author typed: escaped like all human output */
	ap_format_ago(pin->realtime_usec, ap_now_realtime_usec(), ago, sizeof(ago));
	if (ap_buf_linef(&b, "pinned at %.12s since %s: %s; 'autopull unpin' resumes deploys",
			 pin->commit, ago, pin->reason) >= 0)
		fputs(b.data, stdout);
	ap_buf_clear(&b);
	return AP_EXIT_OK;
}

void ap_report_refused(struct ap_report *rp, const char *kind, const char *why,
		       const char *fallback)
{
	char logged[sizeof(rp->why)];

	ap_log_reason_end(logged, sizeof(logged));
	rp->refused = kind;
	snprintf(rp->why, sizeof(rp->why), "%s", why ? why : *logged ? logged : fallback);
}

int ap_report_checked(struct ap_report *rp, int code)
{
	if (rp->refused && rp->json && !rp->dry_run)
		(void)ap_report_plan(rp, "refused", NULL);
	if ((code == AP_EXIT_OK || rp->dry_run) && ap_report_plan_before(rp) < 0)
		return code == AP_EXIT_OK ? AP_EXIT_FAILED : code;
	return code;
}

void ap_report_outcome(const struct ap_report *rp, int code)
{
	struct ap_buf b = { 0 };
	int k = ap_buf_printf(&b, "{\"result\": \"%s\", \"exit\": %d",
			      rp->refused ? "refused" : code == AP_EXIT_OK ? "ok"
					 : code == AP_EXIT_TEMPFAIL ? "try-later" : "failed", code);

	if (k >= 0)
		k = refused_json(rp, &b);
	if (k >= 0)
		k = ap_buf_printf(&b, "}\n");
	if (k >= 0)
		fputs(b.data, stdout);
	ap_buf_clear(&b);
}

void ap_report_result(struct ap_report *rp, const struct ap_journal *j,
		      enum ap_apply_outcome out, int k, const char *applied)
{
	if (rp->json && rp->plan)
		(void)ap_report_plan(rp, ap_apply_outcome_to_string(out), j);
	switch (out) {
	case AP_APPLY_OK:
		ap_report_applied(rp, j);
		break;
	case AP_APPLY_RESTORED:
		ap_log_error(-EIO, "apply of %.12s failed: its files were put back; the applied "
				   "commit stays %.12s", j->to, *applied ? applied : "(none)");
		break;
	case AP_APPLY_FAILED:
		for (size_t i = 0; i < j->n_units; i++)
			if (j->units[i].state != AP_STEP_DONE)
				ap_log_error(-EIO, "owed for the next run: %s %s",
					     ap_unit_action_to_string(j->units[i].action),
					     j->units[i].unit);
		ap_log_error(k < 0 ? k : -EIO,
			     "apply of %.12s failed; the applied commit stays %.12s",
			     j->to, *applied ? applied : "(none)");
		break;
	default:
		break; /* rolled back: logged by the rollback */
	}
}
