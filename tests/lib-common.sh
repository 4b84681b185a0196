# shellcheck shell=bash
# The words every test file uses, for both harnesses: sourced by tests/integration/lib.sh,
# which the system harness (tests/system/lib.sh) sources in turn, so a t-*.sh of either finds
# them without defining its own. Each harness provides what they stand on: ap_check (the
# results), AP_CASE (ap_case), ap_unit_prop UNIT PROP (the test user's manager, or PID 1 of
# the container) and AP_STATE_DIR (autopull's state directory, as seen from here).

# check DESC CMD...: one check of the current case, ok if CMD exits 0.
check() { ap_check "$AP_CASE: $1" "${@:2}"; }
# not CMD...: CMD failed (for check, which takes a command, not a pipeline).
not() { ! "$@"; }
# quiet CMD...: CMD without its output.
quiet() { "$@" >/dev/null 2>&1; }
# short SHA: the 12 characters autopull prints of a commit.
short() { printf '%.12s' "$1"; }
# inv UNIT: the unit's InvocationID, which changes exactly when the unit (re)starts.
inv() { ap_unit_prop "$1" InvocationID; }
# repo_write DIR PATH: stdin → DIR/PATH in a fixture work repo (parents created). A unit
# file's Description= is mirrored into an X-APTest-Description= line: the tests bump a unit's
# version through its Description=, which alone autopull applies with a daemon-reload and no
# restart.
repo_write() {
	mkdir -p "$(dirname "$1/$2")" || return 1
	case $2 in
	*.service|*.socket|*.timer|*.path) awk '{ print } /^Description=/ { print "X-APTest-" $0 }' >"$1/$2" ;;
	*) cat >"$1/$2" ;;
	esac
}

# applied: the commit autopull recorded as applied (empty if none).
applied() { cat "$AP_STATE_DIR/applied" 2>/dev/null; }
