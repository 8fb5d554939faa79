"""Writes the seed corpus under Tests/Fuzz/corpus/<target>/ (committed; rerun to refresh).
Seeds are small valid inputs of each kind, so libFuzzer starts from the shapes real
clients send: HTTP/2 frames of a gRPC call, gRPC-framed Dragonfly messages (built with
the official dragonfly-api package), mirror requests, our example configs, task URLs."""

import gzip
import struct
import sys
from pathlib import Path

from dragonfly_api import common_pb2, dfdaemon_pb2, manager_pb2, scheduler_pb2

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parents[1]
OUT = ROOT / "corpus"


def write(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def literal(name, value):
    # HPACK literal header field without indexing, new name, no Huffman coding.
    n, v = name.encode(), value.encode()
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v


def grpc_message(body, compressed=False):
    return bytes([1 if compressed else 0]) + struct.pack(">I", len(body)) + body


def h2_seeds():
    settings = frame(0x4, 0, 0, struct.pack(">HI", 3, 100) + struct.pack(">HI", 4, 65535))
    headers = b"".join(literal(k, v) for k, v in [
        (":method", "POST"), (":scheme", "http"), (":path", "/scheduler.v2.Scheduler/StatTask"),
        (":authority", "127.0.0.1"), ("content-type", "application/grpc"), ("te", "trailers"), ("grpc-timeout", "5S")])
    body = grpc_message(scheduler_pb2.StatTaskRequest(host_id="h", task_id="t").SerializeToString())
    call = settings + frame(0x1, 0x4, 1, headers) + frame(0x0, 0x1, 1, body)
    write("h2", "unary-call", b"\x00" + call)
    write("h2", "ping-window-rst-goaway", b"\x00" + settings + frame(0x6, 0, 0, b"12345678") +
          frame(0x8, 0, 0, struct.pack(">I", 1 << 20)) + frame(0x1, 0x4, 3, headers) + frame(0x3, 0, 3, struct.pack(">I", 8)) +
          frame(0x7, 0, 0, struct.pack(">II", 3, 0)))
    half = len(headers) // 2
    write("h2", "continuation", b"\x00" + settings + frame(0x1, 0, 1, headers[:half]) + frame(0x9, 0x4, 1, headers[half:]) +
          frame(0x0, 0x1, 1, body))
    write("h2", "raw-preface", b"\x01PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + settings)
    write("h2", "settings-ack", b"\x00" + settings + frame(0x4, 0x1, 0, b""))


def grpc_seeds():
    peer = scheduler_pb2.AnnouncePeerRequest(host_id="host", task_id="task", peer_id="peer")
    peer.register_peer_request.download.url = "http://origin/file"
    peer.register_peer_request.download.request_header["Range"] = "bytes=0-9"
    host = scheduler_pb2.AnnounceHostRequest()
    host.host.id = "h"
    host.host.hostname = "node"
    host.host.ip = "127.0.0.1"
    host.host.cpu.percent = 12.5
    download = dfdaemon_pb2.DownloadTaskRequest()
    download.download.url = "http://origin/model.bin"
    download.download.digest = "sha256:" + "0" * 64
    download.download.filtered_query_params.append("X-Amz-Signature")
    seed = manager_pb2.UpdateSeedPeerRequest(hostname="seed", ip="127.0.0.1", port=65001, download_port=65001,
                                             seed_peer_cluster_id=1, type="super")
    for name, msg in [("announce-peer", peer), ("announce-host", host), ("download-task", download), ("seed-peer", seed)]:
        body = msg.SerializeToString()
        write("grpc", name, b"\x00" + grpc_message(body) + grpc_message(body))
        write("grpc", name + "-gzip", b"\x02" + grpc_message(gzip.compress(body), compressed=True))
    write("grpc", "piece", b"\x00" + grpc_message(common_pb2.Piece(number=3, offset=12, length=4, digest="crc32:1").SerializeToString()))
    # Our piece stream's response envelope (dfswift.peer.v1.PieceResponse, fields 1-4 and 6;
    # not in dragonfly-api, so encoded by hand): the target appends a large content to it,
    # which the in-place decode takes without copying.
    digest = b"crc32:1"
    envelope = b"\x08\x03\x10\x80\x80\x80\x02\x18\x80\x80\x80\x02\x22" + bytes([len(digest)]) + digest + b"\x30\x00"
    write("grpc", "piece-response", b"\x00" + grpc_message(envelope))


def http1_seeds():
    reqs = {
        "manifest": "GET /v2/library/alpine/manifests/3.19?ns=docker.io HTTP/1.1\r\nHost: m\r\nAccept: */*\r\n\r\n",
        "blob-range": "GET /v2/team/app/blobs/sha256:" + "a" * 64 + " HTTP/1.1\r\nHost: m\r\nRange: bytes=100-199\r\n"
                      "X-Dragonfly-Registry: https://registry.example\r\n\r\n",
        "proxy-absolute": "GET http://127.0.0.1:5000/v2/ HTTP/1.1\r\nHost: 127.0.0.1:5000\r\n\r\n",
        "connect": "CONNECT registry.example:443 HTTP/1.1\r\nHost: registry.example:443\r\n\r\n",
        "chunked-post": "POST /v2/app/blobs/uploads/ HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "keepalive-two": "HEAD /v2/ HTTP/1.1\r\nHost: m\r\n\r\nGET /metrics HTTP/1.1\r\nHost: m\r\nRange: bytes=-5\r\n\r\n",
    }
    for name, text in reqs.items():
        write("http1", name, text)


def config_seeds():
    for path in sorted((REPO / "docker").glob("*.yaml")):
        write("config", path.stem, path.read_bytes())
    write("config", "rules", "proxy:\n  rules:\n    - regex: 'blobs/sha256.*'\n      useTLS: true\n"
                             "  registries:\n    - url: https://r.example\n      username: u\n      password: p\n")
    # Shapes that crashed Yams' own constructor (a map or list as a key, a !!set of
    # maps) and an alias chain that expands exponentially.
    write("config", "complex-key", "? [a, b]\n: c\nserver:\n  ? {x: 1}\n  : y\nset: !!set {? {a: 1}}\n")
    write("config", "alias-chain", "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nd: [*c, *c]\n")


def taskid_seeds():
    seeds = {
        "signed": "https://bucket.s3.example/model.bin?X-Amz-Signature=abc&X-Amz-Date=1\n\n\nX-Amz-Signature&X-Amz-Date",
        "tagged": "http://origin:8080/a/b/c.tar.gz\nv1\nmyapp\n",
        "plain": "http://127.0.0.1/file",
        "fragment": "https://user:pw@example.com:443/p%20q?a=1&a=2#frag\n\n\na",
    }
    for name, text in seeds.items():
        write("taskid", name, text)


def vortex_seeds():
    """First byte: bit 0 picks the parser (0 requests, 1 answers), the rest the chunk size."""
    task = b"0123456789abcdef" * 4
    request = struct.pack(">BBI", 7, 0, 68) + task + struct.pack(">I", 3)
    digest, parent = b"crc32:907060870", b"peer-1"
    metadata = (struct.pack(">IQQI", 3, 12, 5, len(digest)) + digest + struct.pack(">I", len(parent)) + parent
                + struct.pack(">BQq", 1, 2, 1693152000))
    piece = struct.pack(">BBI", 9, 1, 4 + len(metadata)) + struct.pack(">I", len(metadata)) + metadata + b"hello"
    error = struct.pack(">BBI", 1, 255, 10) + b"\x02not found"
    close = struct.pack(">BBI", 2, 254, 0)
    write("vortex", "requests", bytes([0x0a]) + request + request + close)
    write("vortex", "piece", bytes([0x0b]) + piece)
    write("vortex", "error-close", bytes([0x03]) + error + close)


def scheduler_seeds():
    # Steps as Tests/Fuzz/DragonflyFuzz/SchedulerTarget.swift decodes them: peer byte,
    # operation byte, operands. A number byte below 224 picks an edge value, edges[b % 14]:
    # 1 is 1, 6 is 2**60, 7 is 2**63, 9 is 2**64-1, 10 is 2**63-1, 11 is 2**32-1.
    def host(n):
        # id, type, port, disable_shared, max_tx, tx, max_rx, idc?, location?, memory, used%, no interval
        return bytes([0, 0, n, 0, 0, 0, 9, 0, 9, 0, 1, 9, 0, 1])

    def register(peer, host_n, piece_length, count=None, length=10, task=0):
        b = [peer, 1, 1, 1, 1, piece_length, 1, piece_length, 1, length, 0]
        b += [1, count] if count is not None else [0]
        b += [0, 0, 0, host_n, task]   # no range, no need_back_to_source, LEVEL0
        return bytes(b)

    hosts = b"".join(host(n) for n in range(4))
    # Issue 17 item 3: a parent with piece_length 2**60 goes back to source; children with
    # one concurrent piece each are given it as their parent.
    attack = hosts + register(0, 0, 6) + bytes([0, 3]) + register(1, 1, 6, 1) + register(2, 2, 6, 1) + register(3, 3, 6, 11)
    write("scheduler", "huge-piece-length", attack)
    pieces = bytes([0, 4, 0, 0, 3, 0, 9, 9, 1]) + bytes([0, 4, 9, 7, 9, 1, 1, 7, 7, 0])
    write("scheduler", "pieces-finish-gc", attack + pieces + bytes([1, 6, 0, 2, 7, 1, 0, 13, 48, 0, 10, 0, 3, 12, 0, 0, 0, 1]))
    write("scheduler", "two-tasks", hosts + register(0, 0, 3, length=9) + register(1, 1, 7, 9, length=7, task=1)
          + bytes([1, 8, 0, 1, 9, 0, 14]))


def layout_seeds():
    # Content length and piece length (big-endian u64), then a Range header.
    cases = {
        "small-4mib": (10 << 20, 4 << 20, "bytes=0-99"),
        "exact-pieces": (16 << 20, 4 << 20, "bytes=4194304-"),
        "default-rule": (1 << 30, 3, "bytes=-100"),
        "huge-length": (2**64 - 1, 2**64 - 1, "bytes=18446744073709551614-"),
        "one-byte-pieces": (5 << 30, 1, "bytes=1-0"),
        "empty": (0, 4 << 20, ""),
    }
    for name, (length, piece, header) in cases.items():
        write("layout", name, struct.pack(">QQ", length, piece) + header.encode())


if __name__ == "__main__":
    h2_seeds()
    grpc_seeds()
    http1_seeds()
    config_seeds()
    taskid_seeds()
    vortex_seeds()
    scheduler_seeds()
    layout_seeds()
    print(f"seeds written under {OUT}", file=sys.stderr)
