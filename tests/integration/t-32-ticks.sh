# shellcheck shell=bash
# What one tick costs in syncs, against the real user manager: the fsync/fdatasync/syncfs
# calls of an apply (counted by strace -f -c, deterministic) must not grow with the number of
# files it changes, since the backup copies and the installed files are made durable by one
# syncfs each (the journal and the backup's manifest, written after them, say when they
# count). Every apply's result is checked on the host: installed bytes, the restart it asked
# for (a new InvocationID), the recorded commit. Sourced by run.sh after lib.sh (and
# fixtures.sh).

FX_SETTLE=0s
N_ENV=12

# env_files REV FIRST LAST: env/NN.env of the origin for NN in FIRST..LAST, at REV.
env_files() {
	local i
	for ((i = $2; i <= $3; i++)); do
		printf 'N=%s\nREV=%s\n' "$i" "$1" | fx_write "env/$(printf '%02d' "$i").env"
	done
}

# installed_as_origin: every env file of the origin is installed byte for byte.
installed_as_origin() {
	local f
	for f in "$FX_ORIGIN"/env/*; do
		cmp -s "$f" "$FX_ETC/env/${f##*/}" || return 1
	done
}

# syncs NAME: apply under strace, counting the sync calls of autopull and its children into
# SYNCS (empty when the apply failed).
syncs() {
	# strace runs as the test user and writes its summary there.
	install -d -o "$AP_UID" -g "$AP_GID" "$AP_TMP/strace"
	ap_as_user timeout -k 5 "$AP_CMD_TIMEOUT" strace -f -c -o "$AP_TMP/strace/$1" \
		-e trace=fsync,fdatasync,syncfs,sync,sync_file_range "$AP_BIN" --user -c "$AP_CFG" apply \
		>"$AP_TMP/$1.out" 2>"$AP_TMP/$1.err" </dev/null
	AP_RC=$?
	echo "$AP_RC" >"$AP_TMP/$1.rc"
	SYNCS=
	ap_expect_rc "$AP_CASE: apply $1" 0 "$1" || return
	# "% time, seconds, usecs/call, calls[, errors] total"
	SYNCS=$(awk '$NF == "total" { print $4 }' "$AP_TMP/strace/$1")
}

# change REV LAST: env/01..LAST changed to REV, committed and applied under strace (SYNCS);
# the host must then be at the new commit with worker.service restarted.
change() {
	local w sha
	w=$(inv worker.service)
	env_files "$1" 1 "$2"
	sha=$(fx_commit "$1")
	syncs "ticks-$1"
	check "$1 applied" [ "$(applied)" = "$sha" ]
	check "$1's files installed byte for byte" installed_as_origin
	check "worker.service restarted for $1 (new InvocationID)" [ "$(inv worker.service)" != "$w" ]
}

t_syncs_flat() {
	local few many
	ap_case "syncs of an apply do not grow with the files it changes"
	if ! command -v strace >/dev/null; then
		ap_fail "$AP_CASE: strace is missing (scripts/deps.sh installs it)"
		return
	fi
	fx_reset
	fx_origin file || { ap_fail "$AP_CASE: fixture origin"; return; }
	fx_config "$FX_URL"
	fx_base
	env_files v1 1 "$N_ENV"
	fx_commit v1 >/dev/null || { ap_fail "$AP_CASE: commit v1"; return; }
	fx_apply ticks-v1 || return
	# Two files changed, then all twelve: each has a backup copy and a new version.
	change v2 2
	few=$SYNCS
	change v3 "$N_ENV"
	many=$SYNCS
	check "the syncs were counted ($few, $many)" [ "${few:-0}" -gt 0 -a "${many:-0}" -gt 0 ]
	check "as many syncs for $N_ENV changed files as for 2 ($many vs $few)" [ "$many" = "$few" ]
}

# -------------------------------------------------------------------------------------------
if [ ! -x "$AP_BIN" ]; then
	ap_fail "no autopull binary at $AP_BIN"
	exit 1
fi
t_syncs_flat
fx_reset
