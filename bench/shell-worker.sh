#!/bin/bash
# bench/shell-worker.sh APTIME REQ RESP: started once per bench by lib-bench.sh inside the
# user manager's mount namespace, as the unit owner (nsenter + setpriv + env -i, the one
# wrapper `systemctl` needs on this machine, PLATFORM.md §0), it runs each shell-baseline
# tick on request, so a tick pays what a script started by a timer pays there: no wrapper.
#
# Protocol: one request per line on the FIFO REQ, the arguments of aptime separated by tabs
# (aptime forks the baseline directly and times it, as it times autopull); the one JSON line
# aptime prints goes to the FIFO RESP. It exits at EOF on REQ.
set -u
aptime=${1:?} req=${2:?} resp=${3:?}
exec 3<"$req" 4>"$resp"
while IFS=$'\t' read -r -a argv <&3; do
	"$aptime" "${argv[@]}" >&4 || printf '{"ms": 0, "rc": 998, "maxrss_kb": 0, "timed_out": false}\n' >&4
done
