# shellcheck shell=bash
# tmpfiles.d against PID 1: a commit ships a sysusers.d user, a tmpfiles.d line making
# /run/aptest-app for that user, and a service that refuses to start unless the directory is
# there with its mode and owner: users first, then directories, then the unit starts. A
# tmpfiles.d change restarts the service its rule names, on the new directory. Sourced by
# run.sh after lib.sh.

TF_USER=aptestapp
TF_DIR=/run/aptest-app

tf_config() {
	sx_config "" "  - src: sysusers/
    dest: /etc/sysusers.d/
  - src: tmpfiles/
    dest: /etc/tmpfiles.d/
    restart: [tfapp.service]
guard:
  settle: 1s"
}

# tf_unit DIR MODE: tfapp.service, run as $TF_USER, whose ExecStartPre wants DIR with MODE,
# owned by $TF_USER.
tf_unit() {
	{
		printf '[Unit]\nDescription=tfapp %s\n\n[Service]\nUser=%s\n' "$1" "$TF_USER"
		printf 'ExecStartPre=/bin/sh -c "test $(stat -c %%%%a:%%%%U %s) = %s:%s"\n' "$1" "$2" "$TF_USER"
		printf 'ExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=multi-user.target\n'
	} | sx_write systemd/tfapp.service
}

ap_case "tmpfiles.d: the directory exists, with mode and owner, before the unit starts"
sx_pristine
sx_reset
sx_origin
tf_config
printf 'u %s - "autopull test app"\n' "$TF_USER" | sx_write sysusers/aptest-app.conf
printf 'd %s 0750 %s %s -\n' "$TF_DIR" "$TF_USER" "$TF_USER" | sx_write tmpfiles/aptest-app.conf
tf_unit "$TF_DIR" 750
V1=$(sx_commit v1)
sys_autopull tf-dry --dry-run --json apply
ap_expect_rc "$AP_CASE: dry-run" 0 tf-dry
ap_jq "$AP_CASE: users first, then directories (JSON)" "$AP_TMP/tf-dry.out" \
	"[s['action'] for s in d['setup']] == ['sysusers', 'tmpfiles-create']"
sys_autopull tf-v1 apply
ap_expect_rc "$AP_CASE: apply" 0 tf-v1
check "v1 recorded" [ "$(applied)" = "$V1" ]
check "the directory has its mode and owner" \
	[ "$(sys_sh stat -c %a:%U "$TF_DIR")" = "750:$TF_USER" ]
check "tfapp.service is active" [ "$(sys_prop tfapp.service ActiveState)" = active ]

ap_case "tmpfiles.d: a changed line is created before its service restarts"
before=$(inv tfapp.service)
printf 'd %s 0750 %s %s -\nd %s/locks 0700 %s %s -\n' "$TF_DIR" "$TF_USER" "$TF_USER" \
	"$TF_DIR" "$TF_USER" "$TF_USER" | sx_write tmpfiles/aptest-app.conf
tf_unit "$TF_DIR/locks" 700
V2=$(sx_commit v2)
sys_autopull tf-v2 apply
ap_expect_rc "$AP_CASE: apply" 0 tf-v2
check "v2 recorded" [ "$(applied)" = "$V2" ]
check "the new directory is there" [ "$(sys_sh stat -c %a:%U "$TF_DIR/locks")" = "700:$TF_USER" ]
check "tfapp.service restarted (new InvocationID)" [ "$(inv tfapp.service)" != "$before" ]
check "tfapp.service is active" [ "$(sys_prop tfapp.service ActiveState)" = active ]

ap_case "tmpfiles.d: a line with a bad path is refused, the host unchanged"
printf 'd relative/path 0750 - - -\n' | sx_write tmpfiles/aptest-app.conf
sx_commit v3 >/dev/null
sx_snapshot tf-before
sys_autopull tf-bad apply
ap_expect_rc "$AP_CASE: refused" 4 tf-bad
check "the error names the file" grep -q "tmpfiles/aptest-app.conf" "$AP_TMP/tf-bad.err"
sx_snapshot tf-after
check "host unchanged" cmp -s "$AP_TMP/tf-before.snap" "$AP_TMP/tf-after.snap"
check "the installed tmpfiles.d file is v2's" grep -q "^d $TF_DIR/locks " "$SYS_ROOT/etc/tmpfiles.d/aptest-app.conf"
check "still at v2" [ "$(applied)" = "$V2" ]

ap_case "tmpfiles.d: an owner nobody makes is refused, the host unchanged"
printf 'd %s/other 0750 aptestnobody - -\n' "$TF_DIR" | sx_write tmpfiles/aptest-app.conf
sx_commit v4 >/dev/null
sys_autopull tf-owner apply
ap_expect_rc "$AP_CASE: refused" 4 tf-owner
check "the error names the line and the user" \
	grep -q "'tmpfiles/aptest-app.conf' line 1 gives user 'aptestnobody'" "$AP_TMP/tf-owner.err"
check "the installed tmpfiles.d file is v2's" grep -q "^d $TF_DIR/locks " "$SYS_ROOT/etc/tmpfiles.d/aptest-app.conf"
check "nothing created" [ ! -e "$SYS_ROOT$TF_DIR/other" ]
check "still at v2" [ "$(applied)" = "$V2" ]

ap_case "tmpfiles.d and sysusers.d under the shipped, sandboxed apply service"
# ProtectSystem=strict keeps /etc and /run read-only for the service: the tools must run
# outside its sandbox (as transient services of PID 1)
printf 'u %s - "autopull test app"\nu aptestapp2 - "second"\n' "$TF_USER" | sx_write sysusers/aptest-app.conf
printf 'd %s 0750 %s %s -\nd %s/svc 0700 aptestapp2 - -\n' "$TF_DIR" "$TF_USER" "$TF_USER" \
	"$TF_DIR" | sx_write tmpfiles/aptest-app.conf
tf_unit "$TF_DIR" 750
V5=$(sx_commit v5)
sys_start_unit tf-svc infrastructure-auto-pull.service
ap_expect_rc "$AP_CASE: the service's run" 0 tf-svc
check "v5 recorded" [ "$(applied)" = "$V5" ]
check "the new user exists" quiet sys_sh getent passwd aptestapp2
check "its directory exists" [ "$(sys_sh stat -c %a:%U "$TF_DIR/svc")" = "700:aptestapp2" ]
check "no failed unit left (the tools' units are gone)" [ -z "$(sys_ctl list-units --failed --no-legend --plain)" ]
sys_sh userdel aptestapp2 >/dev/null 2>&1
sx_reset
sys_sh rm -rf /etc/sysusers.d/aptest-app.conf /etc/tmpfiles.d/aptest-app.conf "$TF_DIR"
