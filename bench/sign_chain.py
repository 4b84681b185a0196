#!/usr/bin/python3
"""Signs a fixture's history with an SSH key, for the bench's trust: rows.

Usage: sign_chain.py GITDIR KEY BASE_REF TIP_REF

Rewrites the commit BASE_REF names and every commit of BASE_REF..TIP_REF (oldest first) as
the same commit with a `gpgsig` header (ssh-keygen -Y sign -n git, what git writes with
gpg.format=ssh), its parents mapped to the rewritten ones, then points both refs at the
rewritten commits. Trees, authors, dates and messages stay as they are. git fast-import
(2.39) cannot write signed commits, and `git commit -S` per commit costs a git and an
ssh-keygen process each: here it is one ssh-keygen per commit and one git for all objects.
"""

import hashlib
import os
import subprocess
import sys
import tempfile


def git(gitdir, *args, **kw):
    return subprocess.run(["git", "--git-dir=" + gitdir] + list(args), check=True,
                          stdout=subprocess.PIPE, **kw).stdout


def read_commits(gitdir, shas):
    out = git(gitdir, "cat-file", "--batch", input=b"".join(s.encode() + b"\n" for s in shas))
    commits, pos = [], 0
    for sha in shas:
        nl = out.index(b"\n", pos)
        head = out[pos:nl].split()
        assert head[0].decode() == sha and head[1] == b"commit", head
        size = int(head[2])
        commits.append(out[nl + 1:nl + 1 + size])
        pos = nl + 1 + size + 1
    return commits


def sign(key, payload, tmp):
    path = os.path.join(tmp, "payload")
    with open(path, "wb") as f:
        f.write(payload)
    if os.path.exists(path + ".sig"):
        os.unlink(path + ".sig")
    subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-n", "git", "-f", key, path],
                   check=True, stdout=subprocess.DEVNULL)
    with open(path + ".sig", "rb") as f:
        return f.read().rstrip(b"\n")


def main():
    gitdir, key, base_ref, tip_ref = sys.argv[1:5]
    base = git(gitdir, "rev-parse", base_ref).decode().strip()
    chain = git(gitdir, "rev-list", "--reverse", "--topo-order",
                "%s..%s" % (base_ref, tip_ref)).decode().split()
    shas = [base] + chain
    new = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, (sha, raw) in enumerate(zip(shas, read_commits(gitdir, shas))):
            head, msg = raw.split(b"\n\n", 1)
            lines = []
            for line in head.split(b"\n"):
                if line.startswith(b"parent "):
                    line = b"parent " + new[line[7:].decode()].encode()
                lines.append(line)
            payload = b"\n".join(lines) + b"\n\n" + msg
            sig = sign(key, payload, tmp)
            # The header goes after the committer line: continuation lines start with a space.
            signed = b"\n".join(lines) + b"\ngpgsig " + sig.replace(b"\n", b"\n ") + b"\n\n" + msg
            new[sha] = hashlib.sha1(b"commit %d\0" % len(signed) + signed).hexdigest()
            path = os.path.join(tmp, "c%05d" % i)
            with open(path, "wb") as f:
                f.write(signed)
            paths.append(path)
        written = git(gitdir, "hash-object", "-w", "-t", "commit", "--stdin-paths",
                      input="".join(p + "\n" for p in paths).encode()).decode().split()
    want = [new[s] for s in shas]
    if written != want:
        sys.exit("sign_chain: git wrote other objects than computed")
    git(gitdir, "update-ref", base_ref, new[base])
    git(gitdir, "update-ref", tip_ref, new[shas[-1]])
    print("signed %d commits" % len(shas))
    return 0


if __name__ == "__main__":
    sys.exit(main())
