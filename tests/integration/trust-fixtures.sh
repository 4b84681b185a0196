# shellcheck shell=bash
# Fixtures for t-50-trust.sh and t-52-trust-dates.sh: signing keys made at test time, an sshd and an HTTPS git
# server on loopback, and a black-holed port. Sourced by them after lib.sh.
#
#   ssh signing keys     $TK/alice (allowed), $TK/mallory (unknown), $TK/retired (allowed
#                        only before 2020 by valid-before) in $TK/allowed_signers
#   OpenPGP              $TK/gnupg: bob (allowed, $TK/trusted.gpg), carol (expired)
#   sshd                 root, 127.0.0.1:$TK_SSH_PORT, host key $TK/host_key, the test user's
#                        client key $TK/client (authorized); stopped by pid
#   https                githttp.py with a certificate for localhost from the CA $TK/ca.crt
#
# Every process started here is tracked (ap_track) and stopped by its pid.

TK=$AP_HOME/trust-keys
TK_GNUPG=$TK/gnupg

# tk_as_user CMD...: as the test user, with the fixture GNUPGHOME (gpg signs through it).
tk_as_user() { ap_as_user env GNUPGHOME="$TK_GNUPG" "$@"; }

tk_keys() {
	rm -rf "$TK"
	install -d -m 0700 -o "$AP_UID" -g "$AP_GID" "$TK" "$TK_GNUPG"
	local n
	for n in alice mallory retired client; do
		tk_as_user ssh-keygen -q -t ed25519 -N '' -C "$n" -f "$TK/$n" || return 1
	done
	{
		echo "alice@example.org namespaces=\"git\" $(cat "$TK/alice.pub")"
		echo "retired@example.org namespaces=\"git\",valid-before=\"20200101\" $(cat "$TK/retired.pub")"
	} >"$TK/allowed_signers"
	chown "$AP_UID:$AP_GID" "$TK/allowed_signers"
	tk_as_user gpg --batch --quiet --passphrase '' --quick-gen-key 'Bob <bob@example.org>' \
		ed25519 sign 0 2>/dev/null || return 1
	tk_as_user gpg --batch --quiet --passphrase '' --faked-system-time '20200101T000000!' \
		--quick-gen-key 'Carol <carol@example.org>' ed25519 sign 1d 2>/dev/null || return 1
	TK_BOB=$(tk_fpr bob@example.org) TK_CAROL=$(tk_fpr carol@example.org)
	tk_as_user gpg --batch --quiet --output "$TK/trusted.gpg" --export "$TK_BOB" "$TK_CAROL" 2>/dev/null &&
	tk_as_user gpg --batch --quiet --armor --output "$TK/trusted.asc" --export "$TK_BOB" || return 1
	# gpg as of a day when Carol's key was valid, for signing with it
	printf '#!/bin/sh\nexec gpg --faked-system-time 20200101T010000! "$@"\n' >"$TK/oldgpg"
	chmod 0755 "$TK/oldgpg"
}

# refused_metric REASON: autopull_refused_total{reason=REASON} in the metrics file.
refused_metric() {
	"$AP_PY" - "$AP_STATE_DIR/metrics.prom" "$1" <<-'PY'
	import sys
	from prometheus_client.parser import text_string_to_metric_families
	for f in text_string_to_metric_families(open(sys.argv[1]).read()):
	    for s in f.samples:
	        if s.name == "autopull_refused_total" and s.labels.get("reason") == sys.argv[2]:
	            print(int(s.value))
	PY
}

tk_fpr() { tk_as_user gpg --with-colons --list-keys "$1" | awk -F: '/^fpr/ { print $10; exit }'; }

# tk_stop_agent: gpg started an agent for the fixture home; it is ours to stop.
tk_stop_agent() { [ -d "$TK_GNUPG" ] && tk_as_user gpgconf --homedir "$TK_GNUPG" --kill all 2>/dev/null; return 0; }

# tk_commit_as KEY MSG [git commit options...]: commit everything in the origin, signed with the
# ssh key KEY (alice, mallory, retired), the OpenPGP key KEY (bob, carol) or unsigned ("-").
tk_commit_as() {
	local key=$1 msg=$2; shift 2
	local -a sign=()
	case $key in
	-) sign=(-c commit.gpgsign=false) ;;
	bob) sign=(-c gpg.format=openpgp -c "user.signingkey=$TK_BOB" -c commit.gpgsign=true) ;;
	carol) sign=(-c gpg.format=openpgp -c "user.signingkey=$TK_CAROL" -c "gpg.program=$TK/oldgpg"
		-c commit.gpgsign=true) ;;
	*) sign=(-c gpg.format=ssh -c "user.signingkey=$TK/$key" -c commit.gpgsign=true) ;;
	esac
	chown -R "$AP_UID:$AP_GID" "$FX_ORIGIN" || return 1
	ap_git "$FX_ORIGIN" add -A &&
	tk_as_user timeout "$AP_CMD_TIMEOUT" git -C "$FX_ORIGIN" "${sign[@]}" commit -q --allow-empty \
		-m "$msg" "$@" || return 1
	ap_repo_head "$FX_ORIGIN"
}

# --- sshd --------------------------------------------------------------------------------

# tk_sshd_start: sshd -D as root on a random free loopback port (its own config, host key and
# authorized keys); sets TK_SSH_PORT. Tracked as "sshd".
tk_sshd_start() {
	local d=$TK/sshd port i pid
	install -d -m 0755 "$d" /run/sshd
	# useradd leaves the password field "!", which sshd without PAM reads as a locked
	# account; "*" has no password either, but is not locked.
	usermod -p '*' "$AP_USER" || return 1
	[ -f "$d/host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$d/host_key" || return 1
	install -m 0644 "$TK/client.pub" "$d/authorized_keys"
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		port=$((30000 + RANDOM % 10000))
		ap_port_free "$port" || continue
		cat >"$d/sshd_config" <<-EOF
		Port $port
		ListenAddress 127.0.0.1
		HostKey $d/host_key
		PidFile none
		AuthorizedKeysFile $d/authorized_keys
		StrictModes no
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		UsePAM no
		AllowUsers $AP_USER
		EOF
		(ap_cgroup_enter "$AP_HARNESS_CG" "$BASHPID"
		 exec /usr/sbin/sshd -D -e -f "$d/sshd_config") >>"$AP_RUN/sshd.log" 2>&1 </dev/null 9>&- &
		pid=$!
		ap_track sshd "$pid"
		i=0
		while ap_pid_alive "$pid" && ! ss -ltn "sport = :$port" 2>/dev/null | grep -q LISTEN &&
			[ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
		if ap_pid_alive "$pid"; then TK_SSH_PORT=$port; return 0; fi
		ap_untrack_stop sshd 2
	done
	tail -n 20 "$AP_RUN/sshd.log" >&2
	return 1
}

tk_sshd_stop() { ap_untrack_stop sshd 5; }

# tk_known_hosts FILE [hashed]: the sshd's host key for [127.0.0.1]:port, plain or hashed.
tk_known_hosts() {
	echo "[127.0.0.1]:$TK_SSH_PORT $(cut -d' ' -f1,2 "$TK/sshd/host_key.pub")" >"$1"
	[ "${2:-}" = hashed ] && { ssh-keygen -q -H -f "$1" >/dev/null 2>&1 && rm -f "$1.old"; }
	chown "$AP_UID:$AP_GID" "$1"
}

# --- https ----------------------------------------------------------------------------------

# tk_tls: a private CA and a certificate for DNS name localhost (mbedTLS does not match
# IP SANs), in $TK/tls.
tk_tls() {
	local d=$TK/tls
	install -d -m 0755 -o "$AP_UID" -g "$AP_GID" "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=aptest CA" -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
		-keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null &&
	printf 'subjectAltName=DNS:localhost\n' >"$d/ext" &&
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
		-days 2 -extfile "$d/ext" -out "$d/server.crt" 2>/dev/null || return 1
	chown -R "$AP_UID:$AP_GID" "$d"
}

# tk_https_start DIR: githttp.py with TLS under tag "https"; sets TK_HTTPS_PORT. The main
# http server's variables are kept.
tk_https_start() {
	local pid=${AP_HTTP_PID:-} port=${AP_HTTP_PORT:-} root=${AP_HTTP_ROOT:-} rc=0
	ap_http_start "$1" "" https --tls-cert "$TK/tls/server.crt" --tls-key "$TK/tls/server.key" || rc=1
	TK_HTTPS_PORT=$AP_HTTP_PORT
	AP_HTTP_PID=$pid AP_HTTP_PORT=$port AP_HTTP_ROOT=$root
	return $rc
}

# --- a black hole -----------------------------------------------------------------------------

# tk_blackhole_start: a loopback listener whose accept queue is full, so that the kernel
# drops further SYNs (a remote that never answers a connect); sets TK_HOLE_PORT.
tk_blackhole_start() {
	local ready=$AP_RUN/blackhole.port i=0
	rm -f "$ready"
	(ap_cgroup_enter "$AP_HARNESS_CG" "$BASHPID"
	 exec "$AP_PY" - "$ready" <<-'EOF'
	import select, socket, sys, time
	l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(0)
	port = l.getsockname()[1]
	held = []
	for _ in range(8):  # fill the accept queue until a connect no longer completes
	    c = socket.socket(); c.setblocking(False); c.connect_ex(("127.0.0.1", port)); held.append(c)
	    if not select.select([], [c], [], 0.3)[1]:
	        break
	open(sys.argv[1], "w").write("%d\n" % port)
	time.sleep(600)
	EOF
	) >/dev/null 2>&1 </dev/null 9>&- &
	ap_track blackhole $!
	while [ ! -s "$ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	TK_HOLE_PORT=$(cat "$ready" 2>/dev/null)
	[ -n "$TK_HOLE_PORT" ]
}

tk_blackhole_stop() { ap_untrack_stop blackhole 2; }
