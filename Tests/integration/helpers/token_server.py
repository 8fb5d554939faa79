"""A Docker registry token endpoint (the "token" auth of CNCF distribution), so the
registry under test does the real Bearer flow. Usage:

    token_server.py KEY_PEM CERT_PEM ISSUER SERVICE USER:PASSWORD [EXPIRES_IN]

GET /token?service=…&scope=repository:NAME:ACTIONS with Basic credentials returns
{"token": JWT} signed RS256 with KEY_PEM; the JWT carries CERT_PEM in `x5c`, which the
registry checks against its rootcertbundle. Logs `token <scope>` per grant on stderr and
prints `LISTENING <port>`."""

import base64
import http.server
import json
import subprocess
import sys
import time
import uuid
from urllib.parse import parse_qs, urlparse

KEY, CERT, ISSUER, SERVICE, CREDS = sys.argv[1:6]
# What the answers say in `expires_in`: 300, or a test's hostile number.
EXPIRES_IN = int(sys.argv[6]) if len(sys.argv) > 6 else 300


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def cert_der():
    pem = open(CERT).read()
    body = "".join(line for line in pem.splitlines() if "CERTIFICATE" not in line)
    return body  # x5c is standard base64 of the DER


def sign(payload):
    out = subprocess.run(["openssl", "dgst", "-sha256", "-sign", KEY], input=payload, capture_output=True, check=True)
    return out.stdout


def token_for(scopes, account):
    access = []
    for scope in scopes:
        kind, name, actions = scope.split(":", 2) if scope.count(":") >= 2 else (None, None, None)
        if kind == "repository":
            access.append({"type": "repository", "name": name, "actions": actions.split(",")})
    now = int(time.time())
    header = {"typ": "JWT", "alg": "RS256", "x5c": [cert_der()]}
    claims = {"iss": ISSUER, "sub": account, "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
              "jti": str(uuid.uuid4()), "access": access}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        url = urlparse(self.path)
        if url.path != "/token":
            self.send_error(404)
            return
        auth = self.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(CREDS.encode()).decode()
        if auth != expected:
            sys.stderr.write("refused\n")
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        query = parse_qs(url.query)
        scopes = query.get("scope", [])
        for s in scopes:
            sys.stderr.write(f"token {s}\n")
        token = token_for(scopes, CREDS.split(":")[0])
        # Tests check that the tokens we hand out never reach the mirror's logs.
        sys.stderr.write(f"issued {token}\n")
        sys.stderr.flush()
        body = json.dumps({"token": token, "expires_in": EXPIRES_IN}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"LISTENING {server.server_address[1]}", flush=True)
server.serve_forever()
