# shellcheck shell=bash
# The shipped user units (units/user/) in the real user manager: installed where a package
# would put them for this user (~/.local/share/systemd/user, the binary path set as
# `make install` sets it), enabled as their [Install] says; the timer fires by itself and its
# service applies each new commit (twice), the heartbeat timer fires too, nothing fails.
# Only the intervals are shortened, with a drop-in. Sourced by run.sh after lib.sh.

DATA_UNITS=$AP_HOME/.local/share/systemd/user
WAIT=30

wait_applied() {
	local i=0
	while [ "$(applied)" != "$1" ] && [ $i -lt $((WAIT * 10)) ]; do sleep 0.1; i=$((i + 1)); done
	[ "$(applied)" = "$1" ]
}

# install_units: units/user/* as `make install` writes them, naming the binary under test.
install_units() {
	local u
	ap_as_user mkdir -p "$DATA_UNITS" || return 1
	for u in "$AP_ROOT"/units/user/*; do
		sed "s|/usr/local/bin/autopull|$AP_BIN|" "$u" | ap_user_write "$DATA_UNITS/${u##*/}" || return 1
	done
	for u in infrastructure-auto-pull.timer autopull-heartbeat.timer; do
		printf '[Timer]\nOnStartupSec=\nOnActiveSec=2s\nOnUnitActiveSec=2s\nRandomizedDelaySec=0\nAccuracySec=100ms\n' |
			ap_user_write "$DATA_UNITS/$u.d/aptest-fast.conf" || return 1
	done
}

ap_case "user timer"
fx_reset
fx_origin file || ap_fail "$AP_CASE: fixture origin"
fx_config "$FX_URL"
fx_service web.service install "web v1"
V1=$(fx_commit v1)
check "units installed" install_units
check "daemon-reload" ap_systemctl daemon-reload
check "the service names the binary under test" \
	[ "$(ap_unit_prop infrastructure-auto-pull.service ExecStart | grep -c "path=$AP_BIN ")" = 1 ]
check "enable --now infrastructure-auto-pull.timer" quiet ap_systemctl enable --now infrastructure-auto-pull.timer
check "enable --now autopull-heartbeat.timer" quiet ap_systemctl enable --now autopull-heartbeat.timer
check "the timer applied v1 by itself" wait_applied "$V1"
for v in v2 v3; do
	fx_service web.service install "web $v"
	sha=$(fx_commit "$v")
	check "the timer applied $v by itself" wait_applied "$sha"
	check "web.service runs $v" ap_wait_prop web.service Description "web $v" 5
done
check "the service's last result: success" [ "$(ap_unit_prop infrastructure-auto-pull.service Result)" = success ]
check "the heartbeat timer fired" ap_wait_prop autopull-heartbeat.service Result success 10
check "the heartbeat wrote its history" [ -s "$AP_STATE_DIR/heartbeat" ]
ap_systemctl disable --now infrastructure-auto-pull.timer autopull-heartbeat.timer >/dev/null 2>&1
check "no unit failed" [ -z "$(ap_systemctl list-units --failed --no-legend --plain)" ]
rm -rf "$DATA_UNITS"
fx_reset
