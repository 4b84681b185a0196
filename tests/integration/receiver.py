#!/usr/bin/python3
"""A recording HTTP(S) endpoint for the autopull integration tests (python3 stdlib only).

Every POST is appended to --log as one JSON line {"path", "headers", "body"} and answered
with --status (204 by default); with --echo the answer's body is the request line and
headers (an endpoint that quotes the request, credentials included). With --hang it
accepts connections and never answers (a push target that times out). With --tls CERT KEY
it speaks HTTPS. It stands in for a metrics endpoint (guard.push) and for vmalert's
notifier (Alertmanager's /api/v2/alerts). Serves only 127.0.0.1.

Usage: receiver.py --port PORT --log FILE [--status N] [--echo] [--hang] [--tls CERT KEY]
                   [--ready-file FILE]
Exit status 98 if the port cannot be bound.
"""

import argparse
import http.server
import json
import ssl
import sys
import threading
import time

MAX_BODY = 16 * 1024 * 1024


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "aptest-receiver/1"

    def log_message(self, fmt, *args):
        sys.stderr.write("receiver: %s %s\n" % (self.address_string(), fmt % args))

    def do_POST(self):
        opts = self.server.opts
        if opts.hang:
            time.sleep(3600)
            return
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(n, MAX_BODY)) if n > 0 else b""
        entry = {"path": self.path, "headers": dict(self.headers.items()),
                 "body": body.decode("utf-8", "replace")}
        with self.server.lock, open(opts.log, "a") as f:
            f.write(json.dumps(entry) + "\n")
        answer = b""
        if opts.echo:
            answer = (self.requestline + "\n" + str(self.headers)).encode("latin-1", "replace")
        self.send_response(opts.status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--status", type=int, default=204)
    p.add_argument("--echo", action="store_true")
    p.add_argument("--hang", action="store_true")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--ready-file")
    opts = p.parse_args()
    try:
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", opts.port), Handler)
    except OSError as e:
        sys.stderr.write("receiver: cannot bind 127.0.0.1:%d: %s\n" % (opts.port, e))
        sys.exit(98)
    srv.daemon_threads = True
    srv.opts = opts
    srv.lock = threading.Lock()
    if opts.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(opts.tls[0], opts.tls[1])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    if opts.ready_file:
        open(opts.ready_file, "w").close()
    srv.serve_forever()


if __name__ == "__main__":
    main()
