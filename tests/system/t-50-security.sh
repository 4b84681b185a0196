# shellcheck shell=bash
# The shipped units as systemd judges them, measured inside the container: systemd-analyze
# verify finds nothing, and systemd-analyze security rates both system services at most 2.5
# with the README's configuration (generated drop-in included), with a rule that allows
# setuid modes (the generator then lifts RestrictSUIDSGID=) and with guard.push (the heartbeat
# then gets a network). The scores are printed and kept
# in $AP_SYS_RUN/scores. Sourced by run.sh after lib.sh.

MAX=2.5
UNITS="infrastructure-auto-pull.service autopull-heartbeat.service"

# score UNIT: the "Overall exposure level" systemd-analyze security prints.
score() {
	sys_sh systemd-analyze security --no-pager "$1" 2>/dev/null |
		sed -n 's/^→ Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p'
}

# judge LABEL: every shipped service at most $MAX, also by systemd-analyze's own threshold.
judge() {
	local u s
	for u in $UNITS; do
		s=$(score "$u")
		echo "$1 $u $s" >>"$AP_SYS_RUN/scores"
		check "$u: exposure ${s:-?} <= $MAX" awk -v s="${s:-99}" -v m="$MAX" 'BEGIN { exit !(s <= m) }'
		check "$u: systemd-analyze --threshold=25 agrees" \
			quiet sys_sh systemd-analyze security --threshold=25 --no-pager "$u"
	done
}

ap_case "verify"
sys_sh systemd-analyze verify --man=no /lib/systemd/system/infrastructure-auto-pull.service \
	/lib/systemd/system/infrastructure-auto-pull.timer /lib/systemd/system/autopull-heartbeat.service \
	/lib/systemd/system/autopull-heartbeat.timer >"$AP_TMP/verify.out" 2>&1
rc=$?
check "systemd-analyze verify: exit $rc" [ $rc = 0 ]
check "systemd-analyze verify: no message ($(head -c 200 "$AP_TMP/verify.out"))" [ ! -s "$AP_TMP/verify.out" ]

ap_case "README config"
: >"$AP_SYS_RUN/scores"
sed -n '/^## Configuration/,/^### /p' "$SYS_TOP/README.md" |
	awk '/^```yaml/ { f = 1; next } /^```/ { if (f) exit } f' | sys_write "$SX_CFG"
sys_ctl daemon-reload
check "the generated drop-in is in effect" \
	[ -n "$(sys_prop infrastructure-auto-pull.service DropInPaths)" ]
judge readme

ap_case "allow_setid"
printf 'repo:\n  url: %s\nfiles:\n  - {src: a, dest: /usr/local/bin/a, mode: "4755", allow_setid: true}\n' \
	"$SX_URL" | sys_write "$SX_CFG"
sys_ctl daemon-reload
check "RestrictSUIDSGID= lifted" [ "$(sys_prop infrastructure-auto-pull.service RestrictSUIDSGID)" = no ]
judge setid

ap_case "guard.push"
printf 'repo:\n  url: %s\nguard:\n  push: https://vm.example.org/api/v1/import/prometheus\n' \
	"$SX_URL" | sys_write "$SX_CFG"
sys_ctl daemon-reload
check "the heartbeat has a network" [ "$(sys_prop autopull-heartbeat.service PrivateNetwork)" = no ]
judge push
sed 's/^/  /' "$AP_SYS_RUN/scores"
