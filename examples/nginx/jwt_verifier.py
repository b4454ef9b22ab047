"""The edge's token check, for nginx's auth_request: verifies an HS256 bearer JWT (RFC 7519) with a shared key
and answers 200 with the caller's identity in X-User-Id / X-User-Email / X-User-Groups, 401 when there is no
valid token (missing, malformed, bad signature, expired), or 403 when the token is valid but the caller may not
use the path (paths under /admin need the group "admins"; the identity headers are still sent, so the edge logs
who was refused).

Python's standard library only. The key is the environment variable AUDIT_EDGE_JWT_KEY (UTF-8 text).

usage: AUDIT_EDGE_JWT_KEY=... python3 jwt_verifier.py [PORT]   (0 or nothing: a free port; prints {"port": N})
nginx passes the original URI in X-Original-URI (see edge.conf.template).
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = os.environ.get("AUDIT_EDGE_JWT_KEY", "").encode()


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify(token):
    """The claims of a valid HS256 token, else None."""
    parts = token.split(".")
    if len(parts) != 3 or not KEY:
        return None
    try:
        header = json.loads(b64url(parts[0]))
        if header.get("alg") != "HS256":
            return None
        expected = hmac.new(KEY, (parts[0] + "." + parts[1]).encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, b64url(parts[2])):
            return None
        claims = json.loads(b64url(parts[1]))
    except (ValueError, TypeError):
        return None
    if not isinstance(claims, dict) or not isinstance(claims.get("sub"), str):
        return None
    if "exp" in claims and not (isinstance(claims["exp"], (int, float)) and claims["exp"] > time.time()):
        return None
    return claims


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        auth = self.headers.get("Authorization", "")
        claims = verify(auth[7:].strip()) if auth[:7].lower() == "bearer " else None
        if claims is None:
            self.answer(401, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            return
        groups = claims.get("groups") if isinstance(claims.get("groups"), list) else []
        identity = {"X-User-Id": claims["sub"], "X-User-Email": str(claims.get("email", "")),
                    "X-User-Groups": ",".join(str(g) for g in groups)}
        path = self.headers.get("X-Original-URI", "/")
        allowed = not (path == "/admin" or path.startswith("/admin/") or path.startswith("/admin?")) or "admins" in groups
        self.answer(200 if allowed else 403, identity)

    def answer(self, status, headers):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Handler)
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    server.serve_forever()
