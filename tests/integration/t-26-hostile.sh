# shellcheck shell=bash
# Hostile input against the real user manager: a repository, a host and a state directory that
# try to make autopull write where it must not, hang, or lose track. Every case asserts the
# exit code, the words of the message that tell the operator what is wrong, and that the host
# is byte-identical afterwards (every file, directory, link and mode under the unit dir and
# the destinations, and the state's applied and owned), or, where the spec says so, restored.
# Each case prints a "table:" line (case | expected exit | actual exit) for the report.
#
#   repository   symlinks, submodules, "..", ".", absolute and control-character names in
#                mapped paths (crafted tree objects), blobs over 16 MiB, a NUL byte or
#                invalid UTF-8 in a unit file, a bad X-AutoPull-OnChange=
#   host         symlinks at every level below a configured root (the root itself may be
#                one), a directory or a fifo as the destination, a file in the way of a
#                directory, no space (tmpfs) for the files or for the backup, a read-only
#                destination (root-owned 0555, read-only bind mount), a write that fails
#                half-way (restored), existing files autopull did not install, with and
#                without takeover
#   state        corrupt applied, journal, owned, heartbeat; a tripped guard; a locked-out
#                state directory
#   validators   one that hangs, one that daemonizes, one that closes its output and hangs
#                (run in parallel: each takes the 60 s validation timeout), a missing one
#   manager      unreachable; a unit that does not start within its TimeoutStartSec; a unit
#                that fails to start
# Sourced by run.sh after lib.sh (and fixtures.sh). Mounts (tmpfs, bind) are made by root in
# the root mount namespace, where autopull runs as the test user, and undone on exit.

MNT=$AP_HOME/mnt                       # mount points (outside $FX_ETC, which fx_reset removes)
RO_DIR=$AP_HOME/ro                     # root-owned 0555 destination
HOSTILE_MOUNTS=()

umount_all() {
	local m
	for m in "${HOSTILE_MOUNTS[@]}"; do umount "$m" 2>/dev/null; done
	HOSTILE_MOUNTS=()
	if [ -d "$RO_DIR" ]; then chmod 0755 "$RO_DIR"; rm -rf "$RO_DIR"; fi
	return 0
}
trap umount_all EXIT

# mount_tmpfs DIR SIZE: a tmpfs owned by the test user at DIR.
mount_tmpfs() {
	install -d -o "$AP_UID" -g "$AP_GID" "$1" &&
	mount -t tmpfs -o "size=$2,mode=0755,uid=$AP_UID,gid=$AP_GID" aptest-hostile "$1" &&
	HOSTILE_MOUNTS+=("$1")
}

# ---------------------------------------------------------------------------------------------
# Configuration and fixtures

# hconfig: the fixtures' rules plus rules for the mount and read-only cases. H_TOP (top-level
# lines), H_CADDY (lines for the Caddyfile rule) and H_ENV (for the env/ rule) add to it.
hconfig() {
	{
		cat <<-EOF
		repo:
		  url: file://$FX_ORIGIN
		  branch: main
		scope: user
		units: [systemd/]
		EOF
		[ -n "${H_TOP:-}" ] && printf '%s\n' "$H_TOP"
		cat <<-EOF
		files:
		  - src: caddy/Caddyfile
		    dest: $FX_ETC/caddy/Caddyfile
		    reload: [web.service]
		EOF
		[ -n "${H_CADDY:-}" ] && printf '%s\n' "$H_CADDY"
		cat <<-EOF
		  - src: env/
		    dest: $FX_ETC/env/
		    restart: [worker.service]
		EOF
		[ -n "${H_ENV:-}" ] && printf '%s\n' "$H_ENV"
		cat <<-EOF
		  - src: big/
		    dest: $MNT/dest/
		  - src: ro/
		    dest: $RO_DIR/
		  - src: rob/
		    dest: $MNT/robind/
		  - src: own/
		    dest: $FX_ETC/own/
		    owner: root
		guard:
		  settle: 0s
		EOF
	} | ap_user_write "${1:-$AP_CFG}"
}

hsvc() {
	{
		printf '[Unit]\nDescription=%s\nStartLimitIntervalSec=0\n\n[Service]\n' "${2:-$1 v1}"
		printf 'ExecStart=/bin/sleep infinity\n'
		printf '\n[Install]\nWantedBy=default.target\n'
	} | fx_write "systemd/$1"
}

# hstart NAME: a clean slate, the base applied (V1). H_* shape the config; H_SETUP runs
# before the first apply.
hstart() {
	ap_case "$1"
	umount_all
	fx_reset
	rm -rf "${MNT:?}"
	${H_SETUP:-:} || { ap_fail "$1: setup"; return 1; }
	fx_origin file || { ap_fail "$1: fixture origin"; return 1; }
	hconfig
	hsvc web.service "web v1"
	fx_dropin web.service 10-env.conf v1
	hsvc worker.service "worker v1"
	fx_caddyfile v1
	fx_envfile v1
	V1=$(fx_commit v1) || { ap_fail "$1: commit v1"; return 1; }
	fx_apply "${1//[^A-Za-z0-9]/-}-v1"
}

# next NAME: a further case on the same host: the origin's work tree and index back to V1
# (the branch only moves forward: the next commit's parent is the last one).
next() {
	ap_case "$1"
	ap_git "$FX_ORIGIN" read-tree --reset -u "$V1" && ap_git "$FX_ORIGIN" clean -fdxq
}

# hcommit MSG: commit the origin's work tree on top of its branch.
hcommit() { fx_commit "$1" >/dev/null; }

# blob: stdin → a blob in the origin; prints its id.
blob() { ap_git "$FX_ORIGIN" hash-object -w --stdin; }

# raw_tree "MODE NAME SHA"...: a tree object with exactly these entries, names taken as bytes
# (git would refuse to write most of them); prints its id.
raw_tree() {
	"$AP_PY" -c '
import sys
ents = []
for e in sys.argv[1:]:
    mode, rest = e.split(" ", 1)
    name, sha = rest.rsplit(" ", 1)
    name = name.encode("utf-8", "surrogateescape")
    ents.append((name + (b"/" if mode.startswith("4") else b""), mode.encode(), name, sha))
out = b"".join(m + b" " + n + b"\0" + bytes.fromhex(s) for _, m, n, s in sorted(ents))
sys.stdout.buffer.write(out)' "$@" | ap_git "$FX_ORIGIN" hash-object -t tree --literally -w --stdin
}

tree_entries() {
	ap_git "$FX_ORIGIN" ls-tree "$1" | while IFS=$' \t' read -r m _ s n; do echo "${m#0} $n $s"; done
}

# crafted DIR NAME MODE SHA: commit V1's tree with one more entry NAME in DIR/ (any bytes,
# any mode) on top of the branch.
crafted() {
	local dir=$1 sub root c
	local -a e=()
	mapfile -t e < <(tree_entries "$V1:$dir")
	sub=$(raw_tree "${e[@]}" "$3 $2 $4") || return 1
	mapfile -t e < <(tree_entries "$V1^{tree}" | grep -v " $dir ")
	root=$(raw_tree "${e[@]}" "40000 $dir $sub") || return 1
	c=$(ap_git "$FX_ORIGIN" commit-tree "$root" -p HEAD -m crafted) &&
	ap_git "$FX_ORIGIN" update-ref refs/heads/main "$c"
}

# ---------------------------------------------------------------------------------------------
# Running and judging

# snap NAME: every entry under the unit dir, the destinations and the mounts (type, mode,
# owner, link target, and a hash of regular files), and the state's applied and owned (a
# state dir on a mount is left out but for those two).
snap() {
	{
		find "$AP_UNIT_DIR" "$FX_ETC" "$MNT" "$RO_DIR" -path "$MNT/state" -prune -o \
			-printf '%p %y %m %u %g %l\n' 2>/dev/null | sort |
		while read -r p y rest; do
			if [ "$y" = f ]; then echo "$p $y $rest $(sha256sum <"$p" | cut -c1-16)"; else echo "$p $y $rest"; fi
		done
		for f in applied owned; do echo "state/$f $(sha256sum <"$AP_STATE_DIR/$f" 2>/dev/null | cut -c1-16)"; done
	} >"$AP_TMP/$1.snap"
}

same_snap() {
	cmp -s "$AP_TMP/$1.snap" "$AP_TMP/$2.snap" && return 0
	diff "$AP_TMP/$1.snap" "$AP_TMP/$2.snap" | sed -n '1,10s/^/        /p'
	return 1
}

table() { printf '   table: %s | %s | %s\n' "$AP_CASE" "$1" "$2"; }

# judge NAME RC PATTERN...: the exit code of run NAME, each pattern (grep -Ei) in its stderr.
judge() {
	local name=$1 rc=$2 p; shift 2
	ap_expect_rc "$AP_CASE: exit code" "$rc" "$name"
	table "$rc" "$(cat "$AP_TMP/$name.rc")"
	for p in "$@"; do
		check "message says: $p" grep -qEi -- "$p" "$AP_TMP/$name.err"
	done
}

# refused NAME RC PATTERN...: apply; judge it; the host is byte-identical.
refused() {
	local name=$1
	snap "$name.before"
	ap_autopull "$name" --user -c "$AP_CFG" apply
	judge "$@"
	snap "$name.after"
	check "host byte-identical" same_snap "$name.before" "$name.after"
}

# one_line NAME [FORGED]: every message is one line starting with "autopull:", no line is
# the FORGED one a repository name tried to add, and no raw control byte reaches the terminal.
one_line() {
	! grep -qvE '^autopull: ' "$AP_TMP/$1.err" &&
	! { [ -n "${2:-}" ] && grep -qxF -- "$2" "$AP_TMP/$1.err"; } &&
	! LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$AP_TMP/$1.err"
}

# ---------------------------------------------------------------------------------------------
# The repository

t_repo() {
	local b
	hstart "repo: symlink in the units dir" || return
	ap_as_user ln -s web.service "$FX_ORIGIN/systemd/alias.service"
	hcommit symlink
	refused r-symlink 4 "systemd/alias.service' is a symlink" "refusing"

	next "repo: symlink in a files: directory, pointing out of the repo"
	ap_as_user ln -s /etc/passwd "$FX_ORIGIN/env/passwd.env"
	hcommit symlink2
	refused r-symlink2 4 "env/passwd.env' is a symlink"

	next "repo: symlink as a files: rule's source file"
	rm -f "$FX_ORIGIN/caddy/Caddyfile"; ap_as_user ln -s ../env/app.env "$FX_ORIGIN/caddy/Caddyfile"
	hcommit symlink3
	refused r-symlink3 4 "caddy/Caddyfile' is a symlink"

	next "repo: submodule (gitlink) named like a unit"
	crafted systemd vendor.service 160000 "$V1"
	refused r-gitlink 4 "systemd/vendor.service' is a submodule"

	next "repo: submodule (gitlink) in a files: directory"
	crafted env vendor 160000 "$V1"
	refused r-gitlink2 4 "env/vendor' is a submodule"

	b=$(printf 'X=1\n' | blob)
	next "repo: '..' as a name in a mapped directory"
	crafted env .. 100644 "$b"
	refused r-dotdot 4 "unsafe path 'env/\.\.'"

	next "repo: '.' as a name in a mapped directory"
	crafted env . 100644 "$b"
	refused r-dot 4 "unsafe path 'env/\.'"

	next "repo: an absolute name (a tree entry '/abs.env')"
	crafted env /abs.env 100644 "$b"
	refused r-abs 4 "unsafe path 'env//abs.env'"

	next "repo: a newline in a mapped file name"
	crafted env $'evil\nautopull: applied 0000.env\' in the repository' 100644 "$b"
	refused r-newline 4 "unsafe path"
	check "one line per message, no forged line" one_line r-newline \
		"autopull: applied 0000.env' in the repository' in the repository"

	next "repo: an escape sequence in a mapped file name"
	crafted env $'a\e[2Jb.env' 100644 "$b"
	refused r-esc 4 "unsafe path"
	check "one line per message, no raw control bytes" one_line r-esc

	next "repo: a newline in a unit file name"
	crafted systemd $'we\nb.service' 100644 "$b"
	refused r-newline-unit 4 "unsafe path 'systemd/we"
	check "one line per message, no raw control bytes" one_line r-newline-unit

	next "repo: a files: blob over 16 MiB"
	crafted env huge.env 100644 "$(head -c $((16 * 1024 * 1024 + 1)) /dev/zero | blob)"
	refused r-huge 4 "env/huge.env' is larger than 16777216 bytes"

	next "repo: a unit file over 16 MiB"
	crafted systemd huge.service 100644 "$({ printf '[Unit]\nDescription=huge\n#'; head -c $((16 * 1024 * 1024)) /dev/zero | tr '\0' x; } | blob)"
	refused r-huge-unit 4 "systemd/huge.service' is larger than"

	next "repo: a NUL byte in a unit file"
	crafted systemd nul.service 100644 "$(printf '[Unit]\nDescription=nul\0Documentation=man:nul(1)\n[Service]\nExecStart=/bin/sleep infinity\n' | blob)"
	refused r-nul 4 "systemd/nul.service.*NUL byte"

	next "repo: invalid UTF-8 in a unit file"
	crafted systemd utf.service 100644 "$(printf '[Unit]\nDescription=bad \xff\xfe\n[Service]\nExecStart=/bin/sleep infinity\n' | blob)"
	refused r-utf8 4 "systemd/utf.service" "UTF-8"

	next "repo: an invalid X-AutoPull-OnChange="
	hsvc web.service "web v2"
	sed -i 's/^\[Unit\]$/[Unit]\nX-AutoPull-OnChange=sometimes/' "$FX_ORIGIN/systemd/web.service"
	hcommit onchange
	refused r-onchange 4 "X-AutoPull-OnChange=" "systemd/web.service"

	# Last: no fetch gets past this commit, so the branch is put back after it.
	next "repo: a tree entry without a name (exit 4: a retry fetches the same tree)"
	local before
	before=$(ap_git "$FX_ORIGIN" rev-parse HEAD)
	crafted env "" 100644 "$(printf 'X=1\n' | blob)"
	refused r-noname 4 "holds an object that does not parse" "not a retry"
	ap_autopull r-noname2 --user -c "$AP_CFG" apply
	judge r-noname2 4 "holds an object that does not parse"
	ap_git "$FX_ORIGIN" update-ref refs/heads/main "$before"
}

# ---------------------------------------------------------------------------------------------
# The host

t_host_links() {
	local out=$AP_HOME/outside real=$AP_HOME/real-env
	hstart "host: a symlink as the destination file" || return
	rm -rf "$out"; ap_as_user mkdir -p "$out"
	printf 'outside\n' | ap_user_write "$out/target"
	rm -f "$FX_ETC/caddy/Caddyfile"; ap_as_user ln -s "$out/target" "$FX_ETC/caddy/Caddyfile"
	fx_caddyfile v2; hcommit caddy-v2
	refused h-link-file 4 "caddy/Caddyfile' \(from 'caddy/Caddyfile'\) is a symlink"
	check "nothing written through it" grep -qx outside "$out/target"
	rm -f "$FX_ETC/caddy/Caddyfile"; cp "$FX_ORIGIN/caddy/Caddyfile" "$FX_ETC/caddy/Caddyfile"

	next "host: a symlink as a unit file"
	ap_git "$FX_ORIGIN" show "$V1:systemd/worker.service" >"$out/worker.service"
	rm -f "$AP_UNIT_DIR/worker.service"; ap_as_user ln -s "$out/worker.service" "$AP_UNIT_DIR/worker.service"
	hsvc worker.service "worker v2"; hcommit worker-v2
	refused h-link-unit 4 "worker.service' \(from 'systemd/worker.service'\) is a symlink"
	rm -f "$AP_UNIT_DIR/worker.service"; cp "$out/worker.service" "$AP_UNIT_DIR/worker.service"
	chown "$AP_UID:$AP_GID" "$AP_UNIT_DIR/worker.service"

	next "host: a symlink as a destination subdirectory"
	rm -rf "$out"; ap_as_user mkdir -p "$out"
	ap_as_user ln -s "$out" "$FX_ETC/env/sub"
	printf 'X=1\n' | fx_write env/sub/x.env; hcommit sub
	refused h-link-subdir 4 "env/sub/x.env'.*symlink.*in the way"
	check "nothing written through it" [ -z "$(ls -A "$out")" ]
	rm -f "$FX_ETC/env/sub"

	next "host: a symlink as a drop-in directory"
	rm -rf "$out"; ap_as_user mkdir -p "$out"
	mv "$AP_UNIT_DIR/web.service.d/10-env.conf" "$out/"
	rmdir "$AP_UNIT_DIR/web.service.d"; ap_as_user ln -s "$out" "$AP_UNIT_DIR/web.service.d"
	fx_dropin web.service 10-env.conf v2; hcommit dropin-v2
	refused h-link-dropin 4 "web.service.d/10-env.conf'.*symlink"
	check "nothing written through it" grep -q v1 "$out/10-env.conf"
	rm -f "$AP_UNIT_DIR/web.service.d"; ap_as_user mkdir "$AP_UNIT_DIR/web.service.d"
	cp "$out/10-env.conf" "$AP_UNIT_DIR/web.service.d/"; chown -R "$AP_UID:$AP_GID" "$AP_UNIT_DIR/web.service.d"

	next "host: the configured root itself is a symlink (followed: allowed)"
	rm -rf "$real"; mv "$FX_ETC/env" "$real"; ap_as_user ln -s "$real" "$FX_ETC/env"
	fx_envfile v2; hcommit env-v2
	ap_autopull h-link-root --user -c "$AP_CFG" apply
	judge h-link-root 0
	check "the file was written into the directory the root points to" grep -q v2 "$real/app.env"
	check "the root is still the symlink" [ -L "$FX_ETC/env" ]
	rm -f "$FX_ETC/env"; mv "$real" "$FX_ETC/env"
	rm -rf "$out"
}

t_host_types() {
	hstart "host: a directory as the destination" || return
	rm -f "$FX_ETC/caddy/Caddyfile"; ap_as_user mkdir "$FX_ETC/caddy/Caddyfile"
	fx_caddyfile v2; hcommit caddy-v2
	refused h-dir 4 "caddy/Caddyfile' \(from 'caddy/Caddyfile'\) is a directory"
	rmdir "$FX_ETC/caddy/Caddyfile"

	next "host: a fifo as the destination"
	ap_as_user mkfifo "$FX_ETC/caddy/Caddyfile"
	fx_caddyfile v2; hcommit caddy-v2
	refused h-fifo 4 "caddy/Caddyfile'.* is not a regular file"
	rm -f "$FX_ETC/caddy/Caddyfile"

	next "host: a regular file in the way of a destination directory"
	printf 'I am a file\n' | ap_user_write "$FX_ETC/env/sub"
	printf 'X=1\n' | fx_write env/sub/x.env; hcommit sub
	refused h-file-in-way 4 "env/sub/x.env'.*in the way"
	rm -f "$FX_ETC/env/sub"
}

t_host_space() {
	hstart "host: no space on a destination's file system" || return
	mount_tmpfs "$MNT/dest" 64k || { ap_fail "$AP_CASE: mount tmpfs"; return; }
	head -c 200000 /dev/urandom | fx_write big/sub/blob.bin
	hcommit big
	refused h-enospc-dest 1 "no room to install the files into '$MNT/dest'" "needs"
	check "no temp file left on it" [ -z "$(find "$MNT/dest" -name '.#*')" ]
	check "no directory left on it" [ ! -e "$MNT/dest/sub" ]

	H_TOP="state_dir: $MNT/state" H_SETUP="mount_tmpfs $MNT/state 1m" \
		hstart "host: no space for the backup in the state dir" || return
	head -c $((3 * 1024 * 1024)) /dev/zero | fx_write env/big.env   # compresses to nothing in git
	hcommit big-env
	ap_autopull h-state-v2 --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: setup: a 3 MiB file is installed" 0 h-state-v2
	printf 'x' >>"$FX_ORIGIN/env/big.env"; hcommit big-env-2
	AP_STATE_DIR=$MNT/state refused h-enospc-state 1 "'$MNT/state' has [0-9]+ bytes" "backup of this apply needs"
}

t_host_readonly() {
	hstart "host: a read-only destination (root-owned 0555)" || return
	install -d -m 0555 -o root -g root "$RO_DIR"
	printf 'X=1\n' | fx_write ro/x.conf; hcommit ro
	refused h-ro-dir 1 "cannot write to '$RO_DIR'" "Permission denied"

	next "host: a read-only bind mount as the destination"
	install -d -o "$AP_UID" -g "$AP_GID" "$MNT/robind"
	mount --bind "$MNT/robind" "$MNT/robind" && HOSTILE_MOUNTS+=("$MNT/robind") &&
		mount -o remount,bind,ro "$MNT/robind" || { ap_fail "$AP_CASE: bind mount"; return; }
	printf 'X=1\n' | fx_write rob/x.conf; hcommit rob
	refused h-ro-mount 1 "cannot write to '$MNT/robind'" "Read-only file system"
}

# owner: root cannot be given in the user scope: found before any change, not half-way.
# A write that does fail half-way (an immutable drop-in, after the Caddyfile and the env file
# were written and worker.service stopped for its removal) puts everything back.
t_restore() {
	hstart "host: owner: root in the user scope is refused before any change" || return
	ap_as_user mkdir -p "$FX_ETC/own"
	fx_caddyfile v2
	printf 'X=1\n' | fx_write own/x.conf
	hcommit owner
	refused h-owner 4 "'own/x.conf' cannot be given to owner 'root': only root can"

	hstart "host: a write fails half-way (an immutable drop-in): restored" || return
	chmod 0600 "$FX_ETC/env/app.env"     # an operator's mode must come back too
	fx_caddyfile v2
	fx_envfile v2
	fx_dropin web.service 10-env.conf v2
	fx_rm systemd/worker.service
	hcommit half
	chattr +i "$AP_UNIT_DIR/web.service.d/10-env.conf"
	refused h-half 1 "failed to install 'systemd/web.service.d/10-env.conf' to '$AP_UNIT_DIR/web.service.d/10-env.conf': Operation not permitted" \
		"its files were put back; the applied commit stays ${V1:0:12}"
	chattr -i "$AP_UNIT_DIR/web.service.d/10-env.conf"
	check "the unit it stopped runs again" [ "$(ap_unit_prop worker.service ActiveState)" = active ]
	check "no journal left" [ ! -e "$AP_STATE_DIR/journal" ]
}

t_takeover() {
	local orig
	hstart "host: an existing file autopull did not install, no takeover" || return
	printf 'PRE=operator\n' | ap_user_write "$FX_ETC/env/pre.env"
	chmod 0640 "$FX_ETC/env/pre.env"
	printf 'PRE=repo\n' | fx_write env/pre.env
	printf 'NEW=1\n' | fx_write env/newdir/new.env
	hcommit pre
	refused h-unmanaged 4 "'$FX_ETC/env/pre.env' \(from 'env/pre.env'\) exists and autopull did not install it" "takeover: true"

	next "host: an existing file that already has the new bytes (no takeover needed)"
	printf 'SAME=1\n' | ap_user_write "$FX_ETC/env/same.env"
	printf 'SAME=1\n' | fx_write env/same.env; hcommit same
	ap_autopull h-same --user -c "$AP_CFG" apply
	judge h-same 0
	check "now owned" grep -qx "$FX_ETC/env/same.env" "$AP_STATE_DIR/owned"

	next "host: an existing unit file without takeover_units"
	printf '[Unit]\nDescription=pre operator\n[Service]\nExecStart=/bin/sleep infinity\n' | ap_user_write "$AP_UNIT_DIR/pre.service"
	printf '[Unit]\nDescription=pre repo\n[Service]\nExecStart=/bin/sleep infinity\n' | fx_write systemd/pre.service
	hcommit pre-unit
	refused h-unmanaged-unit 4 "pre.service' \(from 'systemd/pre.service'\) exists and autopull did not install it"

	H_ENV="    takeover: true" H_TOP="takeover_units: true" hstart "host: takeover: true keeps the original and puts it back" || return
	printf 'PRE=operator\n' | ap_user_write "$FX_ETC/env/pre.env"
	chmod 0640 "$FX_ETC/env/pre.env"
	printf '[Unit]\nDescription=pre operator\n[Service]\nExecStart=/bin/sleep infinity\n' | ap_user_write "$AP_UNIT_DIR/pre.service"
	printf 'PRE=repo\n' | fx_write env/pre.env
	printf '[Unit]\nDescription=pre repo\n[Service]\nExecStart=/bin/sleep infinity\n' | fx_write systemd/pre.service
	hcommit pre
	ap_autopull h-takeover --user -c "$AP_CFG" apply
	judge h-takeover 0 "taking over '$FX_ETC/env/pre.env'" "taking over '$AP_UNIT_DIR/pre.service'"
	check "the repo's bytes are installed" grep -qx PRE=repo "$FX_ETC/env/pre.env"
	check "the unit file was taken over" grep -q "pre repo" "$AP_UNIT_DIR/pre.service"
	orig=$(grep -rlx PRE=operator "$AP_STATE_DIR/adopted" 2>/dev/null | head -1)
	check "the original is kept in state_dir/adopted/" [ -n "$orig" ]
	fx_rm env/pre.env; fx_rm systemd/pre.service; hcommit pre-gone
	ap_autopull h-takeover-gone --user -c "$AP_CFG" apply
	ap_case "host: the repository deletes a taken-over file: the original comes back"
	judge h-takeover-gone 0
	check "the original bytes are back" grep -qx PRE=operator "$FX_ETC/env/pre.env"
	check "with its mode" [ "$(stat -c %a "$FX_ETC/env/pre.env")" = 640 ]
	check "the original unit file is back" grep -q "pre operator" "$AP_UNIT_DIR/pre.service"
	check "no longer owned" not_owned "$FX_ETC/env/pre.env"
}

not_owned() { ! grep -qx "$1" "$AP_STATE_DIR/owned"; }

# ---------------------------------------------------------------------------------------------
# The state directory

t_state() {
	local s=$AP_STATE_DIR
	hstart "state: 'applied' holds garbage" || return
	fx_envfile v2; hcommit v2
	cp "$s/applied" "$AP_TMP/applied.ok"; cp "$s/owned" "$AP_TMP/owned.ok"
	printf 'garbage\n' >"$s/applied"
	refused s-applied 1 "applied' does not hold a commit id"
	cp "$AP_TMP/applied.ok" "$s/applied"

	next "state: 'applied' names a commit the repository does not have"
	fx_envfile v2; hcommit v2
	echo 0123456789abcdef0123456789abcdef01234567 >"$s/applied"
	refused s-applied-unknown 1 "0123456789abcdef0123456789abcdef01234567' does not name a commit"
	cp "$AP_TMP/applied.ok" "$s/applied"

	next "state: a corrupt journal"
	fx_envfile v2; hcommit v2
	printf 'autopull-journal 2\nfrom nonsense\n' >"$s/journal"
	refused s-journal 1 "journal' is malformed" "move it away"
	rm -f "$s/journal"

	next "state: the journal is a directory"
	fx_envfile v2; hcommit v2
	mkdir "$s/journal"
	refused s-journal-dir 1 "journal'.*Is a directory"
	rmdir "$s/journal"

	next "state: 'owned' holds a relative path"
	fx_envfile v2; hcommit v2
	echo relative/path >>"$s/owned"
	refused s-owned 1 "owned' holds a line that is not an absolute path"
	cp "$AP_TMP/owned.ok" "$s/owned"

	next "state: 'owned' holds a path with '..'"
	fx_envfile v2; hcommit v2
	echo "$FX_ETC/env/../../.bashrc" >>"$s/owned"
	refused s-owned-dotdot 1 "owned' holds a line that is not an absolute path"
	cp "$AP_TMP/owned.ok" "$s/owned"

	next "state: a tripped guard"
	fx_envfile v2; hcommit v2
	echo "rollback of 0123 failed: test" >"$s/guard-tripped"
	refused s-tripped 3 "the guard is tripped" "override-guard"
	rm -f "$s/guard-tripped"

	next "state: the state directory cannot be written"
	fx_envfile v2; hcommit v2
	rm -f "$s/lock"; chmod 0500 "$s"
	refused s-readonly 1 "lock'.*Permission denied"
	chmod 0700 "$s"

	next "state: a corrupt heartbeat history is moved aside, the apply goes on"
	fx_envfile v2; hcommit v2
	printf 'garbage\0\xff\nmore\n' >"$s/heartbeat"
	ap_autopull s-heartbeat --user -c "$AP_CFG" apply
	judge s-heartbeat 0 "heartbeat.*moved it to heartbeat.old"
	check "the history was moved aside" [ -f "$s/heartbeat.old" ]
	check "the apply went on" grep -qx APP_VERSION=v2 "$FX_ETC/env/app.env"

	next "state: the heartbeat history is a directory"
	fx_envfile v3; hcommit v3
	rm -rf "$s/heartbeat" "$s/heartbeat.old"; mkdir "$s/heartbeat"
	ap_autopull s-heartbeat-dir --user -c "$AP_CFG" apply
	judge s-heartbeat-dir 0 "heartbeat.*not a regular file"
	check "the apply went on" grep -qx APP_VERSION=v3 "$FX_ETC/env/app.env"
}

# ---------------------------------------------------------------------------------------------
# Validators

# Three validators that each take the whole 60 s validation timeout (or more) run at once,
# each against its own copy of the state (its own lock) on the same host.
t_validators() {
	local v pids=() vcfg pf left p
	hstart "validators" || return
	fx_caddyfile v2; hcommit caddy-v2
	snap val.before
	declare -A argv=(
		[hang]='[sleep, "1000"]'
		[daemon]="[sh, -c, 'setsid sh -c \"echo \\\$\\\$ > $AP_HOME/val-daemon.pid; exec sleep 1000\" & exit 3']"
		[closefds]="[sh, -c, 'echo \$\$ > $AP_HOME/val-closefds.pid; exec >&- 2>&-; exec sleep 1000']"
	)
	rm -f "$AP_HOME"/val-*.pid
	for v in hang daemon closefds; do
		rm -rf "$AP_HOME/state-$v"; cp -a "$AP_STATE_DIR" "$AP_HOME/state-$v"
		vcfg=$AP_HOME/.config/autopull/$v.yaml
		H_TOP="state_dir: $AP_HOME/state-$v" H_CADDY="    validate: ${argv[$v]}" hconfig "$vcfg"
		(ap_as_user timeout -k 5 100 "$AP_BIN" --user -c "$vcfg" apply \
			>"$AP_TMP/v-$v.out" 2>"$AP_TMP/v-$v.err" </dev/null; echo $? >"$AP_TMP/v-$v.rc") &
		pids+=($!)
	done
	wait "${pids[@]}"
	ap_case "validator that hangs"
	judge v-hang 4 "validation of 'caddy/Caddyfile' failed \(timed out"
	ap_case "validator that daemonizes (setsid + fork) and exits 3"
	judge v-daemon 4 "validation of 'caddy/Caddyfile' failed \(exit 3\)"
	ap_case "validator that closes its output and hangs"
	judge v-closefds 4 "validation of 'caddy/Caddyfile' failed \(timed out"
	ap_case "validators"
	snap val.after
	check "host byte-identical" same_snap val.before val.after
	left=""
	for pf in "$AP_HOME"/val-*.pid; do
		[ -f "$pf" ] || continue
		p=$(cat "$pf")
		if ap_pid_alive "$p"; then left+=" $p(${pf##*/val-})"; kill -KILL "$p"; fi
	done
	check "nothing a validator started is left running${left:+:$left}" [ -z "$left" ]
	rm -rf "$AP_HOME"/state-* "$AP_HOME"/val-*.pid "$AP_HOME"/.config/autopull/{hang,daemon,closefds}.yaml

	next "validator that does not exist"
	H_CADDY="    validate: [no-such-validator-aptest, \"%s\"]" hconfig
	fx_caddyfile v2; hcommit caddy-v2
	refused v-missing 4 "validator 'no-such-validator-aptest' for 'caddy/Caddyfile' could not run"

	next "validator that fails with a lot of output"
	H_CADDY="    validate: [sh, -c, 'yes \"caddy: bad directive\" | head -c 200000; exit 1']" hconfig
	fx_caddyfile v2; hcommit caddy-v2
	# the summary quotes the last lines first; head -c cut the very last one short
	refused v-fails 4 "validation of 'caddy/Caddyfile' failed \(exit 1\): caddy: bad d[a-z]* \| caddy: bad directive \| "
	check "the message is bounded" [ "$(wc -c <"$AP_TMP/v-fails.err")" -lt 100000 ]
	hconfig
}

# ---------------------------------------------------------------------------------------------
# The manager

t_manager() {
	hstart "manager: unreachable (XDG_RUNTIME_DIR elsewhere)" || return
	hsvc web.service "web v2"; hcommit web-v2
	install -d -m 0700 -o "$AP_UID" -g "$AP_GID" "$AP_HOME/no-runtime"
	snap mgr.before
	ap_as_user env XDG_RUNTIME_DIR="$AP_HOME/no-runtime" timeout -k 5 "$AP_CMD_TIMEOUT" \
		"$AP_BIN" --user -c "$AP_CFG" apply >"$AP_TMP/m-unreachable.out" 2>"$AP_TMP/m-unreachable.err" </dev/null
	echo $? >"$AP_TMP/m-unreachable.rc"
	judge m-unreachable 75 "failed to connect to the user manager"
	snap mgr.after
	check "host byte-identical" same_snap mgr.before mgr.after
	check "no journal" [ ! -e "$AP_STATE_DIR/journal" ]
	rmdir "$AP_HOME/no-runtime"

	next "manager: a restart that does not become ready (Type=notify, TimeoutStartSec=2s)"
	printf '[Unit]\nDescription=web never ready\nStartLimitIntervalSec=0\n[Service]\nType=notify\nTimeoutStartSec=2s\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=default.target\n' |
		fx_write systemd/web.service
	hcommit web-notify
	ap_autopull m-timeout --user -c "$AP_CFG" apply
	judge m-timeout 1 "job try-restart for unit 'web.service' failed: failed" \
		"owed for the next run: restart web.service"
	check "the unit did time out" [ "$(ap_unit_prop web.service Result)" = timeout ]
	check "the job result is on stdout" grep -q "try-restart web.service: failed" "$AP_TMP/m-timeout.out"
	check "applied unchanged" [ "$(applied)" = "$V1" ]
	check "the journal keeps the failed action" grep -q "unit restart failed new web.service" "$AP_STATE_DIR/journal"

	hstart "manager: a restart that fails (ExecStartPre=/bin/false)" || return
	printf '[Unit]\nDescription=web broken\nStartLimitIntervalSec=0\n[Service]\nExecStartPre=/bin/false\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=default.target\n' |
		fx_write systemd/web.service
	hcommit web-broken
	ap_autopull m-fails --user -c "$AP_CFG" apply
	judge m-fails 1 "owed for the next run: restart web.service" "applied commit stays ${V1:0:12}"
	check "the job result is on stdout" grep -q "web.service: failed" "$AP_TMP/m-fails.out"
	check "applied unchanged" [ "$(applied)" = "$V1" ]
}

# ---------------------------------------------------------------------------------------------
if [ ! -x "$AP_BIN" ]; then
	ap_fail "no autopull binary at $AP_BIN"
	exit 1
fi
t_repo
t_host_links
t_host_types
t_host_space
t_host_readonly
t_restore
t_takeover
t_state
t_validators
t_manager
umount_all
fx_reset
rm -rf "${MNT:?}" "$AP_HOME/outside"
