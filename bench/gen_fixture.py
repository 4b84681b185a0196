#!/usr/bin/python3
"""Deterministic fixture repositories for bench/run.sh, as a `git fast-import` stream.

Usage: gen_fixture.py small|large|units1000|commits5000|trust5000 META_DIR > stream

Writes the stream to stdout and, into META_DIR, plain lists the bench reads from bash:
  units.list     every unit name (all are services with [Install], running in the bench)
  unit1.list     the one unit the "unit1" commit changes
  units20.list   the 20 units the "units20" commit changes
  counts         "files N units N dropins N"

Commits (fixed author/date, so the SHAs are the same on every machine):
  refs/heads/main      base: every file
  refs/bench/unit1     base + one service changed        (Description, BENCH_REV=1)
  refs/bench/config    base + caddy/Caddyfile changed     (caddy.service reloads)
  refs/bench/units20   base + 20 services changed

small: 450 files = 40 units + 5 drop-ins + caddy/Caddyfile + 404 other files
large: 50,000 files = 300 units + 20 drop-ins + caddy/Caddyfile + 49,679 other files in
       nested directories data/dNN/sN/ (<= 100 per directory: a nested layout, as
       PLATFORM.md recommends; one huge flat directory costs O(entries) on any path).
units1000: 2,000 files = 1,000 units + 20 drop-ins + caddy/Caddyfile + 979 other files.
commits5000: the small tree, but refs/bench/units20 is 5,000 commits after base (see OUTAGE).
Only systemd/ and caddy/Caddyfile are mapped by the bench config; the rest is ballast that
a good implementation never reads.
"""

import os
import sys

SIZES = {
    # name: (units, dropins, total files)
    "small": (40, 5, 450),
    "large": (300, 20, 50000),
    "large25k": (300, 20, 25000),    # first-run memory at other sizes (firstrun-sizes.sh)
    "large100k": (300, 20, 100000),
    "units1000": (1000, 20, 2000),
    "commits5000": (40, 5, 450),
    "trust5000": (40, 5, 450),  # commits5000, signed afterwards by sign_chain.py
}
# commits5000: refs/bench/units20 lies OUTAGE commits after base (each changes
# data/outage.txt; every OUTAGE/20th also changes one of the 20 units): the first tick after
# a long outage.
OUTAGE = 5000
WHO = "apbench fixture <apbench@example.invalid> 1700000000 +0000"


def unit_names(n):
    # caddy.service is the unit the Caddyfile rule reloads; the rest are plain services.
    return ["caddy.service"] + ["svc-%03d.service" % i for i in range(1, n)]


def unit_text(name, rev):
    base = name[:-len(".service")]
    if name == "caddy.service":
        reload_ = "/bin/sh -c 'echo reload >> %h/bench/log/caddy.reloads'"
    else:
        reload_ = "/bin/true"
    return (
        "[Unit]\n"
        "Description=apbench %s rev %d\n"
        "StartLimitIntervalSec=0\n"
        "\n"
        "[Service]\n"
        "ExecStart=/bin/sleep infinity\n"
        "ExecReload=%s\n"
        "Environment=BENCH_UNIT=%s BENCH_REV=%d\n"
        "\n"
        "[Install]\n"
        "WantedBy=default.target\n" % (base, rev, reload_, base, rev))


def dropin_text(i):
    return "[Service]\nEnvironment=BENCH_DROPIN=%d\n" % i


def caddyfile(rev):
    return (
        "# managed by autopull (bench fixture)\n"
        ":8080 {\n"
        "\troot * /srv/www\n"
        "\tencode gzip\n"
        "\theader X-Bench-Rev %d\n"
        "\tfile_server\n"
        "}\n" % rev)


def ballast_small(n):
    """Typical infra-repo content: inventory, docs, scripts (some executable), roles."""
    out = [("README.md", 0o644, "# infrastructure (apbench fixture)\n")]
    i = 0
    while len(out) < n:
        k = i % 4
        if k == 0:
            out.append(("inventory/host-%03d.yml" % i, 0o644,
                        "hostname: host-%03d\nrole: web\nzone: z%d\n" % (i, i % 3)))
        elif k == 1:
            out.append(("docs/page-%03d.md" % i, 0o644,
                        "# page %d\n\nSome operator notes, number %d.\n" % (i, i)))
        elif k == 2:
            out.append(("scripts/tool-%03d.sh" % i, 0o755,
                        "#!/bin/sh\necho tool %d\n" % i))
        else:
            out.append(("roles/r%02d/tasks/t-%03d.yml" % (i % 10, i), 0o644,
                        "- name: task %d\n  command: /bin/true\n" % i))
        i += 1
    return out


def ballast_large(n):
    out = [("README.md", 0o644, "# infrastructure (apbench fixture, large)\n")]
    for i in range(n - 1):
        path = "data/d%02d/s%d/f%05d.txt" % (i // 1000, (i // 100) % 10, i)
        out.append((path, 0o644, "data file %d\nline two of %d\n" % (i, i)))
    return out


def emit(w, path, mode, text):
    data = text.encode()
    w(b"M %o inline %s\ndata %d\n" % (mode, path.encode(), len(data)))
    w(data)
    w(b"\n")


def commit(w, ref, mark, msg, parent, files):
    m = msg.encode()
    w(b"commit %s\nmark :%d\nauthor %s\ncommitter %s\ndata %d\n%s\n"
      % (ref.encode(), mark, WHO.encode(), WHO.encode(), len(m), m))
    if parent:
        w(b"from :%d\n" % parent)
    for f in files:
        emit(w, *f)
    w(b"\n")


def main():
    kind, meta = sys.argv[1], sys.argv[2]
    n_units, n_dropins, total = SIZES[kind]
    units = unit_names(n_units)
    svcs = units[1:]
    dropins = [("systemd/%s.d/10-env.conf" % svcs[i], 0o644, dropin_text(i))
               for i in range(n_dropins)]
    n_ballast = total - n_units - n_dropins - 1
    ballast = ballast_large(n_ballast) if kind.startswith("large") else ballast_small(n_ballast)
    unit1 = [svcs[6]]                  # svc-007.service
    units20 = svcs[9:29]               # svc-010 .. svc-029

    base = [("systemd/" + u, 0o644, unit_text(u, 0)) for u in units]
    base += dropins + [("caddy/Caddyfile", 0o644, caddyfile(0))] + ballast
    assert len(base) == total, (len(base), total)

    out = sys.stdout.buffer
    w = out.write
    commit(w, "refs/heads/main", 1, "base: %d files" % total, None, base)
    commit(w, "refs/bench/unit1", 2, "change one unit", 1,
           [("systemd/" + u, 0o644, unit_text(u, 1)) for u in unit1])
    commit(w, "refs/bench/config", 3, "change the Caddyfile", 1,
           [("caddy/Caddyfile", 0o644, caddyfile(1))])
    if kind not in ("commits5000", "trust5000"):
        commit(w, "refs/bench/units20", 4, "change 20 units", 1,
               [("systemd/" + u, 0o644, unit_text(u, 1)) for u in units20])
    else:
        step = OUTAGE // len(units20)
        for i in range(1, OUTAGE + 1):
            files = [("data/outage.txt", 0o644, "commit %d of the outage\n" % i)]
            if i % step == 0:
                u = units20[i // step - 1]
                files.append(("systemd/" + u, 0o644, unit_text(u, 1)))
            commit(w, "refs/bench/units20", 3 + i, "outage commit %d" % i, 1 if i == 1 else 2 + i,
                   files)
    w(b"done\n")
    out.flush()

    os.makedirs(meta, exist_ok=True)
    for name, lst in (("units.list", units), ("unit1.list", unit1), ("units20.list", units20)):
        with open(os.path.join(meta, name), "w") as f:
            f.write("".join(u + "\n" for u in lst))
    with open(os.path.join(meta, "counts"), "w") as f:
        f.write("files %d units %d dropins %d\n" % (total, n_units, n_dropins))
    return 0


if __name__ == "__main__":
    sys.exit(main())
