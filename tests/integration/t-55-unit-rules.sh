# shellcheck shell=bash
# Which units a change restarts, against the real user manager, where systemd itself has
# rules: a unit that refuses a manual stop or start is not asked (apply exits 0, the next
# commit applies); a changed socket whose service runs ends listening on its new definition;
# a clean exit waiting in auto-restart is not a restart loop; a Description=-only change is
# a daemon-reload, not a restart; a unit's own X-AutoPull-OnChange= beats a file rule's
# restart:. Judged by InvocationID, ActiveState and real connections.
# Sourced by run.sh after lib.sh (and fixtures.sh).

# shellcheck source=unitrules.sh
. "$AP_DIR/unitrules.sh"
note() { plan_note "$@"; }
action() { plan_action "$@"; }
unit() { unit_text default.target "$@" | fx_write "systemd/$1"; }

# begin NAME: fresh slate with the fixture config; the case's v1 is written by the caller.
begin() {
	ap_case "$1"
	fx_reset
	fx_origin file || { ap_fail "$1: fixture origin"; return 1; }
	fx_config "$FX_URL"
	fx_caddyfile v1
}

# apply NAME: one apply, exit code kept (no baseline failure).
apply() { ap_autopull "$1" --user -c "$AP_CFG" apply; }
dryrun() { ap_autopull "$1" --user -c "$AP_CFG" --dry-run --json; }

# applies NAME SHA WHAT: apply; exit 0 and SHA recorded.
applies() {
	apply "$1"
	ap_expect_rc "$AP_CASE: $3" 0 "$1"
	check "recorded as applied" [ "$(applied)" = "$2" ]
}

# next_commit_applies NAME WHAT: an unrelated commit (the Caddyfile) applies.
next_commit_applies() {
	fx_caddyfile v2
	applies "$1" "$(fx_commit v3)" "$2"
}

# --------------------------------------------------------------------------------------------
t_refuse_stop() {
	local before
	begin "RefuseManualStop unit changed" || return
	unit nostop.service Unit:RefuseManualStop=yes Service:Environment=V=1 Install:
	V1=$(fx_commit v1)
	fx_apply refstop-v1 || return
	check "precondition: nostop.service active" [ "$(ap_unit_prop nostop.service ActiveState)" = active ]
	before=$(inv nostop.service)
	unit nostop.service Unit:RefuseManualStop=yes Service:Environment=V=2 Install:
	V2=$(fx_commit v2)
	dryrun refstop-plan
	ap_jq "$AP_CASE: plan: no action for nostop.service" "$AP_TMP/refstop-plan.out" \
		"[u['action'] for u in d['units'] if u['unit'] == 'nostop.service'] == ['none']"
	check "plan says why: $(note nostop.service "$AP_TMP/refstop-plan.out")" \
		grep -q 'refuses manual stop: new definition loaded, applies at its next start' "$AP_TMP/refstop-plan.out"
	applies refstop-v2 "$V2" "apply of the change"
	check "nostop.service still runs (same InvocationID)" [ "$(inv nostop.service)" = "$before" ]
	check "nostop.service active" [ "$(ap_unit_prop nostop.service ActiveState)" = active ]
	check "the new definition is loaded" [ "$(ap_unit_prop nostop.service NeedDaemonReload)" = no ]
	check "no journal owes anything" [ ! -e "$AP_STATE_DIR/journal" ]
	next_commit_applies refstop-v3 "the next unrelated commit applies"
}

# late_running CASE TAG: a fresh case whose v1, late.service, is applied and running.
late_running() {
	begin "$1" || return
	unit late.service Service:Environment=V=1 Install:
	fx_commit v1 >/dev/null
	fx_apply "$2-v1"
}

# The change itself adds RefuseManualStop=: the running unit's state does not show it yet, its
# new definition does; the plan reads it there.
t_refuse_added() {
	local before
	late_running "RefuseManualStop added by the change" added || return
	before=$(inv late.service)
	unit late.service Unit:RefuseManualStop=yes Service:Environment=V=2 Install:
	V2=$(fx_commit v2)
	dryrun added-plan
	check "plan: none for late.service ($(note late.service "$AP_TMP/added-plan.out"))" \
		[ "$(action late.service "$AP_TMP/added-plan.out")" = none ]
	applies added-v2 "$V2" "apply of the change"
	check "late.service still runs (same InvocationID)" [ "$(inv late.service)" = "$before" ]
	next_commit_applies added-v3 "the next unrelated commit applies"
}

# A refusal nobody could foresee: the operator's own drop-in (not yet loaded) adds
# RefuseManualStop=; the manager refuses the restart after autopull's daemon-reload. Logged
# once, not owed.
t_refuse_unforeseen() {
	local before
	late_running "a refusal the plan could not foresee" late || return
	before=$(inv late.service)
	printf '[Unit]\nRefuseManualStop=yes\n' | ap_user_write "$AP_UNIT_DIR/late.service.d/operator.conf"
	unit late.service Service:Environment=V=2 Install:
	applies late-v2 "$(fx_commit v2)" "apply of the change"
	check "the refusal is logged" grep -q "refuses try-restart by request (only-by-dependency): not retried" \
		"$AP_TMP/late-v2.err"
	check "late.service still runs (same InvocationID)" [ "$(inv late.service)" = "$before" ]
	check "no journal owes anything" [ ! -e "$AP_STATE_DIR/journal" ]
	apply late-again
	ap_expect_rc "$AP_CASE: the next tick" 0 late-again
	check "the next tick does not ask again" not grep -q "try-restart" "$AP_TMP/late-again.out"
	next_commit_applies late-v3 "the next unrelated commit applies"
}

t_refuse_start() {
	local before
	begin "RefuseManualStart dependent changed" || return
	unit main.service Unit:Wants=dep.service Service:Environment=V=1 Install:
	unit dep.service Unit:RefuseManualStart=yes Unit:PartOf=main.service Service:Environment=V=1
	V1=$(fx_commit v1)
	fx_apply refstart-v1 || return
	check "precondition: dep.service active through main.service" \
		[ "$(ap_unit_prop dep.service ActiveState)" = active ]
	before=$(inv dep.service)
	unit main.service Unit:Wants=dep.service Service:Environment=V=2 Install:
	unit dep.service Unit:RefuseManualStart=yes Unit:PartOf=main.service Service:Environment=V=2
	V2=$(fx_commit v2)
	dryrun refstart-plan
	check "plan: main.service restarts" [ "$(action main.service "$AP_TMP/refstart-plan.out")" = restart ]
	check "plan: dep.service not asked ($(note dep.service "$AP_TMP/refstart-plan.out"))" \
		[ "$(action dep.service "$AP_TMP/refstart-plan.out")" = none ]
	check "plan says why" grep -q 'refuses manual start' "$AP_TMP/refstart-plan.out"
	applies refstart-v2 "$V2" "apply of the change"
	check "dep.service restarted through main.service (new InvocationID)" \
		[ "$(inv dep.service)" != "$before" ]
	check "dep.service active" [ "$(ap_unit_prop dep.service ActiveState)" = active ]
	check "dep.service runs v2" [ "$(ap_unit_prop dep.service Environment)" = V=2 ]
	next_commit_applies refstart-v3 "the next unrelated commit applies"
}

# The echo server: answers every connection on its inherited listening fd with its greeting.
ECHO_SRV='import os, socket
s = socket.socket(fileno=3)
while True:
    c, _ = s.accept()
    c.sendall((os.environ.get("GREETING", "?") + "\n").encode())
    c.close()'

# echo_units VERSION [GREETING]: echo.socket listening on $AP_RUNTIME/aptest-echo-VERSION.sock (the
# path is the definition a connection can tell), echo.service serving it.
echo_units() {
	echo_socket_text "%t/aptest-echo-$1.sock" | fx_write systemd/echo.socket
	printf '[Unit]\nDescription=echo\n\n[Service]\nEnvironment=GREETING=%s\nExecStart=%s %s/echo-srv.py\n' \
		"${2:-hello}" "$AP_PY" "$FX_LOG" | fx_write systemd/echo.service
}

# ask VERSION: connect to the socket of VERSION and print the greeting.
ask() {
	"$AP_PY" - "$AP_RUNTIME/aptest-echo-$1.sock" <<-'PY'
	import socket, sys
	s = socket.socket(socket.AF_UNIX)
	s.settimeout(10)
	s.connect(sys.argv[1])
	print(s.recv(100).decode().strip())
	PY
}

t_socket() {
	begin "socket changed while its service runs" || return
	printf '%s\n' "$ECHO_SRV" >"$FX_LOG/echo-srv.py" && chmod 0644 "$FX_LOG/echo-srv.py"
	echo_units v1
	V1=$(fx_commit v1)
	fx_apply sock-v1 || return
	check "precondition: echo.socket listening" [ "$(ap_unit_prop echo.socket ActiveState)" = active ]
	check "precondition: a connection is served" [ "$(ask v1 2>/dev/null)" = hello ]
	check "precondition: echo.service runs" ap_wait_prop echo.service ActiveState active 5
	echo_units v2
	V2=$(fx_commit v2)
	dryrun sock-plan
	check "plan: echo.socket restarts ($(note echo.socket "$AP_TMP/sock-plan.out"))" \
		[ "$(action echo.socket "$AP_TMP/sock-plan.out")" = restart ]
	check "plan says the service is stopped first" grep -q 'its service echo.service runs' "$AP_TMP/sock-plan.out"
	applies sock-v2 "$V2" "apply of the change"
	check "echo.socket listening after the apply ($(ap_unit_prop echo.socket ActiveState))" \
		[ "$(ap_unit_prop echo.socket ActiveState)" = active ]
	check "echo.socket listens on the new path" \
		[ "$(ap_unit_prop echo.socket Listen)" = "$AP_RUNTIME/aptest-echo-v2.sock (Stream)" ]
	ap_systemctl stop echo.service
	check "a connection after the service stopped is served by the new definition" \
		[ "$(ask v2 2>/dev/null)" = hello ]
	check "the connection started echo.service again" ap_wait_prop echo.service ActiveState active 5
	apply sock-again
	ap_expect_rc "$AP_CASE: the next tick has nothing owed" 0 sock-again
	check "echo.socket still listening after the next tick" [ "$(ap_unit_prop echo.socket ActiveState)" = active ]
	# socket and service changed together while the service runs
	check "precondition: echo.service runs" ap_wait_prop echo.service ActiveState active 5
	echo_units v3 hi
	applies sock-v3 "$(fx_commit v3)" "apply of a socket and service change"
	check "echo.socket listening on the v3 path" \
		[ "$(ap_unit_prop echo.socket Listen)" = "$AP_RUNTIME/aptest-echo-v3.sock (Stream)" ]
	check "a connection is served by the new service definition" [ "$(ask v3 2>/dev/null)" = hi ]
}

t_clean_auto_restart() {
	begin "clean exit waiting in auto-restart" || return
	short_text 1h default.target | fx_write systemd/short.service
	V1=$(fx_commit v1)
	applies short-v1 "$V1" "apply of the new unit (not rolled back)"
	check "short.service waits in auto-restart" [ "$(ap_unit_prop short.service SubState)" = auto-restart ]
	check "short.service: NRestarts=0" [ "$(ap_unit_prop short.service NRestarts)" = 0 ]
	check "short.service: ExecMainStatus=0" [ "$(ap_unit_prop short.service ExecMainStatus)" = 0 ]
	check "short.service still enabled" [ -L "$AP_UNIT_DIR/default.target.wants/short.service" ]
	# restarted: the guard watches it from now on
	short_text 2h default.target | fx_write systemd/short.service
	V2=$(fx_commit v2)
	applies short-v2 "$V2" "apply of its change"
	next_commit_applies short-v3 "the guard lets the next commit through"
}

t_description_only() {
	local before
	begin "Description= changed alone" || return
	unit desc.service Install: Unit:Documentation=man:true\(1\)
	V1=$(fx_commit v1)
	fx_apply desc-v1 || return
	before=$(inv desc.service)
	sed -i 's/^Description=.*/Description=a better name/; s/^Documentation=.*/Documentation=man:false(1)/' \
		"$FX_ORIGIN/systemd/desc.service"
	V2=$(fx_commit v2)
	dryrun desc-plan
	check "plan: no restart ($(note desc.service "$AP_TMP/desc-plan.out"))" \
		[ "$(action desc.service "$AP_TMP/desc-plan.out")" = none ]
	check "plan says why" grep -q 'only Description=/Documentation= changed' "$AP_TMP/desc-plan.out"
	apply desc-v2
	ap_expect_rc "$AP_CASE: apply" 0 desc-v2
	check "same InvocationID" [ "$(inv desc.service)" = "$before" ]
	check "the manager shows the new Description" [ "$(ap_unit_prop desc.service Description)" = "a better name" ]
	# conservative: a change in [Service] still restarts
	sed -i 's/^ExecStart=.*/ExecStart=\/bin\/sleep 1000000/' "$FX_ORIGIN/systemd/desc.service"
	V3=$(fx_commit v3)
	apply desc-v3
	ap_expect_rc "$AP_CASE: apply of a [Service] change" 0 desc-v3
	check "a [Service] change still restarts (new InvocationID)" [ "$(inv desc.service)" != "$before" ]
}

t_rule_vs_optout() {
	local before_reload before_none
	begin "a file rule's restart: and the unit's own X-AutoPull-OnChange=" || return
	# a config of its own: the fixture's already has a files: key
	{
		printf 'repo:\n  url: %s\n  branch: main\nscope: user\nunits: [systemd/]\n' "$FX_URL"
		printf 'files:\n  - src: app/\n    dest: %s/app/\n    restart: [optreload.service, optnone.service]\n' "$FX_ETC"
		printf 'guard:\n  settle: 1s\n'
	} | ap_user_write "$AP_CFG"
	{
		printf '[Unit]\nDescription=optreload\nX-AutoPull-OnChange=reload\n\n[Service]\n'
		printf 'ExecStart=/bin/sleep infinity\nExecReload=/bin/sh -c "echo reload >>%s/optreload.reloads"\n' "$FX_LOG"
		printf '\n[Install]\nWantedBy=default.target\n'
	} | fx_write systemd/optreload.service
	printf '[Unit]\nDescription=optnone\nX-AutoPull-OnChange=none\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=default.target\n' |
		fx_write systemd/optnone.service
	printf 'v1\n' | fx_write app/app.conf
	V1=$(fx_commit v1)
	fx_apply rule-v1 || return
	before_reload=$(inv optreload.service)
	before_none=$(inv optnone.service)
	printf 'v2\n' | fx_write app/app.conf
	V2=$(fx_commit v2)
	dryrun rule-plan
	check "plan: optreload.service reloads ($(note optreload.service "$AP_TMP/rule-plan.out"))" \
		[ "$(action optreload.service "$AP_TMP/rule-plan.out")" = reload ]
	check "plan: optnone.service left alone ($(note optnone.service "$AP_TMP/rule-plan.out"))" \
		[ "$(action optnone.service "$AP_TMP/rule-plan.out")" = none ]
	check "plan names the unit's own setting" grep -q 'X-AutoPull-OnChange=none wins over' "$AP_TMP/rule-plan.out"
	apply rule-v2
	ap_expect_rc "$AP_CASE: apply" 0 rule-v2
	check "app.conf installed" grep -qx v2 "$FX_ETC/app/app.conf"
	check "optreload.service reloaded, not restarted" [ "$(inv optreload.service)" = "$before_reload" ]
	check "optreload.service ran ExecReload" ap_wait_file_grep "$FX_LOG/optreload.reloads" reload 5
	check "optnone.service neither (same InvocationID)" [ "$(inv optnone.service)" = "$before_none" ]
}

t_refuse_stop
t_refuse_added
t_refuse_unforeseen
t_refuse_start
t_socket
t_clean_auto_restart
t_description_only
t_rule_vs_optout
fx_reset
