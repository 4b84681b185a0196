#!/usr/bin/env bash
# `make demo`: a throwaway systemd user manager for a demo user, an example infrastructure
# repo, and two deploys with autopull. Shows the plan (--dry-run), applies it, then changes
# one unit and one config file and proves that only the affected units were restarted or
# reloaded (InvocationID unchanged for the others). Tears everything down by pid.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" != 0 ]; then
	echo "demo: run as root (it creates a demo user and starts a systemd --user manager for it)" >&2
	exit 2
fi
export AP_USER=apdemo AP_RUN=/tmp/apdemo-run AP_BINDIR=/tmp/apdemo-bin AP_TEST=demo
export AP_BIN=$AP_BINDIR/autopull
mkdir -p "$AP_RUN"
AP_RESULTS=$AP_RUN/results
# shellcheck source=../tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"
ap_bindir_fresh
ap_bindir_add "$ROOT/autopull" >/dev/null || ap_die "cannot install the binary"
ap_user_setup "$AP_USER"
ap_install_cleanup
ap_manager_start "$AP_USER"
# shellcheck source=../tests/integration/fixtures.sh
. "$ROOT/tests/integration/fixtures.sh"       # now that the demo user exists

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
repo=$AP_HOME/infra
as() { ap_as_user "$@"; }
put() { ap_user_write "$repo/$1"; }
commit() { ap_git "$repo" add -A && ap_git "$repo" -c user.name=demo -c user.email=demo@example.org commit -qm "$1"; }
autopull() { ap_as_user "$AP_BIN" --user "$@"; }
svc() { # name description [extra]
	printf '[Unit]\nDescription=%s\nStartLimitIntervalSec=0\n\n[Service]\nExecStart=/bin/sleep infinity\nExecReload=/bin/sh -c "echo reloaded >> %s/%s.reloads"\n%s\n[Install]\nWantedBy=default.target\n' \
		"$2" "$AP_HOME" "${1%.service}" "${3:-}" | put "systemd/$1"
}

say "example infrastructure repo in $repo"
rm -rf "$repo" "$AP_HOME/.local/state/autopull" "$AP_HOME/etc" "$AP_HOME"/*.reloads
as mkdir -p "$repo"
ap_git "$repo" init -q -b main
svc web.service "demo web server v1"
svc api.service "demo API"
svc worker.service "demo worker"
printf '[Service]\nEnvironment=WEB_GREETING=hello\n' | put systemd/web.service.d/10-env.conf
printf '[Unit]\nDescription=demo cleanup job\n\n[Service]\nType=oneshot\nExecStart=/bin/true\n' | put systemd/cleanup.service
printf '[Unit]\nDescription=demo cleanup timer\n\n[Timer]\nOnUnitActiveSec=1h\nOnActiveSec=1h\n\n[Install]\nWantedBy=timers.target\n' | put systemd/cleanup.timer
printf 'listen = 8080\nworkers = 2\n' | put config/api.conf
printf 'Notes for humans; not deployed.\n' | put systemd/README.txt
commit "v1: web, api, worker, cleanup timer"
as mkdir -p "$AP_HOME/.config/autopull"
{ fx_config_head "file://$repo"; cat <<EOC; } | ap_user_write "$AP_HOME/.config/autopull/autopull.yaml"
  - src: config/api.conf
    dest: $AP_HOME/etc/api/api.conf
    mode: "0640"
    validate: [grep, -q, "^listen = ", "%s"]
    reload: [api.service]
guard:
  watch: [web.service, api.service, worker.service]
  settle: 2s
EOC
ap_git "$repo" log --oneline
as find "$repo" -type f -not -path '*/.git/*' | sed "s|$repo/|  |" | sort

say "autopull --user --dry-run   (first run: everything is new)"
autopull --dry-run
say "autopull --user apply"
autopull apply; echo "exit code $?"
for u in web.service api.service worker.service cleanup.timer; do
	printf '  %-16s %s\n' "$u" "$(ap_unit_prop $u ActiveState)"
done

declare -A before
for u in web.service api.service worker.service cleanup.timer; do before[$u]=$(ap_unit_prop $u InvocationID); done

say "commit a change to one unit (web.service) and one config file (config/api.conf)"
# An [Service] line restarts the unit; a change of Description= alone would only be loaded.
svc web.service "demo web server v2" "Environment=WEB_VERSION=2"
printf 'listen = 8080\nworkers = 4\n' | put config/api.conf
commit "v2: web environment and description, api workers"
ap_git "$repo" show --stat --format='%h %s' HEAD | sed 's/^/  /'
say "autopull --user --dry-run"
autopull --dry-run
say "autopull --user apply"
autopull apply; echo "exit code $?"

say "what happened"
printf '  %-16s %-12s %s\n' UNIT INVOCATION RESULT
for u in web.service api.service worker.service cleanup.timer; do
	now=$(ap_unit_prop $u InvocationID)
	if [ "$now" != "${before[$u]}" ]; then what="restarted (new InvocationID)"; else what="not restarted (InvocationID unchanged)"; fi
	[ -f "$AP_HOME/${u%.service}.reloads" ] && what="$what, reloaded $(wc -l <"$AP_HOME/${u%.service}.reloads")x (ExecReload ran)"
	printf '  %-16s %-12s %s\n' "$u" "${now:0:8}…" "$what"
done
echo "  web.service Description: $(ap_unit_prop web.service Description)"
echo "  installed $AP_HOME/etc/api/api.conf: $(stat -c %a "$AP_HOME/etc/api/api.conf"), $(grep workers "$AP_HOME/etc/api/api.conf")"
say "autopull --user status"
autopull status
say "tearing down (manager pid $AP_MANAGER_PID)"
