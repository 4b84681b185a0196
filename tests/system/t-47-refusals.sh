# shellcheck shell=bash
# Refusals at system scope, under the shipped service and its sandbox: a validator that fails
# after printing noise refuses the apply (exit 4) with its error first, its output as lines
# in the service's journal (no literal "\n"), a home of its own inside the private stage
# (writable under the sandbox), and the refusal's journal entry keeps the validator's error as
# AUTOPULL_REASON; a dry run exits 4 like the apply and says "refused"; 'autopull trust skip'
# is root's alone for the system and is recorded (history, journal, status). Sourced by run.sh
# after lib.sh.

ID_REFUSED=ff05618c7fd24baeb162196823065dd1
ID_OVERRIDE=36ac976ddc2b4a9d8b67eb1b88d42acd
mark() { CURSOR=$(sys_sh journalctl -n 0 --show-cursor -q 2>/dev/null | sed -n 's/^-- cursor: //p'); }
# entry NAME ID: the first entry with MESSAGE_ID=ID after the mark, as JSON, in NAME.json
# (polled up to 5 s: journald takes datagrams asynchronously).
entry() {
	local i=0
	while [ $i -lt 50 ]; do
		sys_sh journalctl -q -o json --after-cursor="$CURSOR" 2>/dev/null |
			grep -F "\"MESSAGE_ID\":\"$2\"" | head -n 1 >"$AP_TMP/$1.json"
		[ -s "$AP_TMP/$1.json" ] && return 0
		sleep 0.1; i=$((i + 1))
	done
	return 1
}
field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' "$AP_TMP/$1.json" "$2"; }

VALIDATOR=/usr/local/bin/aptest-noisy-validate
noisy_validator() {
	sys_write "$VALIDATOR" <<-'EOS'
	#!/bin/sh
	echo '{"level":"info","ts":1,"msg":"using config from file"}' >&2
	echo '{"level":"warn","msg":"Caddyfile input is not formatted"}' >&2
	printf 'HOME=%s XDG_CONFIG_HOME=%s XDG_CACHE_HOME=%s\n' "$HOME" "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" >/run/aptest-validator.env
	touch "$HOME/probe" "$XDG_CONFIG_HOME/probe" "$XDG_CACHE_HOME/probe" || echo "not writable" >>/run/aptest-validator.env
	if grep -q respnd "$1"; then
		echo 'Error: adapting config using caddyfile: Caddyfile:2: unrecognized directive: respnd'
		exit 1
	fi
	EOS
	chmod 0755 "$SYS_ROOT$VALIDATOR"
}

ap_case "a failing validator under the service"
sx_pristine
sx_reset
sx_origin
noisy_validator
sx_config "" "guard:
  settle: 1s"
sed -i "s|validate: \[caddy, validate, --config, \"%s\"\]|validate: [$VALIDATOR, \"%s\"]|" "$SYS_ROOT$SX_CFG"
sys_ctl daemon-reload
check "the config uses the noisy validator" grep -q "$VALIDATOR" "$SYS_ROOT$SX_CFG"
sx_service web.service install "web v1"
printf ':80 {\n\trespond "v1"\n}\n' | sx_write caddy/Caddyfile
V1=$(sx_commit v1)
sys_start_unit v1 infrastructure-auto-pull.service
check "v1 applied by the service" [ "$(sx_applied)" = "$V1" ]
check "the validator's home is in the private stage" \
	grep -qx "HOME=$SX_STATE/stage/.home XDG_CONFIG_HOME=$SX_STATE/stage/.home/.config XDG_CACHE_HOME=$SX_STATE/stage/.home/.cache" \
	"$SYS_ROOT/run/aptest-validator.env"
check "and writable under the sandbox" not grep -q "not writable" "$SYS_ROOT/run/aptest-validator.env"
caddy=$(inv caddy.service)
printf ':80 {\n\trespnd "v2"\n}\n' | sx_write caddy/Caddyfile
sx_commit typo >/dev/null
cp "$SYS_ROOT/etc/caddy/Caddyfile" "$AP_TMP/caddyfile.before"

sys_autopull dry --dry-run --json
ap_expect_rc "$AP_CASE: the dry run exits 4, as the apply" 4 dry
ap_jq "$AP_CASE: dry-run JSON: refused (invalid) with the validator's error" "$AP_TMP/dry.out" \
	"d['refused']['kind'] == 'invalid' and 'unrecognized directive: respnd' in d['refused']['reason']"

mark
sys_start_unit svc infrastructure-auto-pull.service
ap_expect_rc "$AP_CASE: the service's run is refused" 4 svc
check "the summary puts the error first" \
	grep -q "validation of 'caddy/Caddyfile' failed (exit 1): Error: adapting config using caddyfile: Caddyfile:2: unrecognized directive: respnd | " \
	"$AP_TMP/svc.err"
check "the validator's output is lines in the journal" \
	grep -q "on 'caddy/Caddyfile': {\"level\":\"info\"" "$AP_TMP/svc.err"
check "no literal \\n in the journal" not grep -qF '\n' "$AP_TMP/svc.err"
check "a 'refused' entry" entry svc-refused $ID_REFUSED
check "AUTOPULL_REASON keeps the file and the error" \
	grep -q "caddy/Caddyfile.*unrecognized directive: respnd" <(field svc-refused AUTOPULL_REASON)
check "AUTOPULL_RESULT=invalid" [ "$(field svc-refused AUTOPULL_RESULT)" = invalid ]
check "the Caddyfile is unchanged" cmp -s "$AP_TMP/caddyfile.before" "$SYS_ROOT/etc/caddy/Caddyfile"
check "caddy.service not reloaded or restarted" [ "$(inv caddy.service)" = "$caddy" ]
check "applied unchanged" [ "$(sx_applied)" = "$V1" ]

ap_case "trust skip: root's alone, recorded"
sys_sh setpriv --reuid=65534 --regid=65534 --clear-groups autopull --reason x trust skip HEAD \
	>"$AP_TMP/nobody.out" 2>"$AP_TMP/nobody.err" </dev/null
echo $? >"$AP_TMP/nobody.rc"
ap_expect_rc "$AP_CASE: not as another user" 2 nobody
check "says only root may" grep -q "only root may let a commit through" "$AP_TMP/nobody.err"
check "nothing recorded" not grep -qs trust-skip "$SYS_ROOT$SX_STATE/overrides"
mark
sys_autopull skip --reason "reviewed by hand" trust skip HEAD~1
ap_expect_rc "$AP_CASE: root may" 0 skip
check "an 'override' entry" entry skip-j $ID_OVERRIDE
check "AUTOPULL_RESULT=trust-skip" [ "$(field skip-j AUTOPULL_RESULT)" = trust-skip ]
check "AUTOPULL_COMMIT is the commit" [ "$(field skip-j AUTOPULL_COMMIT)" = "$V1" ]
check "AUTOPULL_REASON is the reason" [ "$(field skip-j AUTOPULL_REASON)" = "reviewed by hand" ]
sys_autopull status status
check "status shows it" grep -q "skipped: *$(printf %.12s "$V1") let through the signature check .*reviewed by hand" \
	"$AP_TMP/status.out"
sx_reset
sys_sh rm -f "$VALIDATOR" /run/aptest-validator.env
