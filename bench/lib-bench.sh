# shellcheck shell=bash
# Helpers of bench/run.sh and bench/profile.sh, sourced after they set CMD_TIMEOUT,
# DEADLINE_S and TRANSPORTS. Owns: the bench user apbench and its manager (through
# tests/integration/lib.sh), the fixture repos, the golden starting state, restoring it,
# the checks after a run, and one measured run (tick). Does not: decide what is measured
# (run.sh) or compute statistics (report.py).
BENCH_DIR=${BENCH_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
ROOT=${ROOT:-$(cd "$BENCH_DIR/.." && pwd)}

# The harness of the integration tests, with our own user and directories.
export AP_USER=apbench AP_RUN=/tmp/apbench-run AP_BINDIR=/tmp/apbench-bin AP_TEST=bench
export AP_BIN=$AP_BINDIR/autopull
export AP_CMD_TIMEOUT=$CMD_TIMEOUT
BENCH_BIN=$AP_BINDIR
mkdir -p "$AP_RUN"
AP_RESULTS=$AP_RUN/results
# shellcheck source=../tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"

T_START=$(ap_now_ms)
DEADLINE_MS=$((T_START + ${DEADLINE_S:?} * 1000))
TMP=$AP_RUN/tmp
SAMPLES=$AP_RUN/samples.jsonl
FAILURES=$AP_RUN/failures.log
N_FAIL=0

say() { printf '== %s\n' "$*"; }
fail() { # MESSAGE: one line in $FAILURES per failed check (newlines folded)
	local msg="$*"
	N_FAIL=$((N_FAIL + 1))
	msg=${msg//$'\n'/ | }
	printf 'bench: CHECK FAILED: %s\n' "$msg" | tee -a "$FAILURES" >&2
}
past_deadline() { [ "$(ap_now_ms)" -gt "$DEADLINE_MS" ]; }

bench_cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	ap_stop_all >/dev/null 2>&1
	# Without the manager the units are gone; their files would start them all again
	# (default.target.wants) with the next manager of this user.
	[ -n "${AP_UNIT_DIR:-}" ] && rm -rf "$AP_UNIT_DIR"
	if [ "${BENCH_KEEP:-0}" != 1 ]; then
		rm -rf "$AP_RUN/golden" "$AP_RUN/expect" "$TMP" "${AP_HOME:?}/srv" "${AP_HOME:?}/bench" \
			"$AP_BINDIR"
	fi
	exit $rc
}

# bench_start: one bench at a time (a lock), fresh scratch files, the binaries, the user,
# its manager, the HTTP server (if TRANSPORTS has http), and the paths below its home.
# Installs bench_cleanup, which stops all of it by pid on exit.
bench_start() {
	# fd 9 holds the lock; lib.sh closes it for everything started in the background.
	exec 9>"$AP_RUN/lock"
	flock -n 9 || { echo "bench: another bench holds $AP_RUN/lock" >&2; exit 2; }
	rm -rf "$TMP" "$AP_RUN/golden" "$AP_RUN/expect" "$AP_RUN/meta" "$AP_RUN/callgrind"
	rm -f "$SAMPLES" "$FAILURES" "$AP_RUN/linear.md" "$AP_RUN/hwm.jsonl" "$AP_RUN/callgrind.jsonl" "$AP_RUN/env.json"
	mkdir -p "$TMP"

	ap_bindir_fresh
	ap_bindir_add "$ROOT/autopull" >/dev/null || { echo "bench: cannot install the binary" >&2; exit 2; }
	install -m 0755 "$BENCH_DIR/baseline.sh" "$BENCH_DIR/shell-worker.sh" "$BENCH_BIN/"
	APTIME=$BENCH_BIN/aptime FLOOR=$BENCH_BIN/floor
	cc -O2 -Wall -Wextra -o "$APTIME" "$BENCH_DIR/aptime.c" || { echo "bench: cannot build aptime" >&2; exit 2; }
	# shellcheck disable=SC2046 # pkg-config prints several words
	cc -O2 -Wall -Wextra -o "$FLOOR" "$BENCH_DIR/floor.c" $(pkg-config --cflags --libs libsystemd) ||
		{ echo "bench: cannot build floor" >&2; exit 2; }

	ap_user_setup "$AP_USER"
	ap_install_cleanup bench_cleanup
	# Nothing of an earlier run may autostart with the new manager.
	rm -rf "${AP_UNIT_DIR:?}" "${AP_HOME:?}/bench" "${AP_HOME:?}/srv"
	ap_manager_start "$AP_USER"
	echo "manager: pid $AP_MANAGER_PID (socket after ${AP_MANAGER_START_MS} ms)"
	install -d -m 0755 -o "$AP_UID" -g "$AP_GID" "$AP_HOME/srv" "$AP_HOME/bench" \
		"$AP_HOME/bench/state" "$AP_HOME/bench/conf" "$AP_HOME/bench/log"
	# valgrind runs as the user and writes its output here
	install -d -m 0755 -o "$AP_UID" -g "$AP_GID" "$AP_RUN/callgrind"
	if [[ " $TRANSPORTS " == *" http "* ]]; then
		ap_http_start "$AP_HOME/srv" || ap_die "http server failed"
		HTTP_URL=http://127.0.0.1:$AP_HTTP_PORT
		echo "http: pid $AP_HTTP_PID on 127.0.0.1:$AP_HTTP_PORT (tests/integration/githttp.py)"
	fi

	BH=$AP_HOME/bench                       # everything of the bench below the user's home
	FILE_DEST=$BH/etc/caddy/Caddyfile
	RELOADS=$BH/log/caddy.reloads
	MIRROR=$BH/state/git-mirror             # the git floor's bare mirror
	# The wrapper every systemctl needs here (PLATFORM.md §0). The shell baseline does not pay
	# it per run: one worker started inside it runs every baseline tick (shell_worker_start).
	NS_WRAP=(nsenter -t "$AP_MANAGER_PID" -m setpriv --reuid="$AP_UID" --regid="$AP_GID" --init-groups
		env -i HOME="$AP_HOME" USER="$AP_USER" LOGNAME="$AP_USER" XDG_RUNTIME_DIR="$AP_RUNTIME"
		PATH=/usr/bin:/bin LANG=C.UTF-8)
	shell_worker_start
}

# shell_worker_start: bench/shell-worker.sh inside the manager's namespace as the user, fed
# through two FIFOs in a directory of the user (fd 7 requests, fd 8 results); its output
# files (WORKER_OUT, WORKER_ERR) are the user's too. Stopped by pid with everything else.
shell_worker_start() {
	local wd=$BH/worker
	install -d -m 0700 -o "$AP_UID" -g "$AP_GID" "$wd"
	rm -f "$wd/req" "$wd/resp"
	ap_as_user mkfifo -m 0600 "$wd/req" "$wd/resp" || ap_die "cannot make the worker's FIFOs"
	WORKER_OUT=$wd/run.out WORKER_ERR=$wd/run.err
	"${NS_WRAP[@]}" bash "$BENCH_BIN/shell-worker.sh" "$APTIME" "$wd/req" "$wd/resp" \
		>>"$AP_RUN/worker.log" 2>&1 </dev/null 9>&- &
	ap_track shell-worker $!
	exec 7>"$wd/req" 8<"$wd/resp"
}

# worker_run ARGS...: one aptime run by the worker; prints its JSON line.
worker_run() {
	local IFS=$'\t' res
	printf '%s\n' "$*" >&7 || return 1
	read -r -t $((CMD_TIMEOUT + 30)) res <&8 || return 1
	printf '%s\n' "$res"
}

# ---------------------------------------------------------------------------------------------
# Fixtures: one bare origin per repo, served as file://$AP_HOME/srv/R.git and over HTTP.

url_for() { # REPO TRANSPORT
	case $2 in
	file) echo "file://$AP_HOME/srv/$1.git" ;;
	http) echo "$HTTP_URL/$1.git" ;;
	esac
}

# prepare_repo REPO: generate the origin (git fast-import, as the bench user: libgit2
# refuses file:// repos owned by another uid), the expected trees per commit, the configs.
prepare_repo() {
	local repo=$1 origin=${AP_HOME:?}/srv/$1.git meta=$AP_RUN/meta/$1 name sha tr t0
	t0=$(ap_now_ms)
	rm -rf "$origin" "$meta" "$AP_RUN/expect/$repo"
	mkdir -p "$meta"
	ap_as_user git init -q --bare -b main "$origin" || return 1
	# fast-import of 50k inline blobs spends 20 s in brk() with glibc's default trim
	# threshold; with a larger one it takes 0.5 s.
	"$AP_PY" "$BENCH_DIR/gen_fixture.py" "$repo" "$meta" |
		ap_as_user env GLIBC_TUNABLES=glibc.malloc.trim_threshold=268435456:glibc.malloc.top_pad=67108864 \
			git -C "$origin" fast-import --done --quiet || return 1
	# trust5000: base and the 5,000-commit chain signed with a key of the bench (trust: rows).
	if [ "$repo" = trust5000 ]; then
		rm -f "$BH/conf/trust-key" "$BH/conf/trust-key.pub"
		ap_as_user ssh-keygen -q -t ed25519 -N '' -C apbench -f "$BH/conf/trust-key" || return 1
		printf 'apbench@example.invalid namespaces="git" %s\n' "$(cat "$BH/conf/trust-key.pub")" |
			ap_user_write "$BH/conf/allowed_signers"
		ap_as_user "$AP_PY" "$BENCH_DIR/sign_chain.py" "$origin" "$BH/conf/trust-key" \
			refs/heads/main refs/bench/units20 || return 1
	fi
	ap_git "$origin" rev-parse refs/heads/main >"$meta/sha.base" || return 1
	for name in unit1 config units20; do
		sha=$(ap_git "$origin" rev-parse "refs/bench/$name") || return 1
		echo "$sha" >"$meta/sha.$name"
	done
	# One gc'd pack like a real server's, then only main stays advertised; the scenario
	# commits stay in the pack and become reachable when main is pointed at them.
	ap_git "$origin" repack -adq || return 1
	ap_git "$origin" for-each-ref --format='delete %(refname)' refs/bench |
		ap_git "$origin" update-ref --stdin || return 1
	ap_git "$origin" pack-refs --all || return 1
	for name in base unit1 config units20; do
		mkdir -p "$AP_RUN/expect/$repo/$name"
		ap_git "$origin" archive "$(cat "$meta/sha.$name")" systemd caddy/Caddyfile |
			tar -x -C "$AP_RUN/expect/$repo/$name" || return 1
	done
	mapfile -t UNITS <"$meta/units.list"
	for tr in $TRANSPORTS; do
		# guard.settle 0s: the default 10 s settle window (a health watch after every
		# restart) is a deliberate wait, and the shell baseline has none; it is measured
		# once separately (tool autopull-settle, the same config without the guard section).
		ap_user_write "$BH/conf/ap-$tr-settle.yaml" <<-EOF
		# bench config ($repo over $tr); written by bench/run.sh
		repo:
		  url: $(url_for "$repo" "$tr")
		  branch: main
		scope: user
		state_dir: $BH/state/ap-$tr
		units: [systemd/]
		files:
		  - src: caddy/Caddyfile
		    dest: $FILE_DEST
		    reload: [caddy.service]
		EOF
		if [ "$repo" = trust5000 ]; then
			printf 'trust:\n  ssh_allowed_signers: %s\n' "$BH/conf/allowed_signers" |
				ap_as_user tee -a "$BH/conf/ap-$tr-settle.yaml" >/dev/null
		fi
		{ cat "$BH/conf/ap-$tr-settle.yaml"; printf 'guard:\n  settle: 0s\n'; } |
			ap_user_write "$BH/conf/ap-$tr.yaml"
		ap_user_write "$BH/conf/sh-$tr.conf" <<-EOF
		# bench/baseline.sh config ($repo over $tr); the same job as ap-$tr.yaml
		URL=$(url_for "$repo" "$tr")
		BRANCH=main
		STATE=$BH/state/sh-$tr
		UNIT_DIR=$AP_UNIT_DIR
		UNITS_SRC=systemd
		FILE_SRC=caddy/Caddyfile
		FILE_DEST=$FILE_DEST
		FILE_RELOAD=caddy.service
		GIT_PROTO=0
		EOF
	done
	read -r _ nfiles _ nunits _ ndropins <"$meta/counts"
	echo "$repo: $nfiles files, $nunits units, $ndropins drop-ins; pack $(du -sh "$origin" | cut -f1);" \
		"generated in $(( $(ap_now_ms) - t0 )) ms"
}

sha_of() { cat "$AP_RUN/meta/$1/sha.$2"; } # REPO COMMITNAME
target_of() { # SCENARIO → the commit the remote's main points at
	case $1 in noop | first) echo base ;; *) echo "$1" ;; esac
}
set_tip() { # REPO SCENARIO
	ap_git "$AP_HOME/srv/$1.git" update-ref refs/heads/main "$(sha_of "$1" "$(target_of "$2")")"
}

# ---------------------------------------------------------------------------------------------
# Host state: restore and snapshot

# units_stop_all / units_start_all: every unit of the current fixture (one systemctl call).
units_stop_all() { ap_systemctl stop -- "${UNITS[@]}" >/dev/null 2>&1; }
units_start_all() { ap_systemctl start -- "${UNITS[@]}"; }

# host_empty: the empty host of "first": units stopped, unit dir and destinations emptied.
host_empty() {
	units_stop_all
	rm -rf "${AP_UNIT_DIR:?}" "${BH:?}/etc"
	ap_as_user mkdir -p "$AP_UNIT_DIR" || return 1
	ap_systemctl daemon-reload && ap_systemctl reset-failed >/dev/null 2>&1
	return 0
}

# host_restore REPO: installed files = base (with the enable symlinks), the manager reloaded,
# every unit running.
host_restore() {
	local g=$AP_RUN/golden/$1
	rm -rf "${AP_UNIT_DIR:?}" "${BH:?}/etc"
	cp -a "$g/units" "$AP_UNIT_DIR" && cp -a "$g/etc" "$BH/etc" || return 1
	ap_systemctl daemon-reload || return 1
	ap_systemctl reset-failed >/dev/null 2>&1
	units_start_all
}

# state_restore REPO KEY SCENARIO: the state dir of one tool (ap-T, sh-T, git-mirror):
# the golden copy (applied = base), or emptied for "first".
state_restore() {
	local dir=${BH:?}/state/$2
	rm -rf "$dir"
	if [ "$3" = first ]; then
		if [ "$2" = git-mirror ]; then
			ap_as_user git init -q --bare "$dir"
		else
			ap_as_user mkdir -p "$dir"
		fi
	else
		cp -a "$AP_RUN/golden/$1/$2" "$dir"
	fi
}

# unit_snapshot FILE: "unit invocation-id active-state main-pid" per unit, sorted; "-" for
# empty (a unit that is not loaded has no InvocationID). One systemctl call for all units:
# ap_unit_prop reads the same property, one unit per call.
unit_snapshot() {
	ap_systemctl show -p Id -p InvocationID -p ActiveState -p MainPID -- "${UNITS[@]}" |
		awk -F= '
		function out() { if (id != "") print id, (inv == "" ? "-" : inv), (st == "" ? "-" : st), (pid == "" ? 0 : pid) }
		/^Id=/ { id = $2 } /^InvocationID=/ { inv = $2 } /^ActiveState=/ { st = $2 } /^MainPID=/ { pid = $2 }
		/^$/ { out(); id = inv = st = pid = "" }
		END { out() }' | sort >"$1"
}

reload_count() { # lines in the ExecReload log of caddy.service
	local lines=()
	[ -f "$RELOADS" ] && mapfile -t lines <"$RELOADS"
	echo ${#lines[@]}
}

# ---------------------------------------------------------------------------------------------
# Checks after a run. Each prints nothing when fine; problems go to fail().

# check_host REPO SCENARIO TOOL: files, units, reloads.
check_host() {
	local repo=$1 sc=$2 tool=$3 exp want_rev bad unit inv st pid pinv
	local -A expect_changed=() pre_inv=()
	local tag="$repo/$sc/$tool"
	exp=$AP_RUN/expect/$repo/$(target_of "$sc")
	if ! diff -r --no-dereference -x default.target.wants "$exp/systemd" "$AP_UNIT_DIR" >"$TMP/diff" 2>&1; then
		fail "$tag: installed unit files differ from the commit: $(head -c 400 "$TMP/diff")"
	fi
	cmp -s "$exp/caddy/Caddyfile" "$FILE_DEST" || fail "$tag: $FILE_DEST differs from caddy/Caddyfile"
	bad=$(find "$AP_UNIT_DIR" "$BH/etc" -type f \( ! -perm 0644 -o ! -user "$AP_USER" \) -print 2>&1 | head -3)
	[ -z "$bad" ] || fail "$tag: installed files with a wrong mode or owner: $bad"

	case $sc in
	unit1 | units20) while read -r unit; do expect_changed[$unit]=1; done <"$AP_RUN/meta/$repo/$sc.list" ;;
	first) for unit in "${UNITS[@]}"; do expect_changed[$unit]=1; done ;;
	esac
	want_rev=1
	[ "$sc" = first ] && want_rev=0
	while read -r unit pinv _; do pre_inv[$unit]=$pinv; done <"$TMP/pre.units"
	unit_snapshot "$TMP/post.units"
	while read -r unit inv st pid; do
		[ "$st" = active ] || fail "$tag: $unit is $st after the run"
		if [ "$inv" != "${pre_inv[$unit]:-?}" ] && [ "$inv" != - ]; then
			[ -n "${expect_changed[$unit]:-}" ] || fail "$tag: $unit was restarted but did not change"
			# The restart must run the new definition (daemon-reload before restart).
			local envv=()
			mapfile -d '' -t envv <"/proc/$pid/environ" 2>/dev/null
			[[ " ${envv[*]} " == *" BENCH_REV=$want_rev "* ]] ||
				fail "$tag: $unit (pid $pid) does not run rev $want_rev of its unit file"
		else
			[ -z "${expect_changed[$unit]:-}" ] || fail "$tag: $unit changed but was not restarted"
		fi
	done <"$TMP/post.units"
	local want_reloads=$PRE_RELOADS
	[ "$sc" = config ] && want_reloads=$((PRE_RELOADS + 1))
	[ "$(reload_count)" = "$want_reloads" ] ||
		fail "$tag: caddy.service reloaded $(( $(reload_count) - PRE_RELOADS )) times (want $((want_reloads - PRE_RELOADS)))"
}

# check_applied TAG FILE SHA: the state file names the target commit.
check_applied() {
	local got=""
	[ -f "$2" ] && read -r got <"$2"
	[ "$got" = "$3" ] || fail "$1: recorded commit '${got:0:12}', want '${3:0:12}'"
}

# ---------------------------------------------------------------------------------------------
# One measured run

# tool_argv TOOL REPO TRANSPORT [SCENARIO]: sets ARGV to the aptime arguments of TOOL.
tool_argv() {
	local url
	url=$(url_for "$2" "$3")
	case $1 in
	autopull) ARGV=(-u "$AP_USER" -- "$AP_BIN" --user -c "$BH/conf/ap-$3.yaml" apply) ;;
	autopull-settle) ARGV=(-u "$AP_USER" -- "$AP_BIN" --user -c "$BH/conf/ap-$3-settle.yaml" apply) ;;
	shell) ARGV=(-d "$AP_HOME" -- bash "$BENCH_BIN/baseline.sh" "$BH/conf/sh-$3.conf") ;;
	git-ls-remote) ARGV=(-u "$AP_USER" -- git -c protocol.version=0 ls-remote "$url" refs/heads/main) ;;
	git-fetch) ARGV=(-u "$AP_USER" -- git -c protocol.version=0 --git-dir="$MIRROR" fetch -q --no-tags "$url"
		"+refs/heads/main:refs/remotes/origin/main") ;;
	# shellcheck disable=SC2046 # one word per option and unit
	floor) ARGV=(-u "$AP_USER" -- "$FLOOR" -g "$MIRROR" -u "$url" -p 0 $(floor_jobs "$2" "$4")) ;;
	esac
}

# floor_jobs REPO SCENARIO: the floor helper's bus work for the tick (bench/floor.c).
floor_jobs() {
	local u
	case $2 in
	unit1 | units20) echo -r; while read -r u; do echo "-R $u"; done <"$AP_RUN/meta/$1/$2.list" ;;
	config) echo "-L caddy.service" ;;
	first) echo -r; for u in "${UNITS[@]}"; do echo "-S $u"; done ;;
	esac
}

# floor_files REPO SCENARIO: the files of the tick put in place, untimed (the floor installs
# nothing itself), on the host restored for the tick.
floor_files() {
	local exp=$AP_RUN/expect/$1/$(target_of "$2") u
	case $2 in
	first) cp -a "$AP_RUN/golden/$1/units/." "$AP_UNIT_DIR/" && cp -a "$AP_RUN/golden/$1/etc" "$BH/etc" ;;
	unit1 | units20)
		while read -r u; do
			install -m 0644 -o "$AP_UID" -g "$AP_GID" "$exp/systemd/$u" "$AP_UNIT_DIR/$u" || return 1
		done <"$AP_RUN/meta/$1/$2.list" ;;
	config) install -m 0644 -o "$AP_UID" -g "$AP_GID" "$exp/caddy/Caddyfile" "$FILE_DEST" ;;
	esac
}

# tick MODE REPO SCENARIO TRANSPORT TOOL ROUND: restore, run (MODE time: timed; hwm: the
# peak RSS of the process alone, see aptime -H), check, record one JSON line.
tick() {
	local mode=$1 repo=$2 sc=$3 tr=$4 tool=$5 round=$6 res rc ok=true sha key f0=$N_FAIL
	local tag="$repo/$sc/$tr/$tool#$round"
	sha=$(sha_of "$repo" "$(target_of "$sc")")
	case $tool in
	autopull | autopull-settle | shell | floor)
		key=ap-$tr
		[ "$tool" = shell ] && key=sh-$tr
		[ "$tool" = floor ] && key=git-mirror
		if [ "$sc" = first ]; then host_empty; else host_restore "$repo"; fi || fail "$tag: restore failed"
		state_restore "$repo" "$key" "$sc"
		unit_snapshot "$TMP/pre.units"
		PRE_RELOADS=$(reload_count)
		if [ "$tool" = floor ]; then floor_files "$repo" "$sc" || fail "$tag: cannot put the files in place"; fi ;;
	git-fetch) state_restore "$repo" git-mirror "$sc" ;;
	esac
	tool_argv "$tool" "$repo" "$tr" "$sc"
	local out=$TMP/run.out err=$TMP/run.err
	[ "$tool" = shell ] && out=$WORKER_OUT err=$WORKER_ERR
	local flags=(-t "$CMD_TIMEOUT" -o "$out" -e "$err")
	[ "$mode" = hwm ] && flags+=(-H)
	if [ "$tool" = shell ]; then
		res=$(worker_run "${flags[@]}" "${ARGV[@]}")
	else
		res=$("$APTIME" "${flags[@]}" "${ARGV[@]}")
	fi
	# aptime prints one JSON object; anything else (it could not run) is a failed run.
	if [[ $res =~ ^\{.*\"rc\":\ ([0-9]+).*\}$ ]]; then
		rc=${BASH_REMATCH[1]}
	else
		rc=999 res='{"ms": 0, "rc": 999, "maxrss_kb": 0, "timed_out": false}'
	fi
	if [ "$rc" != 0 ]; then
		fail "$tag: exit $rc: $(head -c 600 "$err")"
	else
		case $tool in
		autopull | autopull-settle)
			check_host "$repo" "$sc" "$tool"
			check_applied "$tag" "$BH/state/$key/applied" "$sha" ;;
		shell)
			check_host "$repo" "$sc" "$tool"
			check_applied "$tag" "$BH/state/$key/applied" "$sha" ;;
		floor)
			check_host "$repo" "$sc" "$tool"
			check_mirror "$tag" "$sha" ;;
		git-fetch) check_mirror "$tag" "$sha" ;;
		git-ls-remote)
			grep -q "^$sha	refs/heads/main\$" "$TMP/run.out" ||
				fail "$tag: ls-remote did not print ${sha:0:12} refs/heads/main" ;;
		esac
	fi
	[ "$N_FAIL" = "$f0" ] || ok=false
	printf '{"mode":"%s","repo":"%s","scenario":"%s","transport":"%s","tool":"%s","round":%d,"ok":%s,"m":%s}\n' \
		"$mode" "$repo" "$sc" "$tr" "$tool" "$round" "$ok" "$res" >>"$SAMPLES"
}

check_mirror() { # TAG SHA: the floor's mirror fetched the target commit
	[ "$(ap_git "$MIRROR" rev-parse refs/remotes/origin/main 2>/dev/null)" = "$2" ] ||
		fail "$1: the mirror's refs/remotes/origin/main is not ${2:0:12}"
}

tools_for() { # SCENARIO: the tools measured in it
	case $1 in
	noop) echo "autopull shell floor git-ls-remote git-fetch" ;;
	*) echo "autopull shell floor git-fetch" ;;
	esac
}

# rotate N WORDS...: WORDS rotated left by N (the tool order changes every round).
rotate() {
	local n=$1; shift
	local a=("$@") i
	n=$((n % ${#a[@]}))
	for ((i = 0; i < ${#a[@]}; i++)); do printf '%s ' "${a[(i + n) % ${#a[@]}]}"; done
}

# overhead ROUND: what launching costs here, for the notes: aptime → /bin/true as the user,
# and the nsenter/setpriv/env wrapper the shell baseline pays once per run.
overhead() {
	local res
	res=$("$APTIME" -u "$AP_USER" -- /bin/true)
	printf '{"mode":"time","repo":"-","scenario":"overhead","transport":"-","tool":"exec-true","round":%d,"ok":true,"m":%s}\n' "$1" "$res" >>"$SAMPLES"
	res=$("$APTIME" -d "$AP_HOME" -- "${NS_WRAP[@]}" /bin/true)
	printf '{"mode":"time","repo":"-","scenario":"overhead","transport":"-","tool":"nsenter-wrapper","round":%d,"ok":true,"m":%s}\n' "$1" "$res" >>"$SAMPLES"
}

# ---------------------------------------------------------------------------------------------
# Golden starting state of a repo: each tool deploys base once from an empty state dir.

make_golden() {
	local repo=$1 g=$AP_RUN/golden/$1 tr tool key f0=$N_FAIL
	rm -rf "$g"
	mkdir -p "$g"
	set_tip "$repo" first
	# Drop what the previous fixture left running.
	host_empty
	# autopull over the first transport sets up the host from empty...
	tr=${TRANSPORTS%% *}
	state_restore "$repo" "ap-$tr" first
	unit_snapshot "$TMP/pre.units"
	PRE_RELOADS=$(reload_count)
	tool_argv autopull "$repo" "$tr"
	"$APTIME" -t "$CMD_TIMEOUT" -o "$TMP/golden.out" -e "$TMP/golden.err" "${ARGV[@]}" >/dev/null
	check_host "$repo" first autopull
	check_applied "$repo/golden/ap-$tr" "$BH/state/ap-$tr/applied" "$(sha_of "$repo" base)"
	[ "$N_FAIL" = "$f0" ] || { cat "$TMP/golden.err" >&2; return 1; }
	cp -a "$AP_UNIT_DIR" "$g/units" && cp -a "$BH/etc" "$g/etc" && cp -a "$BH/state/ap-$tr" "$g/ap-$tr" || return 1
	# ...then every other tool/transport takes its own state from one run on that host.
	for key in $(for tr in $TRANSPORTS; do echo "ap-$tr sh-$tr"; done); do
		[ -d "$g/$key" ] && continue
		tool=autopull
		[ "${key%%-*}" = sh ] && tool=shell
		state_restore "$repo" "$key" first
		tool_argv "$tool" "$repo" "${key#*-}"
		if [ "$tool" = shell ]; then
			worker_run -t "$CMD_TIMEOUT" -o "$WORKER_OUT" -e "$WORKER_ERR" "${ARGV[@]}" >/dev/null
			cp "$WORKER_ERR" "$TMP/golden.err"
		else
			"$APTIME" -t "$CMD_TIMEOUT" -o "$TMP/golden.out" -e "$TMP/golden.err" "${ARGV[@]}" >/dev/null
		fi
		check_applied "$repo/golden/$key" "$BH/state/$key/applied" "$(sha_of "$repo" base)"
		[ "$N_FAIL" = "$f0" ] || { cat "$TMP/golden.err" >&2; return 1; }
		cp -a "$BH/state/$key" "$g/$key" || return 1
	done
	state_restore "$repo" git-mirror first
	ap_as_user git --git-dir="$MIRROR" fetch -q --no-tags "$(url_for "$repo" file)" \
		"+refs/heads/main:refs/remotes/origin/main" || return 1
	cp -a "$MIRROR" "$g/git-mirror"
}

# ---------------------------------------------------------------------------------------------
# Instruction counts: the one-change plan (dry run from the local mirror) under callgrind.

callgrind_plan() {
	local repo=$1 out=$AP_RUN/callgrind/$1.out ir res
	host_restore "$repo" && state_restore "$repo" ap-file noop || return 1
	set_tip "$repo" unit1
	# Fetch the change into the mirror first (a dry run fetches but records nothing).
	ap_as_user timeout "$CMD_TIMEOUT" "$AP_BIN" --user -c "$BH/conf/ap-file.yaml" --dry-run --json \
		>"$TMP/cg.plan" 2>"$TMP/cg.err" || { fail "$repo/callgrind: dry run failed: $(head -c 300 "$TMP/cg.err")"; return 1; }
	rm -f "$out"
	ap_as_user timeout "$CMD_TIMEOUT" valgrind --tool=callgrind --callgrind-out-file="$out" \
		"$AP_BIN" --user -c "$BH/conf/ap-file.yaml" --dry-run --no-fetch --json \
		>"$TMP/cg.plan" 2>"$TMP/cg.err" || { fail "$repo/callgrind: run failed: $(tail -c 300 "$TMP/cg.err")"; return 1; }
	grep -q '"svc-007.service"' "$TMP/cg.plan" || fail "$repo/callgrind: the plan does not name svc-007.service"
	ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$out")
	[ -n "$ir" ] || { fail "$repo/callgrind: no totals in $out"; return 1; }
	callgrind_annotate --inclusive=no "$out" 2>/dev/null | sed -n '1,60p' >"$AP_RUN/callgrind/$repo.top.txt"
	# Inclusive costs, for the per-function breakdown in the report.
	callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null >"$AP_RUN/callgrind/$repo.incl.txt"
	printf '{"repo":"%s","ir":%s}\n' "$repo" "$ir" >>"$AP_RUN/callgrind.jsonl"
	echo "callgrind $repo: Ir $ir"
}

