#!/usr/bin/env bash
# `make bench-fleet` (and the end of `make bench`): a rollout of one commit across 100
# simulated hosts on a real etcd (started here on 127.0.0.1, stopped by pid), through
# autopull's own fleet client: the rollout's wall time against max_parallel and the settle,
# next to the ideal ceil(hosts / max_parallel) phases, and the most hosts seen inside the
# phase at once (never more than max_parallel, or the run fails). BENCH_QUICK=1: 100 hosts,
# one short configuration (CI). Results: bench/results/fleet.md (fleet-quick.md).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
quick=${BENCH_QUICK:-0}
bin=$(mktemp -d /tmp/apbench-fleet.XXXXXX)
etcd_pid=
cleanup() {
	if [ -n "$etcd_pid" ] && kill "$etcd_pid" 2>/dev/null; then wait "$etcd_pid" 2>/dev/null || true; fi
	rm -rf "$bin"
}
trap cleanup EXIT
make -s build/obj/fleet.o build/obj/fleet-etcd.o build/obj/fleet-status.o build/obj/http.o \
	build/obj/digest.o build/obj/util.o build/obj/log.o build/obj/model.o
# shellcheck disable=SC2046 # the flags are words
cc -O2 -std=c11 -D_GNU_SOURCE -iquote include -o "$bin/fleet-sim" bench/fleet-sim.c \
	build/obj/fleet.o build/obj/fleet-etcd.o build/obj/fleet-status.o build/obj/http.o \
	build/obj/digest.o build/obj/util.o build/obj/log.o build/obj/model.o \
	$(pkg-config --cflags --libs json-c libsystemd) -lmbedcrypto -lpthread -ldl

# etcd on free ports of 127.0.0.1 (a few tries: a port can be taken between check and bind)
free() { python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null; }
up=0
for _ in 1 2 3 4 5; do
	port=$((40000 + RANDOM % 10000))
	free "$port" && free "$((port + 1))" || continue
	etcd --name sim --data-dir "$bin/data" --log-level error \
		--listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
		--listen-peer-urls "http://127.0.0.1:$((port + 1))" \
		--initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" \
		--initial-cluster "sim=http://127.0.0.1:$((port + 1))" >"$bin/etcd.log" 2>&1 &
	etcd_pid=$!
	for _ in $(seq 200); do
		curl -sf "http://127.0.0.1:$port/health" 2>/dev/null | grep -q true && { up=1; break; }
		kill -0 "$etcd_pid" 2>/dev/null || break
		sleep 0.05
	done
	[ "$up" = 1 ] && break
	kill "$etcd_pid" 2>/dev/null; wait "$etcd_pid" 2>/dev/null || true
	etcd_pid=
	rm -rf "$bin/data"
done
[ "$up" = 1 ] || { echo "fleet-sim: etcd did not start:" >&2; tail -n 5 "$bin/etcd.log" >&2; exit 2; }

if [ "$quick" = 1 ]; then
	runs="10:200:0"
	out=bench/results/fleet-quick.md
else
	runs="1:200:0 5:200:0 10:200:0 25:200:0 10:1000:0 25:1000:0 10:1000:1 25:1000:5"
	out=bench/results/fleet.md
fi
mkdir -p bench/results
{
	echo "| hosts | max_parallel | canary | settle | wall | ideal | peak inside | slot wait median / max |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
} >"$bin/table"
rc=0
n=0
for r in $runs; do
	IFS=: read -r par settle canary <<<"$r"
	n=$((n + 1))
	line=$("$bin/fleet-sim" "http://127.0.0.1:$port" "sim$n" 100 "$par" "$settle" "$canary") || rc=1
	echo "$line"
	python3 -c '
import json, sys
d = json.loads(sys.argv[1])
print("| %(hosts)d | %(max_parallel)d | %(canary)d | %(settle_ms)d ms | %(wall_s).2f s | %(ideal_s).2f s | %(peak)d | %(slot_wait_median_s).2f s / %(slot_wait_max_s).2f s |" % d)' \
		"$line" >>"$bin/table"
done
cp "$bin/table" "$out"
cat "$out"
exit $rc
