"""Serves DIR/jwks.json at GET /jwks.json, read again for every request so a test rotates keys by replacing the
file; prints its port, then one line `GET n` per request (n counts them). usage: jwks_server.py DIR"""
import http.server, sys, os, threading
root = sys.argv[1]
lock = threading.Lock()
served = 0
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global served
        if self.path != "/jwks.json":
            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
        with open(os.path.join(root, "jwks.json"), "rb") as f:
            body = f.read()
        with lock:
            served += 1
            print(f"GET {served}", flush=True)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
