/* autopull pin REV --reason TEXT: deploys freeze at REV (applied now if needed) until
 * autopull unpin. The freeze itself is the state file "pin", which the apply honours
 * (engine.c). */
#include <errno.h>
#include <stdio.h>

#include "cmd.h"
#include "engine.h"
#include "exitcode.h"
#include "log.h"
#include "record.h"
#include "util.h"

int ap_cmd_pin(const struct ap_opts *o, char **args)
{
	struct ap_opts opts = *o;
	struct ap_ctx c;
	int code;

	if (!o->reason || !*o->reason) {
		fprintf(stderr, "autopull: pin needs --reason TEXT (it is recorded) (see autopull --help)\n");
		return AP_EXIT_USAGE;
	}
	opts.commit = args[0];
	opts.pin = true;
	opts.dry_run = false;
	code = ap_ctx_open(&opts, AP_CTX_DECRYPTS, &c);
	if (code == AP_EXIT_OK)
		code = ap_engine_apply(&c);
	ap_ctx_done(&c);
	return code;
}

int ap_cmd_unpin(const struct ap_opts *o, char **args)
{
	struct ap_pin pin = { 0 };
	struct ap_ctx c;
	int code = ap_ctx_open(o, 0, &c), k;

	if (code == AP_EXIT_OK)
		code = ap_ctx_lock(&c);
	if (code != AP_EXIT_OK)
		goto out;
	k = ap_state_read_pin(c.st, &pin);
	if (k == -ENOENT) {
		printf("not pinned\n");
		goto out;
	}
	if (k < 0 && k != -EBADMSG) {
		code = AP_EXIT_FAILED;
		goto out;
	}
	if (ap_record_unpin(&c, pin.commit, o->reason) < 0) {
		code = AP_EXIT_FAILED;
		goto out;
	}
	printf("unpinned%s%.12s: the next apply deploys the tip of '%s'\n",
	       *pin.commit ? " from " : "", pin.commit, c.cfg->branch);
out:
	ap_pin_clear(&pin);
	ap_ctx_done(&c);
	return code;
}
