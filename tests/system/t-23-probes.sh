# shellcheck shell=bash
# Health probes in system scope, through the shipped services: an exec probe that fails after
# a commit rolls it back through the hardened apply service, with the probe in the journal
# entry; with guard.probe the hardened heartbeat service reaches a tcp listener on the host's
# 127.0.0.1 (its drop-in lifts PrivateNetwork=), and a probe that fails there makes the apply
# service refuse (exit 3). Sourced by run.sh after lib.sh.

service() { sys_start_unit "$1" infrastructure-auto-pull.service; }

# A port for the socket unit below (the container may share the host's network).
PORT=$((20000 + RANDOM % 10000))

t_exec_rollback() {
	local v2 inv1
	ap_case "1: an exec probe that fails after a commit rolls it back (apply service, journal)"
	sx_reset
	sx_origin
	sx_config "" "guard:
  settle: 1s
health:
  app.service: {exec: [/bin/grep, -qx, HEALTH=ok, /etc/aptest/env/app.env], timeout: 2s}"
	echo HEALTH=ok | sx_write env/app.env
	V1=$(sx_commit v1)
	service v1
	ap_expect_rc "$AP_CASE: v1 through the service" 0 v1 || return
	inv1=$(inv app.service)
	echo HEALTH=bad | sx_write env/app.env
	v2=$(sx_commit v2-bad)
	sys_mark
	service bad
	ap_expect_rc "$AP_CASE: the failing commit" 1 bad
	check "its log names the probe and its exit status" \
		grep -q "unit 'app.service' failed its health probe (exec /bin/grep -qx HEALTH=ok /etc/aptest/env/app.env) [0-9]* time(s); last: exit status 1" "$AP_TMP/bad.err"
	check "a 'rolled-back' journal entry" sys_entries bad-j $ID_ROLLED_BACK
	check "AUTOPULL_REASON names the probe and its result" \
		grep -q "failed its health probe (exec /bin/grep -qx HEALTH=ok /etc/aptest/env/app.env) [0-9]* time(s); last: exit status 1" \
		<(sys_field bad-j AUTOPULL_REASON)
	check "the old file is back" [ "$(cat "$SYS_ROOT/etc/aptest/env/app.env")" = HEALTH=ok ]
	check "app.service restarted again (InvocationID)" [ "$(inv app.service)" != "$inv1" ]
	check "app.service active" [ "$(sys_prop app.service ActiveState)" = active ]
	check "applied unchanged" [ "$(applied)" = "$V1" ]
	check "the commit is marked bad" grep -q "^$v2 " "$SYS_ROOT$SX_STATE/bad"
	sys_autopull st status
	check "status names the probe" grep -q "app.service' failed its health probe" "$AP_TMP/st.out"
}

# config PORT: watch probed.socket with guard.probe and a tcp probe of 127.0.0.1:PORT.
probe_config() {
	sx_config "" "guard:
  watch: [probed.socket]
  max_restarts: 1
  window: 10m
  settle: 1s
  probe: true
health:
  probed.socket: {tcp: \"127.0.0.1:$1\", timeout: 2s}"
}

t_guard_probe() {
	local v2
	ap_case "2: guard.probe through the shipped heartbeat service (network lifted for it)"
	sx_reset
	sx_origin
	probe_config "$PORT"
	check "the heartbeat's drop-in lifts PrivateNetwork=" \
		grep -q "^PrivateNetwork=no" "$SYS_ROOT/run/systemd/generator/autopull-heartbeat.service.d/50-autopull-sandbox.conf"
	printf '[Unit]\nDescription=probed\n[Socket]\nListenStream=127.0.0.1:%s\n[Install]\nWantedBy=sockets.target\n' "$PORT" |
		sx_write systemd/probed.socket
	printf '[Unit]\nDescription=probed service\n[Service]\nExecStart=/bin/sleep infinity\n' |
		sx_write systemd/probed.service
	echo HEALTH=ok | sx_write env/app.env
	V1=$(sx_commit v1)
	service v1
	ap_expect_rc "$AP_CASE: v1 (the socket's probe passes in the settle window)" 0 v1 || return
	sys_start_unit hb1 autopull-heartbeat.service
	ap_expect_rc "$AP_CASE: the heartbeat service" 0 hb1
	check "its probe reached 127.0.0.1:$PORT: probed.socket healthy" \
		grep -q "^autopull_unit_healthy{unit=\"probed.socket\",host=\"[^\"]*\"} 1" "$SYS_ROOT$SX_STATE/metrics.prom"
	# The operator points the probe where nothing listens: two failed heartbeats.
	probe_config $((PORT + 1))
	sys_start_unit hb2 autopull-heartbeat.service
	sys_start_unit hb3 autopull-heartbeat.service
	check "probed.socket is not healthy" \
		grep -q "^autopull_unit_healthy{unit=\"probed.socket\",host=\"[^\"]*\"} 0" "$SYS_ROOT$SX_STATE/metrics.prom"
	echo HEALTH=v2 | sx_write env/app.env
	v2=$(sx_commit v2)
	sx_snapshot before
	service refused
	ap_expect_rc "$AP_CASE: the apply service refuses" 3 refused
	check "its log says unhealthy and why" \
		grep -q "unit 'probed.socket' is unhealthy: failed its tcp probe [0-9]* times in 600s; last: connect: Connection refused" "$AP_TMP/refused.err"
	sx_snapshot after
	check "nothing changed on the host" cmp -s "$AP_TMP/before.snap" "$AP_TMP/after.snap"
	check "applied unchanged" [ "$(applied)" = "$V1" ]
	sys_autopull over --override-guard --reason "probe target moves" apply
	ap_expect_rc "$AP_CASE: --override-guard by hand" 0 over
	check "applied = v2" [ "$(applied)" = "$v2" ]
	sys_ctl stop probed.socket probed.service >/dev/null 2>&1
}

sx_pristine
t_exec_rollback
t_guard_probe
