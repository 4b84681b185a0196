#!/bin/bash
# Entry point of `make integration`: drives the real autopull binary against a real
# systemd --user manager for a dedicated test user. Must run as root.
#
#   bash tests/integration/run.sh [PATTERN...]     run t-*.sh (only those matching PATTERN)
#
# Environment: AP_BIN (binary to test, default ./autopull of the repo), AP_USER (aptest),
# AP_RUN (/tmp/aptest-run; a second concurrent run needs its own AP_USER and AP_RUN),
# AP_TEST_TIMEOUT (seconds per t-*.sh, 300), AP_CMD_TIMEOUT (seconds per command, 60),
# AP_KEEP=1 (keep $AP_RUN/tmp for inspection; processes are stopped anyway).
#
# Sets up the user, the manager and an HTTP git server, runs every t-*.sh in its own bash
# (with this environment exported and lib.sh sourced) under a time limit, then stops
# everything by pid, checks that nothing is left, and prints "N passed, M failed" last.
set -u

AP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
AP_ROOT=$(cd "$AP_DIR/../.." && pwd)
export AP_DIR AP_ROOT

if [ "$(id -u)" != 0 ]; then
	echo "tests/integration/run.sh: must run as root (it creates a test user, cgroups and a" \
		"systemd --user manager); try: sudo make integration" >&2
	exit 2
fi

: "${AP_USER:=aptest}"
: "${AP_RUN:=/tmp/aptest-run}"
: "${AP_TEST_TIMEOUT:=300}"
SRC_BIN=${AP_BIN:-$AP_ROOT/autopull}
# Beside AP_RUN (not in it: its scratch dirs are wiped), so that two runs with their own
# AP_USER and AP_RUN never share a binary. Made anew by every run (ap_bindir_fresh).
AP_BINDIR=$AP_RUN-bin
AP_BIN=$AP_BINDIR/autopull
export AP_USER AP_RUN AP_BINDIR AP_BIN AP_TEST_TIMEOUT

# shellcheck source=lib.sh
. "$AP_DIR/lib.sh"

T_START=$(ap_now_ms)
install -d -m 0755 "$AP_RUN" "$AP_RUN/pids"

# One run at a time. The lock fd (9) is closed for everything started in the background.
exec 9>"$AP_RUN/lock"
flock -n 9 || { echo "run.sh: another integration run holds $AP_RUN/lock" >&2; exit 2; }

# Leftovers of an earlier, killed run are stopped (by the pids it recorded) before anything
# else; the results and scratch files start empty.
SUMMARY_DONE=0
on_exit() {
	local rc=$?
	trap - EXIT INT TERM HUP
	ap_stop_all >/dev/null 2>&1
	if [ "$SUMMARY_DONE" != 1 ]; then
		AP_TEST=harness ap_fail "run aborted (exit $rc)"
		ap_summary
		[ $rc -eq 0 ] && rc=1
	fi
	exit $rc
}
ap_install_cleanup on_exit
if id -u "$AP_USER" >/dev/null 2>&1; then
	ap_user_vars "$AP_USER"
	ap_stale_cleanup "$AP_USER"
fi
rm -rf "$AP_RUN/tmp" "$AP_RUN/user" "$AP_RUN/smoke.pids" "$AP_RUN"/results*
# Per run, so that a stray test of a killed run cannot add to this run's count.
AP_RESULTS=$AP_RUN/results.$$
export AP_RESULTS
: >"$AP_RESULTS"
AP_TMP=$AP_RUN/tmp
mkdir -p "$AP_TMP"
export AP_TMP

echo "== setup"
ap_bindir_fresh
if [ -x "$SRC_BIN" ]; then
	ap_bindir_add "$SRC_BIN" autopull >/dev/null
	echo "binary: $SRC_BIN -> $AP_BIN"
else
	echo "binary: $SRC_BIN not found; tests that run autopull will fail" >&2
	rm -f "$AP_BIN"
fi

ap_user_setup "$AP_USER"
echo "user: $AP_USER uid $AP_UID home $AP_HOME"
ap_manager_start "$AP_USER"
echo "manager: pid $AP_MANAGER_PID, socket after ${AP_MANAGER_START_MS} ms," \
	"running after ${AP_MANAGER_READY_MS} ms ($(ap_systemctl is-system-running 2>/dev/null))"
install -d -m 0755 -o "$AP_UID" -g "$AP_GID" "$AP_HOME/srv"
ap_http_start "$AP_HOME/srv" || ap_die "http server failed"
echo "http: pid $AP_HTTP_PID on 127.0.0.1:$AP_HTTP_PORT serving $AP_HTTP_ROOT"
export AP_HTTP_URL="http://127.0.0.1:$AP_HTTP_PORT"

# -------------------------------------------------------------------------------------------
tests=()
for t in "$AP_DIR"/t-*.sh; do
	[ -f "$t" ] || continue
	if [ $# -gt 0 ]; then
		keep=0
		for pat in "$@"; do case ${t##*/} in *"$pat"*) keep=1 ;; esac; done
		[ $keep = 1 ] || continue
	fi
	tests+=("$t")
done

declare -a report
for t in "${tests[@]}"; do
	name=${t##*/}; name=${name%.sh}
	echo
	echo "== $name"
	t0=$(ap_now_ms)
	# In the background + wait, so that INT/TERM reach our trap at once; the trap stops
	# the test by its pid (timeout passes the signal on to the test's process group).
	(ap_cgroup_enter "$AP_HARNESS_CG" "$BASHPID"
	 AP_TEST=$name exec timeout -k 10 "$AP_TEST_TIMEOUT" \
		bash -c 'set -u; . "$AP_DIR/lib.sh"; . "$1"; ap_test_end' "$name" "$t") 9>&- &
	ap_track test $!
	wait $!
	rc=$?
	rm -f "$AP_RUN/pids/test"
	dt=$(( $(ap_now_ms) - t0 ))
	ap_test_verdict "$name" "$rc"
	report+=("$(printf '%-5s %-28s %3d passed, %3d failed  %6.1f s' "$VERDICT" "$name" "$P" "$F" \
		"$(awk "BEGIN { print $dt / 1000 }")")")
	# A test may have stopped units or left them failed: keep the manager usable.
	if ! ap_pid_alive "$AP_MANAGER_PID"; then
		AP_TEST=$name ap_fail "$name: the systemd --user manager died during the test"
		cat "$AP_RUN/manager.log" >&2
		break
	fi
done

# -------------------------------------------------------------------------------------------
# Teardown, checked: every process we started is gone (by pid), and so are the cgroup slices.
echo
echo "== teardown"
AP_TEST=teardown
export AP_TEST
leftover_pids=""
[ -f "$AP_RUN/smoke.pids" ] && leftover_pids=$(cat "$AP_RUN/smoke.pids")
mgr=$AP_MANAGER_PID http=$AP_HTTP_PID
t0=$(ap_now_ms)
ap_http_stop
ap_check "http server pid $http is gone" eval '! ap_pid_alive '"$http"
ap_untrack_stop manager 5
echo "manager stopped in $(( $(ap_now_ms) - t0 )) ms (with the http server)"
ap_check "manager pid $mgr is gone" eval '! ap_pid_alive '"$mgr"
for p in $leftover_pids; do
	ap_check "unit process $p (started by t-00) is gone" eval '! ap_pid_alive '"$p"
done
for f in "$AP_RUN/pids"/*; do
	[ -f "$f" ] && ap_fail "process '${f##*/}' still recorded: $(cat "$f")"
done
# Checked before ap_cgroup_clear, which would kill what is left.
for cg in "$AP_USER" "$AP_HARNESS_CG"; do
	left=$(ap_cgroup_pids "$cg")
	ap_check "no process left in $cg.slice${left:+: $left}" test -z "$left"
	ap_cgroup_clear "$cg"
	for d in $(ap_cgroup_dirs "$cg"); do
		ap_check "cgroup $d removed" test ! -d "$d"
	done
done
rm -rf "$AP_RUNTIME"
[ "${AP_KEEP:-0}" = 1 ] || rm -rf "$AP_RUN/tmp" "$AP_RUN/user" "$AP_BINDIR"

echo
echo "== results"
for line in "${report[@]}"; do echo "$line"; done
echo "whole run: $(awk "BEGIN { print ($(ap_now_ms) - $T_START) / 1000 }") s"
SUMMARY_DONE=1
ap_summary
