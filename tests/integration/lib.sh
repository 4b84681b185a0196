# shellcheck shell=bash
# Helpers for the autopull integration tests; sourced by run.sh and by every t-*.sh.
#
# Owns: the dedicated test user, a real `systemd --user` manager for it (PLATFORM.md §0),
# a smart-HTTP git server, fixture git repos, and the assertion/result bookkeeping.
# Every process this harness starts is recorded as "pid starttime" in $AP_RUN/pids/<tag> and
# is stopped by that pid only (never by name); the start time guards against pid reuse.
# Does not: touch any gitconfig (fixture repos are owned by the test user instead), or
# install a trap when merely sourced (only run.sh calls ap_install_cleanup).
#
# Results of checks go to $AP_RESULTS, one "ok|FAIL<TAB>test<TAB>message" line each, so that
# checks made in child processes (each t-*.sh runs in its own bash) are counted by run.sh.

# Defaults; values already exported by run.sh win.
: "${AP_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
: "${AP_ROOT:=$(cd "$AP_DIR/../.." && pwd)}"
: "${AP_USER:=aptest}"
: "${AP_RUN:=/tmp/aptest-run}"          # harness state: pidfiles, logs, results, scratch
: "${AP_RESULTS:=$AP_RUN/results}"
: "${AP_TEST:=adhoc}"
: "${AP_PY:=/usr/bin/python3}"           # not the pyenv shim: the test user must run it too
: "${AP_BINDIR:=$AP_RUN-bin}"          # binaries and helper scripts the test user runs
: "${AP_BIN:=$AP_BINDIR/autopull}"
: "${AP_CMD_TIMEOUT:=60}"                # seconds, for every single autopull/git/systemctl call
export AP_DIR AP_ROOT AP_USER AP_RUN AP_RESULTS AP_PY AP_BINDIR AP_BIN AP_CMD_TIMEOUT

AP_JQ="$AP_DIR/jq.py"

# ---------------------------------------------------------------------------------------------
# Output and results

ap_log() { printf '%s\n' "$*" >&2; }
ap_die() { printf 'aptest: fatal: %s\n' "$*" >&2; exit 1; }

ap_now_ms() { local t; t=$(date +%s%N); echo $((t / 1000000)); }

ap_ok() {
	printf '  ok    %s\n' "$*"
	printf 'ok\t%s\t%s\n' "$AP_TEST" "$*" >>"$AP_RESULTS"
}

ap_fail() {
	printf '  FAIL  %s\n' "$*"
	printf 'FAIL\t%s\t%s\n' "$AP_TEST" "$*" >>"$AP_RESULTS"
	return 1
}

# ap_check DESC CMD...: one check, ok if CMD exits 0.
ap_check() {
	local desc=$1; shift
	if "$@"; then ap_ok "$desc"; else ap_fail "$desc"; fi
}

# ap_check_eq DESC EXPECTED ACTUAL
ap_check_eq() {
	if [ "$2" = "$3" ]; then ap_ok "$1"; else ap_fail "$1 (expected '$2', got '$3')"; fi
}

# _ap_jq_call MODE FILE EXPR: evaluate through one long-lived `jq.py --serve` coprocess per
# shell (python start-up costs ~60 ms here, a request <1 ms); falls back to one process per
# call if the coprocess is gone. MODE is "check" or "value"; output as the CLI's.
_ap_jq_call() {
	local mode=$1 file=$2 expr=$3 req rc n line wfd rfd
	# Started only by the test's main shell (a coprocess started in $(...) would be lost),
	# but subshells may use it: requests and answers are strictly one after the other.
	if [ "$BASHPID" = "$$" ] && { [ -z "${APJQ_PID:-}" ] || ! ap_pid_alive "$APJQ_PID"; }; then
		coproc APJQ { exec "$AP_PY" "$AP_JQ" --serve; }
	fi
	wfd=${APJQ[1]:-} rfd=${APJQ[0]:-}
	_ap_json_str "$file"; req="{\"file\": $REPLY, "
	_ap_json_str "$expr"; req+="\"expr\": $REPLY, \"value\": "
	if [ "$mode" = value ]; then req+="true}"; else req+="false}"; fi
	if [ -n "$wfd" ] && [ -n "$rfd" ] && ap_pid_alive "${APJQ_PID:-}" &&
		{ printf '%s\n' "$req" >&"$wfd"; } 2>/dev/null &&
		read -r -t "$AP_CMD_TIMEOUT" rc n <&"$rfd"; then
		while [ "$n" -gt 0 ] && IFS= read -r -t 5 line <&"$rfd"; do
			if [ "$mode" = value ] && [ "$rc" = 0 ]; then printf '%s\n' "$line"; else printf '%s\n' "$line" >&2; fi
			n=$((n - 1))
		done
		return "$rc"
	fi
	if [ "$mode" = value ]; then "$AP_PY" "$AP_JQ" -v "$file" "$expr"; else "$AP_PY" "$AP_JQ" "$file" "$expr"; fi
}

# _ap_json_str STRING: REPLY = STRING as a JSON string literal (no subshell: forks cost
# ~10 ms each on the test machines).
_ap_json_str() {
	local v=$1
	v=${v//\\/\\\\}; v=${v//\"/\\\"}
	v=${v//$'\n'/\\n}; v=${v//$'\t'/\\t}; v=${v//$'\r'/\\r}
	REPLY="\"$v\""
}

# ap_jq DESC FILE EXPR: a python expression over the JSON document (see jq.py).
ap_jq() {
	if _ap_jq_call check "$2" "$3"; then ap_ok "$1"; else ap_fail "$1"; fi
}

# ap_jqv FILE EXPR: print a value from a JSON document (strings raw, the rest as JSON).
ap_jqv() { _ap_jq_call value "$1" "$2"; }

# ap_count [TEST]: "passed failed" counted from the results file.
ap_count() {
	local p=0 f=0 st t _
	[ -f "$AP_RESULTS" ] || { echo "0 0"; return; }
	while IFS=$'\t' read -r st t _; do
		[ -n "${1:-}" ] && [ "$t" != "$1" ] && continue
		case $st in ok) p=$((p + 1)) ;; FAIL) f=$((f + 1)) ;; esac
	done <"$AP_RESULTS"
	echo "$p $f"
}

# ap_test_end: run.sh calls it after a t-*.sh was sourced to its last line. A file that
# exits half-way (an `exit 0` after its first case) leaves no mark and is not a pass.
ap_test_end() {
	printf 'end\t%s\t-\n' "$AP_TEST" >>"$AP_RESULTS"
}

# ap_test_verdict NAME RC [OWN]: after NAME ran and exited with RC, record a failure for a
# timeout, a crash (non-zero exit without a failed check), an early end (no ap_test_end) and
# a file that recorded no check at all (OWN: how many it recorded itself, when the harness has
# added checks of its own under NAME since); VERDICT, P and F (checks passed and failed).
ap_test_verdict() {
	local name=$1 rc=$2
	read -r P F < <(ap_count "$name")
	local own=${3:-$((P + F))}
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		AP_TEST=$name ap_fail "$name: timed out after ${AP_TEST_TIMEOUT}s"
	elif [ "$rc" -ne 0 ]; then
		[ "$F" -eq 0 ] && AP_TEST=$name ap_fail "$name: exited with status $rc"
	elif ! grep -q "^end	$name	" "$AP_RESULTS"; then
		AP_TEST=$name ap_fail "$name: ended before its last line (exit 0 half-way?)"
	elif [ "$own" -eq 0 ]; then
		AP_TEST=$name ap_fail "$name: recorded no check"
	fi
	read -r P F < <(ap_count "$name")
	if [ "$F" -eq 0 ]; then VERDICT=PASS; else VERDICT=FAIL; fi
}

# ap_summary: the last line is exactly "N passed, M failed"; returns non-zero if M > 0.
ap_summary() {
	local p f
	read -r p f < <(ap_count)
	if [ "$f" -gt 0 ]; then
		echo "failed checks:"
		awk -F'\t' '$1 == "FAIL" { printf "  %s: %s\n", $2, $3 }' "$AP_RESULTS"
	fi
	echo "$p passed, $f failed"
	[ "$f" -eq 0 ]
}

# ---------------------------------------------------------------------------------------------
# Process bookkeeping: by pid + start time, never by name

# ap_pid_starttime PID: field 22 of /proc/PID/stat (clock ticks since boot); empty if gone.
ap_pid_starttime() {
	local s rest
	read -r s 2>/dev/null <"/proc/$1/stat" || return 1
	rest=${s##*) }
	# shellcheck disable=SC2086
	set -- $rest
	echo "${20}"
}

# ap_pid_alive PID [STARTTIME]: running (not a zombie) and, if given, the same process.
ap_pid_alive() {
	local s rest
	[ -n "${1:-}" ] || return 1
	{ read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
	rest=${s##*) }
	# shellcheck disable=SC2086
	set -- "$1" "${2:-}" $rest
	[ "$3" != Z ] && [ "$3" != X ] || return 1
	[ -z "$2" ] || [ "$2" = "${22}" ]
}

# ap_track TAG PID: remember a started process for cleanup.
ap_track() {
	mkdir -p "$AP_RUN/pids"
	printf '%s %s\n' "$2" "$(ap_pid_starttime "$2")" >"$AP_RUN/pids/$1"
}

# ap_tracked_pid TAG: print the pid recorded under TAG if that process still runs.
ap_tracked_pid() {
	local pid st
	[ -f "$AP_RUN/pids/$1" ] || return 1
	read -r pid st <"$AP_RUN/pids/$1" || return 1
	ap_pid_alive "$pid" "$st" && echo "$pid"
}

# ap_kill_wait PID STARTTIME SECONDS: SIGTERM, wait (50 ms polls), then SIGKILL; reap if ours.
ap_kill_wait() {
	local pid=$1 st=$2 limit=$(( ${3:-5} * 20 )) i=0
	if ap_pid_alive "$pid" "$st"; then
		kill -TERM "$pid" 2>/dev/null
		while ap_pid_alive "$pid" "$st" && [ $i -lt $limit ]; do sleep 0.05; i=$((i + 1)); done
		if ap_pid_alive "$pid" "$st"; then
			ap_log "aptest: pid $pid did not exit after SIGTERM in ${3:-5}s, sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null
			i=0
			while ap_pid_alive "$pid" "$st" && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
		fi
	fi
	ap_pid_alive "$pid" "$st" && return 1
	wait "$pid" 2>/dev/null	# reap it if it is our child; harmless otherwise
	return 0
}

# ap_untrack_stop TAG [SECONDS]: stop the process recorded under TAG and forget it.
ap_untrack_stop() {
	local pid st rc=0
	[ -f "$AP_RUN/pids/$1" ] || return 0
	read -r pid st <"$AP_RUN/pids/$1"
	if [ -n "$pid" ]; then ap_kill_wait "$pid" "$st" "${2:-5}" || rc=1; fi
	[ $rc -eq 0 ] && rm -f "$AP_RUN/pids/$1"
	return $rc
}

# ---------------------------------------------------------------------------------------------
# The per-run binary directory

# ap_bindir_fresh: an empty $AP_BINDIR of this run's own (whatever an earlier run left there is
# removed: no test may pass because of it), holding the helper scripts the test user runs
# (copies, since the checkout may sit below a directory only root can enter).
ap_bindir_fresh() {
	rm -rf "$AP_BINDIR" && install -d -m 0755 "$AP_BINDIR" || ap_die "cannot create $AP_BINDIR"
	install -m 0644 "$AP_DIR/githttp.py" "$AP_DIR/receiver.py" "$AP_BINDIR/" ||
		ap_die "cannot copy the helper scripts to $AP_BINDIR"
}

# ap_bindir_add SRC [NAME]: install the executable SRC as $AP_BINDIR/NAME (default SRC's name);
# prints the path.
ap_bindir_add() {
	local dst=$AP_BINDIR/${2:-${1##*/}}
	install -m 0755 "$1" "$dst" || return 1
	echo "$dst"
}

# ---------------------------------------------------------------------------------------------
# The test user

ap_user_vars() {
	AP_USER=${1:-$AP_USER}
	AP_UID=$(id -u "$AP_USER") || return 1
	AP_GID=$(id -g "$AP_USER")
	AP_HOME=$(getent passwd "$AP_USER" | cut -d: -f6)
	AP_RUNTIME=/run/user/$AP_UID
	AP_UNIT_DIR=$AP_HOME/.config/systemd/user
	AP_STATE_DIR=$AP_HOME/.local/state/autopull
	AP_CFG=$AP_HOME/.config/autopull/autopull.yaml
	export AP_USER AP_UID AP_GID AP_HOME AP_RUNTIME AP_UNIT_DIR AP_STATE_DIR AP_CFG
}
if id -u "$AP_USER" >/dev/null 2>&1; then ap_user_vars "$AP_USER"; fi

# Two cgroups of our own, so that leftovers can be found without pidfiles: NAME.slice is
# delegated to the test user's manager; $AP_HARNESS_CG.slice (root's) holds the HTTP server
# and the running t-*.sh with everything they start.
AP_HARNESS_CG=$AP_USER-harness

# ap_cgroup_dirs NAME: NAME.slice in each cgroup hierarchy that exists here.
ap_cgroup_dirs() {
	local h
	for h in unified systemd; do
		[ -d "/sys/fs/cgroup/$h" ] && echo "/sys/fs/cgroup/$h/$1.slice"
	done
}

# ap_cgroup_enter NAME PID: move PID into NAME.slice (which must exist).
ap_cgroup_enter() {
	local d
	for d in $(ap_cgroup_dirs "$1"); do echo "$2" >"$d/cgroup.procs" || return 1; done
}

# ap_cgroup_pids NAME: every process left in NAME.slice.
ap_cgroup_pids() {
	local d
	for d in $(ap_cgroup_dirs "$1"); do
		[ -d "$d" ] && find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null
	done | sort -un
}

# ap_cgroup_clear NAME: kill what is left inside our own slices (they hold only processes
# this harness started), then remove the directories, deepest first. Bounded: 2 s.
ap_cgroup_clear() {
	local name=$1 i=0 pid d left
	while :; do
		left=$(ap_cgroup_pids "$name")
		[ -z "$left" ] && break
		[ $i -ge 40 ] && { ap_log "aptest: processes stuck in $name.slice: $left"; return 1; }
		[ $i -eq 0 ] && ap_log "aptest: killing what is left in $name.slice:" "${left//$'\n'/ }"
		for pid in $left; do kill -KILL "$pid" 2>/dev/null; done
		sleep 0.05; i=$((i + 1))
	done
	for d in $(ap_cgroup_dirs "$name"); do
		[ -d "$d" ] || continue
		i=0
		while [ -d "$d" ] && [ $i -lt 40 ]; do
			find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
			[ -d "$d" ] && sleep 0.05
			i=$((i + 1))
		done
		[ -d "$d" ] && { ap_log "aptest: cannot remove $d"; return 1; }
	done
	return 0
}

# ap_user_setup NAME: as root; idempotent. Creates the user, a fresh /run/user/UID and fresh
# cgroup slices. Refuses while a manager of a previous run is still alive (ap_stale_cleanup
# stops that first).
ap_user_setup() {
	local name=${1:-$AP_USER} d
	if ! id -u "$name" >/dev/null 2>&1; then
		useradd -m -s /bin/bash "$name" || ap_die "useradd $name failed"
		ap_user_vars "$name"
		: >"$AP_HOME/$AP_USER_MARK" || ap_die "cannot mark $AP_HOME as the harness's"
	fi
	ap_user_vars "$name"
	ap_stale_cleanup "$name"
	ap_home_fresh
	rm -rf "$AP_RUNTIME"
	install -d -m 0700 -o "$AP_UID" -g "$AP_GID" "$AP_RUNTIME" || ap_die "cannot create $AP_RUNTIME"
	for d in $(ap_cgroup_dirs "$name"); do
		mkdir -p "$d" && chown -R "$AP_UID:$AP_GID" "$d" || ap_die "cannot set up cgroup $d"
	done
	for d in $(ap_cgroup_dirs "$AP_HARNESS_CG"); do
		mkdir -p "$d" || ap_die "cannot set up cgroup $d"
	done
}

# The harness's users carry this root-owned file in their home; a user without it is somebody
# else's, and its home is never emptied.
AP_USER_MARK=.autopull-test-user

# ap_home_fresh: the test user's home as useradd made it (skeleton files and the mark): the
# state, units, repos and keys of an earlier run are gone, so no test can depend on them.
ap_home_fresh() {
	[ -n "${AP_HOME:-}" ] && [ "$AP_HOME" != / ] || ap_die "no home for $AP_USER"
	[ -f "$AP_HOME/$AP_USER_MARK" ] && [ "$(stat -c %u "$AP_HOME/$AP_USER_MARK")" = 0 ] ||
		ap_die "user $AP_USER exists but was not made by this harness (no $AP_HOME/$AP_USER_MARK);" \
			"set AP_USER to another name"
	find "$AP_HOME" -mindepth 1 -maxdepth 1 ! -name "$AP_USER_MARK" -exec rm -rf {} + ||
		ap_die "cannot empty $AP_HOME"
	cp -a /etc/skel/. "$AP_HOME/" 2>/dev/null
	chown -R "$AP_UID:$AP_GID" "$AP_HOME" && chown 0:0 "$AP_HOME/$AP_USER_MARK" ||
		ap_die "cannot reset $AP_HOME"
}

# ap_stale_cleanup NAME: leftovers of a killed run. Stops the processes recorded in the
# pidfiles (only if the recorded start time still matches), then whatever is left in our
# own cgroups (even if the pidfiles are lost), and removes the cgroups.
ap_stale_cleanup() {
	local name=${1:-$AP_USER} f tag
	if [ -d "$AP_RUN/pids" ]; then
		# The manager last: the other processes may be using it.
		for f in "$AP_RUN/pids"/* "$AP_RUN/pids/manager"; do
			[ -f "$f" ] || continue
			tag=${f##*/}
			[ "$tag" = manager ] && [ "$(ls "$AP_RUN/pids")" != manager ] && continue
			ap_log "aptest: stopping leftover '$tag' from an earlier run (pid $(cut -d' ' -f1 "$f"))"
			ap_untrack_stop "$tag" 5 || ap_log "aptest: leftover '$tag' would not stop"
			rm -f "$f"
		done
	fi
	ap_cgroup_clear "$AP_HARNESS_CG" || ap_die "cannot clear the cgroup $AP_HARNESS_CG.slice"
	ap_cgroup_clear "$name" || ap_die "cannot clear the cgroup slices of $name"
}

# ap_user_exec CMD...: replace the current (sub)shell with CMD as the test user, clean
# environment, cwd = its home. `( ap_user_exec CMD ) &` makes $! the pid of CMD itself.
ap_user_exec() {
	cd "$AP_HOME" 2>/dev/null || cd /
	exec setpriv --reuid="$AP_UID" --regid="$AP_GID" --init-groups \
		env -i HOME="$AP_HOME" USER="$AP_USER" LOGNAME="$AP_USER" \
		XDG_RUNTIME_DIR="$AP_RUNTIME" PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
		"$@"
}

# ap_as_user CMD...: run CMD as the test user (see ap_user_exec) and wait for it.
ap_as_user() { (ap_user_exec "$@"); }

# ap_user_write FILE: stdin → FILE, owned by the test user (parents created and owned too).
ap_user_write() {
	ap_as_user mkdir -p "$(dirname "$1")" && ap_as_user tee "$1" >/dev/null
}

# ---------------------------------------------------------------------------------------------
# The systemd user manager

# ap_manager_start NAME: PLATFORM.md §0. Records the pid that becomes systemd (the script
# writes its own $$ before it execs setpriv, which execs systemd, so that pid is the manager
# whatever setsid does) and waits up to 10 s for the private socket.
ap_manager_start() {
	local name=${1:-$AP_USER} script log pidf t0 i pid st d
	ap_user_vars "$name"
	mkdir -p "$AP_RUN"
	script=$AP_RUN/manager.sh log=$AP_RUN/manager.log pidf=$AP_RUN/manager.selfpid
	rm -f "$pidf" "$AP_RUNTIME/systemd/private"
	{
		echo "# generated by tests/integration/lib.sh: $name's systemd --user manager"
		echo "echo \$\$ > $pidf"
		for d in $(ap_cgroup_dirs "$name"); do echo "echo \$\$ > $d/cgroup.procs || exit 1"; done
		echo "mount --make-rprivate / || exit 1"
		echo "mount -t tmpfs tmpfs /run/systemd || exit 1"
		echo "mkdir -p /run/systemd/system"
		echo "exec setpriv --reuid=$AP_UID --regid=$AP_GID --init-groups \\"
		echo "  env -i HOME=$AP_HOME USER=$name LOGNAME=$name SHELL=/bin/bash \\"
		echo "  XDG_RUNTIME_DIR=$AP_RUNTIME PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \\"
		echo "  /lib/systemd/systemd --user"
	} >"$script"
	t0=$(ap_now_ms)
	setsid unshare --mount bash "$script" >"$log" 2>&1 </dev/null 9>&- &
	i=0
	while [ ! -s "$pidf" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
	pid=$(cat "$pidf" 2>/dev/null)
	[ -n "$pid" ] || { cat "$log" >&2; ap_die "manager script did not start (log above)"; }
	st=$(ap_pid_starttime "$pid")
	ap_track manager "$pid"
	i=0
	while [ ! -S "$AP_RUNTIME/systemd/private" ] && [ $i -lt 200 ]; do
		ap_pid_alive "$pid" "$st" || break
		sleep 0.05; i=$((i + 1))
	done
	if [ ! -S "$AP_RUNTIME/systemd/private" ]; then
		ap_log "aptest: systemd --user for $name did not come up; log $log:"
		cat "$log" >&2
		ap_untrack_stop manager 2
		ap_die "manager start failed"
	fi
	AP_MANAGER_PID=$pid
	AP_MANAGER_START_MS=$(( $(ap_now_ms) - t0 ))
	export AP_MANAGER_PID AP_MANAGER_START_MS
	# The socket exists; let startup finish (bounded, not fatal: "degraded" is fine).
	i=0
	while [ $i -lt 100 ]; do
		case $(ap_systemctl is-system-running 2>/dev/null) in
		running|degraded) break ;;
		esac
		sleep 0.05; i=$((i + 1))
	done
	AP_MANAGER_READY_MS=$(( $(ap_now_ms) - t0 ))
	export AP_MANAGER_READY_MS
}

# ap_manager_stop [NAME]: kill <pid>, 5 s grace, then SIGKILL; clear and remove the slices.
ap_manager_stop() {
	local name=${1:-$AP_USER} rc=0
	ap_untrack_stop manager 5 || rc=1
	ap_cgroup_clear "$name" || rc=1
	unset AP_MANAGER_PID
	return $rc
}

# ap_systemctl ARGS...: systemctl --user inside the manager's mount namespace (its
# sd_booted() check needs /run/systemd/system). For assertions only: autopull itself must
# reach the manager over sd-bus without any of this.
ap_systemctl() {
	[ -n "${AP_MANAGER_PID:-}" ] || { ap_log "aptest: no manager running"; return 1; }
	timeout "$AP_CMD_TIMEOUT" nsenter -t "$AP_MANAGER_PID" -m \
		setpriv --reuid="$AP_UID" --regid="$AP_GID" --init-groups \
		env -i HOME="$AP_HOME" USER="$AP_USER" XDG_RUNTIME_DIR="$AP_RUNTIME" \
		PATH=/usr/bin:/bin LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0 \
		systemctl --user --no-pager --no-ask-password "$@"
}

# ap_unit_prop UNIT PROP
ap_unit_prop() { ap_systemctl show -p "$2" --value -- "$1"; }

# ap_wait_prop UNIT PROP VALUE [SECONDS]: poll (50 ms) until the property has VALUE.
ap_wait_prop() {
	local i=0 limit=$(( ${4:-5} * 20 ))
	while [ $i -lt $limit ]; do
		[ "$(ap_unit_prop "$1" "$2")" = "$3" ] && return 0
		sleep 0.05; i=$((i + 1))
	done
	return 1
}

# ap_wait_file_grep FILE PATTERN [SECONDS]: poll (50 ms) until FILE contains PATTERN (fixed).
ap_wait_file_grep() {
	local i=0 limit=$(( ${3:-5} * 20 ))
	while [ $i -lt $limit ]; do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05; i=$((i + 1))
	done
	return 1
}

# ---------------------------------------------------------------------------------------------
# Smart-HTTP git server (githttp.py runs git-http-backend as CGI), as the test user

ap_port_free() {
	"$AP_PY" - "$1" <<-'EOF'
	import socket, sys
	s = socket.socket()
	try:
	    s.bind(("127.0.0.1", int(sys.argv[1])))
	except OSError:
	    sys.exit(1)
	EOF
}

# ap_http_start DIR [PORT] [TAG] [GITHTTP_ARGS...]: serve the bare repos under DIR on
# 127.0.0.1:PORT (random free port in 20000-29999 if not given; extra arguments such as
# --tls-cert/--tls-key go to githttp.py). Sets AP_HTTP_PID, AP_HTTP_PORT, AP_HTTP_ROOT.
ap_http_start() {
	local dir=$1 port=${2:-} tag=${3:-http} pid i ready log
	local -a extra=("${@:4}")
	log=$AP_RUN/$tag.log
	ready=$AP_RUN/user/$tag.ready
	install -d -m 0755 -o "$AP_UID" -g "$AP_GID" "$AP_RUN/user"
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		if [ -z "${2:-}" ]; then
			port=$((20000 + RANDOM % 10000))
			ap_port_free "$port" || continue
		fi
		rm -f "$ready"
		(ap_cgroup_enter "$AP_HARNESS_CG" "$BASHPID"
		 ap_user_exec "$AP_PY" "$AP_BINDIR/githttp.py" --root "$dir" --port "$port" \
			--ready-file "$ready" "${extra[@]}") >>"$log" 2>&1 </dev/null 9>&- &
		pid=$!
		ap_track "$tag" "$pid"
		i=0
		while [ ! -e "$ready" ] && ap_pid_alive "$pid" && [ $i -lt 200 ]; do
			sleep 0.05; i=$((i + 1))
		done
		if [ -e "$ready" ] && ap_pid_alive "$pid"; then
			AP_HTTP_PID=$pid AP_HTTP_PORT=$port AP_HTTP_ROOT=$dir
			export AP_HTTP_PID AP_HTTP_PORT AP_HTTP_ROOT
			return 0
		fi
		ap_untrack_stop "$tag" 2
		[ -n "${2:-}" ] && break
	done
	ap_log "aptest: http server did not start; log $log:"
	tail -n 20 "$log" >&2
	return 1
}

# ap_http_stop [TAG]
ap_http_stop() {
	ap_untrack_stop "${1:-http}" 5
	[ "${1:-http}" = http ] && unset AP_HTTP_PID
	return 0
}

# ---------------------------------------------------------------------------------------------
# Cleanup on exit (run.sh only)

# ap_stop_all: stop every tracked process (the manager last), clear the slices, remove the
# runtime dir. Idempotent.
ap_stop_all() {
	local f
	if [ -d "$AP_RUN/pids" ]; then
		for f in "$AP_RUN/pids"/*; do
			[ -f "$f" ] || continue
			[ "${f##*/}" = manager ] && continue
			ap_untrack_stop "${f##*/}" 5
		done
	fi
	ap_manager_stop "$AP_USER"
	ap_cgroup_clear "$AP_HARNESS_CG"
	[ -n "${AP_RUNTIME:-}" ] && rm -rf "$AP_RUNTIME"
	return 0
}

ap_cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	ap_stop_all
	[ "${AP_KEEP:-0}" = 1 ] || rm -rf "$AP_BINDIR" "$AP_RUN/tmp" "$AP_RUN/user"
	exit $rc
}

# ap_install_cleanup [FUNCTION]: run FUNCTION (default ap_cleanup) on exit, also after
# INT/TERM/HUP. FUNCTION should call ap_stop_all.
ap_install_cleanup() {
	# shellcheck disable=SC2064 # the function name is meant to be fixed now
	trap "${1:-ap_cleanup}" EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
}

# ---------------------------------------------------------------------------------------------
# Fixture git repos, owned by the test user (libgit2 validates repo ownership)

# ap_git DIR ARGS...: git as the test user in DIR, bounded.
ap_git() {
	local dir=$1; shift
	ap_as_user timeout "$AP_CMD_TIMEOUT" git -C "$dir" "$@"
}

# ap_repo_init DIR: a work repo on branch main.
ap_repo_init() {
	rm -rf "$1"
	install -d -o "$AP_UID" -g "$AP_GID" "$1" || return 1
	ap_git "$1" init -q -b main &&
	ap_git "$1" config user.name "aptest fixture" &&
	ap_git "$1" config user.email "aptest@example.invalid" &&
	ap_git "$1" config commit.gpgsign false
}

# ap_repo_publish DIR BARE: a bare clone to serve over HTTP; later ap_repo_commit pushes to it.
ap_repo_publish() {
	rm -rf "$2"
	ap_as_user mkdir -p "$(dirname "$2")" &&
	ap_as_user timeout "$AP_CMD_TIMEOUT" git clone -q --bare "$1" "$2" &&
	ap_git "$1" remote add pub "$2"
}

# ap_repo_commit DIR MSG: commit everything (files may have been written by root: they are
# chowned first); push to the bare clone if there is one. Prints nothing.
ap_repo_commit() {
	chown -R "$AP_UID:$AP_GID" "$1" || return 1
	ap_git "$1" add -A &&
	ap_git "$1" commit -q -m "$2" || return 1
	if ap_git "$1" remote get-url pub >/dev/null 2>&1; then
		ap_git "$1" push -q pub main || return 1
	fi
}

# ap_repo_head DIR [REV]: full sha of REV (default HEAD).
ap_repo_head() { ap_git "$1" rev-parse "${2:-HEAD}"; }

# ---------------------------------------------------------------------------------------------
# Running autopull

# ap_autopull NAME ARGS...: run $AP_BIN as the test user with a time limit. stdout, stderr
# and the exit code land in $AP_TMP/NAME.{out,err,rc}; AP_RC holds the exit code.
ap_autopull() {
	local name=$1; shift
	: "${AP_TMP:=$AP_RUN/tmp}"
	mkdir -p "$AP_TMP"
	ap_as_user timeout -k 5 "$AP_CMD_TIMEOUT" "$AP_BIN" "$@" \
		>"$AP_TMP/$name.out" 2>"$AP_TMP/$name.err" </dev/null
	AP_RC=$?
	echo "$AP_RC" >"$AP_TMP/$name.rc"
	return 0
}

# ap_expect_rc DESC EXPECTED NAME: check the exit code of ap_autopull NAME; on a mismatch
# show its stderr.
ap_expect_rc() {
	local rc
	rc=$(cat "$AP_TMP/$3.rc" 2>/dev/null)
	if [ "$rc" = "$2" ]; then
		ap_ok "$1 (exit $rc)"
	else
		case $rc in
		124|137) ap_fail "$1 (expected exit $2, got $rc: killed after AP_CMD_TIMEOUT=${AP_CMD_TIMEOUT}s)" ;;
		*) ap_fail "$1 (expected exit $2, got ${rc:-none})" ;;
		esac
		sed -n '1,15s/^/        stderr: /p' "$AP_TMP/$3.err" 2>/dev/null
		return 1
	fi
}

# ap_case NAME: start a case inside a test file (a heading; the results stay per file).
ap_case() {
	AP_CASE=$1
	printf -- '-- %s\n' "$1"
}

# shellcheck source=../lib-common.sh
. "$AP_ROOT/tests/lib-common.sh"

# Fixture content (needs the test user's paths, so only once the user exists).
if [ -n "${AP_HOME:-}" ]; then
	# shellcheck source=fixtures.sh
	. "$AP_DIR/fixtures.sh"
fi
