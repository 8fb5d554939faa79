"""The registry mirror as an HTTP/1.1 server: what it refuses, keep-alive, ranges and
HEAD, request bodies, streaming, clients that hang up, and its metrics."""

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import Server, tool
from mirror_setup import MIB, image, metrics_showing, mirror_for, registry, request  # noqa: F401 (fixtures)

HELPERS = Path(__file__).parent / "helpers"


def test_the_mirror_is_not_an_open_proxy(registry, mirror_for):
    m = mirror_for(registry.address)
    a = m.daemon("a")
    for path, headers in (("/v2/test/app/manifests/v1?ns=elsewhere.invalid", {}),
                          ("/v2/test/app/manifests/v1", {"X-Dragonfly-Registry": "https://elsewhere.invalid"}),
                          ("http://elsewhere.invalid/file", {})):
        res, body, _ = request(a, "GET", path, headers)
        assert res.status == 403, (path, res.status, body)
        assert res.getheader("X-Dragonfly-Error-Type") == "proxy"
        assert b"not configured" in body
    res, body, _ = request(a, "CONNECT", "elsewhere.invalid:443")
    assert res.status == 405 and res.getheader("X-Dragonfly-Error-Type") == "proxy"
    res, body, _ = request(a, "PUT", "/v2/test/app/manifests/v1")
    assert res.status == 405
    res, body, _ = request(a, "GET", "/etc/passwd")
    assert res.status == 404


def test_http1_semantics_range_head_keepalive_and_headers(image, registry, mirror_for):
    layout, big = image
    m = mirror_for(registry.address)
    a = m.daemon("a")
    path = f"/v2/test/app/blobs/{big['layer']}"
    data = big["layer_blob"]
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
    conn.request("HEAD", path)
    res = conn.getresponse()
    res.read()
    assert res.status == 200 and int(res.getheader("Content-Length")) == len(data)
    # Same connection (keep-alive): a ranged GET through P2P.
    conn.request("GET", path, headers={"Range": "bytes=5000000-5000099", "X-Dragonfly-Tag": "t1"})
    res = conn.getresponse()
    body = res.read()
    assert res.status == 206, res.status
    assert body == data[5000000:5000100]
    assert res.getheader("Content-Range") == f"bytes 5000000-5000099/{len(data)}"
    assert len(res.getheader("X-Dragonfly-Task-ID") or "") == 64
    conn.request("GET", path, headers={"X-Dragonfly-Tag": "t1"})
    res = conn.getresponse()
    assert res.status == 200 and res.read() == data
    assert res.getheader("Docker-Content-Digest") == big["layer"]
    conn.request("GET", path, headers={"Range": f"bytes={len(data)}-"})
    res = conn.getresponse()
    res.read()
    assert res.status == 416
    conn.close()
    # A tag makes another task; X-Dragonfly-Use-P2P: false goes straight to the registry.
    gets_before = len(registry.blob_gets(big["layer"]))
    res, body, _ = request(a, "GET", path, {"X-Dragonfly-Use-P2P": "false"})
    assert res.status == 200 and body == data
    gets = registry.blob_gets(big["layer"])
    assert len(gets) == gets_before + 1 and gets[-1][2] == 200


def test_first_bytes_leave_before_the_last_piece_arrives(tmp_path, mirror_for):
    # A slow origin (0.5 s per GET, one piece at a time) behind an absolute-URL proxy request.
    (tmp_path / "origin").mkdir()
    data = os.urandom(24 * MIB)
    (tmp_path / "origin" / "big.bin").write_bytes(data)
    origin = Server([sys.executable, HELPERS / "range_origin.py", "0", tmp_path / "origin", "0.5"], tmp_path / "o.log")
    try:
        m = mirror_for(origin.address)
        a = m.daemon("a", proxy_yaml="  rules:\n    - regex: big\\.bin\ndownload:\n  concurrentPieceCount: 1\n")
        conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
        start = time.monotonic()
        conn.request("GET", f"http://{origin.address}/big.bin")
        res = conn.getresponse()
        first = res.read(4096)
        first_at = time.monotonic() - start
        rest = res.read()
        total = time.monotonic() - start
        assert res.status == 200 and first + rest == data
        assert first_at < total / 2, f"first byte at {first_at:.2f}s of {total:.2f}s"
    finally:
        origin.stop()


def test_proxy_metrics_pass_promtool(registry, mirror_for):
    m = mirror_for(registry.address)
    a = m.daemon("a")
    res, body, _ = request(a, "GET", "/v2/")
    assert res.status == 200
    text = metrics_showing(a, 'dragonfly_dfdaemon_proxy_request_total{type="direct",result="success"} 1\n')
    assert 'dragonfly_dfdaemon_proxy_request_total{type="direct",result="success"} 1' in text
    check = subprocess.run([tool("promtool", "prometheus"), "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr


def test_chunked_request_bodies_are_drained_and_the_connection_kept(registry, mirror_for):
    m = mirror_for(registry.address)
    a = m.daemon("a")
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
    conn.request("GET", "/v2/", body=iter([b"ignored ", b"body"]), encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked"})
    res = conn.getresponse()
    assert res.status == 200 and res.read() == b"{}"
    conn.request("GET", "/healthy")
    res = conn.getresponse()
    assert res.status == 200 and res.read() == b"OK"
    conn.close()


class HeadFirstOrigin:
    """An origin that answers every request with its head at once and its 2-byte body only
    when `release` is set: long enough for a client to read the head and hang up."""

    def __init__(self):
        self.release = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(30)
                request = b""
                while b"\r\n\r\n" not in request and len(request) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n")
                self.release.wait(30)
                try:
                    conn.sendall(b"{}")
                except OSError:
                    pass

    def stop(self):
        self.release.set()
        self.listener.close()


def wait_until_server_side_closed(server_port, client_port, timeout=30):
    """Until the server has closed its end of the connection from `client_port` (it is
    neither established nor waiting to close in /proc/net/tcp)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        open_states = set()
        for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            local, remote, state = row.split()[1:4]
            if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
                open_states.add(state)
        if not open_states & {"01", "08"}:  # ESTABLISHED, CLOSE_WAIT
            return
        time.sleep(0.05)
    raise AssertionError(f"the server kept the connection from port {client_port} open")


def test_a_client_that_hangs_up_after_the_head_is_not_a_failed_request(mirror_for):
    # A registry ping (skopeo's GET /v2/) reads the head and closes. The mirror's write of
    # the body then fails; the upstream answered, so the request counts as served.
    origin = HeadFirstOrigin()
    try:
        m = mirror_for(origin.address)
        a = m.daemon("a")
        with socket.create_connection(("127.0.0.1", a.port), timeout=30) as client:
            client.sendall(b"GET /v2/ HTTP/1.1\r\nHost: mirror\r\nConnection: close\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                assert chunk, head
                head += chunk
            assert head.startswith(b"HTTP/1.1 200"), head
            client_port = client.getsockname()[1]
        wait_until_server_side_closed(a.port, client_port)
        origin.release.set()
        log = Path(a.log_path)
        deadline = time.monotonic() + 30
        while "mirror GET /v2/" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        line = next((l for l in log.read_text().splitlines() if "mirror GET /v2/" in l), "")
        assert "(client hung up)" in line, line
        metrics = metrics_showing(a, 'proxy_request_total{type="direct",result="success"} 1')
        counted = "\n".join(l for l in metrics.splitlines() if "proxy_request_total" in l)
        assert 'proxy_request_total{type="direct",result="success"} 1' in metrics, counted
        assert 'result="failure"' not in counted, counted
    finally:
        origin.stop()


def test_a_client_that_hangs_up_midway_through_a_p2p_blob_is_not_a_failed_request(image, registry, mirror_for):
    # containerd cancels a pull; the task was fine, and the next GET gets the whole blob.
    _, big = image
    m = mirror_for(registry.address)
    a = m.daemon("a")
    path = f"/v2/test/app/blobs/{big['layer']}"
    with socket.create_connection(("127.0.0.1", a.port), timeout=60) as client:
        client.sendall(f"GET {path} HTTP/1.1\r\nHost: mirror\r\n\r\n".encode())
        received = b""
        while len(received) < MIB:
            chunk = client.recv(65536)
            assert chunk, received[:200]
            received += chunk
        assert received.startswith(b"HTTP/1.1 200"), received[:200]
    log = Path(a.log_path)
    deadline = time.monotonic() + 60
    while f"mirror GET {path}" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    line = next((l for l in log.read_text().splitlines() if f"mirror GET {path}" in l), "")
    assert "(client hung up)" in line, line
    metrics = metrics_showing(a, 'proxy_request_total{type="p2p",result="success"} 1\n')
    counted = "\n".join(l for l in metrics.splitlines() if "proxy_request_total" in l)
    assert 'proxy_request_total{type="p2p",result="success"} 1' in metrics, counted
    assert 'result="failure"' not in counted, counted
    res, body, _ = request(a, "GET", path)
    assert res.status == 200 and body == big["layer_blob"]
