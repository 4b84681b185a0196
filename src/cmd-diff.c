/* autopull diff: how the managed files on the host differ from the applied commit — a
 * unified diff for changed bytes, one line for a mode, owner or group that differs. Reads
 * only; drift: revert in the configuration puts them back on the next apply. Exits as
 * diff(1) and git diff --exit-code do: 0 no drift, 1 drift, 2 it could not compare. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "drift.h"
#include "exitcode.h"
#include "install.h"
#include "log.h"
#include "secrets.h"
#include "util.h"

static int show_bytes(struct ap_ctx *c, const struct ap_expected *e, struct ap_buf *out)
{
	struct ap_host_file hf = { 0 };
	_cleanup_free_ char *want = NULL, *diff = NULL;
	size_t want_len = 0;
	int r = ap_repo_read_blob(c->repo, e->oid, AP_MAX_BLOB_SIZE, &want, &want_len);

	if (r >= 0)
		r = ap_install_read_host(e->path, e->root_len, true, &hf);
	/* The patch adds git's "a/" and "b/" itself: a/caddy/Caddyfile, b/etc/caddy/Caddyfile. */
	if (r >= 0)
		r = ap_repo_text_diff(want, want_len, e->repo_path, hf.present ? hf.data : "",
				      hf.present ? hf.len : 0, e->path + (*e->path == '/'), &diff);
	/* Both sides are text nobody vetted (the repository's, the host's): newlines and tabs
	 * are the diff's own, every other control character is escaped. */
	if (r >= 0)
		r = ap_buf_escape(out, diff, AP_ESCAPE_KEEP_NEWLINE | AP_ESCAPE_KEEP_TAB);
	ap_host_file_clear(&hf);
	return r;
}

int ap_cmd_diff(const struct ap_opts *o, char **args)
{
	struct ap_expected_set set = { 0 };
	struct ap_drift d = { 0 };
	struct ap_buf b = { 0 };
	char applied[AP_OID_HEXSZ + 1];
	struct ap_ctx c;
	int code = ap_ctx_open(o, AP_CTX_DECRYPTS, &c), r = 0;

	if (code != AP_EXIT_OK)
		return code;
	code = AP_EXIT_DIFF_TROUBLE;
	if (ap_state_read_applied(c.st, applied) < 0) {
		printf("nothing applied yet\n");
		code = AP_EXIT_OK;
		goto out;
	}
	if (!ap_ctx_repo(&c) || ap_drift_expected(&c, applied, &set) < 0 ||
	    ap_drift_check(&c, applied, &d) < 0)
		goto out;
	/* Paths and file contents are escaped (ap_buf_linef, ap_buf_escape). */
	for (size_t i = 0; r >= 0 && i < d.n; i++) {
		const struct ap_expected *e = NULL;

		for (size_t k = 0; k < set.n && !e; k++)
			if (strcmp(set.v[k].path, d.v[i].path) == 0)
				e = &set.v[k];
		r = ap_buf_linef(&b, "# %s (from %s at %.12s): %s differs", d.v[i].path,
				 d.v[i].repo_path, applied, d.v[i].what);
		if (r >= 0 && e && strstr(d.v[i].what, "mode"))
			r = ap_buf_linef(&b, "#   mode should be %04o", (unsigned)e->mode);
		/* a secret's content is shown nowhere but at its destination */
		if (r >= 0 && e && ap_secrets_is_secret(c.cfg, e->repo_path))
			r = strstr(d.v[i].what, "bytes") ? ap_buf_linef(&b, "#   secret changed") : r;
		else if (r >= 0 && e && (strstr(d.v[i].what, "bytes") ||
					 strstr(d.v[i].what, "missing")))
			r = show_bytes(&c, e, &b);
	}
	if (r >= 0 && d.n == 0)
		r = ap_buf_linef(&b, "no drift: every managed file is as %.12s has it", applied);
	if (b.len && fwrite(b.data, 1, b.len, stdout) != b.len)
		r = -EIO;
	if (r >= 0)
		code = d.n ? AP_EXIT_DIFFERS : AP_EXIT_OK;
out:
	ap_buf_clear(&b);
	ap_drift_clear(&d);
	ap_expected_set_clear(&set);
	ap_ctx_done(&c);
	return code;
}
