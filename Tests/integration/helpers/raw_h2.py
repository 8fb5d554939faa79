"""A raw HTTP/2 client for limit tests: writes exactly the frames a test asks for (even
ones a well-behaved library would refuse to send) and reads the server's frames back."""

import socket
import struct
import time

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7, 0x8
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def grpc_headers(path, extra=()):
    return [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
            ("content-type", "application/grpc"), ("te", "trailers"), *extra]


class Connection:
    def __init__(self, host, port, timeout=10, source=None):
        # `source`: a local address to connect from (another loopback address, say).
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.encoder, self.decoder = hpack.Encoder(), hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 20
        self.buffer = b""

    def handshake(self):
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0))
        return self

    def send(self, data):
        self.sock.sendall(data)

    def headers(self, stream, fields, end_stream=False):
        block = self.encoder.encode(fields)
        self.send(frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), stream, block))

    def read_frame(self, deadline):
        while len(self.buffer) < 9 or len(self.buffer) < 9 + int.from_bytes(self.buffer[:3], "big"):
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                raise ConnectionResetError("server closed the connection")
            self.buffer += chunk
        length = int.from_bytes(self.buffer[:3], "big")
        kind, flags = self.buffer[3], self.buffer[4]
        stream = struct.unpack(">I", self.buffer[5:9])[0] & 0x7FFFFFFF
        payload = self.buffer[9:9 + length]
        self.buffer = self.buffer[9 + length:]
        if kind == SETTINGS and not flags & ACK:
            self.send(frame(SETTINGS, ACK, 0))
        if kind in (HEADERS,) and payload:
            payload = self.decoder.decode(payload)
        return kind, flags, stream, payload

    def frames_until(self, predicate, timeout=10):
        """Frames read until one satisfies `predicate` (returned last) or the time is up."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                f = self.read_frame(deadline)
            except ConnectionResetError:
                return seen
            if f is None:
                return seen
            seen.append(f)
            if predicate(f):
                return seen

    def closed_within(self, seconds):
        """True if the server closes the connection within `seconds` (reading and
        discarding whatever it sends first)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                if not self.sock.recv(65536):
                    return True
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
        return False

    def close(self):
        self.sock.close()
