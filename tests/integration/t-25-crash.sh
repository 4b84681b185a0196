# shellcheck shell=bash
# Crash safety against the real user manager: autopull is SIGKILLed (AUTOPULL_TEST_CRASH) at
# every crash point the executor knows, the next run must converge.
#
#   apply matrix   for a commit that touches several files and units (a modified unit, a new
#                  unit with [Install], a deleted unit, a drop-in, a files: rule with reload:,
#                  a removed rule file), a kill at every apply point and at every
#                  after-file:N the plan reaches; then one more run.
#   superseding    the same kills at a few points, with a newer commit pushed before the next
#                  run: it must land on the newer commit without losing an owed action.
#   restore        a write that fails half-way (a chown the user scope may not do) puts the
#                  files back; a kill at every undo point a restore passes; the next run
#                  finishes the restore and applies afresh.
#   rollback       a commit that makes a unit crash-loop is rolled back; a kill at every point
#                  the undo passes; the next run finishes the rollback.
#
# The crash points are read from ap_apply_crash_points in src/apply.c, so a new point is
# covered the day it is added. Convergence means: the files equal the repository at the
# target commit (bytes, modes, nothing else), every owed action happened at least once (the
# modified unit runs the new definition under a new InvocationID, the new unit is enabled and
# active, the removed one stopped, disabled and not "failed", the reload ran), an untouched
# unit kept its InvocationID, `applied` was never ahead of what was done, and no journal or
# temp file (.#*) is left.
#
# With AP_CRASH_RANDOM=N (make check-long) it runs instead N kills with `kill -9` after a
# random delay during the applies of a sequence of commits, each followed by a convergence
# check. Sourced by run.sh after lib.sh (and fixtures.sh).

WANTS=$AP_UNIT_DIR/default.target.wants
CFG0=$AP_HOME/.config/autopull/settle0.yaml   # the same state, no settle window: fast setup
CRASH_SETTLE=${CRASH_SETTLE:-500ms}
ROLLBACK_SETTLE=2s

check() { ap_check "$AP_CASE: $1" "${@:2}"; }
applied() { cat "$AP_STATE_DIR/applied" 2>/dev/null; }
reloads() { { wc -l <"$FX_LOG/${1%.service}.reloads"; } 2>/dev/null || echo 0; }

# ---------------------------------------------------------------------------------------------
# Fixtures

# csvc NAME DESCRIPTION [broken]: an enabled sleep-infinity service whose ExecReload leaves a
# mark; broken: exits at once and restarts for ever.
csvc() {
	{
		printf '[Unit]\nDescription=%s\nStartLimitIntervalSec=0\n\n[Service]\n' "$2"
		if [ "${3:-}" = broken ]; then
			printf 'ExecStart=/bin/false\nRestart=always\nRestartSec=100ms\n'
		else
			printf 'ExecStart=/bin/sleep infinity\n'
		fi
		printf 'ExecReload=/bin/sh -c "echo reload >> %s/%s.reloads"\n' "$FX_LOG" "${1%.service}"
		printf '\n[Install]\nWantedBy=default.target\n'
	} | fx_write "systemd/$1"
}

# crash_config SETTLE FILE [OWNER]: OWNER on the own/ rule makes its write fail half-way in
# the user scope (chown to another user is not permitted), after other files were written.
crash_config() {
	local settle=$1 file=$2 owner=${3:+    owner: $3}
	cat <<-EOF | ap_user_write "$file"
	repo:
	  url: file://$FX_ORIGIN
	  branch: main
	scope: user
	units: [systemd/]
	files:
	  - src: conf/app.conf
	    dest: $FX_ETC/conf/app.conf
	    reload: [rl.service]
	  - src: env/
	    dest: $FX_ETC/env/
	  - src: own/
	    dest: $FX_ETC/own/
	$owner
	guard:
	  settle: $settle
	EOF
}

# The commits, made once: V1 the base; V2 the change under test; V3 a newer commit on top of
# V2 (pushed between a kill and the next run); VB a commit on top of V1 that also breaks
# mod.service (rolled back); VR one on top of V1 that also writes own/x.conf (restored when
# that write fails). The origin's branch is moved between them with reset --hard.
make_commits() {
	fx_reset
	fx_origin file || return 1
	crash_config "$CRASH_SETTLE" "$AP_CFG"
	crash_config 0s "$CFG0"
	csvc keep.service "keep v1"
	csvc mod.service "mod v1"
	csvc gone.service "gone v1"
	csvc web.service "web v1"
	fx_dropin web.service 10-env.conf v1
	csvc rl.service "rl v1"
	printf 'app v1\n' | fx_write conf/app.conf
	printf '#!/bin/sh\necho stay\n' | fx_write env/stay.env
	chmod 0755 "$FX_ORIGIN/env/stay.env"
	printf 'OLD=1\n' | fx_write env/old.env
	V1=$(fx_commit v1) || return 1
	v2_changes
	V2=$(fx_commit v2) || return 1
	csvc mod.service "mod v3"
	printf 'app v3\n' | fx_write conf/app.conf
	printf 'THREE=3\n' | fx_write env/three.env
	V3=$(fx_commit v3) || return 1
	ap_git "$FX_ORIGIN" reset -q --hard "$V1" || return 1
	v2_changes
	csvc mod.service "mod broken" broken
	VB=$(fx_commit vb-broken) || return 1
	ap_git "$FX_ORIGIN" reset -q --hard "$V1" || return 1
	v2_changes
	printf 'OWN=1\n' | fx_write own/x.conf
	VR=$(fx_commit vr-own) || return 1
	ap_git "$FX_ORIGIN" reset -q --hard "$V2"
}

# What V2 changes (and VB too): restart, enable-start, disable-stop, drop-in, reload, removal.
v2_changes() {
	csvc mod.service "mod v2"
	csvc new.service "new v2"
	fx_rm systemd/gone.service
	fx_dropin web.service 10-env.conf v2
	printf 'app v2\n' | fx_write conf/app.conf
	fx_rm env/old.env
}

# reset_host TIP: no units, no state (not even the mirror), no destinations; the origin's
# branch at TIP; V1 applied by a first run. Remembers the units' InvocationIDs in BEFORE_*.
reset_host() {
	fx_units_reset
	rm -rf "${AP_STATE_DIR:?}" "${FX_ETC:?}"
	rm -f "$FX_LOG"/*.reloads
	ap_git "$FX_ORIGIN" reset -q --hard "$1"
	ap_autopull reset-v1 --user -c "$CFG0" apply --commit "$V1"
	# apply --commit pins; the crash runs apply the tip
	[ "$AP_RC" = 0 ] && ap_autopull reset-unpin --user -c "$CFG0" unpin
	if [ "$AP_RC" != 0 ] || [ "$(applied)" != "$V1" ]; then
		ap_fail "$AP_CASE: setup: V1 did not apply (exit $AP_RC)"
		sed -n '1,10s/^/        stderr: /p' "$AP_TMP/reset-v1.err"
		return 1
	fi
	props keep.service mod.service web.service rl.service gone.service
	BEFORE_KEEP=${P[keep.service.InvocationID]} BEFORE_MOD=${P[mod.service.InvocationID]}
	BEFORE_WEB=${P[web.service.InvocationID]} BEFORE_RL=${P[rl.service.InvocationID]}
	BEFORE_RELOADS=$(reloads rl.service)
	[ -n "$BEFORE_KEEP" ] && [ "${P[gone.service.ActiveState]}" = active ] ||
		{ ap_fail "$AP_CASE: setup: units not running after V1"; return 1; }
}

# props UNIT...: one `systemctl show` for all; P[unit.Property] afterwards ("" when not
# shown). A unit's block ends with an empty line; Id= may come anywhere in it.
declare -A P
PROPS=(InvocationID ActiveState LoadState Description Environment NeedDaemonReload)
props() {
	local line id="" u p
	local -a block=() args=(-p Id)
	P=()
	for p in "${PROPS[@]}"; do args+=(-p "$p"); done
	for u in "$@"; do for p in "${PROPS[@]}"; do P[$u.$p]=""; done; done
	while IFS= read -r line || [ ${#block[@]} -gt 0 ]; do
		case $line in
		Id=*) id=${line#Id=} ;;
		?*=*) block+=("$line") ;;
		esac
		if [ -z "$line" ]; then
			for p in "${block[@]}"; do [ -n "$id" ] && P[$id.${p%%=*}]=${p#*=}; done
			block=() id=""
		fi
	done < <(ap_systemctl show "${args[@]}" -- "$@" 2>/dev/null)
}

# ---------------------------------------------------------------------------------------------
# Convergence

# tree_matches REV: every mapped file of REV is installed with its bytes and mode, and nothing
# else is under the unit dir and the destinations. Prints what differs.
tree_matches() {
	local rev=$1 mode type sha path dest want_mode bad=0 f
	declare -A want=()
	while IFS=$' \t' read -r mode type sha path; do
		[ "$type" = blob ] || continue
		case $path in
		systemd/*) dest=$AP_UNIT_DIR/${path#systemd/} want_mode=644 ;;
		conf/app.conf) dest=$FX_ETC/conf/app.conf want_mode=644 ;;
		env/* | own/*) dest=$FX_ETC/$path want_mode=644; [ "$mode" = 100755 ] && want_mode=755 ;;
		*) continue ;;
		esac
		want[$dest]=1
		if [ ! -f "$dest" ] || [ -L "$dest" ]; then
			echo "        missing: $dest"; bad=1; continue
		fi
		[ "$(git hash-object --no-filters -- "$dest")" = "$sha" ] ||
			{ echo "        bytes differ: $dest"; bad=1; }
		[ "$(stat -c %a -- "$dest")" = "$want_mode" ] ||
			{ echo "        mode $(stat -c %a -- "$dest") != $want_mode: $dest"; bad=1; }
	done < <(ap_git "$FX_ORIGIN" ls-tree -r "$rev")
	while IFS= read -r f; do
		[ -n "${want[$f]:-}" ] || { echo "        not in $rev: $f"; bad=1; }
	done < <(find "$AP_UNIT_DIR" "$FX_ETC" -type f 2>/dev/null)
	return $bad
}

no_temps() {
	local t
	t=$(find "$AP_UNIT_DIR" "$FX_ETC" "$AP_STATE_DIR" -name '.#*' 2>/dev/null)
	[ -z "$t" ] || { echo "        temp files left: $t"; return 1; }
}

# unit_gone UNIT: stopped, disabled, file gone, not failed.
unit_gone() {
	[ "${P[$1.ActiveState]}" = inactive ] && [ ! -e "$WANTS/$1" ] && [ ! -e "$AP_UNIT_DIR/$1" ] ||
		{ echo "        $1: ${P[$1.ActiveState]}, link $([ -e "$WANTS/$1" ] && echo present || echo gone)"; return 1; }
}

# unit_up UNIT: enabled and active.
unit_up() {
	[ "${P[$1.ActiveState]}" = active ] && [ -L "$WANTS/$1" ] ||
		{ echo "        $1: ${P[$1.ActiveState]}, link $([ -L "$WANTS/$1" ] && echo present || echo missing)"; return 1; }
}

# converged REV MOD_DESCRIPTION: the host is at REV (V2 or V3) with every owed action done.
converged() {
	local rev=$1 desc=$2
	check "applied = target" [ "$(applied)" = "$rev" ]
	check "files = repository at the target (bytes, modes, nothing else)" tree_matches "$rev"
	check "no journal left" [ ! -e "$AP_STATE_DIR/journal" ]
	check "no temp files left" no_temps
	props keep.service mod.service web.service rl.service new.service gone.service
	check "mod.service restarted (new InvocationID)" [ "${P[mod.service.InvocationID]}" != "$BEFORE_MOD" ]
	check "mod.service runs the new definition" [ "${P[mod.service.Description]}" = "$desc" ]
	check "mod.service active" [ "${P[mod.service.ActiveState]}" = active ]
	check "web.service restarted onto its new drop-in" [ "${P[web.service.InvocationID]}" != "$BEFORE_WEB" \
		-a "${P[web.service.Environment]}" = APTEST_DROPIN=v2 ]
	check "rl.service reloaded at least once, not restarted" [ "$(reloads rl.service)" -gt "$BEFORE_RELOADS" \
		-a "${P[rl.service.InvocationID]}" = "$BEFORE_RL" ]
	check "new.service enabled and active" unit_up new.service
	check "gone.service stopped, disabled, not failed" unit_gone gone.service
	check "keep.service untouched (same InvocationID)" [ "${P[keep.service.InvocationID]}" = "$BEFORE_KEEP" ]
	check "no unit needs a daemon-reload" [ "${P[mod.service.NeedDaemonReload]}${P[web.service.NeedDaemonReload]}" = nono ]
}

# rolled_back: the host is at V1 again, VB is bad, the old units run.
rolled_back() {
	check "applied = V1" [ "$(applied)" = "$V1" ]
	check "files = repository at V1" tree_matches "$V1"
	check "no journal left" [ ! -e "$AP_STATE_DIR/journal" ]
	check "no temp files left" no_temps
	check "the broken commit is marked bad" grep -q "^$VB " "$AP_STATE_DIR/bad"
	check "the guard is not tripped" [ ! -e "$AP_STATE_DIR/guard-tripped" ]
	props keep.service mod.service web.service rl.service new.service gone.service
	check "mod.service runs the old definition" [ "${P[mod.service.Description]}" = "mod v1" \
		-a "${P[mod.service.ActiveState]}" = active ]
	check "web.service back on its old drop-in" [ "${P[web.service.Environment]}" = APTEST_DROPIN=v1 \
		-a "${P[web.service.ActiveState]}" = active ]
	check "new.service gone again" unit_gone new.service
	check "gone.service back: enabled and active" unit_up gone.service
	check "keep.service untouched (same InvocationID)" [ "${P[keep.service.InvocationID]}" = "$BEFORE_KEEP" ]
}

# ---------------------------------------------------------------------------------------------
# Killing

# crash_run NAME POINT: one apply as the test user that is to SIGKILL itself at POINT.
crash_run() {
	ap_as_user env AUTOPULL_TEST_CRASH="$2" timeout -k 5 "$AP_CMD_TIMEOUT" "$AP_BIN" --user \
		-c "$AP_CFG" apply >"$AP_TMP/$1.out" 2>"$AP_TMP/$1.err" </dev/null
	echo $? >"$AP_TMP/$1.rc"
}

# The crash points, from the source.
crash_points() {
	sed -n '/ap_apply_crash_points\[\] = {/,/};/p' "$AP_ROOT/src/apply.c" | grep -o '"[a-z:-]*"' | tr -d '"'
}

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
	ap_expect_rc "$AP_CASE: killed at the point" 137 "crash-$name" || return
	check "applied still V1 after the kill" [ "$(applied)" = "$V1" ]
	check "a journal says what is under way" [ -e "$AP_STATE_DIR/journal" ]
	[ -n "${2:-}" ] && ap_git "$FX_ORIGIN" reset -q --hard "$V3"
	ap_autopull "recover-$name" --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: next run" 0 "recover-$name"
	if [ -n "${2:-}" ]; then converged "$V3" "mod v3"; else converged "$V2" "mod v2"; fi
}

# kill_rollback POINT: V1 applied, VB at the tip; VB does not settle, killed at POINT while
# rolling back; the next run finishes the rollback, the one after skips VB.
kill_rollback() {
	local point=$1 name=${1//[^a-z0-9]/-}
	ap_case "kill at $point during a rollback"
	crash_config "$ROLLBACK_SETTLE" "$AP_CFG"
	reset_host "$VB" || return
	crash_run "crash-$name" "$point"
	ap_expect_rc "$AP_CASE: killed at the point" 137 "crash-$name" || return
	check "the run was rolling back" grep -q "^mode rollback" "$AP_STATE_DIR/journal"
	check "applied still V1 after the kill" [ "$(applied)" = "$V1" ]
	ap_autopull "recover-$name" --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: next run finishes the rollback" 1 "recover-$name"
	check "it says so" grep -q "rolled back ${VB:0:12}" "$AP_TMP/recover-$name.err"
	rolled_back
	ap_autopull "skip-$name" --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: the run after" 0 "skip-$name"
	check "it skips the bad commit" grep -q "skipping ${VB:0:12}" "$AP_TMP/skip-$name.err"
}

# kill_restore POINT: V1 applied, VR at the tip, mod.service cannot be replaced (immutable,
# after own/x.conf was written): the files are put back; killed at POINT while doing so (a
# point of a phase after files is not passed: the restore then just ends, exit 1). The next
# run, with the write made possible, finishes the restore and applies VR afresh.
kill_restore() {
	local point=$1 name=${1//[^a-z0-9]/-} want=137 what="killed at the point"
	case $point in undo-enable | undo-reload* | undo-restart | undo-start) want=1 what="not passed" ;; esac
	ap_case "kill at $point during a restore"
	crash_config "$CRASH_SETTLE" "$AP_CFG"
	reset_host "$VR" || return
	chattr +i "$AP_UNIT_DIR/mod.service"
	crash_run "crash-$name" "$point"
	chattr -i "$AP_UNIT_DIR/mod.service"
	ap_expect_rc "$AP_CASE: the write fails, $what" "$want" "crash-$name" || return
	check "applied still V1" [ "$(applied)" = "$V1" ]
	if [ "$want" = 137 ]; then
		check "the journal says the files may differ" grep -q "^mode apply" "$AP_STATE_DIR/journal"
	else
		check "it says the files were put back" grep -q "its files were put back" "$AP_TMP/crash-$name.err"
		check "files = repository at V1" tree_matches "$V1"
		props gone.service
		check "the unit it had stopped runs again" unit_up gone.service
	fi
	crash_config "$CRASH_SETTLE" "$AP_CFG"
	ap_autopull "recover-$name" --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: next run" 0 "recover-$name"
	converged "$VR" "mod v2"
}

# ---------------------------------------------------------------------------------------------
crash_matrix() {
	local points n p apply_points=() undo_points=()
	ap_case "crash points"
	mapfile -t points < <(crash_points)
	for p in "${points[@]}"; do
		case $p in undo-*) undo_points+=("$p") ;; *) apply_points+=("$p") ;; esac
	done
	ap_check "crash points parsed from src/apply.c: ${#apply_points[@]} apply, ${#undo_points[@]} undo" \
		[ "${#apply_points[@]}" -gt 0 -a "${#undo_points[@]}" -gt 0 ]
	make_commits || { ap_fail "fixture commits"; return; }
	n=$(plan_files)
	ap_check "the V1→V2 plan writes or removes files ($n)" [ "${n:-0}" -gt 1 ]
	for p in "${apply_points[@]}"; do
		if [ "$p" = after-file ]; then
			for ((i = 1; i <= n; i++)); do kill_and_converge "after-file:$i"; done
		else
			kill_and_converge "$p"
		fi
	done
	# The plan reaches no further file point: a run with the next one is not killed.
	ap_case "after-file:$((n + 1)) is not reached"
	reset_host "$V2" || return
	crash_run beyond "after-file:$((n + 1))"
	ap_expect_rc "$AP_CASE: the apply completes" 0 beyond
	converged "$V2" "mod v2"
	for p in after-journal after-stop after-file:2 after-files after-reload after-start before-record; do
		kill_and_converge "$p" supersede
	done
	for p in "${undo_points[@]}"; do kill_restore "$p"; done
	for p in "${undo_points[@]}"; do kill_rollback "$p"; done
}

# ---------------------------------------------------------------------------------------------
# make check-long: kill -9 at random moments during a sequence of applies

# random_step K: commit K of the sequence changes every kind of thing again: mod.service and
# the drop-in (restart), conf/app.conf (reload), one unit added and one removed (n0/n1
# alternate), one env file added and one removed.
random_step() {
	local k=$1
	csvc mod.service "mod r$k"
	fx_dropin web.service 10-env.conf "r$k"
	printf 'app r%s\n' "$k" | fx_write conf/app.conf
	fx_rm "systemd/n$(((k + 1) % 2)).service"
	csvc "n$((k % 2)).service" "n v$k"
	fx_rm "env/e$(((k + 2) % 3)).env"
	printf 'E=%s\n' "$k" | fx_write "env/e$((k % 3)).env"
	fx_commit "v$k"
}

# random_converged REV K: the host is at commit K of the sequence.
random_converged() {
	local rev=$1 k=$2 on=n$(($2 % 2)).service off=n$((($2 + 1) % 2)).service
	check "applied = commit $k" [ "$(applied)" = "$rev" ]
	check "files = repository at commit $k" tree_matches "$rev"
	check "no journal left" [ ! -e "$AP_STATE_DIR/journal" ]
	check "no temp files left" no_temps
	props keep.service mod.service web.service rl.service "$on" "$off"
	check "mod.service restarted onto r$k" [ "${P[mod.service.InvocationID]}" != "$BEFORE_MOD" \
		-a "${P[mod.service.Description]}" = "mod r$k" -a "${P[mod.service.ActiveState]}" = active ]
	check "web.service restarted onto its drop-in r$k" [ "${P[web.service.InvocationID]}" != "$BEFORE_WEB" \
		-a "${P[web.service.Environment]}" = "APTEST_DROPIN=r$k" ]
	check "rl.service reloaded" [ "$(reloads rl.service)" -gt "$BEFORE_RELOADS" ]
	check "$on enabled and active" unit_up "$on"
	[ "$k" -gt 1 ] && check "$off stopped, disabled, not failed" unit_gone "$off"
	check "keep.service untouched" [ "${P[keep.service.InvocationID]}" = "$KEEP_INV" ]
}

# all_done REV: applied is REV and the journal, if one is left, owes nothing.
all_done() {
	local j=$AP_STATE_DIR/journal
	[ "$(applied)" = "$1" ] || return 1
	[ -e "$j" ] || return 0
	grep -q '^done .*settle' "$j" && ! grep -qE '^unit [a-z-]+ (pending|failed) ' "$j"
}

random_kills() {
	local want=$1 kills=0 k=1 rev pid t0 dt max_ms=1000 delay rc before
	ap_case "random kills ($want)"
	make_commits || { ap_fail "fixture commits"; return; }
	crash_config 100ms "$AP_CFG"   # a short window: the kills spread over every phase
	reset_host "$V1" || return
	KEEP_INV=$BEFORE_KEEP
	while [ "$kills" -lt "$want" ] && [ "$k" -le $((want * 3)) ]; do
		rev=$(random_step "$k") || { ap_fail "commit $k"; return; }
		props mod.service web.service
		BEFORE_MOD=${P[mod.service.InvocationID]} BEFORE_WEB=${P[web.service.InvocationID]}
		BEFORE_RELOADS=$(reloads rl.service)
		before=$(applied)
		t0=$(ap_now_ms)
		(ap_user_exec "$AP_BIN" --user -c "$AP_CFG" apply) >"$AP_TMP/rnd-$k.out" 2>"$AP_TMP/rnd-$k.err" </dev/null &
		pid=$!
		if [ "$k" = 1 ]; then
			wait "$pid"; rc=$?
			max_ms=$(( $(ap_now_ms) - t0 ))   # the first apply sets the range of delays
			ap_log "aptest: an uninterrupted apply takes $max_ms ms; kills come within that"
		else
			delay=$((RANDOM * 32768 + RANDOM))
			delay=$((delay % (max_ms + 1)))
			sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
			kill -KILL "$pid" 2>/dev/null
			wait "$pid"; rc=$?
		fi
		if [ "$rc" = 137 ]; then
			kills=$((kills + 1))
			dt=$(( $(ap_now_ms) - t0 ))
			echo "   kill $kills after ${dt} ms (commit $k): journal" \
				"$(sed -n 's/^done/done:/p; s/^mode //p' "$AP_STATE_DIR/journal" 2>/dev/null | tr '\n' ' ')"
			# applied is never ahead: if it moved, everything was done already (the kill may
			# have come between the record and the journal's removal).
			if [ "$(applied)" != "$before" ]; then
				check "kill $kills: applied moved only with every action done" all_done "$rev"
			fi
		else
			check "commit $k: an apply that was not killed succeeded" [ "$rc" = 0 ]
		fi
		ap_autopull "rnd-recover-$k" --user -c "$AP_CFG" apply
		ap_expect_rc "$AP_CASE: commit $k: next run" 0 "rnd-recover-$k"
		random_converged "$rev" "$k"
		k=$((k + 1))
	done
	check "$want kills delivered while an apply ran ($kills)" [ "$kills" -ge "$want" ]
}

# ---------------------------------------------------------------------------------------------
if [ ! -x "$AP_BIN" ]; then
	ap_fail "no autopull binary at $AP_BIN"
	exit 1
fi
if [ -n "${AP_CRASH_RANDOM:-}" ]; then
	random_kills "$AP_CRASH_RANDOM"
else
	crash_matrix
fi
fx_reset
