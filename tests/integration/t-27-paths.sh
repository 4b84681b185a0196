# shellcheck shell=bash
# Paths in the user scope, against the real user manager: a directory on the way to a
# destination that others can write (root's 0777) is refused at check-config and at apply
# (exit 4, with the chmod), a sticky one (/tmp's shape) is not; a drop-in for a unit whose
# file is a symlink to another unit file (Debian's sshd.service -> ssh.service) is verified
# against the link's target and applied. Sourced by run.sh after lib.sh (and fixtures.sh).

FX_SETTLE=0s

# setup NAME DIR MODE: fresh slate; DIR made by root with MODE; a rule writing DIR/app.conf.
setup() {
	ap_case "$1"
	fx_reset
	fx_origin file || { ap_fail "$1: fixture origin"; return 1; }
	rm -rf "$2"
	mkdir -p "$2" && chmod "$3" "$2"
	FX_SETTLE= fx_config "$FX_URL" "" "  - src: shared/app.conf
    dest: $2/app.conf"
	printf 'x=1\n' | fx_write shared/app.conf
	fx_caddyfile v1
	fx_envfile v1
	V1=$(fx_commit v1) || { ap_fail "$1: commit v1"; return 1; }
}

t_others_writable() {
	local d=$AP_HOME/shared
	setup "a directory others can write, above a user-scope destination" "$d" 0777 || return
	ap_autopull cc --user -c "$AP_CFG" check-config
	ap_expect_rc "$AP_CASE: check-config refuses it" 4 cc
	check "check-config names the directory and the chmod" \
		grep -q "directory '$d' can be written by anyone (mode 0777); fix: chmod go-w '$d'" "$AP_TMP/cc.err"
	ap_autopull ow --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply refuses it" 4 ow
	check "the refusal names the destination" grep -q "refusing to write '$d/app.conf'" "$AP_TMP/ow.err"
	check "nothing written" [ ! -e "$d/app.conf" ]
	check "nothing applied" [ -z "$(applied)" ]
	chmod go-w "$d" && chown "$AP_UID:$AP_GID" "$d" # what the message says, and the user's to write
	ap_autopull fixed --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: after the chmod" 0 fixed
	check "installed" grep -qx x=1 "$d/app.conf"
	rm -rf "$d"
}

t_sticky() {
	local d=$AP_HOME/sticky
	setup "a sticky root-owned directory (as /tmp) is not refused" "$d" 1777 || return
	ap_autopull st --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply" 0 st
	check "installed" grep -qx x=1 "$d/app.conf"
	rm -rf "$d"
}

t_dropin_for_alias() {
	local real=$AP_HOME/vendor/aptreal.service
	ap_case "a drop-in for a unit whose file is a symlink to another unit file"
	fx_reset
	fx_origin file || { ap_fail "$AP_CASE: fixture origin"; return 1; }
	fx_config "$FX_URL"
	fx_caddyfile v1
	fx_envfile v1
	ap_as_user mkdir -p "$AP_HOME/vendor" "$AP_UNIT_DIR"
	printf '[Unit]\nDescription=aptreal\n\n[Service]\nExecStart=/bin/sleep infinity\n' |
		ap_user_write "$real"
	ap_as_user ln -sf "$real" "$AP_UNIT_DIR/aptalias.service"
	printf '[Service]\nEnvironment=APTALIAS=1\n' | fx_write systemd/aptalias.service.d/10-env.conf
	fx_commit v1 >/dev/null || { ap_fail "$AP_CASE: commit v1"; return 1; }
	ap_autopull al1 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: apply" 0 al1
	check "the drop-in installed" cmp -s "$FX_ORIGIN/systemd/aptalias.service.d/10-env.conf" \
		"$AP_UNIT_DIR/aptalias.service.d/10-env.conf"
	check "the unit file is still the symlink" [ -L "$AP_UNIT_DIR/aptalias.service" ]
	check "the manager sees the drop-in" [ "$(ap_unit_prop aptalias.service Environment)" = APTALIAS=1 ]
	printf '[Service]\nEnvironment=APTALIAS=2\nNoSuchKey=1\n' | fx_write systemd/aptalias.service.d/10-env.conf
	fx_commit v2 >/dev/null
	ap_autopull al2 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: a broken drop-in is still caught (verified with the target)" 4 al2
	check "the verifier's message names the drop-in" \
		grep -q "systemd/aptalias.service.d/10-env.conf" "$AP_TMP/al2.err"
	check "the installed drop-in unchanged" grep -q APTALIAS=1 "$AP_UNIT_DIR/aptalias.service.d/10-env.conf"
	rm -rf "$AP_HOME/vendor" "$AP_UNIT_DIR/aptalias.service" "$AP_UNIT_DIR/aptalias.service.d"
}

if [ ! -x "$AP_BIN" ]; then
	ap_fail "no autopull binary at $AP_BIN"
	exit 1
fi
t_others_writable
t_sticky
t_dropin_for_alias
fx_reset
