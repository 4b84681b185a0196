/* autopull apply (and --dry-run): the transaction lives in engine.c; a manual apply of a
 * chosen commit pins it (engine.c decides it, record.c writes it, source.c honours it). */
#include "cmd.h"
#include "engine.h"
#include "exitcode.h"

int ap_cmd_apply(const struct ap_opts *o, char **args)
{
	struct ap_opts opts = *o;
	struct ap_ctx c;
	int code;

	/* A manual apply of a chosen commit is a rollback or a hold: later ticks must not undo
	 * it (the pin, see cmd-pin.c). */
	opts.pin = o->commit && !o->dry_run;
	code = ap_ctx_open(&opts, AP_CTX_DECRYPTS, &c);
	if (code == AP_EXIT_OK)
		code = ap_engine_apply(&c);
	ap_ctx_done(&c);
	return code;
}
