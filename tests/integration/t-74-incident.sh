# shellcheck shell=bash
# The rough edges an operator meets during an incident, against the real user manager:
# `autopull diff` prints git's headers (a/REPO_PATH, b/HOST_PATH) and exits 1 on drift (0
# without, as diff(1)). Sourced by run.sh after lib.sh (and fixtures.sh).

FX_SETTLE=0s
check() { ap_check "$AP_CASE: $1" "${@:2}"; }
not() { ! "$@"; }

start() {
	ap_case "$1"
	fx_reset
	fx_origin file || { ap_fail "$1: fixture origin"; return 1; }
	FX_SETTLE= fx_config "$FX_URL" "" "guard:
  watch: [web.service, loop1.service]
  max_restarts: 2
  window: 1m
  settle: 0s"
	fx_service web.service install "web v1"
	fx_envfile v1
	V1=$(fx_commit v1) || return 1
	fx_apply v1
}

# -------------------------------------------------------------------------------------------
t_diff() {
	local host=${AP_UNIT_DIR#/}/web.service
	start "diff: git's headers, exit 1 on drift" || return
	ap_autopull clean --user -c "$AP_CFG" diff
	ap_expect_rc "$AP_CASE: no drift" 0 clean
	check "says so" grep -q "^no drift" "$AP_TMP/clean.out"
	sed -i '/^\[Service\]/a Environment=HOTFIX=1' "$AP_UNIT_DIR/web.service"
	ap_autopull drift --user -c "$AP_CFG" diff
	sed 's/^/        | /' "$AP_TMP/drift.out" | head -n 8
	ap_expect_rc "$AP_CASE: drift (as diff(1) and git diff --exit-code)" 1 drift
	check "--- a/systemd/web.service" grep -qx -- "--- a/systemd/web.service" "$AP_TMP/drift.out"
	check "+++ b/$host" grep -qx -- "+++ b/$host" "$AP_TMP/drift.out"
	check "no doubled prefix" not grep -q "a/a/\|b/b/" "$AP_TMP/drift.out"
	check "the hand-added line" grep -qx "+Environment=HOTFIX=1" "$AP_TMP/drift.out"
}

t_diff
