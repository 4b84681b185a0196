#!/usr/bin/env bash
# bench/profile.sh [small|large|units1000|commits5000] [noop|unit1|config|units20|first] [file|http]: where one autopull tick
# spends its time, on the same fixture, user manager and starting state as `make bench`.
# Run as root. Not part of `make bench`; for looking into a missed target.
#
# For the chosen tick (default: small unit1 over file://) it runs autopull apply, each
# time from the restored starting state:
#   1. plain, timed (aptime), 5 times: the reference wall time;
#   2. under `strace -f --seccomp-bpf` (few syscalls): a wall-clock timeline — children,
#      D-Bus calls by member, fsync, long waits → timeline.txt;
#   3. under `perf record -g` (cpu-clock): on-CPU profile → perf.txt (if perf works here);
#   4. under callgrind: instructions → callgrind.txt (inclusive, top functions);
#   5. under massif: the heap at its peak → massif.txt.
# Output in /tmp/apbench-run/profile/; a summary is printed.
set -u

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=${1:-small} SC=${2:-unit1} TR=${3:-file}
usage() { echo "usage: profile.sh [small|large|units1000|commits5000] [noop|unit1|config|units20|first] [file|http]" >&2; exit 2; }
case $REPO in small | large | units1000 | commits5000) ;; *) usage ;; esac
case $SC in noop | unit1 | config | units20 | first) ;; *) usage ;; esac
case $TR in file | http) ;; *) usage ;; esac
[ "$(id -u)" = 0 ] || { echo "profile.sh: run as root" >&2; exit 2; }
for t in strace valgrind; do
	command -v $t >/dev/null || { echo "profile.sh: needs $t (apt-get install -y $t)" >&2; exit 2; }
done
CMD_TIMEOUT=300 DEADLINE_S=3600 TRANSPORTS=$TR
# shellcheck source=lib-bench.sh
. "$BENCH_DIR/lib-bench.sh"
bench_start
OUT=$AP_RUN/profile
rm -rf "$OUT"
install -d -o "$AP_UID" -g "$AP_GID" "$OUT"   # strace and valgrind write here as the user
prepare_repo "$REPO" || ap_die "fixture failed"
make_golden "$REPO" || ap_die "golden state failed"
set_tip "$REPO" "$SC"
CFG=$BH/conf/ap-$TR.yaml

# restore: the tick's starting state for autopull (as tick() does).
restore() {
	if [ "$SC" = first ]; then host_empty; else host_restore "$REPO"; fi
	state_restore "$REPO" "ap-$TR" "$SC"
}

say "timed: autopull --user apply, $REPO/$SC over $TR, 5 runs"
for i in 1 2 3 4 5; do
	restore
	"$APTIME" -u "$AP_USER" -t "$CMD_TIMEOUT" -o "$OUT/run.out" -e "$OUT/run.err" -- \
		"$AP_BIN" --user -c "$CFG" apply
done | tee "$OUT/timed.jsonl"

say "strace timeline"
restore
# --seccomp-bpf: only the listed syscalls stop the process, so the timeline stays close to
# the untraced wall time.
ap_as_user timeout "$CMD_TIMEOUT" strace -f -ttt -T -s 200 --seccomp-bpf \
	-e trace=execve,clone,clone3,vfork,exit_group,sendmsg,fsync,fdatasync,connect,poll,ppoll \
	-o "$OUT/strace.txt" "$AP_BIN" --user -c "$CFG" apply >"$OUT/strace.out" 2>&1
# Children (what ran, how long), the D-Bus calls of the main process by member name (first,
# last, count), and fsync.
"$AP_PY" - "$OUT/strace.txt" >"$OUT/timeline.txt" <<-'EOF'
	import re, sys
	pat = re.compile(r'^(\d+)\s+(\d+\.\d+)\s+(.*?)(?:\s+<(\d+\.\d+)>)?$')
	ev = []
	for l in open(sys.argv[1]):
	    m = pat.match(l.rstrip("\n"))
	    if m:
	        ev.append((int(m.group(1)), float(m.group(2)), m.group(3), float(m.group(4) or 0)))
	if not ev:
	    sys.exit("no events")
	t0, main = ev[0][1], ev[0][0]
	ms = lambda t: (t - t0) * 1e3
	procs = {}
	for pid, t, call, dur in ev:
	    p = procs.setdefault(pid, {"first": t, "last": t, "exec": ""})
	    p["last"] = max(p["last"], t + dur)
	    if call.startswith("execve(") and not p["exec"]:
	        p["exec"] = call[7:100]
	print("total %.1f ms (traced), %d processes" % (ms(max(p["last"] for p in procs.values())), len(procs)))
	print("\nchild processes (start ms, duration ms, program):")
	for pid, p in procs.items():
	    if pid != main:
	        print("  %8.1f %8.1f  %s" % (ms(p["first"]), (p["last"] - p["first"]) * 1e3, p["exec"]))
	members = ["Subscribe", "ListUnitsByPatterns", "GetAll", "Get\\0", "Reload\\0",
	           "EnableUnitFiles", "DisableUnitFiles", "TryRestartUnit", "ReloadOrTryRestartUnit",
	           "RestartUnit", "StartUnit", "StopUnit", "LoadUnit", "GetUnit"]
	seen = {}
	for pid, t, call, dur in ev:
	    if pid != main:
	        continue
	    key = None
	    if call.startswith("sendmsg("):
	        key = next((m.replace("\\0", "") for m in members if m in call), None)
	        key = key and "D-Bus " + key
	    elif call.startswith(("fsync", "fdatasync")):
	        key = "fsync"
	    if key:
	        s = seen.setdefault(key, [t, t, 0, 0.0])
	        s[1], s[2], s[3] = t + dur, s[2] + 1, s[3] + dur
	print("\nmain process (first ms, last ms, count):")
	for k, (a, b, n, d) in sorted(seen.items(), key=lambda kv: kv[1][0]):
	    print("  %-34s %8.1f %8.1f  n=%d" % (k, ms(a), ms(b), n))
	print("\nmain process, syscalls that blocked >= 5 ms (start ms, blocked ms, call):")
	for pid, t, call, dur in ev:
	    if pid == main and dur >= 0.005:
	        print("  %8.1f %8.1f  %s" % (ms(t), dur * 1e3, call[:100]))
	EOF
cat "$OUT/timeline.txt"

say "perf (on-CPU, cpu-clock)"
restore
if perf record -q -e cpu-clock -F 5000 -g -o "$OUT/perf.data" -- \
	setpriv --reuid="$AP_UID" --regid="$AP_GID" --init-groups env -i HOME="$AP_HOME" \
	XDG_RUNTIME_DIR="$AP_RUNTIME" PATH=/usr/bin:/bin "$AP_BIN" --user -c "$CFG" apply \
	>"$OUT/perf.out" 2>&1; then
	perf report -i "$OUT/perf.data" --no-children -g none --sort dso,sym --stdio 2>/dev/null |
		grep -v '^#' | grep -v '^$' | sed -n '1,40p' >"$OUT/perf.txt"
	sed -n '1,25p' "$OUT/perf.txt"
else
	echo "perf record failed here (see $OUT/perf.out)"
fi

say "callgrind (instructions of the autopull process)"
restore
ap_as_user timeout "$CMD_TIMEOUT" valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
	"$AP_BIN" --user -c "$CFG" apply >"$OUT/cg.out" 2>&1
callgrind_annotate --inclusive=yes "$OUT/callgrind.out" 2>/dev/null | sed -n '1,70p' >"$OUT/callgrind.txt"
callgrind_annotate --inclusive=no "$OUT/callgrind.out" 2>/dev/null | sed -n '1,45p' >"$OUT/callgrind-self.txt"
sed -n '/file:function/,+30p' "$OUT/callgrind.txt"

say "massif (heap of the autopull process; RSS beyond it is mapped files: packs, libraries)"
restore
ap_as_user timeout "$CMD_TIMEOUT" valgrind --tool=massif --massif-out-file="$OUT/massif.out" \
	"$AP_BIN" --user -c "$CFG" apply >"$OUT/massif.log" 2>&1
ms_print "$OUT/massif.out" 2>/dev/null >"$OUT/massif.txt"
# The peak snapshot's allocation tree, top levels only.
awk '/^ *[0-9]+ +[0-9,]+ +[0-9,]+ +[0-9,]+ +[0-9,]+ +[0-9,]+$/ { snap = $0 }
     /\(heap allocation functions\) malloc/ { print; n = 1; next }
     n > 0 && n < 40 && /->/ && !/->.*->.*->/ { print; n++ }' "$OUT/massif.txt" | head -40
grep -m1 -B2 -A0 'peak' "$OUT/massif.txt" | head -5
echo
echo "files: $OUT/{timed.jsonl,timeline.txt,strace.txt,perf.txt,callgrind.txt,callgrind-self.txt,massif.txt}"
