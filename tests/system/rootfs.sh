#!/bin/bash
# The Debian 12 root file system the system tests boot with systemd-nspawn: built once with
# debootstrap from the mirror apt already uses, cached under $AP_SYS_CACHE
# (/var/cache/autopull-test) as rootfs-<key>, where key hashes this script's VERSION and the
# package list, so that a change to either builds a new one. Prints the cached path.
#
#   bash tests/system/rootfs.sh          build if needed (as root), print the path
#
# The build is atomic: debootstrap into a temporary directory beside the cache entry, then a
# rename, under a lock, so two concurrent runs build it once and a killed build leaves no
# half-made entry. Test runs never write to the cache: they boot an overlay on top of it.
# Does not: install autopull (each run installs its own build into the overlay).
set -euo pipefail

# Bump when the customisation below changes.
VERSION=2
SUITE=bookworm
# PLATFORM's list plus what the suite needs inside: libcurl4 (autopull loads it for
# guard.push), sudo (visudo validates the example config's sudoers rule), ca-certificates (the
# https transport reads /etc/ssl/certs under the sandbox), openssh-server (the ssh transport's
# server, started only by the ssh test), age (the secrets test decrypts with it under the shipped
# sandbox), and the Build-Depends of debian/control with
# build-essential and debhelper: the package test builds the .deb inside, on a machine that has
# none of the test packages (dpkg-checkbuilddeps fails there if this list falls behind).
PACKAGES="systemd systemd-sysv dbus libgit2-1.5 libyaml-0-2 libjson-c5 libsystemd0 libcurl4 git procps
iproute2 sudo ca-certificates openssh-server age
build-essential debhelper pkg-config libgit2-dev libmbedtls-dev libsystemd-dev libyaml-dev
libcurl4-openssl-dev libjson-c-dev"
# Units that would only add noise or time to a test boot.
MASK="apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer
fstrim.timer man-db.timer ssh.service ssh.socket getty@.service console-getty.service"

CACHE=${AP_SYS_CACHE:-/var/cache/autopull-test}
# shellcheck disable=SC2086 # word splitting of the lists is the point
key=$(printf '%s\n' "$VERSION" "$SUITE" $PACKAGES -- $MASK | sha256sum | cut -c1-16)
dest=$CACHE/rootfs-$key

if [ -f "$dest/.autopull-rootfs" ]; then
	touch "$dest/.autopull-rootfs"      # in use: see the pruning below
	echo "$dest"
	exit 0
fi
[ "$(id -u)" = 0 ] || { echo "rootfs.sh: must run as root to build $dest" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "rootfs.sh: debootstrap is missing" >&2; exit 2; }

mirror() {
	local u=""
	[ -r /etc/apt/sources.list.d/debian.sources ] &&
		u=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
	[ -z "$u" ] && [ -r /etc/apt/sources.list ] &&
		u=$(awk '$1 == "deb" && $2 ~ /^http/ { print $2; exit }' /etc/apt/sources.list)
	echo "${u:-http://deb.debian.org/debian}"
}

mkdir -p "$CACHE"
exec 8>"$CACHE/lock"
flock 8
# Another run may have built it while we waited for the lock.
if [ -f "$dest/.autopull-rootfs" ]; then echo "$dest"; exit 0; fi

tmp=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
t0=$(date +%s)
echo "rootfs: building $dest from $(mirror) (once per package list)" >&2
# shellcheck disable=SC2086
if ! debootstrap --variant=minbase --include="$(echo $PACKAGES | tr ' ' ,)" \
	"$SUITE" "$tmp/root" "$(mirror)" >"$tmp/debootstrap.log" 2>&1; then
	tail -n 30 "$tmp/debootstrap.log" >&2
	echo "rootfs: debootstrap failed (log above)" >&2
	exit 1
fi
# shellcheck disable=SC2086
systemctl --root="$tmp/root" mask $MASK >/dev/null 2>&1
rm -rf "$tmp/root/var/cache/apt/archives/"*.deb "$tmp/root/var/lib/apt/lists/"*
# nspawn gives the container a transient machine id when the file is empty.
: >"$tmp/root/etc/machine-id"
# minbase has no /etc/hosts: "localhost" (the https test's certificate name) must resolve.
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$tmp/root/etc/hosts"
printf '%s\n' "version $VERSION" "suite $SUITE" "packages" $PACKAGES "masked" $MASK \
	>"$tmp/root/.autopull-rootfs"
mv -T "$tmp/root" "$dest"
echo "rootfs: built in $(( $(date +%s) - t0 )) s, $(du -sh "$dest" | cut -f1)" >&2

# Entries of other package lists or versions that no run has used for two days.
for old in "$CACHE"/rootfs-*; do
	[ "$old" = "$dest" ] || [ ! -d "$old" ] && continue
	[ -n "$(find "$old/.autopull-rootfs" -newermt '-2 days' 2>/dev/null)" ] || rm -rf "$old"
done
echo "$dest"
