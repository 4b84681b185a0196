#!/bin/bash
# Entry point of `make system-tests`: the system scope for real. Boots Debian 12 with
# systemd-nspawn (a real systemd system manager as PID 1), with this build installed by
# `make install`, once per t-*.sh, runs the test inside as root, powers it off and checks
# that nothing is left: no process, no cgroup, no mount. Must run as root.
#
#   bash tests/system/run.sh [PATTERN...]     run t-*.sh (only those matching PATTERN)
#
# Environment: AP_SYS_NAME (machine and cgroup slice name, default apsys; a concurrent run
# needs its own), AP_SYS_RUN (/tmp/$AP_SYS_NAME-run), AP_SYS_CACHE (rootfs cache,
# /var/cache/autopull-test), AP_TEST_TIMEOUT (seconds per t-*.sh, 300), AP_CMD_TIMEOUT
# (seconds per command, 60), AP_KEEP=1 (keep $AP_SYS_RUN/tmp). Prints "N passed, M failed".
set -u

SYS_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ "$(id -u)" != 0 ]; then
	echo "tests/system/run.sh: must run as root (it boots a container); try: sudo make system-tests" >&2
	exit 2
fi
: "${AP_SYS_NAME:=apsys}"
: "${AP_SYS_RUN:=/tmp/$AP_SYS_NAME-run}"
case $AP_SYS_NAME$AP_SYS_RUN in
*[!A-Za-z0-9._/-]*) echo "run.sh: AP_SYS_NAME and AP_SYS_RUN: letters, digits, . _ / - only" >&2; exit 2 ;;
esac
: "${AP_TEST_TIMEOUT:=300}"
AP_RESULTS=$AP_SYS_RUN/results.$$
export AP_SYS_NAME AP_SYS_RUN AP_TEST_TIMEOUT AP_RESULTS
# shellcheck source=lib.sh
. "$SYS_TOP/tests/system/lib.sh"

T_START=$(ap_now_ms)
install -d -m 0755 "$AP_SYS_RUN" "$AP_SYS_RUN/pids"
exec 9>"$AP_SYS_RUN/lock"
flock -n 9 || { echo "run.sh: another system test run holds $AP_SYS_RUN/lock" >&2; exit 2; }

SUMMARY_DONE=0
on_exit() {
	local rc=$?
	trap - EXIT INT TERM HUP
	sys_stop_all >/dev/null 2>&1
	if [ "$SUMMARY_DONE" != 1 ]; then
		AP_TEST=harness ap_fail "run aborted (exit $rc)"
		ap_summary
		[ $rc -eq 0 ] && rc=1
	fi
	exit $rc
}
# sys_stop_all: whatever an earlier (killed) run or this one left: tracked processes (the
# container last), both slices.
sys_stop_all() {
	local f
	for f in "$AP_SYS_RUN/pids"/*; do
		[ -f "$f" ] && [ "${f##*/}" != nspawn ] && ap_untrack_stop "${f##*/}" 5
	done
	sys_poweroff
	ap_cgroup_clear "$SYS_HARNESS_CG"
	ap_cgroup_clear "$AP_SYS_NAME"
}
ap_install_cleanup on_exit
sys_stop_all >/dev/null 2>&1
rm -rf "$AP_SYS_RUN/tmp" "$AP_SYS_RUN"/results*
: >"$AP_RESULTS"
AP_TMP=$AP_SYS_RUN/tmp
mkdir -p "$AP_TMP"
export AP_TMP
for d in $(ap_cgroup_dirs "$SYS_HARNESS_CG"); do mkdir -p "$d"; done

echo "== setup"
t0=$(ap_now_ms)
AP_SYS_ROOTFS=$(bash "$SYS_TOP/tests/system/rootfs.sh") || ap_die "no rootfs"
export AP_SYS_ROOTFS
echo "rootfs: $AP_SYS_ROOTFS ($(( $(ap_now_ms) - t0 )) ms)"
# The payload copied into each container: this build as `make install` puts it, and the
# stand-in services the tests reload and restart (enabled).
payload=$AP_SYS_RUN/payload
rm -rf "$payload"
install -d -m 0755 "$payload"
make -s -C "$SYS_TOP" install DESTDIR="$payload" PREFIX=/usr/local >"$AP_SYS_RUN/install.log" 2>&1 ||
	{ cat "$AP_SYS_RUN/install.log" >&2; ap_die "make install failed"; }
cp -a "$SYS_TOP/tests/system/payload/." "$payload/"
install -d -m 0755 "$payload/etc/systemd/system/multi-user.target.wants"
for u in caddy.service app.service; do
	ln -s "/usr/local/lib/systemd/system/$u" "$payload/etc/systemd/system/multi-user.target.wants/$u"
done
echo "payload: $(find "$payload" -type f | wc -l) files ($(find "$payload" -path '*/bin/autopull' -type f))"

tests=()
for t in "$SYS_TOP"/tests/system/t-*.sh; do
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
	sys_boot
	echo "boot: running after $SYS_BOOT_MS ms (leader pid $SYS_LEADER)"
	(ap_cgroup_enter "$SYS_HARNESS_CG" "$BASHPID"
	 AP_TEST=$name exec timeout -k 10 "$AP_TEST_TIMEOUT" \
		bash -c 'set -u; . "$1"; . "$2"; ap_test_end' "$name" "$SYS_TOP/tests/system/lib.sh" "$t") 9>&- &
	ap_track test $!
	wait $!
	rc=$?
	rm -f "$AP_SYS_RUN/pids/test"
	read -r own_p own_f < <(ap_count "$name")   # the file's own checks, not the harness's below
	td=$(ap_now_ms)
	for f in "$AP_SYS_RUN/pids"/*; do
		[ -f "$f" ] && [ "${f##*/}" != nspawn ] && ap_untrack_stop "${f##*/}" 5
	done
	AP_TEST=$name
	ap_check "$name: the container powered off by itself" sys_poweroff
	echo "poweroff: $(( $(ap_now_ms) - td )) ms"
	for d in $(ap_cgroup_dirs "$AP_SYS_NAME"); do
		ap_check "$name: cgroup $d removed" test ! -d "$d"
	done
	ap_check "$name: no mount of the run left" not grep -q " $AP_SYS_RUN/" /proc/self/mountinfo
	ap_check "$name: no nspawn mount left" not grep -q " /run/systemd/nspawn " /proc/self/mountinfo
	dt=$(( $(ap_now_ms) - t0 ))
	ap_test_verdict "$name" "$rc" $((own_p + own_f))
	report+=("$(printf '%-5s %-24s %3d passed, %3d failed  %6.1f s (boot %d ms)' "$VERDICT" "$name" \
		"$P" "$F" "$(awk "BEGIN { print $dt / 1000 }")" "$SYS_BOOT_MS")")
done

echo
echo "== teardown"
AP_TEST=teardown
left=$(ap_cgroup_pids "$SYS_HARNESS_CG")
ap_check "no process left in $SYS_HARNESS_CG.slice${left:+: $left}" test -z "$left"
ap_cgroup_clear "$SYS_HARNESS_CG"
for d in $(ap_cgroup_dirs "$SYS_HARNESS_CG"); do ap_check "cgroup $d removed" test ! -d "$d"; done
for f in "$AP_SYS_RUN/pids"/*; do
	[ -f "$f" ] && ap_fail "process '${f##*/}' still recorded: $(cat "$f")"
done
[ "${AP_KEEP:-0}" = 1 ] || rm -rf "$AP_SYS_RUN/tmp" "$AP_SYS_RUN/work" "$AP_SYS_RUN/srv"
rm -rf "$AP_SYS_RUN/root" "$AP_SYS_RUN/ovl" "$payload"

echo
echo "== results"
for line in "${report[@]}"; do echo "$line"; done
echo "whole run: $(awk "BEGIN { print ($(ap_now_ms) - $T_START) / 1000 }") s"
SUMMARY_DONE=1
ap_summary
