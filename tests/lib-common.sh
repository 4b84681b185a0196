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
# applied: the commit autopull recorded as applied (empty if none).
applied() { cat "$AP_STATE_DIR/applied" 2>/dev/null; }
