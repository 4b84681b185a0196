# shellcheck shell=bash
# The apply side: `autopull --user apply` against the real user manager, asserting installed
# bytes and modes, which units got a new InvocationID (restart), which ran ExecReload
# (reload), enable links, and that nothing else was touched. Plus the failure paths:
# validation, refused paths, failing restarts, a kill between install and restart, two
# concurrent runs, rollback by --commit, --no-fetch, --allow-empty.
# Sourced by run.sh after lib.sh (and fixtures.sh).

WANTS=$AP_UNIT_DIR/default.target.wants
# Restarts are checked by InvocationID here; the settle window is t-30's subject.
FX_SETTLE=0s

reloads() { cat "$FX_LOG/${1%.service}.reloads" 2>/dev/null | wc -l; }
same_file() { cmp -s "$1" "$2"; }

# svc NAME [DESCRIPTION] [install]: a sleep-infinity service whose ExecReload leaves a mark.
svc() {
	{
		printf '[Unit]\nDescription=%s\nStartLimitIntervalSec=0\n\n[Service]\n' "${2:-$1 v1}"
		printf 'ExecStart=/bin/sleep infinity\n'
		printf 'ExecReload=/bin/sh -c "echo reload >> %s/%s.reloads"\n' "$FX_LOG" "${1%.service}"
		[ "${3:-}" = install ] && printf '\n[Install]\nWantedBy=default.target\n'
	} | fx_write "systemd/$1"
}

# start NAME: fresh slate, the base tree (fx_svc_tree) committed and applied once, all its
# units enabled and running. Sets V1.
start() {
	ap_case "$1"
	fx_reset
	fx_origin file || { ap_fail "$1: fixture origin"; return 1; }
	fx_config "$FX_URL"
	fx_svc_tree svc
	V1=$(fx_commit v1) || { ap_fail "$1: commit v1"; return 1; }
	fx_apply "${1//[^A-Za-z0-9]/-}-v1"
}

# snapshot NAME: hashes of every file under the unit dir and the destinations.
snapshot() {
	(cd / && find "$AP_UNIT_DIR" "$FX_ETC" \( -type f -o -type l \) -printf '%p %m %l\n' 2>/dev/null |
		sort | while read -r p m l; do echo "$p $m $l $(sha256sum <"$p" 2>/dev/null | cut -c1-16)"; done) \
		>"$AP_TMP/$1.snap"
}

# -------------------------------------------------------------------------------------------
t_first_apply() {
	start "first apply: files, modes, enable links, started units" || return
	check "applied commit recorded" [ "$(applied)" = "$V1" ]
	check "unit file installed byte for byte" same_file "$FX_ORIGIN/systemd/web.service" "$AP_UNIT_DIR/web.service"
	check "drop-in installed" same_file "$FX_ORIGIN/systemd/web.service.d/10-env.conf" "$AP_UNIT_DIR/web.service.d/10-env.conf"
	check "Caddyfile installed" same_file "$FX_ORIGIN/caddy/Caddyfile" "$FX_ETC/caddy/Caddyfile"
	check "env file installed" same_file "$FX_ORIGIN/env/app.env" "$FX_ETC/env/app.env"
	check "unit file mode 0644" [ "$(stat -c %a "$AP_UNIT_DIR/web.service")" = 644 ]
	check "web.service enabled (wants link)" [ -L "$WANTS/web.service" ]
	check "tick.timer enabled" [ -L "$AP_UNIT_DIR/timers.target.wants/tick.timer" ]
	check "web.service active" [ "$(ap_unit_prop web.service ActiveState)" = active ]
	check "worker.service active" [ "$(ap_unit_prop worker.service ActiveState)" = active ]
	check "tick.timer active" [ "$(ap_unit_prop tick.timer ActiveState)" = active ]
	check "tick.service (no [Install]) not started" [ "$(ap_unit_prop tick.service ActiveState)" = inactive ]
	check "drop-in environment" [ "$(ap_unit_prop web.service Environment)" = "APTEST_DROPIN=v1" ]
	check "inventory lists 7 files" [ "$(wc -l <"$AP_STATE_DIR/owned")" = 7 ]
	check "no journal left" [ ! -e "$AP_STATE_DIR/journal" ]
	ap_autopull first-noop --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: second apply is a no-op" 0 first-noop
	check "no-op says nothing to do" grep -q "nothing to do" "$AP_TMP/first-noop.out"
}

t_modify_restart_reload() {
	local web worker tick v2
	start "modified unit restarts, Caddyfile reloads, others untouched" || return
	web=$(inv web.service) worker=$(inv worker.service) tick=$(inv tick.timer)
	svc web.service "web v2" install
	fx_caddyfile v2
	v2=$(fx_commit v2)
	ap_autopull mod --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply" 0 mod || return
	check "applied = v2" [ "$(applied)" = "$v2" ]
	check "web.service restarted (new InvocationID)" [ "$(inv web.service)" != "$web" ]
	check "web.service runs the new definition" [ "$(ap_unit_prop web.service Description)" = "web v2" ]
	check "worker.service untouched" [ "$(inv worker.service)" = "$worker" ]
	check "tick.timer untouched" [ "$(inv tick.timer)" = "$tick" ]
	check "Caddyfile installed" same_file "$FX_ORIGIN/caddy/Caddyfile" "$FX_ETC/caddy/Caddyfile"
	check "NeedDaemonReload is false" [ "$(ap_unit_prop web.service NeedDaemonReload)" = no ]
	# The Caddyfile asks for a reload, the unit file for a restart: the restart wins, so
	# ExecReload did not run.
	check "no reload on top of the restart" [ "$(reloads web.service)" = 0 ]
	web=$(inv web.service)
	fx_caddyfile v3
	fx_commit v3 >/dev/null
	ap_autopull reload --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply Caddyfile only" 0 reload || return
	check "web.service reloaded (ExecReload ran once)" [ "$(reloads web.service)" = 1 ]
	check "web.service not restarted by a reload" [ "$(inv web.service)" = "$web" ]
}

t_dropin_env_inactive() {
	local web worker
	start "drop-in restarts its unit; env/ restarts an inactive worker: nothing" || return
	ap_systemctl stop worker.service
	web=$(inv web.service)
	fx_dropin web.service 10-env.conf v2
	fx_envfile v2
	fx_commit v2 >/dev/null
	ap_autopull dropin --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply" 0 dropin || return
	check "web.service restarted" [ "$(inv web.service)" != "$web" ]
	check "drop-in value in effect" [ "$(ap_unit_prop web.service Environment)" = "APTEST_DROPIN=v2" ]
	check "inactive worker stays inactive" [ "$(ap_unit_prop worker.service ActiveState)" = inactive ]
	check "env file installed" same_file "$FX_ORIGIN/env/app.env" "$FX_ETC/env/app.env"
}

t_delete_rename_mode() {
	start "delete, rename and mode change" || return
	fx_rm systemd/worker.service
	git -C "$FX_ORIGIN" mv systemd/web.service.d/10-env.conf systemd/web.service.d/20-env.conf 2>/dev/null ||
		mv "$FX_ORIGIN/systemd/web.service.d/10-env.conf" "$FX_ORIGIN/systemd/web.service.d/20-env.conf"
	chmod +x "$FX_ORIGIN/env/app.env"
	fx_commit v2 >/dev/null
	ap_autopull del --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply" 0 del || return
	check "deleted unit file removed" [ ! -e "$AP_UNIT_DIR/worker.service" ]
	check "deleted unit stopped" [ "$(ap_unit_prop worker.service ActiveState)" = inactive ]
	check "deleted unit disabled (link gone)" [ ! -L "$WANTS/worker.service" ]
	check "renamed drop-in: new name installed" [ -f "$AP_UNIT_DIR/web.service.d/20-env.conf" ]
	check "renamed drop-in: old name removed" [ ! -e "$AP_UNIT_DIR/web.service.d/10-env.conf" ]
	check "mode change installed as 0755" [ "$(stat -c %a "$FX_ETC/env/app.env")" = 755 ]
	check "inventory no longer lists the deleted unit" not grep -q "/worker.service$" "$AP_STATE_DIR/owned"
}

t_template_instances() {
	local a b web
	start "changed template restarts its running instances only" || return
	fx_template foo@.service
	fx_commit template >/dev/null
	fx_apply template-v1 || return
	ap_systemctl start foo@a.service foo@b.service
	a=$(inv foo@a.service) b=$(inv foo@b.service) web=$(inv web.service)
	ap_systemctl stop foo@b.service
	fx_template foo@.service "foo v2"
	fx_commit template-v2 >/dev/null
	ap_autopull tmpl --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply" 0 tmpl || return
	check "running instance foo@a restarted" [ "$(inv foo@a.service)" != "$a" ]
	check "foo@a runs the new definition" [ "$(ap_unit_prop foo@a.service Description)" = "foo v2 a" ]
	check "stopped instance foo@b not started" [ "$(ap_unit_prop foo@b.service ActiveState)" = inactive ]
	check "web.service untouched" [ "$(inv web.service)" = "$web" ]
}

t_validation_failure() {
	local v1
	start "validation failure leaves the host byte-identical (exit 4)" || return
	snapshot before-invalid
	printf '[Service]\nExecStart=relative/path\n' | fx_write systemd/broken.service
	svc web.service "web v2" install
	fx_commit broken >/dev/null
	ap_autopull invalid --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply" 4 invalid
	check "error names the repo path" grep -q "systemd/broken.service" "$AP_TMP/invalid.err"
	snapshot after-invalid
	check "host byte-identical" cmp -s "$AP_TMP/before-invalid.snap" "$AP_TMP/after-invalid.snap"
	check "applied unchanged" [ "$(applied)" = "$V1" ]
	# An unknown key only warns in systemd-analyze; autopull treats it as an error.
	fx_rm systemd/broken.service
	printf '[Unit]\nDescription=typo\n[Service]\nExecStrat=/bin/true\nExecStart=/bin/true\n' | fx_write systemd/typo.service
	fx_commit typo >/dev/null
	ap_autopull typo --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: unknown key refused" 4 typo
	check "message names the key" grep -q "ExecStrat" "$AP_TMP/typo.err"
	# A files: rule's validate: command.
	fx_rm systemd/typo.service
	fx_config "$FX_URL"
	sed -i 's|    reload: \[web.service\]|    reload: [web.service]\n    validate: [grep, -q, "respond", "%s"]|' "$AP_CFG"
	printf 'garbage\n' | fx_write caddy/Caddyfile
	fx_commit badcaddy >/dev/null
	ap_autopull badcaddy --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: validator failure" 4 badcaddy
	check "validator message names the file" grep -q "caddy/Caddyfile" "$AP_TMP/badcaddy.err"
	snapshot after-validator
	check "host still byte-identical" cmp -s "$AP_TMP/before-invalid.snap" "$AP_TMP/after-validator.snap"
}

t_refusals() {
	local outside=$AP_HOME/outside
	start "repo symlink and a symlink in the destination are refused" || return
	snapshot before-refuse
	ap_as_user ln -s web.service "$FX_ORIGIN/systemd/alias.service"
	fx_commit symlink >/dev/null
	ap_autopull symlink --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: repo symlink" 4 symlink
	check "message names the symlink" grep -q "systemd/alias.service' is a symlink" "$AP_TMP/symlink.err"
	snapshot after-symlink
	check "host unchanged" cmp -s "$AP_TMP/before-refuse.snap" "$AP_TMP/after-symlink.snap"
	rm -f "$FX_ORIGIN/systemd/alias.service"
	# A symlink planted in the destination tree must not be followed out of it.
	rm -rf "$outside"; ap_as_user mkdir -p "$outside"
	ap_as_user ln -s "$outside" "$FX_ETC/env/sub"
	printf 'X=1\n' | fx_write env/sub/x.env
	fx_commit escape >/dev/null
	ap_autopull escape --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: symlink in the destination is refused before any change" 4 escape
	check "message names the destination" grep -q "env/sub/x.env.*symlink" "$AP_TMP/escape.err"
	check "nothing written through the symlink" [ -z "$(ls -A "$outside")" ]
	check "applied unchanged" [ "$(applied)" = "$V1" ]
	rm -f "$FX_ETC/env/sub"
}

t_failing_restart() {
	local v2 v3
	start "failing restart: exit 1, applied unchanged, next run retries" || return
	printf '[Unit]\nDescription=web broken\nStartLimitIntervalSec=0\n[Service]\nExecStartPre=/bin/false\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=default.target\n' |
		fx_write systemd/web.service
	v2=$(fx_commit broken)
	ap_autopull fail1 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply" 1 fail1
	check "message names the unit and result" grep -q "web.service.*failed" "$AP_TMP/fail1.err"
	check "applied unchanged" [ "$(applied)" = "$V1" ]
	check "journal keeps the owed restart" grep -q "unit restart failed new web.service" "$AP_STATE_DIR/journal"
	ap_autopull fail2 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: next run retries and fails again" 1 fail2
	# The restart left the unit failed, where a try-restart does nothing: the owed restart
	# becomes a start.
	check "retry started the failed unit again" grep -q "^start web.service" "$AP_TMP/fail2.out"
	svc web.service "web fixed" install
	v3=$(fx_commit fixed)
	ap_autopull fixed --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: the fix applies" 0 fixed
	check "applied = fix" [ "$(applied)" = "$v3" ]
	check "web.service active again" ap_wait_prop web.service ActiveState active 5
	check "journal gone" [ ! -e "$AP_STATE_DIR/journal" ]
}

t_crash_between_install_and_restart() {
	local web v2
	start "kill -9 after install: the next run completes the owed restart" || return
	web=$(inv web.service)
	svc web.service "web v2" install
	v2=$(fx_commit v2)
	ap_as_user env AUTOPULL_TEST_CRASH=after-files "$AP_BIN" --user -c "$AP_CFG" apply \
		>"$AP_TMP/crash.out" 2>"$AP_TMP/crash.err" </dev/null
	check "the run was killed (SIGKILL)" [ $? = 137 ]
	check "file installed before the kill" same_file "$FX_ORIGIN/systemd/web.service" "$AP_UNIT_DIR/web.service"
	check "unit not restarted yet" [ "$(inv web.service)" = "$web" ]
	check "applied not advanced" [ "$(applied)" = "$V1" ]
	check "journal present" [ -e "$AP_STATE_DIR/journal" ]
	ap_autopull recover --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: next run" 0 recover
	check "owed restart done (new InvocationID)" [ "$(inv web.service)" != "$web" ]
	check "new definition running" [ "$(ap_unit_prop web.service Description)" = "web v2" ]
	check "applied = v2" [ "$(applied)" = "$v2" ]
	check "journal gone" [ ! -e "$AP_STATE_DIR/journal" ]
}

t_concurrent_runs() {
	local holder
	start "two concurrent runs: one exits 75 naming the holder" || return
	(ap_user_exec flock "$AP_STATE_DIR/lock" sleep 3) &
	holder=$!
	ap_wait_file_grep /proc/$holder/status "State" 1 >/dev/null
	sleep 0.3
	ap_autopull busy --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: second run" 75 busy
	check "message says the lock is held" grep -q "holds the lock" "$AP_TMP/busy.err"
	ap_autopull waited --user -c "$AP_CFG" --wait 10 apply
	ap_expect_rc "$AP_CASE: --wait outlasts the holder" 0 waited
	wait "$holder" 2>/dev/null
}

t_commit_rollback() {
	local v2 web
	start "apply --commit of an older commit restores it" || return
	svc web.service "web v2" install
	fx_envfile v2
	v2=$(fx_commit v2)
	fx_apply commit-v2 || return
	web=$(inv web.service)
	ap_autopull back --user -c "$AP_CFG" apply --commit "$V1"
	ap_expect_rc "$AP_CASE: apply --commit v1" 0 back || return
	check "applied = v1" [ "$(applied)" = "$V1" ]
	check "unit bytes back to v1" [ "$(ap_git "$FX_ORIGIN" show "$V1:systemd/web.service" | sha256sum)" = "$(sha256sum <"$AP_UNIT_DIR/web.service")" ]
	check "env file back to v1" grep -q "APP_VERSION=v1" "$FX_ETC/env/app.env"
	check "web.service restarted" [ "$(inv web.service)" != "$web" ]
	check "web.service runs v1" [ "$(ap_unit_prop web.service Description)" = "web v1" ]
	ap_autopull notonbranch --user -c "$AP_CFG" apply --commit 0000000000000000000000000000000000000000
	ap_expect_rc "$AP_CASE: unknown commit" 2 notonbranch
}

t_no_fetch_and_empty() {
	local v2
	start "--no-fetch works with the remote down; --allow-empty guards removal of everything" || return
	svc web.service "web v2" install
	v2=$(fx_commit v2)
	ap_autopull fetchonly --user -c "$AP_CFG" --dry-run
	ap_expect_rc "$AP_CASE: dry-run fetches v2 into the mirror" 0 fetchonly
	mv "$FX_ORIGIN" "$FX_ORIGIN.away"
	ap_autopull down --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: remote down" 75 down
	ap_autopull nofetch --user -c "$AP_CFG" --no-fetch apply
	ap_expect_rc "$AP_CASE: --no-fetch applies from the mirror" 0 nofetch
	check "applied = v2" [ "$(applied)" = "$v2" ]
	mv "$FX_ORIGIN.away" "$FX_ORIGIN"
	ap_git "$FX_ORIGIN" rm -q -r systemd caddy env
	ap_git "$FX_ORIGIN" commit -q -m empty
	ap_autopull empty --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: removing every installed file is refused" 4 empty
	check "message suggests --allow-empty" grep -q "allow-empty" "$AP_TMP/empty.err"
	check "nothing removed" [ -f "$AP_UNIT_DIR/web.service" ]
	ap_autopull emptyok --user -c "$AP_CFG" --allow-empty apply
	ap_expect_rc "$AP_CASE: --allow-empty" 0 emptyok
	check "unit files removed" [ ! -e "$AP_UNIT_DIR/web.service" ]
	check "rule files removed" [ ! -e "$FX_ETC/caddy/Caddyfile" ]
	check "units stopped" [ "$(ap_unit_prop web.service ActiveState)" = inactive ]
}

# -------------------------------------------------------------------------------------------
if [ ! -x "$AP_BIN" ]; then
	ap_fail "no autopull binary at $AP_BIN"
	exit 1
fi
t_first_apply
t_modify_restart_reload
t_dropin_env_inactive
t_delete_rename_mode
t_template_instances
t_validation_failure
t_refusals
t_failing_restart
t_crash_between_install_and_restart
t_concurrent_runs
t_commit_rollback
t_no_fetch_and_empty
fx_reset
