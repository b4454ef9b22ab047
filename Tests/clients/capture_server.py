"""Records every POST body it receives (gunzipped) as a file, for the fuzz seed corpus: OTLP/HTTP protobuf and
JSON, Zipkin. Prints its port. usage: capture_server.py OUT_DIR   (scripts/fuzz-sdk-seeds.sh runs it)"""
import http.server, sys, os, threading, gzip
out = sys.argv[1]
count = {}
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        ct = self.headers.get("Content-Type", "")
        kind = {"/v1/traces": "traces", "/v1/logs": "logs", "/api/v2/spans": "zipkin"}.get(self.path, "other")
        fmt = "pb" if "protobuf" in ct else "json"
        key = f"{kind}.{fmt}"
        count[key] = count.get(key, 0) + 1
        with open(os.path.join(out, f"python-sdk-{kind}-{count[key]}.{fmt}"), "wb") as f:
            f.write(body)
        self.send_response(202 if kind == "zipkin" else 200)
        self.send_header("Content-Type", ct or "application/json")
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
