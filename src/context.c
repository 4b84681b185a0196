/* The verbs' shared context (see context.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "context.h"
#include "exitcode.h"
#include "log.h"
#include "secrets.h"
#include "util.h"

#define EXAMPLE_CONFIG "/etc/autopull/autopull.yaml.example"

static int load_config(const struct ap_opts *o, struct ap_config **ret)
{
	_cleanup_free_ char *def = NULL;
	const char *path = o->config_path;
	int r;

	if (!path) {
		r = ap_config_default_path(o->user ? AP_SCOPE_USER : AP_SCOPE_SYSTEM, &def);
		if (r < 0)
			return ap_log_error(r, "cannot find the configuration file: %s",
					    strerror(-r));
		path = def;
	}
	r = ap_config_load(path, o->user, ret);
	if (r == -ENOENT)
		ap_log_error(r, "hint: %s; copy %s there, or pass -c FILE%s", o->config_path
				    ? "check the path given with -c"
				    : "there is no configuration yet",
			     EXAMPLE_CONFIG, o->user ? ""
			     : " (or --user for your own service manager)");
	return r;
}

int ap_ctx_open(const struct ap_opts *o, unsigned flags, struct ap_ctx *ret)
{
	*ret = (struct ap_ctx){ .o = o };
	if (load_config(o, &ret->cfg) < 0)
		return AP_EXIT_USAGE;
	if ((flags & AP_CTX_DECRYPTS) && ap_config_check_identity(ret->cfg) < 0)
		return AP_EXIT_USAGE;
	if (flags & AP_CTX_CONFIG_ONLY)
		return AP_EXIT_OK;
	return ap_state_open(ret->cfg->state_dir, &ret->st) < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
}

void ap_ctx_done(struct ap_ctx *c)
{
	ap_fleet_free(c->fleet);
	if (c->bus)
		ap_bus_free(c->bus);
	if (c->repo)
		ap_repo_free(c->repo);
	if (c->st)
		ap_state_free(c->st);
	if (c->cfg)
		ap_config_free(c->cfg);
	*c = (struct ap_ctx){ 0 };
}

int ap_ctx_lock(struct ap_ctx *c)
{
	int k = ap_state_lock(c->st, c->o->wait_sec);

	/* A run killed while it held plaintext (decrypting, validating) left it behind. */
	if (k >= 0)
		k = ap_secrets_remove_leftovers(c->cfg);
	return k == -EAGAIN ? AP_EXIT_TEMPFAIL : k < 0 ? AP_EXIT_FAILED : AP_EXIT_OK;
}

struct ap_bus *ap_ctx_bus(struct ap_ctx *c)
{
	if (!c->bus_tried) {
		c->bus_tried = true;
		if (ap_bus_open(c->cfg->scope, &c->bus) < 0)
			c->bus = NULL;
	}
	return c->bus;
}

struct ap_fleet *ap_ctx_fleet(struct ap_ctx *c)
{
	if (!c->fleet_tried && c->cfg->fleet.enabled) {
		c->fleet_tried = true;
		if (ap_fleet_open(&c->cfg->fleet, &c->fleet) < 0)
			c->fleet = NULL;
	}
	return c->fleet;
}

struct ap_repo *ap_ctx_repo(struct ap_ctx *c)
{
	_cleanup_free_ char *mirror = NULL;

	if (c->repo)
		return c->repo;
	mirror = ap_strdupf("%s/repo.git", c->cfg->state_dir);
	if (!mirror || ap_repo_open(mirror, &c->repo) < 0)
		c->repo = NULL;
	return c->repo;
}
