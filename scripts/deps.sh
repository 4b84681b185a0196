#!/bin/sh
# Checks the build and test dependencies. As root on Debian it installs what is missing;
# otherwise it prints exactly which packages are missing and fails. clang and
# libclang-rt-14-dev (libFuzzer's runtime for clang 14) build the fuzz targets.
set -eu
pkgs="build-essential pkg-config libgit2-dev libsystemd-dev libyaml-dev libcmocka-dev git
systemd util-linux python3 python3-prometheus-client valgrind clang libclang-rt-14-dev"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null; then
	echo "deps: installing:$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends $missing >/dev/null || {
		apt-get update >/dev/null && apt-get install -y --no-install-recommends $missing >/dev/null; }
	exit 0
fi
echo "deps: missing Debian packages:$missing" >&2
echo "deps: run as root: apt-get install -y$missing" >&2
exit 1
