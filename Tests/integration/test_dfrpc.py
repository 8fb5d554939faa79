"""Our grpcurl-style CLI `dfrpc` against grpcio's reference server, which it only knows
through server reflection. JSON is the protobuf JSON mapping: lowerCamelCase names,
bytes as base64, enums by name, default values left out."""

import json
import re

import pytest

from conftest import binary, describe, free_port, run, start_grpcio_server

TEST_SERVICE = "grpc.testing.TestService"
CLI_TIMEOUT = 30


@pytest.fixture(scope="module")
def dfrpc():
    return binary("dfrpc")


@pytest.fixture(scope="module")
def addr(grpcio_server):
    return grpcio_server.address


@pytest.fixture(scope="module")
def v1alpha_only_addr(tmp_path_factory, py_env):
    """A server with grpcio's stock reflection: v1alpha only, no v1."""
    server = start_grpcio_server(tmp_path_factory, py_env, "--reflection", "v1alpha")
    yield server.address
    server.stop()


def cli(dfrpc, *args, stdin=None):
    return run([dfrpc, *args], timeout=CLI_TIMEOUT, input=stdin)


def json_values(text):
    """Every JSON value in text, which may hold several separated by whitespace."""
    decoder, values, pos = json.JSONDecoder(), [], 0
    text = text.strip()
    while pos < len(text):  # each pass consumes at least one character or raises
        value, end = decoder.raw_decode(text, pos)
        values.append(value)
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return values


def call_ok(dfrpc, *args, stdin=None):
    res = cli(dfrpc, "call", *args, stdin=stdin)
    assert res.returncode == 0, describe(res)
    try:
        return json_values(res.stdout)
    except json.JSONDecodeError as err:
        pytest.fail(f"stdout is not JSON values ({err}){describe(res)}")


# -- list / describe ------------------------------------------------------------

def listed_services(dfrpc, address):
    res = cli(dfrpc, "list", address)
    assert res.returncode == 0, describe(res)
    lines = res.stdout.splitlines()
    for line in lines:
        assert re.fullmatch(r"[A-Za-z_][\w.]*", line), f"not a bare service name: {line!r}"
    assert len(lines) == len(set(lines)), "duplicate lines" + describe(res)
    return set(lines)


def test_list_prints_one_service_per_line(dfrpc, addr):
    services = listed_services(dfrpc, addr)
    assert {TEST_SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"} <= services


def test_list_falls_back_to_v1alpha_reflection(dfrpc, v1alpha_only_addr):
    # Servers built on grpcio (and older grpc-go/java) only have v1alpha.
    assert TEST_SERVICE in listed_services(dfrpc, v1alpha_only_addr)


def test_describe_service_shows_methods_and_streaming(dfrpc, addr):
    res = cli(dfrpc, "describe", addr, TEST_SERVICE)
    assert res.returncode == 0, describe(res)
    assert TEST_SERVICE in res.stdout or "service TestService" in res.stdout, describe(res)
    # name: (client_streaming, server_streaming); one `rpc` line per method, as in .proto.
    expected = {
        "EmptyCall": (False, False), "UnaryCall": (False, False),
        "CacheableUnaryCall": (False, False), "StreamingOutputCall": (False, True),
        "StreamingInputCall": (True, False), "FullDuplexCall": (True, True),
        "HalfDuplexCall": (True, True), "UnimplementedCall": (False, False),
    }
    rpcs = re.findall(r"rpc\s+(\w+)\s*\(([^)]*)\)\s*returns\s*\(([^)]*)\)", res.stdout)
    found = {name: (bool(re.search(r"\bstream\b", arg)), bool(re.search(r"\bstream\b", ret)))
             for name, arg, ret in rpcs}
    assert found == expected, describe(res)


def test_describe_message_shows_fields(dfrpc, addr):
    res = cli(dfrpc, "describe", addr, "grpc.testing.SimpleRequest")
    assert res.returncode == 0, describe(res)
    fields = {"response_type": 1, "response_size": 2, "payload": 3, "fill_username": 4,
              "fill_oauth_scope": 5, "response_compressed": 6, "response_status": 7,
              "expect_compressed": 8, "fill_server_id": 9}
    for name, number in fields.items():
        assert re.search(rf"\b{name}\s*=\s*{number}\b", res.stdout), f"{name} = {number}" + describe(res)


# -- call -------------------------------------------------------------------------

def test_call_unary(dfrpc, addr):
    # 3 zero bytes are "AAAA" in base64; type COMPRESSABLE is the default, so it is omitted.
    out = call_ok(dfrpc, addr, f"{TEST_SERVICE}/UnaryCall", "-d", '{"responseSize": 3}')
    assert out == [{"payload": {"body": "AAAA"}}]


def test_call_empty_message_prints_empty_object(dfrpc, addr):
    assert call_ok(dfrpc, addr, f"{TEST_SERVICE}/EmptyCall", "-d", "{}") == [{}]


def test_call_accepts_proto_field_names_and_enum_names(dfrpc, addr):
    # The JSON mapping requires parsers to accept the .proto names too.
    body = '{"response_size": 2, "response_type": "COMPRESSABLE"}'
    out = call_ok(dfrpc, addr, f"{TEST_SERVICE}/UnaryCall", "-d", body)
    assert out == [{"payload": {"body": "AAA="}}]


def test_call_server_streaming_prints_each_response(dfrpc, addr):
    body = '{"responseParameters":[{"size":1},{"size":2}]}'
    out = call_ok(dfrpc, addr, f"{TEST_SERVICE}/StreamingOutputCall", "-d", body)
    assert out == [{"payload": {"body": "AA=="}}, {"payload": {"body": "AAA="}}]


@pytest.mark.parametrize("stdin", [
    '{"payload":{"body":"AAAA"}}\n{"payload":{"body":"AAAAAAA="}}\n',
    '{"payload":{"body":"AAAA"}} {"payload":{"body":"AAAAAAA="}}',
    '{\n  "payload": {"body": "AAAA"}\n}\n{\n  "payload": {"body": "AAAAAAA="}\n}\n',
], ids=["newlines", "spaces", "pretty"])
def test_call_client_streaming_reads_requests_from_stdin(dfrpc, addr, stdin):
    # Payloads of 3 and 5 bytes.
    out = call_ok(dfrpc, addr, f"{TEST_SERVICE}/StreamingInputCall", "-d", "@", stdin=stdin)
    assert out == [{"aggregatedPayloadSize": 8}]


def test_call_bidi_streaming_from_stdin(dfrpc, addr):
    stdin = '{"responseParameters":[{"size":1}]}\n{"responseParameters":[{"size":2}]}\n'
    out = call_ok(dfrpc, addr, f"{TEST_SERVICE}/FullDuplexCall", "-d", "@", stdin=stdin)
    assert out == [{"payload": {"body": "AA=="}}, {"payload": {"body": "AAA="}}]


# -- failures ---------------------------------------------------------------------

def test_call_error_status_goes_to_stderr_with_nonzero_exit(dfrpc, addr):
    body = '{"responseStatus": {"code": 5, "message": "nope"}}'
    res = cli(dfrpc, "call", addr, f"{TEST_SERVICE}/UnaryCall", "-d", body)
    assert res.returncode != 0, describe(res)
    assert "NOT_FOUND" in res.stderr and "nope" in res.stderr, describe(res)


@pytest.mark.parametrize("method, named", [
    (f"{TEST_SERVICE}/NoSuchMethod", "NoSuchMethod"),
    ("no.such.Service/Method", "no.such.Service"),
])
def test_call_unknown_method_fails_clearly(dfrpc, addr, method, named):
    res = cli(dfrpc, "call", addr, method, "-d", "{}")
    assert res.returncode != 0, describe(res)
    assert named in res.stderr, describe(res)


def test_unreachable_server_fails_within_timeout(dfrpc):
    res = cli(dfrpc, "list", f"127.0.0.1:{free_port()}")
    assert res.returncode != 0, describe(res)
    assert res.stderr.strip(), "no error message" + describe(res)
