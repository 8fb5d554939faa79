"""Vortex, the piece transport of Dragonfly's Rust dfdaemon, against clients and parents
written in Python from the protocol's published description (helpers/vortex_spec.py)."""

import os
import re
import socket
import struct
import sys
import time
import urllib.request
import zlib
from pathlib import Path

import grpc
import pytest
from dragonfly_api import dfdaemon_pb2, dfdaemon_pb2_grpc

from conftest import Server, binary, describe, run
from dfdaemon_cluster import wait_for_hosts, wait_for_task

HELPERS = Path(__file__).parent / "helpers"
sys.path.insert(0, str(HELPERS))
import vortex_spec  # noqa: E402
from fake_peer import task_id_of  # noqa: E402

MIB = 1 << 20
PIECE = 4 * MIB


class Cluster:
    def __init__(self, root, files):
        self.root = root
        (root / "origin").mkdir()
        for name, data in files.items():
            (root / "origin" / name).write_bytes(data)
        self.servers = [Server([sys.executable, HELPERS / "range_origin.py", "0", root / "origin"], root / "origin.log")]
        self.origin = self.servers[0]
        self.sched = self.add(Server([binary("scheduler"), "--port", "0", "--metrics-port", "0", "--listen-ip", "127.0.0.1",
                                      "--data-dir", root / "sched"], root / "sched.log"))

    def add(self, server):
        self.servers.append(server)
        return server

    def daemon(self, name, config=""):
        path = self.root / f"{name}.yaml"
        path.write_text(config)
        return self.add(Server([binary("dfdaemon"), "--port", "0", "--listen-ip", "127.0.0.1", "--hostname", name,
                                "--scheduler", self.sched.address, "--data-dir", self.root / name,
                                "--unix-socket", self.root / f"{name}.sock", "--config", path], self.root / f"{name}.log"))

    def url(self, name):
        return f"http://{self.origin.address}/{name}"

    def dfget(self, daemon, name):
        out = self.root / f"{daemon}-{name}"
        res = run([binary("dfget"), self.url(name), "-O", out, "--daemon", f"unix:{self.root}/{daemon}.sock", "--quiet"], timeout=120)
        assert res.returncode == 0, describe(res) + Path(self.root / f"{daemon}.log").read_text()[-3000:]
        return out.read_bytes()

    def origin_gets(self, name):
        return [l for l in Path(self.origin.log_path).read_text().splitlines() if l.startswith(f"GET /{name}")]

    def stop(self):
        for s in reversed(self.servers):
            s.stop()


@pytest.fixture
def cluster(tmp_path):
    made = []

    def make(files):
        c = Cluster(tmp_path, files)
        made.append(c)
        return c
    yield make
    for c in made:
        c.stop()


def metric(server, name, labels):
    with urllib.request.urlopen(f"http://{server.address}/metrics", timeout=10) as res:
        text = res.read().decode()
    selector = f"{{{labels}}}" if labels else ""
    m = re.search(rf"^dragonfly_dfdaemon_{name}{re.escape(selector)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def sync_pieces(daemon, task_id):
    stub = dfdaemon_pb2_grpc.DfdaemonUploadStub(grpc.insecure_channel(daemon.address))
    return list(stub.SyncPieces(dfdaemon_pb2.SyncPiecesRequest(host_id="python-spec-client", task_id=task_id), timeout=30))


def test_spec_client_fetches_every_piece_from_our_dfdaemon_and_checks_crc32(cluster):
    data = os.urandom(3 * PIECE - 12345)
    c = cluster({"f.bin": data})
    a = c.daemon("a")
    assert c.dfget("a", "f.bin") == data
    task = task_id_of(c.url("f.bin"))
    # The official API says where: SyncPieces carries the peer's ip and its Vortex tcp_port.
    announced = sync_pieces(a, task)
    assert [p.number for p in announced] == [0, 1, 2]
    assert {(p.ip, p.HasField("tcp_port")) for p in announced} == {("127.0.0.1", True)}
    port = announced[0].tcp_port
    assert port > 0 and port != a.port
    for p in announced:
        meta, content = vortex_spec.fetch_piece("127.0.0.1", port, task, p.number)
        assert (meta["number"], meta["offset"], meta["length"]) == (p.number, p.offset, p.length)
        assert content == data[p.offset:p.offset + p.length]
        assert meta["digest"] == f"crc32:{zlib.crc32(content)}"
        assert meta["traffic_type"] == 1 and meta["created_at"] > 1_700_000_000

    # A piece that does not exist, and a task that is not here: NotFound error packets.
    with pytest.raises(vortex_spec.VortexError) as err:
        vortex_spec.fetch_piece("127.0.0.1", port, task, 99)
    assert err.value.code == vortex_spec.NOT_FOUND
    with pytest.raises(vortex_spec.VortexError) as err:
        vortex_spec.fetch_piece("127.0.0.1", port, "f" * 64, 0)
    assert err.value.code == vortex_spec.NOT_FOUND and "not here" in err.value.message

    # An oversized length: an InvalidArgument error packet, then the end of the connection.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(struct.pack(">BBI", 1, vortex_spec.DOWNLOAD_PIECE, 0xFFFFFFFF))
        with pytest.raises(vortex_spec.VortexError) as err:
            vortex_spec.read_response(s)
        assert err.value.code == vortex_spec.INVALID_ARGUMENT and "oversized" in err.value.message
        assert s.recv(1) == b""
    # A truncated header, then a hang-up; a close packet; the server serves on.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"\x01\x00\x00")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(struct.pack(">BBI", 2, vortex_spec.CLOSE, 0))
        assert s.recv(1) == b""
    # Two requests on one connection are both answered, in order.
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(vortex_spec.download_piece(task, 2) + vortex_spec.download_piece(task, 0))
        assert vortex_spec.read_response(s)[0]["number"] == 2
        assert vortex_spec.read_response(s)[1] == data[:PIECE]
    a.assert_alive()
    assert metric(a, "upload_traffic_total", "") == len(data) + (len(data) - 2 * PIECE) + PIECE


def test_our_child_fetches_over_vortex_from_a_parent_without_our_piece_stream(cluster):
    data = os.urandom(3 * PIECE)
    c = cluster({"g.bin": data})
    parent = c.add(Server([sys.executable, HELPERS / "vortex_parent.py", c.sched.address, c.url("g.bin"), c.root / "origin" / "g.bin",
                           PIECE], c.root / "vortex-parent.log"))
    b = c.daemon("b")
    time.sleep(0.3)
    assert c.dfget("b", "g.bin") == data
    log = Path(parent.log_path).read_text()
    assert sorted(re.findall(r"vortex served piece (\d+)", log)) == ["0", "1", "2"], log
    assert "SyncPieces from 127.0.0.1-b" in log
    assert c.origin_gets("g.bin") == [], "every byte came from the Vortex parent"
    assert metric(b, "parent_piece_total", 'transport="vortex"') == 3
    assert "has no piece stream; fetching from it over Vortex" in Path(b.log_path).read_text()


def test_download_protocol_tcp_uses_vortex_between_our_peers_under_the_upload_limit(cluster):
    data = os.urandom(2 * PIECE + 7)
    c = cluster({"h.bin": data})
    a = c.daemon("a", "upload:\n  concurrentLimit: 1\n")
    b = c.daemon("b", "download:\n  protocol: tcp\n")
    assert c.dfget("a", "h.bin") == data
    wait_for_task(c.sched.address, task_id_of(c.url("h.bin")))
    assert c.dfget("b", "h.bin") == data
    assert metric(b, "parent_piece_total", 'transport="vortex"') == 3
    assert metric(b, "parent_piece_total", 'transport="stream"') == 0
    assert metric(a, "upload_traffic_total", "") == len(data)
    assert len(c.origin_gets("h.bin")) == 3, "b's pieces came from a, not the origin"

    # upload.concurrentLimit (child hosts) holds for Vortex connections too: with one host's
    # connection open, another host is refused, while the same host may open more.
    port = sync_pieces(a, task_id_of(c.url("h.bin")))[0].tcp_port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as held:
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=("127.0.0.2", 0)) as other:
            other.sendall(vortex_spec.download_piece(task_id_of(c.url("h.bin")), 0))
            with pytest.raises(vortex_spec.VortexError) as err:
                vortex_spec.read_response(other)
        assert "upload.concurrentLimit" in err.value.message
        assert vortex_spec.fetch_piece("127.0.0.1", port, task_id_of(c.url("h.bin")), 1)[1] == data[PIECE:2 * PIECE]
        held.sendall(vortex_spec.download_piece(task_id_of(c.url("h.bin")), 2))
        assert vortex_spec.read_response(held)[1] == data[2 * PIECE:]
    time.sleep(0.3)
    assert vortex_spec.fetch_piece("127.0.0.1", port, task_id_of(c.url("h.bin")), 0)[1] == data[:PIECE]



def cached_pages(path):
    """How many of the file's pages are in the page cache (mincore over a shared mapping)."""
    import ctypes
    import mmap
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = os.path.getsize(path)
    vector = ctypes.create_string_buffer((size + mmap.PAGESIZE - 1) // mmap.PAGESIZE)
    fd = os.open(path, os.O_RDONLY)
    try:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert address not in (None, ctypes.c_void_p(-1).value), os.strerror(ctypes.get_errno())
        try:
            assert libc.mincore(address, size, vector) == 0, os.strerror(ctypes.get_errno())
        finally:
            libc.munmap(address, size)
    finally:
        os.close(fd)
    return sum(b & 1 for b in vector.raw)


@pytest.mark.parametrize("direct", [True, False])
def test_a_store_keeps_its_content_past_the_page_cache_unless_told_not_to(cluster, direct):
    """By default a dfdaemon writes pieces, and reads them for its children, past the page
    cache: nothing of the task is cached on the parent after a Vortex child and a
    piece-stream child fetched it. With `storage.directIO: false` the content is cached
    and Vortex pieces go out by sendfile; the children get the same bytes either way."""
    data = os.urandom(2 * PIECE + 5000)
    c = cluster({"d.bin": data})
    a = c.daemon("a", "" if direct else "storage:\n  directIO: false\n")
    b = c.daemon("b", "download:\n  protocol: tcp\n")
    assert c.dfget("a", "d.bin") == data
    wait_for_task(c.sched.address, task_id_of(c.url("d.bin")))
    assert c.dfget("b", "d.bin") == data
    assert metric(b, "parent_piece_total", 'transport="vortex"') == 3
    # Only a had the task: all of b's copy came from a, over Vortex.
    assert metric(a, "upload_traffic_total", "") == len(data)
    e = c.daemon("e")
    wait_for_hosts(c.sched.address, 3)
    assert c.dfget("e", "d.bin") == data
    assert metric(e, "parent_piece_total", 'transport="stream"') == 3
    content = c.root / "a" / "content" / task_id_of(c.url("d.bin"))
    # The last page holds the unaligned tail, which goes through the cache.
    pages = cached_pages(content)
    if direct:
        assert pages <= 1, f"{pages} pages of the parent's content are cached"
    else:
        assert pages >= 2 * PIECE // 4096, f"only {pages} pages of the parent's content are cached"


def storage_reads(server):
    """Bytes the process has had read from the disk (`read_bytes` of /proc/PID/io)."""
    fields = dict(line.split(": ") for line in Path(f"/proc/{server.proc.pid}/io").read_text().splitlines())
    return int(fields["read_bytes"])


@pytest.mark.parametrize("protocol", ["grpc", "tcp"])
def test_a_childs_output_is_written_from_the_bytes_it_receives(cluster, protocol):
    """A child writes the user's file from the bytes it receives, as its store writes them:
    its dfdaemon reads nothing of the task back from disk for the output. Its store is read
    past the page cache, so a copy out of it would show in the process's `read_bytes`, as
    the second download (of a task already here, copied whole) shows it does."""
    data = os.urandom(6 * PIECE + 5000)
    c = cluster({"o.bin": data})
    c.daemon("a")
    b = c.daemon("b", f"download:\n  protocol: {protocol}\n")
    assert c.dfget("a", "o.bin") == data
    wait_for_task(c.sched.address, task_id_of(c.url("o.bin")))
    before = storage_reads(b)
    assert c.dfget("b", "o.bin") == data
    transport = "vortex" if protocol == "tcp" else "stream"
    assert metric(b, "parent_piece_total", f'transport="{transport}"') == 7
    during = storage_reads(b) - before
    # The last piece's unaligned tail may be read back through the cache; nothing more.
    assert during < PIECE, f"the child read {during} bytes from disk while writing the output"
    (c.root / "b-o.bin").unlink()
    before = storage_reads(b)
    assert c.dfget("b", "o.bin") == data
    assert storage_reads(b) - before >= 6 * PIECE
