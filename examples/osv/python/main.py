"""A tiny HTTP server in Python (the standard library only)."""
import http.server
import os
import sys

GREETING = os.environ.get("GREETING", "hello from Python")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (GREETING + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
server = http.server.HTTPServer(("", port), Handler)
print(f"serving on :{port}", flush=True)
server.serve_forever()
