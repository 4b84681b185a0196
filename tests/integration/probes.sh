# shellcheck shell=bash
# What the health-probe tests share (t-65-probes, t-66-guard-probe): the metrics file read with
# Prometheus's own parser, and a free port for a health server. Sourced by those files.

METRICS=$AP_STATE_DIR/metrics.prom

# metric NAME UNIT [KIND]: the value of NAME{unit=UNIT[,kind=KIND]} (Prometheus's own parser).
metric() {
	"$AP_PY" - "$METRICS" "$@" <<-'PY'
	import sys
	from prometheus_client.parser import text_string_to_metric_families
	for f in text_string_to_metric_families(open(sys.argv[1]).read()):
	    for s in f.samples:
	        if s.name == sys.argv[2] and s.labels.get("unit") == sys.argv[3] and \
	           (len(sys.argv) < 5 or s.labels.get("kind") == sys.argv[4]):
	            print(int(s.value))
	PY
}

# free_port: a port nothing listens on now (for a health server, or for none).
free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 10000))
		ap_port_free "$p" && { echo "$p"; return 0; }
	done
	return 1
}

