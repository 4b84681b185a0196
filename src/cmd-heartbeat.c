/* autopull heartbeat: one sample of the watched units into the history and the metrics, run
 * every 30 s by autopull-heartbeat.timer. Under the timer its output is the journal's: one
 * line when a verdict changed, nothing when none did (2880 runs a day). A person at a
 * terminal gets the whole verdict, --json the document. */
#include <stdio.h>
#include <unistd.h>

#include "cmd.h"
#include "exitcode.h"
#include "guard.h"

int ap_cmd_heartbeat(const struct ap_opts *o, char **args)
{
	struct ap_guard_result g = { 0 };
	struct ap_buf b = { 0 };
	struct ap_ctx c;
	int code = ap_ctx_open(o, 0, &c);

	if (code != AP_EXIT_OK)
		goto out;
	code = AP_EXIT_FAILED;
	if (!ap_ctx_bus(&c) || ap_guard_heartbeat(c.bus, c.st, c.cfg, true, &g) < 0)
		goto out;
	if (o->json && ap_buf_printf(&b, "{\"guard\": ") < 0)
		goto out;
	if (!o->json && !isatty(STDOUT_FILENO)) {
		if (g.changed && ap_guard_format_line(&g, &b) < 0)
			goto out;
	} else if (ap_guard_format(&g, o->json, &b) < 0 ||
		   (o->json && ap_buf_printf(&b, "}\n") < 0))
		goto out;
	if (b.data)
		fputs(b.data, stdout);
	code = AP_EXIT_OK;
out:
	ap_buf_clear(&b);
	ap_guard_result_clear(&g);
	ap_ctx_done(&c);
	return code;
}
