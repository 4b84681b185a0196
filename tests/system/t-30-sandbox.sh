# shellcheck shell=bash
# The shipped units' sandbox with any configuration: the installed example configuration
# works end to end under the hardened services; autopull-generator derives ReadWritePaths=
# from the configuration on every daemon-reload (and nothing more is writable); a stale
# sandbox or an impossible destination is named by check-config with the fix, and really
# fails the service; a broken configuration breaks no boot or reload. Sourced by run.sh.

DROPIN=/run/systemd/generator/infrastructure-auto-pull.service.d/50-autopull-sandbox.conf
HB_DROPIN=/run/systemd/generator/autopull-heartbeat.service.d/50-autopull-sandbox.conf

# The example configuration as `make install` ships it, pointed at the test origin, with a
# shorter settle window (the rest verbatim).
example_config() {
	sed -e "s|^  url: .*|  url: $SX_URL|" -e 's|^  settle: 10s|  settle: 1s|' \
		"$SYS_ROOT/etc/autopull/autopull.yaml.example" | sys_write "$SX_CFG"
}

example_tree() {
	sx_service web.service install "web v1"
	printf ':80 {\n\trespond "v1"\n}\n' | sx_write caddy/Caddyfile
	printf 'Defaults:root !lecture\n' | sx_write sudoers/aptest
	printf 'APP=v1\n' | sx_write env/app.env
}

# service NAME: start the shipped apply service; NAME.rc = its exit status, NAME.err = its log.
service() { sys_start_unit "$1" infrastructure-auto-pull.service; }

# rwpaths FILE: the ReadWritePaths= of a drop-in, one per line, sorted.
rwpaths() { sed -n 's/^ReadWritePaths=-//p' "$SYS_ROOT$1" | sort | tr '\n' ' '; }

t_example() {
	local caddy app
	ap_case "example config"
	sx_reset
	sx_origin
	example_config
	example_tree
	V1=$(sx_commit v1)
	check "the config in place, no daemon-reload yet: check-config names what is missing" \
		not quiet sys_sh autopull check-config
	sys_ctl daemon-reload
	sys_autopull cc check-config
	ap_expect_rc "$AP_CASE: check-config after daemon-reload" 0 cc
	check "check-config: ok" grep -q "^$SX_CFG: ok (" "$AP_TMP/cc.out"
	check "the drop-in grants exactly the configuration's directories" [ "$(rwpaths "$DROPIN")" = \
		"/etc/caddy /etc/default /etc/sudoers.d /etc/systemd/system /var/lib/autopull " ]
	check "the heartbeat's drop-in grants only the state" [ "$(rwpaths "$HB_DROPIN")" = "/var/lib/autopull " ]
	caddy=$(inv caddy.service) app=$(inv app.service)
	service example
	ap_expect_rc "$AP_CASE: infrastructure-auto-pull.service" 0 example || return
	check "the service's result is success" [ "$(sys_prop infrastructure-auto-pull.service Result)" = success ]
	check "applied = v1" [ "$(applied)" = "$V1" ]
	check "Caddyfile installed into /etc/caddy" cmp -s "$SX_WORK/caddy/Caddyfile" "$SYS_ROOT/etc/caddy/Caddyfile"
	check "sudoers snippet installed 0440 (visudo validated it)" \
		[ "$(stat -c %a "$SYS_ROOT/etc/sudoers.d/aptest")" = 440 ]
	check "env file installed into /etc/default" cmp -s "$SX_WORK/env/app.env" "$SYS_ROOT/etc/default/app.env"
	check "web.service enabled and started" [ "$(sys_prop web.service ActiveState)" = active ]
	check "caddy.service reloaded, not restarted" [ "$(inv caddy.service)" = "$caddy" ]
	check "app.service restarted" [ "$(inv app.service)" != "$app" ]
	check "no 'Read-only file system' in its log" not grep -q "Read-only" "$AP_TMP/example.err"
	sys_start_unit hb autopull-heartbeat.service
	ap_expect_rc "$AP_CASE: autopull-heartbeat.service" 0 hb
	check "the heartbeat wrote its history" [ -s "$SYS_ROOT$SX_STATE/heartbeat" ]
	check "the heartbeat sees a boot id (not hidden by ProcSubset=)" \
		grep -Eq '^v1 [^ ]+ [0-9a-f]{32} ' "$SYS_ROOT$SX_STATE/heartbeat"
	sys_ctl status infrastructure-auto-pull.service autopull-heartbeat.service >"$AP_TMP/status.out" 2>&1
	check "systemctl status: no warning" not grep -qi "warning" "$AP_TMP/status.out"
}

# A configuration change without daemon-reload: check-config names the directory and the fix;
# the service really cannot write it; after daemon-reload both are fine.
t_stale() {
	ap_case "stale sandbox"
	printf 'v1\n' | sx_write extra/one.conf
	V2=$(sx_commit v2)
	printf '  - src: extra/\n    dest: /etc/aptest-extra/\n' >>"$SYS_ROOT$SX_CFG.new"
	sed '/^files:/r '"$SYS_ROOT$SX_CFG.new" "$SYS_ROOT$SX_CFG" | sys_write "$SX_CFG.tmp"
	sys_sh mv "$SX_CFG.tmp" "$SX_CFG"
	sys_sh rm -f "$SX_CFG.new"
	sys_autopull stale check-config
	ap_expect_rc "$AP_CASE: check-config" 2 stale
	check "it names the directory, the rule and the fix" grep -q \
		"infrastructure-auto-pull.service cannot write '/etc/aptest-extra', needed by files rule 'extra/' (dest '/etc/aptest-extra/'): the sandbox was generated from an older configuration; fix: systemctl daemon-reload" \
		"$AP_TMP/stale.err"
	service stale-run
	check "the service fails (exit $(cat "$AP_TMP/stale-run.rc"))" not [ "$(cat "$AP_TMP/stale-run.rc")" = 0 ]
	check "its log says why" grep -q "Read-only file system" "$AP_TMP/stale-run.err"
	check "nothing was installed there" [ ! -e "$SYS_ROOT/etc/aptest-extra/one.conf" ]
	check "applied unchanged" [ "$(applied)" = "$V1" ]
	sys_ctl daemon-reload
	sys_autopull fresh check-config
	ap_expect_rc "$AP_CASE: check-config after daemon-reload" 0 fresh
	service fresh-run
	ap_expect_rc "$AP_CASE: the service after daemon-reload" 0 fresh-run
	check "the new destination was created and written" cmp -s "$SX_WORK/extra/one.conf" \
		"$SYS_ROOT/etc/aptest-extra/one.conf"
	check "applied = v2" [ "$(applied)" = "$V2" ]
}

# Only the granted directories: a validator (which runs in the same sandbox) cannot write
# elsewhere; paths that need quoting in unit files work; a destination under the service's
# private /tmp is refused by check-config.
t_exactly() {
	ap_case "nothing more"
	sx_reset
	sx_origin
	sys_write "$SX_CFG" <<-EOF
	repo:
	  url: $SX_URL
	files:
	  - src: odd/
	    dest: "/etc/aptest odd/50% \$x/"
	    validate: [/bin/sh, -c, "touch /etc/escaped /usr/escaped /var/lib/escaped /etc/default/escaped /root/escaped; exit 0"]
	guard:
	  settle: 0s
	EOF
	sys_ctl daemon-reload
	printf 'x\n' | sx_write odd/file
	sx_commit odd >/dev/null
	service odd
	ap_expect_rc "$AP_CASE: the service with an oddly named destination" 0 odd || return
	check "installed into '/etc/aptest odd/50% \$x/'" cmp -s "$SX_WORK/odd/file" "$SYS_ROOT/etc/aptest odd/50% \$x/file"
	for p in /etc/escaped /usr/escaped /var/lib/escaped /etc/default/escaped /root/escaped; do
		check "the sandbox kept $p from being written" [ ! -e "$SYS_ROOT$p" ]
	done
	local tmpdest=/tmp/aptest   # in the container
	sys_write "$SX_CFG" <<-EOF
	repo:
	  url: $SX_URL
	files:
	  - {src: odd/, dest: $tmpdest/}
	EOF
	sys_ctl daemon-reload
	sys_autopull tmp check-config
	ap_expect_rc "$AP_CASE: check-config with a destination under /tmp" 2 tmp
	check "it names PrivateTmp=" grep -q "cannot write '$tmpdest'.*PrivateTmp=yes gives the service its own" \
		"$AP_TMP/tmp.err"
	check "the drop-in does not grant /tmp" not grep -q "/tmp" "$SYS_ROOT$DROPIN"
}

# The generator never breaks a boot or a reload; the services then fail on the config error.
t_broken() {
	ap_case "broken configuration"
	printf 'repo:\n  url: %s\nbogus: 1\n' "$SX_URL" | sys_write "$SX_CFG"
	check "daemon-reload succeeds" quiet sys_ctl daemon-reload
	check "no drop-in for a broken configuration" [ ! -e "$SYS_ROOT$DROPIN" ]
	check "the system is still running" [ "$(sys_ctl is-system-running)" = running ]
	service broken
	ap_expect_rc "$AP_CASE: the service fails on the configuration error" 2 broken
	check "its log names the file, line and key" grep -q "autopull.yaml:3:1: unknown key 'bogus'" \
		"$AP_TMP/broken.err"
	sys_sh rm -f "$SX_CFG"
	sys_ctl daemon-reload
	check "no configuration: no drop-in" [ ! -e "$SYS_ROOT$DROPIN" ]
	check "the generator runs by hand too (one directory argument)" \
		quiet sys_sh sh -c 'cp /etc/autopull/autopull.yaml.example /etc/autopull/autopull.yaml &&
			d=$(mktemp -d) && /lib/systemd/system-generators/autopull-generator "$d" &&
			grep -q "^ReadWritePaths=-/etc/caddy$" "$d/infrastructure-auto-pull.service.d/50-autopull-sandbox.conf"'
	sys_sh /lib/systemd/system-generators/autopull-generator >/dev/null 2>&1
	check "without an output directory it exits 1" [ $? = 1 ]
	check "run by a user manager it writes nothing" quiet sys_sh sh -c 'd=$(mktemp -d) &&
		SYSTEMD_SCOPE=user /lib/systemd/system-generators/autopull-generator "$d" &&
		[ -z "$(ls -A "$d")" ]'
	sys_sh rm -f "$SX_CFG"
}

sx_pristine
t_example
t_stale
t_exactly
t_broken
