# shellcheck shell=bash
# Smoke test of the harness itself (no autopull needed): the user manager answers, a fixture
# unit starts in the test user's cgroup, the user bus works for sd-bus clients as the test
# uid without nsenter (what autopull relies on), and the HTTP git server serves clones.
# Sourced by run.sh after lib.sh.

ap_case "manager reachable"
state=$(ap_systemctl is-system-running 2>/dev/null)
case $state in
running|degraded) ap_ok "is-system-running: $state" ;;
*) ap_fail "is-system-running: '$state'" ;;
esac
ap_check "list-units works" eval 'ap_systemctl list-units --no-legend >/dev/null'

ap_case "fixture unit"
# Not in $AP_UNIT_DIR (which later tests wipe, stopping what runs from it): this unit must
# still run when run.sh stops the manager, to prove that its processes go too.
smoke_dir=$AP_HOME/.local/share/systemd/user
fx_units_reset
ap_as_user mkdir -p "$smoke_dir" "$FX_LOG"
printf '[Unit]\nDescription=aptest smoke\nStartLimitIntervalSec=0\n\n[Service]\nExecStart=/bin/sh -c "echo started $$$$; exec /bin/sleep infinity"\nStandardOutput=append:%s/smoke.log\n' \
	"$FX_LOG" | ap_user_write "$smoke_dir/aptest-smoke.service"
ap_check "daemon-reload" ap_systemctl daemon-reload
ap_check "start aptest-smoke.service" ap_systemctl start aptest-smoke.service
ap_check_eq "ActiveState" active "$(ap_unit_prop aptest-smoke.service ActiveState)"
inv1=$(ap_unit_prop aptest-smoke.service InvocationID)
ap_check "InvocationID is non-empty ($inv1)" test -n "$inv1"
pid1=$(ap_unit_prop aptest-smoke.service MainPID)
ap_check "MainPID $pid1 runs as $AP_USER" eval '[ "$(stat -c %U /proc/'"$pid1"' 2>/dev/null)" = "$AP_USER" ]'
ap_check "MainPID is in $AP_USER.slice" grep -q "/$AP_USER.slice/" "/proc/$pid1/cgroup"
ap_check "StandardOutput=append: captured the output" \
	eval 'ap_wait_file_grep "$FX_LOG/smoke.log" "started $pid1"'
ap_check "restart" ap_systemctl restart aptest-smoke.service
inv2=$(ap_unit_prop aptest-smoke.service InvocationID)
ap_check "restart changes InvocationID" test -n "$inv2" -a "$inv1" != "$inv2"
pid2=$(ap_unit_prop aptest-smoke.service MainPID)
ap_check "old MainPID $pid1 is gone after restart" eval '! ap_pid_alive '"$pid1"
# Left running on purpose: run.sh checks after stopping the manager that this pid is gone.
echo "$pid2" >>"$AP_RUN/smoke.pids"

ap_case "user bus as the test uid, no nsenter (the sd_bus_open_user path)"
ver=$(ap_as_user timeout 10 busctl --user get-property org.freedesktop.systemd1 \
	/org/freedesktop/systemd1 org.freedesktop.systemd1.Manager Version 2>&1)
ap_check "busctl --user get-property Version: $ver" eval '[[ "$ver" == s\ * ]]'
st=$(ap_as_user timeout 10 busctl --user get-property org.freedesktop.systemd1 \
	/org/freedesktop/systemd1/unit/aptest_2dsmoke_2eservice org.freedesktop.systemd1.Unit ActiveState 2>&1)
ap_check_eq "busctl --user ActiveState of aptest-smoke.service" 's "active"' "$st"

ap_case "http git server"
fx_origin http
fx_base
sha=$(fx_commit "v1")
ap_check "fixture commit + publish to $FX_BARE" test -n "$sha"
clone=$AP_HOME/clone-smoke
rm -rf "$clone"
ap_check "git clone $FX_URL as $AP_USER" \
	ap_as_user timeout 30 git clone -q "$FX_URL" "$clone"
ap_check_eq "clone HEAD matches" "$sha" "$(ap_repo_head "$clone" 2>/dev/null)"
ls0=$(ap_as_user timeout 30 git -c protocol.version=0 ls-remote "$FX_URL" refs/heads/main 2>&1)
ap_check_eq "ls-remote over protocol v0 (what libgit2 speaks)" "$sha	refs/heads/main" "$ls0"
fx_service web.service install "web v2"
sha2=$(fx_commit "v2")
ap_check "git fetch of a new commit" ap_as_user timeout 30 git -C "$clone" fetch -q origin
ap_check_eq "fetched origin/main" "$sha2" "$(ap_repo_head "$clone" origin/main 2>/dev/null)"
ap_check_eq "404 for a missing repo" 404 "$("$AP_PY" - "$AP_HTTP_URL" <<-'EOF'
	import sys, urllib.request, urllib.error
	try:
	    urllib.request.urlopen(sys.argv[1] + "/nope.git/info/refs?service=git-upload-pack", timeout=10)
	    print(200)
	except urllib.error.HTTPError as e:
	    print(e.code)
	EOF
)"
rm -rf "$clone"

ap_case "a second http server starts and stops by pid"
(
	ap_http_start "$AP_HOME/srv" "" http-smoke || exit 1
	p=$AP_HTTP_PID
	ap_check "second server pid $p runs githttp.py as $AP_USER" \
		eval 'grep -q githttp.py /proc/'"$p"'/cmdline && [ "$(stat -c %U /proc/'"$p"')" = "$AP_USER" ]'
	ap_check "serves on its own port $AP_HTTP_PORT" \
		eval 'ap_as_user timeout 30 git ls-remote "http://127.0.0.1:$AP_HTTP_PORT/origin.git" >/dev/null'
	ap_http_stop http-smoke
	ap_check "its pid $p is gone after ap_http_stop" eval '! ap_pid_alive '"$p"
	ap_check "and untracked" test ! -e "$AP_RUN/pids/http-smoke"
) || ap_fail "second http server did not start"

rm -rf "${FX_ORIGIN:?}" "${FX_BARE:?}"
