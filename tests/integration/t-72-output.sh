# shellcheck shell=bash
# What autopull shows and writes about things it does not control, against the real user
# manager: unit globs match names with systemd's escapes ("\x2d") as systemd does. Sourced by
# run.sh after lib.sh (and fixtures.sh).

FX_SETTLE=0s
check() { ap_check "$AP_CASE: $1" "${@:2}"; }
inv() { ap_unit_prop "$1" InvocationID; }

# svc NAME: an enabled sleep-infinity service.
svc() {
	printf '[Unit]\nDescription=%s\nStartLimitIntervalSec=0\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=default.target\n' \
		"$1" | fx_write "systemd/$1"
}

# config EXTRA_RULE_YAML [GUARD_YAML]: env/ restarts what the rule says.
config() {
	{
		printf 'repo:\n  url: %s\n  branch: main\nscope: user\nunits: [systemd/]\n' "$FX_URL"
		printf 'files:\n  - src: env/\n    dest: %s/env/\n%s\n' "$FX_ETC" "$1"
		printf 'guard:\n  settle: 0s\n%s\n' "${2:-}"
	} | ap_user_write "$AP_CFG"
}

start() {
	ap_case "$1"
	fx_reset
	fx_origin file || { ap_fail "$1: fixture origin"; return 1; }
}

# -------------------------------------------------------------------------------------------
t_glob_noescape() {
	local unit='app\x2done.service' before v2
	start "a unit glob with systemd's \\x2d escape matches as systemctl's does" || return
	# single quotes: in a double-quoted YAML string "\x2d" would be YAML's own escape of '-'
	config "    restart: ['app\\x2d*.service']"
	svc "$unit"
	svc other.service
	fx_envfile v1
	fx_commit v1 >/dev/null || { ap_fail "$AP_CASE: commit v1"; return 1; }
	fx_apply glob-v1 || return 1
	check "$unit is active after the first apply" ap_wait_prop "$unit" ActiveState active 5
	before=$(inv "$unit")
	fx_envfile v2
	v2=$(fx_commit v2)
	ap_autopull glob-v2 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply of a change to env/" 0 glob-v2
	check "the restart: glob 'app\\x2d*.service' restarted $unit (new InvocationID)" \
		eval '[ "$(inv "$unit")" != "$before" ] && [ -n "$before" ]'
	check "$unit is active again" ap_wait_prop "$unit" ActiveState active 5
	check "the apply recorded $v2" [ "$(cat "$AP_STATE_DIR/applied")" = "$v2" ]
	ap_autopull glob-log --user -c "$AP_CFG" --json log 'app\x2d*.service'
	ap_expect_rc "$AP_CASE: log 'app\\x2d*.service'" 0 glob-log
	ap_jq "$AP_CASE: log with the glob lists the apply that restarted $unit" "$AP_TMP/glob-log.out" \
		"any(e['to'] == '$v2' and 'app\\\\x2done.service' in (e['units'] or '') for e in d)"
	ap_autopull glob-log-other --user -c "$AP_CFG" --json log 'other*.service'
	ap_jq "$AP_CASE: log with a glob matching no restarted unit lists no v2 apply" \
		"$AP_TMP/glob-log-other.out" "not any(e['to'] == '$v2' for e in d)"
}

t_glob_noescape
