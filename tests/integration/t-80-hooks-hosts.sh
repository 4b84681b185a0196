# shellcheck shell=bash
# Hooks fired by a real failure, rollback and refusal, with the event in their environment;
# per-host rules and unit directories (hosts:, %H, %l) against this machine's real host name.
# Sourced by run.sh after lib.sh (and fixtures.sh).

HOOKS=$AP_HOME/hooks

svc() {
	{
		printf '[Unit]\nDescription=%s\nStartLimitIntervalSec=0\n\n[Service]\n' "${2:-$1 v1}"
		printf '%s\n' "${3:-ExecStart=/bin/sleep infinity}"
		printf '\n[Install]\nWantedBy=default.target\n'
	} | fx_write "systemd/$1"
}

# A hook that appends its event and environment to a file the test reads.
write_hook() {
	rm -rf "$HOOKS"
	ap_as_user mkdir -p "$HOOKS"
	ap_as_user sh -c "cat > '$HOOKS/hook' <<'EOS'
#!/bin/sh
{ echo \"event=\$AUTOPULL_EVENT result=\$AUTOPULL_RESULT commit=\$AUTOPULL_COMMIT from=\$AUTOPULL_FROM\"
  echo \"args=\$*\"; } >> $HOOKS/log
EOS
chmod 0755 '$HOOKS/hook'"
}

hooks_yaml() {
	printf 'hooks:\n  on_failure: [%s/hook, failure]\n  on_rollback: [%s/hook, rollback]\n  on_refused: [%s/hook, refused]\n' \
		"$HOOKS" "$HOOKS" "$HOOKS"
}

t_hooks() {
	local v2 v3
	ap_case "hooks run on a failure, a rollback and a refusal"
	fx_reset
	fx_origin file || return
	write_hook
	FX_SETTLE= fx_config "$FX_URL" "" "guard:
  watch: [loopy.service]
  max_restarts: 1
  window: 1m
  settle: 2s
$(hooks_yaml)"
	svc web.service
	svc worker.service
	fx_commit v1 >/dev/null
	fx_apply hooks-v1 || return
	check "no hook on success" [ ! -e "$HOOKS/log" ]
	svc worker.service "worker broken" "ExecStartPre=/bin/false
ExecStart=/bin/sleep infinity"
	v2=$(fx_commit v2)
	ap_autopull fail --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: a failing job" 1 fail
	check "on_failure ran with the event" grep -q "event=failure result=failed commit=$v2" "$HOOKS/log"
	check "with its argv" grep -q "args=failure" "$HOOKS/log"
	svc worker.service "worker fixed"
	fx_commit v2-fixed >/dev/null
	fx_apply hooks-fixed || return
	svc worker.service "worker crash-loop" "ExecStart=/bin/sh -c 'exit 1'
Restart=always
RestartSec=200ms"
	v3=$(fx_commit v3)
	ap_autopull rb --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: a commit that does not settle" 1 rb
	check "on_rollback ran" grep -q "event=rollback result=rolled-back commit=$v3" "$HOOKS/log"
	printf '[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=200ms\n' |
		fx_write systemd/loopy.service
	svc worker.service "worker fixed"
	fx_commit v4 >/dev/null
	fx_apply hooks-v4 || return
	ap_systemctl start loopy.service
	sleep 1.5
	svc web.service "web v5"
	fx_commit v5 >/dev/null
	ap_autopull refused --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: refused by the guard" 3 refused
	check "on_refused ran" grep -q "event=refused result=guard" "$HOOKS/log"
	ap_systemctl stop loopy.service
	# a hook that fails is a warning, never a change of outcome
	printf '#!/bin/sh\nexit 7\n' | ap_user_write "$HOOKS/hook"
	ap_autopull refused2 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: still refused with a failing hook" 3 refused2
	check "the failing hook is a warning" grep -q "hook refused.*exited with 7" "$AP_TMP/refused2.err"
	rm -rf "$HOOKS"
}

t_hosts() {
	local host short
	host=$(hostname) short=${host%%.*}
	ap_case "per-host rules and unit directories ($host)"
	fx_reset
	fx_origin file || return
	FX_SETTLE= fx_config "$FX_URL"
	cat >>"$AP_CFG" <<-EOF
	  - src: hosts/%H/motd
	    dest: $FX_ETC/motd
	  - src: short/%l.conf
	    dest: $FX_ETC/short.conf
	  - src: other/only.conf
	    dest: $FX_ETC/only.conf
	    hosts: [no-such-host, "db-*"]
	  - src: mine/only.conf
	    dest: $FX_ETC/mine.conf
	    hosts: ["$short*"]
	EOF
	sed -i "s|^units: \[systemd/\]|units:\n  - systemd/\n  - {dir: systemd-other/, hosts: [no-such-host]}\n  - {dir: systemd-here/, hosts: [\"$host\"]}|" "$AP_CFG"
	svc web.service
	printf 'this host\n' | fx_write "hosts/$host/motd"
	printf 'other host\n' | fx_write "hosts/no-such-host/motd"
	printf 'short\n' | fx_write "short/$short.conf"
	printf 'not for us\n' | fx_write other/only.conf
	printf 'for us\n' | fx_write mine/only.conf
	svc here.service "" "ExecStart=/bin/sleep infinity" && install -d "$FX_ORIGIN/systemd-here" &&
		mv "$FX_ORIGIN/systemd/here.service" "$FX_ORIGIN/systemd-here/here.service"
	svc there.service && install -d "$FX_ORIGIN/systemd-other" &&
		mv "$FX_ORIGIN/systemd/there.service" "$FX_ORIGIN/systemd-other/there.service"
	fx_commit hosts >/dev/null
	ap_autopull cc --user -c "$AP_CFG" check-config
	ap_expect_rc "$AP_CASE: check-config" 0 cc
	check "check-config counts the rule for other hosts" grep -q "and 1 for other hosts" "$AP_TMP/cc.out"
	fx_apply hosts || return
	check "%H picked this host's file" grep -qx "this host" "$FX_ETC/motd"
	check "%l picked the short name's file" grep -qx "short" "$FX_ETC/short.conf"
	check "a rule for other hosts installed nothing" [ ! -e "$FX_ETC/only.conf" ]
	check "a rule for this host installed" grep -qx "for us" "$FX_ETC/mine.conf"
	check "this host's unit directory is used" [ "$(ap_unit_prop here.service ActiveState)" = active ]
	check "another host's unit directory is not" [ ! -e "$AP_UNIT_DIR/there.service" ]
}

# -------------------------------------------------------------------------------------------
if [ ! -x "$AP_BIN" ]; then
	ap_fail "no autopull binary at $AP_BIN"
	exit 1
fi
t_hooks
t_hosts
fx_reset
