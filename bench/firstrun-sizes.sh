#!/bin/bash
# firstrun-sizes.sh: peak RSS and wall time of autopull's first run (empty host: no state,
# no mirror, no unit files, units stopped) at 25,000 / 50,000 / 100,000 files, over file://
# and smart HTTP, for one or two autopull binaries interleaved (the order rotates every
# round), next to `git fetch` of the same repository into an empty bare mirror. Each binary
# also runs the same first run with --dry-run: fetch, tree diff and plan, no units (the part
# that `git fetch` compares with), and with --dry-run --no-fetch on the mirror that run
# filled (tree diff and plan alone): the difference is the fetch.
#
#   AP_USER=NAME AP_RUN=DIR bash bench/firstrun-sizes.sh [-n ROUNDS] [-o OUT.md] BIN [BIN2]
#
# As root on Debian 12, with the integration harness's user and manager (tests/integration/
# lib.sh; defaults AP_USER=apfirst AP_RUN=/tmp/apfirst-run, so it never shares a user with
# `make bench`). Peak RSS is aptime's maxrss_kb: ru_maxrss of the run and its waited-for
# children (systemd-analyze), the number /usr/bin/time -f %M prints. Fixtures are
# bench/gen_fixture.py's large25k / large / large100k (300 units, the rest ballast), packed
# once with `git repack -ad` like a server's. Writes a markdown table of medians (and the
# largest peak) to OUT.md (default: stdout); raw samples to $AP_RUN/firstrun.jsonl.
# Exit 0 = every run succeeded, 1 = a run failed, 2 = setup problem.
set -u
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
ROUNDS=5 OUT=
while getopts n:o: o; do
	case $o in
	n) ROUNDS=$OPTARG ;;
	o) OUT=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 [-n ROUNDS] [-o OUT.md] BIN [BIN2]" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "firstrun-sizes: run as root" >&2; exit 2; }
BINS=("$@")
REPOS=${FR_REPOS:-"large25k large large100k"}

: "${AP_USER:=apfirst}"
: "${AP_RUN:=/tmp/apfirst-run}"
export AP_USER AP_RUN AP_TEST=firstrun
export AP_BINDIR=$AP_RUN-bin AP_CMD_TIMEOUT=120
mkdir -p "$AP_RUN"
# shellcheck source=../tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"

SAMPLES=$AP_RUN/firstrun.jsonl
TMP=$AP_RUN/tmp
rm -rf "$TMP" && mkdir -p "$TMP" && : >"$SAMPLES"
ap_bindir_fresh
for i in "${!BINS[@]}"; do
	install -m 0755 "${BINS[$i]}" "$AP_BINDIR/autopull-$i" || exit 2
done
install -m 0644 "$ROOT/tests/integration/githttp.py" "$AP_BINDIR/" || exit 2
cc -O2 -Wall -Wextra -o "$AP_BINDIR/aptime" "$BENCH_DIR/aptime.c" || exit 2
ap_user_setup "$AP_USER"
ap_install_cleanup
ap_manager_start "$AP_USER"
SRV=$AP_HOME/srv BH=$AP_HOME/fr
install -d -m 0755 -o "$AP_UID" -g "$AP_GID" "$SRV" "$BH" "$BH/conf" "$BH/etc"
ap_http_start "$SRV" || exit 2
HTTP_URL=http://127.0.0.1:$AP_HTTP_PORT

# make_repo REPO: the origin, as the user (libgit2 refuses a file:// repo of another uid).
make_repo() {
	local repo=$1 origin=$SRV/$1.git
	ap_as_user git init -q --bare -b main "$origin" || return 1
	"$AP_PY" "$BENCH_DIR/gen_fixture.py" "$repo" "$TMP/meta-$repo" |
		ap_as_user env GLIBC_TUNABLES=glibc.malloc.trim_threshold=268435456:glibc.malloc.top_pad=67108864 \
			git -C "$origin" fast-import --done --quiet || return 1
	ap_git "$origin" repack -adq || return 1
	ap_git "$origin" for-each-ref --format='delete %(refname)' refs/bench |
		ap_git "$origin" update-ref --stdin || return 1
	ap_git "$origin" pack-refs --all
}

url_for() { # REPO TRANSPORT
	case $2 in
	file) echo "file://$SRV/$1.git" ;;
	http) echo "$HTTP_URL/$1.git" ;;
	esac
}

write_config() { # REPO TRANSPORT
	ap_user_write "$BH/conf/$1-$2.yaml" <<-EOF
	repo:
	  url: $(url_for "$1" "$2")
	  branch: main
	scope: user
	state_dir: $BH/state
	units: [systemd/]
	files:
	  - src: caddy/Caddyfile
	    dest: $BH/etc/Caddyfile
	    reload: [caddy.service]
	guard:
	  settle: 0s
	EOF
}

# reset REPO: an empty host again: units stopped and gone, no state, no mirror.
reset() {
	local -a units
	mapfile -t units <"$TMP/meta-$1/units.list"
	ap_systemctl stop -- "${units[@]}" >/dev/null 2>&1
	rm -rf "${AP_UNIT_DIR:?}" "$BH/state" "$BH/mirror.git" "$BH/etc/Caddyfile"
	ap_systemctl daemon-reload || return 1
	ap_systemctl reset-failed >/dev/null 2>&1
	ap_as_user mkdir -p "$AP_UNIT_DIR"
}

# one REPO TRANSPORT TOOL ROUND: one measured run, one JSON line in $SAMPLES.
one() {
	local repo=$1 tr=$2 tool=$3 round=$4 line n
	local -a cmd
	reset "$repo" || return 1
	case $tool in
	git)
		ap_as_user git init -q --bare "$BH/mirror.git" || return 1
		cmd=(git -C "$BH/mirror.git" fetch -q --no-tags "$(url_for "$repo" "$tr")"
			"+refs/heads/main:refs/remotes/origin/main") ;;
	n*) # the mirror filled by an unmeasured run first: tree diff and plan alone
		ap_as_user "$AP_BINDIR/autopull-${tool#n}" --user -c "$BH/conf/$repo-$tr.yaml" apply \
			--dry-run >/dev/null 2>&1 || return 1
		cmd=("$AP_BINDIR/autopull-${tool#n}" --user -c "$BH/conf/$repo-$tr.yaml" apply --dry-run
			--no-fetch) ;;
	d*) cmd=("$AP_BINDIR/autopull-${tool#d}" --user -c "$BH/conf/$repo-$tr.yaml" apply --dry-run) ;;
	*) cmd=("$AP_BINDIR/autopull-$tool" --user -c "$BH/conf/$repo-$tr.yaml" apply) ;;
	esac
	line=$("$AP_BINDIR/aptime" -u "$AP_USER" -t 120 -e "$TMP/last.err" -- "${cmd[@]}") || return 1
	case $line in *'"rc": 0,'*) ;; *) echo "firstrun-sizes: $repo $tr $tool failed: $line" >&2
		tail -n 5 "$TMP/last.err" >&2; return 1 ;;
	esac
	if [ "$tool" = "${tool#[gdn]}" ]; then
		n=$(find "$AP_UNIT_DIR" -maxdepth 1 -name '*.service' | wc -l)
		[ "$n" = "$(wc -l <"$TMP/meta-$repo/units.list")" ] ||
			{ echo "firstrun-sizes: $repo $tr $tool installed $n units" >&2; return 1; }
	fi
	printf '{"repo": "%s", "transport": "%s", "tool": "%s", "round": %d, %s\n' \
		"$repo" "$tr" "$tool" "$round" "${line#\{}" >>"$SAMPLES"
}

for repo in $REPOS; do
	make_repo "$repo" || { echo "firstrun-sizes: cannot make $repo" >&2; exit 2; }
	for tr in file http; do write_config "$repo" "$tr"; done
done
TOOLS=(git)
for i in "${!BINS[@]}"; do TOOLS+=("$i" "d$i" "n$i"); done
rc=0
for round in $(seq 1 "$ROUNDS"); do
	for repo in $REPOS; do
		for tr in file http; do
			for k in "${!TOOLS[@]}"; do
				tool=${TOOLS[$(( (k + round) % ${#TOOLS[@]} ))]}
				one "$repo" "$tr" "$tool" "$round" || rc=1
			done
		done
	done
	echo "round $round done" >&2
done
reset large25k >/dev/null 2>&1

"$AP_PY" - "$SAMPLES" "${BINS[@]}" >"${OUT:-/dev/stdout}" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
bins = sys.argv[2:]
name = {"git": "git fetch (empty mirror)"}
for i, b in enumerate(bins):
    name[str(i)] = "autopull %s" % b
    name["d%d" % i] = "autopull %s --dry-run" % b
    name["n%d" % i] = "autopull %s --dry-run --no-fetch" % b
print("| repo | transport | tool | wall ms (median) | peak RSS MB (median) | peak RSS MB (max) | runs |")
print("|---|---|---|---:|---:|---:|---:|")
seen = []
for r in rows:
    k = (r["repo"], r["transport"], r["tool"])
    if k not in seen:
        seen.append(k)
order = {"large25k": 0, "large": 1, "large100k": 2}
seen.sort(key=lambda k: (order.get(k[0], 9), k[1], k[2] != "git", k[2][0], k[2]))
for k in seen:
    s = [r for r in rows if (r["repo"], r["transport"], r["tool"]) == k]
    ms = statistics.median(r["ms"] for r in s)
    kb = [r["maxrss_kb"] for r in s]
    print("| %s | %s | %s | %.0f | %.1f | %.1f | %d |" % (
        k[0], k[1], name[k[2]], ms, statistics.median(kb) / 1024, max(kb) / 1024, len(s)))
print()
print("Fetch phase = median(--dry-run) - median(--dry-run --no-fetch), next to git fetch:")
print()
print("| repo | transport | binary | fetch ms | git fetch ms | ratio |")
print("|---|---|---|---:|---:|---:|")
def med(repo, tr, tool):
    v = [r["ms"] for r in rows if (r["repo"], r["transport"], r["tool"]) == (repo, tr, tool)]
    return statistics.median(v) if v else None
for repo, tr in dict.fromkeys((k[0], k[1]) for k in seen):
    g = med(repo, tr, "git")
    for i, b in enumerate(bins):
        d, n = med(repo, tr, "d%d" % i), med(repo, tr, "n%d" % i)
        if None not in (d, n, g):
            print("| %s | %s | %s | %.0f | %.0f | %.2f |" % (repo, tr, b, d - n, g, (d - n) / g))
EOF
exit $rc
