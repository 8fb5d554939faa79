"""Our grpcurl-style CLI `dfrpc` against grpcio's reference server, which it knows through
server reflection or through descriptor files (--protoset, --proto), and against our
interop-server over TLS and mutual TLS. JSON is the protobuf JSON mapping: lowerCamelCase
names, bytes as base64, enums by name, default values left out unless --emit-defaults.
Describe texts are grpcurl's (jhump/protoreflect protoprint: compact, sorted, fully
qualified names); the expected ones below were checked against protoprint itself."""

import json
import re
import socket
import subprocess
import time

import pytest

from conftest import (REPO_ROOT, Server, binary, describe, free_port, run, start_grpcio_server,
                      tool)

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


def cli(dfrpc, *args, stdin=None, env=None):
    return run([dfrpc, *args], timeout=CLI_TIMEOUT, input=stdin, env=env)


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


# -- list SERVICE -------------------------------------------------------------------

TEST_METHODS = ["CacheableUnaryCall", "EmptyCall", "FullDuplexCall", "HalfDuplexCall",
                "StreamingInputCall", "StreamingOutputCall", "UnaryCall", "UnimplementedCall"]


def test_list_service_prints_its_methods_fully_qualified(dfrpc, addr):
    res = cli(dfrpc, "list", addr, TEST_SERVICE)
    assert res.returncode == 0, describe(res)
    assert res.stdout.splitlines() == [f"{TEST_SERVICE}.{m}" for m in TEST_METHODS], describe(res)


@pytest.mark.parametrize("name", ["no.such.Service", "grpc.testing.SimpleRequest"])
def test_list_of_what_is_not_a_service_fails_clearly(dfrpc, addr, name):
    res = cli(dfrpc, "list", addr, name)
    assert res.returncode == 1, describe(res)
    assert f"service not found: {name}" in res.stderr and not res.stdout, describe(res)


# -- describe: grpcurl's text ---------------------------------------------------------

TEST_SERVICE_TEXT = f"""{TEST_SERVICE} is a service:
service TestService {{
  rpc CacheableUnaryCall ( .grpc.testing.SimpleRequest ) returns ( .grpc.testing.SimpleResponse );
  rpc EmptyCall ( .grpc.testing.Empty ) returns ( .grpc.testing.Empty );
  rpc FullDuplexCall ( stream .grpc.testing.StreamingOutputCallRequest ) returns ( stream .grpc.testing.StreamingOutputCallResponse );
  rpc HalfDuplexCall ( stream .grpc.testing.StreamingOutputCallRequest ) returns ( stream .grpc.testing.StreamingOutputCallResponse );
  rpc StreamingInputCall ( stream .grpc.testing.StreamingInputCallRequest ) returns ( .grpc.testing.StreamingInputCallResponse );
  rpc StreamingOutputCall ( .grpc.testing.StreamingOutputCallRequest ) returns ( stream .grpc.testing.StreamingOutputCallResponse );
  rpc UnaryCall ( .grpc.testing.SimpleRequest ) returns ( .grpc.testing.SimpleResponse );
  rpc UnimplementedCall ( .grpc.testing.Empty ) returns ( .grpc.testing.Empty );
}}
"""

SHAPES_PROTO = REPO_ROOT / "Tests" / "integration" / "protos"
SHAPE_TEXT = """dfrpc.shapes.Shape is a message:
message Shape {
  string name = 1;
  repeated .dfrpc.shapes.Shape.Point outline = 2;
  optional uint32 sides = 3;
  map<string, .dfrpc.shapes.Shape.Point> corners = 4;
  oneof fill {
    .dfrpc.shapes.Pattern pattern = 5;
    string color = 6;
  }
  .dfrpc.shapes.Shape.Kind kind = 7;
  .grpc.testing.Payload label = 8;
  int64 area_mm2 = 9 [json_name = "areaSquareMillimetres"];
  message Point {
    sint32 x = 1;
    sint32 y = 2;
  }
  enum Kind {
    KIND_UNSPECIFIED = 0;
    ELLIPSE = 1;
    POLYGON = 2;
  }
  reserved 10 to 12, 15;
  reserved "color_name", "perimeter";
}
"""


def shapes_args():
    return ["--proto", "dfrpc/shapes.proto", "-I", SHAPES_PROTO, "-I", REPO_ROOT / "Protos"]


def test_describe_service_is_grpcurls_text(dfrpc, addr):
    # Methods sorted by name, types fully qualified with a leading dot.
    res = cli(dfrpc, "describe", addr, TEST_SERVICE)
    assert res.returncode == 0, describe(res)
    assert res.stdout == TEST_SERVICE_TEXT, describe(res)


def test_describe_message_with_nested_types_map_and_oneof_is_grpcurls_text(dfrpc, protoc):
    # Fields by number with the oneof where its first field is, proto3 `optional`, then
    # nested messages, enums (zero first), reserved numbers and sorted reserved names.
    res = cli(dfrpc, "describe", *shapes_args(), "dfrpc.shapes.Shape")
    assert res.returncode == 0, describe(res)
    assert res.stdout == SHAPE_TEXT, describe(res)


@pytest.mark.parametrize("symbol, text", [
    ("dfrpc.shapes.Shape.CornersEntry", "dfrpc.shapes.Shape.CornersEntry is the entry type for a map field:\n"
                                        "map<string, .dfrpc.shapes.Shape.Point> corners = 4;\n"),
    ("dfrpc.shapes.Shape.fill", "dfrpc.shapes.Shape.fill is a one-of:\noneof fill {\n"
                                "  .dfrpc.shapes.Pattern pattern = 5;\n  string color = 6;\n}\n"),
    ("dfrpc.shapes.Shape.sides", "dfrpc.shapes.Shape.sides is a field:\noptional uint32 sides = 3;\n"),
    ("dfrpc.shapes.Shapes.Trace", "dfrpc.shapes.Shapes.Trace is a method:\n"
                                  "rpc Trace ( .dfrpc.shapes.Shape ) returns ( stream .dfrpc.shapes.Shape.Point );\n"),
    ("dfrpc.shapes.Shape.Kind", "dfrpc.shapes.Shape.Kind is an enum:\nenum Kind {\n  KIND_UNSPECIFIED = 0;\n"
                                "  ELLIPSE = 1;\n  POLYGON = 2;\n}\n"),
])
def test_describe_names_each_kind_of_symbol_as_grpcurl(dfrpc, protoc, symbol, text):
    res = cli(dfrpc, "describe", *shapes_args(), symbol)
    assert res.returncode == 0, describe(res)
    assert res.stdout == text, describe(res)


@pytest.mark.parametrize("symbol", [TEST_SERVICE, "grpc.testing.SimpleRequest",
                                    "grpc.testing.StreamingOutputCallRequest", "grpc.testing.PayloadType"])
def test_describe_by_reflection_and_by_protoset_agree(dfrpc, addr, protoset, symbol):
    by_reflection = cli(dfrpc, "describe", addr, symbol)
    by_file = cli(dfrpc, "describe", "--protoset", protoset, symbol)
    assert by_reflection.returncode == 0 and by_file.returncode == 0, describe(by_reflection) + describe(by_file)
    assert by_reflection.stdout == by_file.stdout, describe(by_reflection) + describe(by_file)


def test_describe_unknown_symbol_fails_clearly(dfrpc, addr):
    res = cli(dfrpc, "describe", addr, "grpc.testing.NoSuchThing")
    assert res.returncode == 1, describe(res)
    assert "symbol not found: grpc.testing.NoSuchThing" in res.stderr, describe(res)


# -- schema from files: --protoset, --proto -I --------------------------------------------

@pytest.fixture(scope="module")
def protoc():
    return tool("protoc", "protobuf-compiler")


def make_protoset(protoc, path, *extra):
    res = run([protoc, *extra, f"--descriptor_set_out={path}", "-I", REPO_ROOT / "Protos",
               "grpc/testing/test.proto"], timeout=CLI_TIMEOUT)
    assert res.returncode == 0, describe(res)
    return path


@pytest.fixture(scope="module")
def protoset(protoc, tmp_path_factory):
    return make_protoset(protoc, tmp_path_factory.mktemp("protoset") / "test.protoset", "--include_imports")


@pytest.fixture(scope="module")
def no_reflection_addr(tmp_path_factory, py_env):
    server = start_grpcio_server(tmp_path_factory, py_env, "--reflection", "none")
    yield server.address
    server.stop()


def test_server_without_reflection_cannot_be_listed_by_reflection(dfrpc, no_reflection_addr):
    # The premise of the file-based tests: this server really has no reflection.
    res = cli(dfrpc, "list", no_reflection_addr)
    assert res.returncode == 1 and "UNIMPLEMENTED" in res.stderr, describe(res)


def test_call_without_reflection_using_protoset(dfrpc, no_reflection_addr, protoset):
    out = call_ok(dfrpc, no_reflection_addr, f"{TEST_SERVICE}/UnaryCall", "--protoset", protoset,
                  "-d", '{"responseSize": 3}')
    assert out == [{"payload": {"body": "AAAA"}}]


def test_call_without_reflection_using_proto_and_import_path(dfrpc, no_reflection_addr, protoc):
    body = '{"responseParameters":[{"size":1},{"size":2}]}'
    out = call_ok(dfrpc, no_reflection_addr, f"{TEST_SERVICE}/StreamingOutputCall",
                  "--proto", "grpc/testing/test.proto", "-I", REPO_ROOT / "Protos", "-d", body)
    assert out == [{"payload": {"body": "AA=="}}, {"payload": {"body": "AAA="}}]


def test_list_and_describe_from_protoset_need_no_server(dfrpc, protoset):
    services = cli(dfrpc, "list", "--protoset", protoset)
    # Every service the files define, sorted: test.proto has two.
    assert services.returncode == 0, describe(services)
    assert services.stdout.splitlines() == [TEST_SERVICE, "grpc.testing.UnimplementedService"], describe(services)
    methods = cli(dfrpc, "list", "--protoset", protoset, TEST_SERVICE)
    assert methods.stdout.splitlines() == [f"{TEST_SERVICE}.{m}" for m in TEST_METHODS], describe(methods)
    service = cli(dfrpc, "describe", "--protoset", protoset, TEST_SERVICE)
    assert service.returncode == 0 and service.stdout == TEST_SERVICE_TEXT, describe(service)


def test_describe_without_reflection_using_protoset_and_address(dfrpc, no_reflection_addr, protoset):
    res = cli(dfrpc, "describe", no_reflection_addr, "grpc.testing.SimpleRequest", "--protoset", protoset)
    assert res.returncode == 0, describe(res)
    assert res.stdout.startswith("grpc.testing.SimpleRequest is a message:\nmessage SimpleRequest {\n"), describe(res)
    assert "  int32 response_size = 2;\n" in res.stdout, describe(res)


def test_proto_without_protoc_on_path_says_how_to_fix(dfrpc, tmp_path):
    res = cli(dfrpc, "list", "--proto", "grpc/testing/test.proto", "-I", REPO_ROOT / "Protos",
              env={"PATH": str(tmp_path)})
    assert res.returncode == 1, describe(res)
    assert "protoc" in res.stderr and "protobuf-compiler" in res.stderr and "--protoset" in res.stderr, describe(res)


def test_protoset_without_its_imports_fails_clearly(dfrpc, protoc, tmp_path):
    bare = make_protoset(protoc, tmp_path / "bare.protoset")
    res = cli(dfrpc, "list", "--protoset", bare)
    assert res.returncode == 1, describe(res)
    assert "grpc/testing/empty.proto" in res.stderr and "--include_imports" in res.stderr, describe(res)


def test_protoset_that_is_not_one_fails_clearly(dfrpc, tmp_path):
    junk = tmp_path / "junk.protoset"
    junk.write_bytes(b"\xff\xff\xff not a descriptor set")
    res = cli(dfrpc, "list", "--protoset", junk)
    assert res.returncode == 1 and "not a FileDescriptorSet" in res.stderr, describe(res)


# -- -v and --emit-defaults ---------------------------------------------------------------

def test_verbose_prints_headers_and_trailers_around_response(dfrpc, addr):
    # The reference server echoes these: the first as a header, the -bin one as a trailer.
    res = cli(dfrpc, "call", "-v", addr, f"{TEST_SERVICE}/UnaryCall", "-d", '{"responseSize": 1}',
              "-H", "x-grpc-test-echo-initial: hello", "-H", "x-grpc-test-echo-trailing-bin: AAEC")
    assert res.returncode == 0, describe(res)
    out = res.stdout
    headers = out.index("\nResponse headers received:\nx-grpc-test-echo-initial: hello\n")
    body = out.index('\nResponse contents:\n{\n  "payload": {\n    "body": "AA=="\n  }\n}\n')
    trailers = out.index("\nResponse trailers received:\nx-grpc-test-echo-trailing-bin: AAEC\n")
    assert headers < body < trailers, describe(res)
    assert "\nRequest metadata to send:\n" in out and out.endswith("Sent 1 request and received 1 response\n"), describe(res)


def test_verbose_prints_trailers_of_a_failed_call(dfrpc, addr):
    body = '{"responseStatus": {"code": 9, "message": "not now"}}'
    res = cli(dfrpc, "call", "--verbose", addr, f"{TEST_SERVICE}/UnaryCall", "-d", body,
              "-H", "x-grpc-test-echo-trailing-bin: AAEC")
    assert res.returncode == 1, describe(res)
    assert "\nResponse trailers received:\nx-grpc-test-echo-trailing-bin: AAEC\n" in res.stdout, describe(res)
    assert "received 0 responses" in res.stdout, describe(res)
    assert "FAILED_PRECONDITION" in res.stderr and "not now" in res.stderr, describe(res)


def test_plain_output_has_no_verbose_headings(dfrpc, addr):
    res = cli(dfrpc, "call", addr, f"{TEST_SERVICE}/EmptyCall", "-H", "x-grpc-test-echo-initial: hello")
    assert res.returncode == 0 and res.stdout == "{}\n", describe(res)


def test_emit_defaults_prints_fields_holding_default_values(dfrpc, addr):
    args = [addr, f"{TEST_SERVICE}/UnaryCall", "-d", '{"responseSize": 0}']
    assert call_ok(dfrpc, *args) == [{"payload": {}}]
    (out,) = call_ok(dfrpc, *args, "--emit-defaults")
    # The enum's zero value by name, empty bytes and strings, and every scalar field.
    assert out["payload"] == {"type": "COMPRESSABLE", "body": ""}, out
    assert out["username"] == "" and out["oauthScope"] == "", out


# -- timeouts -------------------------------------------------------------------------------

@pytest.fixture
def silent_addr():
    """A port that completes TCP handshakes (the kernel's backlog) but never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield f"127.0.0.1:{s.getsockname()[1]}"


def test_connect_timeout_gives_up_on_a_silent_server(dfrpc, silent_addr):
    start = time.monotonic()
    res = cli(dfrpc, "list", silent_addr, "--connect-timeout", "1", "--max-time", "25")
    elapsed = time.monotonic() - start
    assert res.returncode == 1, describe(res)
    assert 0.9 < elapsed < 8, f"took {elapsed:.1f}s" + describe(res)
    assert "connection not ready within" in res.stderr and "--connect-timeout" in res.stderr, describe(res)


def test_max_time_ends_a_slow_call_with_deadline_exceeded(dfrpc, addr):
    # The connection is quick; the server sleeps 20 s before its response.
    body = '{"responseParameters":[{"size":1,"intervalUs":20000000}]}'
    start = time.monotonic()
    res = cli(dfrpc, "call", addr, f"{TEST_SERVICE}/StreamingOutputCall", "-d", body, "--max-time", "1.5")
    elapsed = time.monotonic() - start
    assert res.returncode == 1 and "DEADLINE_EXCEEDED" in res.stderr, describe(res)
    assert elapsed < 10, f"took {elapsed:.1f}s" + describe(res)


# -- TLS and mutual TLS against our interop-server -----------------------------------------

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("dfrpc-certs")
    for sub in ("ca", "rogue"):
        made = subprocess.run(["bash", REPO_ROOT / "tools" / "make-test-ca.sh", d / sub, "server", "client"],
                              capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
    return d


def start_interop_server(tmp_path_factory, certs, *extra):
    ca = certs / "ca"
    return Server([binary("interop-server"), "--port", "0", "--tls", "--cert", ca / "server.pem",
                   "--key", ca / "server.key", *extra], tmp_path_factory.mktemp("dfrpc-tls") / "server.log")


@pytest.fixture(scope="module")
def tls_addr(tmp_path_factory, certs):
    server = start_interop_server(tmp_path_factory, certs)
    yield server.address
    server.stop()


@pytest.fixture(scope="module")
def mtls_addr(tmp_path_factory, certs):
    server = start_interop_server(tmp_path_factory, certs, "--client-ca", certs / "ca" / "ca.pem")
    yield server.address
    server.stop()


def client_cert(certs, ca="ca"):
    return ["--cert", certs / ca / "client.pem", "--key", certs / ca / "client.key"]


def test_call_over_tls_verifying_the_server_with_cacert(dfrpc, tls_addr, certs):
    out = call_ok(dfrpc, tls_addr, f"{TEST_SERVICE}/UnaryCall", "--cacert", certs / "ca" / "ca.pem",
                  "-d", '{"responseSize": 2}')
    assert out == [{"payload": {"body": "AAA="}}]


def test_plaintext_is_the_default_and_fails_against_tls(dfrpc, tls_addr):
    res = cli(dfrpc, "call", tls_addr, f"{TEST_SERVICE}/EmptyCall", "--connect-timeout", "5")
    assert res.returncode == 1, describe(res)


def test_tls_with_an_untrusted_ca_fails_clearly(dfrpc, tls_addr, certs):
    res = cli(dfrpc, "call", tls_addr, f"{TEST_SERVICE}/EmptyCall", "--cacert", certs / "rogue" / "ca.pem")
    assert res.returncode == 1, describe(res)
    assert "certificate verify failed" in res.stderr and "--cacert" in res.stderr, describe(res)


def test_mutual_tls_call_with_a_client_certificate(dfrpc, mtls_addr, certs):
    out = call_ok(dfrpc, mtls_addr, f"{TEST_SERVICE}/EmptyCall", "--cacert", certs / "ca" / "ca.pem",
                  *client_cert(certs))
    assert out == [{}]
    res = cli(dfrpc, "list", mtls_addr, TEST_SERVICE, "--cacert", certs / "ca" / "ca.pem", *client_cert(certs))
    assert res.returncode == 0 and f"{TEST_SERVICE}.EmptyCall" in res.stdout.splitlines(), describe(res)


def test_mutual_tls_without_a_client_certificate_fails_clearly(dfrpc, mtls_addr, certs):
    res = cli(dfrpc, "call", mtls_addr, f"{TEST_SERVICE}/EmptyCall", "--cacert", certs / "ca" / "ca.pem")
    assert res.returncode == 1, describe(res)
    assert "certificate required" in res.stderr and "--cert and --key" in res.stderr, describe(res)


def test_mutual_tls_with_a_foreign_client_certificate_fails_clearly(dfrpc, mtls_addr, certs):
    res = cli(dfrpc, "call", mtls_addr, f"{TEST_SERVICE}/EmptyCall", "--cacert", certs / "ca" / "ca.pem",
              *client_cert(certs, "rogue"))
    assert res.returncode == 1, describe(res)
    assert "unknown ca" in res.stderr and "refused the client certificate" in res.stderr, describe(res)


@pytest.mark.parametrize("flags, complaint", [
    (["--cert", "client.pem"], "--cert and --key"),
    (["--plaintext", "--cacert", "ca.pem"], "--plaintext"),
    (["--connect-timeout", "0"], "--connect-timeout"),
])
def test_conflicting_connection_flags_are_usage_errors(dfrpc, addr, flags, complaint):
    res = cli(dfrpc, "list", addr, *flags)
    assert res.returncode == 2 and complaint in res.stderr, describe(res)
