/* Pure helpers over unit names and unit-file text: what kind of unit a name is, whether a
 * file carries [Install] information, the X-AutoPull-OnChange= policy, and whether two
 * versions differ only in their [Install] section. No I/O. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

enum ap_onchange { AP_ONCHANGE_RESTART, AP_ONCHANGE_RELOAD, AP_ONCHANGE_NONE, AP_ONCHANGE_INVALID };

/* systemd's UNIT_NAME_MAX: the longest unit name plus its NUL. */
#define AP_UNIT_NAME_MAX 256

/* "foo.service", "foo@.service", "foo@a.service", "dev-sda1.device", "foo\x2dbar.service":
 * systemd's unit_name_is_valid() (ASCII letters and digits and ":-_.\\" before a known type
 * suffix, '@' not first, shorter than AP_UNIT_NAME_MAX), except that a second '@' is refused
 * ("foo@a@b.service", "foo@@.service"; systemd takes them as instances). */
bool ap_unit_name_is_valid(const char *name);
/* True when name ends in ".TYPE" for a known unit type: meant as a unit, valid or not (so
 * "my app.service" is refused as a bad unit name rather than ignored as some other file). */
bool ap_unit_name_is_valid_candidate(const char *name);
/* True when name is an instance of a service that systemd started for one connection of an
 * Accept=yes socket: "PREFIX@INSTANCE.service" where INSTANCE is what systemd's
 * instance_from_socket() writes, "NR-PEER" or (newer systemd) "NR-COOKIE-PEER", with NR and
 * COOKIE decimal and PEER one of "PID-UID", "PID_PIDFDID-UID" (AF_UNIX), "unknown" (AF_UNIX
 * peer in another namespace), "ADDR:PORT-ADDR:PORT" (IPv4, IPv6) or "CID:PORT-CID:PORT"
 * (AF_VSOCK). The name alone cannot tell such an instance from a template instance that an
 * operator happened to name like one ("backup@7-1000-5.service"); numbers with leading zeros
 * ("backup@2024-01-31.service") are never systemd's. */
bool ap_unit_instance_is_per_connection(const char *name);
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
/* True when old and new mean the same to systemd's parser: equal once comment lines and
 * empty lines are dropped and each logical line is stripped of surrounding whitespace. The
 * lines are read exactly as systemd reads them (see unitfile.c): a comment line inside a
 * backslash continuation is skipped and the continuation goes on, while an empty line ends
 * it, so adding or removing an empty line there is a change. False when memory runs out. */
bool ap_unitfile_only_comments_changed(const char *old, size_t old_len, const char *new_text,
				       size_t new_len);
/* 0 when data can be a unit file; -EINVAL when it holds a NUL byte (systemd's reader ends
 * the line there) or is not valid UTF-8 (systemd ignores such a line with a warning), with
 * *ret_reason ("contains a NUL byte", "is not valid UTF-8"). */
int ap_unitfile_check_text(const char *data, size_t len, const char **ret_reason);
/* True when old and new differ at most in Description= and Documentation= of [Unit]: the
 * running process is the same, a daemon-reload is enough. False for a text with a backslash
 * or a carriage return anywhere (a continuation could carry more than metadata). */
bool ap_unitfile_only_metadata_changed(const char *old, size_t old_len, const char *new_text,
				       size_t new_len);
/* X-AutoPull-Health= in [Unit] (the last one wins, as in systemd; an empty one resets):
 * 1 with its value (stripped, a copy) in *ret and its line number (from 1) in *ret_line,
 * 0 when absent, -ENOMEM. */
int ap_unitfile_health(const char *text, size_t len, char **ret, unsigned *ret_line);
/* RefuseManualStart= and RefuseManualStop= of [Unit], as systemd parses them: each flag is
 * set to the last valid assignment and left alone without one. */
/* The last User= of the [Service] section into ret (size bytes): 1 when there is one the host
 * must know (not with DynamicUser=yes, not one with a specifier), 0 when none,
 * -ENAMETOOLONG. */
int ap_unitfile_user(const char *text, size_t len, char *ret, size_t size);
void ap_unitfile_refusals(const char *text, size_t len, bool *refuse_start, bool *refuse_stop);
/* True when old and new are equal once their [Install] sections are ignored. */
bool ap_unitfile_only_install_changed(const char *old, size_t old_len, const char *new_text,
				      size_t new_len);
