#!/usr/bin/python3
"""Observability checks for the autopull integration tests (stdlib, python3-yaml and
python3-prometheus-client).

  obs.py query URL EXPR [--at SECONDS] [--wait SECONDS] [--text]
      An instant query against VictoriaMetrics (URL/api/v1/query) at now + --at; prints one
      JSON line {"labels": {...}, "value": N} per series (with --text: name{labels} value),
      sorted. --wait polls (0.25 s) until the result is not empty.
  obs.py up URL
      Exit 0 when URL answers 2xx within a second.
  obs.py alerts URL [HOST]
      vmalert's alerts (URL/api/v1/alerts), those of HOST only if given: one
      "ALERTNAME<TAB>UNIT<TAB>STATE" line each (UNIT is "-" for host-wide alerts), sorted.
      Alerts labelled canary (the test's own rule) are left out.
  obs.py seen URL HOST UNIT
      Exit 0 when vmalert's canary alert for HOST and UNIT fires: its queries see the series.
  obs.py evaluated URL SINCE
      Exit 0 when vmalert (URL/api/v1/rules) evaluated every rule after Unix time SINCE.
  obs.py rule-errors URL
      Rules whose last evaluation failed (URL/api/v1/rules), one "RULE<TAB>ERROR" line each.
  obs.py notified LOG
      The alerts a notifier receiver (receiver.py) got: "ALERTNAME<TAB>UNIT" lines, sorted,
      unique.
  obs.py panels URL DASHBOARD UNIT
      Runs every panel query of the dashboard against VictoriaMetrics, with $host = .* and
      $unit = UNIT; prints each query's series count, exits 1 naming any query that fails.
  obs.py dashboard RULES DASHBOARD
      What can be checked without a Grafana: panel ids unique, every panel and query on the
      one data source variable, refIds unique per panel, every $variable defined, panels
      inside the 24 columns and not overlapping, every alert of RULES named in the
      description of a panel that shows it. Prints one line per problem, exits 1 if any.
  obs.py panel-expr DASHBOARD TITLE
      The query (first target) of the panel with that title.
  obs.py names RULES DASHBOARD METRICS
      Every metric name used by a rule expression or a dashboard query must be a sample name
      in the metrics text file; prints the names, exits 1 naming any that is missing.
"""

import json
import re
import signal
import sys
import time
import urllib.parse
import urllib.request

TIMEOUT = 10


def get_json(url, params=None):
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=TIMEOUT) as r:
        return json.load(r)


def cmd_query(args):
    url, expr = args[0], args[1]
    at = float(args[args.index("--at") + 1]) if "--at" in args else 0.0
    wait = float(args[args.index("--wait") + 1]) if "--wait" in args else 0.0
    deadline = time.time() + wait
    while True:
        d = get_json(url + "/api/v1/query", {"query": expr, "time": "%.3f" % (time.time() + at)})
        res = d["data"]["result"]
        if res or time.time() >= deadline:
            break
        time.sleep(0.25)
    if "--text" in args:
        lines = ["%s{%s} %s" % (r["metric"].get("__name__", ""), ",".join(
            '%s="%s"' % kv for kv in sorted(r["metric"].items()) if kv[0] != "__name__"),
            r["value"][1]) for r in res]
    else:
        lines = [json.dumps({"labels": r["metric"], "value": float(r["value"][1])}, sort_keys=True)
                 for r in res]
    print("\n".join(sorted(lines)))


def cmd_up(args):
    try:
        with urllib.request.urlopen(args[0], timeout=1):
            sys.exit(0)
    except (OSError, ValueError):
        sys.exit(1)


def cmd_alerts(args):
    d = get_json(args[0] + "/api/v1/alerts")
    out = {"%s\t%s\t%s" % (a["name"], a["labels"].get("unit", "-"), a["state"])
           for a in d["data"]["alerts"] or []
           if "canary" not in a["labels"] and (len(args) < 2 or a["labels"].get("host") == args[1])}
    print("\n".join(sorted(out)))


def cmd_seen(args):
    d = get_json(args[0] + "/api/v1/alerts")
    sys.exit(0 if any("canary" in a["labels"] and a["state"] == "firing" and
                      (a["labels"].get("host"), a["labels"].get("unit")) == (args[1], args[2])
                      for a in d["data"]["alerts"] or []) else 1)


def rfc3339(t):
    """vmalert's "2026-12-04T13:56:40.415415642Z" as Unix time (nanoseconds cut to micro)."""
    from datetime import datetime, timezone
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$", t)
    if not m:
        return 0.0
    whole = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return whole.timestamp() + float("0." + (m.group(2) or "0"))


def cmd_evaluated(args):
    d = get_json(args[0] + "/api/v1/rules")
    since = float(args[1])
    last = [rfc3339(r.get("lastEvaluation", "")) for g in d["data"]["groups"] for r in g["rules"]]
    sys.exit(0 if last and min(last) > since else 1)


def cmd_rule_errors(args):
    d = get_json(args[0] + "/api/v1/rules")
    for g in d["data"]["groups"]:
        for r in g["rules"]:
            if r.get("lastError"):
                print("%s\t%s" % (r["name"], r["lastError"]))


def cmd_notified(args):
    out = set()
    with open(args[0]) as f:
        for line in f:
            for a in json.loads(json.loads(line)["body"] or "[]"):
                labels = a.get("labels", {})
                if "canary" in labels:
                    continue
                out.add("%s\t%s" % (labels.get("alertname"), labels.get("unit", "-")))
    print("\n".join(sorted(out)))


# --- metric names in PromQL/MetricsQL ----------------------------------------------------

KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan"}
IDENT = re.compile(r"(?<![\w$:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")


def metric_names(expr):
    """The metric names an expression selects. Strings, label matchers, range selectors and
    the label lists of by/on/... are removed first; what is left and is not a function call,
    a keyword or a number is a metric name."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\$\{?\w+\}?", " ", e)
    names = set()
    for m in IDENT.finditer(e):
        if m.group(2) or m.group(1).lower() in KEYWORDS:
            continue
        names.add(m.group(1))
    return names


def dashboard_exprs(dash):
    exprs = []
    for p in dash.get("panels", []):
        for t in p.get("targets", []):
            if t.get("expr"):
                exprs.append(("panel '%s'" % p.get("title"), t["expr"]))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.match(r"\s*label_values\((.*),\s*\w+\)\s*$", q or "")
        if v.get("type") == "query" and m:
            exprs.append(("variable '%s'" % v["name"], m.group(1)))
        elif v.get("type") == "query":
            exprs.append(("variable '%s'" % v["name"], q))
    return exprs


def cmd_panels(args):
    url, dash, unit = args[0], json.load(open(args[1])), args[2]
    bad = 0
    for where, expr in dashboard_exprs(dash):
        q = expr.replace("$host", ".*").replace("$unit", unit)
        try:
            d = get_json(url + "/api/v1/query", {"query": q, "time": "%.3f" % time.time()})
            print("%s: %d series" % (where, len(d["data"]["result"])))
        except (OSError, ValueError, KeyError) as e:
            print("%s: %r failed: %s" % (where, q, e))
            bad += 1
    sys.exit(1 if bad else 0)


BUILTIN_VARS = {"__interval", "__interval_ms", "__range", "__range_s", "__rate_interval",
                "__from", "__to", "__name", "__dashboard"}
VAR = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")


def dashboard_problems(rules, dash):
    out = []
    variables = {v["name"] for v in dash.get("templating", {}).get("list", [])}
    ds_vars = [v for v in dash.get("templating", {}).get("list", []) if v.get("type") == "datasource"]
    if len(ds_vars) != 1 or ds_vars[0].get("query") != "prometheus":
        out.append("not exactly one data source variable of type prometheus")
    want_ds = {"type": "prometheus", "uid": "${%s}" % ds_vars[0]["name"]} if ds_vars else None
    ids, cells = {}, {}
    for p in dash.get("panels", []):
        where = "panel %s '%s'" % (p.get("id"), p.get("title"))
        for key in ("id", "type", "title", "gridPos"):
            if key not in p:
                out.append("%s: no %s" % (where, key))
        if p.get("id") in ids:
            out.append("%s: id also used by '%s'" % (where, ids[p["id"]]))
        ids[p.get("id")] = p.get("title")
        g = p.get("gridPos", {})
        if g.get("x", 0) + g.get("w", 0) > 24 or g.get("w", 0) < 1 or g.get("h", 0) < 1:
            out.append("%s: gridPos %r outside the 24 columns" % (where, g))
        for x in range(g.get("x", 0), g.get("x", 0) + g.get("w", 0)):
            for y in range(g.get("y", 0), g.get("y", 0) + g.get("h", 0)):
                if (x, y) in cells:
                    out.append("%s: overlaps '%s' at %d,%d" % (where, cells[(x, y)], x, y))
                    break
                cells[(x, y)] = p.get("title")
            else:
                continue
            break
        if p.get("type") == "row":
            if p.get("panels"):
                out.append("%s: a collapsed row (its panels are not checked)" % where)
            if p.get("repeat") and p["repeat"] not in variables:
                out.append("%s: repeats over undefined $%s" % (where, p["repeat"]))
        elif p.get("datasource") != want_ds:
            out.append("%s: data source %r, not %r" % (where, p.get("datasource"), want_ds))
        refids = [t.get("refId") for t in p.get("targets", [])]
        if len(set(refids)) != len(refids) or None in refids:
            out.append("%s: refIds %r not unique" % (where, refids))
        for t in p.get("targets", []):
            if t.get("datasource", want_ds) != want_ds:
                out.append("%s: query %s on data source %r" % (where, t.get("refId"), t["datasource"]))
            if not t.get("expr"):
                out.append("%s: query %s has no expr" % (where, t.get("refId")))
        texts = [p.get("title", ""), p.get("description", "")] + \
            [t.get(k, "") for t in p.get("targets", []) for k in ("expr", "legendFormat")]
        for text in texts:
            for m in VAR.finditer(text):
                name = m.group(1) or m.group(2)
                if name not in variables and name not in BUILTIN_VARS:
                    out.append("%s: $%s is not a variable of the dashboard" % (where, name))
    described = " ".join(p.get("description", "") for p in dash.get("panels", []))
    for g in rules["groups"]:
        for r in g["rules"]:
            if r.get("alert") and not re.search(r"\b%s\b" % re.escape(r["alert"]), described):
                out.append("alert %s: no panel's description names it" % r["alert"])
    return out


def cmd_dashboard(args):
    import yaml
    problems = dashboard_problems(yaml.safe_load(open(args[0])), json.load(open(args[1])))
    print("\n".join(problems) if problems else "dashboard: no problem found")
    sys.exit(1 if problems else 0)


def cmd_panel_expr(args):
    for p in json.load(open(args[0])).get("panels", []):
        if p.get("title") == args[1] and p.get("targets"):
            print(p["targets"][0]["expr"])
            return
    sys.exit("no panel titled %r with a query" % args[1])


def cmd_names(args):
    import yaml
    from prometheus_client.parser import text_string_to_metric_families
    rules = yaml.safe_load(open(args[0]))
    dash = json.load(open(args[1]))
    exported = set()
    for fam in text_string_to_metric_families(open(args[2]).read()):
        exported.update(s.name for s in fam.samples)
    used = [("rule '%s'" % (r.get("alert") or r.get("record")), r["expr"])
            for g in rules["groups"] for r in g["rules"]] + dashboard_exprs(dash)
    bad = 0
    seen = set()
    for where, expr in used:
        names = metric_names(expr)
        if not names:
            print("%s: no metric name found in %r" % (where, expr))
            bad += 1
        for n in sorted(names):
            seen.add(n)
            if not n.startswith(("systemd_", "autopull_")):
                print("%s: %r is not one of autopull's metrics (in %r)" % (where, n, expr))
                bad += 1
            elif n not in exported:
                print("%s: %s is not exported" % (where, n))
                bad += 1
    print("%d expressions, %d metric names: %s" % (len(used), len(seen), " ".join(sorted(seen))))
    sys.exit(1 if bad else 0)


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `obs.py query ... | grep -q` stops reading
    cmds = {"query": cmd_query, "up": cmd_up, "alerts": cmd_alerts, "evaluated": cmd_evaluated,
            "seen": cmd_seen, "rule-errors": cmd_rule_errors, "notified": cmd_notified,
            "names": cmd_names, "panels": cmd_panels, "dashboard": cmd_dashboard,
            "panel-expr": cmd_panel_expr}
    if len(sys.argv) < 3 or sys.argv[1] not in cmds:
        sys.stderr.write(__doc__)
        sys.exit(2)
    cmds[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
