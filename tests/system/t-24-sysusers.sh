# shellcheck shell=bash
# sysusers.d against PID 1: a commit that ships a sysusers.d file and a service running as the
# user it makes starts that service (the user exists before it starts, no 217/USER); a
# service whose User= is unknown and made by no sysusers.d file is refused before the host
# changes (exit 4). Sourced by run.sh after lib.sh.

SU_USER=aptestsvc

# su_config: the test configuration plus a rule for sysusers/ → /etc/sysusers.d/.
su_config() {
	sx_config "" "  - src: sysusers/
    dest: /etc/sysusers.d/
guard:
  settle: 1s"
}

# su_unit NAME USER: systemd/NAME, a service that runs as USER.
su_unit() {
	{
		printf '[Unit]\nDescription=%s as %s\n\n[Service]\nUser=%s\n' "$1" "$2" "$2"
		printf 'ExecStart=/bin/sleep infinity\n'
		printf '\n[Install]\nWantedBy=multi-user.target\n'
	} | sx_write "systemd/$1"
}

ap_case "sysusers.d: the user exists before the unit that runs as it starts"
sx_pristine
sx_reset
sx_origin
su_config
printf 'u %s - "autopull test service" /var/lib/%s\n' "$SU_USER" "$SU_USER" |
	sx_write sysusers/aptest.conf
su_unit svcuser.service "$SU_USER"
V1=$(sx_commit v1)
check "precondition: no user $SU_USER" not quiet sys_sh getent passwd "$SU_USER"
sys_autopull su-dry --dry-run --json apply
ap_expect_rc "$AP_CASE: dry-run" 0 su-dry
ap_jq "$AP_CASE: the plan runs sysusers (JSON)" "$AP_TMP/su-dry.out" \
	"d['setup'] == [{'action': 'sysusers', 'file': '/etc/sysusers.d/aptest.conf', 'note': None, 'reasons': ['sysusers/aptest.conf']}]"
check "a dry run creates no user" not quiet sys_sh getent passwd "$SU_USER"
sys_autopull su-v1 apply
ap_expect_rc "$AP_CASE: apply" 0 su-v1
check "v1 recorded" [ "$(applied)" = "$V1" ]
check "the user exists" quiet sys_sh getent passwd "$SU_USER"
check "svcuser.service is active" [ "$(sys_prop svcuser.service ActiveState)" = active ]
check "it runs as $SU_USER" [ "$(sys_sh sh -c 'ps -o user= -p "$(systemctl show -p MainPID --value svcuser.service)"')" = "$SU_USER" ]
check "the applied output names the sysusers step" grep -q "sysusers" "$AP_TMP/su-v1.out"

ap_case "sysusers.d: an unknown User= is refused, the host unchanged"
su_unit ghost.service aptestghost
sx_commit v2 >/dev/null
sx_snapshot su-before
sys_autopull su-ghost apply
ap_expect_rc "$AP_CASE: refused" 4 su-ghost
check "the error names the unit and the user" \
	grep -q "unit 'ghost.service' runs as User=aptestghost" "$AP_TMP/su-ghost.err"
sx_snapshot su-after
check "host unchanged" cmp -s "$AP_TMP/su-before.snap" "$AP_TMP/su-after.snap"
check "still at v1" [ "$(applied)" = "$V1" ]
check "ghost.service not installed" [ ! -e "$SYS_ROOT/etc/systemd/system/ghost.service" ]
sys_autopull su-ghost-dry --dry-run apply
ap_expect_rc "$AP_CASE: a dry run says so too" 4 su-ghost-dry

ap_case "sysusers.d: a removed file leaves its user"
sx_rm systemd/ghost.service
sx_rm sysusers/aptest.conf
V3=$(sx_commit v3)
sys_autopull su-rm --dry-run --json apply
ap_jq "$AP_CASE: the plan says the user stays (JSON)" "$AP_TMP/su-rm.out" \
	"d['setup'][0]['action'] == 'none' and d['setup'][0]['note'] == 'sysusers.d file removed: the users it created stay'"
sys_autopull su-v3 apply
ap_expect_rc "$AP_CASE: apply" 0 su-v3
check "v3 recorded" [ "$(applied)" = "$V3" ]
check "the file is gone" [ ! -e "$SYS_ROOT/etc/sysusers.d/aptest.conf" ]
check "the user stays" quiet sys_sh getent passwd "$SU_USER"
check "svcuser.service still runs as it" [ "$(sys_prop svcuser.service ActiveState)" = active ]
sys_sh userdel "$SU_USER" >/dev/null 2>&1
sys_sh rm -rf /etc/sysusers.d/aptest.conf
sx_reset
