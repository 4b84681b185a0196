#!/bin/bash
# What signature checks cost: a repository of N commits (default 1000), each signed with an
# ed25519 SSH key, and one of N commits signed with an ed25519 OpenPGP key, made here with
# keys made here. farm-bench times `autopull --dry-run` as a first run with trust.since at
# the root commit (every commit verified, nothing cached: a dry run writes no cache), the
# same after an apply cached them, a first run that checks the tip alone, and the same
# repository without trust: (the yardstick). Per-commit cost = (range - no trust) / N.
#
#   bash bench/trust-verify.sh [N]        (as any user; needs git, ssh-keygen, gpg, gpgv)
set -euo pipefail
N=${1:-1000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/autopull
W=$(mktemp -d /tmp/trust-bench-XXXXXX)
export GNUPGHOME=$W/gnupg HOME=$W
trap 'gpgconf --homedir "$GNUPGHOME" --kill all 2>/dev/null; rm -rf "$W"' EXIT
mkdir -m 0700 "$GNUPGHOME"
[ -x "$BIN" ] || make -C "$ROOT" autopull >/dev/null

ssh-keygen -q -t ed25519 -N '' -C bench -f "$W/key"
echo "bench@example.org namespaces=\"git\" $(cat "$W/key.pub")" >"$W/allowed_signers"
gpg --batch --quiet --passphrase '' --quick-gen-key 'Bench <bench@example.org>' ed25519 sign 0 2>/dev/null
FPR=$(gpg --with-colons --list-keys bench@example.org | awk -F: '/^fpr/ { print $10; exit }')
gpg --batch --quiet --output "$W/trusted.gpg" --export "$FPR"

# repo KIND: N signed commits, each changing data/f.
repo() {
	local d=$W/$1 i
	git init -q -b main "$d"
	git -C "$d" config user.name bench
	git -C "$d" config user.email bench@example.org
	git -C "$d" config commit.gpgsign true
	if [ "$1" = ssh ]; then
		git -C "$d" config gpg.format ssh
		git -C "$d" config user.signingkey "$W/key"
	else
		git -C "$d" config user.signingkey "$FPR"
	fi
	mkdir -p "$d/data"
	for i in $(seq 1 "$N"); do
		echo "$i" >"$d/data/f"
		git -C "$d" add -A
		git -C "$d" commit -q -m "c$i"
	done
}

# config KIND NAME [TRUST_YAML]
config() {
	cat >"$W/$2.yaml" <<-EOF
	repo: {url: "file://$W/$1", branch: main}
	state_dir: $W/state-$2
	unit_dir: $W/units
	units: []
	files:
	  - {src: data/, dest: $W/dest/}
	${3:-}
	EOF
}

for kind in ssh openpgp; do
	t0=$(date +%s.%N)
	repo "$kind"
	echo "# $kind: $N signed commits made in $(awk "BEGIN { print $(date +%s.%N) - $t0 }") s"
	root=$(git -C "$W/$kind" rev-list --max-parents=0 HEAD)
	if [ "$kind" = ssh ]; then keys="ssh_allowed_signers: $W/allowed_signers"; else keys="openpgp_keyring: $W/trusted.gpg"; fi
	config "$kind" "$kind-plain"
	config "$kind" "$kind-range" "trust: {$keys, since: $root}"
	config "$kind" "$kind-tip" "trust: {$keys}"
	config "$kind" "$kind-cached" "trust: {$keys, since: $root}"
	# fetch once per state dir, so that the runs below time no fetch
	for c in plain range tip; do "$BIN" -q -c "$W/$kind-$c.yaml" --dry-run >/dev/null; done
	"$BIN" -q -c "$W/$kind-cached.yaml" apply >/dev/null
	rm -f "$W/state-$kind-cached/applied" # a first run again, now with every commit cached
	echo "## $kind: range of $N, nothing cached, against no trust:"
	farm-bench -n 5 --warmup 1 --timeout 900 --vs "$BIN -q -c $W/$kind-plain.yaml --dry-run" -- \
		"$BIN" -q -c "$W/$kind-range.yaml" --dry-run
	echo "## $kind: range of $N, all cached, against no trust:"
	farm-bench -n 10 --warmup 1 --vs "$BIN -q -c $W/$kind-plain.yaml --dry-run" -- \
		"$BIN" -q -c "$W/$kind-cached.yaml" --dry-run
	echo "## $kind: the tip alone, against no trust:"
	farm-bench -n 20 --warmup 2 --vs "$BIN -q -c $W/$kind-plain.yaml --dry-run" -- \
		"$BIN" -q -c "$W/$kind-tip.yaml" --dry-run
done
