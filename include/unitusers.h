/* The users the units of a plan run as (User=) must exist when they start: on the host
 * already, or made by a sysusers.d file of the same plan (its setup runs before any unit
 * starts). A unit that would fail at start with status 217/USER is refused before the host
 * changes. System scope only: a user manager runs every unit as its own user. Layer 2: reads
 * the plan's files through install's content source and asks the user database. */
#pragma once
#include "config.h"
#include "install.h"
#include "model.h"

/* 0, or -EINVAL (logged, naming the unit, its file and the user) when a unit's User= is
 * unknown; other -errno when a file could not be read. */
int ap_unitusers_check(const struct ap_plan *p, const struct ap_install_source *src,
		       enum ap_scope scope);

/* Pure: adds the user names a sysusers.d text creates ("u NAME ...") to *names. */
int ap_unitusers_sysusers_names(const char *text, size_t len, char ***names);
