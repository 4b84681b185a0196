# shellcheck shell=bash
# Observability against the real thing: Debian's VictoriaMetrics and vmalert, started here on
# 127.0.0.1 with a temporary storage dir and stopped by pid. With a crash-looping watched
# unit, a stopped watched timer, a healthy timer, a unit restarted once by a deploy and a
# failed unit that guard.watch does not name: the heartbeat's push lands (queried back),
# vmalert evaluates the shipped rules and the restart-loop and stale-timer alerts fire for
# exactly those units; the rule file passes `vmalert -dryRun`; every metric a rule or a
# dashboard panel names is exported; a dead, a hanging and a TLS endpoint leave the apply
# and the guard working. A second host (its own state, its pushes relabelled by
# VictoriaMetrics) whose unit restarted 5 times before its first push fires nothing, a loop
# that starts after it fires, and when it stops pushing while this host goes on, it fires
# AutopullHostSilent. Ten minutes of imported history: the restart-loop rule counts across
# a deploy's reset on a series older than its window. Sourced by run.sh after lib.sh (and
# fixtures.sh).

check_eq() { ap_check_eq "$AP_CASE: $1" "$2" "$3"; }
obs() { "$AP_PY" "$AP_DIR/obs.py" "$@"; }
# vmalert runs as the test user: it reads a copy of the shipped rules (the checkout may sit
# below a directory only root can enter)
SHARE=$AP_BINDIR/share
install -d -m 0755 "$SHARE" && install -m 0644 "$AP_ROOT"/share/autopull/* "$SHARE/" ||
	ap_fail "cannot copy share/autopull to $SHARE"
METRICS=$AP_STATE_DIR/metrics.prom
OBS=$AP_TMP/obs
HOST=$(uname -n) # what gethostname() returns

# free_port: a random free port in 20000-29999.
free_port() {
	local p
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		p=$((20000 + RANDOM % 10000))
		ap_port_free "$p" && { echo "$p"; return 0; }
	done
	return 1
}

# serve TAG URL CMD...: start CMD as the test user, tracked as TAG (stopped by pid), and
# wait up to 10 s until URL answers.
serve() {
	local tag=$1 url=$2 i=0 pid; shift 2
	(ap_user_exec "$@") >"$OBS/$tag.log" 2>&1 </dev/null 9>&- &
	pid=$!
	ap_track "$tag" "$pid"
	while [ $i -lt 200 ] && ap_pid_alive "$pid"; do
		obs up "$url" && return 0
		sleep 0.05; i=$((i + 1))
	done
	ap_fail "$tag did not start (log $OBS/$tag.log)"
	tail -n 5 "$OBS/$tag.log"
	return 1
}

# receiver TAG PORT ARGS...: receiver.py on PORT logging to $OBS/TAG.jsonl.
receiver() {
	local tag=$1 port=$2; shift 2
	(ap_user_exec "$AP_PY" "$AP_BINDIR/receiver.py" --port "$port" --log "$OBS/$tag.jsonl" \
		--ready-file "$OBS/$tag.ready" "$@") >"$OBS/$tag.log" 2>&1 </dev/null 9>&- &
	ap_track "$tag" $!
	local i=0
	while [ ! -e "$OBS/$tag.ready" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
	[ -e "$OBS/$tag.ready" ] || { ap_fail "receiver $tag did not start"; return 1; }
}

# cfg FILE PUSH_YAML: the test config with the given push lines.
cfg() {
	FX_SETTLE= fx_config "$FX_URL" "$1" "guard:
  watch: [app.service, loop.service, tick.timer, ok.timer]
  max_restarts: 3
  window: 1m
  settle: 1s
$2"
}

# wait_restarts UNIT N: until NRestarts >= N (10 s at most).
wait_restarts() {
	local i=0
	until [ "$(ap_unit_prop "$1" NRestarts)" -ge "$2" ]; do
		[ $i -ge 100 ] && return 1
		sleep 0.1; i=$((i + 1))
	done
}

# wait_notified LINE...: until the notifier received every "ALERTNAME<TAB>UNIT" (10 s at most).
wait_notified() {
	local i=0 got l missing
	while [ $i -lt 40 ]; do
		got=$(obs notified "$OBS/notify.jsonl" 2>/dev/null)
		missing=0
		for l in "$@"; do grep -qxF "$l" <<<"$got" || missing=1; done
		[ $missing = 0 ] && return 0
		sleep 0.25; i=$((i + 1))
	done
	return 1
}

# start_vmalert RULES: vmalert on VictoriaMetrics, evaluating RULES every 2 s.
start_vmalert() {
	serve vmalert "$VMALERT_URL/api/v1/alerts" vmalert -datasource.url="$VM_URL" -rule="$1" \
		-evaluationInterval=2s -notifier.url="http://127.0.0.1:$NOTIFY_PORT" \
		-httpListenAddr="127.0.0.1:$VMALERT_PORT" -loggerLevel=WARN
}

# wait_evaluated: until vmalert evaluated every rule twice after now (20 s at most).
wait_evaluated() {
	local i=0 since
	since=$(date +%s.%N)
	until obs evaluated "$VMALERT_URL" "$since"; do
		[ $i -ge 80 ] && return 1
		sleep 0.25; i=$((i + 1))
	done
	since=$(date +%s.%N)
	until obs evaluated "$VMALERT_URL" "$since"; do
		[ $i -ge 160 ] && return 1
		sleep 0.25; i=$((i + 1))
	done
}

# wait_value EXPR WANT: until EXPR's values are WANT (10 s at most). VictoriaMetrics caches
# which series a filter matched and may keep an answer from before a push landed, so each
# poll puts a word of its own in place of POLL.
wait_value() {
	local i=0
	until [ "$(qv "${1//POLL/poll-$i}")" = "$2" ]; do
		[ $i -ge 40 ] && return 1
		sleep 0.25; i=$((i + 1))
	done
}

# wait_seen HOST UNIT: until vmalert's canary sees 4 samples of UNIT's restart counter (20 s).
wait_seen() {
	local i=0
	until obs seen "$VMALERT_URL" "$1" "$2"; do
		[ $i -ge 80 ] && return 1
		sleep 0.25; i=$((i + 1))
	done
}

# newhost_cfg FILE WATCH: the config of a second host, NEWHOST: its own state dir, a guard
# window of 2 s, and a push whose host label VictoriaMetrics replaces (extra_label).
newhost_cfg() {
	printf 'repo:\n  url: %s\nscope: user\nstate_dir: %s\nunits: [systemd/]\nguard:\n  watch: [%s]\n  max_restarts: 3\n  window: 2s\n  settle: 1s\n  push: %s\n' \
		"$FX_URL" "$OBS/newhost" "$2" "$VM_URL/api/v1/import/prometheus?extra_label=host=$NEWHOST" |
		ap_user_write "$1"
}

hb() { ap_autopull "$1" --user -c "${2:-$AP_CFG}" heartbeat --json; }

# q EXPR [ARGS]: the VictoriaMetrics instant query result, one JSON line per series.
q() { obs query "$VM_URL" "$@"; }
qv() { q "$@" | "$AP_PY" -c 'import json,sys; print(" ".join("%g" % json.loads(l)["value"] for l in sys.stdin if l.strip()))'; }
hosts() { "$AP_PY" -c 'import json,sys; print(" ".join(json.loads(l)["labels"]["host"] for l in sys.stdin if l.strip()))'; }

units() {
	printf '[Unit]\nDescription=app %s\nStartLimitIntervalSec=0\n[Service]\n' "$1" | fx_write systemd/app.service
	# the first start fails once: NRestarts=1 until a deploy restarts it
	printf 'ExecStart=/bin/sh -c "if [ ! -e %s/app.crashed ]; then touch %s/app.crashed; exit 1; fi; exec sleep infinity"\nRestart=on-failure\nRestartSec=100ms\n' \
		"$FX_LOG" "$FX_LOG" >>"$FX_ORIGIN/systemd/app.service"
	printf '[Unit]\nDescription=loop\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=200ms\n' |
		fx_write systemd/loop.service
	printf '[Unit]\nDescription=tick\n[Timer]\nOnActiveSec=100ms\nOnUnitActiveSec=1s\nAccuracySec=1ms\n' | fx_write systemd/tick.timer
	fx_oneshot tick.service
	printf '[Unit]\nDescription=ok\n[Timer]\nOnActiveSec=100ms\nOnUnitActiveSec=20s\nAccuracySec=1ms\n' | fx_write systemd/ok.timer
	fx_oneshot ok.service
	# restarts 5 times by itself, then runs: a unit whose restarts are history
	printf '[Unit]\nDescription=flaky\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sh -c "n=$$(cat %s/flaky.n 2>/dev/null || echo 0); echo $$((n + 1)) >%s/flaky.n; [ $$n -ge 5 ] || exit 1; exec sleep infinity"\nRestart=on-failure\nRestartSec=100ms\n' \
		"$FX_LOG" "$FX_LOG" | fx_write systemd/flaky.service
	printf '[Unit]\nDescription=fails once\n[Service]\nType=oneshot\nExecStart=/bin/sh -c "exit 7"\n' | fx_write systemd/fail.service
}

# -------------------------------------------------------------------------------------------
t_endpoints() {
	local dead hang tls v2 inv
	ap_case "push: a dead, a hanging and a TLS endpoint leave apply and guard working"
	fx_reset
	fx_origin file || { ap_fail "$AP_CASE: fixture origin"; return 1; }
	dead=$(free_port) hang=$(free_port) tls=$(free_port)
	cfg "$AP_CFG" "  push: $VM_URL/api/v1/import/prometheus"
	cfg "$OBS/dead.yaml" "  push: http://127.0.0.1:$dead/api/v1/import/prometheus"
	cfg "$OBS/hang.yaml" "  push: http://127.0.0.1:$hang/api/v1/import/prometheus
  push_timeout: 1s"
	cfg "$OBS/tls.yaml" "  push: https://localhost:$tls/api/v1/import/prometheus
  push_token_file: $OBS/token
  push_ca_file: $OBS/cert.pem"
	cfg "$OBS/badca.yaml" "  push: https://localhost:$tls/api/v1/import/prometheus
  push_token_file: $OBS/token
  push_ca_file: $OBS/other.pem"
	units v1
	fx_commit v1 >/dev/null
	fx_apply obs-v1 || return 1
	ap_systemctl start app.service ok.timer tick.timer
	check "app.service crashed once, then runs" ap_wait_prop app.service NRestarts 1 5
	check "app.service active" ap_wait_prop app.service ActiveState active 5
	hb hb-first
	ap_expect_rc "$AP_CASE: heartbeat pushing to VictoriaMetrics" 0 hb-first
	check "no push warning" eval '! grep -q "push" "$AP_TMP/hb-first.err"'

	units v2
	v2=$(fx_commit v2)
	inv=$(ap_unit_prop app.service InvocationID)
	ap_autopull dead-apply --user -c "$OBS/dead.yaml" apply
	ap_expect_rc "$AP_CASE: apply with the push endpoint dead" 0 dead-apply
	check "applied = v2" [ "$(cat "$AP_STATE_DIR/applied")" = "$v2" ]
	check "the deploy restarted app.service (NRestarts back to 0)" \
		eval '[ "$(ap_unit_prop app.service InvocationID)" != "$inv" ] && [ "$(ap_unit_prop app.service NRestarts)" = 0 ]'
	check "the failed push is a warning naming the URL" \
		grep -q "failed to push the metrics to 'http://127.0.0.1:$dead/api/v1/import/prometheus'" "$AP_TMP/dead-apply.err"
	check "the failures are counted (heartbeat before and after the apply)" grep -qx "push_failures 2" "$AP_STATE_DIR/counters"
	check "the metrics file was written anyway" grep -q '^autopull_push_failures_total{host=".*"} 1.000$' "$METRICS"
	hb dead-hb "$OBS/dead.yaml"
	ap_expect_rc "$AP_CASE: heartbeat with the endpoint dead" 0 dead-hb
	ap_jq "$AP_CASE: the guard still judges (ok)" "$AP_TMP/dead-hb.out" "d['guard']['ok'] is True"

	receiver hang "$hang" --hang || return 1
	hb hang-hb "$OBS/hang.yaml"
	ap_expect_rc "$AP_CASE: heartbeat with a hanging endpoint (push_timeout 1s)" 0 hang-hb
	check "the push timed out" grep -qi "failed to push.*timed out" "$AP_TMP/hang-hb.err"
	ap_untrack_stop hang 5

	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost \
		-addext subjectAltName=DNS:localhost -keyout "$OBS/key.pem" -out "$OBS/cert.pem" 2>/dev/null
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost \
		-keyout "$OBS/other-key.pem" -out "$OBS/other.pem" 2>/dev/null
	printf 'tok-%s\n' "$RANDOM$RANDOM" >"$OBS/token"
	chown "$AP_UID:$AP_GID" "$OBS"/*.pem "$OBS/token"
	chmod 0600 "$OBS/token"
	receiver tls "$tls" --tls "$OBS/cert.pem" "$OBS/key.pem" || return 1
	hb tls-hb "$OBS/tls.yaml"
	ap_expect_rc "$AP_CASE: heartbeat pushing over TLS with a bearer token" 0 tls-hb
	check "no warning" eval '! grep -q "push" "$AP_TMP/tls-hb.err"'
	ap_jq "$AP_CASE: the push arrived with the token and the metrics" "$OBS/tls.jsonl" \
		"d['headers']['Authorization'] == 'Bearer $(cat "$OBS/token")' and 'autopull_guard_ok{host=\"$HOST\"} 1.000' in d['body'] and d['headers']['Content-Type'].startswith('text/plain')"
	hb badca-hb "$OBS/badca.yaml"
	ap_expect_rc "$AP_CASE: heartbeat when the server's certificate is not trusted" 0 badca-hb
	check "the push failed on the certificate" grep -qi "failed to push.*certificate" "$AP_TMP/badca-hb.err"
	check "the token is in no message" eval '! grep -qF "$(cat "$OBS/token")" "$AP_TMP"/*-hb.err'
	ap_untrack_stop tls 5

	# libcurl is loaded only when a push is due: a host without it still runs, and says why.
	mkdir -p "$OBS/nocurl"
	printf 'int aptest_not_curl;\n' | cc -shared -fPIC -x c -o "$OBS/nocurl/libcurl.so.4" - || ap_fail "$AP_CASE: cc"
	ap_as_user env LD_LIBRARY_PATH="$OBS/nocurl" "$AP_BIN" --user -c "$OBS/dead.yaml" heartbeat \
		>"$AP_TMP/nocurl.out" 2>"$AP_TMP/nocurl.err" </dev/null
	echo $? >"$AP_TMP/nocurl.rc"
	ap_expect_rc "$AP_CASE: heartbeat when libcurl cannot be used" 0 nocurl
	check "the push failed naming libcurl" grep -q "failed to push the metrics.*libcurl has no curl_global_init" "$AP_TMP/nocurl.err"
}

t_alerts() {
	local loop1 v3 i firing want
	ap_case "a crash loop and a stopped timer: pushed, queried, alerted"
	ap_systemctl start loop.service fail.service 2>/dev/null
	check "fail.service failed (outside guard.watch)" ap_wait_prop fail.service ActiveState failed 5
	check "loop.service restarts by itself" wait_restarts loop.service 2
	hb loop-1
	sleep 1
	ap_systemctl stop tick.timer
	for i in 2 3 4; do hb "loop-$i"; sleep 0.7; done
	ap_jq "$AP_CASE: the guard sees loop.service looping" "$AP_TMP/loop-4.out" \
		"[l['unit'] for l in d['guard']['looping']] == ['loop.service']"
	ap_jq "$AP_CASE: the guard sees tick.timer stale" "$AP_TMP/loop-4.out" \
		"[s['unit'] for s in d['guard']['stale']] == ['tick.timer']"
	fx_oneshot ok.service "ok v2"
	v3=$(fx_commit v3)
	ap_autopull refused --user -c "$OBS/dead.yaml" apply
	ap_expect_rc "$AP_CASE: with the push endpoint dead the guard still refuses" 3 refused
	check "... and applies nothing" [ "$(cat "$AP_STATE_DIR/applied")" != "$v3" ]

	echo "   pushed series (VictoriaMetrics at $VM_URL):"
	q '{__name__=~"systemd_unit_(active|restart_count_total|last_exit_status)|systemd_timer_.*|autopull_(unit_looping|timer_stale|guard_ok|push_failures_total|last_apply_success)",host="'"$HOST"'"}' \
		--wait 10 --text | sed 's/^/     /'
	loop1=$(qv 'systemd_unit_restart_count_total{unit="loop.service"}')
	check "loop.service's restart counter landed (${loop1:-none} > 3)" [ "${loop1%.*}" -gt 3 ]
	check "series carry the host label" [ -n "$(q "systemd_unit_active{unit=\"loop.service\",host=\"$HOST\"}")" ]
	check "tick.timer is not active" [ "$(qv 'systemd_unit_active{unit="tick.timer"}')" = 0 ]
	check "ok.timer's interval is 20 s" [ "$(qv 'systemd_timer_interval_seconds{unit="ok.timer"}')" = 20 ]
	check "ok.timer's last trigger is recent" [ "$(qv 'time() - systemd_timer_last_trigger_seconds{unit="ok.timer"} < 25')" != "" ]
	check "app.service: VictoriaMetrics saw 1 restart, then the deploy's reset to 0" \
		[ "$(qv 'max_over_time(systemd_unit_restart_count_total{unit="app.service"}[10m])') $(qv 'systemd_unit_restart_count_total{unit="app.service"}')" = "1 0" ]
	check "the failed unit outside guard.watch is exported" \
		[ "$(qv 'systemd_unit_last_exit_status{unit="fail.service"} and on (unit) systemd_unit_state{state="failed"} == 1')" = 7 ]
	check "... without a guard verdict" [ -z "$(q 'autopull_unit_looping{unit="fail.service"}')" ]
	check "the push failures were counted and pushed" [ "$(qv 'autopull_push_failures_total >= 3')" != "" ]
	# The first half of the stale-timer rule on real data: ok.timer is fresh now, and would
	# be stale a minute later without a trigger (more than twice its 20 s interval).
	want='time() - systemd_timer_last_trigger_seconds > 2 * systemd_timer_interval_seconds'
	check "stale-timer rule, first half: ok.timer fresh now" eval '! q "$want" | grep -q ok.timer'
	check "... and stale 60 s on" eval 'q "$want" --at 60 | grep -q ok.timer'

	check "every metric a rule or a dashboard panel uses is exported" \
		obs names "$SHARE/autopull-rules.yml" "$SHARE/grafana-dashboard.json" "$METRICS"
	check "every dashboard query runs on VictoriaMetrics" obs panels "$VM_URL" "$SHARE/grafana-dashboard.json" loop.service
	check "the dashboard: ids, data sources, variables, layout, a panel for every alert" \
		obs dashboard "$SHARE/autopull-rules.yml" "$SHARE/grafana-dashboard.json"
	"$AP_PY" - "$SHARE/grafana-dashboard.json" "$OBS/broken-dash.json" <<-'EOF'
	import json, sys
	d = json.load(open(sys.argv[1]))
	p = [q for q in d["panels"] if q["type"] != "row"]
	p[1]["id"] = p[0]["id"]
	p[2]["datasource"] = {"type": "prometheus", "uid": "other"}
	p[3]["targets"][0]["expr"] += " * $nosuch"
	p[4]["gridPos"] = dict(p[5]["gridPos"])
	p[6]["targets"][0]["expr"] += " and ("
	json.dump(d, open(sys.argv[2], "w"))
	EOF
	obs dashboard "$SHARE/autopull-rules.yml" "$OBS/broken-dash.json" >"$OBS/broken-dash.out"
	check "... and finds the four faults of a broken copy" eval 'for w in "id also used" "data source" \
		"\$nosuch is not a variable" overlaps; do grep -q "$w" "$OBS/broken-dash.out" || exit 1; done'
	check "... whose query that does not parse VictoriaMetrics refuses" \
		eval '! obs panels "$VM_URL" "$OBS/broken-dash.json" loop.service >"$OBS/broken-panels.out"'
	check "vmalert -dryRun accepts the rule file" vmalert -dryRun -rule="$SHARE/autopull-rules.yml" -loggerLevel=ERROR
	sed 's/> 3$/> 3 and (/' "$SHARE/autopull-rules.yml" >"$OBS/broken-rules.yml"
	check "... and refuses a broken copy" eval '! vmalert -dryRun -rule="$OBS/broken-rules.yml" -loggerLevel=FATAL 2>/dev/null'

	# A canary group beside the shipped one: it fires for every restart counter vmalert's
	# queries see 4 samples of, which tells when a quiet rule had the data to judge.
	cat "$SHARE/autopull-rules.yml" - >"$OBS/rules.yml" <<-'EOF'
	  - name: canary
	    rules:
	      - alert: Seen
	        expr: count_over_time(systemd_unit_restart_count_total[5m]) >= 4
	        labels:
	          canary: "yes"
	EOF
	start_vmalert "$OBS/rules.yml" || return 1
	want=$(printf 'AutopullGuardRefusing\t-\tfiring\nAutopullRestartLoop\tloop.service\tfiring\nAutopullTimerStale\ttick.timer\tfiring')
	# Heartbeats go on (every ~2 s) while vmalert evaluates, as the timer would run them.
	for i in $(seq 1 20); do
		firing=$(obs alerts "$VMALERT_URL" "$HOST" 2>/dev/null)
		[ "$firing" = "$want" ] && [ "$i" -gt 4 ] && break
		hb "alert-$i"
		sleep 1
	done
	echo "   alerts (vmalert):"
	printf '%s\n' "$firing" | sed 's/^/     /'
	check_eq "firing: the loop, the stopped timer and the guard, nothing else" "$want" "$firing"
	check "the notifier received the restart-loop and stale-timer alerts" wait_notified \
		$'AutopullRestartLoop\tloop.service' $'AutopullTimerStale\ttick.timer'
	echo "   notified: $(obs notified "$OBS/notify.jsonl" 2>/dev/null | tr '\t\n' '/ ')"
	check "every rule evaluates without an error" [ -z "$(obs rule-errors "$VMALERT_URL")" ]
	ap_systemctl stop loop.service
}

# A host's first push carries counters that grew long before it: the rules must not read
# them as restarts now. A loop that starts after the first push must still fire.
t_first_push() {
	local i n firing loop_at
	local flaky="systemd_unit_restart_count_total{host=\"$NEWHOST\",unit=\"flaky.service\"}"
	ap_case "a new host's first push: old restarts stay quiet, a new loop fires"
	newhost_cfg "$OBS/new.yaml" flaky.service
	ap_systemctl start flaky.service
	check "flaky.service restarted 5 times by itself" ap_wait_prop flaky.service NRestarts 5 10
	check "... and runs" ap_wait_prop flaky.service ActiveState active 5
	sleep 2.5 # past the new host's guard window: its restarts are old for the guard too
	for i in 1 2 3 4; do hb "new-$i" "$OBS/new.yaml"; sleep 0.5; done
	ap_expect_rc "$AP_CASE: the new host's heartbeat" 0 new-4
	ap_jq "$AP_CASE: its guard judges flaky.service healthy" "$AP_TMP/new-4.out" "d['guard']['ok'] is True"
	check "the pushes landed: 4 samples of flaky.service's counter" \
		wait_value "count_over_time(${flaky%\}},unit!=\"POLL\"}[1m])" 4
	check "... which is 5" [ "$(qv "$flaky")" = 5 ]
	check "vmalert's queries see the 4 samples" wait_seen "$NEWHOST" flaky.service
	check "... and it evaluated every rule twice since" wait_evaluated
	firing=$(obs alerts "$VMALERT_URL" "$NEWHOST")
	echo "   alerts for $NEWHOST after its first pushes: ${firing:-none}"
	check_eq "no alert for the new host" "" "$firing"

	newhost_cfg "$OBS/new.yaml" "flaky.service, loop.service"
	ap_systemctl start loop.service
	loop_at=$(ap_now_ms)
	for i in $(seq 1 40); do
		hb "newloop-$i" "$OBS/new.yaml"
		firing=$(obs alerts "$VMALERT_URL" "$NEWHOST")
		grep -q "^AutopullRestartLoop	loop.service	firing$" <<<"$firing" && break
		sleep 0.5
	done
	n=$(ap_unit_prop loop.service NRestarts)
	echo "   loop.service started on $NEWHOST; after $i heartbeats, $(($(ap_now_ms) - loop_at)) ms and $n restarts:"
	printf '%s\n' "$firing" | sed 's/^/     /'
	check "a loop that began after the first push fires AutopullRestartLoop" \
		grep -q "^AutopullRestartLoop	loop.service	firing$" <<<"$firing"
	check "... and flaky.service still does not" eval '! grep -q flaky.service <<<"$firing"'
	ap_systemctl stop loop.service flaky.service
}

# One host stops pushing while another goes on. The shipped rule waits 3 minutes; the test
# copy waits 5 s and nothing else differs.
t_silent() {
	local i firing last_push expr
	ap_case "a host that stops pushing fires AutopullHostSilent; one that pushes does not"
	sed 's/present_over_time(autopull_guard_ok\[3m\])/present_over_time(autopull_guard_ok[5s])/' \
		"$SHARE/autopull-rules.yml" >"$OBS/silent-rules.yml"
	check "the test copy changes the rule's 3 minutes and nothing else" \
		[ "$(diff "$SHARE/autopull-rules.yml" "$OBS/silent-rules.yml" | grep -c '^[<>].*autopull_guard_ok\[')" = 2 ]
	last_push=$(ap_now_ms) # the new host's last heartbeat was just before
	ap_untrack_stop vmalert 5
	start_vmalert "$OBS/silent-rules.yml" || return 1
	for i in $(seq 1 40); do
		hb "silent-$i" # this host goes on pushing
		firing=$(obs alerts "$VMALERT_URL" "$NEWHOST" | grep AutopullHostSilent)
		[ -n "$firing" ] && break
		sleep 0.5
	done
	echo "   $NEWHOST silent: ${firing:-no alert} $(($(ap_now_ms) - last_push)) ms after its last push"
	check_eq "the silent host fires AutopullHostSilent" "$(printf 'AutopullHostSilent\t-\tfiring')" "$firing"
	check "the host that pushes does not" eval '! obs alerts "$VMALERT_URL" "$HOST" | grep -q AutopullHostSilent'
	# The dashboard's view of it: its queries, with the same 5 s, on the same store.
	expr=$(obs panel-expr "$SHARE/grafana-dashboard.json" "Hosts not reporting (all hosts)")
	check_eq "the dashboard's table of silent hosts lists it alone" "$NEWHOST" \
		"$(q "${expr//\[3m\]/[5s]}" | hosts)"
	expr=$(obs panel-expr "$SHARE/grafana-dashboard.json" 'Heartbeat ($host)')
	expr=${expr//\[3m\]/[5s]}
	check_eq "its heartbeat panel: SILENT (0) for it, reporting (1) for the other" "0 1" \
		"$(qv "${expr//\$host/$NEWHOST}") $(qv "${expr//\$host/$HOST}")"
	check "the notifier received it" wait_notified $'AutopullHostSilent\t-'
	check "every rule evaluates without an error" [ -z "$(obs rule-errors "$VMALERT_URL")" ]
}

# The restart-loop rule on series older than its window, which the live cases (minutes
# long at most) never have: samples of three units of one host, 10 minutes of them, every
# 30 s, imported with their timestamps and queried with the shipped expression.
t_history() {
	local now expr got i
	ap_case "the restart-loop rule on ten minutes of history"
	now=$(date +%s)
	"$AP_PY" - "$now" >"$OBS/history.prom" <<-'EOF'
	import sys
	now = int(sys.argv[1])
	def series(unit, values):  # values[i] is the sample (len - 1 - i) * 30 s ago
	    for i, v in enumerate(values):
	        t = now - (len(values) - 1 - i) * 30
	        print('systemd_unit_restart_count_total{host="old",unit="%s"} %d %d' % (unit, v, t * 1000))
	series("quiet.service", [5] * 21)                          # restarted long ago
	series("reset.service", [6] * 16 + [0] * 5)                # a deploy reset it
	series("loop.service", [2] * 13 + [3, 5, 5, 0, 0, 1, 2, 2])  # 3, reset, 2 more
	EOF
	check "the history imports" curl -sf --data-binary "@$OBS/history.prom" "$VM_URL/api/v1/import/prometheus"
	check "... and is visible" wait_value 'count(systemd_unit_restart_count_total{host="old",unit!="POLL"}) == 3' 3
	expr=$("$AP_PY" -c 'import sys, yaml; print(next(r["expr"] for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"] if r.get("alert") == "AutopullRestartLoop"))' \
		"$SHARE/autopull-rules.yml")
	# vmalert asks the same filter every 2 s: the cached answer may lag the import a while
	for i in $(seq 1 40); do
		got=$(q "$expr" | "$AP_PY" -c 'import json,sys; print(" ".join("%s=%g" % (d["labels"]["unit"], d["value"]) for d in map(json.loads, filter(str.strip, sys.stdin)) if d["labels"]["host"] == "old"))')
		[ -n "$got" ] && break
		sleep 0.25
	done
	echo "   AutopullRestartLoop on it: ${got:-nothing}"
	check_eq "only the unit with 5 restarts in 5 minutes across a reset fires, with 5" "loop.service=5" "$got"
}

# The push path (libcurl, credentials, the failure counter) under ASan/UBSan and valgrind.
t_memcheck() {
	local asan=$AP_BINDIR/autopull-asan name
	ap_case "the push under ASan/UBSan and valgrind memcheck"
	ap_bindir_add "$AP_ROOT/build/autopull-asan" >/dev/null || { ap_fail "$AP_CASE: no build/autopull-asan"; return; }
	for name in vm dead; do
		local conf=$AP_CFG
		[ $name = dead ] && conf=$OBS/dead.yaml
		ap_as_user env ASAN_OPTIONS=detect_leaks=1:exitcode=98 UBSAN_OPTIONS=halt_on_error=1:exitcode=98 \
			"$asan" --user -c "$conf" heartbeat >"$AP_TMP/asan-$name.out" 2>"$AP_TMP/asan-$name.err" </dev/null
		echo $? >"$AP_TMP/asan-$name.rc"
		ap_expect_rc "$AP_CASE: asan: heartbeat pushing to $name" 0 "asan-$name"
		ap_as_user valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
			--errors-for-leak-kinds=definite,indirect --log-file="$OBS/vg-$name.log" \
			"$AP_BIN" --user -c "$conf" heartbeat >"$AP_TMP/vg-$name.out" 2>"$AP_TMP/vg-$name.err" </dev/null
		echo $? >"$AP_TMP/vg-$name.rc"
		ap_expect_rc "$AP_CASE: valgrind: heartbeat pushing to $name" 0 "vg-$name"
		check "no valgrind report ($name)" eval '! grep -q "^==" "$OBS/vg-$name.log"'
	done
	rm -f "$asan"
}

# -------------------------------------------------------------------------------------------
if [ ! -x "$AP_BIN" ]; then
	ap_fail "no autopull binary at $AP_BIN"
	exit 1
fi
rm -rf "$OBS"
install -d -m 0755 -o "$AP_UID" -g "$AP_GID" "$OBS" "$OBS/vm"
VM_PORT=$(free_port) NOTIFY_PORT=$(free_port) VMALERT_PORT=$(free_port)
VM_URL=http://127.0.0.1:$VM_PORT VMALERT_URL=http://127.0.0.1:$VMALERT_PORT
NEWHOST=new-$HOST
# latencyOffset 0 and no cache: a pushed sample is visible to the next query.
serve vm "$VM_URL/health" victoria-metrics -storageDataPath="$OBS/vm" -retentionPeriod=1d \
	-httpListenAddr="127.0.0.1:$VM_PORT" -search.latencyOffset=0 -search.disableCache \
	-loggerLevel=WARN || exit 1
receiver notify "$NOTIFY_PORT" --status 200 || exit 1
t_endpoints && t_alerts && t_first_push && t_silent
t_history
t_memcheck
ap_untrack_stop vmalert 5
ap_untrack_stop notify 5
ap_untrack_stop vm 10
fx_reset
