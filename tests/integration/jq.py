#!/usr/bin/python3
"""Tiny JSON assertions for the integration tests (python3 stdlib only).

  jq.py FILE EXPR      evaluate the python expression EXPR; exit 0 if it is truthy, else
                       print the expression and the document to stderr and exit 1
  jq.py -v FILE EXPR   print the value of EXPR (a string raw, anything else as JSON)

  jq.py --serve        read requests, one JSON line each: {"file": F, "expr": E, "value": bool};
                       answer "RC N" and N lines of output (for a bash coproc: one process
                       for a whole test file instead of one per check)

FILE may be "-" for stdin. Names available in EXPR:
  d            the parsed document
  U            {unit name: entry} from d["units"] (when it is a list of objects)
  F            {path: entry} from d["files"]
  units(a)     the unit names whose action is a, e.g. units("restart") == {"web.service"}
  paths(c)     the file paths whose change is c
  json, re     the modules
Exit status 2: the file is missing or not valid JSON, or EXPR raised (the error is printed).
"""

import json
import re
import sys


def load(path):
    if path == "-":
        return sys.stdin.read()
    with open(path, encoding="utf-8") as f:
        return f.read()


def namespace(d):
    def index(key, field):
        out = {}
        items = d.get(key) if isinstance(d, dict) else None
        if isinstance(items, list):
            for it in items:
                if isinstance(it, dict) and field in it:
                    out[it[field]] = it
        return out

    U = index("units", "unit")
    F = index("files", "path")
    return {
        "d": d, "U": U, "F": F, "json": json, "re": re,
        "units": lambda action: {u for u, e in U.items() if e.get("action") == action},
        "paths": lambda change: {p for p, e in F.items() if e.get("change") == change},
    }


def check(path, expr, value_mode, out, err):
    """Evaluate one request; returns the exit status, writes like the CLI does."""
    try:
        text = load(path)
    except OSError as e:
        err.append("jq.py: %s: %s" % (path, e))
        return 2
    try:
        d = json.loads(text)
    except ValueError as e:
        err.append("jq.py: %s: not valid JSON: %s\n--- document ---\n%s" % (path, e, text[:4000]))
        return 2
    try:
        # In parentheses, so that an expression may span lines.
        value = eval("(" + expr + "\n)", namespace(d))  # test code, trusted
    except Exception as e:  # noqa: BLE001 - any error means the check did not hold
        err.append("jq.py: %s\n  %s: %s\n--- document ---\n%s"
                   % (expr, type(e).__name__, e, json.dumps(d, indent=2)[:8000]))
        return 2
    if value_mode:
        out.append(value if isinstance(value, str) else json.dumps(value))
        return 0
    if value:
        return 0
    err.append("jq.py: false: %s\n--- document ---\n%s" % (expr, json.dumps(d, indent=2)[:8000]))
    return 1


def serve():
    for line in sys.stdin:
        try:
            req = json.loads(line)
            out, err = [], []
            rc = check(req["file"], req["expr"], bool(req.get("value")), out, err)
        except Exception as e:  # noqa: BLE001 - a bad request must not kill the server
            rc, out, err = 2, [], ["jq.py: bad request: %s" % e]
        lines = "\n".join(out + err).splitlines()
        sys.stdout.write("%d %d\n" % (rc, len(lines)))
        for l in lines:
            sys.stdout.write(l + "\n")
        sys.stdout.flush()
    return 0


def main(argv):
    if argv[1:] == ["--serve"]:
        return serve()
    value_mode = len(argv) > 1 and argv[1] == "-v"
    args = argv[2:] if value_mode else argv[1:]
    if len(args) != 2:
        sys.stderr.write(__doc__)
        return 2
    out, err = [], []
    rc = check(args[0], args[1], value_mode, out, err)
    for l in out:
        print(l)
    for l in err:
        sys.stderr.write(l + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
