# shellcheck shell=bash
# Refusals an operator can act on, against the real user manager: the history keeps the real
# reason of a refusal (the validator's error, the file that needs takeover, the commit and why
# it is untrusted), a validator's output stays lines with its error first in the summary and
# runs with a home of its own, a dry run exits with the code the apply would have and says
# "refused" in its JSON, and 'autopull trust skip' is the recorded way past one unsigned
# commit under trust: require: every-commit. Every refusal leaves the host byte-identical.
# Sourced by run.sh after lib.sh (and fixtures.sh).

# shellcheck source=trust-fixtures.sh
. "$AP_DIR/trust-fixtures.sh"
FX_SETTLE=0s

# last EXPR: a Python expression on the newest event of `autopull log --json` (e).
last() {
	ap_autopull "log-$2" --user -c "$AP_CFG" --json log
	ap_jq "$AP_CASE: $1" "$AP_TMP/log-$2.out" "(lambda e: $3)(d[-1])"
}

# dry_refused NAME RC KIND WORDS...: `--dry-run --json` exits RC like the apply, and its
# "refused" has KIND and each of WORDS in its reason.
dry_refused() {
	local name=$1 rc=$2 kind=$3 w expr; shift 3
	ap_autopull "$name" --user -c "$AP_CFG" --dry-run --json
	ap_expect_rc "$AP_CASE: the dry run exits $rc, as the apply" "$rc" "$name"
	expr="d['refused']['kind'] == '$kind'"
	for w in "$@"; do expr+=" and '$w' in d['refused']['reason']"; done
	ap_jq "$AP_CASE: dry-run JSON: refused ($kind), saying: $*" "$AP_TMP/$name.out" "$expr"
}

# shellcheck source=refusals.sh
. "$AP_DIR/refusals.sh"
VALIDATOR=$AP_BINDIR/noisy-validate
noisy_validator() { validator_text "$FX_LOG/validator.env" >"$VALIDATOR" && chmod 0755 "$VALIDATOR"; }

# complete_words WORDS...: what the bash completion offers for the command line WORDS (the
# last one being completed), run as the test user with autopull on its PATH.
complete_words() {
	install -m 0644 "$AP_ROOT/completion/autopull.bash" "$AP_TMP/completion.bash"
	# shellcheck disable=SC2016 # expanded by the inner bash
	ap_as_user env PATH="${AP_BIN%/*}:/usr/bin:/bin" bash --norc --noprofile -c '. "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _autopull
		printf "%s\n" "${COMPREPLY[@]}"' comp "$AP_TMP/completion.bash" "$@"
}

start() {
	ap_case "$1"
	fx_reset
	fx_origin file || { ap_fail "$1: fixture origin"; return 1; }
	fx_config "$FX_URL" "" "${2:-}"
}

# -------------------------------------------------------------------------------------------
t_validator() {
	local web
	start "a failed validator: its error first, its output as lines, the reason kept" || return
	noisy_validator
	sed -i "s|    reload: \[web.service\]|    reload: [web.service]\n    validate: [$VALIDATOR, \"%s\"]|" "$AP_CFG"
	fx_service web.service install
	fx_caddyfile v1
	fx_commit v1 >/dev/null
	fx_apply v1 || return
	validator_home_checks "$AP_STATE_DIR" "$FX_LOG/validator.env"
	web=$(inv web.service)
	caddyfile_typo 8080 hello | fx_write caddy/Caddyfile
	fx_commit typo >/dev/null
	fx_snapshot val-before

	dry_refused val-dry 4 invalid caddy/Caddyfile "unrecognized directive: respnd"
	ap_autopull val-dryh --user -c "$AP_CFG" --dry-run
	ap_expect_rc "$AP_CASE: a human dry run exits 4 too" 4 val-dryh
	check "its plan ends with the refusal and the validator's error" \
		grep -q "^refused (invalid): validation of 'caddy/Caddyfile' failed (exit 1): Error: .*respnd" "$AP_TMP/val-dryh.out"
	check "with the validator's control bytes escaped" not grep -q $'\x1b' "$AP_TMP/val-dryh.out"

	ap_autopull val --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: refused" 4 val
	check "the summary names the file and puts the error first" \
		grep -qE "validation of 'caddy/Caddyfile' failed \(exit 1\): Error: adapting config using caddyfile: Caddyfile:2: unrecognized directive: respnd \| \{\"level\":\"warn\"" \
		"$AP_TMP/val.err"
	check "no line carries a literal \\n" not grep -qF '\n' "$AP_TMP/val.err"
	check "the validator's lines are lines of their own" \
		grep -qE "validator '[^']*noisy-validate' on 'caddy/Caddyfile': \{\"level\":\"warn\"" "$AP_TMP/val.err"
	check "its last 20 only" [ "$(grep -c "validator '[^']*noisy-validate' on 'caddy/Caddyfile': " "$AP_TMP/val.err")" = 20 ]
	check "the error is its own line too" \
		grep -qE "on 'caddy/Caddyfile': Error: adapting config using caddyfile: Caddyfile:2: unrecognized directive: respnd$" "$AP_TMP/val.err"
	last "the history keeps the file and the validator's error" val \
		"e['event'] == 'refused' and e['result'] == 'invalid' and 'caddy/Caddyfile' in e['reason'] and 'unrecognized directive: respnd' in e['reason'] and 'logged above' not in e['reason']"
	fx_snapshot val-after
	check "host byte-identical" cmp -s "$AP_TMP/val-before.snap" "$AP_TMP/val-after.snap"
	check_eq_inv web.service "$web"
}

check_eq_inv() { ap_check_eq "$AP_CASE: $1 not restarted" "$2" "$(inv "$1")"; }

t_takeover() {
	local worker
	start "a takeover refusal: the dry run exits 4 like the apply and both say why" || return
	fx_service web.service install
	fx_service worker.service install
	fx_envfile v1
	fx_commit v1 >/dev/null
	fx_apply v1 || return
	worker=$(inv worker.service)
	echo precious | ap_user_write "$FX_ETC/env/manual.env"
	printf 'REPO=1\n' | fx_write env/manual.env
	fx_commit manual >/dev/null
	fx_snapshot take-before

	ap_autopull take-dry --user -c "$AP_CFG" --dry-run
	ap_expect_rc "$AP_CASE: dry run exits 4, as the apply" 4 take-dry
	check "the dry run still prints the plan" grep -q "env/manual.env" "$AP_TMP/take-dry.out"
	check "and says it would be refused, and why" \
		grep -q "^refused (preflight): .*manual.env.*takeover: true" "$AP_TMP/take-dry.out"
	dry_refused take-dryj 4 preflight manual.env "takeover: true"

	ap_autopull take --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply refused" 4 take
	last "the history names the file and the rule, not 'cannot be written'" take \
		"e['result'] == 'preflight' and 'manual.env' in e['reason'] and 'takeover: true' in e['reason'] and 'cannot be written' not in e['reason']"
	fx_snapshot take-after
	check "host byte-identical" cmp -s "$AP_TMP/take-before.snap" "$AP_TMP/take-after.snap"
	check "the operator's file is intact" grep -qx precious "$FX_ETC/env/manual.env"
	check_eq_inv worker.service "$worker"

	fx_rm env/manual.env
	fx_service web.service install "web v2"
	fx_commit drop-manual >/dev/null
	ap_autopull ok-dry --user -c "$AP_CFG" --dry-run --json
	ap_expect_rc "$AP_CASE: a plan that applies: dry run exits 0" 0 ok-dry
	ap_jq "$AP_CASE: and has no 'refused'" "$AP_TMP/ok-dry.out" "'refused' not in d"
	# The repository's own CI plans without a manager: nothing for the guard to sample.
	install -d -m 0700 -o "$AP_UID" -g "$AP_GID" "$AP_HOME/no-runtime"
	ap_as_user env XDG_RUNTIME_DIR="$AP_HOME/no-runtime" timeout -k 5 "$AP_CMD_TIMEOUT" \
		"$AP_BIN" --user -c "$AP_CFG" --dry-run --json >"$AP_TMP/nomgr.out" 2>"$AP_TMP/nomgr.err" </dev/null
	echo $? >"$AP_TMP/nomgr.rc"
	ap_expect_rc "$AP_CASE: without a manager a dry run still plans" 0 nomgr
	ap_jq "$AP_CASE: web.service restart, conditional" "$AP_TMP/nomgr.out" \
		"'refused' not in d and any(u['unit'] == 'web.service' for u in d['units'])"
	rmdir "$AP_HOME/no-runtime"
}

t_guard() {
	local web
	FX_SETTLE= start "a looping watched unit: the dry run exits 3 like the apply, and records nothing" "guard:
  watch: [\"loop*.service\"]
  max_restarts: 2
  window: 1m
  settle: 0s" || return
	fx_service web.service install
	printf '[Unit]\nDescription=loop\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=300ms\n' |
		fx_write systemd/loop1.service
	fx_commit v1 >/dev/null
	fx_apply v1 || return
	ap_systemctl start loop1.service
	ap_wait_prop loop1.service NRestarts 4 10 >/dev/null 2>&1
	for i in 1 2 3; do ap_autopull "hb$i" --user -c "$AP_CFG" heartbeat; sleep 0.5; done
	fx_service web.service install "web v2"
	fx_commit v2 >/dev/null
	web=$(inv web.service)
	cp "$AP_STATE_DIR/heartbeat" "$AP_TMP/heartbeat.before"
	dry_refused g-dry 3 guard loop1.service
	ap_autopull g-dryh --user -c "$AP_CFG" --dry-run
	ap_expect_rc "$AP_CASE: the human dry run exits 3" 3 g-dryh
	check "no history of samples added by the dry runs" cmp -s "$AP_STATE_DIR/heartbeat" "$AP_TMP/heartbeat.before"
	ap_autopull g-dryo --user -c "$AP_CFG" --dry-run --override-guard --reason "the fix"
	ap_expect_rc "$AP_CASE: with --override-guard the dry run exits 0, as the apply would" 0 g-dryo
	check "and records no override" not grep -qs guard "$AP_STATE_DIR/overrides"
	ap_autopull g --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: the apply exits 3" 3 g
	last "the history names the looping unit" g "e['result'] == 'guard' and 'loop1.service' in e['reason']"
	check "web.service not restarted" [ "$(inv web.service)" = "$web" ]
	ap_systemctl stop loop1.service
}

TRUST_SSH="trust:
  ssh_allowed_signers: $TK/allowed_signers
  require: every-commit"

t_trust_skip() {
	local v1 bad v3 web v4
	start "one unsigned commit under every-commit: 'trust skip' is the recorded way past it" "$TRUST_SSH" || return
	fx_service web.service install
	v1=$(tk_commit_as alice v1)
	fx_apply v1 || return
	fx_service web.service install "web v2"
	bad=$(tk_commit_as - "v2 unsigned")
	fx_service web.service install "web v3"
	v3=$(tk_commit_as alice "v3 signed on top")
	web=$(inv web.service)
	fx_snapshot ts-before

	ap_autopull ts1 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: a signed commit on top does not help" 4 ts1
	check "the refusal says what does: autopull trust skip ${bad:0:12}" \
		grep -q "autopull trust skip ${bad:0:12} --reason TEXT" "$AP_TMP/ts1.err"
	last "the history names the commit and why, not a bare id" ts1 \
		"e['result'] == 'untrusted' and '${bad:0:12}' in e['reason'] and 'unsigned' in e['reason']"
	dry_refused ts1-dry 4 untrusted "${bad:0:12}" unsigned
	fx_snapshot ts-mid
	check "host byte-identical" cmp -s "$AP_TMP/ts-before.snap" "$AP_TMP/ts-mid.snap"

	check "bash completion offers the refused commit for 'trust skip'" \
		grep -qx "${bad:0:12}" <(complete_words autopull --user -c "$AP_CFG" trust skip '')
	ap_autopull ts-noreason --user -c "$AP_CFG" trust skip "$bad"
	ap_expect_rc "$AP_CASE: trust skip without --reason" 2 ts-noreason
	ap_autopull ts-elsewhere --user -c "$AP_CFG" --reason x trust skip 0000000000000000000000000000000000000000
	ap_expect_rc "$AP_CASE: a commit not on the branch" 2 ts-elsewhere
	check "nothing recorded by the refused ones" not grep -qs trust-skip "$AP_STATE_DIR/overrides"
	ap_autopull ts-skip --user -c "$AP_CFG" --reason "signing key lost; reviewed by hand" trust skip "${bad:0:12}"
	ap_expect_rc "$AP_CASE: trust skip COMMIT --reason" 0 ts-skip
	check "recorded in the overrides" grep -q " trust-skip $bad signing key lost; reviewed by hand$" \
		"$AP_STATE_DIR/overrides"
	last "recorded in the history" ts-skip \
		"e['event'] == 'override' and e['result'] == 'trust-skip' and e['to'] == '$bad' and e['reason'] == 'signing key lost; reviewed by hand'"
	ap_autopull ts-list --user -c "$AP_CFG" trust skip
	check "listed by 'trust skip'" grep -q "^$bad  skipped .*: signing key lost" "$AP_TMP/ts-list.out"
	ap_autopull ts-listj --user -c "$AP_CFG" --json trust skip
	ap_jq "$AP_CASE: and by 'trust skip --json'" "$AP_TMP/ts-listj.out" \
		"d['trust_skips'][0]['commit'] == '$bad' and d['trust_skips'][0]['why'].startswith('signing key lost')"
	ap_autopull ts-status --user -c "$AP_CFG" status
	check "shown in status" grep -q "skipped: *${bad:0:12} let through the signature check .*signing key lost" \
		"$AP_TMP/ts-status.out"
	ap_autopull ts-statusj --user -c "$AP_CFG" --json status
	ap_jq "$AP_CASE: status --json lists it" "$AP_TMP/ts-statusj.out" \
		"d['trust_skips'][0]['commit'] == '$bad' and d['trust_skips'][0]['why'].startswith('signing key lost')"

	ap_autopull ts2 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: the apply goes through" 0 ts2
	check "applied = the signed tip" [ "$(applied)" = "$v3" ]
	check "says it let the commit through" grep -q "letting commit ${bad:0:12} .*trust skip" "$AP_TMP/ts2.err"
	check "web.service restarted" [ "$(inv web.service)" != "$web" ]
	check "web v3 running" [ "$(ap_unit_prop web.service Description)" = "web v3" ]

	# The tip's own signature is never skipped.
	fx_service web.service install "web v4"
	v4=$(tk_commit_as - "v4 unsigned tip")
	ap_autopull ts3 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: an unsigned tip is refused" 4 ts3
	check "no trust skip offered for the tip itself" not grep -q "autopull trust skip" "$AP_TMP/ts3.err"
	ap_autopull ts-tip --user -c "$AP_CFG" --reason "try the tip" trust skip "$v4"
	ap_expect_rc "$AP_CASE: the tip can be listed" 0 ts-tip
	ap_autopull ts4 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: but an unsigned tip is still refused" 4 ts4
	check "applied unchanged" [ "$(applied)" = "$v3" ]
	check "web v3 still running" [ "$(ap_unit_prop web.service Description)" = "web v3" ]
}

# -------------------------------------------------------------------------------------------
if [ ! -x "$AP_BIN" ]; then
	ap_fail "no autopull binary at $AP_BIN"
	exit 1
fi
ap_case "fixture keys"
tk_keys || ap_die "cannot make the fixture keys"
t_validator
t_takeover
t_guard
t_trust_skip
tk_stop_agent
fx_reset
