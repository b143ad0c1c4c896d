#!/usr/bin/env python3
"""A man in the middle for the IPFS e2e tests (Python's http.server, on
loopback): forwards every RPC API request to a real IPFS node and hands the
answers back, except that the data of /api/v0/block/get answers is altered
(one byte flipped) for CIDs that start with PREFIX. It plays a node that
lies about content, which cod must catch by checking blocks against CIDs.

Usage: tamper_proxy.py UPSTREAM_URL PORTFILE [PREFIX]
       (binds 127.0.0.1:0, writes the port; PREFIX "" = every block)
"""
import http.server
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

UPSTREAM = sys.argv[1].rstrip("/")
PREFIX = sys.argv[3] if len(sys.argv) > 3 else ""


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("tamper_proxy: " + (fmt % args) + "\n")

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type",)}
        req = urllib.request.Request(UPSTREAM + self.path, data=body or b"", headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, data, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            status, data, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
        url = urllib.parse.urlparse(self.path)
        arg = urllib.parse.parse_qs(url.query).get("arg", [""])[0]
        if url.path == "/api/v0/block/get" and status == 200 and data and arg.startswith(PREFIX):
            data = data[:-1] + bytes([data[-1] ^ 0x01])
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
srv.serve_forever()
