# shellcheck shell=bash
# First runs from a local repository whose objects are packed (autopull copies the packs into
# its mirror, then fetches what they lack): the units are installed and started like on any
# first run. A repository holding an object that does not match its id is refused with exit
# 4 and the host is left as it was: no unit file, no unit, no applied commit.
# Sourced by run.sh after lib.sh (and fixtures.sh).

FX_SETTLE=0s

# base_origin NAME: a fresh host and origin, the fx_base tree committed as v1 (sets V1).
base_origin() {
	ap_case "$1"
	fx_reset
	fx_origin file || { ap_fail "$1: fixture origin"; return 1; }
	fx_config "$FX_URL"
	fx_base
	V1=$(fx_commit v1) || { ap_fail "$1: commit v1"; return 1; }
}

repack() { ap_git "$FX_ORIGIN" repack -adq || { ap_fail "$AP_CASE: repack"; return 1; }; }

t_first_run_packed() {
	local v2 pack
	base_origin "first run from a packed repository with a loose commit on top" || return
	repack || return
	fx_service worker.service install "worker v2"
	v2=$(fx_commit v2) || { ap_fail "$AP_CASE: commit v2"; return 1; }
	ap_autopull packed --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply" 0 packed || return
	pack=$(cd "$FX_ORIGIN/.git/objects/pack" && ls -- *.pack)
	check "applied = v2" [ "$(applied)" = "$v2" ]
	check "the mirror holds the origin's pack as it is" \
		cmp -s "$FX_ORIGIN/.git/objects/pack/$pack" "$AP_STATE_DIR/repo.git/objects/pack/$pack"
	check "web.service installed byte for byte" \
		cmp -s "$FX_ORIGIN/systemd/web.service" "$AP_UNIT_DIR/web.service"
	check "web.service active" [ "$(ap_unit_prop web.service ActiveState)" = active ]
	check "web.service has an InvocationID" [ -n "$(inv web.service)" ]
	check "worker.service runs v2 (the loose commit)" \
		[ "$(ap_unit_prop worker.service Description)" = "worker v2" ]
	check "drop-in in effect" [ "$(ap_unit_prop web.service Environment)" = "APTEST_DROPIN=v1" ]
}

t_first_run_corrupt() {
	local x y
	base_origin "a packed object that does not match its id: refused, host untouched" || return
	# Before the repack: the loose file of web.service's blob gets another blob's bytes, so
	# the pack holds them under web.service's id.
	x=$(ap_git "$FX_ORIGIN" rev-parse HEAD:systemd/web.service)
	y=$(printf '[Unit]\nDescription=not web\n' | ap_git "$FX_ORIGIN" hash-object -w --stdin)
	chmod u+w "$FX_ORIGIN/.git/objects/${x:0:2}/${x:2}"
	cp "$FX_ORIGIN/.git/objects/${y:0:2}/${y:2}" "$FX_ORIGIN/.git/objects/${x:0:2}/${x:2}"
	repack || return
	ap_autopull corrupt --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply refused" 4 corrupt
	check "the message says the repository needs a fix" grep -q "needs a fix there" "$AP_TMP/corrupt.err"
	check "nothing applied" [ -z "$(applied)" ]
	check "no unit file installed" [ ! -e "$AP_UNIT_DIR/web.service" ]
	check "no Caddyfile installed" [ ! -e "$FX_ETC/caddy/Caddyfile" ]
	check "web.service not running" [ "$(ap_unit_prop web.service ActiveState)" = inactive ]
	check "the mirror has no branch" not ap_git "$AP_STATE_DIR/repo.git" rev-parse -q --verify refs/remotes/origin/main
}

# -------------------------------------------------------------------------------------------
if [ ! -x "$AP_BIN" ]; then
	ap_fail "no autopull binary at $AP_BIN"
	exit 1
fi
t_first_run_packed
t_first_run_corrupt
fx_reset
