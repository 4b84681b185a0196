# shellcheck shell=bash
# The hardened apply service with the README's example configuration (only repo.url
# changed) over https (a private CA in ca_file) and ssh (an ed25519 deploy key, known_hosts),
# metrics in the README's node_exporter directory; and owner:/group: and setuid/setgid rules
# (allow_setid: true) under the sandbox; the heartbeat's guard.push, which needs the network
# the generator gives it. Sourced by run.sh after lib.sh.

TLS=$AP_TMP/tls
SSH_PORT=2222
METRICS=/var/lib/node_exporter/textfile/autopull.prom   # the README's guard.metrics

# readme_config URL: the README's configuration block, verbatim but for repo.url.
# The README's health: probes ask services this container does not run (caddy's admin API,
# app-check, sshd on 22) and would fail the apply's guard sample; t-23-probes covers probes,
# so the example's health: block is left out here and everything else is taken as it is.
readme_config() {
	sed -n '/^## Configuration/,/^### /p' "$SYS_TOP/README.md" |
		awk '/^```yaml/ { f = 1; next } /^```/ { if (f) exit } f' |
		awk '/^health:/ { skip = 1; next } skip && /^[ \t]/ { next } { skip = 0; print }' |
		sed "s|^  url: [^ ]*|  url: $1|" | sys_write "$SX_CFG"
	sys_ctl daemon-reload
}

service() { sys_start_unit "$1" infrastructure-auto-pull.service; }

# tls_setup: a CA and a certificate for localhost (mbedTLS matches DNS names, not IPs).
tls_setup() {
	mkdir -p "$TLS"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=aptest CA" \
		-keyout "$TLS/ca.key" -out "$TLS/ca.crt" 2>/dev/null &&
	openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$TLS/srv.key" \
		-out "$TLS/srv.csr" 2>/dev/null &&
	printf 'subjectAltName=DNS:localhost\n' >"$TLS/ext" &&
	openssl x509 -req -in "$TLS/srv.csr" -CA "$TLS/ca.crt" -CAkey "$TLS/ca.key" -CAcreateserial \
		-days 2 -extfile "$TLS/ext" -out "$TLS/srv.crt" 2>/dev/null
}

# https_start: githttps.py on the host, in the container's network namespace, on a free port.
# Sets HTTPS_PORT.
https_start() {
	local i pid port
	for _ in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 10000))
		rm -f "$AP_TMP/https.ready"
		(ap_cgroup_enter "$SYS_HARNESS_CG" "$BASHPID"
		 exec nsenter -t "$SYS_LEADER" -n "$AP_PY" "$SYS_DIR/githttps.py" --root "$AP_SYS_RUN/srv" \
			--port "$port" --cert "$TLS/srv.crt" --key "$TLS/srv.key" \
			--ready-file "$AP_TMP/https.ready") >>"$AP_SYS_RUN/https.log" 2>&1 </dev/null 9>&- &
		pid=$!
		ap_track https "$pid"
		i=0
		while [ ! -e "$AP_TMP/https.ready" ] && ap_pid_alive "$pid" && [ $i -lt 100 ]; do
			sleep 0.05; i=$((i + 1))
		done
		if [ -e "$AP_TMP/https.ready" ]; then HTTPS_PORT=$port; return 0; fi
		ap_untrack_stop https 2
	done
	tail -n 5 "$AP_SYS_RUN/https.log" >&2
	return 1
}

# ssh_setup: inside, a user "git" whose shell can run git-upload-pack, the deploy key at the
# README's path, known_hosts with the container's host key, and sshd on 127.0.0.1:2222 as a
# transient unit.
ssh_setup() {
	sys_sh sh -ec '
		id git >/dev/null 2>&1 || useradd -m -s /bin/sh git
		usermod -p "*" git      # not locked: sshd without PAM refuses locked accounts
		install -d -m 0700 -o git -g git /home/git/.ssh
		git config --system --add safe.directory "*"
		[ -f /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -A
		mkdir -p /etc/autopull
		rm -f /etc/autopull/deploy_ed25519 /etc/autopull/deploy_ed25519.pub
		ssh-keygen -q -t ed25519 -N "" -C autopull -f /etc/autopull/deploy_ed25519
		install -m 0600 -o git -g git /etc/autopull/deploy_ed25519.pub /home/git/.ssh/authorized_keys
		printf "[localhost]:'"$SSH_PORT"' %s\n" "$(cut -d" " -f1,2 /etc/ssh/ssh_host_ed25519_key.pub)" \
			>/etc/autopull/known_hosts
		printf "Port '"$SSH_PORT"'\nListenAddress 127.0.0.1\nHostKey /etc/ssh/ssh_host_ed25519_key\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nPidFile none\nAuthorizedKeysFile .ssh/authorized_keys\n" \
			>/etc/ssh/sshd_aptest_config
		systemd-run --unit=aptest-sshd -p RuntimeDirectory=sshd /usr/sbin/sshd -D -e -f /etc/ssh/sshd_aptest_config' \
		>"$AP_TMP/ssh-setup.log" 2>&1 || return 1
	for _ in $(seq 50); do
		sys_sh ss -ltn | grep -q "127.0.0.1:$SSH_PORT " && return 0
		sleep 0.1
	done
	return 1
}

t_https() {
	local caddy
	ap_case "https (README config)"
	sx_reset
	sx_origin
	sx_service web.service install "web v1"
	printf ':80 {\n\trespond "v1"\n}\n' | sx_write caddy/Caddyfile
	V1=$(sx_commit v1)
	check "test CA and certificate" tls_setup || return
	check "https server in the container's network" https_start || return
	readme_config "https://localhost:$HTTPS_PORT/origin.git"
	service noca
	check "without the CA the service fails (exit $(cat "$AP_TMP/noca.rc"))" not [ "$(cat "$AP_TMP/noca.rc")" = 0 ]
	check "on the certificate" grep -qi "certificate" "$AP_TMP/noca.err"
	check "applied unchanged" [ -z "$(applied)" ]
	sys_write /etc/autopull/ca.crt <"$TLS/ca.crt"
	sys_autopull cc check-config
	ap_expect_rc "$AP_CASE: check-config" 0 cc
	caddy=$(inv caddy.service)
	service https
	ap_expect_rc "$AP_CASE: the shipped service over https" 0 https || return
	check "applied = v1" [ "$(applied)" = "$V1" ]
	check "Caddyfile installed" cmp -s "$SX_WORK/caddy/Caddyfile" "$SYS_ROOT/etc/caddy/Caddyfile"
	check "caddy.service reloaded, not restarted" [ "$(inv caddy.service)" = "$caddy" ]
	check "the apply's guard sample wrote metrics in the README's node_exporter directory" \
		grep -q '^autopull_unit_looping{unit="caddy.service"' "$SYS_ROOT$METRICS"
	sys_sh rm -f "$METRICS"
	sys_start_unit hb autopull-heartbeat.service
	ap_expect_rc "$AP_CASE: the shipped heartbeat service" 0 hb
	check "the heartbeat rewrote them there" grep -q "^autopull_applied_commit_info{commit=\"$V1\"" \
		"$SYS_ROOT$METRICS"
	check "with the last apply's success" grep -Eq '^autopull_last_apply_success(\{[^}]*\})? 1(\.0+)?$' \
		"$SYS_ROOT$METRICS" || grep '^autopull_last_apply' "$SYS_ROOT$METRICS"
	ap_untrack_stop https 5
}

t_ssh() {
	ap_case "ssh ed25519 (README config)"
	check "sshd and the deploy key" ssh_setup || { sed 's/^/        /' "$AP_TMP/ssh-setup.log"; return; }
	readme_config "ssh://git@localhost:$SSH_PORT/srv/git/origin.git"
	sx_service web.service install "web v2"
	V2=$(sx_commit v2)
	service ssh
	ap_expect_rc "$AP_CASE: the shipped service over ssh" 0 ssh || return
	check "applied = v2" [ "$(applied)" = "$V2" ]
	check "web.service runs v2" [ "$(sys_prop web.service Description)" = "web v2" ]
	printf '[localhost]:%s ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake\n' \
		"$SSH_PORT" | sys_write /etc/autopull/known_hosts
	sx_service web.service install "web v3"
	sx_commit v3 >/dev/null
	service badhost
	check "an unknown host key fails the service (exit $(cat "$AP_TMP/badhost.rc"))" \
		not [ "$(cat "$AP_TMP/badhost.rc")" = 0 ]
	check "on the host key" grep -qi "host.\?key" "$AP_TMP/badhost.err"
	check "applied unchanged" [ "$(applied)" = "$V2" ]
	sys_ctl stop aptest-sshd.service
}

# owner:/group: need CAP_CHOWN and CAP_FOWNER; setuid/setgid modes need allow_setid: true,
# which makes the generator lift RestrictSUIDSGID= and add CAP_FSETID.
t_owner_setid() {
	local rules
	ap_case "owner: and allow_setid"
	sx_reset
	sx_origin
	printf 'owned\n' | sx_write owned/a.conf
	printf '#!/bin/sh\necho hi\n' | sx_write bin/suid-tool
	printf '#!/bin/sh\necho hi\n' | sx_write bin/sgid-tool
	V1=$(sx_commit v1)
	rules="  - {src: owned/, dest: /etc/aptest-owned/, owner: nobody, group: nogroup, mode: \"0640\"}
  - {src: bin/suid-tool, dest: /usr/local/lib/aptest/suid-tool, mode: \"4755\", allow_setid: true}
  - {src: bin/sgid-tool, dest: /usr/local/lib/aptest/sgid-tool, group: nogroup, mode: \"2750\", allow_setid: true}"
	sys_write "$SX_CFG" <<-EOF
	repo:
	  url: $SX_URL
	files:
	  - {src: owned/, dest: /etc/aptest-owned/, owner: nobody, group: nogroup, mode: "0640"}
	guard:
	  settle: 0s
	EOF
	sys_ctl daemon-reload
	printf '  - {src: bin/suid-tool, dest: /usr/local/lib/aptest/suid-tool, mode: "4755"}\n' |
		sys_write /root/rule
	sys_sh sh -c 'sed "/^files:/r /root/rule" /etc/autopull/autopull.yaml > /root/nosetid.yaml'
	sys_autopull nosetid -c /root/nosetid.yaml check-config
	ap_expect_rc "$AP_CASE: a setuid mode without allow_setid" 2 nosetid
	check "the message says what to add" grep -q "add 'allow_setid: true'" "$AP_TMP/nosetid.err"
	printf 'repo:\n  url: %s\nfiles:\n%s\nguard:\n  settle: 0s\n' "$SX_URL" "$rules" | sys_write "$SX_CFG"
	sys_autopull stale check-config
	ap_expect_rc "$AP_CASE: allow_setid before daemon-reload" 2 stale
	check "check-config: the unit cannot set setuid/setgid modes yet" \
		grep -q "cannot set setuid/setgid modes (allow_setid: true).*daemon-reload" "$AP_TMP/stale.err"
	sys_ctl daemon-reload
	check "the drop-in lifts RestrictSUIDSGID=" grep -q "^RestrictSUIDSGID=no$" \
		"$SYS_ROOT/run/systemd/generator/infrastructure-auto-pull.service.d/50-autopull-sandbox.conf"
	service setid
	ap_expect_rc "$AP_CASE: the shipped service" 0 setid || return
	check "owned file: nobody:nogroup 0640" \
		[ "$(sys_sh stat -c '%U:%G %a' /etc/aptest-owned/a.conf)" = "nobody:nogroup 640" ]
	check "setuid file: root 4755" [ "$(sys_sh stat -c '%U %a' /usr/local/lib/aptest/suid-tool)" = "root 4755" ]
	check "setgid file: group nogroup 2750 (CAP_FSETID)" \
		[ "$(sys_sh stat -c '%G %a' /usr/local/lib/aptest/sgid-tool)" = "nogroup 2750" ]
}

# A POST receiver for guard.push: appends each body to FILE; writes READY when listening.
SINK_PY='
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(sys.argv[2], "ab") as f:
            f.write(body)
        self.send_response(204)
        self.end_headers()
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
open(sys.argv[3], "w").close()
srv.serve_forever()
'

# The heartbeat has no network until guard.push is set and the generator lifts it.
t_push() {
	local port=$((20000 + RANDOM % 10000)) i=0
	ap_case "guard.push from the heartbeat"
	rm -f "$AP_TMP/sink.body" "$AP_TMP/sink.ready"
	(ap_cgroup_enter "$SYS_HARNESS_CG" "$BASHPID"
	 exec nsenter -t "$SYS_LEADER" -n "$AP_PY" -c "$SINK_PY" "$port" "$AP_TMP/sink.body" \
		"$AP_TMP/sink.ready") >>"$AP_SYS_RUN/sink.log" 2>&1 </dev/null 9>&- &
	ap_track sink $!
	while [ ! -e "$AP_TMP/sink.ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	check "a receiver in the container's network" [ -e "$AP_TMP/sink.ready" ] || return
	printf 'repo:\n  url: %s\nguard:\n  settle: 0s\n  push: http://127.0.0.1:%s/api/v1/import/prometheus\n' \
		"$SX_URL" "$port" | sys_write "$SX_CFG"
	sys_autopull nopush check-config
	ap_expect_rc "$AP_CASE: check-config before daemon-reload" 2 nopush
	check "it says the heartbeat cannot reach guard.push" \
		grep -q "autopull-heartbeat.service cannot reach guard.push (it has no network).*daemon-reload" \
		"$AP_TMP/nopush.err"
	sys_start_unit hb-nonet autopull-heartbeat.service
	check "without a network nothing arrives" [ ! -s "$AP_TMP/sink.body" ]
	sys_ctl daemon-reload
	sys_autopull push check-config
	ap_expect_rc "$AP_CASE: check-config after daemon-reload" 0 push
	sys_start_unit hb-push autopull-heartbeat.service
	ap_expect_rc "$AP_CASE: the heartbeat service" 0 hb-push
	check "the metrics arrived" grep -q "^autopull_" "$AP_TMP/sink.body"
	ap_untrack_stop sink 5
}

sx_pristine
t_https
t_ssh
t_owner_setid
t_push
