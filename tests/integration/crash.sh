# shellcheck shell=bash
# shellcheck disable=SC2034 # the commits and settings are for the files that source this
# What the crash tests share (t-25-crash, t-28-restores, t-29-crash-random): the fixture
# commits, the host reset between cases, the convergence checks, and runs that SIGKILL
# themselves at a crash point (AUTOPULL_TEST_CRASH) while logging every point they pass
# (AUTOPULL_TEST_CRASH_LOG), so that a case counts only a kill that really happened.
# Sourced by those files after lib.sh (and fixtures.sh).
#
# Convergence means: the files equal the repository at the target commit (bytes, modes,
# nothing else), every owed action happened at least once (the modified unit runs the new
# definition under a new InvocationID, the new unit is enabled and active, the removed one
# stopped, disabled and not "failed", the reload ran), an untouched unit kept its
# InvocationID, `applied` was never ahead of what was done, and no journal or temp file (.#*)
# is left.

WANTS=$AP_UNIT_DIR/default.target.wants
CFG0=$AP_HOME/.config/autopull/settle0.yaml   # the same state, no settle window: fast setup
CRASH_SETTLE=${CRASH_SETTLE:-500ms}
ROLLBACK_SETTLE=2s

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
	{
		fx_config_head "file://$FX_ORIGIN"
		cat <<-EOF
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
	} | ap_user_write "$file"
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

# Where the runs log the crash points they pass (the test user writes there).
CRASH_POINTS_DIR=$AP_HOME/crash-points

# crash_run NAME POINT: one apply as the test user that is to SIGKILL itself at POINT (none:
# at no point); every point it passes is a line of $CRASH_POINTS_DIR/NAME.
crash_run() {
	ap_as_user mkdir -p "$CRASH_POINTS_DIR"
	rm -f "$CRASH_POINTS_DIR/$1"
	ap_as_user env AUTOPULL_TEST_CRASH="$2" AUTOPULL_TEST_CRASH_LOG="$CRASH_POINTS_DIR/$1" \
		timeout -k 5 "$AP_CMD_TIMEOUT" "$AP_BIN" --user \
		-c "$AP_CFG" apply >"$AP_TMP/$1.out" 2>"$AP_TMP/$1.err" </dev/null
	echo $? >"$AP_TMP/$1.rc"
}

# passed NAME: the crash points run NAME passed, in order.
passed() { cat "$CRASH_POINTS_DIR/$1" 2>/dev/null; }

# killed_at NAME POINT: run NAME was killed by its own hook at POINT: exit 137 and POINT is the
# last point it passed.
killed_at() {
	ap_expect_rc "$AP_CASE: killed at the point" 137 "$1" || return 1
	check "$2 is the last point the run passed" [ "$(passed "$1" | tail -n 1)" = "$2" ]
}

# The crash points, from the source.
crash_points() {
	sed -n '/ap_apply_crash_points\[\] = {/,/};/p' "$AP_ROOT/src/apply.c" | grep -o '"[a-z:-]*"' | tr -d '"'
}

# reached NAME WANTED...: REACHED, the WANTED points that run NAME passed (after-file stands
# for every after-file:N), in the order of WANTED; UNREACHED, the others.
reached() {
	local p
	local -A seen=()
	while IFS= read -r p; do seen[${p%%:*}]=1 seen[$p]=1; done < <(passed "$1")
	REACHED=() UNREACHED=()
	for p in "${@:2}"; do
		if [ -n "${seen[$p]:-}" ]; then REACHED+=("$p"); else UNREACHED+=("$p"); fi
	done
}
