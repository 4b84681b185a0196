#!/usr/bin/python3
"""HTTPS for the system tests: the integration tests' smart-HTTP git server (githttp.py) behind
TLS with a test certificate. Run on the host inside the container's network namespace
(nsenter -n), so that the container reaches it as https://localhost:PORT/.

Usage: githttps.py --cert FILE --key FILE --root DIR --port PORT [--ready-file FILE]
Everything but --cert and --key is githttp.py's; so is the exit status.
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
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    args, rest = ap.parse_known_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)

    class TLSServer(http.server.ThreadingHTTPServer):
        def server_bind(self):
            super().server_bind()
            self.socket = ctx.wrap_socket(self.socket, server_side=True)

    # githttp.main() builds its server from http.server; a failed handshake is an OSError
    # that socketserver drops with that connection.
    http.server.ThreadingHTTPServer = TLSServer
    sys.argv[1:] = rest
    return githttp.main()


if __name__ == "__main__":
    sys.exit(main())
