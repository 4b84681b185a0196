# shellcheck shell=bash
# `autopull plan`: a real commit range planned for three host names without a manager, checked
# against `--dry-run` run as each of those hosts (a UTS namespace with that host name) on the
# real user manager where the units run: the same files, the same units, the same actions.
# The Markdown is rendered by python3-markdown and its summary table parsed back. Failure
# paths first: a bad revision, a bad host name, a symlink in a mapped path, a range that maps
# nothing. Sourced by run.sh after lib.sh (and fixtures.sh).

HOSTS=(web1 web2 db1)
: "${AP_TMP:=$AP_RUN/tmp}"
MD_PY=$AP_TMP/plan-md.py

# The rendered Markdown's tables as JSON: [[row cells...]...] per table, from the HTML that
# python3-markdown (tables extension) makes of it; fails on a parse error.
write_md_py() {
	cat >"$MD_PY" <<-'EOF'
	import json, sys
	from html.parser import HTMLParser
	import markdown
	html = markdown.markdown(open(sys.argv[1], encoding="utf-8").read(), extensions=["tables"])
	class T(HTMLParser):
	    def __init__(self):
	        super().__init__(); self.tables = []; self.cell = None; self.tags = []
	    def handle_starttag(self, tag, attrs):
	        self.tags.append(tag)
	        if tag == "table": self.tables.append([])
	        elif tag == "tr": self.tables[-1].append([])
	        elif tag in ("td", "th"): self.cell = ""
	    def handle_endtag(self, tag):
	        if tag in ("td", "th"): self.tables[-1][-1].append(self.cell); self.cell = None
	    def handle_data(self, d):
	        if self.cell is not None: self.cell += d
	t = T(); t.feed(html); t.close()
	json.dump({"tables": t.tables, "tags": sorted(set(t.tags))}, open(sys.argv[2], "w"))
	EOF
}

# plan NAME ARGS...: autopull plan over the origin checkout, as the test user.
plan() {
	local name=$1; shift
	ap_autopull "$name" --user -c "$AP_CFG" plan --repo "$FX_ORIGIN" "$@"
}

# as_host HOST NAME ARGS...: ap_autopull NAME ARGS with the host name HOST (its own UTS
# namespace), as that host would run it.
as_host() {
	local host=$1; shift
	export -f ap_autopull ap_as_user ap_user_exec
	export AP_UID AP_GID AP_HOME AP_RUNTIME AP_USER AP_BIN AP_CMD_TIMEOUT AP_TMP
	# shellcheck disable=SC2016 # expanded by the inner bash
	unshare --uts bash -c 'hostname "$1" && shift && ap_autopull "$@"' _ "$host" "$@"
}

# without_analyze NAME ARGS...: ap_autopull NAME ARGS on a runner without systemd-analyze (in
# a mount namespace of its own, /dev/null over it: not an executable file).
without_analyze() {
	export -f ap_autopull ap_as_user ap_user_exec
	export AP_UID AP_GID AP_HOME AP_RUNTIME AP_USER AP_BIN AP_CMD_TIMEOUT AP_TMP
	# shellcheck disable=SC2016 # expanded by the inner bash
	unshare -m bash -c 'mount --bind /dev/null "$1" && shift && ap_autopull "$@"' _ \
		"$(command -v systemd-analyze)" "$@"
}

# The configuration: the fixtures' rules, a per-host file (%H) that restarts worker.service,
# and a units directory for the db hosts only.
config() {
	FX_SETTLE='' fx_config "$FX_URL"
	cat >>"$AP_CFG" <<-EOF
	  - src: hosts/%H/app.conf
	    dest: $FX_ETC/app.conf
	    restart: [worker.service]
	  - src: api/
	    dest: $FX_ETC/api/
	    restart: [api.service]
	guard:
	  settle: 0s
	EOF
	sed -i 's|^units: \[systemd/\]|units:\n  - systemd/\n  - {dir: systemd-db/, hosts: ["db*"]}|' "$AP_CFG"
}

db_service() {
	printf '[Unit]\nDescription=db %s\nStartLimitIntervalSec=0\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=default.target\n' \
		"$1" | fx_write systemd-db/db.service
}

# api.service: its own X-AutoPull-OnChange=reload turns the restart its rule asks for into a
# reload, on the host as in the plan.
api_service() {
	printf '[Unit]\nDescription=api\nX-AutoPull-OnChange=reload\n\n[Service]\nExecStart=/bin/sleep infinity\nExecReload=/bin/true\n\n[Install]\nWantedBy=default.target\n' |
		fx_write systemd/api.service
}

# v1 applied as db1 (every unit, the db one too), all services running. Sets V1.
baseline() {
	fx_reset
	fx_origin file || return 1
	config
	fx_base
	db_service v1
	api_service
	printf 'api v1\n' | fx_write api/api.conf
	printf 'web1 v1\n' | fx_write hosts/web1/app.conf
	printf 'db1 v1\n' | fx_write hosts/db1/app.conf
	V1=$(fx_commit v1) || return 1
	as_host db1 base-apply --user -c "$AP_CFG" apply
	ap_expect_rc "$AP_CASE: v1 applied as db1" 0 base-apply || return 1
	fx_unit_state worker.service active && fx_unit_state web.service active &&
		fx_unit_state db.service active && fx_unit_state api.service active
}

t_failures() {
	ap_case "plan: failure paths"
	baseline || return
	fx_snapshot before
	INV=$(ap_unit_prop web.service InvocationID)
	plan badrev --from no-such-rev --commit "$V1" --host web1
	ap_expect_rc "$AP_CASE: a bad revision" 2 badrev
	check "names the revision" grep -q "'no-such-rev' does not name a commit" "$AP_TMP/badrev.err"
	check "prints no plan" not test -s "$AP_TMP/badrev.out"
	plan badhost --from "$V1" --commit "$V1" --host web1 --host 'web|1'
	ap_expect_rc "$AP_CASE: a host name that is not one" 2 badhost
	check "names it" grep -q "'web|1' is not a host name" "$AP_TMP/badhost.err"
	plan twice --from "$V1" --commit "$V1" --host web1 --host web1
	ap_expect_rc "$AP_CASE: a host named twice" 2 twice
	ap_autopull norepo --user -c "$AP_CFG" plan --repo "$AP_HOME/no-such-repo" --from HEAD --commit HEAD
	ap_expect_rc "$AP_CASE: no repository" 2 norepo
	rm -rf "$AP_HOME/roots-repo" && cp -a "$FX_ORIGIN" "$AP_HOME/roots-repo" &&
		chown -R 0:0 "$AP_HOME/roots-repo" && chmod -R a+rX "$AP_HOME/roots-repo"
	ap_autopull foreign --user -c "$AP_CFG" plan --repo "$AP_HOME/roots-repo" --from "$V1" --commit "$V1"
	ap_expect_rc "$AP_CASE: a checkout of another user" 2 foreign
	check "says whose it is and what to do" grep -q "repository '$AP_HOME/roots-repo' is owned by uid 0, not by uid $AP_UID that reads it: run autopull as its owner, or chown it" "$AP_TMP/foreign.err"
	rm -rf "$AP_HOME/roots-repo"

	printf 'notes\n' | fx_write README.md
	V=$(fx_commit readme)
	plan none --from "$V1" --commit "$V" --host web1 --host db1
	ap_expect_rc "$AP_CASE: a range that maps nothing" 0 none
	check "says no host is affected" grep -qx 'No host affected: nothing this range changes is installed on web1, db1.' "$AP_TMP/none.out"

	ln -s /etc/passwd "$FX_ORIGIN/systemd/evil.service"
	V=$(fx_commit symlink)
	plan link --from "$V1" --commit "$V" --host web1 --host db1 --format markdown
	ap_expect_rc "$AP_CASE: a symlink in a mapped path is a refusal" 4 link
	check "each host lists it" test "$(grep -c "^- 'systemd/evil.service' is a symlink" "$AP_TMP/link.out")" = 2
	check "the summary counts it" grep -q '^| db1 | 0 | 0 / 0 / 0 / 0 | 1 |$' "$AP_TMP/link.out"

	rm "$FX_ORIGIN/systemd/evil.service"
	printf '[Unit]\nDescription=bad\n\n[Bogus]\nFoo=1\n\n[Service]\nExecStart=/bin/sleep infinity\n' |
		fx_write systemd/bad.service
	V=$(fx_commit bad-unit)
	plan bad --from "$V1" --commit "$V" --host web1
	ap_expect_rc "$AP_CASE: a unit systemd-analyze verify rejects is a refusal" 4 bad
	check "the refusal names the unit's repository path" grep -q "^- validation of 'systemd/bad.service' failed: .*Bogus" "$AP_TMP/bad.out"
	check "says verify failed" grep -q "^Validation: failed: systemd-analyze verify" "$AP_TMP/bad.out"
	printf '[Unit]\nDescription=elsewhere\n\n[Service]\nExecStart=/usr/bin/no-such-daemon --serve\n' |
		fx_write systemd/elsewhere.service
	rm "$FX_ORIGIN/systemd/bad.service"
	printf 'x\n' | fx_write owned/x.conf
	V=$(fx_commit not-on-the-runner)
	# a rule for the host's own user and validator, neither of which the runner has
	cp "$AP_CFG" "$AP_TMP/cfg.saved"
	sed -i "s|^guard:|  - src: owned/\n    dest: $FX_ETC/owned/\n    owner: no-such-user-here\n    validate: [no-such-checker, '%s']\nguard:|" "$AP_CFG"
	plan elsewhere --from "$V1" --commit "$V" --host web1
	ap_expect_rc "$AP_CASE: a program, user or validator the runner lacks is not a refusal (the host has them)" 0 elsewhere
	check "says the program was not checked here" grep -q "^Validation: passed: systemd-analyze verify (1 program(s) the units run are not installed here" "$AP_TMP/elsewhere.out"
	check "says validate: runs on the host" grep -q "validate: commands run on each host only" "$AP_TMP/elsewhere.out"
	cp "$AP_TMP/cfg.saved" "$AP_CFG"
	# a secret: the runner has no identity (nor may it), and plan never decrypts
	age-keygen -o "$AP_TMP/plan-age.key" 2>/dev/null
	printf 'password=hunter2\n' | age -r "$(age-keygen -y "$AP_TMP/plan-age.key")" |
		fx_write secret/db.env
	V=$(fx_commit secret)
	sed -i "s|^guard:|  - src: secret/db.env\n    dest: $FX_ETC/db.env\n    decrypt: age\n    restart: [worker.service]\nsecrets:\n  identity: $AP_HOME/no-such-age.key\nguard:|" "$AP_CFG"
	plan secret --from "$V1" --commit "$V" --host web1 --format json
	ap_expect_rc "$AP_CASE: a secret planned without the host's identity" 0 secret
	ap_jq "$AP_CASE: the secret's file is in the plan, marked secret" "$AP_TMP/secret.out" \
		"[f for f in d['hosts'][0]['plan']['files'] if f['path'] == 'secret/db.env'][0].get('secret') is True"
	check "no plaintext anywhere" not grep -q hunter2 "$AP_TMP/secret.out" "$AP_TMP/secret.err"
	cp "$AP_TMP/cfg.saved" "$AP_CFG"
	without_analyze noanalyze --user -c "$AP_CFG" plan --repo "$FX_ORIGIN" --from "$V1" --commit "$V" --host web1
	ap_expect_rc "$AP_CASE: without systemd-analyze the range is not refused here" 0 noanalyze
	check "says why the validation was skipped" grep -q "^Validation: skipped: systemd-analyze is not installed here" "$AP_TMP/noanalyze.out"
	fx_snapshot after
	check "the host is unchanged" cmp -s "$AP_TMP/before.snap" "$AP_TMP/after.snap"
	check "no unit was restarted" test "$(ap_unit_prop web.service InvocationID)" = "$INV"
}

t_three_hosts() {
	local v2 h
	ap_case "plan: three hosts against --dry-run as each"
	baseline || return
	INV=$(ap_unit_prop worker.service InvocationID)
	fx_caddyfile v2
	printf 'APP=2\n' | fx_write 'env/we|ird`<b>.env'
	printf 'web1 v2\n' | fx_write hosts/web1/app.conf
	db_service v2
	printf 'api v2\n' | fx_write api/api.conf
	fx_service new.service install
	v2=$(fx_commit v2) || return
	plan md --from "$V1" --commit "$v2" --host web1 --host web2 --host db1
	ap_expect_rc "$AP_CASE: plan --format markdown" 0 md || return
	check "no manager is no warning: plan needs none" not test -s "$AP_TMP/md.err"
	plan js --from "$V1" --commit "$v2" --host web1 --host web2 --host db1 --format json
	ap_expect_rc "$AP_CASE: plan --format json" 0 js || return
	ap_autopull js2 --user --json -c "$AP_CFG" plan --repo "$FX_ORIGIN" --from "$V1" --commit "$v2" --host web1 --host web2 --host db1
	check "--json is --format json" cmp -s "$AP_TMP/js.out" "$AP_TMP/js2.out"
	ap_autopull js3 --user --json -c "$AP_CFG" plan --repo "$FX_ORIGIN" --from "$V1" --commit "$v2" --format markdown
	ap_expect_rc "$AP_CASE: --json with --format markdown" 2 js3
	cp "$AP_TMP/md.out" "$AP_TMP/plan.md"
	for h in "${HOSTS[@]}"; do
		as_host "$h" "dry-$h" --user -c "$AP_CFG" --dry-run --json --from "$V1" --commit "$v2"
		ap_expect_rc "$AP_CASE: --dry-run as $h" 0 "dry-$h" || return
		# the units as the host sees them, the actions as the plan says, files and their dests
		ap_jq "$AP_CASE: $h: the same files and destinations as its dry run" "$AP_TMP/js.out" \
			"{f['path']: f['dest'] for f in [x for x in d['hosts'] if x['host'] == '$h'][0]['plan']['files']} == {f['path']: f['dest'] for f in json.load(open('$AP_TMP/dry-$h.out'))['files']}"
		ap_jq "$AP_CASE: $h: the same units and actions as its dry run" "$AP_TMP/js.out" \
			"{u['unit']: u['action'] for u in [x for x in d['hosts'] if x['host'] == '$h'][0]['plan']['units']} == {u['unit']: u['action'] for u in json.load(open('$AP_TMP/dry-$h.out'))['units']}"
		ap_jq "$AP_CASE: $h: its dry run saw the restarted units running" "$AP_TMP/dry-$h.out" \
			"all(u['state'] == 'active' for u in d['units'] if u['action'] in ('restart', 'reload'))"
	done
	ap_jq "$AP_CASE: web1 restarts worker for its own app.conf" "$AP_TMP/js.out" \
		"'hosts/web1/app.conf' in [u for u in d['hosts'][0]['plan']['units'] if u['unit'] == 'worker.service'][0]['reasons']"
	ap_jq "$AP_CASE: only db1 restarts db.service" "$AP_TMP/js.out" \
		"[any(u['unit'] == 'db.service' for u in x['plan']['units']) for x in d['hosts']] == [False, False, True]"
	ap_jq "$AP_CASE: the unit's own X-AutoPull-OnChange=reload wins over its rule's restart" "$AP_TMP/js.out" \
		"all([u['action'] for u in x['plan']['units'] if u['unit'] == 'api.service'] == ['reload'] for x in d['hosts'])"
	ap_jq "$AP_CASE: restarts are conditional (no manager)" "$AP_TMP/js.out" \
		"all(u['if_active'] for x in d['hosts'] for u in x['plan']['units'] if u['action'] in ('restart', 'reload'))"
	check "no unit was restarted by plan or dry run" test "$(ap_unit_prop worker.service InvocationID)" = "$INV"

	write_md_py
	/usr/bin/python3 "$MD_PY" "$AP_TMP/plan.md" "$AP_TMP/plan.tables" 2>"$AP_TMP/md.err"
	check "python3-markdown renders the plan" test $? = 0 -a ! -s "$AP_TMP/md.err"
	ap_jq "$AP_CASE: the rendered HTML has only table and text tags" "$AP_TMP/plan.tables" \
		"set(d['tags']) <= {'h3', 'h4', 'p', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'ul', 'li'}"
	ap_jq "$AP_CASE: the summary table parses back: one row per host" "$AP_TMP/plan.tables" \
		"[r[0] for r in d['tables'][0][1:]] == ['web1', 'web2', 'db1'] and all(len(r) == 4 for r in d['tables'][0])"
	for h in "${HOSTS[@]}"; do
		ap_jq "$AP_CASE: $h: its summary row counts its dry run's files and actions" "$AP_TMP/plan.tables" \
			"(lambda p, r: r[1] == str(len(p['files'])) and r[2] == ' / '.join(str(n) for n in [sum(u['action'] in a for u in p['units']) for a in (('restart',), ('reload',), ('start', 'enable-start'), ('stop', 'disable-stop'))]) and r[3] == '0')(json.load(open('$AP_TMP/dry-$h.out')), [r for r in d['tables'][0] if r[0] == '$h'][0])"
	done
	ap_jq "$AP_CASE: the hostile file name is one cell, as it is" "$AP_TMP/plan.tables" \
		"any(r[2] == 'env/we|ird\`<b>.env' for t in d['tables'][1:] for r in t) and all(len(r) == len(t[0]) for t in d['tables'] for r in t)"
}

# -------------------------------------------------------------------------------------------
if [ ! -x "$AP_BIN" ]; then
	ap_fail "no autopull binary at $AP_BIN"
	exit 1
fi
t_failures
t_three_hosts
fx_reset
