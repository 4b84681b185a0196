# shellcheck shell=bash
# The rough edges an operator meets during an incident, against the real user manager:
# `autopull diff` prints git's headers (a/REPO_PATH, b/HOST_PATH) and exits 1 on drift (0
# without, as diff(1)); the bash completion offers for pin and --commit only commits that were
# applied, not refused ones; the heartbeat under a timer says nothing while no verdict
# changes and one line when one does (a loop that ends "failed" and is reset); the stuck
# attempt in `status` prints its reason escaped. Sourced by run.sh after lib.sh (and
# fixtures.sh).

FX_SETTLE=0s
lines() { grep -c '' "$1"; }

start() {
	ap_case "$1"
	fx_reset
	fx_origin file || { ap_fail "$1: fixture origin"; return 1; }
	FX_SETTLE= fx_config "$FX_URL" "" "guard:
  watch: [web.service, loop1.service]
  max_restarts: 2
  window: 1m
  settle: 0s"
	fx_service web.service install "web v1"
	fx_envfile v1
	V1=$(fx_commit v1) || return 1
	fx_apply v1
}

# comp WORDS...: the completion function run as bash would for WORDS (the cursor on the last
# word), as the test user with the built binary first in PATH; COMPREPLY one per line.
comp() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	ap_as_user env PATH="${AP_BIN%/*}:/usr/bin:/bin" bash --norc --noprofile -c '
		. "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		_autopull autopull "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		printf "%s\n" "${COMPREPLY[@]}"' comp "$AP_TMP/completion.bash" "$@"
}

# -------------------------------------------------------------------------------------------
t_diff() {
	local host=${AP_UNIT_DIR#/}/web.service
	start "diff: git's headers, exit 1 on drift" || return
	ap_autopull clean --user -c "$AP_CFG" diff
	ap_expect_rc "$AP_CASE: no drift" 0 clean
	check "says so" grep -q "^no drift" "$AP_TMP/clean.out"
	sed -i '/^\[Service\]/a Environment=HOTFIX=1' "$AP_UNIT_DIR/web.service"
	ap_autopull drift --user -c "$AP_CFG" diff
	sed 's/^/        | /' "$AP_TMP/drift.out" | head -n 8
	ap_expect_rc "$AP_CASE: drift (as diff(1) and git diff --exit-code)" 1 drift
	check "--- a/systemd/web.service" grep -qx -- "--- a/systemd/web.service" "$AP_TMP/drift.out"
	check "+++ b/$host" grep -qx -- "+++ b/$host" "$AP_TMP/drift.out"
	check "no doubled prefix" not grep -q "a/a/\|b/b/" "$AP_TMP/drift.out"
	check "the hand-added line" grep -qx "+Environment=HOTFIX=1" "$AP_TMP/drift.out"
}

t_completion() {
	local v2 v3
	start "completion: pin and --commit offer applied commits only" || return
	install -m 0644 "$AP_ROOT/completion/autopull.bash" "$AP_TMP/completion.bash"
	printf '[Service]\nExecStart=relative/path\n' | fx_write systemd/broken.service
	v2=$(fx_commit "v2: a unit that cannot be installed")
	ap_autopull refused --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: v2 is refused" 4 refused
	fx_rm systemd/broken.service
	fx_service web.service install "web v3"
	v3=$(fx_commit "v3: fixed")
	fx_apply v3
	check "the history holds the refusal of v2" \
		grep -q "refused .*to=$v2" "$AP_STATE_DIR/events"
	check "pin REV: v3 and v1, not the refused v2" \
		[ "$(comp autopull --user -c "$AP_CFG" pin '')" = "${v3:0:12}
${V1:0:12}" ]
	check "--commit REV: the same and HEAD~1" \
		[ "$(comp autopull --user -c "$AP_CFG" apply --commit '')" = "${v3:0:12}
${V1:0:12}
HEAD~1" ]
	check "a prefix of the refused one completes to nothing" \
		[ -z "$(comp autopull --user -c "$AP_CFG" pin "${v2:0:7}")" ]
}

t_heartbeat() {
	local i=0
	start "heartbeat: quiet while nothing changes, one line when something does" || return
	ap_autopull hb1 --user -c "$AP_CFG" heartbeat
	ap_expect_rc "$AP_CASE: first heartbeat" 0 hb1
	check "the apply sampled before it: nothing new, nothing said" [ ! -s "$AP_TMP/hb1.out" ]
	ap_autopull hb2 --user -c "$AP_CFG" heartbeat
	ap_expect_rc "$AP_CASE: second heartbeat" 0 hb2
	check "nothing changed: nothing said" [ ! -s "$AP_TMP/hb2.out" ]
	check "and nothing on stderr" [ ! -s "$AP_TMP/hb2.err" ]
	check "the sample is still recorded" [ "$(grep -c ' web.service ' "$AP_STATE_DIR/heartbeat")" -ge 2 ]
	printf '[Unit]\nDescription=loop\nStartLimitIntervalSec=1min\nStartLimitBurst=3\n[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=100ms\n' |
		ap_user_write "$AP_UNIT_DIR/loop1.service"
	ap_systemctl daemon-reload
	ap_systemctl start loop1.service
	while [ "$(ap_unit_prop loop1.service ActiveState)" != failed ] && [ $i -lt 100 ]; do
		sleep 0.1; i=$((i + 1))
	done
	check "loop1.service crash-looped into failed" [ "$(ap_unit_prop loop1.service ActiveState)" = failed ]
	ap_autopull hb3 --user -c "$AP_CFG" heartbeat
	sed 's/^/        | /' "$AP_TMP/hb3.out"
	check "it loops: one line" [ "$(lines "$AP_TMP/hb3.out")" = 1 ]
	check "REFUSING, naming the unit" grep -q "^guard: REFUSING; loop1.service LOOPING: failed after" "$AP_TMP/hb3.out"
	ap_autopull hb4 --user -c "$AP_CFG" heartbeat
	check "still failed: nothing said" [ ! -s "$AP_TMP/hb4.out" ]
	ap_autopull hb4j --user -c "$AP_CFG" --json heartbeat
	ap_jq "$AP_CASE: --json still prints the verdict" "$AP_TMP/hb4j.out" \
		"d['guard']['looping'][0]['unit'] == 'loop1.service' and d['guard']['looping'][0]['failed']"
	fx_envfile v2
	fx_commit v2 >/dev/null
	ap_autopull refused --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply refuses" 3 refused
	check "the refusal says: systemctl --user reset-failed loop1.service" \
		grep -q "systemctl --user reset-failed loop1.service" "$AP_TMP/refused.err"
	ap_systemctl reset-failed loop1.service
	ap_autopull hb5 --user -c "$AP_CFG" heartbeat
	check "reset: one line, guard: ok" [ "$(cat "$AP_TMP/hb5.out")" = "guard: ok" ]
	ap_autopull after --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: the guard lets applies through" 0 after
	rm -f "$AP_UNIT_DIR/loop1.service"
	ap_systemctl daemon-reload
}

t_status_escape() {
	local now
	start "status: the stuck attempt's reason reaches the terminal escaped" || return
	now=$(date +%s%6N)
	# A refusal whose reason quotes something with an escape sequence in it (ESC [ 3 1 m).
	printf '%s refused from=%s to=%s result=invalid ms=1 trigger=timer units=- reason=bad%%1B%%5B31mfile\n' \
		"$now" "$V1" "$V1" >>"$AP_STATE_DIR/events"
	ap_autopull st --user -c "$AP_CFG" status
	check "the attempt is shown" grep -q "^  attempt:  refused (invalid)" "$AP_TMP/st.out"
	check "no raw ESC byte" not grep -q $'\e' "$AP_TMP/st.out"
	check "the escape is spelled out" grep -qF 'bad\x1b[31mfile' "$AP_TMP/st.out"
}

t_diff
t_completion
t_heartbeat
t_status_escape
