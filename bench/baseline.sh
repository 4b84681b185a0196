#!/bin/bash
# bench/baseline.sh CONF: the reference a careful operator would write instead of autopull,
# measured by bench/run.sh against it. Same job, same user scope, same config choices:
#
#   git fetch of one branch into a private bare mirror → git diff --name-status old..new
#   (limited to the mapped paths) → install the changed files (install -m 0644) → enable new
#   units that have [Install] → ONE `systemctl --user daemon-reload` iff a unit file or
#   drop-in changed → try-restart only the affected units (all in one systemctl call, which
#   waits for every job) → try-reload-or-restart the units a changed config file names →
#   start the newly enabled units → record the applied commit (temp file + mv) last.
#
# "Careful": a lock, no-op exit when the tip is applied, deletions handled (disable --now,
# rm), nothing restarted that did not change, the applied commit written only after every
# step succeeded. Deliberately NOT done (autopull does these; noted in the bench output):
# validation of unit files (systemd-analyze verify), atomic rename+fsync installs, backups,
# a journal for crash recovery, symlink/path-safety checks on repo content.
#
# It runs as the unit owner. On this machine systemctl only works inside the user manager's
# mount namespace (PLATFORM.md §0), so bench/run.sh runs it from one worker started there
# once (bench/shell-worker.sh), as a timer on a host would: no wrapper per run.
#
# CONF is a shell file setting: URL BRANCH STATE UNIT_DIR UNITS_SRC FILE_SRC FILE_DEST
# FILE_RELOAD (the one file rule of the bench config: FILE_SRC → FILE_DEST, reload FILE_RELOAD)
# and optionally GIT_PROTO (git's protocol.version; the bench sets 0, what libgit2 speaks).
# Exit codes as autopull's: 0 done or nothing to do, 1 failed, 2 usage, 75 remote/lock.
set -u -o pipefail

conf=${1:?usage: baseline.sh CONF}
# shellcheck source=/dev/null
. "$conf" || exit 2
umask 022
mkdir -p "$STATE" || exit 1
exec 9>"$STATE/lock"
flock -n 9 || { echo "baseline: another run holds $STATE/lock" >&2; exit 75; }

mirror=$STATE/repo.git
track=refs/remotes/origin/$BRANCH
if [ ! -d "$mirror" ]; then
	git init -q --bare "$mirror" || exit 1
fi
git ${GIT_PROTO:+-c protocol.version="$GIT_PROTO"} --git-dir="$mirror" fetch -q --no-tags "$URL" \
	"+refs/heads/$BRANCH:$track" || exit 75
new=$(git --git-dir="$mirror" rev-parse --verify -q "$track^{commit}") || exit 1
old=
[ -f "$STATE/applied" ] && read -r old <"$STATE/applied"
[ "$old" = "$new" ] && exit 0

# What changed, as "STATUS<TAB>PATH", only below the mapped paths.
if [ -n "$old" ]; then
	changes=$(git --git-dir="$mirror" diff --no-renames --name-status "$old" "$new" -- \
		"$UNITS_SRC/" "$FILE_SRC") || exit 1
else
	changes=$(git --git-dir="$mirror" ls-tree -r --name-only "$new" -- "$UNITS_SRC/" "$FILE_SRC" |
		sed 's/^/A\t/') || exit 1
fi
if [ -z "$changes" ]; then	# only unmapped paths changed
	echo "$new" >"$STATE/applied.tmp" && mv -f "$STATE/applied.tmp" "$STATE/applied"
	exit
fi

units_changed=0
fetch=() units=() dropins=() added=() restart=() reload=() removed=() rmfiles=() file=
while IFS=$'\t' read -r st path; do
	rel=${path#"$UNITS_SRC"/}
	case $path in
	"$FILE_SRC")
		if [ "$st" = D ]; then rmfiles+=("$FILE_DEST"); else fetch+=("$path"); file=$path; fi
		reload+=("$FILE_RELOAD") ;;
	"$UNITS_SRC"/*.d/*.conf)
		units_changed=1
		if [ "$st" = D ]; then rmfiles+=("$UNIT_DIR/$rel"); else fetch+=("$path"); dropins+=("$rel"); fi
		restart+=("${rel%%.d/*}") ;;
	"$UNITS_SRC"/*.service | "$UNITS_SRC"/*.socket | "$UNITS_SRC"/*.timer | \
	"$UNITS_SRC"/*.path | "$UNITS_SRC"/*.target)
		units_changed=1
		case $st in
		D) removed+=("$rel") ;;
		A) fetch+=("$path"); units+=("$rel"); added+=("$rel") ;;
		*) fetch+=("$path"); units+=("$rel"); restart+=("$rel") ;;
		esac ;;
	esac
done <<<"$changes"

# The new contents of every changed file, with one git call.
stage=$(mktemp -d "$STATE/stage.XXXXXX") || exit 1
trap 'rm -rf "$stage"' EXIT
if [ ${#fetch[@]} -gt 0 ]; then
	git --git-dir="$mirror" archive "$new" -- "${fetch[@]}" | tar -x -C "$stage" || exit 1
fi

# Units being removed are disabled and stopped while their files still exist.
if [ ${#removed[@]} -gt 0 ]; then
	systemctl --user disable --now --no-reload -q -- "${removed[@]}" || exit 1
	for u in "${removed[@]}"; do rmfiles+=("$UNIT_DIR/$u"); done
fi

# Install. Unit files are flat: one install call for all of them.
if [ ${#units[@]} -gt 0 ]; then
	install -d -m 0755 "$UNIT_DIR" &&
		install -m 0644 -t "$UNIT_DIR" "${units[@]/#/$stage/$UNITS_SRC/}" || exit 1
fi
for d in ${dropins[@]+"${dropins[@]}"}; do
	install -D -m 0644 "$stage/$UNITS_SRC/$d" "$UNIT_DIR/$d" || exit 1
done
if [ -n "$file" ]; then
	install -D -m 0644 "$stage/$file" "$FILE_DEST" || exit 1
fi
if [ ${#rmfiles[@]} -gt 0 ]; then
	rm -f -- "${rmfiles[@]}" || exit 1
fi

# New units with an [Install] section are enabled (no reload of its own) and started.
start=()
for u in ${added[@]+"${added[@]}"}; do
	grep -q '^\[Install\]' "$stage/$UNITS_SRC/$u" && start+=("$u")
done
if [ ${#start[@]} -gt 0 ]; then
	systemctl --user enable --no-reload -q -- "${start[@]}" || exit 1
fi
if [ $units_changed = 1 ]; then
	systemctl --user daemon-reload || exit 1
fi
if [ ${#restart[@]} -gt 0 ]; then
	# shellcheck disable=SC2046
	systemctl --user try-restart -- $(printf '%s\n' "${restart[@]}" | sort -u) || exit 1
fi
if [ ${#reload[@]} -gt 0 ]; then
	systemctl --user try-reload-or-restart -- "${reload[@]}" || exit 1
fi
if [ ${#start[@]} -gt 0 ]; then
	systemctl --user start -- "${start[@]}" || exit 1
fi
echo "$new" >"$STATE/applied.tmp" && mv -f "$STATE/applied.tmp" "$STATE/applied"
