# shellcheck shell=bash
# Helpers shared by the failure tests of the user manager (t-22-failure.sh) and of the system
# container (tests/system/t-22-failure.sh).

# reload_owed_checks WEB V1 V2 NAME CMD...: after an apply of V2 (web.service "web v2") whose
# daemon-reload the manager refused, web.service kept its InvocationID WEB, the applied commit
# is still V1 and the journal says the files were written and the reload not done; then CMD,
# the next apply (its output as NAME), does what was owed.
reload_owed_checks() {
	local web=$1 v1=$2 v2=$3 name=$4 j=$AP_STATE_DIR/journal
	shift 4
	check "web not restarted" [ "$(inv web.service)" = "$web" ]
	check "applied still V1" [ "$(applied)" = "$v1" ]
	check "the journal: files written, reload not done" \
		eval 'grep -qE "^done( [a-z-]+)* files( |$)" "$j" && ! grep -qE "^done( [a-z-]+)* reload( |$)" "$j"'
	"$@"
	ap_expect_rc "$AP_CASE: the next run, with room on /run" 0 "$name"
	check "the manager has the new definition" [ "$(ap_unit_prop web.service Description)" = "web v2" \
		-a "$(ap_unit_prop web.service NeedDaemonReload)" = no ]
	check "web restarted (new InvocationID)" [ "$(inv web.service)" != "$web" ]
	check "applied = v2" [ "$(applied)" = "$v2" ]
	check "no journal left" [ ! -e "$j" ]
}
