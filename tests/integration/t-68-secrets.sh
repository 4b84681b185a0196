# shellcheck shell=bash
# Secrets: an age-encrypted env file (decrypt: age) decrypted with the host's identity by the
# real age, against the real user manager. The identity's checks (exit 2 with the fix), a host
# that is not a recipient (exit 4, host unchanged), a plaintext change restarting only the unit
# that reads the file (which sees the new value), a re-encryption for an added recipient
# (nothing installed, nothing restarted), the plaintext nowhere but at its destination (state
# directory, output of every verb, metrics), a rollback putting the previous secret back, and a
# kill at every apply crash point leaving no plaintext behind.
# Sourced by run.sh after lib.sh (and fixtures.sh).

# shellcheck source=crash.sh
. "$AP_DIR/crash.sh"

KEY=$AP_HOME/.config/autopull/age.key
SEC=$FX_ETC/secret/app.env
TOK=tok$RANDOM$RANDOM            # every plaintext holds it; grep looks for it
FX_SETTLE=500ms

# units: sec.service reads the secret (and exits at once, for ever, with TOKEN=bad: it never
# settles), other.service does not.
sec_units() {
	{
		printf '[Unit]\nDescription=sec\nStartLimitIntervalSec=0\n\n[Service]\n'
		printf 'EnvironmentFile=%s\n' "$SEC"
		printf 'ExecStart=/bin/sh -c '"'"'test "$TOKEN" != bad || exit 1; exec /bin/sleep infinity'"'"'\n'
		printf 'Restart=always\nRestartSec=200ms\n\n[Install]\nWantedBy=default.target\n'
	} | fx_write systemd/sec.service
	printf '[Unit]\nDescription=other\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=default.target\n' |
		fx_write systemd/other.service
}

# sec_config [EXTRA_YAML]
sec_config() {
	{
		fx_config_head "$FX_URL"
		printf '  - src: secret/app.env.age\n    dest: %s\n    decrypt: age\n' "$SEC"
		printf '    restart: [sec.service]\nguard:\n  settle: %s\n' "$FX_SETTLE"
		[ -n "${1:-}" ] && printf '%s\n' "$1"
	} | ap_user_write "$AP_CFG"
}

# enc VALUE RECIPIENT...: the repository's secret file, TOKEN=VALUE, armored, for RECIPIENTs.
enc() {
	local value=$1 args=() r
	shift
	for r in "$@"; do args+=(-r "$r"); done
	mkdir -p "$FX_ORIGIN/secret"
	printf 'TOKEN=%s\n' "$value" | age -a "${args[@]}" -o "$FX_ORIGIN/secret/app.env.age" || return 1
}

# keys: the host's identity (made as the test user, as the README says) and another host's.
keys() {
	ap_as_user mkdir -p "$(dirname "$KEY")"
	ap_as_user age-keygen -o "$KEY" 2>/dev/null
	HOST_R=$(ap_as_user age-keygen -y "$KEY")
	rm -f "$AP_TMP/other.key"
	age-keygen -o "$AP_TMP/other.key" 2>/dev/null
	OTHER_R=$(age-keygen -y "$AP_TMP/other.key")
	[ -n "$HOST_R" ] && [ -n "$OTHER_R" ]
}

environ_token() {
	local pid
	pid=$(ap_unit_prop sec.service MainPID)
	tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | sed -n 's/^TOKEN=//p'
}

# base NAME: a fresh host with V1 (TOKEN=$TOK-v1 for the host) applied.
base() {
	ap_case "$1"
	fx_reset
	fx_origin file || { ap_fail "$1: fixture origin"; return 1; }
	keys || { ap_fail "$1: age keys"; return 1; }
	sec_config
	sec_units
	enc "$TOK-v1" "$HOST_R" || { ap_fail "$1: age -e"; return 1; }
	V1=$(fx_commit v1)
	fx_apply "${1//[^A-Za-z0-9]/-}-v1"
}

# to_v2 NAME: TOKEN=$TOK-v2 committed, shown by a dry run (text: NAME-dry, JSON: NAME-json)
# and applied (NAME).
to_v2() {
	local v2
	enc "$TOK-v2" "$HOST_R"
	v2=$(fx_commit v2)
	ap_autopull "$1-dry" --user -c "$AP_CFG" --dry-run
	ap_autopull "$1-json" --user -c "$AP_CFG" --dry-run --json
	ap_autopull "$1" --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply" 0 "$1" || return
	check "applied v2" [ "$(applied)" = "$v2" ]
}

# -------------------------------------------------------------------------------------------
t_identity() {
	base "identity missing or readable by others: exit 2 with the fix" || return
	fx_snapshot id-before
	rm -f "$KEY"
	enc "$TOK-v2" "$HOST_R" && fx_commit v2 >/dev/null
	ap_autopull id-missing --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: no identity" 2 id-missing
	check "the error says how to make one" grep -q "age-keygen -o '$KEY'" "$AP_TMP/id-missing.err"
	ap_autopull id-dry --user -c "$AP_CFG" --dry-run
	ap_expect_rc "$AP_CASE: no identity, dry run" 2 id-dry
	check "the dry run gives the fix" grep -q "age-keygen -o '$KEY'" "$AP_TMP/id-dry.err"
	ap_autopull id-diff --user -c "$AP_CFG" diff
	ap_expect_rc "$AP_CASE: no identity, diff cannot compare" 2 id-diff
	check "diff gives the fix" grep -q "age-keygen -o '$KEY'" "$AP_TMP/id-diff.err"
	# the incident path works on a host whose key is broken: only decrypting needs it
	ap_autopull id-status --user -c "$AP_CFG" status
	ap_expect_rc "$AP_CASE: no identity, status" 0 id-status
	check "status shows the applied commit" grep -q "${V1:0:12}" "$AP_TMP/id-status.out"
	check "status warns about the identity" grep -q "secrets: identity '$KEY'" "$AP_TMP/id-status.err"
	ap_autopull id-log --user -c "$AP_CFG" log
	ap_expect_rc "$AP_CASE: no identity, log" 0 id-log
	ap_autopull id-check --user -c "$AP_CFG" check-config
	check "check-config reports it" not [ "$(cat "$AP_TMP/id-check.rc")" = 0 ]
	check "check-config names the identity" grep -q "secrets: identity '$KEY'" "$AP_TMP/id-check.err"
	ap_as_user age-keygen -o "$KEY" 2>/dev/null
	ap_as_user chmod 0644 "$KEY"
	ap_autopull id-mode --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: identity mode 0644" 2 id-mode
	check "the error gives the chmod" grep -q "fix: chmod 0600" "$AP_TMP/id-mode.err"
	fx_snapshot id-after
	check "host unchanged" cmp -s "$AP_TMP/id-before.snap" "$AP_TMP/id-after.snap"
}

t_not_recipient() {
	local before
	base "not a recipient: exit 4, file and identity named, host unchanged" || return
	before=$(inv sec.service)
	fx_snapshot nr-before
	enc "$TOK-v2" "$OTHER_R" && fx_commit v2 >/dev/null
	ap_autopull nr --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply" 4 nr
	check "the file is named" grep -q "secret/app.env.age" "$AP_TMP/nr.err"
	check "the identity is named" grep -q "$KEY" "$AP_TMP/nr.err"
	fx_snapshot nr-after
	check "host unchanged" cmp -s "$AP_TMP/nr-before.snap" "$AP_TMP/nr-after.snap"
	check "applied still v1" [ "$(applied)" = "$V1" ]
	check "sec.service not restarted" [ "$(inv sec.service)" = "$before" ]
	check "no decryption staging left" [ -z "$(ls -A "$AP_STATE_DIR/secrets" 2>/dev/null)" ]
	ap_autopull nr-dry --user -c "$AP_CFG" --dry-run
	ap_expect_rc "$AP_CASE: a dry run exits as the apply would" 4 nr-dry
}

t_change() {
	local sec other ino v3
	base "a secret env file: installed 0600, its unit restarts and sees the new value" || return
	check "installed plaintext" [ "$(cat "$SEC")" = "TOKEN=$TOK-v1" ]
	check "mode 0600 by default" [ "$(stat -c %a "$SEC")" = 600 ]
	check "sec.service active" [ "$(ap_unit_prop sec.service ActiveState)" = active ]
	check "the unit sees v1" [ "$(environ_token)" = "$TOK-v1" ]
	sec=$(inv sec.service) other=$(inv other.service)
	to_v2 chg || return
	check "the dry run says the secret changed" grep -q "(0600, secret changed)" "$AP_TMP/chg-dry.out"
	ap_jq "$AP_CASE: --json marks it a secret" "$AP_TMP/chg-json.out" \
		"d['files'][0]['secret'] is True and d['files'][0]['mode'] == '0600'"
	check "new plaintext installed" [ "$(cat "$SEC")" = "TOKEN=$TOK-v2" ]
	check "sec.service restarted" [ "$(inv sec.service)" != "$sec" ]
	check "other.service untouched" [ "$(inv other.service)" = "$other" ]
	check "the unit sees v2 (/proc/PID/environ)" [ "$(environ_token)" = "$TOK-v2" ]

	ap_case "re-encrypted for an added recipient: nothing installed, nothing restarted"
	sec=$(inv sec.service) ino=$(stat -c '%i %Y' "$SEC")
	enc "$TOK-v2" "$HOST_R" "$OTHER_R"
	v3=$(fx_commit "v3 re-encrypted")
	ap_autopull re --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply" 0 re
	check "applied v3" [ "$(applied)" = "$v3" ]
	check "the file was not rewritten (inode, mtime)" [ "$(stat -c '%i %Y' "$SEC")" = "$ino" ]
	check "sec.service not restarted" [ "$(inv sec.service)" = "$sec" ]
	check "nothing to do" grep -q "nothing to do" "$AP_TMP/re.out"
}

# leaks: the newest plaintext nowhere but at $SEC; older ones only in backups (0600 files in
# 0700 directories).
t_leaks() {
	local f bad=0
	base "the plaintext is only at its destination" || return
	to_v2 lk || return
	printf 'TOKEN=%s-drift\n' "$TOK" >"$SEC"
	ap_autopull lk-diff --user -c "$AP_CFG" diff
	ap_autopull lk-status --user -c "$AP_CFG" status
	ap_autopull lk-log --user -c "$AP_CFG" log
	ap_autopull lk-tick --user -c "$AP_CFG" apply
	check "no output of dry-run, diff, status, log or apply holds the plaintext" \
		not grep -l "$TOK" "$AP_TMP"/lk*.out "$AP_TMP"/lk*.err
	check "the state directory holds no current plaintext" not grep -rlq "$TOK-v2" "$AP_STATE_DIR"
	check "nor the drifted one" not grep -rlq "$TOK-drift" "$AP_STATE_DIR"
	while IFS= read -r f; do
		[ "$(stat -c %a "$f")" = 600 ] && [ "$(stat -c %a "$(dirname "$f")")" = 700 ] || bad=1
	done < <(grep -rl "$TOK" "$AP_STATE_DIR")
	check "older plaintext only in 0600 backups in 0700 dirs" [ "$bad" = 0 ]
}

t_rollback() {
	local v2
	base "a restart that fails rolls the secret back" || return
	enc bad "$HOST_R"
	v2=$(fx_commit "v2 bad")
	FX_SETTLE=2s sec_config
	ap_autopull rb --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply fails" 1 rb
	check "rolled back" grep -q "rolled back" "$AP_TMP/rb.err"
	check "applied still v1" [ "$(applied)" = "$V1" ]
	check "the previous secret is back" [ "$(cat "$SEC")" = "TOKEN=$TOK-v1" ]
	check "mode 0600" [ "$(stat -c %a "$SEC")" = 600 ]
	check "sec.service active again" [ "$(ap_unit_prop sec.service ActiveState)" = active ]
	check "it sees v1" [ "$(environ_token)" = "$TOK-v1" ]
}

# Drift of a secret is found by decrypting in memory: none after an apply, and with drift:
# revert an edited secret is put back (its unit restarted, seeing the repository's value).
t_drift() {
	local sec
	base "drift: an unchanged secret is no drift, an edited one is put back" || return
	ap_autopull dr-diff0 --user -c "$AP_CFG" diff
	ap_expect_rc "$AP_CASE: diff finds no drift" 0 dr-diff0
	sec_config "drift: revert"
	printf 'TOKEN=%s-edited\n' "$TOK" >"$SEC"
	sec=$(inv sec.service)
	ap_autopull dr --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply" 0 dr
	check "the repository's secret is back" [ "$(cat "$SEC")" = "TOKEN=$TOK-v1" ]
	check "sec.service restarted" [ "$(inv sec.service)" != "$sec" ]
	check "it sees v1 again" [ "$(environ_token)" = "$TOK-v1" ]
	check "the log does not quote the edit" not grep -q "$TOK" "$AP_TMP/dr.err" "$AP_TMP/dr.out"
}

# Per-host secrets: %H picks this host's file; another host's file (not encrypted for this one)
# is not mapped here and so refuses nothing.
t_per_host() {
	local host
	host=$(hostname)
	ap_case "per-host secret files (%H): this host's is installed, another's is not read"
	fx_reset
	fx_origin file || { ap_fail "$AP_CASE: fixture origin"; return; }
	keys || { ap_fail "$AP_CASE: age keys"; return; }
	{
		fx_config_head "$FX_URL"
		printf '  - src: hosts/%%H/app.env.age\n    dest: %s\n    decrypt: age\n' "$SEC"
	} | ap_user_write "$AP_CFG"
	mkdir -p "$FX_ORIGIN/hosts/$host" "$FX_ORIGIN/hosts/elsewhere"
	printf 'TOKEN=%s-here\n' "$TOK" | age -a -r "$HOST_R" -o "$FX_ORIGIN/hosts/$host/app.env.age"
	printf 'TOKEN=%s-there\n' "$TOK" | age -a -r "$OTHER_R" -o "$FX_ORIGIN/hosts/elsewhere/app.env.age"
	fx_commit v1 >/dev/null
	ap_autopull ph --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply" 0 ph
	check "this host's secret installed" [ "$(cat "$SEC")" = "TOKEN=$TOK-here" ]
}

t_crash() {
	local points p name
	mapfile -t points < <(crash_points)
	for p in "${points[@]}"; do
		case $p in undo-*) continue ;; after-file) p=after-file:1 ;; esac
		name=sc-${p//[^a-z0-9]/-}
		base "kill -9 at $p: no plaintext left outside the destination" || return
		enc "$TOK-new" "$HOST_R"
		fx_commit v2 >/dev/null
		crash_run "$name" "$p"
		if [ "$(cat "$AP_TMP/$name.rc")" != 137 ]; then
			echo "   (not reached: $p)"
			continue
		fi
		ap_autopull "$name-next" --user -c "$AP_CFG" apply
		ap_expect_rc "$AP_CASE: next run" 0 "$name-next"
		check "the new secret is installed" [ "$(cat "$SEC")" = "TOKEN=$TOK-new" ]
		check "no plaintext in the state directory" not grep -rlq "$TOK-new" "$AP_STATE_DIR"
		check "no temp file beside the destination" [ -z "$(find "$FX_ETC" -name '.#*')" ]
	done
}

# -------------------------------------------------------------------------------------------
if [ ! -x "$AP_BIN" ]; then
	ap_fail "no autopull binary at $AP_BIN"
	exit 1
fi
t_identity
t_not_recipient
t_change
t_leaks
t_rollback
t_drift
t_per_host
t_crash
fx_reset
