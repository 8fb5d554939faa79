"""Limits a client can hit, each exceeded on purpose with raw frames or raw HTTP/1.1 (a
library would refuse to send most of these): HTTP/2 handshake and idle timeouts, header
list size, frame size, concurrent streams on the gRPC server; URI, header, body and time
limits on the dfdaemon's HTTP/1.1 side; and the same limits set from config files."""

import os
import socket
import struct
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import unquote

from conftest import Server, binary, run

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
import raw_h2  # noqa: E402
from raw_h2 import DATA, END_STREAM, GOAWAY, HEADERS, RST_STREAM, SETTINGS, frame, grpc_headers  # noqa: E402

EMPTY_CALL = "/grpc.testing.TestService/EmptyCall"


def interop(tmp_path, *flags):
    return Server([binary("interop-server"), "--port", "0", *flags], tmp_path / "server.log")


def connect(server):
    return raw_h2.Connection("127.0.0.1", server.port)


def trailers(conn, stream):
    frames = conn.frames_until(lambda f: f[0] == HEADERS and f[2] == stream and f[1] & END_STREAM)
    assert frames and frames[-1][0] == HEADERS, f"no trailers on stream {stream}: {frames}"
    return dict(frames[-1][3])


def empty_call(conn, stream):
    conn.headers(stream, grpc_headers(EMPTY_CALL))
    conn.send(frame(DATA, END_STREAM, stream, b"\x00\x00\x00\x00\x00"))
    return trailers(conn, stream)


def test_a_client_that_never_finishes_the_preface_is_dropped(tmp_path):
    server = interop(tmp_path, "--handshake-timeout", "1")
    slow = connect(server)
    slow.send(b"PRI * HT")
    start = time.monotonic()
    assert slow.closed_within(6), "a slow-loris client keeps its connection"
    assert time.monotonic() - start >= 0.8
    # One that finishes its handshake in time keeps the connection.
    good = connect(server).handshake()
    assert not good.closed_within(2)
    assert empty_call(good, 1)["grpc-status"] == "0"
    server.assert_alive()
    server.stop()


def test_an_idle_connection_gets_goaway_and_is_closed(tmp_path):
    server = interop(tmp_path, "--idle-timeout", "1")
    conn = connect(server).handshake()
    assert empty_call(conn, 1)["grpc-status"] == "0"
    frames = conn.frames_until(lambda f: f[0] == GOAWAY, timeout=6)
    assert frames and frames[-1][0] == GOAWAY, frames
    last_stream, code = struct.unpack(">II", frames[-1][3][:8])
    assert code == 0 and last_stream == 1, "NO_ERROR, and the call it served is accounted for"
    assert conn.closed_within(3)
    server.stop()


def test_request_headers_over_the_limit_get_resource_exhausted(tmp_path):
    server = interop(tmp_path, "--max-header-list-size", "4096")
    conn = connect(server).handshake()
    conn.headers(1, grpc_headers(EMPTY_CALL, [("x-big", "a" * 6000)]), end_stream=True)
    answer = trailers(conn, 1)
    assert answer["grpc-status"] == "8", answer
    assert "exceed" in unquote(answer["grpc-message"]), answer
    # The stream failed, not the connection: the next call is served.
    assert empty_call(conn, 3)["grpc-status"] == "0"
    server.stop()


def test_a_frame_over_max_frame_size_ends_the_connection(tmp_path):
    body = b"\x00" + struct.pack(">I", 20000) + b"x" * 20000  # one DATA frame of 20005 bytes
    server = interop(tmp_path)  # 16 KiB, the HTTP/2 default
    conn = connect(server).handshake()
    conn.headers(1, grpc_headers(EMPTY_CALL))
    conn.send(frame(DATA, END_STREAM, 1, body))
    frames = conn.frames_until(lambda f: f[0] == GOAWAY)
    # The server answers with GOAWAY and closes. It closes with our unread bytes still in
    # its socket, so the kernel may send a reset that discards the GOAWAY before we read
    # it; either way the call must get no answer and the connection must end.
    goaways = [f for f in frames if f[0] == GOAWAY]
    if goaways:
        assert struct.unpack(">II", goaways[-1][3][:8])[1] == 6, "FRAME_SIZE_ERROR"
    assert not any(f[0] == HEADERS and f[2] == 1 for f in frames), "the oversized frame was not accepted"
    assert conn.closed_within(5), "the connection ends"
    server.stop()
    # Raised to 64 KiB, the same frame is read; its bytes are a valid (if odd) Empty message.
    server = interop(tmp_path, "--max-frame-size", "65536")
    conn = connect(server).handshake()
    conn.frames_until(lambda f: f[0] == SETTINGS)
    conn.headers(1, grpc_headers(EMPTY_CALL))
    conn.send(frame(DATA, END_STREAM, 1, body))
    assert trailers(conn, 1)["grpc-status"] == "0"
    server.stop()


def test_streams_over_max_concurrent_streams_are_refused(tmp_path):
    server = interop(tmp_path, "--max-concurrent-streams", "2")
    conn = connect(server).handshake()
    conn.frames_until(lambda f: f[0] == SETTINGS and not f[1] & 1)
    for stream in (1, 3, 5):  # open calls, none finished
        conn.headers(stream, grpc_headers("/grpc.testing.TestService/FullDuplexCall"))
    frames = conn.frames_until(lambda f: (f[0] == RST_STREAM and f[2] == 5) or f[0] == GOAWAY)
    assert frames, "the third stream got no answer"
    kind, _, stream, payload = frames[-1]
    # nghttp2 refuses the stream while our SETTINGS are unacknowledged, and treats it as a
    # protocol error of the connection afterwards; either way only streams 1 and 3 ran.
    if kind == RST_STREAM:
        assert stream == 5 and struct.unpack(">I", payload)[0] == 7, "REFUSED_STREAM"
    else:
        assert kind == GOAWAY, frames
        last_stream, code = struct.unpack(">II", payload[:8])
        assert last_stream == 3 and code == 1, "PROTOCOL_ERROR after stream 3"
    assert not any(f[0] == RST_STREAM and f[2] in (1, 3) for f in frames), "the first two were not refused"
    server.stop()


def test_calls_over_the_request_rate_are_refused(tmp_path):
    server = interop(tmp_path, "--request-rate-limit", "5", "--request-burst", "5")
    conn = connect(server).handshake()
    answers = [empty_call(conn, 1 + 2 * i) for i in range(12)]
    statuses = [a["grpc-status"] for a in answers]
    assert statuses[:5] == ["0"] * 5, "the burst is served"
    refused = [a for a in answers[5:] if a["grpc-status"] == "8"]
    assert refused, statuses
    assert "calls a second" in unquote(refused[0]["grpc-message"])
    time.sleep(1.2)  # the bucket refills at 5 a second
    assert empty_call(conn, 25)["grpc-status"] == "0"
    server.stop()


def test_data_beyond_the_flow_control_window_is_refused(tmp_path):
    server = interop(tmp_path, "--initial-window-size", "65535")
    conn = connect(server).handshake()
    conn.frames_until(lambda f: f[0] == SETTINGS and not f[1] & 1)
    conn.headers(1, grpc_headers("/grpc.testing.TestService/StreamingInputCall"))
    for _ in range(5):  # 80 KiB on a stream whose window is 64 KiB, without waiting for updates
        conn.send(frame(DATA, 0, 1, b"\x00" * 16384))
    frames = conn.frames_until(lambda f: f[0] in (GOAWAY, RST_STREAM))
    assert frames and frames[-1][0] in (GOAWAY, RST_STREAM), frames
    payload = frames[-1][3]
    code = struct.unpack(">I", payload[4:8] if frames[-1][0] == GOAWAY else payload[:4])[0]
    assert code == 3, "FLOW_CONTROL_ERROR"
    server.stop()


# The dfdaemon's port: HTTP/1.1 (the mirror) and gRPC, with limits from its config file.

DAEMON_LIMITS = """proxy:
  registryMirror:
    url: http://127.0.0.1:1
http:
  maxURILength: 1024
  maxHeaderBytes: 2048
  maxBodyBytes: 4096
  requestTimeout: 1s
rpc:
  handshakeTimeout: 1s
  maxHeaderListSize: 4096
"""


def daemon(tmp_path, config_text):
    config = tmp_path / "dfdaemon.yaml"
    config.write_text(config_text)
    return Server([binary("dfdaemon"), "--config", config, "--port", "0", "--listen-ip", "127.0.0.1",
                   "--data-dir", tmp_path / "data", "--unix-socket", tmp_path / "daemon.sock"], tmp_path / "daemon.log")


def http1(port, raw, wait=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    s.sendall(raw)
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except socket.timeout:
        pass
    s.close()
    return data


def test_the_dfdaemon_http_side_enforces_its_limits(tmp_path):
    d = daemon(tmp_path, DAEMON_LIMITS)
    long_uri = http1(d.port, b"GET /v2/" + b"a" * 2000 + b" HTTP/1.1\r\nHost: m\r\n\r\n")
    assert long_uri.startswith(b"HTTP/1.1 414"), long_uri[:200]
    big_headers = http1(d.port, b"GET /v2/ HTTP/1.1\r\nHost: m\r\nX-Big: " + b"b" * 3000 + b"\r\n\r\n")
    assert big_headers.startswith(b"HTTP/1.1 431"), big_headers[:200]
    big_body = http1(d.port, b"POST /v2/x HTTP/1.1\r\nHost: m\r\nContent-Length: 10000\r\n\r\n" + b"c" * 10000)
    assert big_body.startswith(b"HTTP/1.1 413"), big_body[:200]
    # Within the limits the same port answers normally.
    ok = http1(d.port, b"GET /healthy HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200"), ok[:200]

    # A request head that never ends, and a connection that never says anything.
    for opening in (b"GET /v2/ HTTP/1.1\r\nHo", b""):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        s.sendall(opening)
        start = time.monotonic()
        s.settimeout(8)
        assert s.recv(100) == b"", f"closed after {opening!r}"
        assert time.monotonic() - start < 6
        s.close()

    # The gRPC side takes rpc.maxHeaderListSize from the same file.
    conn = raw_h2.Connection("127.0.0.1", d.port).handshake()
    conn.headers(1, grpc_headers("/grpc.health.v1.Health/Check", [("x-big", "a" * 6000)]), end_stream=True)
    assert trailers(conn, 1)["grpc-status"] == "8"
    d.assert_alive()
    d.stop()


def test_limits_out_of_range_are_config_errors(tmp_path):
    for text, key in (("rpc:\n  maxFrameSize: 100\n", "rpc.maxFrameSize"), ("http:\n  maxHeaderBytes: 10\n", "http.maxHeaderBytes")):
        config = tmp_path / "bad.yaml"
        config.write_text(text)
        res = run([binary("dfdaemon"), "--config", config, "--port", "0", "--data-dir", tmp_path / "d"], timeout=30)
        assert res.returncode != 0 and key in res.stderr, res.stderr


def piece_request(task_id, number):
    task = task_id.encode()
    return b"\x0a" + bytes([len(task)]) + task + b"\x10" + bytes([number])


def piece_call_status(conn, stream, task_id):
    """grpc-status of a one-request PieceTransfer stream made with raw frames."""
    body = piece_request(task_id, 0)
    conn.headers(stream, grpc_headers("/dfswift.peer.v1.PieceTransfer/DownloadPieces"))
    conn.send(frame(DATA, END_STREAM, stream, b"\x00" + struct.pack(">I", len(body)) + body))
    return trailers(conn, stream).get("grpc-status")


def test_uploads_to_more_hosts_than_the_concurrent_limit_are_refused(tmp_path):
    import grpc
    import pytest
    d = daemon(tmp_path, "upload:\n  concurrentLimit: 1\n")
    channel = grpc.insecure_channel(d.address)
    pieces = channel.stream_stream("/dfswift.peer.v1.PieceTransfer/DownloadPieces",
                                   request_serializer=lambda b: b, response_deserializer=lambda b: b)
    release = threading.Event()

    def held():
        release.wait(30)
        return
        yield

    first = pieces(held(), timeout=40)  # 127.0.0.1 holds the only upload slot
    time.sleep(0.5)
    # Another host is refused...
    other = raw_h2.Connection("127.0.0.1", d.port, source="127.0.0.2").handshake()
    assert piece_call_status(other, 1, "ab" * 32) == "8", "a second host is RESOURCE_EXHAUSTED"
    # ...while the host already served may open another stream (and is told the task is not here).
    with pytest.raises(grpc.RpcError) as answered:
        list(pieces(iter([piece_request("ab" * 32, 0)]), timeout=10))
    assert answered.value.code() == grpc.StatusCode.NOT_FOUND
    release.set()
    first.cancel()
    # Once the first host's streams end, the other host is served.
    deadline, stream, status = time.monotonic() + 10, 3, None
    while time.monotonic() < deadline:
        status = piece_call_status(other, stream, "ab" * 32)
        if status == "5":
            break
        stream += 2
        time.sleep(0.1)
    assert status == "5", status
    other.close()
    with urllib.request.urlopen(f"http://{d.address}/metrics", timeout=10) as res:
        refusals = [line for line in res.read().decode().splitlines() if line.startswith("dragonfly_dfdaemon_upload_refused_total ")]
    assert refusals and float(refusals[0].split()[1]) >= 1, refusals
    channel.close()
    d.stop()


def test_the_manager_rest_side_enforces_header_size_and_idle_time(tmp_path):
    config = tmp_path / "manager.yaml"
    config.write_text("server:\n  rest:\n    idleTimeout: 1s\n    maxHeaderBytes: 2048\n")
    m = Server([binary("manager"), "--config", config, "--grpc-port", "0", "--rest-port", "0", "--listen-ip", "127.0.0.1",
                "--data-dir", tmp_path / "m"], tmp_path / "manager.log",
               env=dict(os.environ, DRAGONFLY_INITIAL_ROOT_PASSWORD="limits-password"))
    big = http1(m.metrics_port, b"GET /healthy HTTP/1.1\r\nHost: m\r\nX-Big: " + b"b" * 4000 + b"\r\n\r\n")
    assert big.startswith(b"HTTP/1.1 4"), big[:200]
    ok = http1(m.metrics_port, b"GET /healthy HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200"), ok[:200]
    body = b'{"name": "root", "password": "' + b"p" * (2 << 20) + b'"}'
    too_big = http1(m.metrics_port, b"POST /api/v1/users/signin HTTP/1.1\r\nHost: m\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
    assert too_big.startswith(b"HTTP/1.1 413"), too_big[:200]
    assert b"ppppp" not in too_big, "the refused body is not echoed back"
    s = socket.create_connection(("127.0.0.1", m.metrics_port), timeout=10)
    start = time.monotonic()
    assert s.recv(100) == b"", "an idle REST connection is closed"
    assert time.monotonic() - start < 5
    s.close()
    m.stop()


def test_downloads_from_origins_outside_the_allow_list_are_refused(tmp_path):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "f.bin").write_bytes(os.urandom(100_000))
    helpers = Path(__file__).parent / "helpers"
    allowed = Server([sys.executable, helpers / "range_origin.py", "0", tmp_path / "o"], tmp_path / "allowed.log")
    other = Server([sys.executable, helpers / "range_origin.py", "0", tmp_path / "o"], tmp_path / "other.log")
    d = daemon(tmp_path, f"download:\n  allowedOrigins:\n    - 127.0.0.1:{allowed.port}\n")
    ok = run([binary("dfget"), f"http://{allowed.address}/f.bin", "-O", tmp_path / "ok.bin", "--daemon", f"unix:{tmp_path}/daemon.sock",
              "--quiet"])
    assert ok.returncode == 0 and (tmp_path / "ok.bin").read_bytes() == (tmp_path / "o" / "f.bin").read_bytes(), ok.stderr
    refused = run([binary("dfget"), f"http://{other.address}/f.bin", "-O", tmp_path / "no.bin", "--daemon",
                   f"unix:{tmp_path}/daemon.sock", "--quiet"])
    assert refused.returncode != 0 and "download.allowedOrigins" in refused.stderr, refused.stderr
    assert not (tmp_path / "no.bin").exists()
    assert "GET" not in Path(other.log_path).read_text(), "the refused origin was never contacted"
    for s in (d, allowed, other):
        s.stop()
