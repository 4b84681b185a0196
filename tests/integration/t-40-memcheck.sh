# shellcheck shell=bash
# The whole program under ASan/UBSan (build/autopull-asan) and under valgrind memcheck,
# through a first apply, a change that restarts and reloads, a dry-run, a heartbeat and a
# refused bad input: every run must exit as expected with no sanitizer or memcheck report.
# Sourced by run.sh after lib.sh (and fixtures.sh).

ASAN_BIN=$AP_BINDIR/autopull-asan
VG_LOG=$AP_RUN/tmp

# mc NAME WANT_RC TOOL ARGS...: run a tool-wrapped autopull as the test user and check its
# exit code and its report.
mc() {
	local name=$1 want=$2 tool=$3; shift 3
	local -a cmd
	case $tool in
	asan) cmd=(env ASAN_OPTIONS=detect_leaks=1:exitcode=98 UBSAN_OPTIONS=halt_on_error=1:exitcode=98
		"$ASAN_BIN") ;;
	valgrind) cmd=(valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect
		--errors-for-leak-kinds=definite,indirect --log-file="$VG_LOG/$name.vg" "$AP_BIN") ;;
	esac
	mkdir -p "$VG_LOG" && chmod 1777 "$VG_LOG" # sticky, as /tmp: 0777 makes every file in it untrusted
	ap_as_user timeout -k 5 300 "${cmd[@]}" --user -c "$AP_CFG" "$@" \
		>"$AP_TMP/$name.out" 2>"$AP_TMP/$name.err" </dev/null
	echo $? >"$AP_TMP/$name.rc"
	ap_expect_rc "$AP_CASE: $tool: $*" "$want" "$name"
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$AP_TMP/$name.err"; then
		ap_fail "$AP_CASE: $tool report for '$*'"
		grep -E -A8 'Sanitizer|runtime error' "$AP_TMP/$name.err" | head -20
	fi
	# Reports are "==pid==" lines; "--pid--" lines are valgrind's own notes (it does not know
	# openat2, so autopull takes its documented fallback there).
	if [ "$tool" = valgrind ] && grep -q '^==' "$VG_LOG/$name.vg" 2>/dev/null; then
		ap_fail "$AP_CASE: valgrind report for '$*'"
		head -30 "$VG_LOG/$name.vg"
	fi
}

run_tool() {
	local tool=$1
	ap_case "$tool: apply, restart, reload, dry-run, heartbeat, bad input"
	fx_reset
	fx_origin file || { ap_fail "$AP_CASE: fixture origin"; return; }
	FX_SETTLE= fx_config "$FX_URL" "" 'guard:
  watch: [web.service, "work*.service"]
  settle: 1s'
	fx_base
	fx_commit v1 >/dev/null || return
	mc "$tool-first" 0 "$tool" apply
	fx_service web.service install "web v2"
	fx_caddyfile v2
	fx_commit v2 >/dev/null
	mc "$tool-dry" 0 "$tool" --dry-run --json
	mc "$tool-change" 0 "$tool" apply
	mc "$tool-heartbeat" 0 "$tool" heartbeat
	mc "$tool-status" 0 "$tool" status
	ap_as_user ln -s web.service "$FX_ORIGIN/systemd/alias.service"
	fx_commit symlink >/dev/null
	mc "$tool-refused" 4 "$tool" apply
}

ap_bindir_add "$AP_ROOT/build/autopull-asan" >/dev/null || ap_fail "no build/autopull-asan"
run_tool asan
if command -v valgrind >/dev/null; then run_tool valgrind; else ap_fail "valgrind is not installed"; fi
fx_reset
