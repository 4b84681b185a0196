# shellcheck shell=bash
# The documentation and the build as a user meets them: both man pages render without a groff
# warning; autopull.yaml(5) documents exactly the keys of the schema tables (config-schema.c,
# config-fleet.c) and its examples load; autopull(8) documents exactly the verbs and options
# of `autopull --help` and the exit codes of exitcode.h; the bash completion offers the same
# verbs and options, file names after -c and the history's commits after --commit and pin
# (and changes nothing); `make` names a missing library through pkg-config and never calls
# apt-get. Sourced by run.sh after lib.sh.

MAN8=$AP_ROOT/doc/autopull.8
MAN5=$AP_ROOT/doc/autopull.yaml.5
COMPLETION=$AP_ROOT/completion/autopull.bash

# unescape: man source → text (the escapes these pages use); unroff: also without quotes,
# for the words of macro lines.
unescape() { sed -e 's/\\-/-/g' -e 's/\\(dq/"/g' -e 's/\\&//g' -e 's/\\f[BIRP]//g'; }
unroff() { unescape | sed -e 's/"//g'; }

# man_terms FILE SECTION: the first word of each .TP term in the .SH/.SS section SECTION (up
# to the next .SH or .SS).
man_terms() {
	awk -v sec="$2" '
		/^\.S[HS] / { name = $0; sub(/^\.S[HS] +/, "", name); gsub(/"/, "", name)
			      insec = (name == sec); tp = 0; next }
		insec && tp && /^\.[BI][RI]? / { print $2 }
		{ tp = ($0 == ".TP") }' "$1" | unroff
}

# man_section FILE SECTION: the text of one .SH section.
man_section() {
	awk -v sec="$2" '/^\.SH / { name = $0; sub(/^\.SH +/, "", name); gsub(/"/, "", name)
				    insec = (name == sec); next } insec' "$1"
}

# schema_keys: "TABLE KEY" for every key of every schema table in src/config-schema.c and
# src/config-fleet.c (the fleet: section).
schema_keys() {
	awk '
		/^static const struct ap_config_field [a-z_]+_fields\[\] = \{/ { t = $5; sub(/_fields.*/, "", t); next }
		t != "" && /^\};/ { t = ""; next }
		t != "" { s = $0
			  while (match(s, /(STR|SEQ|ABS_FILE)\("[a-z_]+"|\.key = "[a-z_]+"/)) {
				k = substr(s, RSTART, RLENGTH); sub(/^[^"]*"/, "", k); sub(/"$/, "", k)
				print t, k; s = substr(s, RSTART + RLENGTH) } }' \
		"$AP_ROOT/src/config-schema.c" "$AP_ROOT/src/config-fleet.c"
}

# same_set DESC WANT GOT: two word lists hold the same words (order and repeats aside).
same_set() {
	local want got
	want=$(tr -s ' \t\n' '\n' <<<"$2" | sed '/^$/d' | sort -u)
	got=$(tr -s ' \t\n' '\n' <<<"$3" | sed '/^$/d' | sort -u)
	if [ "$want" = "$got" ]; then ap_ok "$AP_CASE: $1"; return 0; fi
	ap_fail "$AP_CASE: $1 (missing: $(comm -23 <(echo "$want") <(echo "$got") | tr '\n' ' ')extra: $(comm -13 <(echo "$want") <(echo "$got") | tr '\n' ' '))"
}

# -------------------------------------------------------------------------------------------
ap_case "man pages render"
for page in "$MAN8" "$MAN5"; do
	name=${page##*/}
	LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings=w -l "$page" >"$AP_TMP/$name.txt" 2>"$AP_TMP/$name.warn"
	check "$name: man -l renders it" [ -s "$AP_TMP/$name.txt" ]
	check "$name: no warning from man -l --warnings=w ($(head -c 200 "$AP_TMP/$name.warn"))" \
		[ ! -s "$AP_TMP/$name.warn" ]
	groff -ww -z -man -Tutf8 "$page" >"$AP_TMP/$name.groff" 2>&1
	check "$name: no warning from groff -ww ($(head -c 200 "$AP_TMP/$name.groff"))" \
		[ ! -s "$AP_TMP/$name.groff" ]
	check "$name: whatis finds its NAME line" lexgrog "$page"
	check "$name: nothing hyphenated at the line ends" not grep -q '‐$' "$AP_TMP/$name.txt"
done
ver=$("$AP_BIN" --version)
check "the pages carry the version of the binary ($ver)" \
	grep -q "^\.TH .* \"${ver}\"" "$MAN8" "$MAN5"
check "debian/changelog is at the same version" \
	[ "autopull $(dpkg-parsechangelog -l "$AP_ROOT/debian/changelog" -S Version)" = "$ver" ]
check "the Debian package description names autopull.yaml(5)" \
	grep -q 'autopull.yaml(5)' "$AP_ROOT/debian/control"

# -------------------------------------------------------------------------------------------
ap_case "autopull.yaml(5): every key of the schema, and only those"
schema_keys >"$AP_TMP/schema.keys"
check "the schema tables were read ($(wc -l <"$AP_TMP/schema.keys") keys)" \
	[ "$(wc -l <"$AP_TMP/schema.keys")" -ge 45 ]
for map in top:KEYS repo:repo units_entry:units rule:files guard:guard trust:trust hooks:hooks \
	fleet:fleet probe:health secrets:secrets; do
	table=${map%%:*} sec=${map#*:}
	same_set "section $sec = the schema's ${table}_fields" \
		"$(awk -v t="$table" '$1 == t { print $2 }' "$AP_TMP/schema.keys")" \
		"$(man_terms "$MAN5" "$sec")"
done
check "no schema table without a section" \
	[ -z "$(cut -d' ' -f1 "$AP_TMP/schema.keys" | sort -u | grep -vx 'top\|repo\|units_entry\|rule\|guard\|trust\|hooks\|fleet\|probe\|secrets')" ]
# Every key of the top level, repo, files and guard states its default, or that it is
# required.
awk 'function flush() { if (want && term != "" && text !~ /[Dd]efault|required/) print sec ":" term; term = "" }
     /^\.S[HS] / { flush(); sec = $0; sub(/^\.S[HS] +/, "", sec)
		   want = sec == "KEYS" || sec == "repo" || sec == "files" || sec == "guard"; next }
     /^\.(TP|PP)$/ { flush(); tp = ($0 == ".TP"); next }
     tp { term = $2; text = $0; tp = 0; next }
     term != "" { text = text " " $0 }
     END { flush() }' "$MAN5" >"$AP_TMP/nodefault"
check "every key in KEYS, repo, files and guard states its default ($(tr '\n' ' ' <"$AP_TMP/nodefault"))" \
	[ ! -s "$AP_TMP/nodefault" ]

ap_case "autopull.yaml(5): the examples load"
awk '/^\.SH EXAMPLES/ { ex = 1 } /^\.SH / && !/EXAMPLES/ { ex = 0 }
     ex && /^\.EX/ { n++; f = sprintf("%s/man-example-%d.yaml", dir, n); printf "" > f; next }
     ex && /^\.EE/ { close(f); f = ""; next }
     f != "" { print > f }' dir="$AP_TMP" "$MAN5"
cp "$AP_ROOT/config/autopull.yaml" "$AP_TMP/shipped-example.yaml"
n=0
for f in "$AP_TMP"/man-example-*.yaml "$AP_TMP/shipped-example.yaml"; do
	unescape <"$f" >"$f.y"
	# A fragment (trust:, ...) gets the one required key.
	grep -q '^repo:' "$f.y" || sed -i '1i repo:\n  url: /srv/git/infra.git' "$f.y"
	# check-config prints its JSON only for a configuration that loaded; it may list
	# destinations this host cannot write (exit 2), which is not the question here.
	HOME=$AP_TMP "$AP_BIN" check-config --json -c "$f.y" >"$f.out" 2>"$f.err"
	check "${f##*/} loads ($(head -c 200 "$f.err"))" grep -q '^{"config": ' "$f.out"
	n=$((n + 1))
done
check "five examples and the shipped example were tried" [ "$n" -ge 6 ]

# -------------------------------------------------------------------------------------------
ap_case "autopull(8): every verb, option and exit code, and only those"
"$AP_BIN" --help >"$AP_TMP/help.txt"
help_verbs=$(awk '/^verbs:/ { v = 1; next } v && /^$/ { exit } v { print $1 }' "$AP_TMP/help.txt")
help_opts=$(awk '/^options:/ { o = 1; next } o && /^$/ { exit } o && /^ +-/' "$AP_TMP/help.txt" |
	grep -oE '(^|[ ,])--?[a-z][a-z-]*' | tr -d ' ,')
check "--help lists the verbs (${help_verbs//$'\n'/ })" [ "$(echo "$help_verbs" | wc -w)" -ge 8 ]
check "--help lists the options ($(echo "$help_opts" | wc -w))" [ "$(echo "$help_opts" | wc -w)" -ge 20 ]
same_set "COMMANDS = the verbs of --help" "$help_verbs" "$(man_terms "$MAN8" COMMANDS)"
man_opts=$(sed -n '/^\.SH OPTIONS/,/^\.SH /{/^\.TP$/{n;p}}' "$MAN8" | unroff |
	grep -oE '(^|[ ,])--?[a-z][a-z-]*' | tr -d ' ,')
same_set "OPTIONS = the options of --help" "$help_opts" "$man_opts"
codes=$(grep -oE '= [0-9]+,' "$AP_ROOT/include/exitcode.h" | tr -dc '0-9\n')
check "exitcode.h read (${codes//$'\n'/ })" [ "$(echo "$codes" | wc -w)" -ge 7 ]
same_set "EXIT STATUS = exitcode.h" "$codes" "$(man_terms "$MAN8" "EXIT STATUS")"
for v in $help_verbs; do
	check "SYNOPSIS names $v" grep -q "$v" <(man_section "$MAN8" SYNOPSIS | unroff)
done

# -------------------------------------------------------------------------------------------
ap_case "bash completion"
# comp WORDS...: run the completion function as bash would for the command line WORDS, the
# cursor on the last word (as the test user, with the built binary first in PATH); prints
# COMPREPLY one per line.
install -m 0644 "$COMPLETION" "$AP_TMP/completion.bash"
comp() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	ap_as_user env PATH="${AP_BIN%/*}:/usr/bin:/bin" bash --norc --noprofile -c '
		. "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		_autopull autopull "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		printf "%s\n" "${COMPREPLY[@]}"' comp "$AP_TMP/completion.bash" "$@"
}
spec=$(bash --norc --noprofile -c '. "$1"; complete -p autopull' x "$COMPLETION")
check "complete -p autopull: $spec" [ "$spec" = "complete -F _autopull autopull" ]
same_set "the verbs of --help" "$help_verbs" "$(comp autopull '')"
same_set "the options of --help" "$help_opts" "$(comp autopull -)"
check "a prefix: ch -> check-config" [ "$(comp autopull ch)" = check-config ]
check "a prefix: --dr -> --dry-run" [ "$(comp autopull --dr)" = --dry-run ]
check "options after the verb" [ "$(comp autopull status --js)" = --json ]
check "no second verb" [ -z "$(comp autopull status '')" ]
check "fleet: its one subcommand" [ "$(comp autopull fleet '')" = status ]
check "nothing after fleet status" [ -z "$(comp autopull fleet status '')" ]
check "verbs after options with arguments" [ "$(comp autopull -c /x --wait 5 he)" = heartbeat ]
check "nothing for -n N" [ -z "$(comp autopull log -n '')" ]
check "nothing for --reason TEXT" [ -z "$(comp autopull --reason '')" ]
d=$AP_TMP/compfiles
rm -rf "$d"; mkdir -p "$d/sub"; touch "$d/site.yaml" "$d/other.conf"; chmod -R a+rX "$d"
same_set "-c FILE: file names" "$d/site.yaml $d/sub" "$(comp autopull -c "$d/s")"
same_set "--config=FILE: file names" "$d/site.yaml $d/sub" "$(comp autopull --config = "$d/s")"

ap_case "bash completion: revisions from the history"
fx_reset
check "--commit without a history: only HEAD~1" [ "$(comp autopull --user --commit '')" = 'HEAD~1' ]
fx_origin file || ap_fail "$AP_CASE: fixture origin"
fx_config "$FX_URL"
fx_service web.service install "web v1"
v1=$(fx_commit v1)
fx_apply v1
fx_service web.service install "web v2"
v2=$(fx_commit v2)
fx_apply v2
sha256sum "$AP_STATE_DIR/events" "$AP_STATE_DIR/applied" >"$AP_TMP/state.before"
want="${v2:0:12}
${v1:0:12}"
check "pin REV: the applied commits, newest first" [ "$(comp autopull --user -c "$AP_CFG" pin '')" = "$want" ]
check "pin REV with a prefix" [ "$(comp autopull --user -c "$AP_CFG" pin "${v1:0:5}")" = "${v1:0:12}" ]
check "--commit REV: the same and HEAD~1" \
	[ "$(comp autopull --user -c "$AP_CFG" apply --commit '')" = "$want
HEAD~1" ]
check "--from=REV" [ "$(comp autopull --user -c "$AP_CFG" --dry-run --from = "${v2:0:4}")" = "${v2:0:12}" ]
check "--config=FILE is passed on" [ "$(comp autopull --user --config = "$AP_CFG" pin "${v2:0:4}")" = "${v2:0:12}" ]
check "nothing after pin REV" [ -z "$(comp autopull --user pin "$v1" '')" ]
check "log UNIT: the units applies acted on" [ "$(comp autopull --user -c "$AP_CFG" log '')" = web.service ]
check "log UNIT with a prefix" [ "$(comp autopull --user -c "$AP_CFG" log web.service w)" = web.service ]
check "log UNIT: none for another prefix" [ -z "$(comp autopull --user -c "$AP_CFG" log x)" ]
check "completion changed no state (events, applied)" sha256sum --quiet -c "$AP_TMP/state.before"
fx_reset

# -------------------------------------------------------------------------------------------
ap_case "make: pkg-config names a missing library, nothing is installed"
# A pkg-config search path with every .pc file of this host but yaml-0.1 and cmocka, and a
# PATH whose apt-get, apt, dpkg and sudo only record that they were called.
pc=$AP_TMP/pc fake=$AP_TMP/fakebin
rm -rf "$pc" "$fake"; mkdir -p "$pc" "$fake"
for dir in $(pkg-config --variable pc_path pkg-config | tr : ' '); do
	[ -d "$dir" ] && find "$dir" -maxdepth 1 -name '*.pc' -exec ln -sf {} "$pc/" \;
done
check "the host's .pc files were found" [ -e "$pc/libgit2.pc" ] && [ -e "$pc/yaml-0.1.pc" ]
rm -f "$pc/yaml-0.1.pc" "$pc/cmocka.pc"
for tool in apt-get apt dpkg dpkg-query sudo; do
	printf '#!/bin/sh\necho "%s $*" >>"%s/called"\nexit 1\n' "$tool" "$fake" >"$fake/$tool"
	chmod 0755 "$fake/$tool"
done
for goal in "" install; do
	PATH=$fake:$PATH PKG_CONFIG_LIBDIR=$pc timeout 60 make -n -C "$AP_ROOT" $goal \
		>"$AP_TMP/make.out" 2>"$AP_TMP/make.err"
	rc=$?
	check "make -n $goal fails without yaml-0.1 (exit $rc)" [ "$rc" -ne 0 ]
	check "make -n $goal names it ($(head -c 200 "$AP_TMP/make.err"))" \
		grep -q 'missing libraries (pkg-config): yaml-0.1' "$AP_TMP/make.err"
done
check "no package tool was called ($(cat "$fake/called" 2>/dev/null))" [ ! -e "$fake/called" ]
ln -sf "$(pkg-config --variable pcfiledir yaml-0.1)/yaml-0.1.pc" "$pc/"
PATH=$fake:$PATH PKG_CONFIG_LIBDIR=$pc timeout 60 make -n -C "$AP_ROOT" all install \
	DESTDIR="$AP_TMP/destdir" >"$AP_TMP/make.out" 2>"$AP_TMP/make.err"
check "make -n all install: fine without cmocka (exit $?)" [ ! -s "$AP_TMP/make.err" ]
check "... and calls no package tool, deps.sh or test tool" \
	not grep -qE 'apt-get|deps\.sh|cmocka|valgrind|victoria|python3' "$AP_TMP/make.out"
check "no package tool was called ($(cat "$fake/called" 2>/dev/null))" [ ! -e "$fake/called" ]
# `make deb` on a fresh machine: deps.sh installs what dpkg-buildpackage needs (here every
# package looks missing to the fake dpkg-query, and the fake apt-get records the call).
PATH=$fake:$PATH timeout 60 make -n -C "$AP_ROOT" deb >"$AP_TMP/make.out" 2>"$AP_TMP/make.err"
check "make deb asks apt-get for debhelper and dpkg-dev ($(grep -m1 'apt-get install' "$fake/called" | head -c 120))" \
	grep -qE '^apt-get install .*debhelper dpkg-dev' "$fake/called"
rm -f "$fake/called"
