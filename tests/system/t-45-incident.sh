# shellcheck shell=bash
# The incident path in system scope: a watched unit that crash-looped into "failed" makes the
# shipped service refuse with a hint that can come true (what clears a failed unit); the fix
# commit applied with --override-guard starts the failed unit on its new files, says that it
# came back, and lets the guard pass again; the service's journal says "applied" once; after a
# refused commit, `status` shows the stuck
# attempt above the last success. Sourced by run.sh after lib.sh.

service() { sys_start_unit "$1" infrastructure-auto-pull.service; }

# crashy VERSION [fixed]: crashy.service, which crashes at once unless /etc/aptest/crashy.ok
# exists (the host dependency that breaks); fixed: the version that no longer needs it. Each
# start appends VERSION to $SX_LOG/crashy.versions. Few starts in the limit, so that the loop
# ends in "failed" (start-limit-hit) within a second.
crashy() {
	local need='[ -e /etc/aptest/crashy.ok ] || exit 1; '
	[ "${2:-}" = fixed ] && need=
	{
		printf '[Unit]\nDescription=crashy %s\nStartLimitIntervalSec=1min\nStartLimitBurst=4\n\n' "$1"
		printf '[Service]\nExecStart=/bin/sh -c "mkdir -p %s; echo %s >> %s/crashy.versions; %sexec sleep infinity"\n' \
			"$SX_LOG" "$1" "$SX_LOG" "$need"
		printf 'Restart=always\nRestartSec=100ms\n\n[Install]\nWantedBy=multi-user.target\n'
	} | sx_write systemd/crashy.service
}

versions() { sys_sh cat "$SX_LOG/crashy.versions" 2>/dev/null | tail -n 1; }

start() {
	ap_case "$1"
	sx_reset
	sx_origin
	sx_config "" "guard:
  watch: [crashy.service]
  max_restarts: 2
  window: 1m
  settle: 2s"
	sys_sh mkdir -p /etc/aptest
	sys_sh touch /etc/aptest/crashy.ok
	crashy v1
	V1=$(sx_commit v1)
	service v1
	ap_expect_rc "$AP_CASE: v1 applied by the service" 0 v1 || return 1
	check "its journal says 'applied' once (the entry; no second line on stdout)" \
		[ "$(grep -c "applied ${V1:0:12}" "$AP_TMP/v1.err")" = 1 ]
	check "crashy.service active on v1" sys_wait_prop crashy.service ActiveState active 5
}

# break_crashy: its dependency goes away and the running process dies: the manager restarts it
# until the start limit, and it ends "failed".
break_crashy() {
	sys_sh rm -f /etc/aptest/crashy.ok
	sys_ctl kill -s KILL crashy.service
	check "crashy.service crash-loops into failed" sys_wait_prop crashy.service ActiveState failed 10
	check "after automatic restarts (NRestarts=$(sys_prop crashy.service NRestarts))" \
		[ "$(sys_prop crashy.service NRestarts)" -gt 0 ]
}

t_failed_fix() {
	local v2 old_inv
	start "a failed unit: the refusal says what clears it; the fix starts it again" || return
	break_crashy
	crashy v2 fixed
	v2=$(sx_commit "v2: crashy no longer needs the file")
	service refused
	ap_expect_rc "$AP_CASE: the timer's service refuses" 3 refused
	sed 's/^/        | /' "$AP_TMP/refused.err" | grep -i "crashy\|apply" | head -n 6
	check "the refusal names crashy.service as failed" \
		grep -q "crashy.service.*failed" "$AP_TMP/refused.err"
	check "it promises no clearing by itself" \
		not grep -q "again in\|if it stops restarting\|again .* ago" "$AP_TMP/refused.err"
	check "it names the fix commit with --override-guard" \
		grep -q "failed.*apply --override-guard --reason" "$AP_TMP/refused.err"
	check "it names systemctl reset-failed crashy.service" \
		grep -q "systemctl reset-failed crashy.service" "$AP_TMP/refused.err"
	sys_autopull refused-status status
	check "status says the same" grep -q "reset-failed crashy.service" "$AP_TMP/refused-status.out"
	check "still failed, applied still v1" [ "$(sys_prop crashy.service ActiveState)/$(applied)" = "failed/$V1" ]
	old_inv=$(inv crashy.service)
	sys_autopull override --override-guard --reason "ship the crashy fix" apply
	sed 's/^/        | /' "$AP_TMP/override.out"
	ap_expect_rc "$AP_CASE: apply --override-guard" 0 override
	check "the plan starts the failed unit" \
		grep -q "^  start  *crashy.service  *\[failed\] because systemd/crashy.service" "$AP_TMP/override.out"
	check "the plan says why" grep -q "crashy.service.*(failed: started again on the new files)" \
		"$AP_TMP/override.out"
	check "applied = v2" [ "$(applied)" = "$v2" ]
	check "crashy.service is active" sys_wait_prop crashy.service ActiveState active 5
	check "a new invocation" [ "$(inv crashy.service)" != "$old_inv" ]
	check "on the new definition (v2)" [ "$(versions)" = v2 ]
	check "the result says it came back" \
		grep -q "crashy.service was failed: came back, up after the settle" "$AP_TMP/override.out"
	sys_autopull after-status status
	sed 's/^/        | /' "$AP_TMP/after-status.out"
	check "the guard lets applies through again" grep -q "^  guard:    ok" "$AP_TMP/after-status.out"
	service after
	ap_expect_rc "$AP_CASE: the next run of the service" 0 after
}

t_still_failing() {
	local v2
	start "the override's fix does not fix it: the result says it is still failing" || return
	break_crashy
	crashy v2
	v2=$(sx_commit "v2: not a fix")
	sys_autopull override --override-guard --reason "try v2" apply
	sed 's/^/        | /' "$AP_TMP/override.out" | tail -n 3
	ap_expect_rc "$AP_CASE: the apply itself succeeds" 0 override
	check "the plan started it" grep -q "^  start  *crashy.service  *\[failed\]" "$AP_TMP/override.out"
	check "v2 was started" grep -q v2 "$SYS_ROOT$SX_LOG/crashy.versions"
	check "the result says it is still failing" \
		grep -q "crashy.service was failed: still failing after the settle: unit .crashy.service. " "$AP_TMP/override.out"
	check "not rolled back: applied = v2 (it was down before the commit)" [ "$(applied)" = "$v2" ]
	check "not marked bad" not grep -qs "^$v2 " "$SYS_ROOT$SX_STATE/bad"
	sys_autopull still-status status
	check "the guard still refuses" grep -q "^  guard:    REFUSING" "$AP_TMP/still-status.out"
}

t_status_stuck() {
	local v2
	start "status shows a stuck branch above the last success" || return
	printf 'INVALID\n' | sx_write caddy/Caddyfile
	v2=$(sx_commit "v2: a broken Caddyfile")
	service bad1
	ap_expect_rc "$AP_CASE: refused (first tick)" 4 bad1
	service bad2
	ap_expect_rc "$AP_CASE: refused (second tick)" 4 bad2
	sys_autopull st status
	sed 's/^/        | /' "$AP_TMP/st.out"
	check "an attempt line above the last one" \
		awk '/^  attempt: /{a=NR} /^  last: /{l=NR} END{exit !(a && l && a < l)}' "$AP_TMP/st.out"
	check "it says refused, why and for which commit" \
		grep -q "^  attempt:  refused (invalid) ${v2:0:12}, 2 run(s) since .*: validation of 'caddy/Caddyfile' failed" \
		"$AP_TMP/st.out"
	check "the last success is still shown" grep -q "^  last:     apply ok" "$AP_TMP/st.out"
	sys_autopull stj --json status
	ap_jq "$AP_CASE: --json: last_attempt refused, invalid, 2 runs" "$AP_TMP/stj.out" \
		"d['last_attempt']['kind'] == 'refused' and d['last_attempt']['result'] == 'invalid' and d['last_attempt']['runs'] == 2 and d['last_attempt']['to'] == '$v2' and d['last_attempt']['since'] <= d['last_attempt']['time']"
	ap_jq "$AP_CASE: --json: last_apply is the success" "$AP_TMP/stj.out" \
		"d['last_apply']['result'] == 'ok' and d['last_apply']['to'] == '$V1'"
	sx_rm caddy/Caddyfile
	sx_commit "v3: no Caddyfile" >/dev/null
	service good
	ap_expect_rc "$AP_CASE: the next good commit" 0 good
	sys_autopull st2 --json status
	ap_jq "$AP_CASE: --json: no stuck attempt once an apply succeeds" "$AP_TMP/st2.out" \
		"d['last_attempt'] is None"
	sys_autopull st3 status
	check "no attempt line" not grep -q "^  attempt:" "$AP_TMP/st3.out"
}

sx_pristine
t_failed_fix
t_still_failing
t_status_stuck
