#!/usr/bin/python3
"""Smart-HTTP git server for the autopull integration tests (python3 stdlib only).

Runs /usr/lib/git-core/git-http-backend as a CGI program for every GET and POST, with
GIT_PROJECT_ROOT=--root and GIT_HTTP_EXPORT_ALL=1. Request bodies are streamed to the CGI
(Content-Length or chunked; Content-Encoding is passed on, git-http-backend inflates gzip
itself); responses are streamed back (chunked unless the CGI gives a Content-Length).
Serves only 127.0.0.1. With --tls-cert/--tls-key it speaks HTTPS (for a test CA's
certificate). It does not do authentication or dumb-HTTP extras.

Usage: githttp.py --root DIR --port PORT [--ready-file FILE] [--tls-cert PEM --tls-key PEM]
Exit status 98 if the port cannot be bound.
"""

import argparse
import http.server
import os
import ssl
import subprocess
import sys
import threading
import urllib.parse

BACKEND = "/usr/lib/git-core/git-http-backend"
BUFSIZE = 65536


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "aptest-githttp/1"

    def log_message(self, fmt, *args):
        sys.stderr.write("githttp: %s %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        self.run_cgi()

    def do_POST(self):
        self.run_cgi()

    # -- request body -------------------------------------------------------------------------

    def body_chunks(self):
        """Yield the request body in pieces, whatever its framing."""
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionError("eof in chunk header")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                left = size
                while left:
                    piece = self.rfile.read(min(left, BUFSIZE))
                    if not piece:
                        raise ConnectionError("eof in chunk")
                    left -= len(piece)
                    yield piece
                self.rfile.readline(16)  # CRLF after the chunk
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left > 0:
                piece = self.rfile.read(min(left, BUFSIZE))
                if not piece:
                    raise ConnectionError("eof in body")
                left -= len(piece)
                yield piece

    def feed(self, proc, errors):
        try:
            for piece in self.body_chunks():
                proc.stdin.write(piece)
        except (OSError, ValueError) as e:  # BrokenPipe: the CGI stopped reading
            errors.append(e)
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    # -- CGI ----------------------------------------------------------------------------------

    def run_cgi(self):
        url = urllib.parse.urlsplit(self.path)
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": os.environ.get("HOME", "/"),
            "GIT_PROJECT_ROOT": self.server.root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_SOFTWARE": self.server_version,
            "SERVER_PROTOCOL": self.request_version,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(self.server.server_address[1]),
            "REQUEST_METHOD": self.command,
            "PATH_INFO": urllib.parse.unquote(url.path),
            "QUERY_STRING": url.query,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
        }
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        if not chunked and self.headers.get("Content-Length") is not None:
            env["CONTENT_LENGTH"] = str(int(self.headers["Content-Length"]))
        # Without CONTENT_LENGTH git-http-backend reads the body until EOF.
        for hdr, var in (("Content-Encoding", "HTTP_CONTENT_ENCODING"),
                         ("Git-Protocol", "GIT_PROTOCOL"),
                         ("Accept", "HTTP_ACCEPT")):
            if self.headers.get(hdr):
                env[var] = self.headers[hdr]

        proc = subprocess.Popen([BACKEND], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                env=env, close_fds=True)
        errors = []
        writer = threading.Thread(target=self.feed, args=(proc, errors), daemon=True)
        writer.start()
        try:
            self.relay(proc)
        except (OSError, ValueError) as e:
            sys.stderr.write("githttp: %s: %s\n" % (self.path, e))
            self.close_connection = True
            proc.kill()
        finally:
            writer.join(30)
            proc.stdout.close()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if errors:
            self.close_connection = True

    def relay(self, proc):
        status, reason, headers = 200, "OK", []
        while True:
            line = proc.stdout.readline(8192)
            if not line:
                raise ConnectionError("CGI ended before its headers")
            line = line.rstrip(b"\r\n")
            if not line:
                break
            key, _, value = line.decode("latin-1").partition(":")
            key, value = key.strip(), value.strip()
            if key.lower() == "status":
                code, _, reason = value.partition(" ")
                status = int(code)
            else:
                headers.append((key, value))
        length = next((v for k, v in headers if k.lower() == "content-length"), None)
        self.send_response(status, reason or None)
        for k, v in headers:
            if k.lower() not in ("transfer-encoding", "connection"):
                self.send_header(k, v)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        while True:
            piece = proc.stdout.read1(BUFSIZE)
            if not piece:
                break
            if length is None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            else:
                self.wfile.write(piece)
        if length is None:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ready-file")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    args = ap.parse_args()

    try:
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    except OSError as e:
        sys.stderr.write("githttp: cannot listen on 127.0.0.1:%d: %s\n" % (args.port, e))
        return 98
    srv.daemon_threads = True
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.root = os.path.abspath(args.root)
    sys.stderr.write("githttp: serving %s on 127.0.0.1:%d (pid %d)\n"
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
