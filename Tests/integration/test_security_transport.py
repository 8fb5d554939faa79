"""Transport hardening against real binaries: the per-address connection cap (gRPC port and
the dfdaemon's shared HTTP/1.1 port), the idle timeout despite answered keepalive PINGs,
memory given back after a connection flood, a prompt close after `Connection: close`, and
INVALID_ARGUMENT for a request that is not its message. Every loop is bounded in count
and time; every wait is on an event (a frame, an end of file) with a timeout."""

import os
import resource
import socket
import struct
import sys
import time
from pathlib import Path

import pytest

from conftest import Server, binary, missing, run

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
import raw_h2  # noqa: E402
from raw_h2 import ACK, DATA, END_STREAM, GOAWAY, HEADERS, PING, SETTINGS, frame, grpc_headers  # noqa: E402

HEALTH_CHECK = "/grpc.health.v1.Health/Check"


def scheduler(tmp_path, config_text):
    config = tmp_path / "scheduler.yaml"
    config.write_text(config_text)
    return Server([binary("scheduler"), "--config", config, "--port", "0", "--metrics-port", "0",
                   "--listen-ip", "127.0.0.1", "--data-dir", tmp_path / "sched"], tmp_path / "scheduler.log")


def daemon(tmp_path, config_text):
    config = tmp_path / "dfdaemon.yaml"
    config.write_text(config_text)
    return Server([binary("dfdaemon"), "--config", config, "--port", "0", "--listen-ip", "127.0.0.1",
                   "--data-dir", tmp_path / "data", "--unix-socket", ""], tmp_path / "daemon.log")


HEALTHY = b"GET /healthy HTTP/1.1\r\nHost: t\r\n\r\n"


def closed_without_answer(port, why):
    """Connects to `port`, sends a request and asserts the server hangs up without a word."""
    extra = socket.create_connection(("127.0.0.1", port), timeout=10)
    extra.settimeout(5)
    try:
        extra.sendall(HEALTHY)
        assert extra.recv(100) == b"", why
    except (ConnectionResetError, BrokenPipeError):
        pass
    extra.close()


def served_from_another_address(port):
    """A request from 127.0.0.2 (another client address) is answered 200."""
    other = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=("127.0.0.2", 0))
    other.sendall(b"GET /healthy HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert other.recv(100).startswith(b"HTTP/1.1 200"), "another address is served"
    other.close()


def call_status(conn, stream, path, body=b""):
    """grpc-status of one unary call made with raw frames: `body` is sent as one message."""
    conn.headers(stream, grpc_headers(path))
    conn.send(frame(DATA, END_STREAM, stream, b"\x00" + struct.pack(">I", len(body)) + body))
    frames = conn.frames_until(lambda f: f[0] == HEADERS and f[2] == stream and f[1] & END_STREAM)
    assert frames and frames[-1][0] == HEADERS, f"no trailers on stream {stream}: {frames}"
    return dict(frames[-1][3]).get("grpc-status")


def admitted(conn, wait=5):
    """True if the server answered the preface with its SETTINGS; False if it closed."""
    try:
        conn.handshake()
    except OSError:  # refused before the preface was written
        return False
    try:
        f = conn.read_frame(time.monotonic() + wait)
    except (ConnectionResetError, OSError):
        return False
    assert f is not None, "the server neither answered nor closed"
    return f[0] == SETTINGS


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def open_fds(pid):
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def test_connections_over_the_per_ip_cap_are_closed_and_calls_still_work(tmp_path):
    import grpc
    cap, tries = 20, 40
    s = scheduler(tmp_path, f"rpc:\n  maxConnectionsPerIP: {cap}\n")
    conns = [raw_h2.Connection("127.0.0.1", s.port) for _ in range(tries)]
    verdicts = [admitted(c) for c in conns]
    assert verdicts.count(True) == cap, verdicts
    refused = [c for c, ok in zip(conns, verdicts) if not ok]
    assert len(refused) == tries - cap
    for c in refused:
        assert c.closed_within(2), "a refused connection stays open"
        c.close()
    held = [c for c, ok in zip(conns, verdicts) if ok]

    # 127.0.0.1 is at its cap: a client there is turned away ...
    channel = grpc.insecure_channel(s.address)
    check = channel.unary_unary(HEALTH_CHECK, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError):
        check(b"", timeout=2)
    # ... a client from another address is served, and so are the held connections ...
    try:
        other = raw_h2.Connection("127.0.0.1", s.port, source="127.0.0.2")
    except OSError as err:
        missing(f"cannot connect from 127.0.0.2: {err}")
    assert call_status(other.handshake(), 1, HEALTH_CHECK) == "0"
    assert call_status(held[0], 1, HEALTH_CHECK) == "0"
    other.close()
    # ... and once the idle ones go, 127.0.0.1 gets in again (the server frees their slots
    # when it sees them close: retried for a bounded time).
    for c in held:
        c.close()
    deadline = time.monotonic() + 15
    while True:
        try:
            check(b"", timeout=2)
            break
        except grpc.RpcError:
            if time.monotonic() > deadline:
                raise
    channel.close()
    s.assert_alive()
    s.stop()


def test_an_idle_connection_gets_goaway_although_it_answers_keepalive_pings(tmp_path):
    s = scheduler(tmp_path, "rpc:\n  idleTimeout: 1s\n  keepaliveInterval: 200ms\n  keepaliveTimeout: 5s\n")
    conn = raw_h2.Connection("127.0.0.1", s.port).handshake()
    assert call_status(conn, 1, HEALTH_CHECK) == "0"
    start, pings, goaway = time.monotonic(), 0, None
    deadline = start + 10
    while goaway is None:
        f = conn.read_frame(deadline)
        assert f is not None, f"no GOAWAY within 10 s ({pings} PINGs answered)"
        if f[0] == PING and not f[1] & ACK:
            pings += 1
            conn.send(frame(PING, ACK, 0, f[3]))  # a live client: every PING answered
        elif f[0] == GOAWAY:
            goaway = f
    waited = time.monotonic() - start
    last_stream, code = struct.unpack(">II", goaway[3][:8])
    print(f"GOAWAY after {waited:.2f} s idle, {pings} keepalive PINGs answered meanwhile")
    assert pings >= 1, "the server sent no keepalive PING"
    assert code == 0 and last_stream == 1
    assert waited >= 0.8
    assert conn.closed_within(3)
    s.assert_alive()
    s.stop()


def test_memory_returns_after_a_connection_flood(tmp_path):
    flood = 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < flood + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, flood + 500), hard))
        if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < flood + 200:
            missing("the open-file limit is too low for the flood")
    s = scheduler(tmp_path, f"rpc:\n  maxConnectionsPerIP: {flood + 100}\n")
    pid = s.proc.pid
    warm = raw_h2.Connection("127.0.0.1", s.port).handshake()
    assert call_status(warm, 1, HEALTH_CHECK) == "0"
    warm.close()
    fds_before = open_fds(pid)
    baseline = rss_kib(pid)

    conns, stop = [], time.monotonic() + 60
    while len(conns) < flood and time.monotonic() < stop:
        c = raw_h2.Connection("127.0.0.1", s.port)
        c.handshake()
        conns.append(c)
    assert len(conns) == flood, f"only {len(conns)} connections in 60 s"
    # Each has a server side (its SETTINGS came back), so each holds its nghttp2 session.
    for c in conns:
        f = c.read_frame(time.monotonic() + 10)
        assert f is not None and f[0] == SETTINGS, f
    during = rss_kib(pid)
    for c in conns:
        c.close()
    # The server has seen every close once its descriptors are back where they were.
    deadline = time.monotonic() + 30
    while open_fds(pid) > fds_before + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_fds(pid) <= fds_before + 2, f"{open_fds(pid)} descriptors open, {fds_before} before the flood"
    # The trim runs off the event loops just after the last close; RSS is read until it
    # is within the bound, for a bounded time.
    grown = during - baseline
    bound = baseline + max(grown // 4, 8 << 10)
    deadline = time.monotonic() + 10
    after = rss_kib(pid)
    while after > bound and time.monotonic() < deadline:
        time.sleep(0.2)
        after = rss_kib(pid)
    print(f"scheduler RSS: baseline {baseline / 1024:.1f} MiB, with {flood} connections {during / 1024:.1f} MiB, "
          f"after they closed {after / 1024:.1f} MiB (bound {bound / 1024:.1f} MiB)")
    assert after <= bound
    s.assert_alive()
    s.stop()


def test_connection_close_ends_the_connection_at_once(tmp_path):
    d = daemon(tmp_path, "proxy:\n  registryMirror:\n    url: http://127.0.0.1:1\n")
    for request in (b"GET /healthy HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n",
                    # keep-alive first, then close on the same connection
                    b"GET /healthy HTTP/1.1\r\nHost: m\r\n\r\nGET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n"):
        sock = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        sock.sendall(request)
        start, data = time.monotonic(), b""
        sock.settimeout(10)
        while chunk := sock.recv(65536):
            data += chunk
        took = time.monotonic() - start
        sock.close()
        print(f"{request.count(b'GET')} request(s): closed {took:.3f} s after sending")
        assert data.startswith(b"HTTP/1.1 200"), data[:200]
        assert data.count(b"HTTP/1.1 200") == request.count(b"GET")
        assert took < 2, f"the server kept the socket {took:.1f} s after Connection: close"
    d.assert_alive()
    d.stop()


def test_the_dfdaemon_shared_port_caps_http1_and_grpc_together(tmp_path):
    d = daemon(tmp_path, "proxy:\n  registryMirror:\n    url: http://127.0.0.1:1\nrpc:\n  maxConnectionsPerIP: 3\n")
    held = [raw_h2.Connection("127.0.0.1", d.port).handshake() for _ in range(2)]
    assert all(c.read_frame(time.monotonic() + 5)[0] == SETTINGS for c in held)
    ok = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    ok.sendall(b"GET /healthy HTTP/1.1\r\nHost: m\r\n\r\n")
    assert ok.recv(100).startswith(b"HTTP/1.1 200")
    # A fourth connection, HTTP/1.1 this time, is closed without an answer.
    extra = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    try:
        extra.sendall(b"GET /healthy HTTP/1.1\r\nHost: m\r\n\r\n")
        extra.settimeout(5)
        assert extra.recv(100) == b""
    except ConnectionResetError:
        pass
    extra.close()
    ok.close()
    for c in held:
        c.close()
    d.assert_alive()
    d.stop()


def test_a_malformed_request_message_is_invalid_argument(tmp_path):
    import grpc
    s = scheduler(tmp_path, "")
    # Valid gRPC framing around bytes that are no StatPeerRequest: field 1 announces 16
    # bytes and carries 3.
    conn = raw_h2.Connection("127.0.0.1", s.port).handshake()
    assert call_status(conn, 1, "/scheduler.v2.Scheduler/StatPeer", b"\x0a\x10abc") == "3"
    assert call_status(conn, 3, HEALTH_CHECK, b"\xff\xff\xff") == "3"
    conn.close()
    # The same through a gRPC library.
    channel = grpc.insecure_channel(s.address)
    stat = channel.unary_unary("/scheduler.v2.Scheduler/StatPeer", request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as err:
        stat(b"\x0a\x10abc", timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value
    channel.close()
    s.assert_alive()
    s.stop()


def test_connection_limits_out_of_range_are_config_errors(tmp_path):
    for text, key in (("rpc:\n  keepaliveTimeout: 0s\n", "rpc.keepaliveTimeout"),
                      ("rpc:\n  maxConnectionsPerIP: -1\n", "rpc.maxConnectionsPerIP"),
                      ("rpc:\n  maxConnections: 0\n", "rpc.maxConnections")):
        config = tmp_path / "bad.yaml"
        config.write_text(text)
        res = run([binary("scheduler"), "--config", config, "--port", "0", "--metrics-port", "0",
                   "--data-dir", tmp_path / "s"], timeout=30)
        assert res.returncode != 0 and key in res.stderr, (text, res.stderr)


def test_the_vortex_port_caps_connections_per_address_and_closes_idle_ones(tmp_path):
    import re
    d = daemon(tmp_path, "rpc:\n  maxConnectionsPerIP: 3\n  idleTimeout: 1s\n")
    found = re.search(r"Vortex on (\d+)", Path(d.log_path).read_text())
    assert found, Path(d.log_path).read_text()[-2000:]
    port = int(found.group(1))
    held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(3)]
    # A fourth from the same address is closed at once, before it sends anything...
    extra = socket.create_connection(("127.0.0.1", port), timeout=10)
    extra.settimeout(5)
    start = time.monotonic()
    try:
        assert extra.recv(100) == b"", "a connection over the cap gets nothing"
    except ConnectionResetError:
        pass
    assert time.monotonic() - start < 2
    extra.close()
    # ...while one from another address is served (it sends a close packet and is let go).
    other = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=("127.0.0.2", 0))
    other.sendall(bytes([0, 254, 0, 0, 0, 0]))
    other.settimeout(5)
    assert other.recv(100) == b""
    other.close()
    # The idle ones are closed after rpc.idleTimeout, which frees the address's slots.
    for c in held:
        c.settimeout(5)
        start = time.monotonic()
        try:
            assert c.recv(100) == b""
        except ConnectionResetError:
            pass
        assert time.monotonic() - start < 4, "an idle Vortex connection was kept"
        c.close()
    again = socket.create_connection(("127.0.0.1", port), timeout=10)
    again.settimeout(0.5)
    with pytest.raises(socket.timeout):
        again.recv(100)  # admitted: nothing to read, and not closed
    again.close()
    d.assert_alive()
    d.stop()


def test_the_metrics_port_caps_connections_per_address(tmp_path):
    s = scheduler(tmp_path, "")
    held = [socket.create_connection(("127.0.0.1", s.metrics_port), timeout=10) for _ in range(64)]
    closed_without_answer(s.metrics_port, "a 65th connection from one address is closed without an answer")
    served_from_another_address(s.metrics_port)
    for c in held:
        c.close()
    s.assert_alive()
    s.stop()


def test_the_manager_rest_port_caps_connections_per_address(tmp_path):
    config = tmp_path / "manager.yaml"
    config.write_text("rpc:\n  maxConnectionsPerIP: 5\n")
    m = Server([binary("manager"), "--config", config, "--grpc-port", "0", "--rest-port", "0", "--listen-ip", "127.0.0.1",
                "--data-dir", tmp_path / "m"], tmp_path / "manager.log",
               env=dict(os.environ, DRAGONFLY_INITIAL_ROOT_PASSWORD="transport-password"))
    held = [socket.create_connection(("127.0.0.1", m.metrics_port), timeout=10) for _ in range(5)]
    for c in held:  # each is served: the cap counts them
        c.sendall(b"GET /healthy HTTP/1.1\r\nHost: m\r\n\r\n")
        assert c.recv(100).startswith(b"HTTP/1.1 200")
    closed_without_answer(m.metrics_port, "a sixth connection from one address is closed without an answer")
    served_from_another_address(m.metrics_port)
    held.pop().close()
    deadline, served = time.monotonic() + 10, False
    while not served and time.monotonic() < deadline:
        again = socket.create_connection(("127.0.0.1", m.metrics_port), timeout=10)
        again.settimeout(2)
        try:
            again.sendall(b"GET /healthy HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
            served = again.recv(100).startswith(b"HTTP/1.1 200")
        except (ConnectionResetError, BrokenPipeError, socket.timeout):
            pass
        again.close()
        time.sleep(0.1)
    assert served, "a slot freed by a closed connection is given again"
    for c in held:
        c.close()
    m.assert_alive()
    m.stop()


def test_a_tls_dfdaemons_plain_mirror_port_caps_connections_per_address(tmp_path):
    import subprocess
    repo = Path(__file__).resolve().parents[2]
    made = subprocess.run(["bash", repo / "tools" / "make-test-ca.sh", tmp_path / "ca", "node"], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    config = tmp_path / "dfdaemon.yaml"
    config.write_text("rpc:\n  maxConnectionsPerIP: 3\n")
    d = Server([binary("dfdaemon"), "--config", config, "--port", "0", "--listen-ip", "127.0.0.1", "--data-dir", tmp_path / "data",
                "--unix-socket", "", "--http-port", "0", "--tls-cert", tmp_path / "ca" / "node.pem",
                "--tls-key", tmp_path / "ca" / "node.key"], tmp_path / "daemon.log")
    port = d.metrics_port
    assert port, "the TLS dfdaemon printed its plaintext HTTP port"
    held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(3)]
    for c in held:
        c.sendall(b"GET /healthy HTTP/1.1\r\nHost: d\r\n\r\n")
        assert c.recv(100).startswith(b"HTTP/1.1 200")
    closed_without_answer(port, "a fourth connection from one address is closed without an answer")
    for c in held:
        c.close()
    d.assert_alive()
    d.stop()


def test_a_large_body_ended_by_connection_close_arrives_whole(tmp_path):
    # The half-close that ends a `Connection: close` response must come after the last
    # queued byte, however much the async writer still held when the responder returned.
    import hashlib
    body = os.urandom(24 << 20)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    blobs = tmp_path / "o" / "v2" / "x" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / digest).write_bytes(body)
    o = Server([sys.executable, Path(__file__).parent / "helpers" / "range_origin.py", "0", tmp_path / "o"], tmp_path / "o.log")
    d = daemon(tmp_path, f"proxy:\n  registryMirror:\n    url: http://{o.address}\n")
    for attempt in range(4):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=30)
        s.sendall(f"GET /v2/x/blobs/{digest} HTTP/1.1\r\nHost: m\r\nX-Dragonfly-Use-P2P: false\r\n"
                  "Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(1 << 20):
            data += chunk
        s.close()
        head, _, got = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        assert len(got) == len(body) and got == body, f"attempt {attempt}: {len(got)} of {len(body)} bytes"
    d.assert_alive()
    for p in (d, o):
        p.stop()
