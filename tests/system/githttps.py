#!/usr/bin/python3
"""HTTPS for the system tests: the integration tests' smart-HTTP git server (githttp.py) behind
TLS with a test certificate. Run on the host inside the container's network namespace
(nsenter -n), so that the container reaches it as https://localhost:PORT/.

Usage: githttps.py --root DIR --port PORT --cert FILE --key FILE [--ready-file FILE]
Exit status 98 if the port cannot be bound.
"""

import argparse
import http.server
import os
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import githttp  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ready-file")
    args = ap.parse_args()

    try:
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), githttp.Handler)
    except OSError as e:
        sys.stderr.write("githttps: cannot listen on 127.0.0.1:%d: %s\n" % (args.port, e))
        return 98
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.daemon_threads = True
    srv.root = os.path.abspath(args.root)
    sys.stderr.write("githttps: serving %s on https://127.0.0.1:%d (pid %d)\n"
                     % (srv.root, args.port, os.getpid()))
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            f.write("%d\n" % args.port)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
