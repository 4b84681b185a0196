# shellcheck shell=bash
# The test bed itself: systemd is PID 1 and the system is running, this build and the
# shipped units are installed as `make install` puts them, the generator ran at boot, the
# stand-in services are up, and the origin is visible read-only. Sourced by run.sh after lib.sh.

ap_case "booted"
check "PID 1 is systemd" [ "$(sys_sh cat /proc/1/comm)" = systemd ]
check "system state is running" [ "$(sys_ctl is-system-running)" = running ]
check "the system bus answers" quiet sys_sh busctl --system status org.freedesktop.systemd1
check "journald is up" quiet sys_sh journalctl -n 1 -q

ap_case "installed"
ver=$(sys_sh autopull --version)
check "autopull --version: $ver" [ "${ver#autopull }" != "$ver" ]
check "the installed binary is this build" cmp -s "$SYS_ROOT/usr/local/bin/autopull" "$SYS_TOP/autopull"
for u in infrastructure-auto-pull.service infrastructure-auto-pull.timer autopull-heartbeat.service \
	autopull-heartbeat.timer; do
	check "$u loaded from /lib/systemd/system" \
		[ "$(sys_prop "$u" FragmentPath)" = "/lib/systemd/system/$u" ]
done
check "units name the installed binary" grep -q "^ExecStart=/usr/local/bin/autopull apply$" \
	"$SYS_ROOT/lib/systemd/system/infrastructure-auto-pull.service"
check "the generator is a link to the binary" \
	[ "$(readlink "$SYS_ROOT/lib/systemd/system-generators/autopull-generator")" = /usr/local/bin/autopull ]
check "no configuration yet: the generator wrote nothing" \
	[ ! -e "$SYS_ROOT/run/systemd/generator/infrastructure-auto-pull.service.d" ]
check "the example configuration is installed" [ -f "$SYS_ROOT/etc/autopull/autopull.yaml.example" ]

ap_case "fixtures"
check "caddy.service (stand-in) active" [ "$(sys_prop caddy.service ActiveState)" = active ]
check "app.service (stand-in) active" [ "$(sys_prop app.service ActiveState)" = active ]
sx_origin && printf 'x\n' | sx_write README && sha=$(sx_commit init)
check "the origin is visible inside" sys_sh git -C /srv/git/origin.git cat-file -e "$sha"
check "the origin is read-only inside" not sys_sh touch /srv/git/origin.git/x
check "the cache is not written: the overlay upper is a tmpfs" \
	[ ! -e "$AP_SYS_ROOTFS/usr/local/bin/autopull" ]
