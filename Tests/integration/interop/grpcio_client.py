#!/usr/bin/env python3
"""Interop client on grpcio (gRPC C-core): the test cases of grpc's
doc/interop-test-descriptions.md that our TestService subset supports.

    grpcio_client.py --host 127.0.0.1 --port N --test_case NAME|all
                     [--tls --ca FILE --server_host_override NAME
                      --cert FILE --key FILE]

Exit 0 when every selected case passed; otherwise 1, with a line per failure.
"""

import argparse
import queue
import sys

import grpc

import interop_stubs

pb = interop_stubs.load()
messages = pb.messages_pb2

# Every call carries a deadline so that a stuck server fails the case, never hangs it.
CALL_TIMEOUT = 20.0
REQUEST_SIZES = (27182, 8, 1828, 45904)
RESPONSE_SIZES = (31415, 9, 2653, 58979)
ECHO_INITIAL = ("x-grpc-test-echo-initial", "test_initial_metadata_value")
ECHO_TRAILING = ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")
SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"


class CaseFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CaseFailed(message)


def payload(size):
    return messages.Payload(type=messages.COMPRESSABLE, body=bytes(size))


def check_payload(response, size, what):
    body = response.payload.body
    check(len(body) == size, f"{what}: payload body is {len(body)} bytes, want {size}")
    check(body == bytes(size), f"{what}: payload body is not all zeros")


def expect_error(code, fn, what):
    """Runs fn, which must fail with `code`; returns the RpcError."""
    try:
        fn()
    except grpc.RpcError as err:
        check(err.code() == code, f"{what}: status {err.code()} ({err.details()!r}), want {code}")
        return err
    raise CaseFailed(f"{what}: call succeeded, want {code}")


class Pipe:
    """Request iterator fed one message at a time, so a case controls when the
    client sends (ping_pong, cancellation). get() is bounded: a forgotten close
    cannot hang grpcio's sending thread for ever."""

    _CLOSE = object()

    def __init__(self):
        self._queue = queue.Queue()

    def add(self, request):
        self._queue.put(request)

    def close(self):
        self._queue.put(self._CLOSE)

    def __iter__(self):
        return self

    def __next__(self):
        try:
            item = self._queue.get(timeout=CALL_TIMEOUT)
        except queue.Empty:
            raise StopIteration
        if item is self._CLOSE:
            raise StopIteration
        return item

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def empty_unary(stub, _):
    response = stub.EmptyCall(pb.empty_pb2.Empty(), timeout=CALL_TIMEOUT)
    check(isinstance(response, pb.empty_pb2.Empty), f"response is {type(response)}")
    check(response.SerializeToString() == b"", "response is not the empty message")


def large_unary(stub, _):
    request = messages.SimpleRequest(response_type=messages.COMPRESSABLE,
                                     response_size=314159, payload=payload(271828))
    response = stub.UnaryCall(request, timeout=CALL_TIMEOUT)
    check_payload(response, 314159, "UnaryCall")


def client_streaming(stub, _):
    requests = [messages.StreamingInputCallRequest(payload=payload(n)) for n in REQUEST_SIZES]
    response = stub.StreamingInputCall(iter(requests), timeout=CALL_TIMEOUT)
    check(response.aggregated_payload_size == 74922,
          f"aggregated_payload_size is {response.aggregated_payload_size}, want 74922")


def server_streaming(stub, _):
    request = messages.StreamingOutputCallRequest(
        response_type=messages.COMPRESSABLE,
        response_parameters=[messages.ResponseParameters(size=n) for n in RESPONSE_SIZES])
    responses = list(stub.StreamingOutputCall(request, timeout=CALL_TIMEOUT))
    sizes = [len(r.payload.body) for r in responses]
    check(sizes == list(RESPONSE_SIZES), f"response sizes {sizes}, want {list(RESPONSE_SIZES)}")
    for i, r in enumerate(responses):
        check_payload(r, RESPONSE_SIZES[i], f"response {i}")


def ping_pong(stub, _):
    with Pipe() as pipe:
        responses = stub.FullDuplexCall(pipe, timeout=CALL_TIMEOUT)
        for i, (req_size, resp_size) in enumerate(zip(REQUEST_SIZES, RESPONSE_SIZES)):
            pipe.add(messages.StreamingOutputCallRequest(
                response_type=messages.COMPRESSABLE,
                response_parameters=[messages.ResponseParameters(size=resp_size)],
                payload=payload(req_size)))
            response = next(responses, None)
            check(response is not None, f"stream ended before response {i}")
            check_payload(response, resp_size, f"response {i}")
        pipe.close()
        extra = list(responses)
        check(not extra, f"{len(extra)} responses after the last request, want none")
        check(responses.code() == grpc.StatusCode.OK, f"status {responses.code()}")


def empty_stream(stub, _):
    responses = list(stub.FullDuplexCall(iter(()), timeout=CALL_TIMEOUT))
    check(not responses, f"got {len(responses)} responses, want none")


def custom_metadata(stub, _):
    metadata = (ECHO_INITIAL, ECHO_TRAILING)

    def check_echo(call, what):
        initial = dict(call.initial_metadata())
        trailing = dict(call.trailing_metadata())
        key, value = ECHO_INITIAL
        check(initial.get(key) == value, f"{what}: initial metadata {key}={initial.get(key)!r}")
        key, value = ECHO_TRAILING
        check(trailing.get(key) == value, f"{what}: trailing metadata {key}={trailing.get(key)!r}")

    request = messages.SimpleRequest(response_type=messages.COMPRESSABLE,
                                     response_size=314159, payload=payload(271828))
    response, call = stub.UnaryCall.with_call(request, metadata=metadata, timeout=CALL_TIMEOUT)
    check_payload(response, 314159, "UnaryCall")
    check_echo(call, "UnaryCall")

    request = messages.StreamingOutputCallRequest(
        response_type=messages.COMPRESSABLE,
        response_parameters=[messages.ResponseParameters(size=314159)],
        payload=payload(271828))
    responses = stub.FullDuplexCall(iter([request]), metadata=metadata, timeout=CALL_TIMEOUT)
    received = list(responses)
    check(len(received) == 1, f"FullDuplexCall: {len(received)} responses, want 1")
    check_payload(received[0], 314159, "FullDuplexCall")
    check_echo(responses, "FullDuplexCall")


def _status_echo(stub, code, message):
    status = messages.EchoStatus(code=code, message=message)
    want = {2: grpc.StatusCode.UNKNOWN}[code]
    err = expect_error(want, lambda: stub.UnaryCall(
        messages.SimpleRequest(response_status=status), timeout=CALL_TIMEOUT), "UnaryCall")
    check(err.details() == message, f"UnaryCall: message {err.details()!r}, want {message!r}")

    request = messages.StreamingOutputCallRequest(response_status=status)
    err = expect_error(want, lambda: list(stub.FullDuplexCall(
        iter([request]), timeout=CALL_TIMEOUT)), "FullDuplexCall")
    check(err.details() == message, f"FullDuplexCall: message {err.details()!r}, want {message!r}")


def status_code_and_message(stub, _):
    _status_echo(stub, 2, "test status message")


def special_status_message(stub, _):
    status = messages.EchoStatus(code=2, message=SPECIAL_MESSAGE)
    err = expect_error(grpc.StatusCode.UNKNOWN, lambda: stub.UnaryCall(
        messages.SimpleRequest(response_status=status), timeout=CALL_TIMEOUT), "UnaryCall")
    check(err.details() == SPECIAL_MESSAGE,
          f"message {err.details()!r}, want {SPECIAL_MESSAGE!r}")


def unimplemented_method(stub, _):
    expect_error(grpc.StatusCode.UNIMPLEMENTED, lambda: stub.UnimplementedCall(
        pb.empty_pb2.Empty(), timeout=CALL_TIMEOUT), "TestService/UnimplementedCall")


def unimplemented_service(_, channel):
    other = pb.test_pb2_grpc.UnimplementedServiceStub(channel)
    expect_error(grpc.StatusCode.UNIMPLEMENTED, lambda: other.UnimplementedCall(
        pb.empty_pb2.Empty(), timeout=CALL_TIMEOUT), "UnimplementedService/UnimplementedCall")


def cancel_after_begin(stub, _):
    with Pipe() as pipe:
        future = stub.StreamingInputCall.future(pipe, timeout=CALL_TIMEOUT)
        future.cancel()
        check(future.cancelled(), "call was not cancelled")
        check(future.code() == grpc.StatusCode.CANCELLED, f"status {future.code()}, want CANCELLED")


def cancel_after_first_response(stub, _):
    with Pipe() as pipe:
        responses = stub.FullDuplexCall(pipe, timeout=CALL_TIMEOUT)
        pipe.add(messages.StreamingOutputCallRequest(
            response_type=messages.COMPRESSABLE,
            response_parameters=[messages.ResponseParameters(size=31415)],
            payload=payload(27182)))
        first = next(responses, None)
        check(first is not None, "stream ended before the first response")
        check_payload(first, 31415, "first response")
        responses.cancel()
        expect_error(grpc.StatusCode.CANCELLED, lambda: next(responses), "after cancel")


def timeout_on_sleeping_server(stub, _):
    with Pipe() as pipe:
        responses = stub.FullDuplexCall(pipe, timeout=0.001)
        pipe.add(messages.StreamingOutputCallRequest(
            response_type=messages.COMPRESSABLE, payload=payload(27182)))
        expect_error(grpc.StatusCode.DEADLINE_EXCEEDED, lambda: next(responses),
                     "FullDuplexCall with a 1 ms deadline")


CASES = {f.__name__: f for f in (
    empty_unary, large_unary, client_streaming, server_streaming, ping_pong, empty_stream,
    custom_metadata, status_code_and_message, special_status_message, unimplemented_method,
    unimplemented_service, cancel_after_begin, cancel_after_first_response,
    timeout_on_sleeping_server)}


def make_channel(args):
    target = f"{args.host}:{args.port}"
    if not args.tls:
        return grpc.insecure_channel(target)

    def read(path):
        with open(path, "rb") as f:
            return f.read()

    root = read(args.ca) if args.ca else None
    key = read(args.key) if args.key else None
    chain = read(args.cert) if args.cert else None
    options = []
    if args.server_host_override:
        options.append(("grpc.ssl_target_name_override", args.server_host_override))
    creds = grpc.ssl_channel_credentials(root, private_key=key, certificate_chain=chain)
    return grpc.secure_channel(target, creds, options)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", "--server_host", default="127.0.0.1")
    ap.add_argument("--port", "--server_port", type=int, required=True)
    ap.add_argument("--test_case", "--test-case", required=True,
                    choices=[*CASES, "all"], metavar="NAME|all")
    ap.add_argument("--tls", "--use_tls", action="store_true")
    ap.add_argument("--ca", help="PEM root certificate to trust (with --tls)")
    ap.add_argument("--server_host_override", "--server-host-override",
                    help="TLS name to expect from the server")
    ap.add_argument("--cert", help="PEM client certificate chain, for mutual TLS (with --tls)")
    ap.add_argument("--key", help="PEM client private key, for mutual TLS (with --tls)")
    args = ap.parse_args()
    if bool(args.cert) != bool(args.key):
        ap.error("--cert and --key go together")

    names = list(CASES) if args.test_case == "all" else [args.test_case]
    failed = []
    with make_channel(args) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=CALL_TIMEOUT)
        except grpc.FutureTimeoutError:
            sys.exit(f"FAIL: cannot connect to {args.host}:{args.port} in {CALL_TIMEOUT:.0f}s")
        stub = pb.test_pb2_grpc.TestServiceStub(channel)
        for name in names:
            try:
                CASES[name](stub, channel)
                print(f"PASS {name}", flush=True)
            except (CaseFailed, grpc.RpcError) as err:
                detail = err if isinstance(err, CaseFailed) else f"{err.code()}: {err.details()}"
                print(f"FAIL {name}: {detail}", flush=True)
                failed.append(name)
    print(f"{len(names) - len(failed)}/{len(names)} cases passed", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
