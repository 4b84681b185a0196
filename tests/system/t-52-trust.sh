# shellcheck shell=bash
# A retired signing key, held by a real non-root user who can push, against the system agent:
# mallory (in group deploy, which may push to the origin) signed commits until her
# allowed_signers entry got valid-before="20200101". She back-dates a commit to 2019, signs
# it with her key and pushes it: the agent, run as the operator runs it and as the shipped
# service, refuses it (exit 4) and records it (event, counter); a commit she dates past the
# year 9999 is the same refusal, not a configuration error. Every refusal leaves web.service
# (InvocationID, unit bytes) as it was. Sourced by run.sh after lib.sh.

ORIGIN=/srv/infra.git
OPS=/root/infra             # the operator's work tree
MAL=/home/mallory/infra     # mallory's
SIGNERS=/etc/autopull/allowed_signers
SVC=infrastructure-auto-pull.service

# as_mallory CMD...: CMD inside the container as mallory, with her own HOME.
as_mallory() {
	timeout -k 5 "$AP_CMD_TIMEOUT" nsenter -t "$SYS_LEADER" -a \
		setpriv --reuid=mallory --regid=mallory --init-groups \
		env -i PATH="$SYS_PATH" HOME=/home/mallory LANG=C.UTF-8 "$@"
}

# ops_git ARGS...: git as the operator (root) in $OPS, signing with alice's key.
ops_git() {
	sys_sh git -C "$OPS" -c user.name=ops -c user.email=ops@example.invalid -c gpg.format=ssh \
		-c user.signingkey=/root/alice -c commit.gpgsign=true "$@"
}

# mal_commit DATE MSG [BASE]: mallory edits web.service, commits with committer date DATE
# signed with her retired key and pushes (on top of BASE, forced, when given); prints the sha.
mal_commit() {
	as_mallory sh -ec '
		cd '"$MAL"'
		git fetch -q origin
		git reset -q --hard "${3:-origin/main}"
		printf "[Unit]\nDescription=web by mallory (%s)\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=multi-user.target\n" "$2" >systemd/web.service
		git add -A
		GIT_COMMITTER_DATE="$1" git -c user.name=mallory -c user.email=mallory@example.invalid \
			-c gpg.format=ssh -c user.signingkey=/home/mallory/.ssh/id_ed25519 \
			-c commit.gpgsign=true commit -q -m "$2"
		git push -q -f origin HEAD:main
		git rev-parse HEAD' sh "$1" "$2" "${3:-}"
}

refused_count() {
	sys_sh cat "$SX_STATE/metrics.prom" 2>/dev/null |
		sed -n 's/^autopull_refused_total{reason="untrusted"[^}]*} \([0-9]*\).*/\1/p'
}

setup() {
	ap_case "setup: an origin mallory can push to, her key retired in allowed_signers"
	sx_pristine
	sx_reset
	sys_sh sh -ec '
		getent group deploy >/dev/null || groupadd deploy
		id mallory >/dev/null 2>&1 || useradd -m -s /bin/sh -G deploy mallory
		rm -rf '"$ORIGIN $OPS $MAL"' /root/alice /root/alice.pub /home/mallory/.ssh
		git init -q --bare --shared=group -b main '"$ORIGIN"'
		chgrp -R deploy '"$ORIGIN"'
		git -C '"$ORIGIN"' config receive.denyNonFastForwards false
		ssh-keygen -q -t ed25519 -N "" -C alice -f /root/alice
		install -d -m 0700 -o mallory -g mallory /home/mallory/.ssh
		mkdir -p /etc/autopull
		{ echo "alice@example.org namespaces=\"git\" $(cat /root/alice.pub)"; } >'"$SIGNERS"'
		git init -q -b main '"$OPS"'
		git -C '"$OPS"' remote add origin '"$ORIGIN"'
		mkdir -p '"$OPS"'/systemd' >"$AP_TMP/setup.log" 2>&1 || { ap_fail "setup (see setup.log)"; return 1; }
	# a shared repository she does not own: git wants it named safe
	as_mallory sh -ec 'ssh-keygen -q -t ed25519 -N "" -C mallory -f "$HOME/.ssh/id_ed25519"
		git config --global --add safe.directory '"$ORIGIN"'' ||
		{ ap_fail "mallory's key"; return 1; }
	# she signed until 2020; the entry stays for the history she signed
	sys_sh sh -c "echo \"mallory@example.org namespaces=\\\"git\\\",valid-before=\\\"20200101\\\" \$(cat /home/mallory/.ssh/id_ed25519.pub)\" >>$SIGNERS"
	as_mallory id >"$AP_TMP/mallory.id" 2>&1
	check "mallory is not root and is in deploy" grep -q 'uid=[1-9][0-9]*(mallory).*(deploy)' "$AP_TMP/mallory.id"
	printf '[Unit]\nDescription=web v1\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=multi-user.target\n' |
		sys_write "$OPS/systemd/web.service"
	ops_git add -A && ops_git commit -q -m v1 && ops_git push -q origin main ||
		{ ap_fail "operator's signed v1"; return 1; }
	V1=$(sys_sh git -C "$OPS" rev-parse HEAD)
	as_mallory git clone -q "$ORIGIN" "$MAL" || { ap_fail "mallory clones"; return 1; }
	sx_config "file://$ORIGIN" "trust:
  ssh_allowed_signers: $SIGNERS"
	sys_autopull v1 apply
	ap_expect_rc "$AP_CASE: the operator's signed v1 applies" 0 v1 || return 1
	check "web.service runs v1" [ "$(sys_prop web.service Description)" = "web v1" ]
	INV=$(inv web.service)
	sys_sh cat /etc/systemd/system/web.service >"$AP_TMP/web-v1.unit"
}

# unchanged NAME: web.service was not touched and v1 stays applied.
unchanged() {
	check "$1: web.service not restarted" [ "$(inv web.service)" = "$INV" ]
	check "$1: web.service still v1" [ "$(sys_prop web.service Description)" = "web v1" ]
	check "$1: unit file bytes unchanged" sh -c "cmp -s '$AP_TMP/web-v1.unit' '$SYS_ROOT/etc/systemd/system/web.service'"
	check "$1: applied stays v1" [ "$(applied)" = "$V1" ]
}

t_backdated() {
	local bad n0
	ap_case "mallory back-dates a commit to 2019 with her retired key"
	bad=$(mal_commit "2019-06-01T12:00:00Z" "back-dated") || { ap_fail "mallory's push"; return; }
	check "her commit is on the origin" sys_sh git -C "$ORIGIN" cat-file -e "$bad"
	n0=$(refused_count)
	sys_autopull backdated apply
	ap_expect_rc "$AP_CASE: refused" 4 backdated
	check "names her commit" grep -q "refusing ${bad:0:12}" "$AP_TMP/backdated.err"
	check "says the date is refused" grep -q "bad date: it is dated 20190601" "$AP_TMP/backdated.err"
	unchanged backdated
	check "counted: refused{untrusted} +1" [ "$(refused_count)" = $((${n0:-0} + 1)) ]
	sys_autopull backdated-log --json log
	ap_jq "$AP_CASE: a refused event for her commit" "$AP_TMP/backdated-log.out" \
		"d[-1]['event'] == 'refused' and d[-1]['result'] == 'untrusted' and d[-1]['to'] == '$bad'"
	# an operator who allows any skew still gets the key checked now, not in 2019
	sx_config "file://$ORIGIN" "trust:
  ssh_allowed_signers: $SIGNERS
  max_date_skew: 36500d"
	sys_autopull retired apply
	ap_expect_rc "$AP_CASE: refused with max_date_skew: 36500d" 4 retired
	check "says her key is not valid now" grep -q "key not valid: the SSH key's allowed_signers entry is not valid now" \
		"$AP_TMP/retired.err"
	unchanged retired
	sys_start_unit service "$SVC"
	check "the shipped service refuses it too (exit 4)" [ "$AP_RC" = 4 ]
	check "its journal names her commit" grep -q "refusing ${bad:0:12}" "$AP_TMP/service.err"
	unchanged service
}

t_year_10000() {
	local bad n0
	ap_case "mallory pushes a commit dated past the year 9999"
	# on the applied commit, replacing her back-dated one (the range is then hers alone)
	bad=$(mal_commit "@253402300801 +0000" "far future" "$V1") || { ap_fail "mallory's push"; return; }
	n0=$(refused_count)
	sys_autopull y10k apply
	ap_expect_rc "$AP_CASE: a refusal (4), not a configuration error (2)" 4 y10k
	check "names her commit and the date" grep -q "refusing ${bad:0:12}: .*outside the years 1970..9999" "$AP_TMP/y10k.err"
	check "counted: refused{untrusted} +1" [ "$(refused_count)" = $((${n0:-0} + 1)) ]
	unchanged y10k
}

setup && {
	t_backdated
	t_year_10000
}
sys_sh rm -rf "$ORIGIN" "$OPS" "$MAL"
sx_reset
