#!/bin/sh
# Checks the build and test dependencies. As root on Debian it installs what is missing;
# otherwise it prints exactly which packages are missing and fails. clang and
# libclang-rt-14-dev (libFuzzer's runtime for clang 14) build the fuzz targets.
# etcd-server gives the fleet tests /usr/bin/etcd; they start their own on free ports with a
# temporary data directory, so the packaged service (left stopped here) is never used.
# age (with age-keygen) decrypts the secrets and makes the keys of their tests.
set -eu
pkgs="build-essential pkg-config libgit2-dev libmbedtls-dev libsystemd-dev libyaml-dev
libcmocka-dev git systemd util-linux python3 python3-prometheus-client valgrind
libcurl4-openssl-dev victoria-metrics openssl python3-yaml openssh-client gpgv gnupg
openssh-server iproute2 systemd-container debootstrap clang libclang-rt-14-dev man-db groff-base
lintian debhelper dpkg-dev libjson-c-dev etcd-server etcd-client python3-markdown
strace age"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null; then
	echo "deps: installing:$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	# No package may start a daemon here (victoria-metrics ships an init script that would
	# serve on every interface): the tests start their own on 127.0.0.1. policy-rc.d is
	# Debian's switch for that; one that exists already is left alone.
	policy=/usr/sbin/policy-rc.d
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy"
		trap 'rm -f "$policy"' EXIT
	fi
	apt-get install -y --no-install-recommends $missing >/dev/null || {
		apt-get update >/dev/null && apt-get install -y --no-install-recommends $missing >/dev/null; }
	exit 0
fi
echo "deps: missing Debian packages:$missing" >&2
echo "deps: run as root: apt-get install -y$missing" >&2
exit 1
