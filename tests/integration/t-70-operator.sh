# shellcheck shell=bash
# The operator's surface against the real user manager: status (and --json), log, pin/unpin
# (and the pin a manual --commit makes), drift (status, diff, metric, drift: revert),
# revisions like HEAD~1, the refusal message, decoded exit statuses, check-config, and the
# metrics of the apply history. Sourced by run.sh after lib.sh (and fixtures.sh).

FX_SETTLE=0s
METRICS=$AP_STATE_DIR/metrics.prom

svc() {
	{
		printf '[Unit]\nDescription=%s\nStartLimitIntervalSec=0\n\n[Service]\n' "${2:-$1 v1}"
		printf 'ExecStart=/bin/sleep infinity\nExecReload=/bin/true\n'
		[ -n "${3:-}" ] && printf '%s\n' "$3"
		printf '\n[Install]\nWantedBy=default.target\n'
	} | fx_write "systemd/$1"
}

# metric NAME LABEL=VALUE: the value of the first sample of NAME with that label.
metric() {
	"$AP_PY" - "$METRICS" "$1" "${2:-}" <<-'PY'
	import sys
	from prometheus_client.parser import text_string_to_metric_families
	want = dict([sys.argv[3].split("=", 1)]) if sys.argv[3] else {}
	for f in text_string_to_metric_families(open(sys.argv[1]).read()):
	    for s in f.samples:
	        if s.name == sys.argv[2] and all(s.labels.get(k) == v for k, v in want.items()):
	            print(int(s.value)); sys.exit(0)
	PY
}

start() {
	ap_case "$1"
	fx_reset
	fx_origin file || { ap_fail "$1: fixture origin"; return 1; }
	if [ -n "${2:-}" ]; then FX_SETTLE= fx_config "$FX_URL" "" "$2"; else fx_config "$FX_URL"; fi
	svc web.service "web v1"
	svc worker.service "worker v1"
	fx_envfile v1
	V1=$(fx_commit "first: web and worker") || return 1
}

# on_tty NAME CMD...: CMD as the test user with a terminal on stdin/stdout/stderr (script(1));
# its output in $AP_TMP/NAME.tty.
on_tty() {
	local name=$1; shift
	ap_as_user script -qec "$*" /dev/null >"$AP_TMP/$name.tty" 2>&1 </dev/null
}
has_esc() { grep -q $'\e\[' "$1"; }

# -------------------------------------------------------------------------------------------
t_status_and_log() {
	local v2 v3
	start "status and log tell what happened" || return
	ap_autopull st0 --user -c "$AP_CFG" status
	ap_expect_rc "$AP_CASE: status before any apply" 0 st0
	check "says nothing is applied yet" grep -q "applied:  nothing yet" "$AP_TMP/st0.out"
	fx_apply v1 || return
	svc web.service "web v2"
	v2=$(fx_commit "web: v2")
	fx_apply v2 || return
	ap_autopull st1 --user -c "$AP_CFG" status
	ap_expect_rc "$AP_CASE: status" 0 st1
	check "applied commit with its subject and author" grep -q "applied:  $(short "$v2") \"web: v2\" by aptest fixture" "$AP_TMP/st1.out"
	check "last apply, result and what it did" grep -q "last:     apply ok .*restart=web.service" "$AP_TMP/st1.out"
	check "guard ok" grep -q "guard:    ok" "$AP_TMP/st1.out"
	check "no drift" grep -q "drift:    none" "$AP_TMP/st1.out"
	svc worker.service "worker v3"
	v3=$(fx_commit "worker: v3")
	ap_autopull fetch --user -c "$AP_CFG" --dry-run
	ap_autopull st2 --user -c "$AP_CFG" --json status
	ap_expect_rc "$AP_CASE: status --json" 0 st2
	ap_jq "$AP_CASE: JSON: applied, pending, last apply" "$AP_TMP/st2.out" \
		"d['applied'] == '$v2' and d['pending'] == 1 and d['tip'] == '$v3' and d['last_apply']['result'] == 'ok' and d['pin'] is None and d['drift'] == [] and d['guard']['ok'] is True"
	ap_autopull log1 --user -c "$AP_CFG" --json log
	ap_expect_rc "$AP_CASE: log --json" 0 log1
	ap_jq "$AP_CASE: two applies in the history, oldest first" "$AP_TMP/log1.out" \
		"[e['event'] for e in d] == ['apply', 'apply'] and d[1]['to'] == '$v2' and d[1]['result'] == 'ok' and d[1]['trigger'] == 'manual' and 'restart=web.service' in d[1]['units']"
	ap_autopull log2 --user -c "$AP_CFG" -n 1 log
	check "log -n 1: a header and one event" [ "$(wc -l <"$AP_TMP/log2.out")" = 2 ]
	ap_autopull log3 --user -c "$AP_CFG" --json log worker.service
	ap_expect_rc "$AP_CASE: log UNIT" 0 log3
	ap_jq "$AP_CASE: log worker.service: only the apply that started it" "$AP_TMP/log3.out" \
		"len(d) == 1 and d[0]['to'] == '$V1'"
	ap_autopull log4 --user -c "$AP_CFG" --json log 'w*.service' nothing.service
	ap_jq "$AP_CASE: log with a glob: both applies" "$AP_TMP/log4.out" "len(d) == 2"
	ap_autopull log5 --user -c "$AP_CFG" log nothing.service
	ap_expect_rc "$AP_CASE: log of a unit never acted on" 0 log5
	check "only the header" [ "$(wc -l <"$AP_TMP/log5.out")" = 1 ]
}

t_pin() {
	local v2 v3
	start "pin freezes deploys; apply --commit pins; unpin resumes" || return
	fx_apply v1 || return
	svc web.service "web v2"
	v2=$(fx_commit v2)
	svc web.service "web v3"
	v3=$(fx_commit v3)
	ap_autopull pinr --user -c "$AP_CFG" pin HEAD~1
	ap_expect_rc "$AP_CASE: pin without --reason" 2 pinr
	ap_autopull pin --user -c "$AP_CFG" --reason "hold v2 for the audit" pin HEAD~1
	ap_expect_rc "$AP_CASE: pin HEAD~1 (= v2) applies it" 0 pin
	check "applied = v2" [ "$(applied)" = "$v2" ]
	# No journald on this host: the journal entries are lines on stderr instead.
	check "(no journal socket here)" [ ! -S /run/systemd/journal/socket ]
	check "the pin's journal entry is on stderr" \
		grep -q "^autopull: pinned at $(short "$v2"): hold v2 for the audit\$" "$AP_TMP/pin.err"
	check "and its apply's" \
		grep -q "^autopull: applied $(short "$v2") (from $(short "$V1")) in [0-9]* ms: restart=web.service\$" "$AP_TMP/pin.err"
	ap_autopull tick --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: a tick while pinned" 0 tick
	check "says pinned, since when and why" grep -q "pinned at $(short "$v2") since .*hold v2 for the audit" "$AP_TMP/tick.out"
	check "the tip was not applied" [ "$(applied)" = "$v2" ]
	ap_autopull hb --user -c "$AP_CFG" heartbeat
	check "metric autopull_pinned 1" [ "$(metric autopull_pinned)" = 1 ]
	ap_autopull st --user -c "$AP_CFG" status
	check "status shows the pin" grep -q "pinned:   at $(short "$v2")" "$AP_TMP/st.out"
	ap_autopull unpin --user -c "$AP_CFG" unpin
	ap_expect_rc "$AP_CASE: unpin" 0 unpin
	check "the unpin's entry is on stderr" grep -q "^autopull: unpinned from $(short "$v2")\$" "$AP_TMP/unpin.err"
	check "the unpin says what comes next on stdout" grep -q "the next apply deploys the tip of 'main'" "$AP_TMP/unpin.out"
	fx_apply after-unpin || return
	check "the tip applies again" [ "$(applied)" = "$v3" ]
	# a manual rollback sticks
	ap_autopull back --user -c "$AP_CFG" apply --commit main~2
	ap_expect_rc "$AP_CASE: apply --commit main~2" 0 back
	check "applied = v1" [ "$(applied)" = "$V1" ]
	check "says it pinned" grep -q "pinned at $(short "$V1")" "$AP_TMP/back.err"
	fx_apply tick2 || return
	check "the next tick keeps the rollback" [ "$(applied)" = "$V1" ]
	ap_autopull events --user -c "$AP_CFG" --json log
	ap_jq "$AP_CASE: pins and unpins are in the history" "$AP_TMP/events.out" \
		"[e['event'] for e in d].count('pin') == 2 and 'unpin' in [e['event'] for e in d]"
}

t_drift() {
	local web
	start "drift: status, diff, metric, and drift: revert" || return
	fx_apply v1 || return
	sed -i '/^\[Service\]/a Environment=HOTFIX=1' "$AP_UNIT_DIR/web.service"
	chmod 0600 "$FX_ETC/env/app.env"
	ap_autopull st --user -c "$AP_CFG" --json status
	ap_jq "$AP_CASE: status lists both drifted files" "$AP_TMP/st.out" \
		"sorted((x['repo_path'], x['what']) for x in d['drift']) == [('env/app.env', 'mode'), ('systemd/web.service', 'bytes')]"
	ap_autopull diff --user -c "$AP_CFG" diff
	ap_expect_rc "$AP_CASE: diff (drift: exit 1, as diff(1))" 1 diff
	check "diff shows the hand-added line" grep -qx "+Environment=HOTFIX=1" "$AP_TMP/diff.out"
	check "diff names the mode" grep -q "mode should be 0644" "$AP_TMP/diff.out"
	fx_apply tick || return
	check "a tick warns about drift" grep -q "2 managed file(s) differ" "$AP_TMP/tick.err"
	ap_autopull hb --user -c "$AP_CFG" heartbeat
	check "metric autopull_drift_files 2" [ "$(metric autopull_drift_files)" = 2 ]
	check "warn mode leaves the hand edit" grep -q HOTFIX "$AP_UNIT_DIR/web.service"
	web=$(inv web.service)
	printf 'drift: revert\n' >>"$AP_CFG"
	ap_autopull revert --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: a tick with drift: revert" 0 revert
	check "the unit file is back" cmp -s "$FX_ORIGIN/systemd/web.service" "$AP_UNIT_DIR/web.service"
	check "the mode is back" [ "$(stat -c %a "$FX_ETC/env/app.env")" = 644 ]
	check "the reverted unit restarted" [ "$(inv web.service)" != "$web" ]
	ap_autopull events --user -c "$AP_CFG" --json log
	ap_jq "$AP_CASE: the revert is in the history" "$AP_TMP/events.out" "d[-1]['event'] == 'revert' and d[-1]['result'] == 'ok'"
	ap_autopull st2 --user -c "$AP_CFG" status
	check "no drift left" grep -q "drift:    none" "$AP_TMP/st2.out"
}

t_messages() {
	local v2
	start "messages: the refusal, decoded exit statuses, check-config, hints" "guard:
  watch: [loopy.service]
  max_restarts: 1
  window: 1m
  settle: 2s" || return
	printf '[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=200ms\n' |
		fx_write systemd/loopy.service
	fx_commit loopy >/dev/null
	fx_apply v1 || return
	ap_systemctl start loopy.service
	sleep 1.5
	svc web.service "web v2"
	v2=$(fx_commit v2)
	ap_autopull refuse --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: refused" 3 refuse
	check "names the unit and its restarts" grep -q "unit 'loopy.service' is looping: [0-9]* automatic restarts" "$AP_TMP/refuse.err"
	check "says when the window clears" grep -q "lets applies through again in .* if it stops restarting" "$AP_TMP/refuse.err"
	check "says how to proceed" grep -q "override-guard --reason TEXT" "$AP_TMP/refuse.err"
	check "metric autopull_refused_total{reason=guard}" [ "$(metric autopull_refused_total reason=guard)" -ge 1 ]
	check "metric autopull_apply_total{result=ok}" [ "$(metric autopull_apply_total result=ok)" -ge 1 ]
	ap_systemctl stop loopy.service
	ap_systemctl reset-failed loopy.service
	# a unit the manager cannot start is named for what it is
	svc worker.service "worker nogroup" "Group=aptest-no-such-group"
	fx_commit nogroup >/dev/null
	ap_autopull nogroup --user -c "$AP_CFG" --override-guard --reason "history has loopy" apply
	ap_expect_rc "$AP_CASE: a unit that cannot start" 1 nogroup
	check "decoded as 216/GROUP, not a crash loop" grep -q "worker.service' could not be started.*216/GROUP" "$AP_TMP/nogroup.err"
	# check-config: a validator that does not exist, a hint for a missing config
	fx_config "$FX_URL"
	sed -i 's|    reload: \[web.service\]|    reload: [web.service]\n    validate: [no-such-validator, "%s"]|' "$AP_CFG"
	ap_autopull cc --user -c "$AP_CFG" --json check-config
	ap_expect_rc "$AP_CASE: check-config with a missing validator" 2 cc
	ap_jq "$AP_CASE: --json names the problem" "$AP_TMP/cc.out" "d['ok'] is False and any('no-such-validator' in p for p in d['problems'])"
	ap_autopull nocfg --user -c "$AP_HOME/nope.yaml" status
	ap_expect_rc "$AP_CASE: a missing config" 2 nocfg
	check "hint names -c" grep -q "hint:.*-c FILE" "$AP_TMP/nocfg.err"
}

t_tty() {
	local v2
	start "a terminal: colour unless NO_COLOR, the settle line" "guard:
  settle: 1s" || return
	fx_apply v1 || return
	on_tty st "$AP_BIN --user -c $AP_CFG status"
	check "status on a terminal is in colour" has_esc "$AP_TMP/st.tty"
	on_tty nc "NO_COLOR=1 $AP_BIN --user -c $AP_CFG status"
	check "never with NO_COLOR" not has_esc "$AP_TMP/nc.tty"
	check "the same lines otherwise" grep -q "guard:    ok" "$AP_TMP/nc.tty"
	ap_autopull pipe --user -c "$AP_CFG" status
	check "never into a pipe" not has_esc "$AP_TMP/pipe.out"
	svc web.service "web v2"
	v2=$(fx_commit v2)
	on_tty ap "$AP_BIN --user -c $AP_CFG apply"
	check "a terminal is told what the settle waits for" \
		grep -q "watching 1 unit(s) for 1 s (guard.settle)" "$AP_TMP/ap.tty"
	check "applied" [ "$(applied)" = "$v2" ]
	svc web.service "web v3"
	fx_commit v3 >/dev/null
	ap_autopull ap2 --user -c "$AP_CFG" apply
	check "a pipe is not" not grep -q "watching" "$AP_TMP/ap2.err"
}

t_apply_json() {
	start "apply --json: one document with the result" || return
	ap_autopull j1 --user -c "$AP_CFG" --json apply
	ap_expect_rc "$AP_CASE: apply --json" 0 j1
	ap_jq "$AP_CASE: plan, result and jobs" "$AP_TMP/j1.out" \
		"d['result'] == 'ok' and d['to'] == '$V1' and sorted(j['unit'] for j in d['jobs']) == ['web.service', 'worker.service'] and all(j['state'] == 'done' for j in d['jobs'])"
	ap_autopull j2 --user -c "$AP_CFG" --json apply
	ap_jq "$AP_CASE: a no-op tick is one document too" "$AP_TMP/j2.out" "d['result'] == 'nothing-to-do'"
}

# -------------------------------------------------------------------------------------------
if [ ! -x "$AP_BIN" ]; then
	ap_fail "no autopull binary at $AP_BIN"
	exit 1
fi
t_status_and_log
t_pin
t_drift
t_messages
t_tty
t_apply_json
fx_reset
