# shellcheck shell=bash
# Beyond plain unit files, against the real user manager: autopull's own units in the
# repository it applies. autopull runs as the repository's infrastructure-auto-pull.service
# (the shipped unit, started by the manager) while the commit it applies changes that very
# service and its timer: the run must finish (exit 0, commit recorded) without restarting
# itself, restart the timer, and the service's next run must use the new definition.
# Sourced by run.sh after lib.sh.

SELF=infrastructure-auto-pull.service
SELF_TIMER=infrastructure-auto-pull.timer
WAIT=30

# self_unit VERSION: the shipped user service, naming the binary under test, writing VERSION
# to $FX_LOG/self.versions before each run and the dry-run plan of that run (JSON) to
# $FX_LOG/self.VERSION.plan; the apply's own output goes to $FX_LOG/self.out.
self_unit() {
	{
		sed -e "s|/usr/local/bin/autopull|$AP_BIN|" -e '/^Description=/d' \
			"$AP_ROOT/units/user/$SELF" | sed "/^\[Unit\]/a Description=self $1"
		printf 'ExecStartPre=/bin/sh -c "echo %s >> %s/self.versions"\n' "$1" "$FX_LOG"
		printf 'ExecStartPre=/bin/sh -c "%s --user --dry-run --json > %s/self.%s.plan"\n' \
			"$AP_BIN" "$FX_LOG" "$1"
		printf 'StandardOutput=append:%s/self.out\nStandardError=append:%s/self.out\n' \
			"$FX_LOG" "$FX_LOG"
	} | fx_write "systemd/$SELF"
}

# self_timer DESCRIPTION: the shipped timer with a description of its own and no early run
# (this test starts the service itself, as the timer would).
self_timer() {
	sed -e "s/^Description=.*/Description=$1/" -e 's/^OnActiveSec=.*/OnActiveSec=1h/' \
		-e 's/^RandomizedDelaySec=.*/RandomizedDelaySec=0/' \
		"$AP_ROOT/units/user/$SELF_TIMER" | fx_write "systemd/$SELF_TIMER"
}

# run_self NAME: start the service as the timer does and wait (bounded) for it to end.
run_self() {
	local i=0
	ap_systemctl start --no-block -- "$SELF" || return 1
	while [ $i -lt $((WAIT * 10)) ]; do
		case $(ap_unit_prop "$SELF" ActiveState) in
		inactive|failed) return 0 ;;
		esac
		sleep 0.1; i=$((i + 1))
	done
	return 1
}

# self_v1 NAME: a fresh origin whose v1 holds web.service, the service and its timer, applied
# from the shell (sets V1).
self_v1() {
	fx_reset
	fx_origin file || ap_fail "$AP_CASE: fixture origin"
	fx_config "$FX_URL"
	fx_service web.service install "web v1"
	self_unit v1
	self_timer "timer v1"
	V1=$(fx_commit v1)
	fx_apply "$1" || true
}

plan_unit() { ap_jqv "$FX_LOG/self.$1.plan" "[u for u in d['units'] if u['unit'] == '$2'][0]['$3']"; }

ap_case "own unit changed while it runs the apply"
self_v1 own-v1
check "v1: the service is installed, the timer runs" \
	[ "$(ap_unit_prop "$SELF_TIMER" ActiveState)" = active ]
T1=$(inv "$SELF_TIMER")

self_unit v2
self_timer "timer v2"
fx_service web.service install "web v2"
V2=$(fx_commit v2)
W1=$(inv web.service)
check "the service ran to its end" run_self
check "its run succeeded (Result=success)" [ "$(ap_unit_prop "$SELF" Result)" = success ]
check "its run exited 0" [ "$(ap_unit_prop "$SELF" ExecMainStatus)" = 0 ]
check "v2 recorded as applied" [ "$(applied)" = "$V2" ]
check "this run was the old definition's" [ "$(cat "$FX_LOG/self.versions")" = v1 ]
check "the new service file is installed" \
	cmp -s "$FX_ORIGIN/systemd/$SELF" "$AP_UNIT_DIR/$SELF"
check "the manager loaded it (daemon-reload)" \
	[ "$(ap_unit_prop "$SELF" NeedDaemonReload)" = no ]
check "its timer was restarted (new InvocationID)" [ "$(inv "$SELF_TIMER")" != "$T1" ]
check "the timer runs its new definition" [ "$(ap_unit_prop "$SELF_TIMER" Description)" = "timer v2" ]
check "web.service restarted as any unit" [ "$(inv web.service)" != "$W1" ]
check "the plan holds the service back" [ "$(plan_unit v1 "$SELF" action)" = none ]
check "the plan says why (JSON)" \
	[ "$(plan_unit v1 "$SELF" note)" = "own unit: takes effect on the next run" ]
check "the plan restarts the timer (JSON)" [ "$(plan_unit v1 "$SELF_TIMER" action)" = restart ]
check "the printed plan says why" \
	grep -q "none *$SELF .*(own unit: takes effect on the next run)" "$FX_LOG/self.out"

check "the next run ran to its end" run_self
check "the next run used the new definition" \
	[ "$(tr '\n' ' ' <"$FX_LOG/self.versions")" = "v1 v2 " ]
check "the next run succeeded" [ "$(ap_unit_prop "$SELF" Result)" = success ]
check "no unit failed" [ -z "$(ap_systemctl list-units --failed --no-legend --plain)" ]
fx_reset

ap_case "a journal owing a restart of the running unit is not asked from inside"
# An apply that restarted the service it ran in was killed by that restart, its journal still
# owing the restart; every resume would kill itself the same way. Made here by killing an apply
# after its daemon-reload and naming the service in the journal's owed restart.
self_v1 owed-v1
fx_service web.service install "web v2"
V2=$(fx_commit v2)
ap_as_user env AUTOPULL_TEST_CRASH=after-reload "$AP_BIN" --user -c "$AP_CFG" apply \
	>/dev/null 2>&1 </dev/null
check "precondition: the journal owes the restart" grep -q "^unit restart pending new web.service$" "$AP_STATE_DIR/journal"
sed "s/^unit restart pending new web.service$/unit restart pending new $SELF/" "$AP_STATE_DIR/journal" |
	ap_user_write "$AP_STATE_DIR/journal.new" && ap_as_user mv "$AP_STATE_DIR/journal.new" "$AP_STATE_DIR/journal"
check "the service ran to its end" run_self
check "its run succeeded (Result=success)" [ "$(ap_unit_prop "$SELF" Result)" = success ]
check "it ran once (not restarted from inside)" [ "$(cat "$FX_LOG/self.versions")" = v1 ]
check "v2 recorded as applied" [ "$(applied)" = "$V2" ]
check "the journal is gone" [ ! -e "$AP_STATE_DIR/journal" ]
check "the log says why" grep -q "the owed restart of '$SELF', the unit running this apply, is not done" "$FX_LOG/self.out"
fx_reset

# --- user-tmpfiles.d -----------------------------------------------------------------------
TMPF_DIR=$AP_HOME/.config/user-tmpfiles.d
APP_DIR=$AP_HOME/app-run

# tmpf_config: the fixture config with a rule for tmpfiles/ → ~/.config/user-tmpfiles.d/
# that restarts app.service.
tmpf_config() {
	{
		fx_config_head "$FX_URL"
		printf '  - src: tmpfiles/\n    dest: %s/\n    restart: [app.service]\n' "$TMPF_DIR"
		printf 'guard:\n  settle: 1s\n'
	} | ap_user_write "$AP_CFG"
}

# app_unit VERSION [needs]: app.service; with "needs" its ExecStartPre refuses to start unless
# $APP_DIR is a directory of mode 0750 (what the tmpfiles.d line makes).
app_unit() {
	{
		printf '[Unit]\nDescription=app %s\nStartLimitIntervalSec=0\n\n[Service]\n' "$1"
		[ "${2:-}" = needs ] &&
			printf 'ExecStartPre=/bin/sh -c "test $(stat -c %%%%a %s) = 750"\n' "$APP_DIR"
		printf 'ExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=default.target\n'
	} | fx_write systemd/app.service
}

ap_case "user tmpfiles.d: the directory exists before the service that needs it starts"
fx_reset
fx_origin file || ap_fail "$AP_CASE: fixture origin"
tmpf_config
app_unit v1
fx_commit v1 >/dev/null
fx_apply tmpf-v1 || true
check "v1: app.service runs" [ "$(ap_unit_prop app.service ActiveState)" = active ]
A1=$(inv app.service)

app_unit v2 needs
printf 'd %s 0750 - - -\n' "$APP_DIR" | fx_write tmpfiles/app.conf
V2=$(fx_commit v2)
fx_dryrun tmpf-dry
ap_jq "$AP_CASE: the plan runs tmpfiles-create (JSON)" "$AP_TMP/tmpf-dry.out" \
	"d['setup'] == [{'action': 'tmpfiles-create', 'file': '$TMPF_DIR/app.conf', 'note': None, 'reasons': ['tmpfiles/app.conf']}]"
ap_autopull tmpf-dry-text --user -c "$AP_CFG" --dry-run
check "the printed plan names it" grep -q "tmpfiles-create *$TMPF_DIR/app.conf because tmpfiles/app.conf" \
	"$AP_TMP/tmpf-dry-text.out"
check "a dry run creates nothing" [ ! -e "$APP_DIR" ]
ap_autopull tmpf-v2 --user -c "$AP_CFG" apply
ap_expect_rc "$AP_CASE: apply" 0 tmpf-v2
check "v2 recorded" [ "$(applied)" = "$V2" ]
check "the directory was created with its mode" [ "$(stat -c %a "$APP_DIR" 2>/dev/null)" = 750 ]
check "owned by the user" [ "$(stat -c %U "$APP_DIR" 2>/dev/null)" = "$AP_USER" ]
check "app.service restarted on it (new InvocationID)" [ "$(inv app.service)" != "$A1" ]
check "app.service is active" [ "$(ap_unit_prop app.service ActiveState)" = active ]

ap_case "user tmpfiles.d: an invalid line is refused before anything changes"
printf 'd %s/x 0750 - - -\nK not-a-type\n' "$APP_DIR" | fx_write tmpfiles/app.conf
fx_commit bad >/dev/null
fx_snapshot tmpf-before
ap_autopull tmpf-bad --user -c "$AP_CFG" apply
ap_expect_rc "$AP_CASE: refused" 4 tmpf-bad
check "the error names the file" grep -q "tmpfiles/app.conf" "$AP_TMP/tmpf-bad.err"
fx_snapshot tmpf-after
check "host unchanged" cmp -s "$AP_TMP/tmpf-before.snap" "$AP_TMP/tmpf-after.snap"
check "nothing created" [ ! -e "$APP_DIR/x" ]

ap_case "user tmpfiles.d: a line that fails when it runs puts the files back"
# a bad mode passes the parse-only validation and fails in systemd-tmpfiles --create
printf 'd %s 0750 - - -\nd %s/bad 07x0 - - -\n' "$APP_DIR" "$APP_DIR" | fx_write tmpfiles/app.conf
app_unit v2b needs
fx_commit bad-mode >/dev/null
fx_snapshot tmpf-run-before
A2=$(inv app.service)
ap_autopull tmpf-run apply --user -c "$AP_CFG"
ap_expect_rc "$AP_CASE: apply fails" 1 tmpf-run
check "the error names the tool, the file and the line" \
	grep -q "systemd-tmpfiles on '$TMPF_DIR/app.conf' failed (exit 65): .*app.conf:2: " "$AP_TMP/tmpf-run.err"
fx_snapshot tmpf-run-after
check "the files are put back, still at v2" cmp -s "$AP_TMP/tmpf-run-before.snap" "$AP_TMP/tmpf-run-after.snap"
check "app.service not restarted" [ "$(inv app.service)" = "$A2" ]
check "no journal left" [ ! -e "$AP_STATE_DIR/journal" ]

ap_case "user tmpfiles.d: a removed file leaves what it created"
fx_rm tmpfiles/app.conf
app_unit v3
fx_commit v3 >/dev/null
fx_dryrun tmpf-rm-dry
ap_jq "$AP_CASE: the plan says what stays (JSON)" "$AP_TMP/tmpf-rm-dry.out" \
	"d['setup'][0]['action'] == 'none' and d['setup'][0]['note'] == 'tmpfiles.d file removed: what it created stays'"
ap_autopull tmpf-rm --user -c "$AP_CFG" apply
ap_expect_rc "$AP_CASE: apply" 0 tmpf-rm
check "the file is gone" [ ! -e "$TMPF_DIR/app.conf" ]
check "the directory stays" [ -d "$APP_DIR" ]
check "no unit failed" [ -z "$(ap_systemctl list-units --failed --no-legend --plain)" ]
fx_reset
rm -rf "${APP_DIR:?}"

# --- lingering ------------------------------------------------------------------------------
LINGER_DIR=/var/lib/systemd/linger

ap_case "user scope: check-config and status warn when lingering is off"
fx_reset
fx_origin file || ap_fail "$AP_CASE: fixture origin"
fx_config "$FX_URL"
fx_service web.service install "web v1"
fx_commit v1 >/dev/null
fx_apply linger-v1 || true
rm -f "$LINGER_DIR/$AP_USER"
ap_autopull linger-check --user -c "$AP_CFG" check-config
ap_expect_rc "$AP_CASE: check-config still passes" 0 linger-check
check "check-config says lingering is off" grep -q "lingering is off for user '$AP_USER'" "$AP_TMP/linger-check.err"
check "check-config gives the exact command" grep -q "loginctl enable-linger $AP_USER\$" "$AP_TMP/linger-check.err"
ap_autopull linger-json --user -c "$AP_CFG" --json check-config
ap_jq "$AP_CASE: check-config --json: linger false" "$AP_TMP/linger-json.out" "d['linger'] is False"
ap_autopull linger-status --user -c "$AP_CFG" status
ap_expect_rc "$AP_CASE: status" 0 linger-status
check "status gives the exact command" grep -q "loginctl enable-linger $AP_USER\$" "$AP_TMP/linger-status.err"

made_dir=0
[ -d "$LINGER_DIR" ] || { mkdir -p "$LINGER_DIR" && made_dir=1; }
: >"$LINGER_DIR/$AP_USER"
ap_autopull linger-on --user -c "$AP_CFG" check-config
ap_expect_rc "$AP_CASE: check-config with lingering on" 0 linger-on
check "no warning when it lingers" not grep -q "linger" "$AP_TMP/linger-on.err"
ap_autopull linger-on-json --user -c "$AP_CFG" --json check-config
ap_jq "$AP_CASE: check-config --json: linger true" "$AP_TMP/linger-on-json.out" "d['linger'] is True"
ap_autopull linger-on-status --user -c "$AP_CFG" status
check "status says nothing of it" not grep -q "linger" "$AP_TMP/linger-on-status.err"
rm -f "$LINGER_DIR/$AP_USER"
[ "$made_dir" = 1 ] && rmdir "$LINGER_DIR"
fx_reset
