# shellcheck shell=bash
# The fleet: section as the operator meets it, against the real user manager and without any
# etcd (none is asked): check-config shows the settings in effect with their defaults, in
# text and JSON; a bad fleet: section, a client key others can read and TLS files that cannot
# be read exit 2 with the place and the fix, and an apply with such a configuration changes
# nothing on the host (files, the applied commit, the running units). Sourced by run.sh after
# lib.sh (and fixtures.sh).

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
	check "without fleet: no fleet line" eval '! grep -q "^fleet" "$AP_TMP/ccn2.out"'
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

# -------------------------------------------------------------------------------------------
if [ ! -x "$AP_BIN" ]; then
	ap_fail "no autopull binary at $AP_BIN"
	exit 1
fi
t_check_config
t_files
t_bad_fleet
fx_reset
