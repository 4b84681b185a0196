# shellcheck shell=bash
# State that cannot be trusted stops the apply, and says where and how to repair it: a
# commit rolled back by a real failed settle stays skipped when the list of bad commits is
# unreadable or cut short (the unit is not restarted into the broken definition again); a
# damaged pin, inventory or journal is named with its line. Drift is keyed on the commit and
# the configuration: a file whose rule was removed is no longer managed, so `drift: revert`
# leaves it alone instead of "putting it back" on every tick.
# Sourced by run.sh after lib.sh (and fixtures.sh).

S=$AP_STATE_DIR

# vsvc UNIT VERSION [broken]: a service that logs its version at every start; "broken" exits 1
# at once and restarts (it never settles).
vsvc() { fx_vservice "$@"; }

# refused_state NAME PATTERN...: `apply` exits 1 saying every PATTERN (grep -E), app.service
# keeps its InvocationID and never started the broken v2 again, the host is byte-identical.
refused_state() {
	local name=$1 p
	shift
	fx_snapshot "$name-before"
	ap_autopull "$name" --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: $name: the apply stops" 1 "$name"
	for p in "$@"; do check "$name: says '$p'" grep -qE -- "$p" "$AP_TMP/$name.err"; done
	check "$name: app.service not restarted" [ "$(ap_unit_prop app.service InvocationID)" = "$INV" ]
	check "$name: the broken v2 did not start again" [ "$(grep -c v2 "$FX_LOG/app.versions")" = "$V2_STARTS" ]
	fx_snapshot "$name-after"
	check "$name: host byte-identical" cmp -s "$AP_TMP/$name-before.snap" "$AP_TMP/$name-after.snap"
}

# rolled_back: app.service v1 applied, then v2 (broken) rolled back by the guard's settle and
# marked bad; the next tick skips it. Sets V1 V2 INV V2_STARTS.
rolled_back() {
	ap_case "$1"
	fx_reset
	fx_origin file || { ap_fail "$1: fixture origin"; return 1; }
	FX_SETTLE= fx_config "$FX_URL" "" "guard:
  watch: [app.service]
  max_restarts: 2
  window: 1m
  settle: 2s"
	vsvc app.service v1
	V1=$(fx_commit v1)
	fx_apply "${1%% *}-v1" || return 1
	vsvc app.service v2 broken
	V2=$(fx_commit v2-broken)
	ap_autopull rb --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: the breaking commit is rolled back" 1 rb || return 1
	check "v2 is marked bad" grep -q "^$V2 " "$S/bad" || return 1
	ap_wait_prop app.service ActiveState active 5
	INV=$(ap_unit_prop app.service InvocationID)
	V2_STARTS=$(grep -c v2 "$FX_LOG/app.versions")
	ap_autopull skip --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: the next tick skips it" 0 skip
	check "skipped" grep -q "skipping ${V2:0:12}" "$AP_TMP/skip.err"
}

t_bad_unreadable() {
	rolled_back "bad unreadable: the rolled-back commit is not applied again" || return
	chmod 0000 "$S/bad"
	refused_state bad-eacces "failed to read '$S/bad': Permission denied" \
		"refusing to apply ${V2:0:12}: the list of rolled-back commits cannot be read"
	chmod 0600 "$S/bad"
	rm -f "$S/bad"; mkdir "$S/bad"
	refused_state bad-dir "'$S/bad'.*Is a directory"
	rmdir "$S/bad"
}

t_bad_garbled() {
	local line
	rolled_back "bad cut short: the rolled-back commit is not applied again" || return
	line=$(head -n 1 "$S/bad")
	printf '%s\n%s' "$line" "${line:0:30}" >"$S/bad"
	refused_state bad-cut "'$S/bad' line 2 is malformed" "fix or delete that line"
	printf '%s -1 %s\n' "$V2" "wrapped time" >"$S/bad"
	refused_state bad-negative "'$S/bad' line 1 is malformed"
	printf '%s %s\n' "$line" "" >"$S/bad"
	ap_autopull bad-fixed --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: repaired, the commit is skipped again" 0 bad-fixed
	check "skipped" grep -q "skipping ${V2:0:12}" "$AP_TMP/bad-fixed.err"
}

t_lines() {
	local ok
	rolled_back "a damaged pin, inventory or journal is named with its line and repair" || return
	printf '%s -5 hold\n' "$V1" >"$S/pin"
	refused_state pin-negative "'$S/pin' line 1 is malformed; 'autopull unpin' removes it"
	printf '%s 5 hold\n%s 6 again\n' "$V1" "$V1" >"$S/pin"
	refused_state pin-two "'$S/pin' line 2 is one line too many"
	rm -f "$S/pin"
	ok=$(cat "$S/owned")
	printf '%s\nrelative/path\n' "$ok" >"$S/owned"
	refused_state owned "owned' holds a line that is not an absolute path: line $(($(wc -l <<<"$ok") + 1))" \
		"fix or delete that line"
	printf '%s\n' "$ok" >"$S/owned"
	printf 'autopull-journal 2\nfrom %s\nto nonsense\n' "$V1" >"$S/journal"
	refused_state journal "'$S/journal' is malformed at line 3; move it away"
	rm -f "$S/journal"
	# a guard-tripped that cannot be read is a tripped guard (exit 3), with the way out, for
	# the next commit that would be applied
	vsvc app.service v3
	fx_commit v3 >/dev/null
	echo "rollback of x failed" >"$S/guard-tripped"
	chmod 0000 "$S/guard-tripped"
	ap_autopull tripped --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: an unreadable guard-tripped refuses as tripped" 3 tripped
	check "names the file and the repair" grep -q "failed to read '$S/guard-tripped': Permission denied.*--override-guard" \
		"$AP_TMP/tripped.err"
	check "tripped: app.service not restarted" [ "$(ap_unit_prop app.service InvocationID)" = "$INV" ]
	rm -f "$S/guard-tripped"
}

t_drift_config() {
	local t
	ap_case "drift: a rule removed from the configuration no longer manages its file"
	fx_reset
	fx_origin file || { ap_fail "fixture origin"; return; }
	fx_config "$FX_URL" "" "drift: revert"
	fx_service web.service install
	fx_service worker.service install
	fx_envfile v1
	fx_commit v1 >/dev/null
	fx_apply drift-v1 || return
	check "the env file is installed" grep -qx APP_VERSION=v1 "$FX_ETC/env/app.env"
	ap_autopull drift-noop --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: a tick (the expected set is stored)" 0 drift-noop
	# the operator takes env/ out of autopull's hands, then edits the file
	sed -i '/^  - src: env\/$/,/^    restart: \[worker.service\]$/d' "$AP_CFG"
	check "the rule is gone from the configuration" not grep -q "src: env/" "$AP_CFG"
	echo "APP_VERSION=by hand" >"$FX_ETC/env/app.env"
	for t in 1 2; do
		ap_autopull "drift-tick$t" --user -c "$AP_CFG" apply
		ap_expect_rc "$AP_CASE: tick $t" 0 "drift-tick$t"
		check "tick $t: nothing to put back" not grep -q "putting back" "$AP_TMP/drift-tick$t.err"
		check "tick $t: no drift reported" not grep -q "differ from" "$AP_TMP/drift-tick$t.err"
		check "tick $t: the file stays as the operator left it" grep -qx "APP_VERSION=by hand" "$FX_ETC/env/app.env"
		check "tick $t: drift 0 for the metrics" grep -qx "drift 0" "$S/tick"
	done
	check "no revert event" not grep -q '"revert"' "$S/events"
	# a damaged expected is a cache: named with its line, computed again, the tick goes on
	printf 'commit %s\nconfig short\n' "$(applied)" >"$S/expected"
	ap_autopull drift-expected --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: a damaged expected does not stop the tick" 0 drift-expected
	check "names the file and line" grep -q "'$S/expected' line 2 is not 'config <digest>'; it is computed again" \
		"$AP_TMP/drift-expected.err"
	check "written again with the configuration's digest" grep -qE "^config [0-9a-f]{64}$" "$S/expected"
	# a managed file still drifts and is put back
	printf '[Unit]\nDescription=edited by hand\n' >"$AP_UNIT_DIR/web.service"
	ap_autopull drift-managed --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: a managed file that drifted is put back" 0 drift-managed
	check "put back" grep -q "putting back 1 drifted file(s) (drift: revert), the first '$AP_UNIT_DIR/web.service'" \
		"$AP_TMP/drift-managed.err"
	check "its bytes are the commit's again" grep -qx "Description=web.service v1" "$AP_UNIT_DIR/web.service"
}

# -------------------------------------------------------------------------------------------
if [ ! -x "$AP_BIN" ]; then
	ap_fail "no autopull binary at $AP_BIN"
	exit 1
fi
t_bad_unreadable
t_bad_garbled
t_lines
t_drift_config
fx_reset
