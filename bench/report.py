#!/usr/bin/python3
"""Turns the samples of bench/run.sh into the results table (markdown + JSON) and prints it.

Input: one JSON line per measured run (see tick() in run.sh): mode (time|hwm), repo,
scenario, transport, tool, round, ok, m = aptime's result {ms, rc, maxrss_kb[, hwm_kb]}.
Ratios are computed per round (autopull's run divided by the other tool's run of the same
round, scenario, repo and transport) and the median of those is reported, so slow drift of
the machine cancels out. Targets are evaluated from those medians.
"""

import argparse
import json
import os
import re
import statistics
import sys

SCENARIOS = [
    ("noop", "no-op (remote unchanged)"),
    ("unit1", "1 service unit changed"),
    ("config", "1 config file changed (reload)"),
    ("units20", "20 units changed, one commit"),
    ("first", "first run, empty host"),
]
TOOLS = ["autopull", "autopull-settle", "shell", "floor", "git-ls-remote", "git-fetch"]
FETCH_LABEL = {"noop": "git fetch (no-op)", "first": "git fetch (full, empty mirror)"}
# The column each ratio is taken against.
AGAINST = {"floor": "floor", "shell": "shell", "git": "git-fetch"}
TARGETS = [
    # (scenario, against, limit, text, repos: None = every repo)
    ("noop", "git", 0.8, "no-op tick <= 0.8x `git fetch` no-op", None),
    ("unit1", "shell", 0.6, "one-unit tick <= 0.6x shell script", None),
    ("unit1", "floor", 1.3, "one-unit tick <= 1.3x floor", None),
    ("units20", "shell", 0.5, "20-unit tick <= 0.5x shell script", None),
    ("units20", "floor", 1.5, "20-unit tick <= 1.5x floor", None),
    ("config", "shell", 0.4, "config-reload tick <= 0.4x shell script", None),
    ("first", "shell", 0.5, "large first run <= 0.5x shell script", ("large",)),
]
RSS_LIMIT_KB = 16 * 1024
IR_LIMIT = 1.5
REPOS = ["small", "large", "units1000", "commits5000", "trust5000"]
LINEAR_LIMIT = 25.0  # bench/linear.c's LIMIT


# Functions whose inclusive cost the report breaks out of the callgrind totals.
CG_PARTS = [
    ("ap_engine_apply", "the whole run after main()"),
    ("git_libgit2_init", "libgit2 init (parses the CA bundle with mbedTLS)"),
    ("ap_repo_diff", "tree diff applied..tip"),
    ("ap_repo_read_blob", "blob reads"),
    ("ap_plan_build", "the planner"),
    ("ap_bus_open", "connect to the manager"),
    ("ap_bus_list_units", "unit states for the plan"),
    ("ap_watch_heartbeat", "guard heartbeat (samples the watched units)"),
    ("ap_config_load", "config"),
    ("_dl_start", "dynamic linking"),
]


def cg_breakdown(cg_dir, repo):
    """Inclusive Ir per function of CG_PARTS from callgrind_annotate --inclusive=yes."""
    path = os.path.join(cg_dir or "", "%s.incl.txt" % repo)
    out = {}
    if not os.path.exists(path):
        return out
    names = dict(CG_PARTS)
    # "  276,214,213 ( 3.35%)  /work/main/src/repo.c:ap_repo_diff [/tmp/.../autopull]",
    # sorted by cost: the first line of a function is its whole inclusive cost.
    pat = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S+)")
    for line in open(path):
        m = pat.match(line)
        if not m:
            continue
        fn = m.group(2).rsplit(":", 1)[-1]
        if fn in names and fn not in out:
            out[fn] = int(m.group(1).replace(",", ""))
    return out


def tool_label(tool, scenario):
    if tool == "autopull":
        return "**autopull**"
    if tool == "autopull-settle":
        return "autopull, default guard.settle 10 s (1 run)"
    if tool == "shell":
        return "shell baseline"
    if tool == "floor":
        return "floor (fetch + reload + jobs)"
    if tool == "git-ls-remote":
        return "git ls-remote"
    return FETCH_LABEL.get(scenario, "git fetch (incremental)")


def tick_label(label, repo, scenario):
    if repo == "commits5000" and scenario == "units20":
        return "20 units changed over 5,000 commits (long outage)"
    if repo == "trust5000" and scenario == "units20":
        return "the same over 5,000 signed commits, `trust:` checks every one"
    return label[scenario]


def load_jsonl(path):
    out = []
    if path and os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    out.append(json.loads(line))
    return out


def fmt_ms(v):
    return "%.1f" % v if v < 100 else "%.0f" % v


def fmt_x(v):
    return "—" if v is None else "%.2f×" % v


def write_json(path, result):
    """Indented, except the raw samples: one compact line each (the file stays small and
    diffs stay readable)."""
    samples = result.get("samples", [])
    head = json.dumps(dict(result, samples=[]), indent=1, sort_keys=True)
    lines = ",\n".join("  " + json.dumps(s, sort_keys=True, separators=(",", ":")) for s in samples)
    body = head.replace('"samples": []', '"samples": [\n' + lines + "\n ]" if samples else '"samples": []', 1)
    json.loads(body)  # still valid JSON
    with open(path, "w") as f:
        f.write(body + "\n")


def main():
    ap = argparse.ArgumentParser()
    for a in ("samples", "env", "callgrind", "callgrind-dir", "failures", "linear", "md", "json"):
        ap.add_argument("--" + a)
    args = ap.parse_args()

    samples = load_jsonl(args.samples)
    env = json.load(open(args.env)) if args.env and os.path.exists(args.env) else {}
    failures = []
    if args.failures and os.path.exists(args.failures):
        failures = [l.rstrip("\n") for l in open(args.failures) if l.strip()]
    timed = [s for s in samples if s["mode"] == "time" and s["scenario"] != "overhead"]
    hwm = [s for s in samples if s["mode"] == "hwm"]
    overhead = [s for s in samples if s["scenario"] == "overhead"]

    # ms of each run, by (repo, transport, scenario, tool) and by round
    runs = {}
    for s in timed:
        key = (s["repo"], s["transport"], s["scenario"], s["tool"])
        runs.setdefault(key, {})[s["round"]] = s

    def ratio(repo, tr, sc, num, den):
        a, b = runs.get((repo, tr, sc, num), {}), runs.get((repo, tr, sc, den), {})
        per_round = [a[r]["m"]["ms"] / b[r]["m"]["ms"] for r in a if r in b and b[r]["m"]["ms"] > 0]
        return statistics.median(per_round) if per_round else None

    repos = [r for r in REPOS if any(k[0] == r for k in runs)]
    transports = [t for t in ("file", "http") if any(k[1] == t for k in runs)]
    rows = []
    for repo in repos:
        for tr in transports:
            for sc, sc_label in SCENARIOS:
                for tool in TOOLS:
                    rs = runs.get((repo, tr, sc, tool))
                    if not rs:
                        continue
                    ms = [s["m"]["ms"] for s in rs.values()]
                    row = {
                        "repo": repo, "transport": tr, "scenario": sc, "tool": tool,
                        "runs": len(ms), "failed": sum(1 for s in rs.values() if not s["ok"]),
                        "median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms),
                        "peak_rss_kb": max(s["m"]["maxrss_kb"] for s in rs.values()),
                        "x_floor": None, "x_shell": None, "x_git": None,
                    }
                    if tool in ("autopull", "autopull-settle", "shell"):
                        row["x_floor"] = ratio(repo, tr, sc, tool, "floor")
                        row["x_git"] = ratio(repo, tr, sc, tool, "git-fetch")
                    if tool in ("autopull", "autopull-settle"):
                        row["x_shell"] = ratio(repo, tr, sc, tool, "shell")
                    rows.append(row)

    # Targets
    targets = []
    quick = env.get("quick", False)
    for sc, against, limit, text, only in TARGETS:
        for repo in repos:
            if only and repo not in only:
                continue
            for tr in transports:
                v = ratio(repo, tr, sc, "autopull", AGAINST[against])
                if v is None:
                    continue
                targets.append({"target": text, "where": "%s repo, %s" % (repo, tr),
                                "value": round(v, 3), "limit": limit, "met": v <= limit})
    cg = {c["repo"]: c["ir"] for c in load_jsonl(args.callgrind)}
    cg_ratio = cg["large"] / cg["small"] if "small" in cg and "large" in cg else None
    if cg_ratio is not None:
        targets.append({"target": "one-change plan on 50k files <= 1.5x instructions of 450 files",
                        "where": "callgrind Ir, dry run --no-fetch", "value": round(cg_ratio, 3),
                        "limit": IR_LIMIT, "met": cg_ratio <= IR_LIMIT})
    # bench/linear's table: "| list | N | ms at N | ms at 10 N | ratio | verdict |"
    linear_md = open(args.linear).read() if args.linear and os.path.exists(args.linear) else ""
    linear = []
    for line in linear_md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and not cells[0].startswith(("list", "---", "self-check")):
            try:
                linear.append({"list": cells[0], "n": int(cells[1]), "ratio": float(cells[4])})
            except ValueError:
                pass
    for l in linear:
        targets.append({"target": "building 10 N entries <= %.0fx the time of N (linear): %s"
                                  % (LINEAR_LIMIT, l["list"]),
                        "where": "bench/linear, N = %d" % l["n"], "value": l["ratio"],
                        "limit": LINEAR_LIMIT, "met": l["ratio"] <= LINEAR_LIMIT, "unit": "ratio"})
    own = [s["m"].get("hwm_kb", -1) for s in hwm if s["m"].get("hwm_kb", -1) > 0]
    tree = [s["m"]["maxrss_kb"] for s in timed if s["tool"] == "autopull"]
    if own:
        targets.append({"target": "peak RSS <= 16 MB (autopull process, VmHWM)",
                        "where": "max over all tick kinds", "value": max(own),
                        "limit": RSS_LIMIT_KB, "met": max(own) <= RSS_LIMIT_KB})
    if tree:
        targets.append({"target": "peak RSS <= 16 MB (process tree incl. systemd-analyze child, "
                                  "as /usr/bin/time %M)",
                        "where": "max over all timed autopull runs", "value": max(tree),
                        "limit": RSS_LIMIT_KB, "met": max(tree) <= RSS_LIMIT_KB})

    ov = {}
    for s in overhead:
        ov.setdefault(s["tool"], []).append(s["m"]["ms"])
    ov_med = {k: statistics.median(v) for k, v in ov.items()}

    # ---- markdown
    L = []
    L.append("# autopull bench results")
    L.append("")
    L.append("%s run, %s round(s), %s; %s CPU(s) (%s), kernel %s; git %s, systemd %s, "
             "libgit2 %s; autopull %s%s; load average at start %s." % (
                 "Quick (smoke)" if quick else "Full", env.get("rounds"), env.get("date"),
                 env.get("cpus"), env.get("cpu"), env.get("kernel"), env.get("git"),
                 env.get("systemd"), env.get("libgit2"), env.get("autopull_commit"),
                 " (+ uncommitted changes in src/)" if env.get("autopull_dirty") else "",
                 env.get("loadavg")))
    L.append("")
    L.append("Wall time per run in ms (median / min / max over rounds). Peak RSS = ru_maxrss "
             "from wait4, as `/usr/bin/time -f %M` (largest of the process and its children). "
             "× columns: median over rounds of the per-round ratio of this tool's run to the "
             "floor (bench/floor.c: `git fetch` of the change, then one daemon-reload and the "
             "tick's restarts/reloads/starts straight over the bus, the files put in place "
             "untimed), to the shell baseline and to `git fetch` alone; below 1 = faster. "
             "Every git runs with `-c protocol.version=0`, the protocol libgit2 speaks.")
    if env.get("note"):
        L.append("")
        L.append("**%s**" % env["note"])
    L.append("")
    L.append("| repo | transport | tick | tool | median ms | min | max | peak RSS MB | × floor | × shell | × git fetch | runs ok |")
    L.append("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    label = dict(SCENARIOS)
    for r in rows:
        L.append("| %s | %s | %s | %s | %s | %s | %s | %.1f | %s | %s | %s | %d/%d |" % (
            r["repo"], r["transport"], tick_label(label, r["repo"], r["scenario"]), tool_label(r["tool"], r["scenario"]),
            fmt_ms(r["median_ms"]), fmt_ms(r["min_ms"]), fmt_ms(r["max_ms"]),
            r["peak_rss_kb"] / 1024, fmt_x(r["x_floor"]), fmt_x(r["x_shell"]), fmt_x(r["x_git"]),
            r["runs"] - r["failed"], r["runs"]))
    L.append("")
    L.append("## Targets%s" % (" (one round: indicative only)" if quick else ""))
    L.append("")
    L.append("| target | where | measured | limit | |")
    L.append("|---|---|---:|---:|---|")
    for t in targets:
        if t.get("unit") == "ratio":
            val, lim = "%.1f" % t["value"], "%.0f" % t["limit"]
        elif "RSS" in t["target"]:
            val, lim = "%.1f MB" % (t["value"] / 1024), "%.0f MB" % (t["limit"] / 1024)
        else:
            val, lim = "%.2f×" % t["value"], "%.1f×" % t["limit"]
        L.append("| %s | %s | %s | %s | %s |" % (t["target"], t["where"], val, lim,
                                                  "met" if t["met"] else "**missed**"))
    if cg_ratio is None:
        L.append("| one-change plan on 50k files <= 1.5x instructions of 450 files | "
                 "callgrind | not measured%s | 1.5× | — |" % (" (quick run)" if quick else ""))
    L.append("")
    if linear_md:
        L.append("## Growing lists: linear?")
        L.append("")
        L.extend(linear_md.rstrip("\n").splitlines())
        L.append("")
    if cg:
        L.append("## Instructions (callgrind)")
        L.append("")
        L.append("`autopull --user --dry-run --no-fetch --json`, plan of a one-unit change "
                 "(Ir = instructions executed, whole process incl. libgit2/TLS init):")
        L.append("")
        L.append("| repo | files | Ir |")
        L.append("|---|---:|---:|")
        for repo, n in (("small", "450"), ("large", "50,000")):
            if repo in cg:
                L.append("| %s | %s | %s |" % (repo, n, format(cg[repo], ",")))
        if cg_ratio is not None:
            L.append("| ratio large/small | | %.3f |" % cg_ratio)
        L.append("")
        parts = {repo: cg_breakdown(args.callgrind_dir, repo) for repo in cg}
        if any(parts.values()):
            L.append("Where the instructions go (inclusive Ir of a function and its callees; "
                     "parts overlap where one calls another):")
            L.append("")
            L.append("| function | what | " + " | ".join(r for r in ("small", "large") if r in cg)
                     + " |")
            L.append("|---|---|" + "---:|" * len([r for r in ("small", "large") if r in cg]))
            for fn, what in CG_PARTS:
                vals = [parts.get(r, {}).get(fn) for r in ("small", "large") if r in cg]
                if any(v is not None for v in vals):
                    L.append("| `%s` | %s | %s |" % (fn, what, " | ".join(
                        "—" if v is None else format(v, ",") for v in vals)))
            L.append("")
    if hwm:
        L.append("## Peak RSS of the autopull process alone")
        L.append("")
        L.append("VmHWM at exit (ptrace exit stop), one run per tick kind; the process-tree "
                 "number next to it includes the `systemd-analyze verify` child autopull "
                 "starts for changed unit files.")
        L.append("")
        L.append("| repo | transport | tick | autopull VmHWM MB | tree peak MB |")
        L.append("|---|---|---|---:|---:|")
        for s in hwm:
            L.append("| %s | %s | %s | %.1f | %.1f |" % (
                s["repo"], s["transport"], tick_label(label, s["repo"], s["scenario"]),
                s["m"].get("hwm_kb", 0) / 1024, s["m"]["maxrss_kb"] / 1024))
        L.append("")
    L.append("## Notes")
    L.append("")
    if "nsenter-wrapper" in ov_med:
        L.append("- The shell baseline (bench/baseline.sh) runs as the unit owner inside the user "
                 "manager's mount namespace, because `systemctl` only works there on this machine "
                 "(PID 1 is not systemd). One worker (bench/shell-worker.sh) is started there "
                 "once through `nsenter -t <manager> -m setpriv … env -i …` and runs every "
                 "baseline tick, so the baseline's times do not include that wrapper "
                 "(%.1f ms per start, median of `… /bin/true`, measured once per round)."
                 % ov_med["nsenter-wrapper"])
    if "exec-true" in ov_med:
        L.append("- Starting any process here costs %.1f ms (median of `/bin/true` through the "
                 "same launcher); every row includes one such start." % ov_med["exec-true"])
    L.append("- The bench config sets `guard: {settle: 0s}` for autopull: the default settle "
             "window watches every (re)started unit for 10 s before the commit is recorded, a "
             "deliberate health check the shell baseline does not have. The row \"default "
             "guard.settle\" (full run only) shows one tick with it.")
    L.append("- The floor (bench/floor.c) is the least a deploy tool must do: `git fetch` into a "
             "bare mirror (at base; empty for the first run), then over the manager's private "
             "socket one Reload (daemon-reload, when a unit changed) and RestartUnit / ReloadUnit "
             "/ StartUnit \"replace\" for the tick's units, waiting for every JobRemoved. The "
             "tick's files are put in place before it runs (untimed), so it installs, validates "
             "and records nothing. It passes the same unit checks as autopull. `git fetch` alone "
             "and, for the no-op, `git ls-remote` are shown as well.")
    L.append("- The starting state is what autopull leaves after deploying base to an empty host "
             "(its state dir copied back before every run). Before a non-no-op apply autopull's "
             "guard samples the watched units over D-Bus (`guard.watch`, plus units of earlier "
             "applies, depending on the version); that cost is inside its times and grows with "
             "the number of units sampled.")
    L.append("- The baseline does not validate unit files; autopull runs `systemd-analyze verify` "
             "on every changed unit file before it touches the host (one child process per "
             "apply), and writes files atomically with fsync, a journal and backups. Those costs "
             "are inside autopull's times.")
    L.append("- Every run starts from a restored state (untimed). After every run the bench "
             "checked: exit code, installed files = the commit (content, mode, owner), exactly "
             "the expected units got a new InvocationID and run the new definition, one "
             "ExecReload for the config change, and the recorded commit.")
    n_runs = len(timed) + len(hwm)
    L.append("- Checks: %d runs, %d failed check(s)." % (n_runs, len(failures)))
    for f in failures[:20]:
        L.append("  - `%s`" % f.replace("`", "'")[:300])
    L.append("")
    if args.callgrind_dir and "large" in cg:
        top = os.path.join(args.callgrind_dir, "large.top.txt")
        if os.path.exists(top):
            lines = [l.rstrip() for l in open(top)]
            # the function table starts after the "Ir  file:function" header line
            start = next((i for i, l in enumerate(lines) if "file:function" in l), None)
            if start is not None:
                body = [l for l in lines[start + 2:] if l.strip()][:12]
                L.append("Top self-cost functions, large repo dry-run plan (callgrind_annotate):")
                L.append("")
                L.append("```")
                L.extend(body)
                L.append("```")
                L.append("")
    md = "\n".join(L)

    result = {"env": env, "rows": rows, "targets": targets,
              "callgrind": {"ir": cg, "ratio_large_small": cg_ratio,
                            "inclusive": {repo: cg_breakdown(args.callgrind_dir, repo) for repo in cg}},
              "overhead_median_ms": ov_med, "linear": linear,
              "hwm": [{"repo": s["repo"], "transport": s["transport"], "scenario": s["scenario"],
                       "hwm_kb": s["m"].get("hwm_kb"), "tree_maxrss_kb": s["m"]["maxrss_kb"]}
                      for s in hwm],
              "checks": {"runs": n_runs, "failed": len(failures), "failures": failures},
              "samples": samples}
    os.makedirs(os.path.dirname(os.path.abspath(args.md)), exist_ok=True)
    with open(args.md, "w") as f:
        f.write(md + "\n")
    write_json(args.json, result)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
