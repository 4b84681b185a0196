#!/usr/bin/env bash
# `make bench`: measures autopull ticks against a real systemd --user manager, next to the
# git floor and a careful shell script doing the same job, and checks every result.
#
#   make bench                      full: small + large repo, file:// + smart HTTP, 10 rounds,
#                                   and the scale fixtures units1000, commits5000, trust5000
#   BENCH_REPOS="small large"       only these fixtures in the full run
#   make bench BENCH_QUICK=1        smoke (CI): small repo, file:// only, 1 round, checks on,
#                                   callgrind of the small repo only (no ratio)
#   BENCH_ROUNDS=N                  rounds in the full run (default 10)
#   BENCH_KEEP=1                    keep fixtures and scratch files in /tmp/apbench-run
#
# Output: a markdown table (printed, and written to bench/results/latest.md; the quick run
# writes bench/results/quick.md so a smoke run never replaces the full numbers) and the same
# data as JSON (latest.json / quick.json). Exit status: 0 when every run of every tool
# passed its checks, 1 otherwise (a missed performance *target* is reported, not fatal),
# 2 for usage/setup problems (not root, missing packages that cannot be installed).
#
# How a tick is measured (why it is built this way):
#  - Each tick starts from a restored state (state_dir with applied = base, installed files
#    = base, every unit running), so every tool gets the same starting point; restoring is
#    not timed. "first" starts from an empty host instead (state_dir and unit dir emptied,
#    units stopped).
#  - Tools alternate within a round (rotated order), so drift and noise hit all of them.
#  - bench/aptime (C, built here) forks the command directly and reports wall ms and
#    ru_maxrss; see aptime.c for why not hyperfine or GNU time.
#  - After every run: exit code, installed files == the target commit's files (content,
#    mode 0644, owner), exactly the expected units got a new InvocationID, the restarted
#    ones run the new definition (BENCH_REV in /proc/PID/environ), a config change gave
#    exactly one ExecReload, and the tool recorded the target commit. A failed check makes
#    the bench exit 1.
# Processes: the manager and the HTTP server are started through tests/integration/lib.sh
# and stopped by pid on exit (ap_stop_all); every command has a time limit, and the whole
# run has a deadline (BENCH_DEADLINE seconds; quick 170, full 7200).
set -u

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)

QUICK=0
case ${BENCH_QUICK:-0} in "" | 0 | no | false) ;; *) QUICK=1 ;; esac
if [ $QUICK = 1 ]; then
	ROUNDS=1 REPOS="small" TRANSPORTS="file" OUT_NAME=quick
	DEADLINE_S=${BENCH_DEADLINE:-170} CMD_TIMEOUT=60
else
	ROUNDS=${BENCH_ROUNDS:-10} REPOS=${BENCH_REPOS:-small large units1000 commits5000 trust5000}
	TRANSPORTS="file http" OUT_NAME=latest
	DEADLINE_S=${BENCH_DEADLINE:-7200} CMD_TIMEOUT=300
fi
case $ROUNDS in '' | *[!0-9]* | 0) echo "bench: BENCH_ROUNDS must be a positive number" >&2; exit 2 ;; esac
SCENARIOS="noop unit1 config units20 first"
# The scale fixtures measure what grows: 1,000 units (every restore starts them all, so over
# file:// only) and a 20-unit change 5,000 commits after the applied one, without and
# (trust5000, file:// only: each tick checks 5,000 signatures) with trust: every commit.
scenarios_of() { # REPO
	case $1 in
	units1000) echo "noop unit1 units20 first" ;;
	commits5000 | trust5000) echo "noop units20" ;;
	*) echo "$SCENARIOS" ;;
	esac
}
rounds_of() { # REPO: trust5000 checks 5,000 signatures per tick (minutes): one round
	case $1 in trust5000) echo 1 ;; *) echo "$ROUNDS" ;; esac
}
transports_of() { # REPO
	case $1 in units1000 | trust5000) echo file ;; *) echo "$TRANSPORTS" ;; esac
}

# ---------------------------------------------------------------------------------------------
# Dependencies: as root install what is missing; otherwise say exactly what is.
# hyperfine is not needed (aptime.c says why); valgrind only for the instruction counts.

need_pkgs="git python3 util-linux systemd gcc libc6-dev valgrind openssh-client"
missing=""
for p in $need_pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "bench: installing:$missing" >&2
		export DEBIAN_FRONTEND=noninteractive
		# shellcheck disable=SC2086
		apt-get install -y --no-install-recommends $missing >/dev/null ||
			{ apt-get update >/dev/null && apt-get install -y --no-install-recommends $missing >/dev/null; } ||
			{ echo "bench: apt-get install$missing failed" >&2; exit 2; }
	else
		echo "bench: missing Debian packages:$missing" >&2
		echo "bench: run as root: apt-get install -y$missing" >&2
		exit 2
	fi
fi
if [ "$(id -u)" != 0 ]; then
	echo "bench: run as root (it creates the user apbench, cgroups and a systemd --user manager)" >&2
	exit 2
fi
[ -x "$ROOT/autopull" ] || { echo "bench: $ROOT/autopull is not built (make autopull)" >&2; exit 2; }

# ---------------------------------------------------------------------------------------------
# shellcheck source=lib-bench.sh
. "$BENCH_DIR/lib-bench.sh"
say "setup ($([ $QUICK = 1 ] && echo quick || echo full): rounds=$ROUNDS repos=[$REPOS] transports=[$TRANSPORTS])"
bench_start

# ---------------------------------------------------------------------------------------------
# Main

{
	printf '{"date":"%s","kernel":"%s","cpus":%s,' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(uname -r)" "$(nproc)"
	printf '"cpu":"%s",' "$(awk -F': ' '/^model name/ { gsub(/["\\\\]/, ""); print $2; exit }' /proc/cpuinfo)"
	printf '"git":"%s","systemd":"%s","libgit2":"%s",' "$(git --version | awk '{print $3}')" \
		"$(systemctl --version | awk 'NR==1 {print $2}')" \
		"$(dpkg-query -W -f='${Version}' 'libgit2-1.5' 2>/dev/null)"
	printf '"autopull_commit":"%s","autopull_dirty":%s,' "$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null)" \
		"$([ -n "$(git -C "$ROOT" status --porcelain -- src include 2>/dev/null)" ] && echo true || echo false)"
	printf '"loadavg":"%s","quick":%s,"rounds":%d,"repos":"%s","transports":"%s",' \
		"$(cut -d' ' -f1-3 /proc/loadavg)" "$([ $QUICK = 1 ] && echo true || echo false)" "$ROUNDS" "$REPOS" "$TRANSPORTS"
	# BENCH_NOTE: one line for the table's header, e.g. that the machine was shared.
	printf '"note":"%s"}\n' "$(printf '%s' "${BENCH_NOTE:-}" | tr -d '"\\')"
} >"$AP_RUN/env.json"

for repo in $REPOS; do
	say "fixture: $repo"
	prepare_repo "$repo" || ap_die "cannot generate the $repo fixture"
	make_golden "$repo" || ap_die "the first deploy of the $repo fixture failed (checks above)"
	rounds=$(rounds_of "$repo")
	say "measuring $repo: $rounds round(s)"
	for ((round = 1; round <= rounds; round++)); do
		past_deadline && { fail "deadline of ${DEADLINE_S}s passed; stopping early"; break; }
		t0=$(ap_now_ms)
		overhead "$round"
		for sc in $(scenarios_of "$repo"); do
			set_tip "$repo" "$sc"
			for tr in $(transports_of "$repo"); do
				# shellcheck disable=SC2046
				for tool in $(rotate $((round - 1)) $(tools_for "$sc")); do
					tick time "$repo" "$sc" "$tr" "$tool" "$round"
				done
			done
		done
		echo "  round $round/$rounds: $(( ($(ap_now_ms) - t0) / 1000 )) s, failed checks so far: $N_FAIL"
	done
	# Once: the same one-unit tick with the default guard.settle (10 s health watch).
	if [ $QUICK = 0 ] && [ "$repo" = small ] && ! past_deadline; then
		set_tip "$repo" unit1
		tick time "$repo" unit1 file autopull-settle 1
	fi
	# Peak RSS of autopull alone (without its systemd-analyze child), once per tick kind.
	if ! past_deadline && [ "$repo" != trust5000 ]; then
		for sc in $(scenarios_of "$repo"); do
			set_tip "$repo" "$sc"
			for tr in $(transports_of "$repo"); do tick hwm "$repo" "$sc" "$tr" autopull 1; done
		done
	fi
	# Instruction count of the one-change plan (the quick run does the small repo only,
	# which has no ratio but keeps the callgrind path tested).
	if ! past_deadline && { [ "$repo" = small ] || [ "$repo" = large ]; }; then
		callgrind_plan "$repo"
	fi
	host_empty
done

# Building 10 N entries of every growing list against N: the ratio says linear or not (a
# target, reported; bench/linear.c checks itself on a quadratic builder first).
say "linear lists"
LINEAR_N=10000
[ $QUICK = 1 ] && LINEAR_N=2000
"$ROOT/build/bench/linear" -n "$LINEAR_N" >"$AP_RUN/linear.md" 2>"$AP_RUN/linear.err"
case $? in 0 | 1) cat "$AP_RUN/linear.md" ;; *) fail "bench/linear failed: $(head -c 300 "$AP_RUN/linear.err")" ;; esac
grep -q 'the check is blind' "$AP_RUN/linear.err" && fail "bench/linear: the quadratic self-check passed as linear"

say "report"
"$AP_PY" "$BENCH_DIR/report.py" --samples "$SAMPLES" --env "$AP_RUN/env.json" \
	--callgrind "$AP_RUN/callgrind.jsonl" --callgrind-dir "$AP_RUN/callgrind" \
	--failures "$FAILURES" --linear "$AP_RUN/linear.md" --md "$BENCH_DIR/results/$OUT_NAME.md" \
	--json "$BENCH_DIR/results/$OUT_NAME.json" || fail "report.py failed"
echo "whole bench: $(( ($(ap_now_ms) - T_START) / 1000 )) s; results in bench/results/$OUT_NAME.{md,json}"
if [ "$N_FAIL" -gt 0 ]; then
	echo "bench: $N_FAIL check(s) failed (see above and $FAILURES)" >&2
	exit 1
fi
exit 0
