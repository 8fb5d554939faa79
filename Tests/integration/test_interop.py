"""gRPC interop in both directions: grpcio's client against our interop-server, and our
interop-client against grpcio's server. Each test case runs in its own client process,
so one hanging or crashing case cannot take the others with it."""

import sys
import threading
import time

import grpc
import pytest

from conftest import GRPCIO_CLIENT, describe, free_port, run

CASES = [
    "empty_unary", "large_unary", "client_streaming", "server_streaming", "ping_pong",
    "empty_stream", "custom_metadata", "status_code_and_message", "special_status_message",
    "unimplemented_method", "unimplemented_service", "cancel_after_begin",
    "cancel_after_first_response", "timeout_on_sleeping_server",
]
CLIENT_TIMEOUT = 60


@pytest.mark.parametrize("case", CASES)
def test_grpcio_client_against_our_server(case, interop_server, py_env):
    res = run([sys.executable, GRPCIO_CLIENT, "--host", "127.0.0.1",
               "--port", interop_server.port, "--test_case", case],
              timeout=CLIENT_TIMEOUT, env=py_env)
    assert res.returncode == 0, describe(res) + "\n" + interop_server.log_tail()
    interop_server.assert_alive()


@pytest.mark.parametrize("case", CASES)
def test_our_client_against_grpcio_server(case, grpcio_server, interop_client_cmd, py_env):
    res = run([*interop_client_cmd, "--host", "127.0.0.1", "--port", grpcio_server.port,
               "--test-case", case], timeout=CLIENT_TIMEOUT, env=py_env)
    assert res.returncode == 0, describe(res)
    grpcio_server.assert_alive()


def test_our_client_fails_without_a_server(interop_client_cmd, py_env):
    # Negative control: exit code 0 must mean a case passed, not merely that it ran.
    res = run([*interop_client_cmd, "--host", "127.0.0.1", "--port", free_port(),
               "--test-case", "empty_unary"], timeout=CLIENT_TIMEOUT, env=py_env)
    assert res.returncode != 0, describe(res)


# Server features no interop client case exercises.

@pytest.fixture
def stub(interop_server, pb):
    with grpc.insecure_channel(interop_server.address) as channel:
        yield pb.test_pb2_grpc.TestServiceStub(channel)


def test_half_duplex_replies_only_after_half_close(stub, pb):
    m = pb.messages_pb2
    half_closed = threading.Event()

    def requests():
        for size in (1, 2, 3):
            yield m.StreamingOutputCallRequest(response_parameters=[m.ResponseParameters(size=size)])
        # Hold the half-close back a little: an early reply would arrive in this window.
        time.sleep(0.3)
        half_closed.set()

    received = []
    for response in stub.HalfDuplexCall(requests(), timeout=20):
        received.append((len(response.payload.body), half_closed.is_set()))
    assert received == [(1, True), (2, True), (3, True)], \
        "(size, sent after half-close) per response"


def test_interval_us_delays_each_response(stub, pb):
    m = pb.messages_pb2
    request = m.StreamingOutputCallRequest(response_parameters=[
        m.ResponseParameters(size=4, interval_us=150_000) for _ in range(3)])
    start = time.monotonic()
    arrivals = [time.monotonic() - start for _ in stub.StreamingOutputCall(request, timeout=20)]
    assert len(arrivals) == 3
    # interval_us sleeps before each response, so they accumulate: 0.15, 0.30, 0.45 s.
    for i, t in enumerate(arrivals):
        assert t >= 0.15 * (i + 1) - 0.02, f"response {i} after {t:.3f}s: {arrivals}"


def test_streaming_output_echoes_status(stub, pb):
    m = pb.messages_pb2
    request = m.StreamingOutputCallRequest(response_status=m.EchoStatus(code=9, message="later"))
    with pytest.raises(grpc.RpcError) as err:
        list(stub.StreamingOutputCall(request, timeout=20))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.details() == "later"


def test_gzip_compressed_requests_are_accepted(interop_server, pb):
    # grpcio compresses request messages and sends grpc-encoding: gzip; a highly
    # compressible payload makes sure the compressed flag is really set on the wire.
    m = pb.messages_pb2
    with grpc.insecure_channel(interop_server.address, compression=grpc.Compression.Gzip) as channel:
        stub = pb.test_pb2_grpc.TestServiceStub(channel)
        response = stub.UnaryCall(m.SimpleRequest(response_size=10, payload=m.Payload(body=bytes(200_000))),
                                  timeout=20)
        assert len(response.payload.body) == 10
        sizes = [m.StreamingInputCallRequest(payload=m.Payload(body=bytes(n))) for n in (1000, 50_000)]
        assert stub.StreamingInputCall(iter(sizes), timeout=20).aggregated_payload_size == 51_000


def test_oversized_request_is_resource_exhausted_and_server_survives(interop_server, pb):
    m = pb.messages_pb2
    with grpc.insecure_channel(interop_server.address,
                               options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        stub = pb.test_pb2_grpc.TestServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.UnaryCall(m.SimpleRequest(payload=m.Payload(body=bytes(5 << 20))), timeout=20)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.value.details()
        assert stub.EmptyCall(pb.empty_pb2.Empty(), timeout=20) is not None
    interop_server.assert_alive()
