# shellcheck shell=bash
# Paths a user cannot bend, as root in system scope with a real non-root user: a destination in
# a user's home is refused unless the rule names that user as owner (then it is written as that
# user); the user swapping ~/.ssh for a symlink to /root/.ssh steers no write and no removal;
# the generator does not grant such a directory; a group-writable directory on the way is
# refused with the chmod that fixes it. A drop-in for a unit whose file is a symlink to a vendor
# unit is verified against the link's target. The configuration, allowed_signers, a push token
# and the state directory's parents: others may not change (or read) them, exit 2 with the
# chmod or chown that fixes it. Sourced by run.sh after lib.sh.

ALICE=apalice
AHOME=/home/$ALICE                                                     # in the container
DROPIN=/run/systemd/generator/infrastructure-auto-pull.service.d/50-autopull-sandbox.conf
ROOTKEYS=/root/.ssh/authorized_keys                                    # in the container

as_alice() { sys_sh runuser -u "$ALICE" -- "$@"; }
rwpaths() { sed -n 's/^ReadWritePaths=-//p' "$SYS_ROOT$DROPIN" | sort | tr '\n' ' '; }
# ~/.ssh becomes a symlink to /root/.ssh, made by alice herself
swap_ssh() { as_alice sh -c "rm -rf $AHOME/.ssh && ln -s /root/.ssh $AHOME/.ssh"; }
rootkeys_same() { printf 'root-key\n' | cmp -s - "$SYS_ROOT$ROOTKEYS"; }

# fresh_alice: the user with an empty ~/.ssh, and root's own authorized_keys.
fresh_alice() {
	sys_sh sh -c "id -u $ALICE >/dev/null 2>&1 || useradd -m -s /bin/sh $ALICE"
	sys_sh rm -rf "$AHOME/.ssh"
	as_alice mkdir -m 0700 "$AHOME/.ssh"
	sys_sh chmod 0755 "$AHOME"
	sys_sh mkdir -p -m 0700 /root/.ssh
	printf 'root-key\n' | sys_write "$ROOTKEYS"
	sys_sh chmod 0600 "$ROOTKEYS"
}

# setup NAME [OWNER_YAML]: clean host, alice, a rule for her authorized_keys, committed.
setup() {
	ap_case "$1"
	sx_reset
	fresh_alice
	sx_origin
	sx_config "" "  - src: keys/alice
    dest: $AHOME/.ssh/authorized_keys
    mode: \"0600\"${2:+
$2}"
	sx_service web.service install "web v1"
	printf 'alice-key v1\n' | sx_write keys/alice
	V1=$(sx_commit v1)
}

t_home_no_owner() {
	setup "a destination in a user's home without owner:"
	check "the generator does not grant $AHOME/.ssh" not grep -q "$AHOME" "$SYS_ROOT$DROPIN"
	sys_autopull cc check-config
	ap_expect_rc "$AP_CASE: check-config refuses it" 4 cc
	check "check-config names the directory and its owner" \
		grep -q "'$AHOME' is owned by $ALICE (uid" "$AP_TMP/cc.err"
	check "check-config says what to set" grep -q "set 'owner:'" "$AP_TMP/cc.err"
	sys_autopull first apply
	ap_expect_rc "$AP_CASE: apply refuses it" 4 first
	check "the refusal names the path and the owner" \
		grep -q "refusing to write '$AHOME/.ssh/authorized_keys'.*'$AHOME' is owned by $ALICE" \
		"$AP_TMP/first.err"
	check "nothing written into $AHOME/.ssh" [ -z "$(sys_sh ls -A "$AHOME/.ssh")" ]
	check "nothing applied" [ -z "$(applied)" ]
	swap_ssh
	sys_autopull swapped apply
	ap_expect_rc "$AP_CASE: with ~/.ssh a symlink to /root/.ssh" 4 swapped
	check "root's authorized_keys unchanged" rootkeys_same
}

t_home_owner() {
	local owner
	setup "owner: the user of the home" "    owner: $ALICE
    group: $ALICE"
	check "the generator grants $AHOME/.ssh" grep -q "$AHOME/.ssh" "$SYS_ROOT$DROPIN"
	sys_autopull cc check-config
	ap_expect_rc "$AP_CASE: check-config" 0 cc
	sys_autopull first apply
	ap_expect_rc "$AP_CASE: apply" 0 first || return
	check "installed byte for byte" cmp -s "$SX_WORK/keys/alice" "$SYS_ROOT$AHOME/.ssh/authorized_keys"
	owner=$(sys_sh stat -c %U:%G:%a "$AHOME/.ssh/authorized_keys")
	check "owned by $ALICE, 0600 (is $owner)" [ "$owner" = "$ALICE:$ALICE:600" ]

	next_case "owner: the user cannot write her own directory: neither can the install"
	as_alice chmod 0500 "$AHOME/.ssh"
	printf 'alice-key v2\n' | sx_write keys/alice
	sx_commit v2 >/dev/null
	sys_autopull ro apply
	ap_expect_rc "$AP_CASE: apply: the preflight, probing as her, cannot write there" 1 ro
	check "it says so before any change" grep -q "cannot write to '$AHOME/.ssh': Permission denied" "$AP_TMP/ro.err"
	check "the file still has v1" grep -qx "alice-key v1" "$SYS_ROOT$AHOME/.ssh/authorized_keys"
	as_alice chmod 0700 "$AHOME/.ssh"

	next_case "owner: ~/.ssh swapped for a symlink to /root/.ssh"
	swap_ssh
	printf 'alice-key v3\n' | sx_write keys/alice
	sx_commit v3 >/dev/null
	sys_autopull swapped apply
	ap_expect_rc "$AP_CASE: apply refuses to follow it" 4 swapped
	check "the refusal names the symlink" grep -q "symlink" "$AP_TMP/swapped.err"
	check "root's authorized_keys unchanged" rootkeys_same
	check "root's authorized_keys still root's" [ "$(sys_sh stat -c %U "$ROOTKEYS")" = root ]
	sys_ctl daemon-reload
	check "the generator no longer grants $AHOME/.ssh" not grep -q "$AHOME" "$SYS_ROOT$DROPIN"

	next_case "owner: the repository deletes the file while ~/.ssh points at /root/.ssh"
	sx_rm keys/alice
	sx_commit del >/dev/null
	sys_autopull del apply
	ap_expect_rc "$AP_CASE: apply refuses the removal" 4 del
	check "root's authorized_keys not removed" rootkeys_same
}

t_group_writable() {
	local d=/srv/apshared
	ap_case "a group-writable directory on the way"
	sx_reset
	sx_origin
	sys_sh rm -rf "$d"
	sys_sh mkdir -p -m 0775 "$d"
	sys_sh chgrp users "$d"
	sx_config "" "  - src: shared/app.conf
    dest: $d/app.conf"
	sx_service web.service install "web v1"
	printf 'x=1\n' | sx_write shared/app.conf
	sx_commit v1 >/dev/null
	sys_autopull cc check-config
	ap_expect_rc "$AP_CASE: check-config refuses it" 4 cc
	check "check-config says the chmod" grep -q "chmod go-w '$d'" "$AP_TMP/cc.err"
	sys_autopull gw apply
	ap_expect_rc "$AP_CASE: apply refuses it" 4 gw
	check "the refusal says the chmod" grep -q "mode 0775); fix: chmod go-w '$d'" "$AP_TMP/gw.err"
	check "nothing written" [ ! -e "$SYS_ROOT$d/app.conf" ]
	sys_sh chmod g-w "$d"
	sys_autopull fixed apply
	ap_expect_rc "$AP_CASE: after the chmod" 0 fixed
	check "installed" cmp -s "$SX_WORK/shared/app.conf" "$SYS_ROOT$d/app.conf"
	sys_sh rm -rf "$d"
}

# Debian's shape: /etc/systemd/system/sshd.service -> /lib/systemd/system/ssh.service.
t_dropin_for_alias() {
	local vendor=/lib/systemd/system/aptvendor.service alias=/etc/systemd/system/aptvalias.service
	ap_case "a drop-in for a unit whose file is a symlink to a vendor unit"
	sx_reset
	sx_origin
	sx_config
	printf '[Unit]\nDescription=aptvendor\n\n[Service]\nExecStart=/bin/sleep infinity\n' |
		sys_write "$vendor"
	sys_sh ln -sf "$vendor" "$alias"
	sys_ctl daemon-reload
	sys_ctl start aptvalias.service
	printf '[Service]\nEnvironment=APTV=1\n' | sx_write systemd/aptvalias.service.d/10-env.conf
	sx_service web.service install "web v1"
	sx_commit v1 >/dev/null
	sys_autopull al1 apply
	ap_expect_rc "$AP_CASE: apply" 0 al1
	check "the unit file is still the symlink" [ -L "$SYS_ROOT$alias" ]
	check "the drop-in is in effect" [ "$(sys_prop aptvalias.service Environment)" = APTV=1 ]
	printf '[Service]\nEnvironment=APTV=2\nNoSuchKey=1\n' | sx_write systemd/aptvalias.service.d/10-env.conf
	sx_commit v2 >/dev/null
	sys_autopull al2 apply
	ap_expect_rc "$AP_CASE: a broken drop-in is caught, verified with the vendor unit" 4 al2
	check "the running unit keeps the old drop-in" [ "$(sys_prop aptvalias.service Environment)" = APTV=1 ]
	sys_ctl stop aptvalias.service
	sys_sh rm -rf "$vendor" "$alias" "$alias.d"
	sys_ctl daemon-reload
}

# cc_and_apply NAME EXPECTED_RC PATTERN: check-config and apply both exit EXPECTED_RC, and
# both say PATTERN (when given).
cc_and_apply() {
	sys_autopull "$1-cc" check-config
	ap_expect_rc "$AP_CASE: check-config" "$2" "$1-cc"
	sys_autopull "$1" apply
	ap_expect_rc "$AP_CASE: apply" "$2" "$1"
	[ -z "${3:-}" ] || check "check-config says: $3" grep -qF -- "$3" "$AP_TMP/$1-cc.err"
	[ -z "${3:-}" ] || check "apply says it too" grep -qF -- "$3" "$AP_TMP/$1.err"
}

t_trust_files() {
	local d=/srv/aptrust
	ap_case "files that decide trust: owner and mode"
	sx_reset
	sx_origin
	sx_config
	sx_service web.service install "web v1"
	sx_commit v1 >/dev/null
	sys_sh chmod 0666 "$SX_CFG"
	cc_and_apply cfg666 2 "the configuration '$SX_CFG' can be written by others (mode 0666); fix: chmod go-w '$SX_CFG'"
	check "nothing applied" [ -z "$(applied)" ]
	sys_sh chmod 0644 "$SX_CFG"
	sys_sh chown "$ALICE" "$SX_CFG"
	cc_and_apply cfgown 2 "fix: chown 0 '$SX_CFG'"
	sys_sh chown root "$SX_CFG"

	next_case "trust: allowed_signers others can write"
	sys_sh rm -rf "$d"
	sys_sh mkdir -m 0755 "$d"
	printf 'x@example.invalid ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOv7tEYtI0SrC6TN0Zx4kTbn6h5w0Rm1Dnq1Qk0lH0eC\n' |
		sys_write "$d/allowed_signers"
	sys_sh chmod 0666 "$d/allowed_signers"
	sx_config "" "trust:
  ssh_allowed_signers: $d/allowed_signers"
	cc_and_apply signers 2 "trust: ssh_allowed_signers '$d/allowed_signers' can be written by others (mode 0666); fix: chmod go-w '$d/allowed_signers'"
	sys_sh chmod 0644 "$d/allowed_signers"
	sys_sh chmod 0777 "$d"
	cc_and_apply signersdir 2 "directory '$d' can be written by anyone (mode 0777); fix: chmod go-w '$d'"

	next_case "guard: a push token others can read"
	sys_sh chmod 0755 "$d"
	printf 'tok-secret\n' | sys_write "$d/token"
	sys_sh chmod 0644 "$d/token"
	sx_config "" "guard:
  push: https://metrics.invalid/api/v1/import/prometheus
  push_token_file: $d/token"
	cc_and_apply token 2 "guard: push_token_file '$d/token' can be read by others (mode 0644); fix: chmod g-w,o-rwx '$d/token'"
	check "the token is in no message" not grep -q tok-secret "$AP_TMP/token.err" "$AP_TMP/token-cc.err"

	next_case "the state directory in a directory anyone can write"
	sys_sh mkdir -p -m 0777 "$d/open"
	sys_sh chmod 0777 "$d/open"
	sx_config "" "state_dir: $d/open/state"
	cc_and_apply state 2 "the state directory '$d/open/state': directory '$d/open' can be written by anyone (mode 0777); fix: chmod go-w '$d/open'"
	check "no state written there" [ ! -e "$SYS_ROOT$d/open/state" ]
	sys_sh chmod 0755 "$d/open"
	sys_autopull statefixed apply
	ap_expect_rc "$AP_CASE: after the chmod" 0 statefixed
	sys_sh rm -rf "$d"
}

next_case() { ap_case "$1"; }

sx_pristine
t_home_no_owner
t_home_owner
t_group_writable
t_dropin_for_alias
t_trust_files
sys_sh sh -c "userdel -r $ALICE >/dev/null 2>&1; rm -rf /root/.ssh"
