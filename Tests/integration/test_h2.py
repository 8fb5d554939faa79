"""Raw HTTP/2 against our interop-server with nghttp2's own tools (h2c, loopback):
h2load for many concurrent unary calls, nghttp -v to read the trailers frame by frame."""

import re

import pytest

from conftest import describe, run, tool

GRPC_HEADERS = ["-H", "content-type: application/grpc", "-H", "te: trailers"]
REQUESTS = 2000


@pytest.fixture
def empty_message(tmp_path):
    """A gRPC request body: uncompressed flag 0, length 0, then the empty message."""
    path = tmp_path / "empty.grpc"
    path.write_bytes(b"\x00\x00\x00\x00\x00")
    return path


def test_h2load_unary_calls_all_succeed(interop_server, empty_message):
    h2load = tool("h2load", "nghttp2-client")
    url = f"http://{interop_server.address}/grpc.testing.TestService/EmptyCall"
    res = run([h2load, "-n", REQUESTS, "-c", "4", "-m", "16", "-d", empty_message,
               *GRPC_HEADERS, "--connection-inactivity-timeout=10", url], timeout=120)
    assert res.returncode == 0, describe(res)
    # e.g. "requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored, 0 timeout"
    match = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, "
                      r"(\d+) failed, (\d+) errored, (\d+) timeout", res.stdout)
    assert match, describe(res)
    total, done, succeeded, failed, errored, timeouts = map(int, match.groups())
    assert (total, done, succeeded) == (REQUESTS, REQUESTS, REQUESTS), describe(res)
    assert (failed, errored, timeouts) == (0, 0, 0), describe(res)
    assert re.search(rf"status codes: {REQUESTS} 2xx", res.stdout), describe(res)
    interop_server.assert_alive()


@pytest.mark.parametrize("path, status", [
    ("/grpc.testing.TestService/EmptyCall", "0"),
    ("/no.such.Service/Method", "12"),
])
def test_nghttp_sees_grpc_status_in_trailers(interop_server, empty_message, path, status):
    nghttp = tool("nghttp", "nghttp2-client")
    url = f"http://{interop_server.address}{path}"
    res = run([nghttp, "-v", "--timeout=10", "-d", empty_message, *GRPC_HEADERS, url], timeout=30)
    assert res.returncode == 0, describe(res)
    # Received header lines look like "[  0.001] recv (stream_id=13) grpc-status: 12".
    headers = re.findall(r"recv \(stream_id=\d+\) (:?[\w-]+): (.*)", res.stdout)
    assert (":status", "200") in headers, describe(res)
    assert ("grpc-status", status) in headers, describe(res)
    # The status comes in a HEADERS frame that ends the stream (trailers, or
    # trailers-only for an immediate error), not through RST_STREAM.
    assert "RST_STREAM" not in res.stdout, describe(res)
    flags = re.findall(r"recv HEADERS frame <length=\d+, flags=0x([0-9a-f]+),", res.stdout)
    assert any(int(f, 16) & 0x1 for f in flags), "no HEADERS frame with END_STREAM" + describe(res)


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x05\x07\x00\x00\x00\x00\x00garbage-frame",
    bytes(range(256)) * 4,
])
def test_malformed_input_closes_only_that_connection(interop_server, garbage):
    import socket
    host, port = interop_server.address.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(garbage)
        received = b""
        while True:  # bounded by the socket timeout: the server must close on its own
            chunk = s.recv(4096)
            if not chunk:
                break
            received += chunk
            assert len(received) < 1 << 16
    interop_server.assert_alive()
    # The server still serves others.
    import grpc
    with grpc.insecure_channel(interop_server.address) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
