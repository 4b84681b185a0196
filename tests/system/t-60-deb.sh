# shellcheck shell=bash
# The Debian package as an operator meets it. Inside the container, which has the build
# dependencies but none of the test packages: make and make install, then the .deb built with
# dpkg-buildpackage (scripts/deb.sh), lintian on the host over the result; make uninstall
# removes the test bed's own `make install`; dpkg -i installs the package with the timers
# enabled and nothing started; with a configuration the timers start, fire by themselves and
# apply commits; the OnFailure= drop-in of the units' comment starts the operator's unit; and
# dpkg -r / -P stop the timers and take the units and their links away. Sourced by run.sh
# after lib.sh.

SRC=/root/src   # the source tree inside
OUT=/root/out   # the packages inside
LONG=300        # seconds for a build command

# inside CMD...: CMD in $SRC inside the container with a build's time limit; output to
# $AP_TMP/inside.log (appended), the exit status returned.
inside() {
	AP_CMD_TIMEOUT=$LONG sys_sh sh -c 'cd "$0" && exec "$@"' "$SRC" "$@" >>"$AP_TMP/inside.log" 2>&1
}

# installed PACKAGE: dpkg inside says it is installed.
installed() {
	[ "$(sys_sh dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

ap_case "a machine without the test packages"
for p in libcmocka-dev valgrind victoria-metrics python3 lintian gnupg; do
	check "$p is not installed inside" not installed "$p"
done
check "build-essential is (the test is not vacuous)" installed build-essential
check "pkg-config inside knows no cmocka" not sys_sh pkg-config --exists cmocka
install -d -m 0755 "$SYS_ROOT$SRC"
git -C "$SYS_TOP" ls-files -z --cached --others --exclude-standard |
	(cd "$SYS_TOP" && tar --null -T - --ignore-failed-read -cf - 2>/dev/null) |
	tar -C "$SYS_ROOT$SRC" -xf - --no-same-owner
check "the source tree is inside, without .git" eval '[ -f "$SYS_ROOT$SRC/debian/control" ] && [ ! -e "$SYS_ROOT$SRC/.git" ]'
check "the Build-Depends are installed (dpkg-checkbuilddeps)" inside dpkg-checkbuilddeps
check "make" inside make -j2
grep -n 'was not found\|warning:' "$AP_TMP/inside.log" >"$AP_TMP/make.noise"
check "make printed no warning and asked for no missing package ($(head -c 200 "$AP_TMP/make.noise"))" \
	[ ! -s "$AP_TMP/make.noise" ]
check "make install DESTDIR= PREFIX=/usr" inside make install DESTDIR=/root/staged PREFIX=/usr
for f in usr/bin/autopull usr/share/man/man8/autopull.8 usr/share/man/man5/autopull.yaml.5 \
	usr/share/bash-completion/completions/autopull lib/systemd/system/infrastructure-auto-pull.timer \
	lib/systemd/system-generators/autopull-generator etc/autopull/autopull.yaml.example; do
	check "make install put $f" eval '[ -e "$SYS_ROOT/root/staged/$f" ] || [ -L "$SYS_ROOT/root/staged/$f" ]'
done
check "make clean" inside make clean

ap_case "dpkg-buildpackage and lintian"
check "scripts/deb.sh (dpkg-buildpackage -us -uc -b) inside" inside env AP_LINTIAN=0 sh scripts/deb.sh "$OUT"
deb=$(cd "$SYS_ROOT$OUT" 2>/dev/null && ls autopull_*_*.deb 2>/dev/null | head -n 1)
check "the package was built: ${deb:-none}" [ -n "$deb" ]
check "no build output in the source tree" eval '[ ! -e "$SYS_ROOT$SRC/debian/autopull" ] && [ ! -e "$SYS_ROOT$SRC/autopull" ]'
check "built at the version of this build" \
	[ "autopull $(dpkg-deb -f "$SYS_ROOT$OUT/$deb" Version)" = "$("$SYS_TOP/autopull" --version)" ]
ap_log "package: $deb, $(stat -c %s "$SYS_ROOT$OUT/$deb") bytes, Installed-Size $(dpkg-deb -f "$SYS_ROOT$OUT/$deb" Installed-Size) KiB"
# On the host (lintian is no build dependency), over a copy: it cannot work below /proc/PID/root.
rm -rf "$AP_TMP/deb" && cp -r "$SYS_ROOT$OUT" "$AP_TMP/deb"
(cd "$AP_TMP/deb" && timeout "$LONG" lintian --allow-root --display-info --fail-on error,warning \
	./*.changes ./*.dsc) >"$AP_TMP/lintian.out" 2>&1
rc=$?
sed 's/^/lintian: /' "$AP_TMP/lintian.out"
check "lintian: no error or warning (exit $rc)" [ "$rc" = 0 ]

ap_case "make uninstall takes the test bed's make install away"
(cd "$SYS_ROOT/root/staged" && find . ! -type d | sed 's|^\.||' | sort) >"$AP_TMP/installed.list"
check "make install's list of files ($(wc -l <"$AP_TMP/installed.list"))" [ "$(wc -l <"$AP_TMP/installed.list")" -ge 15 ]
check "make uninstall PREFIX=/usr/local" inside make uninstall PREFIX=/usr/local
left=$(sed 's|^/usr/|/usr/local/|; s|^/usr/local/lib/systemd/user/|/usr/lib/systemd/user/|' "$AP_TMP/installed.list" |
	while read -r f; do [ -e "$SYS_ROOT$f" ] || [ -L "$SYS_ROOT$f" ] && echo "$f"; done)
check "nothing of it is left${left:+: $left}" [ -z "$left" ]
sys_ctl daemon-reload

ap_case "dpkg -i: timers enabled, nothing started"
sys_sh cp "$OUT/$deb" /root/
check "dpkg -i $deb" inside dpkg -i "/root/$deb"
check "installed" installed autopull
check "the binary is /usr/bin/autopull" [ "$(sys_sh sh -c 'command -v autopull')" = /usr/bin/autopull ]
check "the units run it" grep -q '^ExecStart=/usr/bin/autopull apply$' "$SYS_ROOT/lib/systemd/system/infrastructure-auto-pull.service"
check "the generator link" [ "$(readlink "$SYS_ROOT/lib/systemd/system-generators/autopull-generator")" = /usr/bin/autopull ]
for t in infrastructure-auto-pull.timer autopull-heartbeat.timer; do
	check "$t is enabled" [ "$(sys_ctl is-enabled "$t")" = enabled ]
	check "$t is not started without a configuration" [ "$(sys_ctl is-active "$t")" = inactive ]
done
for s in infrastructure-auto-pull.service autopull-heartbeat.service; do
	check "$s never ran" [ "$(sys_prop "$s" ExecMainStartTimestampMonotonic)" = 0 ]
done
check "no unit failed" [ -z "$(sys_ctl --failed --no-legend --plain)" ]
check "the user timers are not enabled for every user" [ ! -e "$SYS_ROOT/etc/systemd/user/timers.target.wants" ]
check "the example configuration is a conffile" grep -qx /etc/autopull/autopull.yaml.example "$SYS_ROOT/var/lib/dpkg/info/autopull.conffiles"
check "no live configuration" [ ! -e "$SYS_ROOT/etc/autopull/autopull.yaml" ]
check "man finds autopull(8)" [ "$(sys_sh man -w autopull)" = /usr/share/man/man8/autopull.8.gz ]
check "man finds autopull.yaml(5)" [ "$(sys_sh man -w 5 autopull.yaml)" = /usr/share/man/man5/autopull.yaml.5.gz ]
check "the completion is where bash-completion looks" [ -f "$SYS_ROOT/usr/share/bash-completion/completions/autopull" ]

ap_case "with a configuration the timers start and fire by themselves"
sx_timers_setup
V1=$SX_V1
check "the generator wrote the sandbox" [ -f "$SYS_ROOT/run/systemd/generator/infrastructure-auto-pull.service.d/50-autopull-sandbox.conf" ]
# What an operator does: configure, then install (or reinstall): postinst starts the timers.
check "dpkg -i again, now configured" inside dpkg -i "/root/$deb"
for t in infrastructure-auto-pull.timer autopull-heartbeat.timer; do
	check "$t is active" [ "$(sys_ctl is-active "$t")" = active ]
done
check "the timer applied v1 by itself" sx_wait_applied "$V1" 30
check "web.service runs v1" [ "$(sys_prop web.service Description)" = "web v1" ]
sx_service web.service install "web v2"
V2=$(sx_commit v2)
check "the timer applied v2 by itself" sx_wait_applied "$V2" 30
check "web.service runs v2" sys_wait_prop web.service Description "web v2" 5
check "the runs came from the timer" grep -q "trigger.: .timer" <(sys_sh autopull log --json)
check "the heartbeat timer fired" ap_wait_file_grep "$SYS_ROOT$SX_STATE/heartbeat" " web.service " 10
sys_ctl stop infrastructure-auto-pull.timer autopull-heartbeat.timer
sys_sh journalctl -q -o cat -p warning -u infrastructure-auto-pull.service -u autopull-heartbeat.service \
	>"$AP_TMP/warnings.out" 2>&1
check "no warning or error in the services' journal ($(head -c 200 "$AP_TMP/warnings.out"))" \
	[ ! -s "$AP_TMP/warnings.out" ]

ap_case "OnFailure= as the unit's comment shows"
printf '[Service]\nType=oneshot\nExecStart=/bin/sh -c "echo %%i >> %s/notify"\n' "$SX_LOG" |
	sys_write /etc/systemd/system/notify@.service
printf '[Unit]\nOnFailure=notify@%%n.service\n' |
	sys_write /etc/systemd/system/infrastructure-auto-pull.service.d/onfailure.conf
printf 'repo: [\n' | sys_write "$SX_CFG"
sys_ctl daemon-reload
sys_start_unit broken infrastructure-auto-pull.service
check "a configuration error fails the service (status $AP_RC)" [ "$AP_RC" = 2 ]
check "notify@ ran for it, with the failed unit's name" \
	ap_wait_file_grep "$SYS_ROOT$SX_LOG/notify" infrastructure-auto-pull.service 10

ap_case "dpkg -r and -P"
# The metrics file where node_exporter's textfile collector reads it, as the README shows.
SX_METRICS_OUT=/var/lib/node_exporter/textfile/autopull.prom
sys_sh mkdir -p "${SX_METRICS_OUT%/*}"
sx_config "" "guard:
  watch: [web.service]
  metrics: $SX_METRICS_OUT"
sys_ctl start infrastructure-auto-pull.timer autopull-heartbeat.timer
check "the heartbeat wrote $SX_METRICS_OUT" ap_wait_file_grep "$SYS_ROOT$SX_METRICS_OUT" autopull_ 15
check "dpkg -r autopull" inside dpkg -r autopull
for t in infrastructure-auto-pull.timer autopull-heartbeat.timer; do
	check "$t stopped" [ "$(sys_ctl is-active "$t")" = inactive ]
	check "$t unit file removed" [ ! -e "$SYS_ROOT/lib/systemd/system/$t" ]
done
check "the binary and the generator removed" \
	eval '[ ! -e "$SYS_ROOT/usr/bin/autopull" ] && [ ! -L "$SYS_ROOT/lib/systemd/system-generators/autopull-generator" ]'
check "the conffile stays until purge" [ -f "$SYS_ROOT/etc/autopull/autopull.yaml.example" ]
check "dpkg -P autopull" inside dpkg -P autopull
check "purged" not installed autopull
for t in infrastructure-auto-pull.timer autopull-heartbeat.timer; do
	check "$t: its enable link is gone" [ ! -e "$SYS_ROOT/etc/systemd/system/timers.target.wants/$t" ]
	check "$t: so is deb-systemd-helper's record of it" \
		not grep -rqs "$t" "$SYS_ROOT/var/lib/systemd/deb-systemd-helper-enabled"
done
check "the example configuration is gone" [ ! -e "$SYS_ROOT/etc/autopull/autopull.yaml.example" ]
check "the operator's configuration and the state stay" eval '[ -f "$SYS_ROOT$SX_CFG" ] && [ -f "$SYS_ROOT$SX_STATE/applied" ]'
check "systemd knows no autopull unit file" \
	[ -z "$(sys_ctl list-unit-files --no-legend 'autopull*' 'infrastructure-auto-pull*')" ]

# An operator who purges and reinstalls in the same boot, with the configuration still there:
# the shipped timers (no drop-in) must be scheduled again and fire by themselves.
ap_case "purge, then dpkg -i again in the same boot"
check "purge removed the timer's Persistent= stamp" \
	[ ! -e "$SYS_ROOT/var/lib/systemd/timers/stamp-infrastructure-auto-pull.timer" ]
check "purge removed the metrics file outside the state directory" [ ! -e "$SYS_ROOT$SX_METRICS_OUT" ]
sys_sh rm -f /etc/systemd/system/infrastructure-auto-pull.timer.d/aptest-fast.conf \
	/etc/systemd/system/autopull-heartbeat.timer.d/aptest-fast.conf
# After a reload systemd forgets the removed service (and when it last ran), as it does on a
# host some time after the purge: OnUnitActiveSec= then has no base to count from.
sys_ctl daemon-reload
check "systemd no longer knows the service" \
	[ "$(sys_prop infrastructure-auto-pull.service LoadState)" = not-found ]
check "dpkg -i again" inside dpkg -i "/root/$deb"
for t in infrastructure-auto-pull.timer autopull-heartbeat.timer; do
	check "$t is active" [ "$(sys_ctl is-active "$t")" = active ]
	next=$(sys_prop "$t" NextElapseUSecMonotonic)
	check "$t has a next elapse (NextElapseUSecMonotonic=$next)" \
		eval '[ -n "$next" ] && [ "$next" != infinity ] && [ "$next" != 0 ]'
done
hb0=$(sys_prop autopull-heartbeat.service ExecMainStartTimestampMonotonic)
check "the heartbeat timer fires by itself (within 45 s)" \
	eval 'i=0; while [ "$(sys_prop autopull-heartbeat.service ExecMainStartTimestampMonotonic)" = "$hb0" ] &&
		[ $i -lt 450 ]; do sleep 0.1; i=$((i + 1)); done; [ $i -lt 450 ]'
sys_ctl stop infrastructure-auto-pull.timer autopull-heartbeat.timer
