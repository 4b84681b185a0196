#!/bin/sh
# Runs the libFuzzer targets built in build/fuzz: `--each SECONDS T...` gives every target
# SECONDS, `--total SECONDS T...` shares SECONDS among them. Each target reads the committed
# seeds in tests/fuzz/corpus/T/ and grows its own corpus in build/fuzz/run/T/corpus/; a crash
# input lands in build/fuzz/run/T/crashes/. Prints one line per target (execs, execs/s,
# crashes) and fails when any target crashed.
set -eu
mode=$1 secs=$2
shift 2
[ $# -gt 0 ] || { echo "run.sh: no targets" >&2; exit 2; }
case $mode in
--each) per=$secs ;;
--total) per=$((secs / $#)); [ "$per" -ge 1 ] || per=1 ;;
*) echo "run.sh: --each or --total" >&2; exit 2 ;;
esac
passed=0 failed=0
for t in "$@"; do
	work=build/fuzz/run/$t
	rm -rf "$work/crashes"
	mkdir -p "$work/corpus" "$work/crashes"
	seeds=tests/fuzz/corpus/$t
	[ -d "$seeds" ] || seeds=
	rc=0
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		"build/fuzz/$t" -max_total_time="$per" -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$work/crashes/" "$work/corpus" $seeds >"$work/last.log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/last.log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/last.log")
	crashes=$(find "$work/crashes" -type f | wc -l)
	printf '%-16s %4ss %12s execs %8s execs/s %3s crashes\n' "$t" "$per" "${execs:-?}" \
		"${rate:-?}" "$crashes"
	if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
		failed=$((failed + 1))
		echo "== $t failed (exit $rc); the end of $work/last.log:" >&2
		tail -n 40 "$work/last.log" >&2
		find "$work/crashes" -type f >&2
	else
		passed=$((passed + 1))
	fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
