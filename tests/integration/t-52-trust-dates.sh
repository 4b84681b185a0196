# shellcheck shell=bash
# Key dates against real signatures: a retired key (valid-before in allowed_signers) that
# back-dates its commit deploys nothing; a commit dated before what it follows by more than
# trust.max_date_skew, or outside the years 1970..9999, is refused; every such refusal is the
# same recorded refusal (exit 4, message naming the commit, `refused` event, counter,
# on_refused hook); a refused `apply --commit` leaves no pin behind. Each refusal is checked
# against the real unit (InvocationID) and the installed bytes.
# Sourced by run.sh after lib.sh (and fixtures.sh).

# shellcheck source=trust-fixtures.sh
. "$AP_DIR/trust-fixtures.sh"
FX_SETTLE=0s
HOOKS=$AP_HOME/hooks52

# dated KEY DATE MSG: commit everything in the origin signed with the ssh key KEY (or "-"
# for unsigned) with committer date DATE (git's formats, "@<seconds> +0000"); prints the sha.
dated() {
	local -a sign=(-c commit.gpgsign=false)
	[ "$1" != - ] && sign=(-c gpg.format=ssh -c "user.signingkey=$TK/$1" -c commit.gpgsign=true)
	chown -R "$AP_UID:$AP_GID" "$FX_ORIGIN" || return 1
	ap_git "$FX_ORIGIN" add -A &&
	ap_as_user env GNUPGHOME="$TK_GNUPG" GIT_COMMITTER_DATE="$2" timeout "$AP_CMD_TIMEOUT" \
		git -C "$FX_ORIGIN" "${sign[@]}" commit -q --allow-empty -m "$3" || return 1
	ap_repo_head "$FX_ORIGIN"
}

write_hook() {
	rm -rf "$HOOKS"
	ap_as_user mkdir -p "$HOOKS"
	printf '#!/bin/sh\necho "event=$AUTOPULL_EVENT result=$AUTOPULL_RESULT commit=$AUTOPULL_COMMIT reason=$AUTOPULL_REASON" >>%s/log\n' \
		"$HOOKS" | ap_user_write "$HOOKS/hook"
	chmod 0755 "$HOOKS/hook"
}

TRUST="trust:
  ssh_allowed_signers: $TK/allowed_signers"

# start NAME [EXTRA_TRUST_YAML]: fresh slate, a hook on refusals, web.service v1 signed by
# alice (dated now) applied and running.
start() {
	ap_case "$1"
	fx_reset
	fx_origin file || { ap_fail "$1: fixture origin"; return 1; }
	write_hook
	fx_config "$FX_URL" "" "$TRUST${2:+
$2}
hooks:
  on_refused: [$HOOKS/hook]"
	fx_service web.service install
	V1=$(tk_commit_as alice v1) || { ap_fail "$1: commit v1"; return 1; }
	fx_apply "${1//[^A-Za-z0-9]/-}-v1" || return 1
	INV=$(ap_unit_prop web.service InvocationID)
}

# refused NAME COMMIT REASON_TEXT: `apply` exits 4 naming COMMIT and REASON_TEXT; the event,
# the counter and the hook record it; web.service was not touched and the host is
# byte-identical.
refused() {
	local n=${3:-} before
	before=$(refused_metric untrusted)
	fx_snapshot "$1-before"
	ap_autopull "$1" --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: $1 refused" 4 "$1"
	check "$1: names the commit" grep -q "refusing ${2:0:12}" "$AP_TMP/$1.err"
	check "$1: says '$n'" grep -qF -- "$n" "$AP_TMP/$1.err"
	fx_snapshot "$1-after"
	check "$1: host byte-identical" cmp -s "$AP_TMP/$1-before.snap" "$AP_TMP/$1-after.snap"
	check "$1: web.service not restarted" [ "$(ap_unit_prop web.service InvocationID)" = "$INV" ]
	check "$1: applied commit unchanged" [ "$(applied)" = "$V1" ]
	check "$1: counter refused{untrusted} +1" [ "$(refused_metric untrusted)" = $((${before:-0} + 1)) ]
	ap_autopull "$1-log" --user -c "$AP_CFG" --json log
	ap_jq "$AP_CASE: $1: a refused event for the commit" "$AP_TMP/$1-log.out" \
		"d[-1]['event'] == 'refused' and d[-1]['result'] == 'untrusted' and d[-1]['to'] == '$2'"
	check "$1: on_refused hook ran for it" grep -q "event=refused result=untrusted commit=$2" "$HOOKS/log"
}

# -------------------------------------------------------------------------------------------
t_retired_backdated() {
	local v2
	start "a retired key back-dates its commit to before its valid-before: refused" || return
	fx_service web.service install "web v2 by the retired key"
	v2=$(dated retired "2019-06-01T12:00:00Z" "back-dated") || { ap_fail "commit"; return; }
	refused retired-date "$v2" "bad date: it is dated 20190601"
	# with the date check out of the way, the key itself is checked now, not in 2019
	sed -i 's|^  ssh_allowed_signers: .*|&\n  max_date_skew: 36500d|' "$AP_CFG"
	refused retired "$v2" "key not valid: the SSH key's allowed_signers entry is not valid now"
	check "the hook got the verdict as its reason" grep -q "reason=$v2 key not valid" "$HOOKS/log"
	ap_autopull retired-dry --user -c "$AP_CFG" --dry-run
	ap_expect_rc "$AP_CASE: dry-run refuses too" 4 retired-dry
	check "dry-run lists the verdict" grep -q "source: ${v2:0:12} .*(2019-06-01 12:00 UTC): key not valid" \
		"$AP_TMP/retired-dry.out"
	check "the installed unit is still v1" grep -q "Description=web.service v1" "$AP_UNIT_DIR/web.service"
}

t_backdated_skew() {
	local v2
	start "a commit dated days before its parent: refused unless max_date_skew allows it" || return
	fx_service web.service install "web v2 back-dated"
	v2=$(dated alice "@$(($(date +%s) - 3 * 86400)) +0000" "three days before v1") || { ap_fail "commit"; return; }
	refused skew "$v2" "bad date: it is dated"
	check "says the setting" grep -q "trust.max_date_skew allows 86400 s" "$AP_TMP/skew.err"
	sed -i 's|^  ssh_allowed_signers: .*|&\n  max_date_skew: 7d|' "$AP_CFG"
	ap_autopull skew-ok --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: applied with max_date_skew: 7d" 0 skew-ok
	check "v2 applied" [ "$(applied)" = "$v2" ]
	check "web.service restarted into v2" [ "$(ap_unit_prop web.service InvocationID)" != "$INV" ]
}

t_year_10000() {
	local v2
	start "a signed commit dated past the year 9999: a recorded refusal, not a config error" || return
	fx_service web.service install "web v2 from the far future"
	v2=$(dated alice "@253402300801 +0000" "year 10000") || { ap_fail "commit"; return; }
	refused y10k "$v2" "bad date: its committer date (253402300801) is outside the years 1970..9999"
	refused y10k-again "$v2" "outside the years 1970..9999"
}

t_refused_commit_no_pin() {
	local v2 v3
	start "a refused apply --commit leaves no pin; the next tick deploys the good tip" \
		"  require: tip" || return
	fx_service web.service install "web v2 unsigned"
	v2=$(dated - "@$(date +%s) +0000" "unsigned") || { ap_fail "commit"; return; }
	fx_service web.service install "web v3"
	v3=$(tk_commit_as alice v3) || { ap_fail "commit"; return; }
	ap_autopull pin-refused --user -c "$AP_CFG" apply --commit "$v2" --reason "try v2"
	ap_expect_rc "$AP_CASE: apply --commit of an unsigned commit refused" 4 pin-refused
	check "says unsigned" grep -q "unsigned: the commit carries no signature" "$AP_TMP/pin-refused.err"
	check "no pin was written" [ ! -e "$AP_STATE_DIR/pin" ]
	ap_autopull pin-status --user -c "$AP_CFG" status
	check "status does not say pinned" not grep -qi "pinned" "$AP_TMP/pin-status.out"
	ap_autopull pin-tick --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: the next tick applies the signed tip" 0 pin-tick
	check "v3 applied" [ "$(applied)" = "$v3" ]
	check "web.service restarted into v3" [ "$(ap_unit_prop web.service InvocationID)" != "$INV" ]
	ap_autopull pin-good --user -c "$AP_CFG" apply --commit "$V1" --reason "back to v1"
	ap_expect_rc "$AP_CASE: a source that passes is pinned as before" 0 pin-good
	check "pin written for the good one" grep -q "^$V1 " "$AP_STATE_DIR/pin"
}

# -------------------------------------------------------------------------------------------
if [ ! -x "$AP_BIN" ]; then
	ap_fail "no autopull binary at $AP_BIN"
	exit 1
fi
ap_case "fixture keys"
tk_keys || ap_die "cannot make the fixture keys"
t_retired_backdated
t_backdated_skew
t_year_10000
t_refused_commit_no_pin
tk_stop_agent
rm -rf "$HOOKS"
fx_reset
