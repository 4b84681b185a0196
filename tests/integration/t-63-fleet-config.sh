# shellcheck shell=bash
# The fleet: section as the operator meets it, against the real user manager: check-config
# shows the settings in effect with their defaults, in text and JSON, without asking etcd; a
# bad fleet: section, a client key others can read and TLS files that cannot be read exit 2
# with the place and the fix, and an apply with such a configuration changes nothing on the
# host (files, the applied commit, the running units); `fleet status` shows what a real etcd
# (started here, stopped by pid) holds for the group, escaped, and exits 75 when it is gone.
# Sourced by run.sh after lib.sh (and fixtures.sh).

FX_SETTLE=0s
# Port 9 (discard): nothing in this file may talk to etcd, so nothing must answer there.
ETCD=http://127.0.0.1:9

# fleet_config YAML: the fixtures' config with a fleet: section (YAML, indented by the caller).
fleet_config() { fx_config "$FX_URL" "" "fleet:
$1"; }

t_check_config() {
	local host
	ap_case "check-config shows the fleet settings, defaults filled in"
	fx_reset
	fx_origin file || return
	host=$(hostname)
	fleet_config "  etcd: [$ETCD, \"https://etcd2.example:2379\"]
  group: web"
	ap_autopull cc --user -c "$AP_CFG" check-config
	ap_expect_rc "$AP_CASE: check-config" 0 cc
	ap_check_eq "$AP_CASE: the fleet line, with the defaults" \
		"fleet: group 'web' as host '$host', max_parallel 1, canary 0, lock_timeout 600s, lease_ttl 30s, etcd $ETCD https://etcd2.example:2379" \
		"$(grep '^fleet: ' "$AP_TMP/cc.out")"

	fleet_config "  etcd: [$ETCD]
  group: db.eu-1
  host: db_7
  max_parallel: 3
  canary: [db_7, db_8]
  lock_timeout: 1500ms
  lease_ttl: 1m"
	ap_autopull ccj --user -c "$AP_CFG" --json check-config
	ap_expect_rc "$AP_CASE: check-config --json" 0 ccj
	ap_jq "$AP_CASE: --json: group, host, max_parallel" "$AP_TMP/ccj.out" \
		"d['fleet']['group'] == 'db.eu-1' and d['fleet']['host'] == 'db_7' and d['fleet']['max_parallel'] == 3"
	ap_jq "$AP_CASE: --json: a canary list and its count" "$AP_TMP/ccj.out" \
		"d['fleet']['canary'] == 2 and d['fleet']['canary_hosts'] == ['db_7', 'db_8']"
	ap_jq "$AP_CASE: --json: durations in microseconds, no TLS files" "$AP_TMP/ccj.out" \
		"d['fleet']['lock_timeout_usec'] == 1500000 and d['fleet']['lease_ttl_usec'] == 60000000 and d['fleet']['key_file'] is None"
	ap_autopull cc2 --user -c "$AP_CFG" check-config
	check "the text names the canaries and says 1500ms" \
		grep -qF "canary 'db_7' 'db_8', lock_timeout 1500ms, lease_ttl 60s" "$AP_TMP/cc2.out"

	fx_config "$FX_URL"
	ap_autopull ccn --user -c "$AP_CFG" --json check-config
	ap_jq "$AP_CASE: without fleet: \"fleet\": null" "$AP_TMP/ccn.out" "d['fleet'] is None"
	ap_autopull ccn2 --user -c "$AP_CFG" check-config
	check "without fleet: no fleet line" not grep -q "^fleet" "$AP_TMP/ccn2.out"
}

t_files() {
	ap_case "the fleet's TLS files: a key others can read, files that cannot be read"
	fx_reset
	fx_origin file || return
	ap_as_user mkdir -p "$AP_HOME/etcd"
	ap_as_user sh -c "echo key > '$AP_HOME/etcd/client.key' && echo cert > '$AP_HOME/etcd/client.pem' &&
		chmod 0644 '$AP_HOME/etcd/client.key'"
	fleet_config "  etcd: [\"https://127.0.0.1:9\"]
  group: web
  cert_file: $AP_HOME/etcd/client.pem
  key_file: $AP_HOME/etcd/client.key"
	ap_autopull key --user -c "$AP_CFG" check-config
	ap_expect_rc "$AP_CASE: a client key others can read" 2 key
	check "it names the key and the chmod" \
		grep -qF "fleet: key_file '$AP_HOME/etcd/client.key' can be read by others (mode 0644); fix: chmod" \
		"$AP_TMP/key.err"
	ap_as_user chmod 0600 "$AP_HOME/etcd/client.key"
	ap_autopull key-ok --user -c "$AP_CFG" check-config
	ap_expect_rc "$AP_CASE: mode 0600" 0 key-ok
	check "the text names the client certificate" \
		grep -qF "(client certificate $AP_HOME/etcd/client.pem)" "$AP_TMP/key-ok.out"
	ap_as_user rm "$AP_HOME/etcd/client.pem"
	ap_autopull cert-gone --user -c "$AP_CFG" check-config
	ap_expect_rc "$AP_CASE: a certificate that is not there" 2 cert-gone
	check "check-config says it cannot be read" \
		grep -qF "fleet: cert_file '$AP_HOME/etcd/client.pem' cannot be read by uid $AP_UID: No such file or directory" \
		"$AP_TMP/cert-gone.err"
}

t_bad_fleet() {
	local v1 worker_inv web_inv
	ap_case "a bad fleet: section exits 2 and changes nothing"
	fx_reset
	fx_origin file || return
	fx_service web.service install
	fx_service worker.service install
	printf 'v1\n' | fx_write caddy/Caddyfile
	printf 'X=1\n' | fx_write env/app.env
	v1=$(fx_commit v1)
	fx_config "$FX_URL"
	fx_apply base || return
	worker_inv=$(ap_unit_prop worker.service InvocationID)
	web_inv=$(ap_unit_prop web.service InvocationID)
	check "baseline: worker.service runs" [ -n "$worker_inv" ]
	printf 'v2\n' | fx_write caddy/Caddyfile
	printf 'X=2\n' | fx_write env/app.env
	fx_commit v2 >/dev/null

	# name LINE COL MESSAGE YAML: the apply and check-config both refuse at LINE:COL.
	bad() {
		fleet_config "$5"
		ap_autopull "$1" --user -c "$AP_CFG" apply
		ap_expect_rc "$AP_CASE: $1: apply" 2 "$1"
		check "$1: $AP_CFG:$2:$3: $4" grep -qF "$AP_CFG:$2:$3: $4" "$AP_TMP/$1.err"
		ap_autopull "$1-cc" --user -c "$AP_CFG" check-config
		ap_expect_rc "$AP_CASE: $1: check-config" 2 "$1-cc"
	}
	# fx_config's fleet: is on line 15, its first key on line 16
	bad no-etcd 16 3 "missing required key 'etcd' in fleet" "  group: web"
	bad not-http 16 10 "etcd: 'etcd:2379' is not an http(s):// URL" "  etcd: [etcd:2379]
  group: web"
	bad slots-0 18 17 "max_parallel: '0' is not a number from 1 to 1024" "  etcd: [$ETCD]
  group: web
  max_parallel: 0"
	bad canary-neg 18 11 "canary: '-1' is not a number of hosts" "  etcd: [$ETCD]
  group: web
  canary: -1"
	bad group 17 10 "group: 'web/eu' is not a name of letters" "  etcd: [$ETCD]
  group: web/eu"
	bad ttl 18 14 "lease_ttl: '1s' must be whole seconds, at least 2s" "  etcd: [$ETCD]
  group: web
  lease_ttl: 1s"
	bad cert 16 3 "fleet: cert_file and key_file go together" "  etcd: [\"https://e:2379\"]
  group: web
  cert_file: /etc/c.pem"
	bad unknown 18 3 "unknown key 'slots' in fleet" "  etcd: [$ETCD]
  group: web
  slots: 2"

	ap_check_eq "$AP_CASE: the applied commit is still v1" "$v1" "$(applied)"
	ap_check_eq "$AP_CASE: the Caddyfile still has v1's bytes" "v1" "$(cat "$FX_ETC/caddy/Caddyfile")"
	ap_check_eq "$AP_CASE: env/ still has v1's bytes" "X=1" "$(cat "$FX_ETC/env/app.env")"
	ap_check_eq "$AP_CASE: worker.service was not restarted" "$worker_inv" \
		"$(ap_unit_prop worker.service InvocationID)"
	ap_check_eq "$AP_CASE: web.service was not restarted" "$web_inv" \
		"$(ap_unit_prop web.service InvocationID)"
	ap_check_eq "$AP_CASE: worker.service NRestarts" "0" "$(ap_unit_prop worker.service NRestarts)"
}

# etcd_start: a real etcd (Debian etcd-server) on free ports of 127.0.0.1 with its data in
# $AP_TMP, tracked by pid like the HTTP server; sets ETCD_URL. etcd_stop stops it (SIGTERM,
# then SIGKILL) and removes the data.
etcd_start() {
	local port pid i
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		port=$((20000 + RANDOM % 9000 * 2))
		if ! ap_port_free "$port" || ! ap_port_free $((port + 1)); then continue; fi
		rm -rf "$AP_TMP/etcd"
		(ap_cgroup_enter "$AP_HARNESS_CG" "$BASHPID"
		 exec /usr/bin/etcd --name t63 --data-dir "$AP_TMP/etcd" \
			--listen-client-urls "http://127.0.0.1:$port" \
			--advertise-client-urls "http://127.0.0.1:$port" \
			--listen-peer-urls "http://127.0.0.1:$((port + 1))" \
			--initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" \
			--initial-cluster "t63=http://127.0.0.1:$((port + 1))") \
			>"$AP_TMP/etcd.log" 2>&1 </dev/null 9>&- &
		pid=$!
		ap_track etcd "$pid"
		ETCD_URL=http://127.0.0.1:$port
		i=0
		while ap_pid_alive "$pid" && [ $i -lt 200 ]; do
			etcd_call /health '' >/dev/null 2>&1 && return 0
			sleep 0.05; i=$((i + 1))
		done
		ap_untrack_stop etcd 5
	done
	ap_log "aptest: etcd did not start; log:"
	tail -n 20 "$AP_TMP/etcd.log" >&2
	return 1
}

etcd_stop() { ap_untrack_stop etcd 5; rm -rf "$AP_TMP/etcd"; }

# etcd_call PATH JSON: a request to etcd's v3 JSON gateway (GET when JSON is empty).
etcd_call() {
	"$AP_PY" - "$ETCD_URL$1" "$2" <<-'EOF'
	import sys, urllib.request
	data = sys.argv[2].encode() if sys.argv[2] else None
	with urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=data), timeout=5) as r:
	    sys.stdout.write(r.read().decode())
	EOF
}

# etcd_put KEY VALUE: VALUE with printf's escapes (\033 ...), as another host could write it.
etcd_put() {
	# shellcheck disable=SC2059 # the value's escapes are meant
	etcd_call /v3/kv/put "{\"key\": \"$(printf %s "$1" | base64 -w0)\", \"value\": \"$(printf "$2" | base64 -w0)\"}" >/dev/null
}

t_status() {
	local a=0123456789abcdef0123456789abcdef01234567 b=89abcdef0123456789abcdef0123456789abcdef
	ap_case "fleet status against a real etcd"
	fx_reset
	fx_origin file || return
	etcd_start || { ap_fail "$AP_CASE: etcd did not start"; return; }
	etcd_put /autopull/web/slot/1 "web2 $a"
	etcd_put /autopull/web/host/web1 "$a applied 1796400000000000"
	etcd_put /autopull/web/host/web2 "$b rolled-back 1796300000000000"
	etcd_put "/autopull/web/bad/$b" 'web2 app.service did not settle \033[2J\033]0;owned\a'
	etcd_put "/autopull/web/started/$a/web1" 1796400000000000
	etcd_put "/autopull/web/healthy/$a/web1" 1796400000000000
	etcd_put /autopull/db/slot/0 "db1 $b"   # another group: not shown
	fleet_config "  etcd: [$ETCD_URL]
  group: web
  host: web1
  max_parallel: 2
  canary: 1"
	ap_autopull st --user -c "$AP_CFG" --json --commit "$a" fleet status
	ap_expect_rc "$AP_CASE: fleet status --json" 0 st
	ap_jq "$AP_CASE: the slot web2 holds, and only this group's" "$AP_TMP/st.out" \
		"d['slots'] == [{'slot': 1, 'host': 'web2', 'commit': '$a'}]"
	ap_jq "$AP_CASE: each host's commit, result and time" "$AP_TMP/st.out" \
		"[(h['host'], h['result'], h['time_usec']) for h in d['hosts']] == [('web1', 'applied', 1796400000000000), ('web2', 'rolled-back', 1796300000000000)]"
	ap_jq "$AP_CASE: the bad commit with its host and reason, escape bytes kept as data" \
		"$AP_TMP/st.out" "d['bad'] == [{'commit': '$b', 'host': 'web2', 'reason': 'app.service did not settle \x1b[2J\x1b]0;owned\x07'}]"
	ap_jq "$AP_CASE: canary progress of --commit" "$AP_TMP/st.out" \
		"d['canary_progress']['commit'] == '$a' and d['canary_progress']['healthy'] == ['web1'] and d['canary_progress']['others_may_start']"
	ap_autopull st-text --user -c "$AP_CFG" --commit "$a" fleet status
	ap_expect_rc "$AP_CASE: fleet status" 0 st-text
	check "the text names the slot" grep -qxF "  slot 1: web2 applying $(short "$a")" "$AP_TMP/st-text.out"
	check "the text names the bad commit, its escapes shown, not sent" \
		grep -qF "  $(short "$b") by web2: app.service did not settle \\x1b[2J\\x1b]0;owned\\x07" "$AP_TMP/st-text.out"
	check "no escape byte reaches the terminal" not grep -q $'\x1b' "$AP_TMP/st-text.out"
	check "1 of 1 canaries healthy" grep -qF "1 of 1 healthy; every host may start it" "$AP_TMP/st-text.out"
	check "fleet status created nothing (no state directory)" [ ! -e "$AP_STATE_DIR" ]
	etcd_stop
	ap_autopull st-down --user -c "$AP_CFG" fleet status
	ap_expect_rc "$AP_CASE: etcd down: exit 75" 75 st-down
	ap_check_eq "$AP_CASE: etcd down: nothing on stdout" "" "$(cat "$AP_TMP/st-down.out")"
	check "etcd down: the endpoint is named" grep -qF "$ETCD_URL" "$AP_TMP/st-down.err"
}

# -------------------------------------------------------------------------------------------
if [ ! -x "$AP_BIN" ]; then
	ap_fail "no autopull binary at $AP_BIN"
	exit 1
fi
t_check_config
t_files
t_bad_fleet
t_status
fx_reset
