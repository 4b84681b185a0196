# shellcheck shell=bash
# The fleet on a real etcd (started here on 127.0.0.1, stopped by pid): agents with their own
# state directory, configuration and units, all under the one test user manager, apply one
# commit at once. etcd's revision history of the slot keys and the units' own start times show
# that never more than max_parallel hosts are inside the change-and-settle phase; canaries go
# first and a canary that rolls back halts the rest; a killed slot holder's slot is freed by its
# lease; etcd down is exit 75 with the host unchanged; etcd restarted mid-rollout still ends
# with every host on the commit. Sourced by run.sh after lib.sh (and fixtures.sh).

FLEET_N=${FLEET_N:-20}
FLEET_PAR=3
FLEET_SETTLE_MS=2000
FLEET_TTL=3s
FLEET_DIR=$AP_HOME/fleet
ETCD_DIR=$AP_RUN/etcd

# etcd_start [PORT]: etcd on 127.0.0.1 (a free port unless given) with its data in $ETCD_DIR
# (kept across a restart); sets ETCD_PORT and ETCD_URL.
etcd_start() {
	local port=${1:-} peer i
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		[ -n "${1:-}" ] || { port=$((30000 + RANDOM % 10000)); ap_port_free "$port" || continue; }
		peer=$((port + 1))
		ap_port_free "$peer" || { [ -n "${1:-}" ] && peer=$((port + 2)); }
		mkdir -p "$ETCD_DIR"
		etcd --name t64 --data-dir "$ETCD_DIR/data" --log-level warn \
			--listen-client-urls "http://127.0.0.1:$port" \
			--advertise-client-urls "http://127.0.0.1:$port" \
			--listen-peer-urls "http://127.0.0.1:$peer" \
			--initial-advertise-peer-urls "http://127.0.0.1:$peer" \
			--initial-cluster "t64=http://127.0.0.1:$peer" \
			>>"$ETCD_DIR/log" 2>&1 </dev/null 9>&- &
		ap_track etcd $!
		for i in $(seq 100); do
			curl -sf "http://127.0.0.1:$port/health" 2>/dev/null | grep -q true && break
			sleep 0.05
		done
		if [ "$i" -lt 100 ]; then
			ETCD_PORT=$port ETCD_URL=http://127.0.0.1:$port
			return 0
		fi
		ap_untrack_stop etcd 2
		[ -n "${1:-}" ] && break
	done
	tail -n 20 "$ETCD_DIR/log" >&2
	return 1
}

etcd_stop() { ap_untrack_stop etcd 5; }
ectl() { ETCDCTL_API=3 timeout 10 etcdctl --endpoints="$ETCD_URL" "$@"; }

# fleet_unit I VERSION [broken]: agents/aNN/fl-aNN.service, which appends its start time (ns)
# to $FX_LOG/aNN.starts; broken exits 1 at once and restarts.
fleet_unit() {
	local a
	a=$(printf 'a%02d' "$1")
	{
		printf '[Unit]\nDescription=fleet agent %s %s\nStartLimitIntervalSec=0\n\n[Service]\n' "$a" "$2"
		if [ "${3:-}" = broken ]; then
			printf 'ExecStart=/bin/sh -c "date +%%%%s%%%%N >> %s/%s.starts; exit 1"\n' "$FX_LOG" "$a"
			printf 'Restart=always\nRestartSec=200ms\n'
		else
			printf 'ExecStart=/bin/sh -c "date +%%%%s%%%%N >> %s/%s.starts; exec sleep infinity"\n' \
				"$FX_LOG" "$a"
		fi
		printf '\n[Install]\nWantedBy=default.target\n'
	} | fx_write "agents/$a/fl-$a.service"
}

# fleet_commit VERSION [BROKEN_AGENT|all]: every agent's unit at VERSION; prints the sha.
fleet_commit() {
	local i
	for i in $(seq 0 $((FLEET_N - 1))); do
		case ${2:-} in
		all) fleet_unit "$i" "$1" broken ;;
		"$(printf 'a%02d' "$i")") fleet_unit "$i" "$1" broken ;;
		*) fleet_unit "$i" "$1" ;;
		esac
	done
	fx_commit "$1"
}

# fleet_config I [EXTRA_FLEET_YAML]: agent I's configuration file (printed path).
fleet_config() {
	local a cfg
	a=$(printf 'a%02d' "$1")
	cfg=$FLEET_DIR/$a/config.yaml
	{
		printf 'repo:\n  url: file://%s\n  branch: main\nscope: user\n' "$FX_ORIGIN"
		printf 'state_dir: %s/%s/state\nunits: [agents/%s/]\n' "$FLEET_DIR" "$a" "$a"
		printf 'guard:\n  settle: %sms\n' "$FLEET_SETTLE_MS"
		printf 'fleet:\n  etcd: [%s]\n  group: t64\n  host: %s\n' "$ETCD_URL" "$a"
		printf '  max_parallel: %s\n  lease_ttl: %s\n  lock_timeout: 2m\n' "$FLEET_PAR" "$FLEET_TTL"
		[ -n "${2:-}" ] && printf '%s\n' "$2"
	} | ap_user_write "$cfg"
	echo "$cfg"
}

# fleet_run NAME I [ARGS...]: agent I's apply (ap_autopull NAME ...).
fleet_run() {
	local name=$1 i=$2; shift 2
	ap_autopull "$name" --user -c "$FLEET_DIR/$(printf 'a%02d' "$i")/config.yaml" "$@" apply
}

# fleet_all NAME [FIRST]: every agent from FIRST (default 0) applies at once; waits for all
# of them (by pid: etcd runs in the background of this shell too).
fleet_all() {
	local i pids=()
	for i in $(seq "${2:-0}" $((FLEET_N - 1))); do
		fleet_run "$1-$i" "$i" &
		pids+=($!)
	done
	wait "${pids[@]}"
}

# fleet_rcs NAME [FIRST]: the exit codes of fleet_all NAME, sorted and counted ("20x0").
fleet_rcs() {
	local i
	for i in $(seq "${2:-0}" $((FLEET_N - 1))); do cat "$AP_TMP/$1-$i.rc"; done |
		sort | uniq -c | awk '{ printf "%s%sx%s", sep, $1, $2; sep = " " }'
}

# fleet_show_failed NAME: the stderr of each agent of fleet_all NAME that did not exit 0.
fleet_show_failed() {
	local i
	for i in $(seq "${2:-0}" $((FLEET_N - 1))); do
		[ "$(cat "$AP_TMP/$1-$i.rc")" = 0 ] && continue
		sed -n "1,8s/^/        a$i stderr: /p" "$AP_TMP/$1-$i.err"
	done
}

fleet_applied() { cat "$FLEET_DIR/$(printf 'a%02d' "$1")/state/applied" 2>/dev/null; }
fleet_starts() { cat "$FX_LOG/$(printf 'a%02d' "$1").starts" 2>/dev/null | wc -l; }

# The most slot keys that existed at once, replayed from etcd's whole revision history.
slot_peak() {
	timeout 3 etcdctl --endpoints="$ETCD_URL" watch --rev=1 --prefix /autopull/t64/slot/ -w json \
		2>/dev/null | "$AP_PY" -c '
import json, sys
held, peak = set(), 0
for line in sys.stdin:
    line = line.strip()
    if not line.startswith("{"):
        continue
    for ev in json.loads(line).get("Events") or []:
        key = ev["kv"]["key"]
        if ev.get("type") == 1:
            held.discard(key)
        else:
            held.add(key)
            peak = max(peak, len(held))
print(peak)'
}

# The most unit starts within one settle window: each start lies in its agent's slot period,
# which lasts at least the settle after it.
start_peak() {
	cat "$FX_LOG"/a*.starts 2>/dev/null | sort -n | "$AP_PY" -c '
import sys
t = [int(x) for x in sys.stdin.read().split()]
w = '"$FLEET_SETTLE_MS"' * 1000000
print(max((sum(1 for u in t if s <= u < s + w) for s in t), default=0))'
}

fleet_setup() {
	local i
	fx_reset
	rm -rf "$FLEET_DIR" "$ETCD_DIR"
	etcd_stop
	fx_origin || return 1
	etcd_start || { ap_fail "$AP_CASE: etcd did not start"; return 1; }
	for i in $(seq 0 $((FLEET_N - 1))); do fleet_config "$i" "${1:-}" >/dev/null; done
}

fleet_teardown() {
	local i
	for i in $(seq 0 $((FLEET_N - 1))); do
		ap_systemctl stop "fl-$(printf 'a%02d' "$i").service" 2>/dev/null
	done
	etcd_stop
}

t_concurrent() {
	ap_case "$FLEET_N agents, max_parallel $FLEET_PAR"
	fleet_setup || return
	local c1 c2 i ok=0
	c1=$(fleet_commit v1) || return
	fleet_all first
	check "every agent's first apply exits 0 ($(fleet_rcs first))" test "$(fleet_rcs first)" = "${FLEET_N}x0" ||
		fleet_show_failed first
	c2=$(fleet_commit v2) || return
	fleet_all second
	check "every agent applies the next commit ($(fleet_rcs second))" test "$(fleet_rcs second)" = "${FLEET_N}x0" ||
		fleet_show_failed second
	for i in $(seq 0 $((FLEET_N - 1))); do
		[ "$(fleet_applied "$i")" = "$c2" ] && [ "$(fleet_starts "$i")" = 2 ] && ok=$((ok + 1))
	done
	check "every agent's unit restarted once and $c2 is applied ($ok/$FLEET_N)" test "$ok" = "$FLEET_N"
	FLEET_SLOT_PEAK=$(slot_peak)
	check "etcd's history: at most $FLEET_PAR slots held at once (peak $FLEET_SLOT_PEAK)" \
		test "${FLEET_SLOT_PEAK:-99}" -le "$FLEET_PAR" -a "${FLEET_SLOT_PEAK:-0}" -ge 1
	FLEET_START_PEAK=$(start_peak)
	check "the units' start times: at most $FLEET_PAR within one settle (peak $FLEET_START_PEAK)" \
		test "${FLEET_START_PEAK:-99}" -le "$FLEET_PAR"
	check "no slot is held after the rollout" test -z "$(ectl get --prefix /autopull/t64/slot/ --keys-only)"
	ap_autopull fstatus --user -c "$FLEET_DIR/a00/config.yaml" fleet status --json
	ap_jq "$AP_CASE: fleet status: $FLEET_N hosts on $c2, each ok, no slot held" "$AP_TMP/fstatus.out" \
		"len(d['hosts']) == $FLEET_N and all(h['commit'] == '$c2' and h['result'] == 'ok' for h in d['hosts']) and d['slots'] == []"
	ap_log "fleet: $FLEET_N agents, max_parallel $FLEET_PAR: slot peak $FLEET_SLOT_PEAK, start peak $FLEET_START_PEAK"
	: "$c1"
	fleet_teardown
}

t_canary_halts() {
	ap_case "a canary that rolls back halts the fleet"
	local FLEET_N=4
	fleet_setup '  canary: [a00]' || return
	local c1 c2 i same=0 waited=0
	c1=$(fleet_commit v1) || return
	fleet_run can-first 0
	fleet_all can-init 1
	check "the canary applied the first commit" test "$(fleet_applied 0)" = "$c1"
	c2=$(fleet_commit v2 all) || return
	fleet_all can-wait 1
	for i in 1 2 3; do
		grep -q "waiting" "$AP_TMP/can-wait-$i.out" && [ "$(fleet_applied "$i")" = "$c1" ] && waited=$((waited + 1))
	done
	check "the others wait for the canary, exit 0, unchanged ($waited/3; $(fleet_rcs can-wait 1))" \
		test "$waited" = 3 -a "$(fleet_rcs can-wait 1)" = "3x0"
	ap_autopull can-status --user -c "$FLEET_DIR/a01/config.yaml" status
	check "status says what it waits for" grep -q "held back at the last run: waiting for" \
		"$AP_TMP/can-status.out"
	check "the metrics say it is held back" \
		grep -Eq '^autopull_fleet_blocked\{host="[^"]*"\} 1(\.0+)?$' "$FLEET_DIR/a01/state/metrics.prom"
	fleet_run can-apply 0
	check "the canary rolls the broken commit back (exit $AP_RC)" test "$AP_RC" = 1
	check "the canary marked it bad for the group" test -n "$(ectl get "/autopull/t64/bad/$c2" --print-value-only)"
	check "the canary runs the first commit again" test "$(fleet_applied 0)" = "$c1"
	fleet_all can-after 1
	for i in 1 2 3; do
		[ "$(fleet_applied "$i")" = "$c1" ] && [ "$(fleet_starts "$i")" = 1 ] && same=$((same + 1))
		grep -q "the fleet marked it bad" "$AP_TMP/can-after-$i.err" || same=$((same - 10))
	done
	check "no other host restarted anything and each says why ($same/3)" test "$same" = 3
	fleet_teardown
}

t_canary_gates() {
	ap_case "canaries go first, the rest follow once they are healthy"
	local FLEET_N=3
	fleet_setup '  canary: 1' || return
	local c1 c2 i
	c1=$(fleet_commit v1) || return
	fleet_all g-init
	c2=$(fleet_commit v2) || return
	fleet_run g-canary 2
	check "the first host to start a commit is its canary (exit $AP_RC)" test "$AP_RC" = 0 -a "$(fleet_applied 2)" = "$c2"
	check "it reported the commit healthy" test -n "$(ectl get "/autopull/t64/healthy/$c2/a02" --print-value-only)"
	fleet_all g-rest
	for i in 0 1; do
		check "a$i follows the healthy canary" test "$(fleet_applied "$i")" = "$c2" ||
			sed -n "1,10s/^/        a$i: /p" "$AP_TMP/g-rest-$i.out" "$AP_TMP/g-rest-$i.err"
	done
	: "$c1"
	fleet_teardown
}

t_killed_holder() {
	ap_case "a killed slot holder's slot is freed by its lease"
	local FLEET_N=1
	fleet_setup || return
	local c1 c2 i
	c1=$(fleet_commit v1) || return
	fleet_run k-init 0
	c2=$(fleet_commit v2) || return
	ap_as_user env AUTOPULL_TEST_CRASH=after-reload timeout -k 5 "$AP_CMD_TIMEOUT" "$AP_BIN" \
		--user -c "$FLEET_DIR/a00/config.yaml" apply >"$AP_TMP/k-crash.out" \
		2>"$AP_TMP/k-crash.err" </dev/null
	AP_RC=$?
	check "the apply was killed inside its slot (exit $AP_RC)" test "$AP_RC" = 137
	check "the slot is still held right after" test -n "$(ectl get --prefix /autopull/t64/slot/ --keys-only)"
	for i in $(seq 100); do
		[ -z "$(ectl get --prefix /autopull/t64/slot/ --keys-only)" ] && break
		sleep 0.1
	done
	check "the slot is free once the lease ($FLEET_TTL) expired (${i}00 ms)" test "$i" -lt 100
	fleet_run k-next 0
	check "the next run finishes the apply ($AP_RC)" test "$AP_RC" = 0 -a "$(fleet_applied 0)" = "$c2"
	: "$c1"
	fleet_teardown
}

t_etcd_down() {
	ap_case "etcd down: exit 75, the host unchanged"
	local FLEET_N=1
	fleet_setup || return
	local c1 inv
	c1=$(fleet_commit v1) || return
	fleet_run d-init 0
	inv=$(inv fl-a00.service)
	fleet_commit v2 >/dev/null || return
	etcd_stop
	fleet_run d-down 0
	check "exit 75 (try again later)" test "$AP_RC" = 75
	check "the applied commit is unchanged" test "$(fleet_applied 0)" = "$c1"
	check "the unit was not restarted" test "$(inv fl-a00.service)" = "$inv"
	check "its file is unchanged" grep -q "v1" "$AP_UNIT_DIR/fl-a00.service"
	check "stderr says no etcd endpoint answers" grep -q "etcd" "$AP_TMP/d-down.err"
	fleet_teardown
}

t_etcd_restarted() {
	ap_case "etcd restarted mid-rollout"
	fleet_setup || return
	local c2 i ok=0 port mid
	fleet_commit v1 >/dev/null || return
	fleet_all r-init
	c2=$(fleet_commit v2) || return
	fleet_all r-mid &
	mid=$!
	sleep 1
	port=$ETCD_PORT
	etcd_stop
	etcd_start "$port" || { ap_fail "$AP_CASE: etcd did not come back"; wait "$mid"; return; }
	wait "$mid"
	for i in $(seq 0 $((FLEET_N - 1))); do
		[ "$(fleet_applied "$i")" = "$c2" ] || fleet_run "r-again-$i" "$i"
	done
	for i in $(seq 0 $((FLEET_N - 1))); do
		[ "$(fleet_applied "$i")" = "$c2" ] && ok=$((ok + 1))
	done
	check "every agent ends on the commit ($ok/$FLEET_N; first runs $(fleet_rcs r-mid))" test "$ok" = "$FLEET_N"
	check "at most $FLEET_PAR slots at once across the restart (peak $(slot_peak))" test "$(slot_peak)" -le "$FLEET_PAR"
	fleet_teardown
}

t_concurrent
t_canary_halts
t_canary_gates
t_killed_holder
t_etcd_down
t_etcd_restarted
rm -rf "$FLEET_DIR"
