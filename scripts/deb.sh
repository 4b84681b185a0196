#!/bin/sh
# Builds the Debian package (debian/) with `dpkg-buildpackage -us -uc -b` in a temporary copy
# of the tree, so that no build output lands in the source tree, and the source package with
# `dpkg-source -b`; copies the .deb, .buildinfo, .changes, .dsc and tarball to OUTDIR, prints
# the package's size and runs lintian on both when lintian is installed (AP_LINTIAN=0 skips
# it; lintian's exit status is the script's).
#
#   sh scripts/deb.sh OUTDIR        from the top of a checkout, or of a copy without .git
#
# The files copied are git's (tracked and untracked, not ignored) in a checkout, else every
# file but build output. Does not: install build dependencies (dpkg-buildpackage names the
# missing ones; on Debian: apt-get build-dep ./ or the Build-Depends of debian/control).
set -eu
out=${1:?usage: scripts/deb.sh OUTDIR}
top=$(pwd)
[ -f debian/control ] || { echo "deb.sh: run from the top of the source tree" >&2; exit 2; }
command -v dpkg-buildpackage >/dev/null ||
	{ echo "deb.sh: dpkg-buildpackage is missing (Debian: apt-get install dpkg-dev debhelper)" >&2; exit 2; }
version=$(dpkg-parsechangelog -S Version)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/autopull-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
src=$tmp/autopull-$version
mkdir "$src"
if [ -d .git ] || [ -f .git ]; then
	# A file deleted but not yet committed is listed and missing: skipped.
	git ls-files -z --cached --others --exclude-standard |
		tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C "$src" -xf -
else
	tar --exclude=./build --exclude=./autopull --exclude=./.git -cf - . | tar -C "$src" -xf -
fi
# The binary package, then the source package from a fresh copy (the build left its files
# in $src), so that lintian sees both.
cp -a "$src" "$tmp/clean"
(cd "$src" && dpkg-buildpackage -us -uc -b && cd "$tmp" && rm -rf "$src" &&
	mv "$tmp/clean" "$src" && dpkg-source -b "autopull-$version") >"$tmp/build.log" 2>&1 || {
	tail -n 40 "$tmp/build.log" >&2
	echo "deb.sh: dpkg-buildpackage failed (log above)" >&2
	exit 1
}
mkdir -p "$out"
cp "$tmp"/*.deb "$tmp"/*.buildinfo "$tmp"/*.changes "$tmp"/*.dsc "$tmp"/*.tar.* "$out/"
cp "$tmp/build.log" "$out/build.log"
cd "$out"
for d in *.deb; do
	echo "deb.sh: $out/$d: $(stat -c %s "$d") bytes, Installed-Size $(dpkg-deb -f "$d" Installed-Size) KiB"
done
if [ "${AP_LINTIAN:-1}" = 1 ] && command -v lintian >/dev/null; then
	# As the archive would see it: every tag shown, errors and warnings fail.
	root=""
	[ "$(id -u)" = 0 ] && root=--allow-root
	lintian $root --display-info --fail-on error,warning ./*.changes ./*.dsc
	echo "deb.sh: lintian: no errors or warnings"
fi
cd "$top"
