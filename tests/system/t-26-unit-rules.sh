# shellcheck shell=bash
# Which units a change restarts, in system scope against PID 1: a unit that refuses a manual
# stop or start is not asked (apply exits 0, the next commit applies); a changed socket whose
# service runs ends listening on its new definition; a clean exit waiting in auto-restart is
# not a restart loop; a Description=-only change is a daemon-reload; a unit's own
# X-AutoPull-OnChange= beats a file rule's restart:. Sourced by run.sh after lib.sh.

# shellcheck source=../integration/unitrules.sh
. "$SYS_DIR/../integration/unitrules.sh"
# plan NAME: the dry-run's JSON plan in $AP_TMP/NAME.out.
plan() { sys_autopull "$1" --dry-run --json apply; }
action() { plan_action "$1" "$AP_TMP/$2.out"; }
note() { plan_note "$1" "$AP_TMP/$2.out"; }
unit() { unit_text multi-user.target "$@" | sx_write "systemd/$1"; }

# applies NAME SHA WHAT: apply; exit 0 and SHA recorded.
applies() {
	sys_autopull "$1" apply
	ap_expect_rc "$AP_CASE: $3" 0 "$1"
	check "recorded as applied" [ "$(applied)" = "$2" ]
}

# next_commit_applies NAME: an unrelated commit (the Caddyfile) applies.
next_commit_applies() {
	sx_caddyfile v2
	applies "$1" "$(sx_commit v3)" "the next unrelated commit applies"
}

begin() {
	ap_case "$1"
	sx_reset
	sx_origin
	sx_config "" "guard:
  settle: 1s"
	sx_caddyfile v1
}
sx_caddyfile() { printf ':80 {\n\trespond "%s"\n}\n' "$1" | sx_write caddy/Caddyfile; }

t_refuse_stop() {
	local before
	begin "RefuseManualStop unit changed"
	unit nostop.service Unit:RefuseManualStop=yes Service:Environment=V=1 Install:
	sx_commit v1 >/dev/null
	sys_autopull refstop-v1 apply
	ap_expect_rc "$AP_CASE: first apply" 0 refstop-v1 || return
	before=$(inv nostop.service)
	unit nostop.service Unit:RefuseManualStop=yes Service:Environment=V=2 Install:
	V2=$(sx_commit v2)
	plan refstop-plan
	check "plan: none for nostop.service ($(note nostop.service refstop-plan))" \
		[ "$(action nostop.service refstop-plan)" = none ]
	check "plan says why" grep -q 'refuses manual stop: new definition loaded' "$AP_TMP/refstop-plan.out"
	applies refstop-v2 "$V2" "apply of the change"
	check "nostop.service still runs (same InvocationID)" [ "$(inv nostop.service)" = "$before" ]
	next_commit_applies refstop-v3
}

t_refuse_start() {
	local before
	begin "RefuseManualStart dependent changed"
	unit main.service Unit:Wants=dep.service Service:Environment=V=1 Install:
	unit dep.service Unit:RefuseManualStart=yes Unit:PartOf=main.service Service:Environment=V=1
	sx_commit v1 >/dev/null
	sys_autopull refstart-v1 apply
	ap_expect_rc "$AP_CASE: first apply" 0 refstart-v1 || return
	before=$(inv dep.service)
	unit main.service Unit:Wants=dep.service Service:Environment=V=2 Install:
	unit dep.service Unit:RefuseManualStart=yes Unit:PartOf=main.service Service:Environment=V=2
	V2=$(sx_commit v2)
	plan refstart-plan
	check "plan: none for dep.service ($(note dep.service refstart-plan))" \
		[ "$(action dep.service refstart-plan)" = none ]
	applies refstart-v2 "$V2" "apply of the change"
	check "dep.service restarted through main.service" [ "$(inv dep.service)" != "$before" ]
	check "dep.service runs v2" [ "$(sys_prop dep.service Environment)" = V=2 ]
	next_commit_applies refstart-v3
}

# echo_units VERSION [GREETING]: echo.socket on /run/aptest-echo-VERSION.sock, and echo.service:
# a perl server that answers each connection on its inherited fd with GREETING (hello).
echo_units() {
	echo_socket_text "/run/aptest-echo-$1.sock" | sx_write systemd/echo.socket
	printf '[Unit]\nDescription=echo\n\n[Service]\nEnvironment=GREETING=%s\nExecStart=/usr/bin/perl %s/echo.pl\n' \
		"${2:-hello}" "$SX_LOG" | sx_write systemd/echo.service
}

echo_server() {
	sys_sh mkdir -p "$SX_LOG" &&
	printf '%s\n' 'open(my $l, "<&=", 3) or die "fd 3: $!";' \
		'while (accept(my $c, $l)) { syswrite($c, "$ENV{GREETING}\n"); close($c); }' |
		sys_write "$SX_LOG/echo.pl"
}

ask() {
	sys_sh perl -MIO::Socket::UNIX -e \
		'my $s = IO::Socket::UNIX->new(Peer => $ARGV[0], Timeout => 10) or exit 1; my $l = <$s>; print $l' \
		"/run/aptest-echo-$1.sock"
}

t_socket() {
	begin "socket changed while its service runs"
	echo_server
	echo_units v1
	sx_commit v1 >/dev/null
	sys_autopull sock-v1 apply
	ap_expect_rc "$AP_CASE: first apply" 0 sock-v1 || return
	check "precondition: a connection is served" [ "$(ask v1)" = hello ]
	check "precondition: echo.service runs" sys_wait_prop echo.service ActiveState active 5
	echo_units v2
	V2=$(sx_commit v2)
	plan sock-plan
	check "plan says the service is stopped first ($(note echo.socket sock-plan))" \
		grep -q 'its service echo.service runs' "$AP_TMP/sock-plan.out"
	applies sock-v2 "$V2" "apply of the change"
	check "echo.socket listening after the apply ($(sys_prop echo.socket ActiveState))" \
		[ "$(sys_prop echo.socket ActiveState)" = active ]
	sys_ctl stop echo.service
	check "a connection after the service stopped is served by the new definition" [ "$(ask v2)" = hello ]
	sys_autopull sock-again apply
	ap_expect_rc "$AP_CASE: the next tick has nothing owed" 0 sock-again
	# socket and service changed together while the service runs
	check "precondition: echo.service runs" sys_wait_prop echo.service ActiveState active 5
	echo_units v3 hi
	applies sock-v3 "$(sx_commit v3)" "apply of a socket and service change"
	check "a connection on the v3 path is served by the new service definition" [ "$(ask v3)" = hi ]
	sys_ctl stop echo.socket echo.service >/dev/null 2>&1
}

t_clean_auto_restart() {
	begin "clean exit waiting in auto-restart"
	short_text 1h multi-user.target | sx_write systemd/short.service
	V1=$(sx_commit v1)
	applies short-v1 "$V1" "apply of the new unit (not rolled back)"
	check "short.service waits in auto-restart, NRestarts=0" \
		[ "$(sys_prop short.service SubState)/$(sys_prop short.service NRestarts)" = auto-restart/0 ]
	# restarted by the next change: the guard watches it from then on
	short_text 2h multi-user.target | sx_write systemd/short.service
	applies short-v2 "$(sx_commit v2)" "apply of its change"
	sx_caddyfile v2
	applies short-v3 "$(sx_commit v3)" "the guard lets the next commit through"
	sys_ctl stop short.service
}

t_description_only() {
	local before
	begin "Description= changed alone"
	unit desc.service Install:
	sx_commit v1 >/dev/null
	sys_autopull desc-v1 apply
	ap_expect_rc "$AP_CASE: first apply" 0 desc-v1 || return
	before=$(inv desc.service)
	sed -i 's/^Description=.*/Description=a better name/' "$SX_WORK/systemd/desc.service"
	sx_commit v2 >/dev/null
	sys_autopull desc-v2 apply
	ap_expect_rc "$AP_CASE: apply" 0 desc-v2
	check "same InvocationID" [ "$(inv desc.service)" = "$before" ]
	check "PID 1 shows the new Description" [ "$(sys_prop desc.service Description)" = "a better name" ]
}

t_rule_vs_optout() {
	local before
	begin "a file rule's restart: and the unit's own X-AutoPull-OnChange=none"
	printf 'repo:\n  url: %s\nscope: system\nunits: [systemd/]\nfiles:\n  - src: app/\n    dest: /etc/aptest/app/\n    restart: [optnone.service]\nguard:\n  settle: 1s\n' \
		"$SX_URL" | sys_write "$SX_CFG"
	sys_ctl daemon-reload
	unit optnone.service Unit:X-AutoPull-OnChange=none Install:
	printf 'v1\n' | sx_write app/app.conf
	sx_commit v1 >/dev/null
	sys_autopull rule-v1 apply
	ap_expect_rc "$AP_CASE: first apply" 0 rule-v1 || return
	before=$(inv optnone.service)
	printf 'v2\n' | sx_write app/app.conf
	sx_commit v2 >/dev/null
	plan rule-plan
	check "plan: none ($(note optnone.service rule-plan))" [ "$(action optnone.service rule-plan)" = none ]
	sys_autopull rule-v2 apply
	ap_expect_rc "$AP_CASE: apply" 0 rule-v2
	check "app.conf installed" [ "$(cat "$SYS_ROOT/etc/aptest/app/app.conf")" = v2 ]
	check "optnone.service not restarted (same InvocationID)" [ "$(inv optnone.service)" = "$before" ]
}

t_refuse_stop
t_refuse_start
t_socket
t_clean_auto_restart
t_description_only
t_rule_vs_optout
sx_reset
