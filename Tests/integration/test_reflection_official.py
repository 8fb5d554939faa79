"""Reflection describes the official API: the descriptors our scheduler serves for the
Dragonfly packages equal those of the official `dragonfly-api` package (proto3 `optional`
as `proto3_optional` fields, reserved numbers and names), and `dfrpc describe` prints the
same text for every service, message and enum whether it asks our server or a grpcio
server reflecting the official descriptors."""

import importlib
from concurrent import futures

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha import reflection_pb2 as alpha_pb2
from grpc_reflection.v1alpha import reflection_pb2_grpc as alpha_pb2_grpc

from conftest import Server, binary, describe, run

MODULES = ["common", "dfdaemon", "errordetails", "manager", "scheduler"]


def official_files():
    return {m: descriptor_pb2.FileDescriptorProto.FromString(
        importlib.import_module(f"dragonfly_api.{m}_pb2").DESCRIPTOR.serialized_pb) for m in MODULES}


def shape(file):
    """What a file defines, without what only names it: its file name and imports differ
    (the official package flattens paths), json_name is derived from the field name."""
    copy = descriptor_pb2.FileDescriptorProto()
    copy.CopyFrom(file)
    for name in ("name", "dependency", "options", "source_code_info"):
        copy.ClearField(name)

    def strip(messages):
        for m in messages:
            for f in m.field:
                f.ClearField("json_name")
            strip(m.nested_type)
    strip(copy.message_type)
    return copy


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    root = tmp_path_factory.mktemp("reflection-official")
    server = Server([binary("scheduler"), "--port", "0", "--metrics-port", "0", "--listen-ip", "127.0.0.1",
                     "--data-dir", root / "data"], root / "scheduler.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def official_server():
    """grpcio reflecting the official descriptors (no methods are served: describe needs none)."""
    files = official_files()
    services = [f"{f.package}.{s.name}" for f in files.values() for s in f.service]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    reflection.enable_server_reflection(services + [reflection.SERVICE_NAME], server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


def served_files(address, symbol):
    with grpc.insecure_channel(address) as channel:
        stub = alpha_pb2_grpc.ServerReflectionStub(channel)
        (response,) = stub.ServerReflectionInfo(iter([alpha_pb2.ServerReflectionRequest(file_containing_symbol=symbol)]),
                                                timeout=10)
    assert response.WhichOneof("message_response") == "file_descriptor_response", response
    return [descriptor_pb2.FileDescriptorProto.FromString(b)
            for b in response.file_descriptor_response.file_descriptor_proto]


@pytest.mark.parametrize("module", MODULES)
def test_served_descriptors_equal_the_official_ones(scheduler, module):
    official = official_files()[module]
    symbol = official.package + "." + official.message_type[0].name
    ours = [f for f in served_files(scheduler.address, symbol) if f.package == official.package]
    assert len(ours) == 1, [f.name for f in ours]
    served, expected = shape(ours[0]), shape(official)
    for message in expected.message_type:
        got = next((m for m in served.message_type if m.name == message.name), None)
        assert got == message, f"{official.package}.{message.name}:\nserved\n{got}\nofficial\n{message}"
    assert served == expected
    optional = [f.name for m in served.message_type for f in m.field if f.proto3_optional]
    assert optional, "the package has proto3 optional fields and they are served as such"


def symbols():
    for f in official_files().values():
        for s in f.service:
            yield f"{f.package}.{s.name}"
        for e in f.enum_type:
            yield f"{f.package}.{e.name}"

        def messages(prefix, types):
            for m in types:
                yield prefix + m.name
                yield from messages(prefix + m.name + ".", [n for n in m.nested_type if not n.options.map_entry])
                for e in m.enum_type:
                    yield prefix + m.name + "." + e.name
        yield from messages(f.package + ".", f.message_type)


def test_dfrpc_describes_every_symbol_as_the_official_descriptors_describe_it(scheduler, official_server):
    checked, mismatched = 0, []
    for symbol in symbols():
        ours = run([binary("dfrpc"), "describe", scheduler.address, symbol], timeout=30)
        theirs = run([binary("dfrpc"), "describe", official_server, symbol], timeout=30)
        assert theirs.returncode == 0, describe(theirs)
        assert ours.returncode == 0, describe(ours)
        checked += 1
        if ours.stdout != theirs.stdout:
            mismatched.append(f"{symbol}:\n--- ours\n{ours.stdout}--- official\n{theirs.stdout}")
    assert checked > 150 and not mismatched, f"{len(mismatched)} of {checked} differ:\n" + "\n".join(mismatched[:3])
    # What the issue saw: `oneof _idc { string idc = 4; }` where the API says `optional`.
    seed_peer = run([binary("dfrpc"), "describe", scheduler.address, "manager.v2.SeedPeer"], timeout=30)
    assert "  optional string idc = 4;\n" in seed_peer.stdout and "oneof _idc" not in seed_peer.stdout, describe(seed_peer)
