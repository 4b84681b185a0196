# shellcheck shell=bash
# Refusals at system scope, under the shipped service and its sandbox: a validator that fails
# after printing noise refuses the apply (exit 4) with its error first, its output as lines
# in the service's journal (no literal "\n"), a home of its own inside the private stage
# (writable under the sandbox), and the refusal's journal entry keeps the validator's error as
# AUTOPULL_REASON; a dry run exits 4 like the apply and says "refused"; 'autopull trust skip'
# is root's alone for the system and is recorded (history, journal, status). Sourced by run.sh
# after lib.sh.

# shellcheck source=../integration/refusals.sh
. "$SYS_DIR/../integration/refusals.sh"
VALIDATOR=/usr/local/bin/aptest-noisy-validate
noisy_validator() {
	validator_text /run/aptest-validator.env | sys_write "$VALIDATOR" && chmod 0755 "$SYS_ROOT$VALIDATOR"
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
check "v1 applied by the service" [ "$(applied)" = "$V1" ]
validator_home_checks "$SX_STATE" "$SYS_ROOT/run/aptest-validator.env"
caddy=$(inv caddy.service)
caddyfile_typo 80 v2 | sx_write caddy/Caddyfile
sx_commit typo >/dev/null
cp "$SYS_ROOT/etc/caddy/Caddyfile" "$AP_TMP/caddyfile.before"

sys_autopull dry --dry-run --json
ap_expect_rc "$AP_CASE: the dry run exits 4, as the apply" 4 dry
ap_jq "$AP_CASE: dry-run JSON: refused (invalid) with the validator's error" "$AP_TMP/dry.out" \
	"d['refused']['kind'] == 'invalid' and 'unrecognized directive: respnd' in d['refused']['reason']"

sys_mark
sys_start_unit svc infrastructure-auto-pull.service
ap_expect_rc "$AP_CASE: the service's run is refused" 4 svc
check "the summary puts the error first" \
	grep -q "validation of 'caddy/Caddyfile' failed (exit 1): Error: adapting config using caddyfile: Caddyfile:2: unrecognized directive: respnd | " \
	"$AP_TMP/svc.err"
check "the validator's output is lines in the journal" \
	grep -q "on 'caddy/Caddyfile': {\"level\":\"warn\"" "$AP_TMP/svc.err"
check "no literal \\n in the journal" not grep -qF '\n' "$AP_TMP/svc.err"
check "a 'refused' entry" sys_entries svc-refused $ID_REFUSED
check "AUTOPULL_REASON keeps the file and the error" \
	grep -q "caddy/Caddyfile.*unrecognized directive: respnd" <(sys_field svc-refused AUTOPULL_REASON)
check "AUTOPULL_RESULT=invalid" [ "$(sys_field svc-refused AUTOPULL_RESULT)" = invalid ]
check "the Caddyfile is unchanged" cmp -s "$AP_TMP/caddyfile.before" "$SYS_ROOT/etc/caddy/Caddyfile"
check "caddy.service not reloaded or restarted" [ "$(inv caddy.service)" = "$caddy" ]
check "applied unchanged" [ "$(applied)" = "$V1" ]

ap_case "trust skip: root's alone, recorded"
sys_sh setpriv --reuid=65534 --regid=65534 --clear-groups autopull --reason x trust skip HEAD \
	>"$AP_TMP/nobody.out" 2>"$AP_TMP/nobody.err" </dev/null
echo $? >"$AP_TMP/nobody.rc"
ap_expect_rc "$AP_CASE: not as another user" 2 nobody
check "says only root may" grep -q "only root may let a commit through" "$AP_TMP/nobody.err"
check "nothing recorded" not grep -qs trust-skip "$SYS_ROOT$SX_STATE/overrides"
sys_mark
sys_autopull skip --reason "reviewed by hand" trust skip HEAD~1
ap_expect_rc "$AP_CASE: root may" 0 skip
check "an 'override' entry" sys_entries skip-j $ID_OVERRIDE
check "AUTOPULL_RESULT=trust-skip" [ "$(sys_field skip-j AUTOPULL_RESULT)" = trust-skip ]
check "AUTOPULL_COMMIT is the commit" [ "$(sys_field skip-j AUTOPULL_COMMIT)" = "$V1" ]
check "AUTOPULL_REASON is the reason" [ "$(sys_field skip-j AUTOPULL_REASON)" = "reviewed by hand" ]
sys_autopull status status
check "status shows it" grep -q "skipped: *$(printf %.12s "$V1") let through the signature check .*reviewed by hand" \
	"$AP_TMP/status.out"
sx_reset
sys_sh rm -f "$VALIDATOR" /run/aptest-validator.env
