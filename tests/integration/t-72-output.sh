# shellcheck shell=bash
# What autopull shows and writes about things it does not control, against the real user
# manager: commit subjects, authors, paths, file contents and reasons with terminal escape
# sequences and Latin-1 bytes reach no terminal raw (status, log, diff, the dry-run plan) and
# leave every --json document valid UTF-8; unit globs match names with systemd's escapes
# ("\x2d") as systemd does; a push endpoint that echoes the request does not get the token
# into the log, and a token sent over plain http:// to another host is warned about. Sourced
# by run.sh after lib.sh (and fixtures.sh).

FX_SETTLE=0s

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

# receiver TAG PORT ARGS...: receiver.py on 127.0.0.1:PORT, logging to $RCV/TAG.jsonl.
RCV=$AP_TMP/receiver
receiver() {
	local tag=$1 port=$2 i=0; shift 2
	install -d -o "$AP_UID" -g "$AP_GID" "$RCV" || return 1
	(ap_user_exec "$AP_PY" "$AP_BINDIR/receiver.py" --port "$port" --log "$RCV/$tag.jsonl" \
		--ready-file "$RCV/$tag.ready" "$@") >"$RCV/$tag.log" 2>&1 </dev/null 9>&- &
	ap_track "$tag" $!
	while [ ! -e "$RCV/$tag.ready" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
	[ -e "$RCV/$tag.ready" ] || { ap_fail "$AP_CASE: receiver $tag did not start"; return 1; }
}

t_push_token_not_logged() {
	local token=aptest-s3cret-7f3a9 port
	start "a push endpoint that echoes the request: the token stays out of the log" || return
	printf '%s\n' "$token" | ap_user_write "$AP_HOME/push.token"
	chmod 0600 "$AP_HOME/push.token"
	for port in $(shuf -i 20000-29999 -n 10); do ap_port_free "$port" && break; done
	receiver echo "$port" --status 500 --echo || return 1
	config "    restart: [other.service]" "  watch: [other.service]
  push: http://127.0.0.1:$port/api/v1/import/prometheus
  push_token_file: $AP_HOME/push.token"
	svc other.service
	fx_envfile v1
	fx_commit v1 >/dev/null || { ap_fail "$AP_CASE: commit v1"; return 1; }
	ap_autopull push-hb --user -c "$AP_CFG" heartbeat
	check "the endpoint got the token (so its answer quoted it)" \
		grep -qF "Bearer $token" "$RCV/echo.jsonl"
	check "the failed push is a warning with the status and the answer's length" \
		grep -qE "failed to push the metrics to '[^']*': HTTP 500, [0-9]+-byte answer not shown" \
		"$AP_TMP/push-hb.err"
	check "the token is nowhere in autopull's stderr or stdout" \
		eval '! grep -qF "$token" "$AP_TMP/push-hb.err" "$AP_TMP/push-hb.out"'
	check "no 'Bearer' in autopull's stderr" eval '! grep -qF Bearer "$AP_TMP/push-hb.err"'
	ap_untrack_stop echo
	ap_check_eq "$AP_CASE: the failure is counted" "push_failures 1" \
		"$(grep '^push_failures ' "$AP_STATE_DIR/counters" 2>/dev/null)"
	ap_autopull push-plain-loopback --user -c "$AP_CFG" check-config
	check "http:// to 127.0.0.1 with a token: no warning" \
		eval '! grep -q unencrypted "$AP_TMP/push-plain-loopback.err"'

	# 192.0.2.0/24 is TEST-NET-1: never routed, nothing is sent by check-config or status
	config "    restart: [other.service]" "  push: http://192.0.2.7:8428/api/v1/import/prometheus
  push_token_file: $AP_HOME/push.token"
	ap_autopull push-plain-cc --user -c "$AP_CFG" check-config
	ap_expect_rc "$AP_CASE: check-config with a token over plain http:// still passes" 0 push-plain-cc
	check "check-config warns that the token goes unencrypted to 192.0.2.7" \
		grep -qE "push credentials go to 'http://192\.0\.2\.7:8428/[^']*' unencrypted" \
		"$AP_TMP/push-plain-cc.err"
	ap_autopull push-plain-status --user -c "$AP_CFG" status
	check "loading the config for status warns too" \
		grep -qF "unencrypted" "$AP_TMP/push-plain-status.err"
	config "    restart: [other.service]" "  push: https://192.0.2.7:8428/api/v1/import/prometheus
  push_token_file: $AP_HOME/push.token"
	ap_autopull push-https-cc --user -c "$AP_CFG" check-config
	check "https:// with a token: no warning" eval '! grep -q unencrypted "$AP_TMP/push-https-cc.err"'
}

# clean FILE [tabs]: FILE is strict UTF-8 with no control character (C0 but newline, and tab
# with "tabs"; DEL; C1), so nothing in it can steer a terminal.
clean() {
	"$AP_PY" - "$@" <<-'PY'
	import sys
	data = open(sys.argv[1], "rb").read()
	try:
	    text = data.decode("utf-8", "strict")
	except UnicodeDecodeError as e:
	    sys.exit("%s: not UTF-8: %s" % (sys.argv[1], e))
	keep = "\n\t" if len(sys.argv) > 2 else "\n"
	bad = [c for c in text if (ord(c) < 0x20 and c not in keep) or 0x7f <= ord(c) <= 0x9f]
	if bad:
	    sys.exit("%s: control characters %r" % (sys.argv[1], bad[:5]))
	PY
}

# json_ok FILE EXPR: FILE is strict UTF-8 and JSON, and EXPR (python, over d) is true.
json_ok() {
	"$AP_PY" - "$@" <<-'PY'
	import json, sys
	data = open(sys.argv[1], "rb").read()
	try:
	    d = json.loads(data.decode("utf-8", "strict"))
	except (UnicodeDecodeError, ValueError) as e:
	    sys.exit("%s: %s" % (sys.argv[1], e))
	if not eval(sys.argv[2]):
	    sys.exit("%s: not %s" % (sys.argv[1], sys.argv[2]))
	PY
}

t_hostile_text() {
	# OSC 52 (writes the clipboard), a screen clear, CSI as a C1 character, Latin-1 bytes
	local osc=$'\e]52;c;aGFjaw==\a' cls=$'\e[2J\e[H' csi=$'\xc2\x9b' l1=$'\xe9'
	local author subject reason newfile v1 v2
	author="Ren${l1} ${osc}Mallory" subject="deploy ${cls}${csi}31m caf${l1}"
	# (the state's line format already blanks C0 in a reason: C1 and Latin-1 get through)
	reason="frozen ${csi}2J by Ren${l1}" newfile="env/caf${l1}${csi}.env"
	start "commit text with escape sequences and Latin-1: escaped for people, UTF-8 in JSON" || return
	config "    restart: [other.service]"
	svc other.service
	printf 'APP=1 %s\n' "$osc" | fx_write env/app.env
	chown -R "$AP_UID:$AP_GID" "$FX_ORIGIN"
	# git re-encodes a message that is not UTF-8 unless told that it is Latin-1
	ap_git "$FX_ORIGIN" add -A &&
		ap_git "$FX_ORIGIN" -c "user.name=$author" -c i18n.commitEncoding=ISO-8859-1 \
			commit -q -m "$subject" ||
		{ ap_fail "$AP_CASE: hostile commit"; return 1; }
	v1=$(ap_repo_head "$FX_ORIGIN")
	check "precondition: the commit holds the raw bytes of the subject" \
		eval '[ "$(ap_git "$FX_ORIGIN" cat-file commit HEAD | tail -n 1)" = "$subject" ]'
	fx_apply hostile-v1 || return 1

	printf 'new %s\n' "$cls" | fx_write "$newfile"
	v2=$(fx_commit "v2 ${osc}") || { ap_fail "$AP_CASE: commit v2"; return 1; }
	ap_autopull hostile-dry --user -c "$AP_CFG" --dry-run
	ap_expect_rc "$AP_CASE: --dry-run" 0 hostile-dry
	check "--dry-run: the plan names the new file, escaped" \
		grep -qF 'caf\xe9\xc2\x9b.env' "$AP_TMP/hostile-dry.out"
	check "--dry-run: stdout is UTF-8 without control characters" clean "$AP_TMP/hostile-dry.out"
	check "--dry-run: stderr too" clean "$AP_TMP/hostile-dry.err"
	ap_autopull hostile-dry-json --user -c "$AP_CFG" --dry-run --json
	ap_expect_rc "$AP_CASE: --dry-run --json" 0 hostile-dry-json
	check "--dry-run --json: valid UTF-8 JSON, the file's bytes as \\u00XX (Latin-1)" \
		json_ok "$AP_TMP/hostile-dry-json.out" \
		"any(f['path'] == 'env/caf\u00e9\u009b.env' for f in d['files'])"

	# the host's copy drifts, with an escape sequence of its own
	printf 'X=%s\n' "$cls" >>"$FX_ETC/env/app.env"
	ap_autopull hostile-pin --user -c "$AP_CFG" pin "$v1" --reason "$reason"
	ap_expect_rc "$AP_CASE: pin with a reason holding escapes" 0 hostile-pin

	ap_autopull hostile-pinned --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply while pinned" 0 hostile-pinned
	check "apply while pinned shows the reason, escaped" \
		grep -qF ': frozen \xc2\x9b2J by Ren\xe9; ' "$AP_TMP/hostile-pinned.out"
	check "apply while pinned: stdout is UTF-8 without control characters" \
		clean "$AP_TMP/hostile-pinned.out"

	ap_autopull hostile-status --user -c "$AP_CFG" status
	ap_expect_rc "$AP_CASE: status" 0 hostile-status
	check "status shows the subject and the author, escaped" \
		grep -qF 'deploy \x1b[2J\x1b[H\xc2\x9b31m caf\xe9" by Ren\xe9 \x1b]52;c;aGFjaw==\x07Mallory' \
		"$AP_TMP/hostile-status.out"
	check "status: stdout is UTF-8 without control characters" clean "$AP_TMP/hostile-status.out"
	check "status: stderr too" clean "$AP_TMP/hostile-status.err"
	ap_autopull hostile-status-json --user -c "$AP_CFG" status --json
	ap_expect_rc "$AP_CASE: status --json" 0 hostile-status-json
	check "status --json: valid UTF-8 JSON with subject, author and reason as Latin-1 reads them" \
		json_ok "$AP_TMP/hostile-status-json.out" \
		"d['subject'] == 'deploy \x1b[2J\x1b[H\u009b31m caf\u00e9' and d['author'].startswith('Ren\u00e9 \x1b]52;c;aGFjaw==\x07Mallory') and d['pin']['reason'] == 'frozen \u009b2J by Ren\u00e9'"

	ap_autopull hostile-log --user -c "$AP_CFG" log
	ap_expect_rc "$AP_CASE: log" 0 hostile-log
	check "log shows the pin's reason, escaped" \
		grep -qF 'frozen \xc2\x9b2J by Ren\xe9' "$AP_TMP/hostile-log.out"
	check "log: stdout is UTF-8 without control characters" clean "$AP_TMP/hostile-log.out"
	ap_autopull hostile-log-json --user -c "$AP_CFG" log --json
	ap_expect_rc "$AP_CASE: log --json" 0 hostile-log-json
	check "log --json: valid UTF-8 JSON with the reason" json_ok "$AP_TMP/hostile-log-json.out" \
		"any(e['reason'] == 'frozen \u009b2J by Ren\u00e9' for e in d)"

	ap_autopull hostile-diff --user -c "$AP_CFG" diff
	ap_expect_rc "$AP_CASE: diff (1: the host differs)" 1 hostile-diff
	check "diff shows both sides' escape sequences, escaped" \
		eval 'grep -qF -- " APP=1 \\x1b]52;c;aGFjaw==\\x07" "$AP_TMP/hostile-diff.out" &&
		      grep -qF -- "+X=\\x1b[2J\\x1b[H" "$AP_TMP/hostile-diff.out"'
	check "diff: stdout is UTF-8 without control characters but tabs" \
		clean "$AP_TMP/hostile-diff.out" tabs
}

t_hostile_text
t_glob_noescape
t_push_token_not_logged
