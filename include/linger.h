/* Lingering: in user scope the user's manager, and the autopull timer it runs, lives only as
 * long as the user has a session unless logind lingers for the user (loginctl enable-linger).
 * Layer 2: reads logind's state for the verbs that describe a setup. */
#pragma once
#include "config.h"

/* In user scope: 0 when logind lingers for the calling user, 1 when it does not (a warning
 * with the exact `loginctl enable-linger USER` line is logged), -errno when the user is not
 * known. System scope: 0. */
int ap_linger_check(enum ap_scope scope);
