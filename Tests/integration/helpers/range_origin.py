"""A tiny origin for tests: serves a directory with Range support (206) and logs each
request as `METHOD path range` on stderr, so a test can count what the origin served.
Prints `LISTENING <port>` once bound. Usage: range_origin.py PORT DIR [DELAY_SECONDS]
(PORT 0 = any; DELAY makes every GET that slow, to keep downloads in flight).
`/redirect/NAME` answers 307 to `/NAME?sig=<random>`; a name ending `.trunc` is cut short;
`/private/NAME` is 401 without `Authorization: Bearer let-me-in`. `PUT /uploads/NAME` stores
the body (Content-Length bytes) as `uploads/NAME` (201), as an object store takes an upload."""
import http.server
import os
import signal
import sys
import time
import uuid
from functools import partial

DELAY = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s %s\n" % (self.command, self.path, self.headers.get("Range")))
        sys.stderr.flush()

    def send_head(self):
        if self.path.startswith("/redirect/"):
            # Like a registry sending a blob to object storage: a fresh signature each time.
            self.send_response(307)
            self.send_header("Location", "/" + self.path[len("/redirect/"):] + "?sig=" + uuid.uuid4().hex)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if self.path.startswith("/private/"):
            if self.headers.get("Authorization") != "Bearer let-me-in":
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            self.path = self.path[len("/private"):]
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        # The file's version, as static servers tell it.
        modified = self.date_time_string(os.path.getmtime(path))
        rng = self.headers.get("Range")
        f = open(path, "rb")
        if rng and rng.startswith("bytes="):
            first, last = rng[6:].split("-")
            first = int(first)
            last = int(last) if last else size - 1
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.send_header("Content-Length", str(last - first + 1))
            self.send_header("Last-Modified", modified)
            self.end_headers()
            f.seek(first)
            self._remaining = last - first + 1
            return f
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.send_header("Last-Modified", modified)
        self.end_headers()
        self._remaining = size
        return f

    def do_PUT(self):
        name = self.path.split("?")[0]
        parts = [p for p in name.split("/") if p]
        length = int(self.headers.get("Content-Length") or -1)
        if len(parts) != 2 or parts[0] != "uploads" or parts[1] in ("..", ".") or length < 0:
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        os.makedirs(os.path.join(self.directory, "uploads"), exist_ok=True)
        data = self.rfile.read(length)
        with open(os.path.join(self.directory, "uploads", parts[1]), "wb") as f:
            f.write(data)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def copyfile(self, src, dst):
        if DELAY:
            time.sleep(DELAY)
        data = src.read(self._remaining)
        if self.path.split("?")[0].endswith(".trunc"):
            # Promise the whole body, send half, hang up: a truncating origin.
            dst.write(data[: len(data) // 2])
            self.close_connection = True
            return
        dst.write(data)


# SIGTERM is how the cluster script stops everything: a clean exit, not a kill.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), partial(Handler, directory=sys.argv[2]))
print("LISTENING %d" % server.server_address[1], flush=True)
server.serve_forever()
