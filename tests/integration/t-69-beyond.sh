# shellcheck shell=bash
# Beyond plain unit files, against the real user manager: autopull's own units in the
# repository it applies. autopull runs as the repository's infrastructure-auto-pull.service
# (the shipped unit, started by the manager) while the commit it applies changes that very
# service and its timer: the run must finish (exit 0, commit recorded) without restarting
# itself, restart the timer, and the service's next run must use the new definition.
# Sourced by run.sh after lib.sh.

SELF=infrastructure-auto-pull.service
SELF_TIMER=infrastructure-auto-pull.timer
WAIT=30

# self_unit VERSION: the shipped user service, naming the binary under test, writing VERSION
# to $FX_LOG/self.versions before each run and the dry-run plan of that run (JSON) to
# $FX_LOG/self.VERSION.plan; the apply's own output goes to $FX_LOG/self.out.
self_unit() {
	{
		sed -e "s|/usr/local/bin/autopull|$AP_BIN|" -e '/^Description=/d' \
			"$AP_ROOT/units/user/$SELF" | sed "/^\[Unit\]/a Description=self $1"
		printf 'ExecStartPre=/bin/sh -c "echo %s >> %s/self.versions"\n' "$1" "$FX_LOG"
		printf 'ExecStartPre=/bin/sh -c "%s --user --dry-run --json > %s/self.%s.plan"\n' \
			"$AP_BIN" "$FX_LOG" "$1"
		printf 'StandardOutput=append:%s/self.out\nStandardError=append:%s/self.out\n' \
			"$FX_LOG" "$FX_LOG"
	} | fx_write "systemd/$SELF"
}

# self_timer DESCRIPTION: the shipped timer with a description of its own and no early run
# (this test starts the service itself, as the timer would).
self_timer() {
	sed -e "s/^Description=.*/Description=$1/" -e 's/^OnActiveSec=.*/OnActiveSec=1h/' \
		-e 's/^RandomizedDelaySec=.*/RandomizedDelaySec=0/' \
		"$AP_ROOT/units/user/$SELF_TIMER" | fx_write "systemd/$SELF_TIMER"
}

# run_self NAME: start the service as the timer does and wait (bounded) for it to end.
run_self() {
	local i=0
	ap_systemctl start --no-block -- "$SELF" || return 1
	while [ $i -lt $((WAIT * 10)) ]; do
		case $(ap_unit_prop "$SELF" ActiveState) in
		inactive|failed) return 0 ;;
		esac
		sleep 0.1; i=$((i + 1))
	done
	return 1
}

plan_unit() { ap_jqv "$FX_LOG/self.$1.plan" "[u for u in d['units'] if u['unit'] == '$2'][0]['$3']"; }

ap_case "own unit changed while it runs the apply"
fx_reset
fx_origin file || ap_fail "$AP_CASE: fixture origin"
fx_config "$FX_URL"
fx_service web.service install "web v1"
self_unit v1
self_timer "timer v1"
V1=$(fx_commit v1)
fx_apply own-v1 || true
check "v1: the service is installed, the timer runs" \
	[ "$(ap_unit_prop "$SELF_TIMER" ActiveState)" = active ]
T1=$(inv "$SELF_TIMER")

self_unit v2
self_timer "timer v2"
fx_service web.service install "web v2"
V2=$(fx_commit v2)
W1=$(inv web.service)
check "the service ran to its end" run_self
check "its run succeeded (Result=success)" [ "$(ap_unit_prop "$SELF" Result)" = success ]
check "its run exited 0" [ "$(ap_unit_prop "$SELF" ExecMainStatus)" = 0 ]
check "v2 recorded as applied" [ "$(applied)" = "$V2" ]
check "this run was the old definition's" [ "$(cat "$FX_LOG/self.versions")" = v1 ]
check "the new service file is installed" \
	cmp -s "$FX_ORIGIN/systemd/$SELF" "$AP_UNIT_DIR/$SELF"
check "the manager loaded it (daemon-reload)" \
	[ "$(ap_unit_prop "$SELF" NeedDaemonReload)" = no ]
check "its timer was restarted (new InvocationID)" [ "$(inv "$SELF_TIMER")" != "$T1" ]
check "the timer runs its new definition" [ "$(ap_unit_prop "$SELF_TIMER" Description)" = "timer v2" ]
check "web.service restarted as any unit" [ "$(inv web.service)" != "$W1" ]
check "the plan holds the service back" [ "$(plan_unit v1 "$SELF" action)" = none ]
check "the plan says why (JSON)" \
	[ "$(plan_unit v1 "$SELF" note)" = "own unit: takes effect on the next run" ]
check "the plan restarts the timer (JSON)" [ "$(plan_unit v1 "$SELF_TIMER" action)" = restart ]
check "the printed plan says why" \
	grep -q "none *$SELF .*(own unit: takes effect on the next run)" "$FX_LOG/self.out"

check "the next run ran to its end" run_self
check "the next run used the new definition" \
	[ "$(tr '\n' ' ' <"$FX_LOG/self.versions")" = "v1 v2 " ]
check "the next run succeeded" [ "$(ap_unit_prop "$SELF" Result)" = success ]
check "no unit failed" [ -z "$(ap_systemctl list-units --failed --no-legend --plain)" ]
fx_reset
