"""Clients nobody here wrote, as users run them: grpc-go (Debian's golang-google-grpc-dev,
built here with Debian's Go) dialling the dfdaemon's unix socket the way grpc-go users do,
which sends the socket's path as :authority, and the same call over TCP; raw frames for
the authority rule on its own, and for the header rules the server still enforces."""

import os
import shutil
import sys
from pathlib import Path

import pytest

from conftest import Server, binary, describe, missing, run

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
import raw_h2  # noqa: E402
from raw_h2 import END_STREAM, HEADERS, RST_STREAM, grpc_headers  # noqa: E402

HELPERS = Path(__file__).parent / "helpers"
GOPATH = "/usr/share/gocode"


@pytest.fixture(scope="module")
def grpcgo_health(tmp_path_factory):
    go = shutil.which("go")
    if go is None or not Path(GOPATH, "src/google.golang.org/grpc").is_dir():
        missing("Go or grpc-go not installed (apt-get install golang-go golang-google-grpc-dev)")
    out = tmp_path_factory.mktemp("grpcgo") / "grpcgo-health"
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": GOPATH, "GOFLAGS": "",
           "GOCACHE": str(tmp_path_factory.getbasetemp() / "gocache")}
    res = run([go, "build", "-o", out, HELPERS / "grpcgo_health" / "main.go"], timeout=300, env=env)
    assert res.returncode == 0, describe(res)
    return out


def test_grpc_go_calls_the_dfdaemon_over_its_unix_socket_and_tcp(tmp_path, grpcgo_health):
    sched = Server([binary("scheduler"), "--port", "0", "--metrics-port", "0", "--listen-ip", "127.0.0.1",
                    "--data-dir", tmp_path / "sched"], tmp_path / "sched.log")
    socket_path = tmp_path / "dfdaemon.sock"
    daemon = Server([binary("dfdaemon"), "--port", "0", "--listen-ip", "127.0.0.1", "--hostname", "a",
                     "--scheduler", sched.address, "--data-dir", tmp_path / "a", "--unix-socket", socket_path],
                    tmp_path / "a.log")
    try:
        for target in (f"unix:{socket_path}", f"127.0.0.1:{daemon.port}"):
            res = run([grpcgo_health, target], timeout=60)
            assert res.returncode == 0 and res.stdout.strip() == "SERVING", f"{target}: {describe(res)}"
        daemon.assert_alive()
    finally:
        daemon.stop()
        sched.stop()


@pytest.fixture
def interop(tmp_path):
    server = Server([binary("interop-server"), "--port", "0"], tmp_path / "server.log")
    yield server
    server.stop()


def call(server, fields):
    conn = raw_h2.Connection("127.0.0.1", server.port).handshake()
    conn.headers(1, fields)
    conn.send(raw_h2.frame(raw_h2.DATA, END_STREAM, 1, b"\x00\x00\x00\x00\x00"))
    return conn.frames_until(lambda f: (f[0] == HEADERS and f[1] & END_STREAM and f[2] == 1) or
                             (f[0] == RST_STREAM and f[2] == 1))


def test_any_authority_value_is_accepted(interop):
    for authority in ("/run/dragonfly/dfdaemon.sock", "localhost:65001", "%2Frun%2Fd.sock"):
        fields = [(n, authority if n == ":authority" else v) for n, v in grpc_headers("/grpc.testing.TestService/EmptyCall")]
        frames = call(interop, fields)
        assert frames and frames[-1][0] == HEADERS, f"{authority}: {frames}"
        assert dict(frames[-1][3])["grpc-status"] == "0"


@pytest.mark.parametrize("fields", [
    grpc_headers("/grpc.testing.TestService/EmptyCall", [("connection", "close")]),
    grpc_headers("/grpc.testing.TestService/EmptyCall", [("Upper", "x")]),
    [(":method", "POST"), (":scheme", "http"), (":authority", "x"), ("content-type", "application/grpc")],
    [("content-type", "application/grpc")] + grpc_headers("/grpc.testing.TestService/EmptyCall"),
    grpc_headers("/grpc.testing.TestService/EmptyCall", [(":status", "200")]),
], ids=["connection-header", "uppercase-name", "no-path", "pseudo-after-regular", "response-pseudo-header"])
def test_malformed_requests_are_still_reset_with_protocol_error(interop, fields):
    frames = call(interop, fields)
    assert frames and frames[-1][0] == RST_STREAM, frames
    assert int.from_bytes(frames[-1][3][:4], "big") == 1, "PROTOCOL_ERROR"
    interop.assert_alive()
