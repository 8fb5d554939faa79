"""An origin that misbehaves on purpose, by path prefix, over files in DIR:
  /reset/NAME      headers and half of the body, then a TCP reset
  /shortlen/NAME   a Content-Length (and body) shorter than the range asked for
  /flaky500/NAME   500 for the first two GETs of each range, then the bytes
  /always500/NAME  500 on every GET
  /slow/NAME       the body in 16 KiB drips, 20 ms apart
  /changing/NAME   the same bytes, but a new ETag on every request (HEAD included), as if
                   the file were replaced between requests
  /nohead/NAME     405 to HEAD; GETs are served normally
  /shorthead/NAME  HEAD announces half the length; GETs serve the whole file
  /chunked/NAME    no length anywhere: HEAD and GET answer 200 with a chunked body (a
                   ranged GET too), as dynamic endpoints that stream their output do
  /chunkedcut/NAME as chunked, but the GET ends after half the file without its last chunk
Anything else is served normally. Ranges are honoured; every request is logged on stderr
as `METHOD path range status`. Prints `LISTENING <port>`. Usage: faulty_origin.py PORT DIR"""
import http.server
import os
import socket
import struct
import sys
import threading
import time
from collections import Counter

seen = Counter()
versions = Counter()
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def log(self, status):
        sys.stderr.write(f"{self.command} {self.path} {self.headers.get('Range')} {status}\n")
        sys.stderr.flush()

    def do_HEAD(self):
        self.serve(head=True)

    def do_GET(self):
        self.serve(head=False)

    def serve(self, head):
        parts = self.path.split("?")[0].lstrip("/").split("/", 1)
        mode, name = (parts[0], parts[1]) if len(parts) == 2 else ("plain", parts[0])
        path = os.path.join(self.server.root, os.path.basename(name))
        if not os.path.isfile(path):
            self.log(404)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if head and mode == "nohead":
            self.log(405)
            self.send_response(405)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = open(path, "rb").read()
        if mode in ("chunked", "chunkedcut"):
            self.serve_chunked(data, head, cut=mode == "chunkedcut")
            return
        if head and mode == "shorthead":
            data = data[:len(data) // 2]
        first, last = 0, len(data) - 1
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, b = rng[6:].split("-")
            first, last = int(a), min(int(b) if b else len(data) - 1, len(data) - 1)
        body = data[first:last + 1]
        if not head:
            with lock:
                seen[(self.path, rng)] += 1
                count = seen[(self.path, rng)]
            if mode == "always500" or (mode == "flaky500" and count <= 2):
                self.log(500)
                self.send_response(500)
                self.send_header("Content-Length", "5")
                self.end_headers()
                self.wfile.write(b"oops\n")
                return
        status = 206 if rng else 200
        self.log(status)
        self.send_response(status)
        if rng:
            self.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
        length = len(body) // 2 if mode == "shortlen" and not head else len(body)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if mode == "changing":
            with lock:
                versions[name] += 1
                self.send_header("ETag", f'"v{versions[name]}"')
        self.end_headers()
        if head:
            return
        if mode == "reset":
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if mode == "shortlen":
            self.wfile.write(body[:length])
            return
        if mode == "slow":
            for i in range(0, len(body), 16 << 10):
                self.wfile.write(body[i:i + (16 << 10)])
                self.wfile.flush()
                time.sleep(0.02)
            return
        self.wfile.write(body)


    def serve_chunked(self, data, head, cut):
        self.log(200)
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if head:
            return
        body = data[:len(data) // 2] if cut else data
        for i in range(0, len(body), 64 << 10):
            piece = body[i:i + (64 << 10)]
            self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
        if cut:
            # Hang up without the terminating chunk: the body is truncated.
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.root = sys.argv[2]
    print(f"LISTENING {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
