# shellcheck shell=bash
# Health probes in the settle window, against the real user manager: a service that stays
# "active" while its new commit makes it answer 500 is rolled back by its http probe (old
# file back, old unit healthy again); an exec probe that hangs is killed at its deadline and
# counts as a failure; a healthy probe lets the apply through; a tcp probe from the unit
# file's X-AutoPull-Health= catches a service that listens on the wrong port. Sourced by
# run.sh after lib.sh (and fixtures.sh).

# shellcheck source=probes.sh
. "$AP_DIR/probes.sh"

# The health server: answers GET /healthz with the status, on the port, that its config file
# (installed by autopull) names: "STATUS PORT". Read at start.
hc_server() {
	ap_user_write "$FX_LOG/hc.py" <<-'PY'
	import http.server, sys
	status, port = open(sys.argv[1]).read().split()[:2]
	class H(http.server.BaseHTTPRequestHandler):
	    def do_GET(self):
	        self.send_response(int(status) if self.path.startswith("/healthz") else 404)
	        self.end_headers()
	        self.wfile.write(b"state\n")
	    def log_message(self, *a):
	        pass
	http.server.HTTPServer(("127.0.0.1", int(port)), H).serve_forever()
	PY
}

# hc_unit [EXTRA_UNIT_LINE]: systemd/hc.service running the server on $FX_ETC/hc/conf.
hc_unit() {
	{
		printf '[Unit]\nDescription=health server\nStartLimitIntervalSec=0\n%s\n' "${1:-}"
		printf '[Service]\nExecStart=%s %s/hc.py %s/hc/conf\n' "$AP_PY" "$FX_LOG" "$FX_ETC"
		printf '\n[Install]\nWantedBy=default.target\n'
	} | fx_write systemd/hc.service
}

# start NAME HEALTH_YAML [UNIT_LINE]: the server's config "200 $PORT" applied as v1.
start() {
	ap_case "$1"
	fx_reset
	fx_origin file || { ap_fail "$1: fixture origin"; return 1; }
	PORT=$(free_port) || { ap_fail "$1: no free port"; return 1; }
	{
		fx_config_head "$FX_URL"
		printf '  - src: hc/conf\n    dest: %s/hc/conf\n    restart: [hc.service]\n' "$FX_ETC"
		printf 'guard:\n  settle: 1s\n'
		[ -n "$2" ] && printf '%s\n' "${2//@PORT@/$PORT}"
	} | ap_user_write "$AP_CFG"
	hc_server
	echo ready | ap_user_write "$FX_LOG/ready"
	local line=${3:-}
	hc_unit "${line//@PORT@/$PORT}"
	echo "200 $PORT" | fx_write hc/conf
	V1=$(fx_commit v1) || { ap_fail "$1: commit v1"; return 1; }
	fx_apply "${1//[^A-Za-z0-9]/-}-v1" || return 1
	check "the server is up" ap_wait_prop hc.service ActiveState active 5
}

# healthz: the status the running server answers now.
healthz() {
	"$AP_PY" -c 'import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=3).status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("down")' "http://127.0.0.1:$PORT/healthz"
}

# -------------------------------------------------------------------------------------------
t_http_500_rolls_back() {
	local v2 inv1 bytes
	start "1: active but answering 500: rolled back by the http probe" "health:
  hc.service:
    http: \"http://probe:s3cret@127.0.0.1:@PORT@/healthz?token=s3cret\"
    timeout: 1s
    interval: 200ms
    successes: 2" || return
	check "v1 answers 200" [ "$(healthz)" = 200 ]
	inv1=$(inv hc.service)
	bytes=$(sha256sum <"$FX_ETC/hc/conf")
	echo "500 $PORT" | fx_write hc/conf
	v2=$(fx_commit v2-500)
	ap_autopull bad --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: the apply fails and is rolled back" 1 bad
	check "the message names the unit and the probe" \
		grep -q "unit 'hc.service' failed its health probe (http http://127.0.0.1:$PORT/healthz)" "$AP_TMP/bad.err"
	check "and its last result" grep -q "last: HTTP 500" "$AP_TMP/bad.err"
	check "the message says rolled back" grep -q "rolled back" "$AP_TMP/bad.err"
	check "no secret of the URL in the output" not grep -q s3cret "$AP_TMP/bad.err" "$AP_TMP/bad.out"
	check "no secret in the state" not grep -rq s3cret --exclude-dir=repo.git --exclude-dir=backup "$AP_STATE_DIR"
	check "the old config file is back (bytes)" [ "$(sha256sum <"$FX_ETC/hc/conf")" = "$bytes" ]
	check "hc.service was restarted (InvocationID)" [ "$(inv hc.service)" != "$inv1" ]
	check "hc.service is active" [ "$(ap_unit_prop hc.service ActiveState)" = active ]
	check "and healthy again: 200" [ "$(healthz)" = 200 ]
	check "applied unchanged" [ "$(applied)" = "$V1" ]
	check "the commit is marked bad" grep -q "^$v2 " "$AP_STATE_DIR/bad"
	ap_autopull st --user -c "$AP_CFG" status
	check "status names the probe and its result" grep -q "hc.service' failed its health probe.*HTTP 500" "$AP_TMP/st.out"
	check "status shows the unit's last probe (healthy again after the rollback)" \
		grep -q "probes:   hc.service healthy (http probe, 1 failed so far): HTTP 200" "$AP_TMP/st.out"
	ap_autopull stj --user -c "$AP_CFG" status --json
	ap_jq "$AP_CASE: status --json lists the probe" "$AP_TMP/stj.out" \
		"d['probes'] == [{'unit': 'hc.service', 'kind': 'http', 'healthy': True, 'failures': 1, 'result': 'HTTP 200'}]"
	ap_autopull lg --user -c "$AP_CFG" log
	check "the event names the probe" grep -q "failed its health probe.*HTTP 500" "$AP_TMP/lg.out"
	check "metrics: one probe failure of hc.service (http)" [ "$(metric autopull_probe_failures_total hc.service http)" = 1 ]
	check "metrics: hc.service healthy after the rollback" [ "$(metric autopull_unit_healthy hc.service)" = 1 ]
}

t_exec_hangs() {
	local pidfile
	start "2: an exec probe that hangs is killed at its deadline and counts as a failure" "health:
  hc.service:
    exec: [/bin/sh, -c, \"if grep -q hang $FX_ETC/hc/conf; then echo \$\$ > $FX_LOG/probe.pid; exec sleep 60; fi\"]
    timeout: 1s" || return
	pidfile=$FX_LOG/probe.pid
	check "the v1 probe did not hang" [ ! -e "$pidfile" ]
	printf '200 %s\nhang\n' "$PORT" | fx_write hc/conf
	fx_commit v2-hang >/dev/null
	ap_autopull hang --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: rolled back" 1 hang
	check "the probe was killed at its timeout" grep -q "killed at its 1000ms timeout" "$AP_TMP/hang.err"
	check "the probe had started" [ -s "$pidfile" ]
	check "the hung probe is gone" not quiet kill -0 "$(cat "$pidfile")"
	check "applied unchanged" [ "$(applied)" = "$V1" ]
	check "old config back" not grep -q hang "$FX_ETC/hc/conf"
	check "metrics: one exec probe failure" [ "$(metric autopull_probe_failures_total hc.service exec)" = 1 ]
}

t_healthy_applies() {
	local v2 inv1
	start "3: a healthy probe lets the apply through" "health:
  \"hc*.service\": {http: \"http://127.0.0.1:@PORT@/healthz\", interval: 100ms, successes: 3}" || return
	inv1=$(inv hc.service)
	printf '200 %s\n# v2\n' "$PORT" | fx_write hc/conf
	v2=$(fx_commit v2-ok)
	ap_autopull ok --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: applied" 0 ok
	check "applied = v2" [ "$(applied)" = "$v2" ]
	check "hc.service was restarted" [ "$(inv hc.service)" != "$inv1" ]
	check "metrics: hc.service healthy" [ "$(metric autopull_unit_healthy hc.service)" = 1 ]
	check "metrics: no probe failure" [ "$(metric autopull_probe_failures_total hc.service http)" = 0 ]
	ap_autopull cc --user -c "$AP_CFG" check-config
	check "check-config shows the probe" grep -q "hc\*.service: http http://127.0.0.1:$PORT/healthz" "$AP_TMP/cc.out"
	ap_autopull ccj --user -c "$AP_CFG" check-config --json
	ap_jq "$AP_CASE: check-config --json lists it" "$AP_TMP/ccj.out" \
		"d['health'] == [{'unit': 'hc*.service', 'probe': 'http http://127.0.0.1:$PORT/healthz', 'timeout_usec': 5000000, 'interval_usec': 100000, 'successes': 3}] and d['guard_probe'] is False"
}

t_tcp_from_unit_file() {
	local other
	start "4: X-AutoPull-Health=tcp in the unit file: a server on the wrong port is rolled back" "" \
		"X-AutoPull-Health=tcp 127.0.0.1:@PORT@" || return
	other=$(free_port) || { ap_fail "$AP_CASE: no second port"; return; }
	echo "200 $other" | fx_write hc/conf
	fx_commit v2-port >/dev/null
	ap_autopull port --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: rolled back" 1 port
	check "the message names the tcp probe and the refusal" \
		grep -q "(tcp 127.0.0.1:$PORT).*connect: Connection refused" "$AP_TMP/port.err"
	check "the old port is served again" [ "$(healthz)" = 200 ]
	check "applied unchanged" [ "$(applied)" = "$V1" ]
	# The configuration wins over the unit file.
	{
		fx_config_head "$FX_URL"
		printf '  - src: hc/conf\n    dest: %s/hc/conf\n    restart: [hc.service]\n' "$FX_ETC"
		printf 'guard:\n  settle: 1s\nhealth:\n  hc.service: {tcp: "127.0.0.1:%s"}\n' "$other"
	} | ap_user_write "$AP_CFG"
	printf '200 %s\n# v3\n' "$other" | fx_write hc/conf
	fx_commit v3-port >/dev/null
	ap_autopull port2 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: health: wins over X-AutoPull-Health=" 0 port2
	check "the new port is served" [ "$(PORT=$other healthz)" = 200 ]
}

t_malformed_refused() {
	local inv1
	start "5: a malformed X-AutoPull-Health= is refused before anything changes" "" || return
	inv1=$(inv hc.service)
	hc_unit "X-AutoPull-Health=ping 127.0.0.1"
	echo "500 $PORT" | fx_write hc/conf
	fx_commit v2-malformed >/dev/null
	fx_snapshot before
	ap_autopull bad --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: refused as invalid" 4 bad
	check "the message names the file, the line and the problem" \
		grep -q "systemd/hc.service:5: X-AutoPull-Health=: the kind is not exec, http or tcp" "$AP_TMP/bad.err"
	fx_snapshot after
	check "host unchanged" cmp -s "$AP_TMP/before.snap" "$AP_TMP/after.snap"
	check "hc.service not restarted" [ "$(inv hc.service)" = "$inv1" ]
}

t_rollback_fails_too() {
	start "6: a probe that fails on the old files too: ROLLBACK FAILED, the guard is tripped" "health:
  hc.service: {exec: [/usr/bin/test, -e, $FX_LOG/ready], timeout: 1s, interval: 200ms}" || return
	# The probe depends on something outside the repository, which goes away.
	check "v1 was healthy" [ -e "$FX_LOG/ready" ] || return
	rm -f "$FX_LOG/ready"
	printf '200 %s\n# v2\n' "$PORT" | fx_write hc/conf
	fx_commit v2 >/dev/null
	ap_autopull both --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: the apply fails" 1 both
	check "the rollback's own probe failure is named" grep -q "ROLLBACK FAILED.*hc.service' failed its health probe (exec /usr/bin/test -e $FX_LOG/ready)" "$AP_TMP/both.err"
	check "the guard is tripped" [ -s "$AP_STATE_DIR/guard-tripped" ]
	check "applied unchanged" [ "$(applied)" = "$V1" ]
	printf '200 %s\n# v3\n' "$PORT" | fx_write hc/conf
	fx_commit v3 >/dev/null
	ap_autopull next --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: a newer commit is refused by the tripped guard" 3 next
}

t_linked_unit() {
	local inv1
	start "7: a restarted unit whose file is a symlink (systemctl link) has no probe, and applies" "" || return
	printf '[Unit]\nDescription=linked\n[Service]\nExecStart=/bin/sleep infinity\n' |
		ap_user_write "$FX_LOG/linked.service"
	ap_as_user ln -s "$FX_LOG/linked.service" "$AP_UNIT_DIR/linked.service"
	ap_systemctl daemon-reload
	ap_systemctl start linked.service
	inv1=$(inv linked.service)
	{
		fx_config_head "$FX_URL"
		printf '  - src: hc/conf\n    dest: %s/hc/conf\n    restart: [hc.service, linked.service]\n' "$FX_ETC"
		printf 'guard:\n  settle: 1s\n'
	} | ap_user_write "$AP_CFG"
	printf '200 %s\n# v2\n' "$PORT" | fx_write hc/conf
	fx_commit v2 >/dev/null
	ap_autopull linked --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: applied" 0 linked
	check "linked.service was restarted" [ "$(inv linked.service)" != "$inv1" ]
	ap_systemctl stop linked.service
	rm -f "$AP_UNIT_DIR/linked.service"
}

t_http_500_rolls_back
t_exec_hangs
t_healthy_applies
t_tcp_from_unit_file
t_malformed_refused
t_rollback_fails_too
t_linked_unit
