# shellcheck shell=bash
# System scope, as root, against the container's system manager: the first run (enable-start
# of units with [Install], a drop-in, a timer, a files: rule with reload:), a one-unit change
# restarts only that unit, a config-file change reloads only its service, delete and rename,
# template instances, the state directory's modes, --dry-run with real unit states, the bus
# fallback when PID 1's private socket is out of reach, and validation failures that leave the
# host unchanged (exit 4). Sourced by run.sh after lib.sh.

WANTS=/etc/systemd/system/multi-user.target.wants
starts() { sys_sh cat "$SX_LOG/${1%.service}.starts" 2>/dev/null | wc -l; }
reloads() { sys_sh cat "$SX_LOG/${1%.service}.reloads" 2>/dev/null | wc -l; }
same() { cmp -s "$SX_WORK/$1" "$SYS_ROOT$2"; }

sx_caddyfile() { printf ':80 {\n\trespond "%s"\n}\n' "$1" | sx_write caddy/Caddyfile; }

# The tree every case starts from.
base() {
	sx_service web.service install "web v1"
	printf '[Service]\nEnvironment=APTEST=v1\n' | sx_write systemd/web.service.d/10-env.conf
	sx_service worker.service install "worker v1"
	printf '[Unit]\nDescription=tick\n\n[Timer]\nOnUnitActiveSec=1h\n\n[Install]\nWantedBy=timers.target\n' |
		sx_write systemd/tick.timer
	printf '[Unit]\nDescription=tick\n\n[Service]\nType=oneshot\nExecStart=/bin/true\n' |
		sx_write systemd/tick.service
	printf '[Unit]\nDescription=foo %%i v1\n\n[Service]\nExecStart=/bin/sleep infinity\n' |
		sx_write systemd/foo@.service
	sx_caddyfile v1
	printf 'APP=v1\n' | sx_write env/app.env
}

# start NAME: a clean host, the base tree committed and applied. Sets V1.
start() {
	ap_case "$1"
	sx_reset
	sx_origin
	sx_config "" "guard:
  settle: 1s"
	base
	V1=$(sx_commit v1)
	sys_autopull "${1%% *}-v1" apply
	ap_expect_rc "$AP_CASE: first apply" 0 "${1%% *}-v1"
}

t_first_run() {
	local app_inv caddy_inv mode
	ap_case "first"
	sx_reset
	sx_origin
	sx_config "" "guard:
  settle: 1s"
	base
	V1=$(sx_commit v1)
	app_inv=$(inv app.service) caddy_inv=$(inv caddy.service)
	sys_autopull first apply
	ap_expect_rc "$AP_CASE: apply as root in system scope" 0 first || return
	check "applied commit recorded" [ "$(applied)" = "$V1" ]
	check "unit file installed byte for byte" same systemd/web.service /etc/systemd/system/web.service
	check "drop-in installed" same systemd/web.service.d/10-env.conf /etc/systemd/system/web.service.d/10-env.conf
	check "Caddyfile installed (the directory created)" same caddy/Caddyfile /etc/caddy/Caddyfile
	check "env file installed" same env/app.env /etc/aptest/env/app.env
	check "web.service enabled" [ -L "$SYS_ROOT$WANTS/web.service" ]
	check "worker.service enabled" [ -L "$SYS_ROOT$WANTS/worker.service" ]
	check "tick.timer enabled" [ -L "$SYS_ROOT/etc/systemd/system/timers.target.wants/tick.timer" ]
	check "web.service started" [ "$(sys_prop web.service ActiveState)" = active ]
	check "worker.service started" [ "$(sys_prop worker.service ActiveState)" = active ]
	check "tick.timer started" [ "$(sys_prop tick.timer ActiveState)" = active ]
	check "tick.service (no [Install]) not started" [ "$(sys_prop tick.service ActiveState)" = inactive ]
	check "the drop-in is in effect" [ "$(sys_prop web.service Environment)" = APTEST=v1 ]
	check "caddy.service reloaded" [ "$(reloads caddy.service)" = 1 ]
	check "caddy.service not restarted" [ "$(inv caddy.service)" = "$caddy_inv" ]
	check "app.service restarted for env/" [ "$(inv app.service)" != "$app_inv" ]
	mode=$(sys_sh stat -c %a "$SX_STATE")
	check "state directory $SX_STATE is 0700 (is $mode)" [ "$mode" = 700 ]
	sys_sh find "$SX_STATE" -maxdepth 1 -type f -printf '%m %f\n' >"$AP_TMP/state.modes"
	# metrics.prom is for an exporter: 0644, readable only where its directory lets it
	check "state files are 0600: $(tr '\n' ' ' <"$AP_TMP/state.modes")" \
		not grep -qv '^600 \|^644 metrics.prom$' "$AP_TMP/state.modes"
	check "the state has an applied file" grep -q '^600 applied$' "$AP_TMP/state.modes"
	check "state directories are 0700" \
		[ -z "$(sys_sh find "$SX_STATE" -mindepth 1 -maxdepth 1 -type d ! -perm 0700)" ]
	sys_autopull noop apply
	ap_expect_rc "$AP_CASE: second apply" 0 noop
	check "second apply is a no-op" grep -q "nothing to do" "$AP_TMP/noop.out"
}

t_one_unit() {
	local web worker caddy app tick
	start "one-unit change restarts only that unit" || return
	web=$(inv web.service) worker=$(inv worker.service) caddy=$(inv caddy.service)
	app=$(inv app.service) tick=$(inv tick.timer)
	sx_service web.service install "web v2"
	sx_commit v2 >/dev/null
	sys_autopull one apply
	ap_expect_rc "$AP_CASE: apply" 0 one || return
	check "web.service restarted (new InvocationID)" [ "$(inv web.service)" != "$web" ]
	check "web.service runs the new definition" [ "$(sys_prop web.service Description)" = "web v2" ]
	check "NeedDaemonReload is no" [ "$(sys_prop web.service NeedDaemonReload)" = no ]
	check "worker.service untouched" [ "$(inv worker.service)" = "$worker" ]
	check "caddy.service untouched" [ "$(inv caddy.service)" = "$caddy" ]
	check "app.service untouched" [ "$(inv app.service)" = "$app" ]
	check "tick.timer untouched" [ "$(inv tick.timer)" = "$tick" ]
}

t_config_reload() {
	local web worker caddy app n
	start "config change reloads only its service" || return
	web=$(inv web.service) worker=$(inv worker.service) caddy=$(inv caddy.service)
	app=$(inv app.service) n=$(reloads caddy.service)
	sx_caddyfile v2
	sx_commit v2 >/dev/null
	sys_autopull reload apply
	ap_expect_rc "$AP_CASE: apply" 0 reload || return
	check "Caddyfile installed" same caddy/Caddyfile /etc/caddy/Caddyfile
	check "caddy.service reloaded once (ExecReload ran)" [ "$(reloads caddy.service)" = $((n + 1)) ]
	check "caddy.service not restarted" [ "$(inv caddy.service)" = "$caddy" ]
	check "web, worker and app untouched" \
		[ "$(inv web.service)$(inv worker.service)$(inv app.service)" = "$web$worker$app" ]
	check "no daemon-reload was needed" not grep -q "daemon-reload: yes" "$AP_TMP/reload.out"
}

t_delete_rename() {
	local web
	start "delete and rename" || return
	web=$(inv web.service)
	sx_rm systemd/tick.timer
	sx_rm systemd/tick.service
	sx_git mv systemd/worker.service systemd/runner.service
	sx_git mv systemd/web.service.d/10-env.conf systemd/web.service.d/20-env.conf
	sx_commit v2 >/dev/null
	sys_autopull delren apply
	ap_expect_rc "$AP_CASE: apply" 0 delren || return
	check "deleted timer stopped" [ "$(sys_prop tick.timer ActiveState)" = inactive ]
	check "deleted timer disabled" [ ! -e "$SYS_ROOT/etc/systemd/system/timers.target.wants/tick.timer" ]
	check "deleted timer file removed" [ ! -e "$SYS_ROOT/etc/systemd/system/tick.timer" ]
	check "deleted service file removed" [ ! -e "$SYS_ROOT/etc/systemd/system/tick.service" ]
	check "renamed unit: old name stopped" [ "$(sys_prop worker.service ActiveState)" = inactive ]
	check "renamed unit: old link gone" [ ! -e "$SYS_ROOT$WANTS/worker.service" ]
	check "renamed unit: old file gone" [ ! -e "$SYS_ROOT/etc/systemd/system/worker.service" ]
	check "renamed unit: new name enabled" [ -L "$SYS_ROOT$WANTS/runner.service" ]
	check "renamed unit: new name running" [ "$(sys_prop runner.service ActiveState)" = active ]
	check "renamed drop-in: new name installed" [ -f "$SYS_ROOT/etc/systemd/system/web.service.d/20-env.conf" ]
	check "renamed drop-in: old name removed" [ ! -e "$SYS_ROOT/etc/systemd/system/web.service.d/10-env.conf" ]
	check "web.service restarted for its renamed drop-in" [ "$(inv web.service)" != "$web" ]
	check "owned no longer lists the removed files" not grep -q "tick\.\|/worker.service$" \
		"$SYS_ROOT$SX_STATE/owned"
}

t_template() {
	local a web
	start "template change restarts its running instances" || return
	sys_ctl start foo@a.service foo@b.service
	sys_ctl stop foo@b.service
	a=$(inv foo@a.service) web=$(inv web.service)
	printf '[Unit]\nDescription=foo %%i v2\n\n[Service]\nExecStart=/bin/sleep infinity\n' |
		sx_write systemd/foo@.service
	sx_commit v2 >/dev/null
	sys_autopull tmpl apply
	ap_expect_rc "$AP_CASE: apply" 0 tmpl || return
	check "running foo@a restarted" [ "$(inv foo@a.service)" != "$a" ]
	check "foo@a runs the new definition" [ "$(sys_prop foo@a.service Description)" = "foo a v2" ]
	check "stopped foo@b not started" [ "$(sys_prop foo@b.service ActiveState)" = inactive ]
	check "web.service untouched" [ "$(inv web.service)" = "$web" ]
	sys_ctl stop foo@a.service
}

t_dry_run() {
	start "dry-run shows the system manager's states" || return
	sys_ctl stop worker.service
	sx_service web.service install "web v2"
	sx_service worker.service install "worker v2"
	sx_caddyfile v2
	sx_commit v2 >/dev/null
	sx_snapshot dry-before
	sys_autopull dry --dry-run --json
	ap_expect_rc "$AP_CASE: dry-run" 0 dry || return
	ap_jq "$AP_CASE: web.service: restart, state active" "$AP_TMP/dry.out" \
		"U['web.service']['action'] == 'restart' and U['web.service']['state'] == 'active'"
	ap_jq "$AP_CASE: worker.service: state inactive (stopped by hand)" "$AP_TMP/dry.out" \
		"U['worker.service']['state'] == 'inactive'"
	ap_jq "$AP_CASE: caddy.service: reload, state active" "$AP_TMP/dry.out" \
		"U['caddy.service']['action'] == 'reload' and U['caddy.service']['state'] == 'active'"
	ap_jq "$AP_CASE: Caddyfile to /etc/caddy" "$AP_TMP/dry.out" \
		"F['caddy/Caddyfile']['dest'] == '/etc/caddy/Caddyfile'"
	sx_snapshot dry-after
	check "the dry run changed nothing" cmp -s "$AP_TMP/dry-before.snap" "$AP_TMP/dry-after.snap"
	check "applied unchanged" [ "$(applied)" = "$V1" ]
}

# PID 1's private socket hidden: autopull must go through the system bus (dbus-daemon); with
# the bus hidden too it must fail without touching the host.
t_bus_fallback() {
	local web
	start "bus fallback: private socket unavailable" || return
	web=$(inv web.service)
	sx_service web.service install "web v2"
	V2=$(sx_commit v2)
	sx_snapshot bus-before
	sys_sh systemd-run --wait --pipe --quiet -p InaccessiblePaths=/run/systemd/private \
		-p InaccessiblePaths=/run/dbus/system_bus_socket autopull -v apply \
		>"$AP_TMP/nobus.out" 2>"$AP_TMP/nobus.err"
	echo $? >"$AP_TMP/nobus.rc"
	check "with neither socket: apply fails (exit $(cat "$AP_TMP/nobus.rc"))" \
		[ "$(cat "$AP_TMP/nobus.rc")" != 0 ]
	check "the message names the private socket" grep -q "/run/systemd/private" "$AP_TMP/nobus.err"
	sx_snapshot bus-after
	check "host unchanged" cmp -s "$AP_TMP/bus-before.snap" "$AP_TMP/bus-after.snap"
	check "applied unchanged" [ "$(applied)" = "$V1" ]
	sys_sh systemd-run --wait --pipe --quiet -p InaccessiblePaths=/run/systemd/private \
		autopull -v apply >"$AP_TMP/bus.out" 2>"$AP_TMP/bus.err"
	echo $? >"$AP_TMP/bus.rc"
	ap_expect_rc "$AP_CASE: apply over the system bus" 0 bus || return
	check "it tried the private socket, then the bus" \
		grep -q "cannot connect to '/run/systemd/private', trying the bus" "$AP_TMP/bus.err"
	check "web.service restarted over the bus" [ "$(inv web.service)" != "$web" ]
	check "applied = v2" [ "$(applied)" = "$V2" ]
}

t_validation() {
	start "validation failure: exit 4, host unchanged" || return
	sx_snapshot val-before
	printf '[Service]\nExecStart=relative/path\n' | sx_write systemd/broken.service
	sx_service web.service install "web v2"
	sx_commit broken >/dev/null
	sys_autopull broken apply
	ap_expect_rc "$AP_CASE: broken unit" 4 broken
	check "the error names the repo path" grep -q "systemd/broken.service" "$AP_TMP/broken.err"
	sx_rm systemd/broken.service
	printf 'INVALID\n' | sx_write caddy/Caddyfile
	sx_commit badcaddy >/dev/null
	sys_autopull badcaddy apply
	ap_expect_rc "$AP_CASE: the Caddyfile's validate: command fails" 4 badcaddy
	check "the validator's message is shown" grep -q "invalid Caddyfile" "$AP_TMP/badcaddy.err"
	sx_snapshot val-after
	check "host byte-identical" cmp -s "$AP_TMP/val-before.snap" "$AP_TMP/val-after.snap"
	check "applied unchanged" [ "$(applied)" = "$V1" ]
	check "web.service still runs v1" [ "$(sys_prop web.service Description)" = "web v1" ]
}

sx_pristine
t_first_run
t_one_unit
t_config_reload
t_delete_rename
t_template
t_dry_run
t_bus_fallback
t_validation
