#!/usr/bin/env python3
"""A small real HTTP server for the urlDownload e2e tests (Python's
http.server, on loopback): serves files from a directory, with ETag /
If-None-Match revalidation, plus a few behaviours the tests need:

  /redirect/<path>     302 to /<path>
  /cd/<path>           the file with Content-Disposition: attachment; filename="named.txt"
  /flaky/<n>/<path>    503 for the first n requests of that path, then the file
  /count/<path>        how many GETs /<path> has seen (text)

Usage: http_peer.py DIR PORTFILE   (binds 127.0.0.1:0, writes the port)
"""
import hashlib
import http.server
import os
import sys
import threading

ROOT = sys.argv[1]
counts = {}
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("http_peer: " + (fmt % args) + "\n")

    def send_file(self, rel, extra=None):
        path = os.path.join(ROOT, rel.lstrip("/"))
        if not os.path.isfile(path):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with open(path, "rb") as f:
            data = f.read()
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        with lock:
            counts[rel] = counts.get(rel, 0) + 1
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", etag)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        p = self.path.split("?")[0]
        if p.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", "/" + p[len("/redirect/"):])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif p.startswith("/cd/"):
            self.send_file("/" + p[len("/cd/"):], {"Content-Disposition": 'attachment; filename="named.txt"'})
        elif p.startswith("/flaky/"):
            _, _, n, rest = p.split("/", 3)
            key = "flaky:" + rest
            with lock:
                counts[key] = counts.get(key, 0) + 1
                seen = counts[key]
            if seen <= int(n):
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self.send_file("/" + rest)
        elif p.startswith("/count/"):
            body = str(counts.get("/" + p[len("/count/"):], 0)).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_file(p)


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
srv.serve_forever()
