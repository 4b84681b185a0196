# shellcheck shell=bash
# The restart-loop guard against the real user manager: a crash-looping watched unit is
# reported by `autopull heartbeat` (and its metrics), `apply` refuses with exit 3 and
# changes nothing, `--override-guard --reason` proceeds; a commit that breaks a healthy
# service is rolled back, marked bad and skipped until a newer commit; a stale timer is
# reported. Sourced by run.sh after lib.sh (and fixtures.sh).

METRICS=$AP_STATE_DIR/metrics.prom

# A real Prometheus text-format parser (python3-prometheus-client).
promparse() {
	"$AP_PY" - "$1" <<-'PY'
	import sys
	from prometheus_client.parser import text_string_to_metric_families
	fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
	for name in ("systemd_unit_active", "systemd_unit_restart_count", "systemd_unit_last_exit_status",
	             "autopull_unit_looping", "autopull_last_apply_success"):
	    assert name in fams, "missing family " + name
	print("parsed %d families" % len(fams))
	PY
}

# metric NAME UNIT: the value of NAME{unit=UNIT,...} in the metrics file.
metric() {
	"$AP_PY" - "$METRICS" "$1" "$2" <<-'PY'
	import sys
	from prometheus_client.parser import text_string_to_metric_families
	for f in text_string_to_metric_families(open(sys.argv[1]).read()):
	    for s in f.samples:
	        if s.name == sys.argv[2] and s.labels.get("unit") == sys.argv[3]:
	            print(int(s.value))
	PY
}

# versioned service NAME VERSION [broken]: writes its version to a file when it starts, so
# that the test can tell which definition runs; broken exits 1 right away and restarts.
vsvc() { fx_vservice "$@"; }

start() {
	ap_case "$1"
	fx_reset
	fx_origin file || { ap_fail "$1: fixture origin"; return 1; }
	FX_SETTLE= fx_config "$FX_URL" "" "guard:
  watch: [app.service, \"loop*.service\", tick.timer]
  max_restarts: 2
  window: 1m
  settle: ${2:-2s}"
}

# -------------------------------------------------------------------------------------------
t_loop_refuses() {
	local v2 bytes
	start "a looping watched unit: heartbeat reports it, apply exits 3, override proceeds" || return
	vsvc app.service v1
	printf '[Unit]\nDescription=loop\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=1s\n' |
		fx_write systemd/loop1.service
	fx_commit v1 >/dev/null
	fx_apply guard-v1 || return
	ap_systemctl start loop1.service
	sleep 3.5
	ap_autopull hb1 --user -c "$AP_CFG" heartbeat --json
	ap_expect_rc "$AP_CASE: heartbeat" 0 hb1
	sleep 1.2
	ap_autopull hb2 --user -c "$AP_CFG" heartbeat --json
	sleep 1.2
	ap_autopull hb2 --user -c "$AP_CFG" heartbeat --json
	ap_jq "$AP_CASE: heartbeat says loop1.service is looping" "$AP_TMP/hb2.out" \
		"not d['guard']['ok'] and [l['unit'] for l in d['guard']['looping']] == ['loop1.service']"
	ap_jq "$AP_CASE: the healthy app.service is not looping" "$AP_TMP/hb2.out" \
		"'app.service' not in [l['unit'] for l in d['guard']['looping']]"
	check "metrics parse with the Prometheus parser" promparse "$METRICS"
	check "metrics: loop1.service looping" [ "$(metric autopull_unit_looping loop1.service)" = 1 ]
	check "metrics: app.service not looping" [ "$(metric autopull_unit_looping app.service)" = 0 ]
	check "metrics: app.service active" [ "$(metric systemd_unit_active app.service)" = 1 ]
	check "metrics: loop1 restart count climbs" [ "$(metric systemd_unit_restart_count_total loop1.service)" -ge 2 ]
	vsvc app.service v2
	v2=$(fx_commit v2)
	bytes=$(sha256sum <"$AP_UNIT_DIR/app.service")
	ap_autopull refused --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply refused" 3 refused
	check "message names the unit and the window" grep -q "loop1.service.*restarts in the last 60s\|loop1.service.*restart" "$AP_TMP/refused.err"
	check "nothing installed" [ "$(sha256sum <"$AP_UNIT_DIR/app.service")" = "$bytes" ]
	check "applied unchanged" [ "$(applied)" != "$v2" ]
	cp "$AP_STATE_DIR/heartbeat" "$AP_TMP/history.before"
	ap_autopull dry --user -c "$AP_CFG" --dry-run --json
	check "a dry run does not add to the history" cmp -s "$AP_STATE_DIR/heartbeat" "$AP_TMP/history.before"
	ap_jq "$AP_CASE: dry-run shows the guard verdict" "$AP_TMP/dry.out" \
		"d['guard']['ok'] is False and d['guard']['looping'][0]['unit'] == 'loop1.service' and d['guard']['looping'][0]['window_s'] == 60 and d['guard']['looping'][0]['restarts'] >= 1"
	ap_autopull noreason --user -c "$AP_CFG" --override-guard apply
	ap_expect_rc "$AP_CASE: --override-guard without --reason" 2 noreason
	ap_autopull override --user -c "$AP_CFG" --override-guard --reason "ship the fix for loop1" apply
	ap_expect_rc "$AP_CASE: --override-guard proceeds" 0 override
	check "applied = v2" [ "$(applied)" = "$v2" ]
	check "the reason is recorded" grep -q "ship the fix for loop1" "$AP_STATE_DIR/overrides"
	ap_systemctl stop loop1.service
}

t_rollback() {
	local v2 v3 v4 web
	start "a commit that breaks a healthy service is rolled back, marked bad, skipped" 2s || return
	vsvc app.service v1
	fx_commit v1 >/dev/null
	fx_apply rb-v1 || return
	V1=$(applied)
	check "app.service runs v1" ap_wait_file_grep "$FX_LOG/app.versions" v1 5
	vsvc app.service v2 broken
	v2=$(fx_commit v2-broken)
	ap_autopull broken --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply of the breaking commit" 1 broken
	check "message names the unit, its Result and restarts" grep -q "app.service.*Result=.*NRestarts=" "$AP_TMP/broken.err"
	check "message says rolled back" grep -q "rolled back" "$AP_TMP/broken.err"
	check "old unit file restored" grep -q "echo v1" "$AP_UNIT_DIR/app.service"
	check "app.service active again" ap_wait_prop app.service ActiveState active 5
	check "it runs the old definition again" [ "$(tail -n 1 "$FX_LOG/app.versions")" = v1 ]
	check "applied unchanged" [ "$(applied)" = "$V1" ]
	check "the commit is marked bad" grep -q "^$v2 " "$AP_STATE_DIR/bad"
	ap_autopull skip --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: next tick" 0 skip
	check "next tick skips the bad commit" grep -q "skipping ${v2:0:12}" "$AP_TMP/skip.err"
	check "still on the old definition" grep -q "echo v1" "$AP_UNIT_DIR/app.service"
	vsvc app.service v3
	v3=$(fx_commit v3-good)
	ap_autopull good --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: a newer good commit applies" 0 good
	check "applied = v3" [ "$(applied)" = "$v3" ]
	check "app.service runs v3" ap_wait_file_grep "$FX_LOG/app.versions" v3 5
}

t_stale_timer() {
	start "a watched timer that stopped firing is stale" || return
	printf '[Unit]\nDescription=tick\n[Timer]\nOnActiveSec=200ms\nOnUnitActiveSec=1s\nAccuracySec=1ms\n' | fx_write systemd/tick.timer
	fx_oneshot tick.service
	fx_commit v1 >/dev/null
	fx_apply stale-v1 || return
	ap_systemctl start tick.timer
	check "the timer triggered" ap_wait_prop tick.service Result success 5
	sleep 1.5
	ap_autopull fresh --user -c "$AP_CFG" heartbeat --json
	ap_jq "$AP_CASE: a running timer is not stale" "$AP_TMP/fresh.out" "d['guard']['stale'] == []"
	ap_systemctl stop tick.timer
	sleep 3
	ap_autopull stale --user -c "$AP_CFG" heartbeat --json
	ap_jq "$AP_CASE: stopped timer is stale" "$AP_TMP/stale.out" "[s['unit'] for s in d['guard']['stale']] == ['tick.timer']"
	ap_jq "$AP_CASE: stale does not block" "$AP_TMP/stale.out" "d['guard']['ok'] is True"
	check "metrics: tick.timer stale" [ "$(metric autopull_timer_stale tick.timer)" = 1 ]
}

# -------------------------------------------------------------------------------------------
if [ ! -x "$AP_BIN" ]; then
	ap_fail "no autopull binary at $AP_BIN"
	exit 1
fi
t_loop_refuses
t_rollback
t_stale_timer
fx_reset
