# shellcheck shell=bash
# The restart-loop guard in system scope, through the shipped services: a looping watched
# unit makes the hardened apply service refuse (exit 3) and change nothing, the heartbeat
# service reports it; a commit that breaks a healthy service is rolled back after the settle
# window, marked bad and skipped by the next run. Sourced by run.sh after lib.sh.

service() { sys_start_unit "$1" infrastructure-auto-pull.service; }

# vsvc NAME VERSION [broken]: a service that records which definition started; broken exits 1
# at once and restarts by itself.
vsvc() {
	{
		printf '[Unit]\nDescription=%s %s\nStartLimitIntervalSec=0\n\n[Service]\n' "$1" "$2"
		if [ "${3:-}" = broken ]; then
			printf 'ExecStart=/bin/sh -c "mkdir -p %s; echo %s >> %s/%s.versions; exit 1"\n' \
				"$SX_LOG" "$2" "$SX_LOG" "${1%.service}"
			printf 'Restart=always\nRestartSec=300ms\n'
		else
			printf 'ExecStart=/bin/sh -c "mkdir -p %s; echo %s >> %s/%s.versions; exec sleep infinity"\n' \
				"$SX_LOG" "$2" "$SX_LOG" "${1%.service}"
		fi
		printf '\n[Install]\nWantedBy=multi-user.target\n'
	} | sx_write "systemd/$1"
}

versions() { sys_sh cat "$SX_LOG/${1%.service}.versions" 2>/dev/null | tail -n 1; }
# runs NAME VERSION: wait (5 s) until NAME's latest start was VERSION (a start job is done
# once the process forked, before it wrote anything).
runs() {
	local i=0
	while [ "$(versions "$1")" != "$2" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	[ "$(versions "$1")" = "$2" ] && return 0
	ap_log "        $1 started as: $(sys_sh cat "$SX_LOG/${1%.service}.versions" 2>&1 | tr '\n' ' ')"
	return 1
}

start() {
	ap_case "$1"
	sx_reset
	sx_origin
	sx_config "" "guard:
  watch: [\"loop*.service\", svc.service]
  max_restarts: 2
  window: 1m
  settle: 2s"
	vsvc svc.service v1
}

t_refuse() {
	local v2 n i=0
	start "a looping watched unit: the shipped service refuses (exit 3)"
	printf '[Unit]\nDescription=loop\nStartLimitIntervalSec=0\n\n[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=300ms\n' |
		sx_write systemd/loop1.service
	V1=$(sx_commit v1)
	service v1
	ap_expect_rc "$AP_CASE: first run of the service" 0 v1 || return
	sys_ctl start loop1.service
	n=0
	while [ "${n:-0}" -lt 4 ] && [ $i -lt 100 ]; do
		sleep 0.1; i=$((i + 1)); n=$(sys_prop loop1.service NRestarts)
	done
	check "loop1.service restarts by itself (NRestarts=$n)" [ "${n:-0}" -ge 4 ]
	sys_start_unit hb autopull-heartbeat.service
	ap_expect_rc "$AP_CASE: the heartbeat service" 0 hb
	check "the heartbeat's metrics say loop1.service is looping" \
		grep -q '^autopull_unit_looping{unit="loop1.service",host="[^"]*"} 1' "$SYS_ROOT$SX_STATE/metrics.prom"
	vsvc svc.service v2
	v2=$(sx_commit v2)
	sx_snapshot refuse-before
	service refused
	ap_expect_rc "$AP_CASE: the apply service" 3 refused
	check "its result is exit-code" [ "$(sys_prop infrastructure-auto-pull.service Result)" = exit-code ]
	check "its log names the looping unit" grep -q "loop1.service" "$AP_TMP/refused.err"
	sx_snapshot refuse-after
	check "nothing changed on the host" cmp -s "$AP_TMP/refuse-before.snap" "$AP_TMP/refuse-after.snap"
	check "applied unchanged" [ "$(applied)" = "$V1" ]
	check "svc.service still runs v1" [ "$(versions svc.service)" = v1 ]
	sys_autopull override --override-guard --reason "ship the fix for loop1" apply
	ap_expect_rc "$AP_CASE: --override-guard by hand" 0 override
	check "applied = v2" [ "$(applied)" = "$v2" ]
	check "the reason is recorded" grep -q "ship the fix for loop1" "$SYS_ROOT$SX_STATE/overrides"
	sys_ctl stop loop1.service
}

t_rollback() {
	local v2
	start "settle and rollback through the shipped service"
	V1=$(sx_commit v1)
	service rb-v1
	ap_expect_rc "$AP_CASE: v1" 0 rb-v1 || return
	check "svc.service runs v1" runs svc.service v1
	vsvc svc.service v2 broken
	v2=$(sx_commit v2-broken)
	service broken
	ap_expect_rc "$AP_CASE: the breaking commit" 1 broken
	check "its log names the unit" grep -q "unit 'svc.service' is restarting in a loop" "$AP_TMP/broken.err"
	check "its log says rolled back" grep -q "rolled back .* marked it bad" "$AP_TMP/broken.err"
	check "the old unit file is back" grep -q "echo v1" "$SYS_ROOT/etc/systemd/system/svc.service"
	check "svc.service active again" sys_wait_prop svc.service ActiveState active 5
	check "on the old definition" runs svc.service v1
	check "applied unchanged" [ "$(applied)" = "$V1" ]
	check "the commit is marked bad" grep -q "^$v2 " "$SYS_ROOT$SX_STATE/bad"
	service skip
	ap_expect_rc "$AP_CASE: the next run" 0 skip
	check "skips the bad commit" grep -q "skipping ${v2:0:12}" "$AP_TMP/skip.err"
	check "still v1" grep -q "echo v1" "$SYS_ROOT/etc/systemd/system/svc.service"
}

sx_pristine
t_refuse
t_rollback
