# shellcheck shell=bash
# Failures of the manager itself in system scope, against the container's systemd (PID 1):
# a daemon-reload that PID 1 refuses (less than the 16 MiB it wants free on /run/systemd)
# leaves the new files installed and the reload and restart owed, which the next run does;
# a rollback whose own restart does not settle (the previous commit's unit is broken too, in
# a way that shows only when it starts again) trips the guard, which refuses the next commit
# until --override-guard. Sourced by run.sh after lib.sh.

# shellcheck source=../integration/failures.sh
. "$SYS_DIR/../integration/failures.sh"

unit_file() { cat "$SYS_ROOT/etc/systemd/system/$1" 2>/dev/null; }

# start NAME SETTLE: a clean host, web.service v1 committed and applied. Sets V1.
start() {
	ap_case "$1"
	sx_reset
	sx_origin
	sx_config "" "guard:
  settle: $2"
	sx_service web.service install "web v1"
	V1=$(sx_commit v1)
	sys_autopull "${1%% *}-v1" apply
	ap_expect_rc "$AP_CASE: first apply" 0 "${1%% *}-v1"
}

# run_free KIB: the container's /run (its tmpfs, where /run/systemd is) resized to leave KIB
# free; run_free with no argument gives it back its size at boot (RUN_SIZE).
run_free() {
	local size=$((RUN_SIZE))   # df pads its numbers
	if [ -n "${1:-}" ]; then
		size=$(sys_sh df -k --output=used /run | tail -n 1) || return 1
		size=$((size + $1))
	fi
	sys_sh mount -o "remount,size=${size}k" /run
}

t_reload_refused() {
	local web v2
	start "reload: a daemon-reload PID 1 refuses: the files stay, the reload is owed" 1s || return
	web=$(inv web.service)
	sx_service web.service install "web v2"
	v2=$(sx_commit v2)
	RUN_SIZE=$(sys_sh df -k --output=size /run | tail -n 1)
	run_free 8192 || { ap_fail "$AP_CASE: cannot shrink /run"; return; }
	sys_autopull refused apply
	run_free || ap_fail "$AP_CASE: cannot give /run its size back"
	ap_expect_rc "$AP_CASE: apply" 1 refused
	check "PID 1's refusal is shown" \
		grep -q "failed to reload the system manager: .*not enough space" "$AP_TMP/refused.err"
	check "the restart is named as owed" grep -q "owed for the next run: restart web.service" "$AP_TMP/refused.err"
	check "the new unit file is installed" eval 'unit_file web.service | grep -qx "Description=web v2"'
	check "PID 1 still has the old one (NeedDaemonReload=yes)" [ "$(sys_prop web.service NeedDaemonReload)" = yes ]
	reload_owed_checks "$web" "$V1" "$v2" again sys_autopull again apply
}

# needs_file DESCRIPTION: web.service that runs only while /etc/aptest-web-ok exists, as a
# service that needs a certificate the host provides; restarts by itself when it exits.
needs_file() {
	printf '[Unit]\nDescription=%s\nStartLimitIntervalSec=0\n\n[Service]\n' "$1"
	printf 'ExecStart=/bin/sh -c "test -e /etc/aptest-web-ok && exec sleep infinity"\n'
	printf 'Restart=always\nRestartSec=200ms\n\n[Install]\nWantedBy=multi-user.target\n'
}

# restarting UNIT: within 5 s, UNIT's NRestarts counts up while it is not active.
restarting() {
	local i=0
	while [ $i -lt 50 ]; do
		[ "$(sys_prop "$1" NRestarts)" -gt 0 ] && [ "$(sys_prop "$1" ActiveState)" != active ] && return 0
		sleep 0.1; i=$((i + 1))
	done
	return 1
}

t_rollback_does_not_settle() {
	local v2 v3 web
	start "rollback: a rollback whose own restart does not settle trips the guard" 2s || return
	sys_sh touch /etc/aptest-web-ok
	needs_file "web v2 needs web-ok" | sx_write systemd/web.service
	v2=$(sx_commit v2)
	sys_autopull rbf-v2 apply
	ap_expect_rc "$AP_CASE: v2 applies" 0 rbf-v2 || return
	check "web v2 runs" [ "$(sys_prop web.service ActiveState)" = active ]
	sys_sh rm -f /etc/aptest-web-ok
	printf '[Unit]\nDescription=web v3 broken\nStartLimitIntervalSec=0\n\n[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=200ms\n\n[Install]\nWantedBy=multi-user.target\n' |
		sx_write systemd/web.service
	v3=$(sx_commit v3-broken)
	web=$(inv web.service)
	sys_autopull rbf apply
	ap_expect_rc "$AP_CASE: apply" 1 rbf
	check "says the rollback failed, naming the commit" grep -q "ROLLBACK FAILED for ${v3:0:12}" "$AP_TMP/rbf.err"
	check "the guard is tripped" grep -q "rollback of ${v3:0:12} failed" "$SYS_ROOT$SX_STATE/guard-tripped"
	check "the commit is marked bad" grep -q "^$v3 " "$SYS_ROOT$SX_STATE/bad"
	check "applied stays v2" [ "$(applied)" = "$v2" ]
	check "the files are v2's again" eval 'unit_file web.service | grep -qx "Description=web v2 needs web-ok"'
	check "PID 1 runs v2's definition" [ "$(sys_prop web.service Description)" = "web v2 needs web-ok" ]
	check "web was restarted by the rollback" [ "$(inv web.service)" != "$web" ]
	check "and restarts in a loop (NRestarts counts, not active)" restarting web.service
	check "no journal left" [ ! -e "$AP_STATE_DIR/journal" ]
	sx_service web.service install "web v4"
	sx_commit v4 >/dev/null
	sx_snapshot rbf-before
	sys_autopull rbf2 apply
	ap_expect_rc "$AP_CASE: a newer commit is refused" 3 rbf2
	check "it says the guard is tripped" grep -q "tripped" "$AP_TMP/rbf2.err"
	sx_snapshot rbf-after
	check "host unchanged" cmp -s "$AP_TMP/rbf-before.snap" "$AP_TMP/rbf-after.snap"
	sys_autopull rbf3 --override-guard --reason "web fixed" apply
	ap_expect_rc "$AP_CASE: applied with --override-guard" 0 rbf3
	check "web v4 runs" [ "$(sys_prop web.service Description)" = "web v4" \
		-a "$(sys_prop web.service ActiveState)" = active ]
}

sx_pristine
t_reload_refused
t_rollback_does_not_settle
sx_reset
