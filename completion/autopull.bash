# bash completion for autopull(8); installed as bash-completion/completions/autopull.
#
# Completes the verbs, the options (and -c FILE with file names), revisions for --commit,
# --from and `pin`: the commits earlier applies went to and that applied (not a refused, a
# failed or a rolled-back one: pinning a bad commit is no way out), newest first, the commits
# untrusted refusals named for `trust skip`, `status` after `fleet`, and unit names for
# `log UNIT...`: the units applies acted on. Both are read with `autopull log --json` (the
# state directory's history; nothing is fetched, locked or planned). The lists below are the ones `autopull --help` prints; the tests compare them.
# Needs nothing from the bash-completion package.

_autopull_verbs="apply status log pin unpin diff check-config heartbeat trust fleet plan"
_autopull_opts_arg="-c --config -n --lines --commit --from --wait --reason --host --repo --format"
_autopull_opts="--user --dry-run --json --no-fetch --allow-empty --override-guard
--allow-rewind -v --verbose -q --quiet -h --help --version"

# _autopull_revs CONFIG_ARGS...: the "to" commits of the applies and reverts of the history
# that succeeded (short ids), newest first, each once. CONFIG_ARGS (-c FILE, --user) choose
# the configuration as on the command line. A string value cannot hold the unescaped quotes
# of the pattern, so a reason cannot fake an event.
_autopull_revs() {
	local json ids id seen=" "
	json=$(timeout 2 autopull "$@" log --json -n 1000 2>/dev/null) || return 0
	ids=$(printf '%s\n' "$json" |
		grep -o '"event": "\(apply\|revert\)", "result": "ok", "from": \(null\|"[0-9a-f]*"\), "to": "[0-9a-f]\{12,\}"' |
		sed 's/.*"to": "\([0-9a-f]*\)"$/\1/')
	for id in $(printf '%s\n' "$ids" | tac); do
		id=${id:0:12}
		case $seen in *" $id "*) continue ;; esac
		seen+="$id "
		printf '%s\n' "$id"
	done
}

# _autopull_untrusted CONFIG_ARGS...: the commits untrusted refusals named (for trust skip).
_autopull_untrusted() {
	local json
	json=$(timeout 2 autopull "$@" log --json -n 200 2>/dev/null) || return 0
	printf '%s\n' "$json" | grep -o '"result": "untrusted"[^}]*"reason": "[0-9a-f]\{40\} ' |
		sed 's/.*"reason": "\([0-9a-f]\{12\}\).*/\1/' | sort -u
}

# _autopull_units CONFIG_ARGS...: the units the history's events acted on, each once.
_autopull_units() {
	local json
	json=$(timeout 2 autopull "$@" log --json -n 1000 2>/dev/null) || return 0
	printf '%s\n' "$json" | grep -o '"units": "[^"]*"' | cut -d'"' -f4 | tr ';,' '\n\n' |
		sed 's/^[a-z-]*=//' | sort -u
}

_autopull() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev='' opt i w verb='' skip=0 nargs=0
	local -a cfg=()
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	# --opt=VALUE: bash splits it at '=' (COMP_WORDBREAKS).
	if [[ $cur == = ]]; then
		opt=$prev cur=
	elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
		opt=${COMP_WORDS[COMP_CWORD - 2]}
	else
		opt=$prev
	fi
	COMPREPLY=()

	# The verb, its arguments so far and the options that choose the configuration.
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if ((skip)); then
			skip=0
			[[ $w == = ]] && skip=1
			continue
		fi
		case $w in
		-c | --config)
			w=${COMP_WORDS[i + 1]-}
			[[ $w == = ]] && w=${COMP_WORDS[i + 2]-}
			# shellcheck disable=SC2088 # a typed ~/ is not expanded in COMP_WORDS
			[[ $w == "~/"* ]] && w=$HOME/${w#"~/"}
			cfg+=(-c "$w")
			skip=1 ;;
		--user) cfg+=(--user) ;;
		-n | --lines | --commit | --from | --wait | --reason | --host | --repo | --format) skip=1 ;;
		-*) ;;
		*) if [[ -z $verb ]]; then verb=$w; else nargs=$((nargs + 1)); fi ;;
		esac
	done

	case $opt in
	-c | --config)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return 0 ;;
	--commit | --from)
		compopt -o nosort 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -W "$(_autopull_revs "${cfg[@]}") HEAD~1" -- "$cur")
		return 0 ;;
	--repo)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -d -- "$cur")
		return 0 ;;
	--format)
		mapfile -t COMPREPLY < <(compgen -W "markdown json" -- "$cur")
		return 0 ;;
	-n | --lines | --wait | --reason | --host)
		return 0 ;;
	esac

	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$_autopull_opts_arg $_autopull_opts" -- "$cur")
	elif [[ -z $verb ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$_autopull_verbs" -- "$cur")
	elif [[ $verb == log ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$(_autopull_units "${cfg[@]}")" -- "$cur")
	elif [[ $verb == trust ]] && ((nargs == 0)); then
		mapfile -t COMPREPLY < <(compgen -W "skip" -- "$cur")
	elif [[ $verb == fleet ]] && ((nargs == 0)); then
		mapfile -t COMPREPLY < <(compgen -W "status" -- "$cur")
	elif [[ $verb == trust ]] && ((nargs == 1)); then
		mapfile -t COMPREPLY < <(compgen -W "$(_autopull_untrusted "${cfg[@]}")" -- "$cur")
	elif [[ $verb == pin ]] && ((nargs == 0)); then
		compopt -o nosort 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -W "$(_autopull_revs "${cfg[@]}")" -- "$cur")
	fi
	return 0
}

complete -F _autopull autopull
