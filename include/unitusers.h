/* The users the units of a plan run as (User=), and the owners its tmpfiles.d lines give,
 * must exist when they are needed: on the host already, or made by a sysusers.d file of the
 * same plan (its setup runs first). A unit that would fail at start with status 217/USER, or
 * a tmpfiles.d line that would fail to resolve its owner, is refused before the host changes.
 * System scope only: a user manager runs every unit as its own user. Layer 2: reads the
 * plan's files through install's content source and asks the user database. */
#pragma once
#include "config.h"
#include "install.h"
#include "model.h"

/* 0, or -EINVAL (logged, naming the file, the unit or line, and the name) when a name is
 * unknown; other -errno when a file could not be read. */
int ap_unitusers_check(const struct ap_plan *p, const struct ap_install_source *src,
		       enum ap_scope scope);
