# shellcheck shell=bash
# Crash safety of an undo against the real user manager (crash.sh has the fixtures):
#
#   restore    V1 applied, VR at the tip, mod.service cannot be replaced (immutable, after
#              own/x.conf was written): the files are put back and the units it had stopped
#              run again; the next run, with the write made possible, applies VR afresh.
#   rollback   V1 applied, VB at the tip: mod.service does not settle, everything is rolled
#              back; the run after skips VB.
#
# Each runs once without a kill, which names the undo points it passes
# (AUTOPULL_TEST_CRASH_LOG); then a kill at each of those points, and the next run must finish
# the undo. An undo point a scenario does not pass (a restore undoes no phase after the
# files) is named and not counted. Sourced by run.sh after lib.sh (and fixtures.sh).

# shellcheck source=crash.sh
. "$AP_DIR/crash.sh"

# restore_run NAME POINT: VR applied over V1 with mod.service immutable, to be killed at POINT.
restore_run() {
	crash_config "$CRASH_SETTLE" "$AP_CFG"
	reset_host "$VR" || return 1
	chattr +i "$AP_UNIT_DIR/mod.service"
	crash_run "$1" "$2"
	chattr -i "$AP_UNIT_DIR/mod.service"
}

# restore_recover NAME: the write made possible, the next run applies VR.
restore_recover() {
	ap_autopull "recover-$1" --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: next run" 0 "recover-$1"
	converged "$VR" "mod v2"
}

restore_not_killed() {
	ap_case "a restore, not killed"
	restore_run probe-restore none || return 1
	ap_expect_rc "$AP_CASE: the write fails" 1 probe-restore
	check "it says the files were put back" grep -q "its files were put back" "$AP_TMP/probe-restore.err"
	check "applied still V1" [ "$(applied)" = "$V1" ]
	check "files = repository at V1" tree_matches "$V1"
	props gone.service
	check "the unit it had stopped runs again" unit_up gone.service
	restore_recover probe-restore
}

kill_restore() {
	local point=$1 name=${1//[^a-z0-9]/-}
	ap_case "kill at $point during a restore"
	restore_run "crash-$name" "$point" || return
	killed_at "crash-$name" "$point" || return
	check "applied still V1" [ "$(applied)" = "$V1" ]
	check "the journal says the files may differ" grep -q "^mode apply" "$AP_STATE_DIR/journal"
	restore_recover "$name"
}

# rollback_finished NAME: run NAME rolled VB back; the run after skips VB.
rollback_finished() {
	check "it says so" grep -q "rolled back ${VB:0:12}" "$AP_TMP/$1.err"
	rolled_back
	ap_autopull "skip-$1" --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: the run after" 0 "skip-$1"
	check "it skips the bad commit" grep -q "skipping ${VB:0:12}" "$AP_TMP/skip-$1.err"
}

rollback_not_killed() {
	ap_case "a rollback, not killed"
	crash_config "$ROLLBACK_SETTLE" "$AP_CFG"
	reset_host "$VB" || return 1
	crash_run probe-rollback none
	ap_expect_rc "$AP_CASE: the commit does not settle" 1 probe-rollback
	rollback_finished probe-rollback
}

kill_rollback() {
	local point=$1 name=${1//[^a-z0-9]/-}
	ap_case "kill at $point during a rollback"
	crash_config "$ROLLBACK_SETTLE" "$AP_CFG"
	reset_host "$VB" || return
	crash_run "crash-$name" "$point"
	killed_at "crash-$name" "$point" || return
	check "the run was rolling back" grep -q "^mode rollback" "$AP_STATE_DIR/journal"
	check "applied still V1 after the kill" [ "$(applied)" = "$V1" ]
	ap_autopull "recover-$name" --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: next run finishes the rollback" 1 "recover-$name"
	rollback_finished "recover-$name"
}

# ---------------------------------------------------------------------------------------------
undo_matrix() {
	local p undo=()
	ap_case "crash points"
	mapfile -t undo < <(crash_points | grep '^undo-')
	ap_check "undo crash points parsed from src/apply.c: ${#undo[@]}" [ "${#undo[@]}" -gt 0 ]
	make_commits || { ap_fail "fixture commits"; return; }

	restore_not_killed || return
	reached probe-restore "${undo[@]}"
	echo "   a restore passes ${#REACHED[@]} of ${#undo[@]} undo points: ${REACHED[*]}" \
		"${UNREACHED[*]:+(not passed, not counted: ${UNREACHED[*]})}"
	check "a restore passes undo-files" eval '[[ " ${REACHED[*]} " = *" undo-files "* ]]'
	for p in "${REACHED[@]}"; do kill_restore "$p"; done

	rollback_not_killed || return
	reached probe-rollback "${undo[@]}"
	echo "   a rollback passes ${#REACHED[@]} of ${#undo[@]} undo points: ${REACHED[*]}" \
		"${UNREACHED[*]:+(not passed, not counted: ${UNREACHED[*]})}"
	check "a rollback passes every undo point" [ "${#UNREACHED[@]}" = 0 ]
	for p in "${REACHED[@]}"; do kill_rollback "$p"; done
}

# ---------------------------------------------------------------------------------------------
if [ ! -x "$AP_BIN" ]; then
	ap_fail "no autopull binary at $AP_BIN"
	exit 1
fi
undo_matrix
fx_reset
