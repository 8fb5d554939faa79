"""grpc.health.v1 and server reflection (v1 and v1alpha) of our interop-server, seen by
grpcio's own health and reflection stubs."""

import sys

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2 as alpha_pb2
from grpc_reflection.v1alpha import reflection_pb2_grpc as alpha_pb2_grpc

from conftest import build_descriptor_set, shared_tool

TIMEOUT = 10
TEST_SERVICE = "grpc.testing.TestService"
EXPECTED_SERVICES = {
    TEST_SERVICE, "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection",
}
# name: (client_streaming, server_streaming)
TEST_SERVICE_METHODS = {
    "EmptyCall": (False, False), "UnaryCall": (False, False),
    "CacheableUnaryCall": (False, False), "StreamingOutputCall": (False, True),
    "StreamingInputCall": (True, False), "FullDuplexCall": (True, True),
    "HalfDuplexCall": (True, True), "UnimplementedCall": (False, False),
}
NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]


@pytest.fixture
def channel(interop_server):
    with grpc.insecure_channel(interop_server.address) as ch:
        yield ch


# -- health -------------------------------------------------------------------

@pytest.mark.parametrize("service", ["", TEST_SERVICE])
def test_health_check_reports_serving(channel, service):
    stub = health_pb2_grpc.HealthStub(channel)
    response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_health_check_of_unknown_service_is_not_found(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=TIMEOUT)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("service, status", [
    ("", health_pb2.HealthCheckResponse.SERVING),
    # The health spec: an unknown service is reported, not failed, on Watch.
    ("no.such.Service", health_pb2.HealthCheckResponse.SERVICE_UNKNOWN),
])
def test_health_watch_sends_current_status_first(channel, service, status):
    stub = health_pb2_grpc.HealthStub(channel)
    updates = stub.Watch(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
    try:
        first = next(updates)
    finally:
        updates.cancel()
    assert first.status == status


# -- reflection ---------------------------------------------------------------

@pytest.fixture(params=["v1", "v1alpha"])
def reflection(request, pb, channel):
    """(request/response module, stub) of one reflection version."""
    if request.param == "v1":
        return pb.reflection_v1_pb2, pb.reflection_v1_pb2_grpc.ServerReflectionStub(channel)
    return alpha_pb2, alpha_pb2_grpc.ServerReflectionStub(channel)


def ask(reflection, *requests):
    """Sends the requests on one reflection stream; one response per request, in order."""
    messages, stub = reflection
    responses = list(stub.ServerReflectionInfo(
        iter([messages.ServerReflectionRequest(**r) for r in requests]), timeout=TIMEOUT))
    assert len(responses) == len(requests), responses
    return responses


def file_protos(response):
    assert response.WhichOneof("message_response") == "file_descriptor_response", response
    protos = []
    for raw in response.file_descriptor_response.file_descriptor_proto:
        fdp = descriptor_pb2.FileDescriptorProto()
        fdp.ParseFromString(raw)
        protos.append(fdp)
    return protos


def load_pool(protos):
    """Adds files dependencies first; fails if one is missing from the response."""
    by_name = {p.name: p for p in protos}
    pool, added = descriptor_pool.DescriptorPool(), set()

    def add(name, chain):
        assert name in by_name, f"dependency {name} (of {' <- '.join(chain)}) not sent"
        if name not in added:
            for dep in by_name[name].dependency:
                add(dep, [name, *chain])
            pool.Add(by_name[name])
            added.add(name)

    for name in by_name:
        add(name, [])
    return pool


def test_reflection_lists_services(reflection):
    # Two requests on one stream, as grpcurl-style clients send them.
    listed, again = ask(reflection, {"list_services": ""}, {"list_services": "*"})
    for response in (listed, again):
        names = {s.name for s in response.list_services_response.service}
        assert EXPECTED_SERVICES <= names, names


def test_reflection_file_containing_service_loads_with_dependencies(reflection):
    (response,) = ask(reflection, {"file_containing_symbol": TEST_SERVICE})
    pool = load_pool(file_protos(response))
    service = pool.FindServiceByName(TEST_SERVICE)
    methods = {m.name: (m.client_streaming, m.server_streaming) for m in service.methods}
    assert methods == TEST_SERVICE_METHODS
    unary = service.methods_by_name["UnaryCall"]
    assert unary.input_type.full_name == "grpc.testing.SimpleRequest"
    assert unary.output_type.full_name == "grpc.testing.SimpleResponse"


def test_reflection_of_unknown_symbol_is_not_found(reflection):
    (response,) = ask(reflection, {"file_containing_symbol": "no.such.Symbol"})
    assert response.WhichOneof("message_response") == "error_response", response
    assert response.error_response.error_code == NOT_FOUND


def without_json_names(protos):
    """protoc fills in json_name, a descriptor copied at run time may not; it is derived
    from the field name, so leave it out of the comparison."""
    def strip(messages):
        for m in messages:
            for f in m.field:
                f.ClearField("json_name")
            strip(m.nested_type)

    for p in protos:
        strip(p.message_type)
    return protos


def test_reflection_serves_what_protos_define(reflection, tmp_path):
    """The served TestService and grpc.testing messages equal those protoc builds
    from Protos/ (compared with shared/tools/apimodel.py's model)."""
    sys.path.insert(0, str(shared_tool("apimodel.py").parent))
    import apimodel
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(build_descriptor_set(tmp_path / "ours.pb").read_bytes())
    (response,) = ask(reflection, {"file_containing_symbol": TEST_SERVICE})
    local = apimodel.ApiModel(without_json_names(fds.file))
    served = apimodel.ApiModel(without_json_names(file_protos(response)))
    assert served.services[TEST_SERVICE] == local.services[TEST_SERVICE]
    for name, message in local.messages.items():
        if name.startswith("grpc.testing."):
            assert served.messages.get(name) == message, name
