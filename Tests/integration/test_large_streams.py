"""A 1 GiB stream in each direction passes through our server with bounded memory: HTTP/2
flow control and the runtime's backpressure keep at most a few MiB in flight, however
fast the other side is."""

import re
from pathlib import Path

import grpc
import pytest

from conftest import Server, binary, describe, run

MIB = 1 << 20
COUNT = 1024  # 1024 x 1 MiB = 1 GiB
# Generous for a debug build's baseline (~20-40 MiB) plus a few MiB in flight; a server
# that buffered the stream would need over 1 GiB.
MAX_RSS_MIB = 300


def peak_rss_mib(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


@pytest.fixture
def fresh_server(tmp_path, py_env):
    server = Server([binary("interop-server"), "--port", "0"], tmp_path / "stderr.log", env=py_env)
    yield server
    server.stop()


def test_one_gib_server_stream_with_bounded_server_memory(fresh_server, pb):
    m = pb.messages_pb2
    request = m.StreamingOutputCallRequest(
        response_parameters=[m.ResponseParameters(size=MIB) for _ in range(COUNT)])
    total = 0
    with grpc.insecure_channel(fresh_server.address,
                               options=[("grpc.max_receive_message_length", 2 * MIB)]) as channel:
        stub = pb.test_pb2_grpc.TestServiceStub(channel)
        for response in stub.StreamingOutputCall(request, timeout=300):
            total += len(response.payload.body)
    assert total == COUNT * MIB
    peak = peak_rss_mib(fresh_server.proc.pid)
    print(f"server peak RSS after 1 GiB out: {peak:.0f} MiB")
    assert peak < MAX_RSS_MIB, f"server peak RSS {peak:.0f} MiB"


def test_one_gib_client_stream_with_bounded_server_memory(fresh_server, pb):
    m = pb.messages_pb2
    chunk = bytes(MIB)

    def requests():
        for _ in range(COUNT):
            yield m.StreamingInputCallRequest(payload=m.Payload(body=chunk))

    with grpc.insecure_channel(fresh_server.address) as channel:
        stub = pb.test_pb2_grpc.TestServiceStub(channel)
        response = stub.StreamingInputCall(requests(), timeout=300)
    assert response.aggregated_payload_size == COUNT * MIB
    peak = peak_rss_mib(fresh_server.proc.pid)
    print(f"server peak RSS after 1 GiB in: {peak:.0f} MiB")
    assert peak < MAX_RSS_MIB, f"server peak RSS {peak:.0f} MiB"


def test_our_client_reads_one_gib_with_bounded_memory(grpcio_server, interop_client_cmd, py_env):
    # A non-standard case of our interop client: it reads 1 GiB of StreamingOutputCall and
    # fails if its own peak RSS passes the limit.
    res = run([*interop_client_cmd, "--host", "127.0.0.1", "--port", grpcio_server.port,
               "--test-case", "stream_1gib", "--max-rss-mib", str(MAX_RSS_MIB)],
              timeout=600, env=py_env)
    assert res.returncode == 0, describe(res)
    assert "PASS stream_1gib" in res.stdout
