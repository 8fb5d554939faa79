"""The Vortex piece protocol of Dragonfly's Rust dfdaemon, written from its published
description (dragonflyoss/vortex-protocol): a 6-byte header (packet id, tag, value length
as a big-endian u32), then the value. Tags (0.1.5): 0 download piece, 1 piece content,
4 download persistent cache piece, 5 persistent cache piece content (the same layouts),
254 close, 255 error. A piece-content value is a u32 metadata length and the metadata; the piece's
bytes follow the packet. Independent of our Swift code on purpose."""

import random
import socket
import struct

DOWNLOAD_PIECE, PIECE_CONTENT, CLOSE, ERROR = 0, 1, 254, 255
DOWNLOAD_PERSISTENT_CACHE_PIECE, PERSISTENT_CACHE_PIECE_CONTENT = 4, 5
NOT_FOUND, INVALID_ARGUMENT, INTERNAL = 2, 1, 3


class VortexError(Exception):
    def __init__(self, code, message):
        super().__init__(f"vortex error {code}: {message}")
        self.code, self.message = code, message


def header(tag, length):
    return struct.pack(">BBI", random.randrange(256), tag, length)


def download_piece(task_id, number, tag=DOWNLOAD_PIECE):
    value = task_id.encode("ascii") + struct.pack(">I", number)
    assert len(value) == 68
    return header(tag, len(value)) + value


def error_packet(code, message):
    value = bytes([code]) + message.encode()
    return header(ERROR, len(value)) + value


def piece_content(number, offset, content, digest, parent_id="", traffic_type=1, cost=0, created_at=0):
    d, p = digest.encode(), parent_id.encode()
    metadata = (struct.pack(">IQQI", number, offset, len(content), len(d)) + d + struct.pack(">I", len(p)) + p
                + struct.pack(">BQq", traffic_type, cost, created_at))
    value = struct.pack(">I", len(metadata)) + metadata
    return header(PIECE_CONTENT, len(value)) + value + content


def read_exactly(sock, n):
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(min(1 << 20, n - len(out)))
        if not chunk:
            raise EOFError(f"connection closed after {len(out)} of {n} bytes")
        out += chunk
    return bytes(out)


def parse_metadata(value):
    (metadata_length,) = struct.unpack_from(">I", value, 0)
    assert metadata_length == len(value) - 4, (metadata_length, len(value))
    number, offset, length, dlen = struct.unpack_from(">IQQI", value, 4)
    at = 4 + 24
    digest = value[at:at + dlen].decode()
    at += dlen
    (plen,) = struct.unpack_from(">I", value, at)
    at += 4
    parent = value[at:at + plen].decode()
    at += plen
    traffic, cost, created = struct.unpack_from(">BQq", value, at)
    assert at + 17 == len(value)
    return {"number": number, "offset": offset, "length": length, "digest": digest, "parent_id": parent,
            "traffic_type": traffic, "cost": cost, "created_at": created}


def read_response(sock, content_tag=PIECE_CONTENT):
    """(metadata, content) for a piece; raises VortexError for an error packet."""
    _, tag, length = struct.unpack(">BBI", read_exactly(sock, 6))
    value = read_exactly(sock, length)
    if tag == ERROR:
        raise VortexError(value[0], value[1:].decode(errors="replace"))
    assert tag == content_tag, f"unexpected tag {tag}"
    metadata = parse_metadata(value)
    return metadata, read_exactly(sock, metadata["length"])


def fetch_piece(host, port, task_id, number, timeout=60, persistent_cache=False):
    """One piece over one connection, as the Rust client does."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        if persistent_cache:
            sock.sendall(download_piece(task_id, number, DOWNLOAD_PERSISTENT_CACHE_PIECE))
            return read_response(sock, PERSISTENT_CACHE_PIECE_CONTENT)
        sock.sendall(download_piece(task_id, number))
        return read_response(sock)


def read_request(sock):
    """(tag, task_id, number) of the next request, or None at the end of the connection."""
    try:
        _, tag, length = struct.unpack(">BBI", read_exactly(sock, 6))
    except EOFError:
        return None
    if tag == CLOSE:
        return None
    if tag != DOWNLOAD_PIECE or length != 68:
        raise VortexError(INVALID_ARGUMENT, f"tag {tag} with {length} bytes is not a download-piece request")
    value = read_exactly(sock, length)
    return tag, value[:64].decode("ascii"), struct.unpack(">I", value[64:])[0]
