#!/bin/sh
# Source checks run by `make check`: banned functions and the include layering
# (each foreign library is included by exactly one module).
set -eu
fail=0
banned='\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|system|popen|getenv)[[:space:]]*\('
if grep -nE "$banned" src/*.c include/*.h | grep -v 'secure_getenv'; then
	echo "lint: banned function used (see above)" >&2; fail=1
fi
check_only() { # header allowed-file
	bad=$(grep -l "#include <$1" src/*.c include/*.h | grep -v "^$2\$" || true)
	if [ -n "$bad" ]; then echo "lint: <$1> included outside $2: $bad" >&2; fail=1; fi
}
check_only git2 "src/repo\(-fetch\|-git\|-tree\)\?.c"
check_only yaml.h src/config.c
check_only systemd/ "src/\(bus\|bus-props\|log\).c"
check_only systemd/sd-journal src/log.c     # native journal entries (log.h)
check_only systemd/sd-bus "src/bus\(-props\)\?.c"
check_only curl/ src/http.c
check_only mbedtls/ src/digest.c
# layer 1 modules never include each other's headers (only model/util/log/fsutil/spawn)
for m in config repo plan install bus heartbeat state journal http trust events sandbox; do
	[ -f src/$m.c ] || continue
	for o in config repo plan install bus heartbeat state journal http trust events sandbox engine; do
		[ "$o" = "$m" ] && continue
		case "$m:$o" in plan:config|install:config|bus:config|heartbeat:config|state:journal|trust:config) continue;; esac
		if grep -q "#include \"$o.h\"" src/$m.c; then
			echo "lint: src/$m.c includes $o.h (layer-1 modules talk through engine)" >&2; fail=1
		fi
	done
done
# The executor sees the world only through its ops struct (apply.h), so its failure paths can
# be tested with fakes: no layer-1 module of effects in apply.c.
for o in config repo plan install bus heartbeat state watch effects engine; do
	if grep -q "#include \"$o.h\"" src/apply.c; then
		echo "lint: src/apply.c includes $o.h (effects go through struct ap_apply_ops)" >&2; fail=1
	fi
done
# Test and bench scripts write only below the harness's own directories ($AP_RUN, $AP_BINDIR,
# $AP_SYS_RUN, $AP_TMP), which every run makes anew: a literal /tmp/ path could be a leftover
# of an earlier run that a test silently depends on. Allowed: the lines that set those
# variables' defaults, mktemp templates, and paths inside the test container (marked so).
tmp_ok='(AP_RUN|AP_SYS_RUN|AP_BINDIR)(:)?=/tmp/|mktemp [^|]*/tmp/[A-Za-z0-9._-]*XXXXXX|# in the container$'
bad=$(ls tests/integration/*.sh tests/system/*.sh bench/*.sh scripts/*.sh .ci/run |
	grep -vx scripts/lint.sh | xargs grep -nE '/tmp/' |
	grep -vE '^[^:]+:[0-9]+:[[:space:]]*#' | grep -vE "$tmp_ok" || true)
if [ -n "$bad" ]; then
	printf '%s\n' "$bad" >&2
	echo "lint: a hard-coded /tmp/ path in a test script (use \$AP_TMP, \$AP_RUN or \$AP_BINDIR)" >&2
	fail=1
fi
[ $fail = 0 ] && echo "lint: ok"
exit $fail
