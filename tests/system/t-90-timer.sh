# shellcheck shell=bash
# The shipped timers as an operator enables them: infrastructure-auto-pull.timer fires by
# itself and its hardened service applies each new commit pushed to the origin (twice), with
# systemctl status clean; autopull-heartbeat.timer fires by itself too. Only the intervals are
# shortened, with a drop-in. Sourced by run.sh after lib.sh.

WAIT=30   # seconds for a timer to pick up a commit (it fires every 2 s here)

ap_case "timer"
sx_timers_setup
V1=$SX_V1
check "enable --now infrastructure-auto-pull.timer" quiet sys_ctl enable --now infrastructure-auto-pull.timer
check "enable --now autopull-heartbeat.timer" quiet sys_ctl enable --now autopull-heartbeat.timer
check "enabled as the shipped [Install] says" [ -L "$SYS_ROOT/etc/systemd/system/timers.target.wants/infrastructure-auto-pull.timer" ]
check "the timer applied v1 by itself" sx_wait_applied "$V1" "$WAIT"
check "web.service runs v1" [ "$(sys_prop web.service Description)" = "web v1" ]
for v in v2 v3; do
	sx_service web.service install "web $v"
	sha=$(sx_commit "$v")
	check "the timer applied $v by itself" sx_wait_applied "$sha" "$WAIT"
	check "web.service runs $v" sys_wait_prop web.service Description "web $v" 5
done
check "the service ran at least three times" \
	[ "$(sys_sh journalctl -q -o cat -u infrastructure-auto-pull.service | grep -c '^Finished ')" -ge 3 ]
check "its last result: success" [ "$(sys_prop infrastructure-auto-pull.service Result)" = success ]
check "the heartbeat timer fired" sys_wait_prop autopull-heartbeat.service Result success 10
check "the heartbeat sampled web.service" grep -q " web.service " "$SYS_ROOT$SX_STATE/heartbeat"
sys_ctl stop infrastructure-auto-pull.timer autopull-heartbeat.timer
sys_ctl status infrastructure-auto-pull.timer infrastructure-auto-pull.service autopull-heartbeat.timer \
	autopull-heartbeat.service >"$AP_TMP/status.out" 2>&1
check "systemctl status: no warning" not grep -qi "warning" "$AP_TMP/status.out"
check "systemctl status: nothing failed" not grep -q "failed\|Failed" "$AP_TMP/status.out"
sys_sh journalctl -q -o cat -p warning -u infrastructure-auto-pull.service -u autopull-heartbeat.service \
	>"$AP_TMP/warnings.out" 2>&1
check "no warning or error in the services' journal ($(head -c 200 "$AP_TMP/warnings.out"))" \
	[ ! -s "$AP_TMP/warnings.out" ]
