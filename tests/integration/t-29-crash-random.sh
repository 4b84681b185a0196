# shellcheck shell=bash
# Random kills against the real user manager: `kill -9` after a random delay during the
# applies of a sequence of commits, each followed by a run that must converge (crash.sh).
# AP_CRASH_RANDOM kills (20 by default, what `make check` runs; `make check-long` more).
# AP_CRASH_SEED draws the same delays again (the seed is printed; they are scaled by the
# measured length of an apply). Each kill names the last crash point the run had passed
# (AUTOPULL_TEST_CRASH_LOG), and the end shows where the kills landed.
# Sourced by run.sh after lib.sh (and fixtures.sh).

# shellcheck source=crash.sh
. "$AP_DIR/crash.sh"

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
	local want=$1 kills=0 k=1 rev pid t0 dt max_ms=1000 delay rc before last
	local seed=${AP_CRASH_SEED:-$((RANDOM * 32768 + RANDOM))}
	local -A landed=()
	ap_case "random kills ($want)"
	echo "   seed $seed (AP_CRASH_SEED=$seed draws the same delays again)"
	RANDOM=$seed
	ap_as_user mkdir -p "$CRASH_POINTS_DIR"
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
		rm -f "$CRASH_POINTS_DIR/rnd-$k"
		(ap_user_exec env AUTOPULL_TEST_CRASH_LOG="$CRASH_POINTS_DIR/rnd-$k" "$AP_BIN" --user \
			-c "$AP_CFG" apply) >"$AP_TMP/rnd-$k.out" 2>"$AP_TMP/rnd-$k.err" </dev/null &
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
			last=$(passed "rnd-$k" | tail -n 1)
			last=${last:-before any point}
			landed[${last%%:*}]=$(( ${landed[${last%%:*}]:-0} + 1 ))
			echo "   kill $kills after ${dt} ms (commit $k), after $last: journal" \
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
	for last in "${!landed[@]}"; do printf '%s %s\n' "${landed[$last]}" "$last"; done | sort -rn |
		awk 'BEGIN { printf "   the kills landed: " } { printf "%s%s x%s", (NR > 1 ? ", " : ""), substr($0, index($0, " ") + 1), $1 } END { print "" }'
}

# ---------------------------------------------------------------------------------------------
if [ ! -x "$AP_BIN" ]; then
	ap_fail "no autopull binary at $AP_BIN"
	exit 1
fi
random_kills "${AP_CRASH_RANDOM:-20}"
fx_reset
