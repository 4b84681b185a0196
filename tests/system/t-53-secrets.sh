# shellcheck shell=bash
# Secrets against PID 1, with the agent run as the shipped hardened service
# (infrastructure-auto-pull.service, its generated sandbox): Debian's age decrypts an env file
# of a decrypt: age rule with the host's identity /etc/autopull/age.key (0600 root); the file
# lands 0600 at its destination and the unit that reads it restarts and sees the new value; a
# re-encryption for an added recipient installs and restarts nothing; the plaintext is nowhere
# but at its destination (journal, the output of every verb, the metrics, the state directory
# but for the previous version's 0600 backup); without the identity status and log still work
# and the service exits 2 with the fix.
# The host side only encrypts (age, scripts/deps.sh). Sourced by run.sh after lib.sh.

SE_KEY=/etc/autopull/age.key
SE_DIR=/etc/aptest/secret
SE_ENV=$SE_DIR/env
SE_TOK=systok$RANDOM$RANDOM       # every plaintext holds it; grep looks for it

# service NAME: start the shipped apply service; NAME.rc = its exit status, NAME.err = its log.
service() { sys_start_unit "$1" infrastructure-auto-pull.service; }

se_config() {
	sx_config "" "  - src: secret/env.age
    dest: $SE_ENV
    decrypt: age
    restart: [secapp.service]
guard:
  settle: 1s"
}

se_unit() {
	printf '[Unit]\nDescription=secapp\n\n[Service]\nEnvironmentFile=%s\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=multi-user.target\n' \
		"$SE_ENV" | sx_write systemd/secapp.service
}

# enc VALUE RECIPIENT...: the repository's secret, TOKEN=VALUE, armored, for RECIPIENTs.
enc() {
	local value=$1 args=() r
	shift
	for r in "$@"; do args+=(-r "$r"); done
	mkdir -p "$SX_WORK/secret"
	printf 'TOKEN=%s\n' "$value" | age -a "${args[@]}" -o "$SX_WORK/secret/env.age"
}

# token: TOKEN in the environment of secapp.service's main process.
token() {
	local pid
	pid=$(sys_prop secapp.service MainPID)
	sys_sh sh -c "tr '\\0' '\\n' </proc/$pid/environ" 2>/dev/null | sed -n 's/^TOKEN=//p'
}

envstat() { sys_sh stat -c '%a %U %i %Y' "$SE_ENV" 2>/dev/null; }

ap_case "secrets: the shipped service decrypts with the host's identity"
sx_pristine
sx_reset
sys_sh rm -f "$SE_KEY"
sys_sh mkdir -p "$SE_DIR"     # the generator makes ReadWritePaths= of what exists
sys_sh sh -c "umask 077 && age-keygen -o $SE_KEY 2>/dev/null"
HOST_R=$(sys_sh age-keygen -y "$SE_KEY")
rm -f "$AP_TMP/other.key"
age-keygen -o "$AP_TMP/other.key" 2>/dev/null
OTHER_R=$(age-keygen -y "$AP_TMP/other.key")
check "the identity is 0600 root" [ "$(sys_sh stat -c '%a %U' "$SE_KEY")" = "600 root" ]
check "the host's recipient" [ -n "$HOST_R" ]
check "another host's recipient" [ -n "$OTHER_R" ]
sx_origin
se_config
se_unit
enc "$SE_TOK-v1" "$HOST_R" || ap_fail "$AP_CASE: age -e"
V1=$(sx_commit v1)
check "check-config is content with the identity" quiet sys_sh autopull check-config
service se-v1
ap_expect_rc "$AP_CASE: the service" 0 se-v1
check "v1 recorded" [ "$(applied)" = "$V1" ]
check "the env file is 0600 root at its destination" [ "$(envstat | cut -d' ' -f1-2)" = "600 root" ]
check "secapp.service is active" [ "$(sys_prop secapp.service ActiveState)" = active ]
check "secapp.service sees v1" [ "$(token)" = "$SE_TOK-v1" ]

ap_case "secrets: a changed secret restarts the unit that reads it, which sees the new value"
before=$(inv secapp.service)
enc "$SE_TOK-v2" "$HOST_R"
V2=$(sx_commit v2)
service se-v2
ap_expect_rc "$AP_CASE: the service" 0 se-v2
check "v2 recorded" [ "$(applied)" = "$V2" ]
check "secapp.service restarted" not [ "$(inv secapp.service)" = "$before" ]
check "secapp.service sees v2" [ "$(token)" = "$SE_TOK-v2" ]
check "still 0600 root" [ "$(envstat | cut -d' ' -f1-2)" = "600 root" ]

ap_case "secrets: re-encrypted for an added recipient: nothing installed, nothing restarted"
before=$(inv secapp.service)
st=$(envstat)
enc "$SE_TOK-v2" "$HOST_R" "$OTHER_R"
V3=$(sx_commit "v2 for another host too")
service se-v3
ap_expect_rc "$AP_CASE: the service" 0 se-v3
check "v3 recorded" [ "$(applied)" = "$V3" ]
check "secapp.service not restarted (InvocationID unchanged)" [ "$(inv secapp.service)" = "$before" ]
check "the env file not replaced (inode, mtime)" [ "$(envstat)" = "$st" ]
check "the other host's identity reads the repository's file" \
	[ "$(age -d -i "$AP_TMP/other.key" "$SX_WORK/secret/env.age")" = "TOKEN=$SE_TOK-v2" ]

ap_case "secrets: the plaintext is nowhere but at its destination"
sys_autopull se-status status
sys_autopull se-status-json status --json
sys_autopull se-log log
sys_autopull se-diff diff
sys_autopull se-dry --dry-run apply
ap_expect_rc "$AP_CASE: status" 0 se-status
ap_expect_rc "$AP_CASE: diff (no drift)" 0 se-diff
sys_sh journalctl -q -o verbose >"$AP_TMP/se-journal.txt" 2>&1
metrics=$(sys_sh find "$SX_STATE" -name '*.prom' | head -n 1)
check "a metrics file was written" [ -n "$metrics" ]
check "the journal was read" [ -s "$AP_TMP/se-journal.txt" ]
check "the destination holds it" grep -q "$SE_TOK" "$SYS_ROOT$SE_ENV"
check "the current plaintext is not in the state directory" \
	not grep -rq "$SE_TOK-v2" "$SYS_ROOT$SX_STATE"
# The backup of the previous version (for a rollback) holds v1, as the README says: only there.
grep -rl "$SE_TOK" "$SYS_ROOT$SX_STATE" >"$AP_TMP/se-backups.list"
bad=0
while IFS= read -r f; do
	[ "$(stat -c %a "$f")" = 600 ] && [ "$(stat -c %a "$(dirname "$f")")" = 700 ] || bad=1
	case $f in "$SYS_ROOT$SX_STATE"/backup*) ;; *) bad=1 ;; esac
done <"$AP_TMP/se-backups.list"
check "older plaintext only in 0600 backups in 0700 directories" [ "$bad" = 0 ]
check "no decryption staging left" [ -z "$(ls -A "$SYS_ROOT$SX_STATE/secrets" 2>/dev/null)" ]
check "not in the journal" not grep -q "$SE_TOK" "$AP_TMP/se-journal.txt"
for n in se-v1 se-v2 se-v3 se-status se-status-json se-log se-diff se-dry; do
	check "not in the output of $n" not grep -q "$SE_TOK" "$AP_TMP/$n.out" "$AP_TMP/$n.err"
done

ap_case "secrets: without the identity status and log work, the service exits 2 with the fix"
sys_sh rm -f "$SE_KEY"
sys_autopull se-nokey-status status
ap_expect_rc "$AP_CASE: status" 0 se-nokey-status
sys_autopull se-nokey-log log
ap_expect_rc "$AP_CASE: log" 0 se-nokey-log
service se-nokey
ap_expect_rc "$AP_CASE: the service" 2 se-nokey
check "the service's log gives the fix" grep -q "age-keygen -o '$SE_KEY'" "$AP_TMP/se-nokey.err"
check "v3 still recorded" [ "$(applied)" = "$V3" ]

sx_reset
