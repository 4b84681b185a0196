# shellcheck shell=bash
# Helpers shared by the unit-rule tests of the user manager (t-55-unit-rules.sh) and of the
# system container (tests/system/t-26-unit-rules.sh): unit texts and reading a dry-run plan.

# unit_text TARGET NAME [Section:Line...]: a sleep-infinity service NAME with the extra [Unit]
# and [Service] lines given; "Install:" adds [Install] WantedBy=TARGET.
unit_text() {
	local target=$1 name=$2 l; shift 2
	printf '[Unit]\nDescription=%s\nStartLimitIntervalSec=0\n' "$name"
	for l in "$@"; do [ "${l%%:*}" = Unit ] && printf '%s\n' "${l#*:}"; done
	printf '\n[Service]\nExecStart=/bin/sleep infinity\n'
	for l in "$@"; do [ "${l%%:*}" = Service ] && printf '%s\n' "${l#*:}"; done
	for l in "$@"; do [ "${l%%:*}" = Install ] && printf '\n[Install]\nWantedBy=%s\n' "$target"; done
}

# plan_action UNIT FILE, plan_note UNIT FILE: the plan's action and note for UNIT in the
# dry-run JSON FILE.
plan_action() { ap_jqv "$2" "[u['action'] for u in d['units'] if u['unit'] == '$1'][0]"; }
plan_note() { ap_jqv "$2" "[u['note'] for u in d['units'] if u['unit'] == '$1'][0]"; }

# echo_socket_text PATH: a socket unit listening on the AF_UNIX PATH, started by sockets.target.
echo_socket_text() {
	printf '[Unit]\nDescription=echo socket\n\n[Socket]\nListenStream=%s\n\n[Install]\nWantedBy=sockets.target\n' "$1"
}

# short_text RESTARTSEC TARGET: a job that exits 0 at once and waits RESTARTSEC to run again.
short_text() {
	printf '[Unit]\nDescription=short\n\n[Service]\nExecStart=/bin/true\nRestart=always\nRestartSec=%s\n\n[Install]\nWantedBy=%s\n' "$1" "$2"
}
