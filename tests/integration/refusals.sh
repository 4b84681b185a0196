# shellcheck shell=bash
# Helpers shared by the refusal tests of the user manager (t-76-refusals.sh) and of the system
# container (tests/system/t-47-refusals.sh): a validator that refuses a Caddyfile after noise,
# and what it must have been given.

# validator_text ENV_FILE: a validator like caddy's: environment noise first, the error at the
# very end for a Caddyfile with the typo of caddyfile_typo; it writes to ENV_FILE the home it
# was given and "no writable dir: 'D'" for each of its directories it could not write to.
validator_text() {
	cat <<-EOS
	#!/bin/sh
	echo '{"level":"info","ts":1,"msg":"using config from file","file":"'"\$1"'"}' >&2
	yes '{"level":"debug","msg":"loading module"}' | head -n 3000
	printf '{"level":"warn","msg":"Caddyfile input is not formatted; run caddy fmt"}\033[0m\n' >&2
	printf 'HOME=%s XDG_CONFIG_HOME=%s XDG_DATA_HOME=%s XDG_CACHE_HOME=%s\n' "\$HOME" \
		"\$XDG_CONFIG_HOME" "\$XDG_DATA_HOME" "\$XDG_CACHE_HOME" >"$1"
	for d in "\$HOME" "\$XDG_CONFIG_HOME" "\$XDG_DATA_HOME" "\$XDG_CACHE_HOME"; do
		[ -n "\$d" ] && touch "\$d/probe" 2>/dev/null || echo "no writable dir: '\$d'" >>"$1"
	done
	if grep -q respnd "\$1"; then
		echo 'Error: adapting config using caddyfile: Caddyfile:2: unrecognized directive: respnd'
		exit 1
	fi
	EOS
}

# validator_home_checks STATE_DIR ENV_FILE: the validator ran with a home of its own in the
# private stage below STATE_DIR, and could write to it.
validator_home_checks() {
	local h=$1/stage/.home
	check "the validator ran with a home of its own in the private stage" \
		grep -qx "HOME=$h XDG_CONFIG_HOME=$h/.config XDG_DATA_HOME=$h/.local/share XDG_CACHE_HOME=$h/.cache" "$2"
	check "it could write to each of them" not grep -q "no writable dir" "$2"
}

# caddyfile_typo PORT VERSION: a Caddyfile the validator refuses ("respnd").
caddyfile_typo() { printf ':%s {\n\trespnd "%s"\n}\n' "$1" "$2"; }
