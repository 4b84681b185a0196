# shellcheck shell=bash
# The sd-bus adapter's own cmocka tests (tests/test-bus.c, plain and ASan/UBSan builds) run
# here because they need a live manager: as the test user, against the harness's manager.
# Sourced by run.sh after lib.sh.

run_bus_test() {
	local build=$1 bin
	if [ ! -x "$AP_ROOT/$build/test-bus" ]; then
		ap_fail "no $build/test-bus (make builds it for the integration target)"
		return
	fi
	bin=$(ap_bindir_add "$AP_ROOT/$build/test-bus" "${build//\//-}-test-bus") ||
		{ ap_fail "cannot install $build/test-bus into $AP_BINDIR"; return; }
	ap_as_user mkdir -p "$AP_UNIT_DIR"
	if ap_as_user env AP_TEST_UNIT_DIR="$AP_UNIT_DIR" ASAN_OPTIONS=detect_leaks=1 \
		timeout -k 5 "$AP_CMD_TIMEOUT" "$bin" >"$AP_RUN/test-bus-${1//\//-}.log" 2>&1; then
		ap_ok "test-bus ($build): $(grep -E 'PASSED' "$AP_RUN/test-bus-${1//\//-}.log")"
	else
		ap_fail "test-bus ($build) failed:"
		grep -E 'FAIL|ERROR|Sanitizer|runtime error' "$AP_RUN/test-bus-${1//\//-}.log" | head -20
	fi
}

run_bus_test build/tests
run_bus_test build/tests-asan
fx_reset
