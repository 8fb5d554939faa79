#!/usr/bin/env python3
"""Reference grpc.testing.TestService server on grpcio (gRPC C-core).

Implements the server features of grpc's doc/interop-test-descriptions.md that our
TestService subset needs, plus health and server reflection. Prints
`LISTENING <port>` (the real port, also for --port 0) once it accepts calls.

    grpcio_server.py --port 0 [--tls --cert FILE --key FILE [--client-ca FILE]]
                     [--reflection both|v1alpha|none]
"""

import argparse
import signal
import sys
import threading
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha import reflection_pb2 as refl_alpha_pb2

import interop_stubs

pb = interop_stubs.load()
messages = pb.messages_pb2

ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"
TEST_SERVICE = "grpc.testing.TestService"
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def payload(size):
    return messages.Payload(type=messages.COMPRESSABLE, body=bytes(size))


def echo_metadata(context):
    """Echo Metadata feature: initial key back as initial metadata, -bin key as trailer."""
    received = dict(context.invocation_metadata())
    if ECHO_INITIAL in received:
        context.send_initial_metadata(((ECHO_INITIAL, received[ECHO_INITIAL]),))
    if ECHO_TRAILING in received:
        context.set_trailing_metadata(((ECHO_TRAILING, received[ECHO_TRAILING]),))


def echo_status(request, context):
    """Echo Status feature: a non-OK response_status ends the call with it."""
    if request.HasField("response_status") and request.response_status.code != 0:
        code = STATUS_BY_NUMBER.get(request.response_status.code, grpc.StatusCode.UNKNOWN)
        context.abort(code, request.response_status.message)


def check_response_type(request, context):
    if request.response_type != messages.COMPRESSABLE:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unsupported response_type")


def stream_responses(request, context):
    """Responses for one StreamingOutputCallRequest; interval_us sleeps before each."""
    check_response_type(request, context)
    echo_status(request, context)
    for params in request.response_parameters:
        if params.interval_us:
            time.sleep(params.interval_us / 1e6)
        yield messages.StreamingOutputCallResponse(payload=payload(params.size))


class TestService(pb.test_pb2_grpc.TestServiceServicer):
    def EmptyCall(self, request, context):
        echo_metadata(context)
        return pb.empty_pb2.Empty()

    def UnaryCall(self, request, context):
        echo_metadata(context)
        check_response_type(request, context)
        echo_status(request, context)
        return messages.SimpleResponse(payload=payload(request.response_size))

    def StreamingOutputCall(self, request, context):
        echo_metadata(context)
        yield from stream_responses(request, context)

    def StreamingInputCall(self, request_iterator, context):
        echo_metadata(context)
        total = sum(len(r.payload.body) for r in request_iterator)
        return messages.StreamingInputCallResponse(aggregated_payload_size=total)

    def FullDuplexCall(self, request_iterator, context):
        echo_metadata(context)
        for request in request_iterator:
            yield from stream_responses(request, context)

    def HalfDuplexCall(self, request_iterator, context):
        # Half duplex: nothing goes out before the client half-closes.
        echo_metadata(context)
        for request in list(request_iterator):
            yield from stream_responses(request, context)

    # CacheableUnaryCall and UnimplementedCall stay UNIMPLEMENTED (base class).


def add_reflection(server, versions):
    # "none" stands for servers that do not expose their schema (clients then need
    # descriptor files). grpcio-reflection serves only v1alpha. v1 has the same wire format, so with
    # "both" the same servicer also answers under the v1 name (as grpc-go/java serve both).
    if versions == "none":
        return
    served = [reflection.SERVICE_NAME] + ([REFLECTION_V1] if versions == "both" else [])
    servicer = reflection.ReflectionServicer([TEST_SERVICE, health.SERVICE_NAME, *served])
    for name in served:
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            name, {"ServerReflectionInfo": _reflection_handler(servicer)}),))


def _reflection_handler(servicer):
    return grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=refl_alpha_pb2.ServerReflectionRequest.FromString,
        response_serializer=refl_alpha_pb2.ServerReflectionResponse.SerializeToString)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--cert", help="PEM certificate chain (with --tls)")
    ap.add_argument("--key", help="PEM private key (with --tls)")
    ap.add_argument("--client-ca", "--client_ca",
                    help="PEM CA to verify client certificates with; requires one (mutual TLS)")
    ap.add_argument("--reflection", choices=("both", "v1alpha", "none"), default="both",
                    help="reflection versions to serve (grpcio alone serves only v1alpha)")
    args = ap.parse_args()

    # Streaming handlers hold a worker for their whole life: leave room for many.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    pb.test_pb2_grpc.add_TestServiceServicer_to_server(TestService(), server)
    health_servicer = health.HealthServicer()
    for name in ("", TEST_SERVICE):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    add_reflection(server, args.reflection)

    address = f"{args.host}:{args.port}"
    if args.tls:
        if not (args.cert and args.key):
            ap.error("--tls needs --cert and --key")
        with open(args.key, "rb") as k, open(args.cert, "rb") as c:
            pair = (k.read(), c.read())
        if args.client_ca:
            with open(args.client_ca, "rb") as ca:
                creds = grpc.ssl_server_credentials((pair,), root_certificates=ca.read(),
                                                    require_client_auth=True)
        else:
            creds = grpc.ssl_server_credentials((pair,))
        port = server.add_secure_port(address, creds)
    else:
        if args.client_ca:
            ap.error("--client-ca needs --tls")
        port = server.add_insecure_port(address)
    if port == 0:
        sys.exit(f"cannot listen on {address}")
    server.start()

    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    print(f"LISTENING {port}", flush=True)
    while not stopped.wait(1.0):
        pass
    server.stop(grace=1.0).wait(5.0)


if __name__ == "__main__":
    main()
