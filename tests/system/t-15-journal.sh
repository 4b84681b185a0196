# shellcheck shell=bash
# The journal entries, read back from the container's own journald: an apply, a pin and an
# unpin, a refusal, a rollback, each with its MESSAGE_ID and fields (AUTOPULL_COMMIT,
# AUTOPULL_FROM, UNIT=, AUTOPULL_ACTION), `journalctl -u UNIT` finding the apply that restarted
# UNIT, control characters escaped, and one entry per event when the timer's service runs
# autopull (no copy through stderr). Sourced by run.sh after lib.sh.

count() { wc -l <"$AP_TMP/$1.json"; }

ap_case "journal"
sx_pristine
sx_reset
sx_origin
sx_config "" "guard:
  settle: 2s"
sx_service web.service install "web v1"
sx_service worker.service install "worker v1"
V1=$(sx_commit v1)
sys_mark
sys_autopull j1 apply
ap_expect_rc "$AP_CASE: first apply" 0 j1
check "an 'applied' entry" sys_entries j1 $ID_APPLIED
check "one entry for one apply" [ "$(count j1)" = 1 ]
check "AUTOPULL_COMMIT is the commit" [ "$(sys_field j1 AUTOPULL_COMMIT)" = "$V1" ]
check "AUTOPULL_ACTION=applied" [ "$(sys_field j1 AUTOPULL_ACTION)" = applied ]
check "AUTOPULL_TRIGGER=manual" [ "$(sys_field j1 AUTOPULL_TRIGGER)" = manual ]
check "UNIT= names both started units" [ "$(sys_field j1 UNIT | sort | tr '\n' ' ')" = "web.service worker.service " ]
check "PRIORITY=5 (notice)" [ "$(sys_field j1 PRIORITY)" = 5 ]
check "SYSLOG_IDENTIFIER=autopull" [ "$(sys_field j1 SYSLOG_IDENTIFIER)" = autopull ]
check "no CODE_FILE (it would name autopull's source)" [ -z "$(sys_field j1 CODE_FILE)" ]
check "the entry is not also on stderr" not grep -q "applied $(printf %.12s "$V1")" "$AP_TMP/j1.err"

ap_case "journal: a one-unit change"
sx_service web.service install "web v2"
V2=$(sx_commit v2)
sys_mark
sys_autopull j2 apply
ap_expect_rc "$AP_CASE: apply" 0 j2
check "an 'applied' entry" sys_entries j2 $ID_APPLIED
check "AUTOPULL_FROM is the commit before" [ "$(sys_field j2 AUTOPULL_FROM)" = "$V1" ]
check "AUTOPULL_COMMIT is the new one" [ "$(sys_field j2 AUTOPULL_COMMIT)" = "$V2" ]
check "UNIT= is only web.service" [ "$(sys_field j2 UNIT)" = web.service ]
check "AUTOPULL_UNITS says restart" [ "$(sys_field j2 AUTOPULL_UNITS)" = restart=web.service ]
sys_sh journalctl -q -o cat -u web.service --after-cursor="$CURSOR" >"$AP_TMP/j2-unit.out" 2>&1
check "journalctl -u web.service shows the apply that restarted it" \
	grep -q "^applied $(printf %.12s "$V2") " "$AP_TMP/j2-unit.out"
sys_sh journalctl -q -o cat -u worker.service --after-cursor="$CURSOR" >"$AP_TMP/j2-other.out" 2>&1
check "journalctl -u worker.service does not" not grep -q "^applied" "$AP_TMP/j2-other.out"

ap_case "journal: pin and unpin"
sys_mark
sys_autopull j3 pin "$V1" --reason "$(printf 'incident 42\tsecond part')"
ap_expect_rc "$AP_CASE: pin" 0 j3
check "a 'pinned' entry" sys_entries j3 $ID_PINNED
check "AUTOPULL_COMMIT is the pinned commit" [ "$(sys_field j3 AUTOPULL_COMMIT)" = "$V1" ]
check "the reason, its tab escaped" [ "$(sys_field j3 AUTOPULL_REASON)" = 'incident 42\tsecond part' ]
check "the pin's apply has its own entry" sys_entries j3a $ID_APPLIED
sys_mark
sys_autopull j4 unpin
ap_expect_rc "$AP_CASE: unpin" 0 j4
check "an 'unpinned' entry" sys_entries j4 $ID_UNPINNED
check "AUTOPULL_FROM is where it was pinned" [ "$(sys_field j4 AUTOPULL_FROM)" = "$V1" ]
sys_autopull j4b apply
ap_expect_rc "$AP_CASE: back to the tip" 0 j4b

ap_case "journal: a refusal"
printf '[Unit]\nDescription=broken\n[Service]\nExecStart=relative/path\n[Install]\nWantedBy=multi-user.target\n' |
	sx_write systemd/broken.service
V3=$(sx_commit broken)
sys_mark
sys_autopull j5 apply
ap_expect_rc "$AP_CASE: the unit fails verification" 4 j5
check "a 'refused' entry" sys_entries j5 $ID_REFUSED
check "AUTOPULL_RESULT=invalid" [ "$(sys_field j5 AUTOPULL_RESULT)" = invalid ]
check "AUTOPULL_COMMIT is the refused commit" [ "$(sys_field j5 AUTOPULL_COMMIT)" = "$V3" ]
check "PRIORITY=4 (warning)" [ "$(sys_field j5 PRIORITY)" = 4 ]
check "the errors are still on stderr" grep -q "broken.service" "$AP_TMP/j5.err"
sx_rm systemd/broken.service
sx_commit "fix" >/dev/null

ap_case "journal: a rollback"
sx_service web.service install "web v4"
sed -i 's#^ExecStart=.*#ExecStart=/bin/false#; s#^\[Service\]#[Service]\nRestart=always\nRestartSec=100ms#' \
	"$SX_WORK/systemd/web.service"
V4=$(sx_commit crashing)
sys_mark
sys_autopull j6 apply
ap_expect_rc "$AP_CASE: the unit fails to settle" 1 j6
check "a 'rolled-back' entry" sys_entries j6 $ID_ROLLED_BACK
check "AUTOPULL_ACTION=rolled-back" [ "$(sys_field j6 AUTOPULL_ACTION)" = rolled-back ]
check "AUTOPULL_COMMIT is the bad commit" [ "$(sys_field j6 AUTOPULL_COMMIT)" = "$V4" ]
check "AUTOPULL_REASON says why" [ -n "$(sys_field j6 AUTOPULL_REASON)" ]
check "web.service runs the old definition" sys_wait_prop web.service Description "web v2" 5
check "no 'applied' entry for it" not sys_entries j6a $ID_APPLIED

ap_case "journal: under the service"
sys_ctl stop web.service >/dev/null 2>&1
sx_service web.service install "web v5"
V5=$(sx_commit v5)
# The rollback above leaves web.service's crash loop (a count that depends on timing) inside
# the guard's 300 s window, so the next run may be refused. This case is about the journal
# under the service, not the guard: it raises the guard's limit rather than wait the window out.
sx_config "" "guard:
  settle: 2s
  max_restarts: 1000"
sys_mark
sys_start_unit j7 infrastructure-auto-pull.service
check "the service applied v5" [ "$(applied)" = "$V5" ]
check "an 'applied' entry" sys_entries j7 $ID_APPLIED
check "exactly one" [ "$(count j7)" = 1 ]
check "AUTOPULL_TRIGGER is not manual" [ "$(sys_field j7 AUTOPULL_TRIGGER)" != manual ]
sys_sh journalctl -q -o cat --after-cursor="$CURSOR" >"$AP_TMP/j7-all.out" 2>&1
check "the message is in the journal once" \
	[ "$(grep -c "^applied $(printf %.12s "$V5") (from" "$AP_TMP/j7-all.out")" = 1 ]

ap_case "journal: the catalog"
sed -n 's/^#define AP_MSGID_[A-Z_]* *"\([0-9a-f]*\)".*/\1/p' "$SYS_TOP/include/events.h" >"$AP_TMP/ids"
check "events.h defines eight MESSAGE_IDs" [ "$(wc -l <"$AP_TMP/ids")" = 8 ]
while read -r id; do
	check "the catalog explains $id" grep -q "^-- $id\$" "$SYS_ROOT/usr/lib/systemd/catalog/autopull.catalog"
done <"$AP_TMP/ids"
check "journalctl --update-catalog takes it" quiet sys_sh journalctl --update-catalog
sys_sh journalctl -q -x -o short SYSLOG_IDENTIFIER=autopull >"$AP_TMP/catalog.out" 2>&1
check "journalctl -x explains an apply, with its commit" \
	grep -q "Subject: autopull applied commit $V5" "$AP_TMP/catalog.out"
check "and a rollback" grep -q "Subject: autopull rolled back commit $V4" "$AP_TMP/catalog.out"
