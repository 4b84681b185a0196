# shellcheck shell=bash
# Fixture content for the integration tests: unit files, config files, origin repos, and the
# reset between cases. Sourced by lib.sh; reused by the dry-run (t-10) and apply tests.
#
# The origin is a work repo at $FX_ORIGIN (file://). With http it is also pushed, on every
# ap_repo_commit, to the bare $AP_HOME/srv/origin.git that githttp.py serves.
# All files are written as root and chowned by ap_repo_commit before git runs.

FX_ORIGIN=${FX_ORIGIN:-$AP_HOME/origin}
FX_BARE=${FX_BARE:-$AP_HOME/srv/origin.git}
FX_ETC=$AP_HOME/etc                     # destinations of the file rules
FX_LOG=$AP_HOME/log                     # StandardOutput of the test units

# fx_write PATH: stdin → $FX_ORIGIN/PATH (repo_write: a unit's Description= is mirrored).
fx_write() { repo_write "$FX_ORIGIN" "$1"; }

fx_rm() { rm -rf "${FX_ORIGIN:?}/$1"; }

# fx_service NAME [install] [DESCRIPTION]: systemd/NAME, a `sleep infinity` service; with
# "install" an [Install] section (WantedBy=default.target). ExecReload exists so that a
# "reload" action is valid. StartLimitIntervalSec=0: tests restart a lot.
fx_service() {
	local name=$1 install=${2:-} desc=${3:-$1 v1}
	{
		echo "[Unit]"
		echo "Description=$desc"
		echo "StartLimitIntervalSec=0"
		echo
		echo "[Service]"
		echo "ExecStart=/bin/sleep infinity"
		echo "ExecReload=/bin/true"
		echo "StandardOutput=append:$FX_LOG/${name%.*}.log"
		echo "StandardError=inherit"
		if [ "$install" = install ]; then
			echo
			echo "[Install]"
			echo "WantedBy=default.target"
		fi
	} | fx_write "systemd/$name"
}

# fx_vservice UNIT VERSION [broken]: a service that appends VERSION to $FX_LOG/<name>.versions
# at every start and then sleeps; "broken" exits 1 at once and restarts (it never settles).
fx_vservice() {
	{
		printf '[Unit]\nDescription=%s %s\nStartLimitIntervalSec=0\n\n[Service]\n' "$1" "$2"
		if [ "${3:-}" = broken ]; then
			printf 'ExecStart=/bin/sh -c "echo %s >> %s/%s.versions; exit 1"\n' "$2" "$FX_LOG" "${1%.service}"
			printf 'Restart=always\nRestartSec=300ms\n'
		else
			printf 'ExecStart=/bin/sh -c "echo %s >> %s/%s.versions; exec sleep infinity"\n' "$2" "$FX_LOG" "${1%.service}"
		fi
		printf '\n[Install]\nWantedBy=default.target\n'
	} | fx_write "systemd/$1"
}

# fx_oneshot NAME [DESCRIPTION]: systemd/NAME, Type=oneshot /bin/true, no [Install].
fx_oneshot() {
	printf '[Unit]\nDescription=%s\nStartLimitIntervalSec=0\n\n[Service]\nType=oneshot\nExecStart=/bin/true\n' \
		"${2:-$1 v1}" | fx_write "systemd/$1"
}

# fx_timer NAME [DESCRIPTION]: systemd/NAME.timer (OnUnitActiveSec=1h, timers.target).
fx_timer() {
	printf '[Unit]\nDescription=%s\n\n[Timer]\nOnUnitActiveSec=1h\n\n[Install]\nWantedBy=timers.target\n' \
		"${2:-$1 v1}" | fx_write "systemd/$1"
}

# fx_template NAME [DESCRIPTION]: systemd/NAME (foo@.service), instances run `sleep infinity`.
fx_template() {
	printf '[Unit]\nDescription=%s %%i\nStartLimitIntervalSec=0\n\n[Service]\nExecStart=/bin/sleep infinity\n' \
		"${2:-$1 v1}" | fx_write "systemd/$1"
}

# fx_dropin UNIT FILE [VALUE]: systemd/UNIT.d/FILE setting an environment variable.
fx_dropin() {
	printf '[Service]\nEnvironment=APTEST_DROPIN=%s\n' "${3:-v1}" | fx_write "systemd/$1.d/$2"
}

fx_caddyfile() {
	printf ':8080 {\n\trespond "hello %s"\n}\n' "${1:-v1}" | fx_write caddy/Caddyfile
}

fx_envfile() {
	printf 'APP_VERSION=%s\n' "${1:-v1}" | fx_write env/app.env
}

# fx_base: the v1 tree used by most cases.
#   web.service (+[Install]) with drop-in web.service.d/10-env.conf; caddy/Caddyfile reloads it
#   worker.service (+[Install]); env/ restarts it
#   tick.timer (+[Install]) and tick.service (oneshot)
#   foo@.service (template)
fx_base() {
	fx_service web.service install
	fx_dropin web.service 10-env.conf v1
	fx_service worker.service install
	fx_timer tick.timer
	fx_oneshot tick.service
	fx_template foo@.service
	fx_caddyfile v1
	fx_envfile v1
}

# fx_svc_tree SVC: the tree the apply and failure tests start from, with their own service
# writer SVC (called as SVC NAME DESCRIPTION install): web (+drop-in, reloads on the
# Caddyfile), worker (restarts on env/), tick.timer + tick.service.
fx_svc_tree() {
	"$1" web.service "web v1" install
	fx_dropin web.service 10-env.conf v1
	"$1" worker.service "worker v1" install
	fx_timer tick.timer
	fx_oneshot tick.service
	fx_caddyfile v1
	fx_envfile v1
}

# The guard's settle window after restarts defaults to 10 s in autopull; every baseline apply
# would wait that long. The fixtures use FX_SETTLE (1s); set FX_SETTLE= to leave the key out.
FX_SETTLE=${FX_SETTLE-1s}

# fx_config_head URL: the first lines of a user-scope configuration: the repository at URL
# (branch main), the units in systemd/, and "files:", for the rules to follow.
fx_config_head() { printf 'repo:\n  url: %s\n  branch: main\nscope: user\nunits: [systemd/]\nfiles:\n' "$1"; }

# fx_config [URL] [FILE] [EXTRA_YAML]: the config of the brief (plus guard.settle, see
# above). URL defaults to the origin over file://, FILE to $AP_CFG. EXTRA_YAML is appended
# verbatim.
fx_config() {
	local url=${1:-file://$FX_ORIGIN} file=${2:-$AP_CFG}
	{
		fx_config_head "$url"
		cat <<-EOF
		  - src: caddy/Caddyfile
		    dest: $FX_ETC/caddy/Caddyfile
		    reload: [web.service]
		  - src: env/
		    dest: $FX_ETC/env/
		    restart: [worker.service]
		EOF
		[ -n "$FX_SETTLE" ] && printf 'guard:\n  settle: %s\n' "$FX_SETTLE"
		[ -n "${3:-}" ] && printf '%s\n' "$3"
	} | ap_user_write "$file"
}

# fx_origin [file|http]: a fresh origin work repo (and its bare clone for http), no commits.
# Sets FX_URL to what the config should point at.
fx_origin() {
	ap_repo_init "$FX_ORIGIN" || return 1
	install -d -o "$AP_UID" -g "$AP_GID" "$FX_LOG"
	FX_URL=file://$FX_ORIGIN
	if [ "${1:-file}" = http ]; then
		FX_URL=${AP_HTTP_URL:?no http server}/${FX_BARE#"$AP_HTTP_ROOT"/}
	fi
}

# fx_commit MSG: commit the origin (publishing it if http); prints the new sha.
fx_commit() {
	if [ "${FX_URL#http}" != "$FX_URL" ] && [ ! -d "$FX_BARE" ]; then
		ap_repo_commit "$FX_ORIGIN" "$1" && ap_repo_publish "$FX_ORIGIN" "$FX_BARE" || return 1
	else
		ap_repo_commit "$FX_ORIGIN" "$1" || return 1
	fi
	ap_repo_head "$FX_ORIGIN"
}

# fx_units_reset: stop every unit that comes from the test unit dir (or whose file is gone
# but which still runs), remove the unit dir, daemon-reload, reset-failed.
fx_units_reset() {
	local ids
	mkdir -p "${AP_TMP:=$AP_RUN/tmp}"
	ids=$(ap_systemctl list-units --all --plain --no-legend --full 2>/dev/null |
		awk '{ for (i = 1; i <= NF; i++) if ($i ~ /\.(service|timer|socket|path|target)$/) { print $i; break } }')
	if [ -n "$ids" ]; then
		# shellcheck disable=SC2086
		ap_systemctl show -p Id -p FragmentPath -p LoadState -p ActiveState -- $ids 2>/dev/null |
		awk -v dir="$AP_UNIT_DIR/" '
			/^Id=/ { id = substr($0, 4) }
			/^FragmentPath=/ { fp = substr($0, 14) }
			/^LoadState=/ { ls = substr($0, 11) }
			/^ActiveState=/ { as = substr($0, 13) }
			/^$/ { if (id != "" && (index(fp, dir) == 1 || (ls == "not-found" && as != "inactive"))) print id
			       id = fp = ls = as = "" }
			END { if (id != "" && (index(fp, dir) == 1 || (ls == "not-found" && as != "inactive"))) print id }' \
		>"$AP_TMP/stop.list"
		if [ -s "$AP_TMP/stop.list" ]; then
			# shellcheck disable=SC2046
			ap_systemctl stop -- $(cat "$AP_TMP/stop.list") 2>/dev/null
		fi
	fi
	rm -rf "${AP_UNIT_DIR:?}"
	ap_systemctl daemon-reload
	ap_systemctl reset-failed 2>/dev/null
	return 0
}

# fx_reset: a clean slate for the next case: no test units, no autopull state, no
# destinations, no origin, default config removed.
fx_reset() {
	fx_units_reset
	rm -rf "${AP_STATE_DIR:?}" "${FX_ETC:?}" "${FX_ORIGIN:?}" "${FX_BARE:?}" "${FX_LOG:?}" \
		"$(dirname "$AP_CFG")"
}

# fx_apply NAME [ARGS...]: `autopull --user -c $AP_CFG apply`, a baseline step: a failure is
# recorded and returns 1 so that the case can stop early.
fx_apply() {
	local name=$1; shift
	ap_autopull "$name" --user -c "$AP_CFG" "$@" apply
	if [ "$AP_RC" != 0 ]; then
		ap_fail "$AP_CASE: baseline apply failed (exit $AP_RC)"
		sed -n '1,10s/^/        stderr: /p' "$AP_TMP/$name.err"
		return 1
	fi
}

# fx_dryrun NAME [ARGS...]: `autopull --user -c $AP_CFG --dry-run --json ARGS`; checks exit 0
# and that stdout is JSON. The plan is then $AP_TMP/NAME.out. Returns 1 if not.
fx_dryrun() {
	local name=$1; shift
	ap_autopull "$name" --user -c "$AP_CFG" --dry-run --json "$@"
	ap_expect_rc "$AP_CASE: dry-run" 0 "$name" || return 1
	ap_jq "$AP_CASE: plan is a JSON object" "$AP_TMP/$name.out" 'isinstance(d, dict)'
}

# fx_unit_state UNIT WANT: start or stop UNIT and check it got there (a precondition).
fx_unit_state() {
	case $2 in
	active) ap_systemctl start -- "$1" ;;
	inactive) ap_systemctl stop -- "$1" ;;
	esac
	if [ "$(ap_unit_prop "$1" ActiveState)" != "$2" ]; then
		ap_fail "$AP_CASE: precondition: $1 is not $2 ($(ap_unit_prop "$1" ActiveState))"
		return 1
	fi
}

# fx_snapshot NAME: every file under the unit dir and the destinations (path, mode, link
# target, content hash) plus the applied commit, in $AP_TMP/NAME.snap: equal snapshots mean
# the host was left byte-identical.
fx_snapshot() {
	{
		(cd / && find "$AP_UNIT_DIR" "$FX_ETC" \( -type f -o -type l \) -printf '%p %m %l\n' 2>/dev/null |
			sort | while read -r p m l; do echo "$p $m $l $(sha256sum <"$p" 2>/dev/null | cut -c1-16)"; done)
		echo "applied $(cat "$AP_STATE_DIR/applied" 2>/dev/null)"
		echo "owned $(sha256sum <"$AP_STATE_DIR/owned" 2>/dev/null | cut -c1-16)"
	} >"$AP_TMP/$1.snap"
}
