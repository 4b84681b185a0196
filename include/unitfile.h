/* Pure helpers over unit names and unit-file text: what kind of unit a name is, whether a
 * file carries [Install] information, the X-AutoPull-OnChange= policy, and whether two
 * versions differ only in their [Install] section. No I/O. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

enum ap_onchange { AP_ONCHANGE_RESTART, AP_ONCHANGE_RELOAD, AP_ONCHANGE_NONE, AP_ONCHANGE_INVALID };

/* "foo.service", "foo@.service", "foo@a.service": name chars and a known type suffix. */
bool ap_unit_name_is_valid(const char *name);
/* "foo@.service" */
bool ap_unit_name_is_template(const char *name);
/* "foo@a.service" → "foo@.service" in ret (size at least strlen(name)+1); false if not an
 * instance. */
bool ap_unit_name_template_of(const char *name, char *ret, size_t size);
/* The unit types whose running instance a restart refreshes (service, socket, timer, path). */
bool ap_unit_name_is_restartable(const char *name);

/* True when the [Install] section has WantedBy=, RequiredBy=, UpheldBy=, Alias= or Also=. */
bool ap_unitfile_has_install(const char *text, size_t len);
/* X-AutoPull-OnChange= in [Unit]; AP_ONCHANGE_RESTART when absent. */
enum ap_onchange ap_unitfile_onchange(const char *text, size_t len);
/* True when old and new are equal once their [Install] sections are ignored. */
bool ap_unitfile_only_install_changed(const char *old, size_t old_len, const char *new_text,
				      size_t new_len);
