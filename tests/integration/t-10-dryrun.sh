# shellcheck shell=bash
# The read side: `autopull --user -c CFG --dry-run --json` plans against the real user manager.
# Sourced by run.sh after lib.sh (and fixtures.sh).
#
# --dry-run plans from the last APPLIED commit, so the cases that depend on unit states first
# apply v1 (`autopull apply`; if that fails the case fails) and then set the states they need
# with systemctl. Cases that do not depend on state use `--from SHA --commit SHA` and need no
# applied state. Every case starts from fx_reset (no units, no state, no origin).
#
# Plan contract (see the brief in the report): files[] {path,dest,change,kind[,old_path]},
# daemon_reload, units[] {unit,action,reasons,state,if_active}, unmapped[].

# J DESC EXPR: a check on the current plan ($PLAN, set by plan).
J() { ap_jq "$AP_CASE: $1" "$PLAN" "$2"; }

# plan NAME [ARGS...]: dry-run into $AP_TMP/NAME.out; returns 1 (the rest of the case is
# skipped) if it did not exit 0 with a JSON object.
plan() {
	local name=$1; shift
	PLAN=$AP_TMP/$name.out
	fx_dryrun "$name" "$@"
}

# case_start NAME [file|http]: fresh slate, empty origin, config pointing at it.
case_start() {
	ap_case "$1"
	fx_reset
	fx_origin "${2:-file}" || { ap_fail "$1: fixture origin"; return 1; }
	fx_config "$FX_URL"
}

# baseline [file|http]: v1 committed and applied; web.service active, worker.service inactive.
# Sets V1.
baseline() {
	fx_base
	V1=$(fx_commit v1) || { ap_fail "$AP_CASE: commit v1"; return 1; }
	fx_apply "${AP_CASE//[^A-Za-z0-9]/-}-apply" || return 1
	fx_unit_state web.service active && fx_unit_state worker.service inactive
}

UD=$AP_UNIT_DIR
BASE_FILES="{'systemd/web.service', 'systemd/web.service.d/10-env.conf', 'systemd/worker.service',
 'systemd/tick.timer', 'systemd/tick.service', 'systemd/foo@.service', 'caddy/Caddyfile', 'env/app.env'}"
# Every unit entry has the documented keys; every file entry too.
SCHEMA="all({'unit', 'action', 'reasons', 'state'} <= set(u) and isinstance(u['reasons'], list) for u in d['units'])
 and all({'path', 'dest', 'change', 'kind'} <= set(f) for f in d['files'])
 and isinstance(d['daemon_reload'], bool) and isinstance(d.get('unmapped', []), list)"
# The units with an action other than none.
ACTIVE_ACTIONS="{u for u, e in U.items() if e['action'] != 'none'}"

# -------------------------------------------------------------------------------------------
t_first_run() {
	local mode=${1:-file} sha
	case_start "first run ($mode)" "$mode" || return
	fx_base
	printf 'operator notes, not a unit\n' | fx_write systemd/notes.txt
	sha=$(fx_commit v1) || { ap_fail "$AP_CASE: commit"; return; }
	plan "first-$mode" || return
	J "from is null" "d['from'] is None"
	J "to is the origin's main" "d['to'] == '$sha'"
	J "schema" "$SCHEMA"
	J "files are exactly the mapped files" "set(F) == $BASE_FILES"
	J "every file is an add" "paths('add') == set(F)"
	J "unit kind and dest" "F['systemd/web.service']['kind'] == 'unit' and F['systemd/web.service']['dest'] == '$UD/web.service'"
	J "drop-in kind and dest" "F['systemd/web.service.d/10-env.conf']['kind'] == 'dropin' and F['systemd/web.service.d/10-env.conf']['dest'] == '$UD/web.service.d/10-env.conf'"
	J "rule file kind and dest" "F['caddy/Caddyfile']['kind'] == 'file' and F['caddy/Caddyfile']['dest'] == '$FX_ETC/caddy/Caddyfile'"
	J "directory rule dest" "F['env/app.env']['dest'] == '$FX_ETC/env/app.env'"
	J "template is a unit" "F['systemd/foo@.service']['kind'] == 'unit'"
	J "daemon_reload" "d['daemon_reload'] is True"
	J "enable-start exactly for the units with [Install]" \
		"$ACTIVE_ACTIONS == {'web.service', 'worker.service', 'tick.timer'} and units('enable-start') == {'web.service', 'worker.service', 'tick.timer'}"
	J "web.service reasons name its unit file" "'systemd/web.service' in U['web.service']['reasons']"
	J "notes.txt is unmapped" "d['unmapped'] == ['systemd/notes.txt']"
	J "no old_path outside renames" "all('old_path' not in f for f in d['files'])"
}

t_new_unit() {
	local v1 v2
	case_start "new unit (--from/--commit)" || return
	fx_base
	v1=$(fx_commit v1)
	fx_service extra.service install
	fx_service static.service
	v2=$(fx_commit "v2: new units")
	plan new-unit --from "$v1" --commit "$v2" || return
	J "from/to" "d['from'] == '$v1' and d['to'] == '$v2'"
	J "schema" "$SCHEMA"
	J "two unit adds" "set(F) == {'systemd/extra.service', 'systemd/static.service'} and paths('add') == set(F) and all(f['kind'] == 'unit' for f in d['files'])"
	J "dest in the unit dir" "F['systemd/extra.service']['dest'] == '$UD/extra.service'"
	J "daemon_reload" "d['daemon_reload'] is True"
	J "enable-start only for the one with [Install]" "$ACTIVE_ACTIONS == {'extra.service'} and U['extra.service']['action'] == 'enable-start'"
	J "the static one is installed only" "U.get('static.service', {'action': 'none'})['action'] == 'none'"
	J "nothing unmapped" "d.get('unmapped', []) == []"
}

t_modified_active() {
	local mode=${1:-file} inv v2
	case_start "modified active unit ($mode)" "$mode" || return
	baseline || return
	inv=$(ap_unit_prop web.service InvocationID)
	fx_service web.service install "web v2"
	v2=$(fx_commit "v2: web")
	plan "mod-active-$mode" || return
	J "from is the applied v1, to is v2" "d['from'] == '$V1' and d['to'] == '$v2'"
	J "schema" "$SCHEMA"
	J "one unit modify" "list(F) == ['systemd/web.service'] and F['systemd/web.service']['change'] == 'modify' and F['systemd/web.service']['kind'] == 'unit'"
	J "daemon_reload" "d['daemon_reload'] is True"
	J "web.service restart, state active" "U['web.service']['action'] == 'restart' and U['web.service']['state'] == 'active'"
	J "reasons" "U['web.service']['reasons'] == ['systemd/web.service']"
	J "nothing else acts" "$ACTIVE_ACTIONS == {'web.service'}"
	[ "$mode" = file ] || return
	# A dry run changes nothing.
	ap_check_eq "$AP_CASE: dry-run did not restart web.service" "$inv" "$(ap_unit_prop web.service InvocationID)"
	ap_check "$AP_CASE: dry-run did not install the new unit file" \
		eval '[ -f "$UD/web.service" ] && ! grep -q "web v2" "$UD/web.service"'
	plan mod-active-again || return
	J "a second dry-run plans the same" "d['from'] == '$V1' and d['to'] == '$v2' and U['web.service']['action'] == 'restart'"
}

t_modified_inactive() {
	case_start "modified inactive unit" || return
	baseline || return
	fx_service worker.service install "worker v2"
	fx_commit "v2: worker" >/dev/null
	plan mod-inactive || return
	J "one unit modify" "list(F) == ['systemd/worker.service'] and F['systemd/worker.service']['change'] == 'modify'"
	J "daemon_reload" "d['daemon_reload'] is True"
	J "worker.service none" "U.get('worker.service', {'action': 'none'})['action'] == 'none'"
	J "state inactive (if listed)" "'worker.service' not in U or U['worker.service']['state'] == 'inactive'"
	J "nothing acts" "$ACTIVE_ACTIONS == set()"
}

t_timer() {
	case_start "modified active timer" || return
	baseline || return
	fx_unit_state tick.timer active || return
	fx_timer tick.timer "tick v2"
	fx_commit "v2: timer" >/dev/null
	plan timer || return
	J "timer modify" "list(F) == ['systemd/tick.timer'] and F['systemd/tick.timer']['change'] == 'modify' and F['systemd/tick.timer']['kind'] == 'unit'"
	J "daemon_reload" "d['daemon_reload'] is True"
	J "tick.timer restart, state active" "U['tick.timer']['action'] == 'restart' and U['tick.timer']['state'] == 'active'"
	J "its service is not touched" "$ACTIVE_ACTIONS == {'tick.timer'}"
}

t_dropin() {
	case_start "drop-in change" || return
	baseline || return
	fx_dropin web.service 10-env.conf v2
	fx_commit "v2: drop-in" >/dev/null
	plan dropin || return
	J "drop-in modify" "list(F) == ['systemd/web.service.d/10-env.conf'] and F['systemd/web.service.d/10-env.conf']['change'] == 'modify' and F['systemd/web.service.d/10-env.conf']['kind'] == 'dropin'"
	J "daemon_reload" "d['daemon_reload'] is True"
	J "web.service restart" "U['web.service']['action'] == 'restart' and U['web.service']['state'] == 'active'"
	J "reason is the drop-in" "'systemd/web.service.d/10-env.conf' in U['web.service']['reasons']"
	J "nothing else acts" "$ACTIVE_ACTIONS == {'web.service'}"
}

t_template() {
	case_start "template with active instances" || return
	baseline || return
	fx_unit_state foo@a.service active && fx_unit_state foo@b.service active || return
	fx_template foo@.service "foo v2"
	fx_commit "v2: template" >/dev/null
	plan template || return
	J "template modify" "list(F) == ['systemd/foo@.service'] and F['systemd/foo@.service']['change'] == 'modify'"
	J "daemon_reload" "d['daemon_reload'] is True"
	J "both instances restart" "units('restart') == {'foo@a.service', 'foo@b.service'}"
	J "instances are active, reason the template" \
		"all(U[i]['state'] == 'active' and 'systemd/foo@.service' in U[i]['reasons'] for i in ('foo@a.service', 'foo@b.service'))"
	J "the template itself gets no action" "U.get('foo@.service', {'action': 'none'})['action'] == 'none'"
	J "nothing else acts" "$ACTIVE_ACTIONS == {'foo@a.service', 'foo@b.service'}"
}

t_deleted() {
	local v1 v2
	case_start "deleted unit (--from/--commit)" || return
	fx_base
	v1=$(fx_commit v1)
	fx_rm systemd/worker.service
	v2=$(fx_commit "v2: no worker")
	plan deleted --from "$v1" --commit "$v2" || return
	J "unit delete" "list(F) == ['systemd/worker.service'] and F['systemd/worker.service']['change'] == 'delete' and F['systemd/worker.service']['kind'] == 'unit'"
	J "daemon_reload" "d['daemon_reload'] is True"
	J "worker.service disable-stop" "U['worker.service']['action'] == 'disable-stop'"
	J "nothing else acts" "$ACTIVE_ACTIONS == {'worker.service'}"
}

t_rule_reload() {
	case_start "config rules: reload and restart" || return
	baseline || return
	fx_caddyfile v2
	fx_envfile v2
	fx_commit "v2: caddy + env" >/dev/null
	plan rules || return
	J "two file modifies" "set(F) == {'caddy/Caddyfile', 'env/app.env'} and paths('modify') == set(F) and all(f['kind'] == 'file' for f in d['files'])"
	J "dests" "F['caddy/Caddyfile']['dest'] == '$FX_ETC/caddy/Caddyfile' and F['env/app.env']['dest'] == '$FX_ETC/env/app.env'"
	J "no daemon_reload without a unit change" "d['daemon_reload'] is False"
	J "web.service reload (active)" "U['web.service']['action'] == 'reload' and U['web.service']['state'] == 'active' and U['web.service']['reasons'] == ['caddy/Caddyfile']"
	J "worker.service none (inactive)" "U.get('worker.service', {'action': 'none'})['action'] == 'none'"
	J "nothing else acts" "$ACTIVE_ACTIONS == {'web.service'}"
	# The plan reads live states: with worker running the same change restarts it.
	fx_unit_state worker.service active || return
	plan rules-worker-active || return
	J "worker.service restart once active" "U['worker.service']['action'] == 'restart' and U['worker.service']['state'] == 'active' and U['worker.service']['reasons'] == ['env/app.env']"
}

t_rename() {
	local v1 v2
	case_start "exact rename (--from/--commit)" || return
	fx_base
	v1=$(fx_commit v1)
	mv "$FX_ORIGIN/systemd/worker.service" "$FX_ORIGIN/systemd/worker2.service"
	v2=$(fx_commit "v2: rename worker")
	plan rename --from "$v1" --commit "$v2" || return
	J "one rename entry" "list(F) == ['systemd/worker2.service'] and F['systemd/worker2.service']['change'] == 'rename'"
	J "old_path" "F['systemd/worker2.service']['old_path'] == 'systemd/worker.service'"
	J "kind and dest" "F['systemd/worker2.service']['kind'] == 'unit' and F['systemd/worker2.service']['dest'] == '$UD/worker2.service'"
	J "daemon_reload" "d['daemon_reload'] is True"
	J "old name disable-stop, new name enable-start" \
		"U['worker.service']['action'] == 'disable-stop' and U['worker2.service']['action'] == 'enable-start'"
	J "nothing else acts" "$ACTIVE_ACTIONS == {'worker.service', 'worker2.service'}"
}

t_mode() {
	local v1 v2
	case_start "mode change (--from/--commit)" || return
	fx_base
	v1=$(fx_commit v1)
	chmod +x "$FX_ORIGIN/env/app.env"
	v2=$(fx_commit "v2: chmod +x")
	plan mode --from "$v1" --commit "$v2" || return
	J "one mode entry" "list(F) == ['env/app.env'] and F['env/app.env']['change'] == 'mode' and F['env/app.env']['kind'] == 'file'"
	J "no daemon_reload" "d['daemon_reload'] is False"
	J "worker.service not running: nothing acts" "$ACTIVE_ACTIONS == set()"
}

t_noop() {
	local v2
	case_start "no-op" || return
	baseline || return
	plan noop || return
	J "from == to == applied v1" "d['from'] == '$V1' and d['to'] == '$V1'"
	J "empty plan" "d['files'] == [] and d['units'] == [] and d['daemon_reload'] is False and d.get('unmapped', []) == []"
	plan noop-explicit --from "$V1" --commit "$V1" || return
	J "--from v1 --commit v1 is empty too" "d['files'] == [] and d['units'] == [] and d['daemon_reload'] is False"
	fx_service web.service install "web v2"
	v2=$(fx_commit "v2: web")
	plan noop-nofetch --no-fetch || return
	J "--no-fetch does not see the new origin commit $v2" "d['to'] == '$V1' and d['files'] == []"
}

t_bad_config() {
	local line
	case_start "bad config" || return
	fx_base
	fx_commit v1 >/dev/null
	# An unknown top-level key, appended as the last line: column 1.
	fx_config "$FX_URL" "$AP_CFG" "bogus: 1"
	line=$(wc -l <"$AP_CFG")
	ap_autopull badcfg-top --user -c "$AP_CFG" --dry-run --json
	ap_expect_rc "$AP_CASE: unknown top-level key" 2 badcfg-top
	ap_check "$AP_CASE: stderr names autopull.yaml:$line:1:" grep -qF "autopull.yaml:$line:1:" "$AP_TMP/badcfg-top.err" ||
		sed -n '1,5s/^/        stderr: /p' "$AP_TMP/badcfg-top.err"
	ap_check "$AP_CASE: nothing on stdout" test ! -s "$AP_TMP/badcfg-top.out"
	# An unknown key nested in repo: line 4, column 3.
	printf 'repo:\n  url: %s\n  branch: main\n  brnch: main\nscope: user\nunits: [systemd/]\n' "$FX_URL" |
		ap_user_write "$AP_CFG"
	ap_autopull badcfg-nested --user -c "$AP_CFG" --dry-run --json
	ap_expect_rc "$AP_CASE: unknown nested key" 2 badcfg-nested
	ap_check "$AP_CASE: stderr names autopull.yaml:4:3:" grep -qF "autopull.yaml:4:3:" "$AP_TMP/badcfg-nested.err" ||
		sed -n '1,5s/^/        stderr: /p' "$AP_TMP/badcfg-nested.err"
}

t_unreachable() {
	case_start "unreachable remote" || return
	fx_config "file:///nonexistent"
	ap_autopull unreach-file --user -c "$AP_CFG" --dry-run --json
	ap_expect_rc "$AP_CASE: file:///nonexistent" 75 unreach-file
	# Port 1 on loopback: connection refused.
	fx_config "http://127.0.0.1:1/origin.git"
	ap_autopull unreach-http --user -c "$AP_CFG" --dry-run --json
	ap_expect_rc "$AP_CASE: http://127.0.0.1:1 (refused)" 75 unreach-http
}

# -------------------------------------------------------------------------------------------
if [ ! -x "$AP_BIN" ]; then
	ap_fail "no autopull binary at $AP_BIN"
	exit 1
fi

t_first_run file
t_new_unit
t_modified_active file
t_modified_inactive
t_timer
t_dropin
t_template
t_deleted
t_rule_reload
t_rename
t_mode
t_noop
t_first_run http
t_modified_active http
t_bad_config
t_unreachable
fx_reset
