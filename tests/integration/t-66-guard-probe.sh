# shellcheck shell=bash
# The guard runs health probes (guard.probe: true), against the real user manager: a watched
# unit that stays active while its probe fails more than max_restarts times in the window is
# unhealthy; apply refuses (exit 3) and changes nothing, --override-guard --reason proceeds;
# status, heartbeat --json and the metrics name it. Sourced by run.sh after lib.sh (and
# fixtures.sh).

# shellcheck source=probes.sh
. "$AP_DIR/probes.sh"

# The server answers GET /healthz with the status in $FX_LOG/status, read at each request (the
# test breaks and heals it without autopull).
start() {
	ap_case "$1"
	fx_reset
	fx_origin file || { ap_fail "$1: fixture origin"; return 1; }
	PORT=$(free_port) || { ap_fail "$1: no free port"; return 1; }
	echo 200 | ap_user_write "$FX_LOG/status"
	ap_user_write "$FX_LOG/hc.py" <<-'PY'
	import http.server, sys
	class H(http.server.BaseHTTPRequestHandler):
	    def do_GET(self):
	        self.send_response(int(open(sys.argv[1]).read().split()[0]))
	        self.end_headers()
	    def log_message(self, *a):
	        pass
	http.server.HTTPServer(("127.0.0.1", int(sys.argv[2])), H).serve_forever()
	PY
	{
		fx_config_head "$FX_URL"
		printf '  - src: env/\n    dest: %s/env/\n    restart: [worker.service]\n' "$FX_ETC"
		printf 'guard:\n  watch: [hc.service]\n  max_restarts: 1\n  window: 10m\n  settle: 1s\n'
		printf '  probe: %s\n' "$2"
		printf 'health:\n  hc.service: {http: "http://127.0.0.1:%s/healthz", timeout: 2s}\n' "$PORT"
	} | ap_user_write "$AP_CFG"
	{
		printf '[Unit]\nDescription=health server\nStartLimitIntervalSec=0\n[Service]\n'
		printf 'ExecStart=%s %s/hc.py %s/status %s\n' "$AP_PY" "$FX_LOG" "$FX_LOG" "$PORT"
		printf '[Install]\nWantedBy=default.target\n'
	} | fx_write systemd/hc.service
	fx_service worker.service install
	echo A=1 | fx_write env/app.env
	V1=$(fx_commit v1) || { ap_fail "$1: commit v1"; return 1; }
	fx_apply "${1//[^A-Za-z0-9]/-}-v1" || return 1
	check "the server is up" ap_wait_prop hc.service ActiveState active 5
}

# -------------------------------------------------------------------------------------------
t_unhealthy_refuses() {
	local v2 inv1 bytes
	start "1: a watched unit failing its probe: heartbeat reports it, apply exits 3, override proceeds" true || return
	ap_autopull hb0 --user -c "$AP_CFG" heartbeat --json
	ap_jq "$AP_CASE: healthy at first" "$AP_TMP/hb0.out" "d['guard']['ok'] and d['guard']['unhealthy'] == []"
	echo 503 | ap_user_write "$FX_LOG/status"
	ap_autopull hb1 --user -c "$AP_CFG" heartbeat --json
	ap_jq "$AP_CASE: one failure is not yet unhealthy (max_restarts 1)" "$AP_TMP/hb1.out" "d['guard']['ok']"
	ap_autopull hb2 --user -c "$AP_CFG" heartbeat
	check "the heartbeat that makes hc.service unhealthy says so" \
		grep -q "guard: REFUSING; hc.service UNHEALTHY: failed its http probe 2 times in 600s; last: HTTP 503" "$AP_TMP/hb2.out"
	ap_autopull hb3 --user -c "$AP_CFG" heartbeat
	check "the next one, with no change, says nothing" [ ! -s "$AP_TMP/hb3.out" ]
	ap_autopull hb4 --user -c "$AP_CFG" heartbeat --json
	ap_jq "$AP_CASE: heartbeat --json lists hc.service as unhealthy" "$AP_TMP/hb4.out" \
		"not d['guard']['ok'] and [u['unit'] for u in d['guard']['unhealthy']] == ['hc.service'] and 'HTTP 503' in d['guard']['unhealthy'][0]['why']"
	check "hc.service is still active" [ "$(ap_unit_prop hc.service ActiveState)" = active ]
	check "metrics: four http probe failures" [ "$(metric autopull_probe_failures_total hc.service http)" = 4 ]
	check "metrics: hc.service not healthy" [ "$(metric autopull_unit_healthy hc.service)" = 0 ]
	inv1=$(inv worker.service)
	bytes=$(sha256sum <"$FX_ETC/env/app.env")
	echo A=2 | fx_write env/app.env
	v2=$(fx_commit v2)
	ap_autopull refused --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply refused by the guard" 3 refused
	check "the refusal names the unit and its probe" \
		grep -q "unit 'hc.service' is unhealthy: failed its http probe [0-9]* times in 600s; last: HTTP 503" "$AP_TMP/refused.err"
	check "and the override" grep -q "override-guard --reason" "$AP_TMP/refused.err"
	check "nothing installed" [ "$(sha256sum <"$FX_ETC/env/app.env")" = "$bytes" ]
	check "worker.service not restarted" [ "$(inv worker.service)" = "$inv1" ]
	check "applied unchanged" [ "$(applied)" = "$V1" ]
	ap_autopull st --user -c "$AP_CFG" status
	check "status shows hc.service UNHEALTHY" grep -q "hc.service UNHEALTHY: failed its http probe" "$AP_TMP/st.out"
	check "and its last probe failing" grep -q "probes:   hc.service FAILING (http probe, [0-9]* failed so far): HTTP 503" "$AP_TMP/st.out"
	ap_autopull over --user -c "$AP_CFG" --override-guard --reason "hc is being fixed" apply
	ap_expect_rc "$AP_CASE: --override-guard proceeds" 0 over
	check "applied = v2" [ "$(applied)" = "$v2" ]
	check "worker.service restarted on the new file" [ "$(inv worker.service)" != "$inv1" ]
	check "the reason is recorded" grep -q "hc is being fixed" "$AP_STATE_DIR/overrides"
}

t_probe_off() {
	start "2: without guard.probe the heartbeat runs no probe" false || return
	echo 503 | ap_user_write "$FX_LOG/status"
	ap_autopull off1 --user -c "$AP_CFG" heartbeat --json
	ap_autopull off2 --user -c "$AP_CFG" heartbeat --json
	ap_jq "$AP_CASE: the guard is ok" "$AP_TMP/off2.out" "d['guard']['ok'] and d['guard']['unhealthy'] == []"
	check "no failed probe was recorded" not grep -qs "^0 " "$AP_STATE_DIR/probes"
}

t_unhealthy_refuses
t_probe_off
