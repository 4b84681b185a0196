# shellcheck shell=bash
# Crash safety of an apply against the real user manager: autopull is SIGKILLed
# (AUTOPULL_TEST_CRASH) at every apply crash point it passes, the next run must converge
# (crash.sh says what that means).
#
#   apply matrix   for a commit that touches several files and units (a modified unit, a new
#                  unit with [Install], a deleted unit, a drop-in, a files: rule with reload:,
#                  a removed rule file), one apply that is not killed names the points it
#                  passes (AUTOPULL_TEST_CRASH_LOG); then a kill at each of them, every
#                  after-file:N included, and one more run.
#   superseding    the same kills at a few points, with a newer commit pushed before the next
#                  run: it must land on the newer commit without losing an owed action.
#
# The crash points are read from ap_apply_crash_points in src/apply.c, so a new point is
# covered the day it is added; one the apply does not pass is named and not counted. The
# undo points are t-28-restores', random kills t-29-crash-random's. Sourced by run.sh after
# lib.sh (and fixtures.sh).

# shellcheck source=crash.sh
. "$AP_DIR/crash.sh"

# How many after-file:N points the V1→V2 plan reaches: one per written file, one per removed.
plan_files() {
	ap_autopull plan-v2 --user -c "$CFG0" --dry-run --json --from "$V1" --commit "$V2"
	ap_jqv "$AP_TMP/plan-v2.out" "sum(2 if f['change'] == 'rename' else 1 for f in d['files'])"
}

# kill_and_converge POINT [SUPERSEDE]: V1 applied, V2 at the tip; killed at POINT; with
# SUPERSEDE, V3 is pushed before the next run.
kill_and_converge() {
	local point=$1 name=${1//[^a-z0-9]/-}
	ap_case "kill at $point${2:+, then a newer commit}"
	reset_host "$V2" || return
	crash_run "crash-$name" "$point"
	killed_at "crash-$name" "$point" || return
	check "applied still V1 after the kill" [ "$(applied)" = "$V1" ]
	check "a journal says what is under way" [ -e "$AP_STATE_DIR/journal" ]
	[ -n "${2:-}" ] && ap_git "$FX_ORIGIN" reset -q --hard "$V3"
	ap_autopull "recover-$name" --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: next run" 0 "recover-$name"
	if [ -n "${2:-}" ]; then converged "$V3" "mod v3"; else converged "$V2" "mod v2"; fi
}

# ---------------------------------------------------------------------------------------------
apply_matrix() {
	local points n i p files apply_points=()
	local -A hit=()
	ap_case "crash points"
	mapfile -t points < <(crash_points)
	for p in "${points[@]}"; do
		case $p in undo-*) ;; *) apply_points+=("$p") ;; esac
	done
	ap_check "apply crash points parsed from src/apply.c: ${#apply_points[@]}" [ "${#apply_points[@]}" -gt 0 ]
	make_commits || { ap_fail "fixture commits"; return; }
	n=$(plan_files)
	ap_check "the V1→V2 plan writes or removes files ($n)" [ "${n:-0}" -gt 1 ]

	ap_case "V1→V2, not killed"
	reset_host "$V2" || return
	crash_run probe none
	ap_expect_rc "$AP_CASE: the apply completes" 0 probe
	converged "$V2" "mod v2"
	files=$(passed probe | grep -c '^after-file:')
	check "it passes after-file:1..N, one per file of the plan ($files of $n)" [ "$files" = "$n" ]
	reached probe "${apply_points[@]}"
	echo "   V1→V2 passes ${#REACHED[@]} of ${#apply_points[@]} apply points (after-file $files times)" \
		"${UNREACHED[*]:+(not passed, not counted: ${UNREACHED[*]})}"
	for p in "${REACHED[@]}"; do
		hit[$p]=1
		if [ "$p" = after-file ]; then
			for ((i = 1; i <= n; i++)); do kill_and_converge "after-file:$i"; done
		else
			kill_and_converge "$p"
		fi
	done
	for p in after-journal after-stop after-file:2 after-files after-reload after-start before-record; do
		[ -n "${hit[${p%%:*}]:-}" ] && kill_and_converge "$p" supersede
	done
}

# ---------------------------------------------------------------------------------------------
if [ ! -x "$AP_BIN" ]; then
	ap_fail "no autopull binary at $AP_BIN"
	exit 1
fi
apply_matrix
fx_reset
