# shellcheck shell=bash
# Apply under failure, against the real user manager: the guard fails closed, a failed write
# or an obstacle never wedges later fixes, nothing the operator wrote is lost, a retry redoes
# only what is owed, ownership survives a rollback, unit semantics (re-enable, timers going
# away, vendor drop-ins), and messages that name the right thing. Each case reproduces a
# defect of an earlier version. Sourced by run.sh after lib.sh (and fixtures.sh).

FX_SETTLE=0s
# shellcheck source=failures.sh
. "$AP_DIR/failures.sh"

svc() {
	{
		printf '[Unit]\nDescription=%s\nStartLimitIntervalSec=0\n\n[Service]\n' "${2:-$1 v1}"
		printf 'ExecStart=/bin/sleep infinity\nExecReload=/bin/true\n'
		[ -n "${4:-}" ] && printf '%s\n' "$4"
		[ "${3:-}" = install ] && printf '\n[Install]\nWantedBy=%s\n' "${5:-default.target}"
	} | fx_write "systemd/$1"
}

# start NAME [EXTRA_YAML]: fresh slate, base committed and applied. Sets V1.
start() {
	ap_case "$1"
	fx_reset
	fx_origin file || { ap_fail "$1: fixture origin"; return 1; }
	if [ -n "${2:-}" ]; then FX_SETTLE= fx_config "$FX_URL" "" "$2"; else fx_config "$FX_URL"; fi
	fx_svc_tree svc
	V1=$(fx_commit v1) || { ap_fail "$1: commit v1"; return 1; }
	fx_apply "${1//[^A-Za-z0-9]/-}-v1"
}

snapshot() {
	(cd / && find "$AP_UNIT_DIR" "$FX_ETC" \( -type f -o -type l \) -printf '%p %m %u %g %l\n' 2>/dev/null |
		sort | while read -r p m u g l; do echo "$p $m $u $g $l $(sha256sum <"$p" 2>/dev/null | cut -c1-16)"; done) \
		>"$AP_TMP/$1.snap"
}
same_snap() { cmp -s "$AP_TMP/$1.snap" "$AP_TMP/$2.snap"; }

# refused NAME RC WHAT PATTERN: an apply refused with exit RC, a message matching PATTERN, and
# the host unchanged.
refused() {
	snapshot "$1-before"
	ap_autopull "$1" --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: $3" "$2" "$1"
	check "the message: $4" grep -q "$4" "$AP_TMP/$1.err"
	snapshot "$1-after"
	check "host unchanged" same_snap "$1-before" "$1-after"
}

# -------------------------------------------------------------------------------------------
t_guard_fails_closed() {
	start "1: the guard fails closed (tripped + unreadable history, unwritable metrics)" || return
	svc web.service "web v2" install
	fx_commit v2 >/dev/null
	truncate -s 1G "$AP_STATE_DIR/heartbeat"
	chown "$AP_UID:$AP_GID" "$AP_STATE_DIR/heartbeat"
	echo "rollback of 0123 failed: unit 'x' failed" | ap_user_write "$AP_STATE_DIR/guard-tripped"
	snapshot tripped-before
	ap_autopull tripped --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: a tripped guard refuses whatever the history" 3 tripped
	check "says it is tripped and how to proceed" grep -q "tripped.*" "$AP_TMP/tripped.err"
	check "names --override-guard" grep -q "override-guard --reason" "$AP_TMP/tripped.err"
	snapshot tripped-after
	check "host unchanged" same_snap tripped-before tripped-after
	check "the unreadable history was moved aside" [ -e "$AP_STATE_DIR/heartbeat.old" ]
	check "and a new one written" [ "$(stat -c %s "$AP_STATE_DIR/heartbeat")" -lt 100000 ]
	ap_autopull over --user -c "$AP_CFG" --override-guard --reason "cleared by hand" apply
	ap_expect_rc "$AP_CASE: override clears the trip" 0 over
	check "guard-tripped removed" [ ! -e "$AP_STATE_DIR/guard-tripped" ]
	# The heartbeat verb heals an oversized history too (it exited 1 forever).
	truncate -s 1G "$AP_STATE_DIR/heartbeat"
	ap_autopull hb --user -c "$AP_CFG" heartbeat
	ap_expect_rc "$AP_CASE: heartbeat with an oversized history" 0 hb
	# Unwritable metrics: a warning, and the guard still refuses a loop.
	install -d -m 0700 -o root /root/aptest-metrics
	FX_SETTLE= fx_config "$FX_URL" "" "guard:
  watch: [loopy.service]
  max_restarts: 1
  window: 1m
  metrics: /root/aptest-metrics/autopull.prom"
	printf '[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=200ms\n' |
		fx_write systemd/loopy.service
	fx_commit loopy >/dev/null
	ap_autopull loopy --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: an apply with unwritable metrics works" 0 loopy
	check "metrics failure is a warning" grep -q "failed to write metrics" "$AP_TMP/loopy.err"
	ap_systemctl start loopy.service
	sleep 1.5
	svc web.service "web v3" install
	fx_commit v3 >/dev/null
	ap_autopull loopy2 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: the guard still refuses a loop" 3 loopy2
	check "the loop is named" grep -q "loopy.service' is looping" "$AP_TMP/loopy2.err"
	ap_systemctl stop loopy.service
	rm -rf /root/aptest-metrics
}

t_obstacle_does_not_wedge() {
	local v3
	start "2: an obstacle on the host is refused before any change, and a fix still applies" || return
	ap_as_user mkdir -p "$FX_ETC/env/extra.env"
	printf 'X=1\n' | fx_write env/extra.env
	svc web.service "web v2" install
	fx_commit v2 >/dev/null
	refused wedge1 4 "a directory where a file goes (web.service not written either)" \
		"extra.env.*is a directory"
	check "no journal" [ ! -e "$AP_STATE_DIR/journal" ]
	fx_rm env/extra.env
	v3=$(fx_commit v3-drop-extra)
	ap_autopull wedge2 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: the commit that drops the file applies" 0 wedge2
	check "applied = the fix" [ "$(applied)" = "$v3" ]
	check "web v2 in place" [ "$(ap_unit_prop web.service Description)" = "web v2" ]
}

t_takeover() {
	start "3: an unmanaged host file is not overwritten silently; takeover keeps the original" || return
	echo precious | ap_user_write "$FX_ETC/env/manual.env"
	printf 'REPO=1\n' | fx_write env/manual.env
	fx_commit manual >/dev/null
	ap_autopull take1 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: refused without takeover" 4 take1
	check "names the file and the fix" grep -q "manual.env.*takeover: true" "$AP_TMP/take1.err"
	check "the operator's file is intact" grep -qx precious "$FX_ETC/env/manual.env"
	fx_config "$FX_URL"
	sed -i 's|    restart: \[worker.service\]|    restart: [worker.service]\n    takeover: true|' "$AP_CFG"
	ap_autopull take2 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: takeover: true replaces it" 0 take2
	check "repo content installed" grep -qx REPO=1 "$FX_ETC/env/manual.env"
	check "the original is kept in adopted/" grep -rqx precious "$AP_STATE_DIR/adopted"
	# Later applies prune backups, never the original.
	svc web.service "web v2" install
	fx_commit v2 >/dev/null
	fx_apply take3 || return
	svc web.service "web v3" install
	fx_commit v3 >/dev/null
	fx_apply take4 || return
	check "the original survives later applies" grep -rqx precious "$AP_STATE_DIR/adopted"
	fx_rm env/manual.env
	fx_commit drop-manual >/dev/null
	ap_autopull take5 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: the repo drops the file" 0 take5
	check "the operator's original is back" grep -qx precious "$FX_ETC/env/manual.env"
	check "and no longer owned" not grep -q "/manual.env$" "$AP_STATE_DIR/owned"
}

t_retry_only_owed() {
	local web
	start "4: a failed job is retried alone; healthy units are not restarted every tick" || return
	svc web.service "web v2" install
	svc worker.service "worker broken" install "ExecStartPre=/bin/false"
	fx_commit v2 >/dev/null
	ap_autopull own1 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: first try" 1 own1
	web=$(inv web.service)
	check "web v2 running" [ "$(ap_unit_prop web.service Description)" = "web v2" ]
	ap_autopull own2 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: retry" 1 own2
	check "the retry did not restart web.service" [ "$(inv web.service)" = "$web" ]
	check "the retry started worker again" grep -q "^start worker.service" "$AP_TMP/own2.out"
	check "the message says what is owed" grep -q "owed for the next run: start worker.service" "$AP_TMP/own2.err"
}

t_write_fails_midway() {
	start "5: a write failing half-way puts back what was written" || return
	fx_envfile v2
	fx_dropin web.service 10-env.conf v2
	fx_commit v2 >/dev/null
	snapshot mid-before
	chattr +i "$AP_UNIT_DIR/web.service.d/10-env.conf"
	ap_autopull mid --user -c "$AP_CFG" apply
	chattr -i "$AP_UNIT_DIR/web.service.d/10-env.conf"
	ap_expect_rc "$AP_CASE: apply" 1 mid
	check "names the file that failed" grep -q "10-env.conf.*Operation not permitted" "$AP_TMP/mid.err"
	check "says the files were put back" grep -q "files were put back" "$AP_TMP/mid.err"
	snapshot mid-after
	check "host byte-identical (env file restored)" same_snap mid-before mid-after
	check "no unit left needing a daemon-reload" [ "$(ap_unit_prop web.service NeedDaemonReload)" = no ]
	check "applied unchanged" [ "$(applied)" = "$V1" ]
	check "no journal" [ ! -e "$AP_STATE_DIR/journal" ]
	ap_autopull mid2 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: next run" 0 mid2
	check "drop-in v2 in effect" [ "$(ap_unit_prop web.service Environment)" = "APTEST_DROPIN=v2" ]
}

# A run killed once its files are written (AUTOPULL_TEST_CRASH; the point must be passed,
# AUTOPULL_TEST_CRASH_LOG says so) owes web's restart; the next run finds a newer tip and
# must plan from the journal's commit to it and still do what the killed run owed.
t_superseded_keeps_owed() {
	local web worker v2 v3 j=$AP_STATE_DIR/journal log=$AP_HOME/crash-points/case6
	start "6: a kill after the files, then a new commit: the owed restart is not lost" || return
	web=$(inv web.service) worker=$(inv worker.service)
	svc web.service "web v2" install
	v2=$(fx_commit v2)
	ap_as_user mkdir -p "${log%/*}"
	rm -f "$log"
	ap_as_user env AUTOPULL_TEST_CRASH=after-files AUTOPULL_TEST_CRASH_LOG="$log" \
		timeout -k 5 "$AP_CMD_TIMEOUT" "$AP_BIN" --user -c "$AP_CFG" apply \
		>"$AP_TMP/kill6.out" 2>"$AP_TMP/kill6.err" </dev/null
	echo $? >"$AP_TMP/kill6.rc"
	ap_expect_rc "$AP_CASE: the run is killed" 137 kill6
	check "killed at after-files, the last point it passed" [ "$(tail -n 1 "$log" 2>/dev/null)" = after-files ]
	check "the journal: $(short "$V1") to $(short "$v2")" grep -qx "to $v2" "$j"
	check "the journal: the files are written" grep -qE "^done( [a-z-]+)* files( |$)" "$j"
	check "the journal: web's restart is owed" grep -qx "unit restart pending new web.service" "$j"
	check "killed before the restart" [ "$(inv web.service)" = "$web" ]
	check "applied still V1" [ "$(applied)" = "$V1" ]
	svc worker.service "worker v3" install
	v3=$(fx_commit v3)
	ap_autopull sup --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: next run with a new tip" 0 sup
	check "it plans from $(short "$v2"), where the killed run left the files" \
		grep -q "^plan $(short "$v2") -> $(short "$v3")" "$AP_TMP/sup.out"
	check "with web's restart, owed" grep -qE "restart +web.service +because journal of $(short "$v2")" "$AP_TMP/sup.out"
	check "the owed restart of web happened" [ "$(ap_unit_prop web.service Description)" = "web v2" ]
	check "web has a new InvocationID" [ "$(inv web.service)" != "$web" ]
	check "worker restarted for v3" [ "$(inv worker.service)" != "$worker" ]
	check "applied = v3" [ "$(applied)" = "$v3" ]
	check "no journal left" [ ! -e "$j" ]
}

t_rollback_keeps_owner() {
	local grp=$AP_USER-grp
	start "7: a rollback restores owner, group and mode" "guard:
  settle: 2s" || return
	getent group "$grp" >/dev/null || groupadd "$grp"
	usermod -aG "$grp" "$AP_USER"
	chgrp "$grp" "$FX_ETC/env/app.env" && chmod 0640 "$FX_ETC/env/app.env"
	snapshot own-before
	fx_envfile v2
	{
		printf '[Unit]\nDescription=web broken\nStartLimitIntervalSec=0\n[Service]\n'
		printf 'ExecStart=/bin/sh -c "exit 1"\nRestart=always\nRestartSec=200ms\n'
		printf '[Install]\nWantedBy=default.target\n'
	} | fx_write systemd/web.service
	fx_commit v2-broken >/dev/null
	ap_autopull rb --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: the breaking commit is rolled back" 1 rb
	check "rolled back" grep -q "rolled back" "$AP_TMP/rb.err"
	snapshot own-after
	check "bytes, mode, owner and group as before" same_snap own-before own-after
	check "group is still $grp" [ "$(stat -c %G "$FX_ETC/env/app.env")" = "$grp" ]
}

t_symlinked_root() {
	local real=$AP_HOME/real-etc link=$AP_HOME/etc-link
	start "8: a destination under a symlinked configured root (merged /lib, stow)" || return
	rm -rf "$real" "$link"
	ap_as_user mkdir -p "$real"
	ap_as_user ln -s "$real" "$link"
	FX_SETTLE= fx_config "$FX_URL"
	printf '  - src: conf/\n    dest: %s/conf/\n' "$link" >>"$AP_CFG"
	printf 'a=1\n' | fx_write conf/a.conf
	fx_commit conf1 >/dev/null
	ap_autopull sl1 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: first install through the root's symlink" 0 sl1
	check "installed" grep -qx a=1 "$real/conf/a.conf"
	printf 'a=2\n' | fx_write conf/a.conf
	fx_commit conf2 >/dev/null
	ap_autopull sl2 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: replacing it (backup follows the root too)" 0 sl2
	check "replaced" grep -qx a=2 "$real/conf/a.conf"
	rm -rf "$real" "$link"
}

t_reenable() {
	start "10: an [Install]-only change re-enables: the old .wants link goes" || return
	printf '[Unit]\nDescription=aptest target\n' | fx_write systemd/aptest.target
	fx_commit target >/dev/null
	fx_apply reen0 || return
	local web
	web=$(inv web.service)
	svc web.service "web v1" install "" aptest.target
	fx_commit v2-install-only >/dev/null
	ap_autopull reen --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply" 0 reen
	check "old link removed" [ ! -L "$AP_UNIT_DIR/default.target.wants/web.service" ]
	check "new link made" [ -L "$AP_UNIT_DIR/aptest.target.wants/web.service" ]
	check "not restarted" [ "$(inv web.service)" = "$web" ]
}

t_timer_and_service_go() {
	start "10: deleting a timer and its service leaves nothing failed behind" || return
	# A timer that fires all the time: between its service's file going and the timer's
	# stop, an elapse finds no unit to start.
	printf '[Unit]\nDescription=busy tick\n[Timer]\nOnActiveSec=100ms\nOnUnitActiveSec=100ms\nAccuracySec=1ms\n[Install]\nWantedBy=timers.target\n' |
		fx_write systemd/tick.timer
	fx_commit busy-tick >/dev/null
	fx_apply tick0 || return
	sleep 0.5
	fx_rm systemd/tick.timer
	fx_rm systemd/tick.service
	fx_commit drop-tick >/dev/null
	ap_autopull tick --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply" 0 tick
	check "tick.timer not failed" [ "$(ap_unit_prop tick.timer ActiveState)" != failed ]
	check "no failed units at all" [ -z "$(ap_systemctl list-units --state=failed --plain --no-legend)" ]
}

t_vendor_dropin_verified() {
	start "10: a drop-in for a vendor unit is verified against the vendor's file" || return
	install -d /etc/systemd/user
	printf '[Unit]\nDescription=vendor\n[Service]\nExecStart=/bin/sleep infinity\n' \
		>/etc/systemd/user/aptest-vendor.service
	printf '[Service]\nExecStart=\nExecStart=/nonexistent/aptest-bin\n' |
		fx_write systemd/aptest-vendor.service.d/10-bad.conf
	fx_commit vendor >/dev/null
	snapshot vendor-before
	ap_autopull vendor --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: refused" 4 vendor
	check "the reason is shown" grep -q "is not executable" "$AP_TMP/vendor.err"
	check "it names the drop-in" grep -q "aptest-vendor.service.d/10-bad.conf" "$AP_TMP/vendor.err"
	snapshot vendor-after
	check "host unchanged" same_snap vendor-before vendor-after
	rm -f /etc/systemd/user/aptest-vendor.service
}

t_messages() {
	local v2 v3
	start "11: messages and exit codes name the right thing" || return
	svc worker.service "worker broken" install "ExecStartPre=/bin/false"
	v2=$(fx_commit v2)
	ap_autopull msg1 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: failing job" 1 msg1
	svc web.service "web v3" install
	v3=$(fx_commit v3)
	ap_autopull msg2 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: a newer commit, still failing" 1 msg2
	check "names the commit being applied" grep -q "apply of $(short "$v3") failed" "$AP_TMP/msg2.err"
	check "names the applied commit" grep -q "applied commit stays $(short "$V1")" "$AP_TMP/msg2.err"
	svc worker.service "worker v4" install
	fx_commit v4 >/dev/null
	fx_apply msg3 || return
	# an oversized blob is a repo problem: exit 4, not a retry every tick
	head -c $((17 * 1024 * 1024)) /dev/zero | fx_write env/huge.env
	fx_commit huge >/dev/null
	ap_autopull huge --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: a blob over 16 MiB" 4 huge
	check "says it is too large" grep -q "huge.env' is larger than" "$AP_TMP/huge.err"
	fx_rm env/huge.env
	# systemd-analyze's own reason reaches the operator
	printf '[Service]\nExecStart=/nonexistent/aptest-binary\n' | fx_write systemd/noexec.service
	fx_commit noexec >/dev/null
	ap_autopull noexec --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: a unit that fails verification" 4 noexec
	check "verify's reason is printed" grep -q "noexec.service.*aptest-binary is not executable" "$AP_TMP/noexec.err"
	fx_rm systemd/noexec.service
	# --json: one JSON document on stdout, the job results in the log
	svc web.service "web v5" install
	fx_commit v5 >/dev/null
	ap_autopull json --user -c "$AP_CFG" --json apply
	ap_expect_rc "$AP_CASE: apply --json" 0 json
	ap_jq "$AP_CASE: stdout is one JSON document" "$AP_TMP/json.out" "isinstance(d, dict) and 'units' in d"
	# temp files of a killed run are cleaned up
	echo junk | ap_user_write "$AP_UNIT_DIR/.#web.service.Ab12Cd"
	echo junk | ap_user_write "$AP_STATE_DIR/.#applied.Zz98Yx"
	svc web.service "web v6" install
	fx_commit v6 >/dev/null
	fx_apply msg-temps || return
	check "stale temp in the unit dir removed" [ ! -e "$AP_UNIT_DIR/.#web.service.Ab12Cd" ]
	check "stale temp in the state dir removed" [ ! -e "$AP_STATE_DIR/.#applied.Zz98Yx" ]
}

# run_systemd_size SIZE: the size of the user manager's own tmpfs on /run/systemd (lib.sh
# mounts it in the manager's mount namespace). systemd refuses a daemon-reload while less than
# 16 MiB are free there; the default is half the memory.
run_systemd_size() {
	nsenter -t "$AP_MANAGER_PID" -m mount -o "remount,size=$1" /run/systemd
}

t_reload_refused() {
	local web v2
	start "12: a daemon-reload the manager refuses: the files stay, the reload is owed" || return
	web=$(inv web.service)
	svc web.service "web v2" install
	v2=$(fx_commit v2)
	run_systemd_size 8m || { ap_fail "$AP_CASE: cannot shrink the manager's /run/systemd"; return; }
	ap_autopull refused --user -c "$AP_CFG" apply
	run_systemd_size 50% || ap_fail "$AP_CASE: cannot give /run/systemd its size back"
	ap_expect_rc "$AP_CASE: apply" 1 refused
	check "the manager's refusal is shown" \
		grep -q "failed to reload the user manager: .*not enough space" "$AP_TMP/refused.err"
	check "the restart is named as owed" grep -q "owed for the next run: restart web.service" "$AP_TMP/refused.err"
	check "the new unit file is installed" grep -qx "Description=web v2" "$AP_UNIT_DIR/web.service"
	check "the manager still has the old one (NeedDaemonReload=yes)" \
		[ "$(ap_unit_prop web.service NeedDaemonReload)" = yes ]
	reload_owed_checks "$web" "$V1" "$v2" reload-again ap_autopull reload-again --user -c "$AP_CFG" apply
}

# web.service runs only while the host has $AP_HOME/web-ok, as a service that needs a
# certificate the host provides: broken in a way that shows only when it starts again.
needs_file_svc() {
	svc web.service "$1" install "ExecStart=
ExecStart=/bin/sh -c 'test -e $AP_HOME/web-ok && exec /bin/sleep infinity'
Restart=always
RestartSec=200ms"
}

t_rollback_does_not_settle() {
	local v2 v3 web
	start "13: a rollback whose own restart does not settle trips the guard" "guard:
  settle: 2s" || return
	ap_as_user touch "$AP_HOME/web-ok"
	needs_file_svc "web v2 needs web-ok"
	v2=$(fx_commit v2)
	fx_apply rbf-v2 || return
	check "web v2 runs" [ "$(ap_unit_prop web.service ActiveState)" = active ]
	rm -f "$AP_HOME/web-ok"
	svc web.service "web v3 broken" install "ExecStart=
ExecStart=/bin/false
Restart=always
RestartSec=200ms"
	v3=$(fx_commit v3-broken)
	web=$(inv web.service)
	ap_autopull rbf --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply" 1 rbf
	check "says the rollback failed, naming the commit" grep -q "ROLLBACK FAILED for $(short "$v3")" "$AP_TMP/rbf.err"
	check "the guard is tripped" grep -q "rollback of $(short "$v3") failed" "$AP_STATE_DIR/guard-tripped"
	check "the commit is marked bad" grep -q "^$v3 " "$AP_STATE_DIR/bad"
	check "applied stays v2" [ "$(applied)" = "$v2" ]
	check "the files are v2's again" grep -qx "Description=web v2 needs web-ok" "$AP_UNIT_DIR/web.service"
	check "the manager runs v2's definition" [ "$(ap_unit_prop web.service Description)" = "web v2 needs web-ok" ]
	check "web was restarted by the rollback" [ "$(inv web.service)" != "$web" ]
	check "and restarts in a loop (NRestarts counts, not active)" restarting web.service
	check "no journal left" [ ! -e "$AP_STATE_DIR/journal" ]
	svc web.service "web v4" install
	fx_commit v4 >/dev/null
	refused rbf2 3 "a newer commit is refused" "tripped"
	ap_autopull rbf3 --user -c "$AP_CFG" --override-guard --reason "web fixed" apply
	ap_expect_rc "$AP_CASE: applied with --override-guard" 0 rbf3
	check "web v4 runs" [ "$(ap_unit_prop web.service Description)" = "web v4" \
		-a "$(ap_unit_prop web.service ActiveState)" = active ]
}

# restarting UNIT: within 5 s, UNIT's NRestarts counts up while it is not active.
restarting() {
	local i=0
	while [ $i -lt 100 ]; do
		[ "$(ap_unit_prop "$1" NRestarts)" -gt 0 ] && [ "$(ap_unit_prop "$1" ActiveState)" != active ] &&
			return 0
		sleep 0.05; i=$((i + 1))
	done
	return 1
}

# -------------------------------------------------------------------------------------------
if [ ! -x "$AP_BIN" ]; then
	ap_fail "no autopull binary at $AP_BIN"
	exit 1
fi
t_guard_fails_closed
t_obstacle_does_not_wedge
t_takeover
t_retry_only_owed
t_write_fails_midway
t_superseded_keeps_owed
t_rollback_keeps_owner
t_symlinked_root
t_reenable
t_timer_and_service_go
t_vendor_dropin_verified
t_messages
t_reload_refused
t_rollback_does_not_settle
fx_reset
