#!/usr/bin/env bash
# bench/first-sweep.sh: what the fetch of a first run costs as the repository grows:
# 25,000, 50,000 and 100,000 files (gen_fixture.py large25k, large, large100k: 300 units),
# over file:// and smart HTTP on 127.0.0.1, autopull's fetch (build/bench/firstfetch, the
# ap_repo_fetch of `autopull apply`) next to `git -c protocol.version=0 fetch` into an
# empty bare mirror. Only the fetch: installs and unit starts are in `make bench`'s
# "first run" rows. Run as root after `make build/bench/firstfetch`.
#
#   bash bench/first-sweep.sh [OUT.md]      (default bench/results/first-sweep.md)
#   SWEEP_FIXTURES="large25k large large100k" SWEEP_RUNS=5 SWEEP_NOTE="…"
#
# Each run starts from an empty mirror; tools alternate within a round. aptime (bench/aptime.c)
# gives wall ms and peak RSS (ru_maxrss, as GNU time's %M). Work files: a mktemp directory (removed).
set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
OUT=${1:-$BENCH_DIR/results/first-sweep.md}
FIXTURES=${SWEEP_FIXTURES:-large25k large large100k}
RUNS=${SWEEP_RUNS:-5}
W=$(mktemp -d /tmp/apsweep-XXXXXX) || exit 2
FF=$ROOT/build/bench/firstfetch
[ -x "$FF" ] || { echo "first-sweep: build it first: make build/bench/firstfetch" >&2; exit 2; }
HTTP_PID=""
cleanup() { [ -n "$HTTP_PID" ] && kill "$HTTP_PID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
mkdir -p "$W/srv" "$W/bin" || exit 2
cc -O2 -Wall -Wextra -o "$W/bin/aptime" "$BENCH_DIR/aptime.c" || exit 2

port=$((20000 + RANDOM % 20000))
python3 "$ROOT/tests/integration/githttp.py" --root "$W/srv" --port "$port" \
	--ready-file "$W/http.ready" 2>"$W/http.log" &
HTTP_PID=$!
for _ in $(seq 50); do [ -e "$W/http.ready" ] && break; sleep 0.1; done
[ -e "$W/http.ready" ] || { echo "first-sweep: the HTTP server did not start" >&2; exit 2; }

# one timed run: TOOL URL → "ms rss_kb" (exit 1 when the run failed or fetched another tip)
run() {
	local tool=$1 url=$2 want=$3 m=$W/mirror out
	rm -rf "$m"
	if [ "$tool" = autopull ]; then
		out=$("$W/bin/aptime" -t 300 -o "$W/out" -- "$FF" "$url" "$m") || return 1
		[ "$(cat "$W/out")" = "$want" ] || return 1
	else
		git init -q --bare "$m" || return 1
		out=$("$W/bin/aptime" -t 300 -- git -C "$m" -c protocol.version=0 fetch -q "$url" \
			+refs/heads/main:refs/remotes/origin/main) || return 1
		[ "$(git -C "$m" rev-parse refs/remotes/origin/main)" = "$want" ] || return 1
	fi
	python3 -c 'import json, sys; d = json.loads(sys.argv[1]); print("%.1f %d %d" % (d["ms"], d["maxrss_kb"], d["rc"]))' "$out"
}
median() { sort -n | awk '{ a[NR] = $1 } END { printf "%.1f\n", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

{
	echo "# First-run fetch by repository size"
	echo
	echo "\`bash bench/first-sweep.sh\` ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPU(s), load average at start $(cut -d' ' -f1-3 /proc/loadavg); autopull $(git -C "$ROOT" rev-parse --short=12 HEAD); git $(git --version | awk '{print $3}')${SWEEP_NOTE:+; $SWEEP_NOTE})."
	echo "The fetch of a first run alone (\`build/bench/firstfetch\`: ap_repo_fetch into an empty mirror) against \`git -c protocol.version=0 fetch\` into an empty bare mirror; fixtures \`gen_fixture.py large25k / large / large100k\` (300 units, the rest nested data files, one gc'd pack). Median of $RUNS runs (min–max), tools alternating; peak RSS = ru_maxrss (largest run)."
	echo
	echo "| files | transport | autopull ms | git fetch ms | × git fetch | autopull RSS MB | git fetch RSS MB | runs ok |"
	echo "|---:|---|---:|---:|---:|---:|---:|---:|"
} >"$W/table.md"

fails=0
for fx in $FIXTURES; do
	repo=$W/srv/$fx.git
	git init -q --bare -b main "$repo" || exit 2
	python3 "$BENCH_DIR/gen_fixture.py" "$fx" "$W/meta-$fx" |
		GLIBC_TUNABLES=glibc.malloc.trim_threshold=268435456:glibc.malloc.top_pad=67108864 \
			git -C "$repo" fast-import --done --quiet || exit 2
	git -C "$repo" repack -adq && git -C "$repo" update-ref -d refs/bench/unit1 &&
		git -C "$repo" update-ref -d refs/bench/config && git -C "$repo" update-ref -d refs/bench/units20 &&
		git -C "$repo" prune && git -C "$repo" repack -adq || exit 2
	want=$(git -C "$repo" rev-parse refs/heads/main)
	n=$(awk '{ print $2 }' "$W/meta-$fx/counts")
	for tr in file http; do
		[ $tr = file ] && url=file://$repo || url=http://127.0.0.1:$port/$fx.git
		: >"$W/a" && : >"$W/g"
		ok=0
		for ((i = 1; i <= RUNS; i++)); do
			order="autopull git"
			[ $((i % 2)) = 0 ] && order="git autopull"
			for tool in $order; do
				if r=$(run "$tool" "$url" "$want") && [ "${r##* }" = 0 ]; then
					echo "$r" >>"$W/$([ "$tool" = autopull ] && echo a || echo g)"
					[ "$tool" = autopull ] && ok=$((ok + 1))
				else
					echo "first-sweep: $tool $n $tr run $i failed" >&2
					fails=$((fails + 1))
				fi
			done
		done
		am=$(cut -d' ' -f1 "$W/a" | median) gm=$(cut -d' ' -f1 "$W/g" | median)
		amin=$(cut -d' ' -f1 "$W/a" | sort -n | head -1) amax=$(cut -d' ' -f1 "$W/a" | sort -n | tail -1)
		gmin=$(cut -d' ' -f1 "$W/g" | sort -n | head -1) gmax=$(cut -d' ' -f1 "$W/g" | sort -n | tail -1)
		ar=$(cut -d' ' -f2 "$W/a" | sort -n | tail -1) gr=$(cut -d' ' -f2 "$W/g" | sort -n | tail -1)
		printf '| %s | %s | %s (%s–%s) | %s (%s–%s) | %.2f× | %.1f | %.1f | %d/%d |\n' \
			"$n" "$tr" "$am" "$amin" "$amax" "$gm" "$gmin" "$gmax" \
			"$(awk -v a="$am" -v g="$gm" 'BEGIN { print a / g }')" \
			"$(awk -v k="$ar" 'BEGIN { print k / 1024 }')" "$(awk -v k="$gr" 'BEGIN { print k / 1024 }')" \
			"$ok" "$RUNS" >>"$W/table.md"
		echo "first-sweep: $n files over $tr done" >&2
	done
	rm -rf "$repo"
done
cp "$W/table.md" "$OUT" && cat "$OUT"
[ $fails = 0 ]
