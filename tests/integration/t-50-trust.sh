# shellcheck shell=bash
# Trusting the source, against real fetches: fast-forward only (force-push, rewind, rollback,
# --allow-rewind, repo.allow_rewind), signed history with keys made here (ssh-keygen ed25519
# and gpg: signed, unsigned, unknown key, retired principal, expired key, a merge under
# every-commit and first-parent, the cache, trust.since), and fetch failures that name what
# to fix: a foreign-owned repo, https with a private CA, ssh with hashed known_hosts, auth
# and host-key failures, a missing branch, a black-holed remote. Every refusal is checked to
# leave the host byte-identical.
# Sourced by run.sh after lib.sh (and fixtures.sh).

# shellcheck source=trust-fixtures.sh
. "$AP_DIR/trust-fixtures.sh"
FX_SETTLE=0s

# start NAME [EXTRA_YAML]: fresh slate; web.service committed (signed by alice) and applied.
start() {
	ap_case "$1"
	fx_reset
	fx_origin file || { ap_fail "$1: fixture origin"; return 1; }
	fx_config "$FX_URL" "" "${2:-}"
	fx_service web.service install
	V1=$(tk_commit_as alice v1) || { ap_fail "$1: commit v1"; return 1; }
	fx_apply "${1//[^A-Za-z0-9]/-}-v1"
}

# refused NAME RC PATTERN: `apply` exits RC, says PATTERN, and the host is byte-identical.
refused() {
	fx_snapshot "$1-before"
	ap_autopull "$1" --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: $1 refused" "$2" "$1"
	check "$1: says '$3'" grep -qF -- "$3" "$AP_TMP/$1.err"
	fx_snapshot "$1-after"
	check "$1: host byte-identical" cmp -s "$AP_TMP/$1-before.snap" "$AP_TMP/$1-after.snap"
}

applies() {
	ap_autopull "$1" --user -c "$AP_CFG" "${@:2}" apply
	ap_expect_rc "$AP_CASE: $1 applied" 0 "$1"
}

TRUST_SSH="trust:
  ssh_allowed_signers: $TK/allowed_signers"

# -------------------------------------------------------------------------------------------
t_force_push() {
	local v2 other
	start "force-push to another history is refused until allowed" || return
	fx_service web.service install "web v2"
	v2=$(tk_commit_as alice v2)
	applies ff
	check "fast-forward applied" [ "$(applied)" = "$v2" ]
	check "metric: nothing refused" [ "$(refused_metric rewind)" = 0 ]
	ap_git "$FX_ORIGIN" checkout -q --orphan rewritten
	fx_service web.service install "web rewritten"
	other=$(tk_commit_as alice rewritten)
	ap_git "$FX_ORIGIN" branch -q -M rewritten main
	refused force 4 "history was rewritten"
	check "names the new tip" grep -q "${other:0:12}" "$AP_TMP/force.err"
	check "names the applied commit" grep -q "${v2:0:12}" "$AP_TMP/force.err"
	check "metric: refused (rewind)" [ "$(refused_metric rewind)" = 1 ]
	ap_autopull force-log --user -c "$AP_CFG" --json log
	ap_jq "$AP_CASE: the refusal is in the history with the new tip" "$AP_TMP/force-log.out" \
		"d[-1]['event'] == 'refused' and d[-1]['result'] == 'rewind' and d[-1]['to'] == '$other'"
	ap_autopull force-dry --user -c "$AP_CFG" --dry-run
	ap_expect_rc "$AP_CASE: dry-run refuses too" 4 force-dry
	ap_autopull noreason --user -c "$AP_CFG" --allow-rewind apply
	ap_expect_rc "$AP_CASE: --allow-rewind without --reason" 2 noreason
	applies allowed --allow-rewind --reason "re-rooted the repo"
	check "rewritten tip applied" [ "$(applied)" = "$other" ]
	check "override recorded with the reason" grep -q " rewind $other re-rooted the repo" \
		"$AP_STATE_DIR/overrides"
	check "metric: still one refusal" [ "$(refused_metric rewind)" = 1 ]
	check "new definition running" [ "$(ap_unit_prop web.service Description)" = "web rewritten" ]
}

t_rewind_and_rollback() {
	local v2
	start "a branch moved back is a rewind; --commit back is a rollback" || return
	fx_service web.service install "web v2"
	v2=$(tk_commit_as alice v2)
	applies v2
	ap_git "$FX_ORIGIN" reset -q --hard "$V1"
	refused rewind 4 "does not descend from the applied commit ${v2:0:12}"
	ap_git "$FX_ORIGIN" reset -q --hard "$v2"
	applies rollback --commit "$V1"
	check "rolled back to v1" [ "$(applied)" = "$V1" ]
	check "v1 definition running" [ "$(ap_unit_prop web.service Description)" = "web.service v1" ]
	ap_autopull unpin --user -c "$AP_CFG" unpin
	applies forward
	check "forward again (after unpin)" [ "$(applied)" = "$v2" ]
}

t_allow_rewind_config() {
	local other
	start "repo.allow_rewind: true accepts a rewritten history" || return
	sed -i 's|^  branch: main$|  branch: main\n  allow_rewind: true|' "$AP_CFG"
	ap_git "$FX_ORIGIN" commit -q --amend -m "v1 amended"
	other=$(ap_repo_head "$FX_ORIGIN")
	applies amended
	check "amended tip applied" [ "$(applied)" = "$other" ]
	check "warned about it" grep -q "history was rewritten" "$AP_TMP/amended.err"
}

t_signed_ssh() {
	local v2 bad v4 n
	start "signed history (ssh): every commit since the applied one" "$TRUST_SSH" || return
	check "first run verified the tip and cached it" grep -q "^$V1$" "$AP_STATE_DIR/verified"
	fx_service web.service install "web v2"
	v2=$(tk_commit_as alice v2)
	fx_service web.service install "web v3"
	bad=$(tk_commit_as - "v3 unsigned")
	fx_service web.service install "web v4"
	v4=$(tk_commit_as alice "v4 signed on top")
	refused unsigned 4 "${bad:0:12} aptest fixture <aptest@example.invalid>"
	check "says why: unsigned" grep -q "unsigned: the commit carries no signature" "$AP_TMP/unsigned.err"
	check "metric: refused (untrusted)" [ "$(refused_metric untrusted)" = 1 ]
	check "v2 (good, before the bad one) is remembered" grep -q "^$v2$" "$AP_STATE_DIR/verified"
	ap_autopull dry --user -c "$AP_CFG" --dry-run
	ap_expect_rc "$AP_CASE: dry-run refuses" 4 dry
	check "dry-run: verdict for v2" grep -q "source: ${v2:0:12} .*good (verified before)" "$AP_TMP/dry.out"
	check "dry-run: verdict for the unsigned one" grep -q "source: ${bad:0:12} .*unsigned" "$AP_TMP/dry.out"
	check "dry-run: verdict for v4 too" grep -q "source: ${v4:0:12} .*good: SSH signature by alice@example.org" \
		"$AP_TMP/dry.out"
	ap_git "$FX_ORIGIN" reset -q --hard "$v2"
	fx_service web.service install "web v3 by mallory"
	tk_commit_as mallory "mallory" >/dev/null
	refused unknown 4 "unknown key: the SSH key is not in allowed_signers"
	ap_git "$FX_ORIGIN" reset -q --hard "$v2"
	fx_service web.service install "web v3 by retired"
	tk_commit_as retired "retired" >/dev/null
	refused retired 4 "key not valid: the SSH key's allowed_signers entry is not valid now"
	ap_git "$FX_ORIGIN" reset -q --hard "$v2"
	applies good
	check "v2 applied" [ "$(applied)" = "$v2" ]
	n=$(wc -l <"$AP_STATE_DIR/verified")
	applies noop
	check "a no-op tick verifies nothing and writes no cache" [ "$(wc -l <"$AP_STATE_DIR/verified")" = "$n" ]
}

t_merge_modes() {
	local side merge
	start "a signed merge of an unsigned branch: every-commit refuses, first-parent accepts" "$TRUST_SSH" || return
	ap_git "$FX_ORIGIN" checkout -q -b side
	fx_service worker.service install
	side=$(tk_commit_as - "unsigned side work")
	ap_git "$FX_ORIGIN" checkout -q main
	fx_service web.service install "web v2"
	tk_commit_as alice "main work" >/dev/null
	merge=$(tk_as_user git -C "$FX_ORIGIN" -c gpg.format=ssh -c "user.signingkey=$TK/alice" merge -q -S \
		--no-ff -m "merge side" side && ap_repo_head "$FX_ORIGIN")
	refused every 4 "${side:0:12}"
	fx_config "$FX_URL" "" "$TRUST_SSH
  require: first-parent"
	applies firstparent
	check "merge applied" [ "$(applied)" = "$merge" ]
	check "the merged unit is installed" [ -f "$AP_UNIT_DIR/worker.service" ]
	fx_service web.service install "web v3"
	tk_commit_as - "unsigned on main" >/dev/null
	refused fp-unsigned 4 "unsigned"
	fx_config "$FX_URL" "" "$TRUST_SSH
  require: tip"
	fx_service web.service install "web v4"
	tk_commit_as alice "signed tip" >/dev/null
	applies tip
}

t_openpgp() {
	local good
	start "signed history (OpenPGP): good, expired key, armored keyring" || return
	fx_config "$FX_URL" "" "trust:
  openpgp_keyring: $TK/trusted.gpg"
	fx_service web.service install "web v2"
	good=$(tk_commit_as bob "bob signs")
	applies gpg
	check "bob's commit applied" [ "$(applied)" = "$good" ]
	fx_service web.service install "web v3"
	tk_commit_as carol "carol signs with a key that has expired since" >/dev/null
	refused expired 4 "key not valid: OpenPGP key expired"
	ap_git "$FX_ORIGIN" reset -q --hard "$good"
	fx_service web.service install "web v4"
	tk_commit_as alice "an ssh signature" >/dev/null
	refused no-ssh-keys 4 "trust.ssh_allowed_signers is not set"
	fx_config "$FX_URL" "" "trust:
  openpgp_keyring: $TK/trusted.asc"
	refused armored 2 "is ASCII-armored"
}

t_since() {
	local base v2 v3
	ap_case "trust.since: the first run verifies the range after it"
	fx_reset
	fx_origin file || return
	fx_service web.service install
	base=$(tk_commit_as - "old unsigned history")
	fx_service web.service install "web v2"
	v2=$(tk_commit_as - "unsigned, after since")
	fx_service web.service install "web v3"
	v3=$(tk_commit_as alice "signed tip")
	fx_config "$FX_URL" "" "$TRUST_SSH
  since: $base"
	refused since 4 "${v2:0:12}"
	fx_config "$FX_URL" "" "$TRUST_SSH
  since: $v2"
	applies since-ok
	check "tip applied" [ "$(applied)" = "$v3" ]
	fx_config "$FX_URL" "" "$TRUST_SSH
  since: 0123456789abcdef0123456789abcdef01234567"
	rm -f "$AP_STATE_DIR/applied"
	refused since-missing 2 "trust.since"
}

# -------------------------------------------------------------------------------------------
t_foreign_owner() {
	start "a local repository of another user: our message, exit 2" || return
	chown -R root:root "$FX_ORIGIN"
	refused foreign 2 "is owned by uid 0; autopull runs as uid $AP_UID; chown it or set repo.trust_owner: true"
	check "not libgit2's message" not grep -q "safe.directory" "$AP_TMP/foreign.err"
	sed -i 's|^  branch: main$|  branch: main\n  trust_owner: true|' "$AP_CFG"
	applies trusted
}

t_fetch_errors() {
	start "fetch failures: missing branch, no repository, a missing path, black hole" || return
	sed -i 's|^  branch: main$|  branch: nope|' "$AP_CFG"
	refused nobranch 5 "has no branch 'nope'; check repo.branch"
	ap_as_user mkdir -p "$AP_HOME/not-a-repo"
	fx_config "file://$AP_HOME/not-a-repo"
	refused norepo 5 "no repository there"
	fx_config "file://$AP_HOME/not-there"
	refused notthere 75 "is not there"
	ap_as_user mkdir -p "$AP_HOME/srv/empty"
	fx_config "$AP_HTTP_URL/empty/nothing.git"
	refused http404 5 "no repository there"
	tk_blackhole_start || { ap_fail "$AP_CASE: black hole"; return; }
	fx_config "http://127.0.0.1:$TK_HOLE_PORT/x.git"
	sed -i 's|^  branch: main$|  branch: main\n  connect_timeout: 1s|' "$AP_CFG"
	refused blackhole 75 "timed out after 1.0 s (repo.connect_timeout)"
	tk_blackhole_stop
}

t_https() {
	local url
	start "https with a private CA" || return
	ap_repo_publish "$FX_ORIGIN" "$FX_BARE" || { ap_fail "$AP_CASE: publish"; return; }
	tk_https_start "$AP_HOME/srv" || { ap_fail "$AP_CASE: https server"; return; }
	url=https://localhost:$TK_HTTPS_PORT/origin.git
	fx_config "$url"
	refused noca 5 "the TLS certificate does not verify"
	check "names what to fix" grep -q "repo.ca_file" "$AP_TMP/noca.err"
	sed -i "s|^  branch: main\$|  branch: main\n  ca_file: $TK/tls/ca.crt|" "$AP_CFG"
	fx_service web.service install "web over https"
	tk_commit_as alice v2 >/dev/null
	ap_git "$FX_ORIGIN" push -q pub main
	applies https
	check "applied over https" [ "$(ap_unit_prop web.service Description)" = "web over https" ]
	ap_http_stop https
}

t_ssh() {
	local url kh=$TK/known_hosts
	start "ssh with a hashed known_hosts, a key that others can read, a wrong host key" || return
	ap_repo_publish "$FX_ORIGIN" "$FX_BARE" || { ap_fail "$AP_CASE: publish"; return; }
	tk_sshd_start || { ap_fail "$AP_CASE: sshd"; return; }
	tk_known_hosts "$kh" hashed
	check "known_hosts is hashed" grep -q '^|1|' "$kh"
	url="ssh://$AP_USER@127.0.0.1:$TK_SSH_PORT$FX_BARE"
	fx_config "$url"
	sed -i "s|^  branch: main\$|  branch: main\n  ssh_key: $TK/client\n  known_hosts: $kh|" "$AP_CFG"
	fx_service web.service install "web over ssh"
	tk_commit_as alice v2 >/dev/null
	ap_git "$FX_ORIGIN" push -q pub main
	applies ssh
	check "applied over ssh" [ "$(ap_unit_prop web.service Description)" = "web over ssh" ]
	chmod 0644 "$TK/client"
	refused loosekey 2 "chmod 600"
	chmod 0600 "$TK/client"
	echo "[127.0.0.1]:$TK_SSH_PORT $(cut -d' ' -f1,2 "$TK/alice.pub")" >"$kh"
	refused hostkey 5 "the ssh host key does not verify"
	tk_known_hosts "$kh" hashed
	sed -i "s|ssh_key: $TK/client|ssh_key: $TK/mallory|" "$AP_CFG"
	refused auth 5 "authentication failed"
	tk_sshd_stop
}

# vg NAME WANT_RC ARGS...: autopull under valgrind memcheck (the verifier spawns, the cache,
# the commit walk, the socket stream); the exit code as expected and no report.
vg() {
	local name=$1 want=$2 log=$AP_TMP/$1.vg; shift 2
	install -d -m 1777 "$AP_TMP" # sticky, as /tmp: a 0777 one would make every file in it untrusted
	ap_as_user timeout -k 5 300 valgrind -q --error-exitcode=99 --leak-check=full \
		--show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
		--log-file="$log" "$AP_BIN" --user -c "$AP_CFG" "$@" \
		>"$AP_TMP/$name.out" 2>"$AP_TMP/$name.err" </dev/null
	echo $? >"$AP_TMP/$name.rc"
	ap_expect_rc "$AP_CASE: valgrind $*" "$want" "$name"
	if grep -q '^==' "$log" 2>/dev/null; then
		ap_fail "$AP_CASE: valgrind report for '$*'"
		head -30 "$log"
	fi
}

t_memcheck() {
	local v2
	start "valgrind: signed range, cache, refusals, black hole" "$TRUST_SSH" || return
	fx_service web.service install "web v2"
	v2=$(tk_commit_as alice v2)
	tk_commit_as - unsigned >/dev/null
	vg vg-refused 4 apply
	ap_git "$FX_ORIGIN" reset -q --hard "$v2"
	vg vg-dry 0 --dry-run --json
	vg vg-apply 0 apply
	ap_git "$FX_ORIGIN" reset -q --hard "$V1"
	vg vg-rewind 4 apply
	tk_blackhole_start || { ap_fail "$AP_CASE: black hole"; return; }
	fx_config "http://127.0.0.1:$TK_HOLE_PORT/x.git"
	sed -i 's|^  branch: main$|  branch: main\n  connect_timeout: 1s|' "$AP_CFG"
	vg vg-hole 75 apply
	tk_blackhole_stop
}

# -------------------------------------------------------------------------------------------
if [ ! -x "$AP_BIN" ]; then
	ap_fail "no autopull binary at $AP_BIN"
	exit 1
fi
ap_case "fixture keys"
tk_keys || ap_die "cannot make the fixture keys"
tk_tls || ap_die "cannot make the fixture CA"
t_force_push
t_rewind_and_rollback
t_allow_rewind_config
t_signed_ssh
t_merge_modes
t_openpgp
t_since
t_foreign_owner
t_fetch_errors
t_https
t_ssh
t_memcheck
tk_stop_agent
fx_reset
