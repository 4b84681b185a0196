#!/bin/sh
# Source checks run by `make check`: banned functions, the include layering (each foreign
# library is included by exactly one module; who may include which project header is the
# table in doc/ARCHITECTURE.md), test file numbers and literal /tmp/ paths in test scripts.
set -eu
fail=0
banned='\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|system|popen|getenv)[[:space:]]*\('
if grep -nE "$banned" src/*.c include/*.h | grep -v 'secure_getenv'; then
	echo "lint: banned function used (see above)" >&2; fail=1
fi
check_only() { # header allowed-files (a module is the files sharing its name's prefix: repo-*.c)
	bad=$(grep -l "#include <$1" src/*.c src/*.h include/*.h | grep -v "^$2\$" || true)
	if [ -n "$bad" ]; then echo "lint: <$1> included outside $2: $bad" >&2; fail=1; fi
}
check_only git2 "src/repo\(-[a-z]*\)\?\.[ch]"
check_only yaml.h src/config-walk.c
check_only systemd/ "src/\(bus\(-[a-z]*\)\?\|log\)\.[ch]"
check_only systemd/sd-journal src/log.c     # native journal entries (log.h)
check_only systemd/sd-bus "src/bus\(-[a-z]*\)\?\.[ch]"
check_only curl/ src/http.c
check_only json-c/ "src/fleet\(-[a-z]*\)\?\.[ch]"
check_only mbedtls/ src/digest.c
# The layers (doc/ARCHITECTURE.md): every file in src/ and include/ has a row there giving its
# layer and the project headers it may include. The table is the one place that says who may
# use whom; this only enforces it.
layers=$(awk -v table=doc/ARCHITECTURE.md -f scripts/layers.awk src/*.c src/*.h include/*.h) || true
if [ -n "$layers" ]; then printf '%s\n' "$layers" >&2; fail=1; fi
# A test is named by its number (run.sh t-20, the reports): no two files in a directory share one.
for d in tests/integration tests/system; do
	dup=$(ls $d | sed -n 's/^t-\([0-9]*\)-.*\.sh$/\1/p' | sort | uniq -d)
	for n in $dup; do echo "lint: test number $n used twice in $d/:" $d/t-$n-*.sh >&2; fail=1; done
done
# The words every test file uses (check, not, inv...) are defined in tests/lib-common.sh only.
words=$(sed -n 's/^\([a-z_]*\)() {.*/\1/p' tests/lib-common.sh | paste -sd '|' -)
bad=$(grep -nE "^[[:space:]]*($words)\(\)" tests/integration/*.sh tests/system/*.sh scripts/*.sh || true)
if [ -n "$bad" ]; then
	printf '%s\n' "$bad" >&2
	echo "lint: a test script defines a word of tests/lib-common.sh again (use the shared one)" >&2
	fail=1
fi
# Test and bench scripts write only below the harness's own directories ($AP_RUN, $AP_BINDIR,
# $AP_SYS_RUN, $AP_TMP), which every run makes anew: a literal /tmp/ path could be a leftover
# of an earlier run that a test silently depends on. Allowed: the lines that set those
# variables' defaults, mktemp templates, and paths inside the test container (marked so).
tmp_ok='(AP_RUN|AP_SYS_RUN|AP_BINDIR)(:)?=/tmp/|mktemp [^|]*/tmp/[A-Za-z0-9._-]*XXXXXX|# in the container$'
bad=$(ls tests/*.sh tests/integration/*.sh tests/system/*.sh bench/*.sh scripts/*.sh .ci/run |
	grep -vx scripts/lint.sh | xargs grep -nE '/tmp/' |
	grep -vE '^[^:]+:[0-9]+:[[:space:]]*#' | grep -vE "$tmp_ok" || true)
if [ -n "$bad" ]; then
	printf '%s\n' "$bad" >&2
	echo "lint: a hard-coded /tmp/ path in a test script (use \$AP_TMP, \$AP_RUN or \$AP_BINDIR)" >&2
	fail=1
fi
[ $fail = 0 ] && echo "lint: ok"
exit $fail
