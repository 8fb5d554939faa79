"""Every method of the four official services (dragonfly-api's descriptors), called with the
official package's messages against our servers: which ones answer UNIMPLEMENTED. Each that
does is in `UNIMPLEMENTED` below with the reason; the test fails on one missing from the
list, and on one in the list that has since been implemented (the list stays true)."""

import os
import sys
from pathlib import Path

import grpc
from dragonfly_api import dfdaemon_pb2, manager_pb2, scheduler_pb2
from google.protobuf import message_factory

from conftest import Server, binary
from dfdaemon_cluster import make_cluster  # noqa: F401 (fixture)

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from manager_proc import Manager  # noqa: E402

UPSTREAM_STUB = ("in-memory cache tasks: upstream's Rust dfdaemon leaves its side as todo!() stubs, so no client uses "
                 "the scheduler's side either")

UNIMPLEMENTED = {
    # In-memory cache tasks (upstream: todo!() in dfdaemon_download.rs and dfdaemon_upload.rs).
    "dfdaemon.v2.DfdaemonDownload/DeleteCacheTask": UPSTREAM_STUB,
    "dfdaemon.v2.DfdaemonDownload/DownloadCacheTask": UPSTREAM_STUB,
    "dfdaemon.v2.DfdaemonDownload/StatCacheTask": UPSTREAM_STUB,
    "dfdaemon.v2.DfdaemonUpload/DeleteCacheTask": UPSTREAM_STUB,
    "dfdaemon.v2.DfdaemonUpload/DownloadCachePiece": UPSTREAM_STUB,
    "dfdaemon.v2.DfdaemonUpload/DownloadCacheTask": UPSTREAM_STUB,
    "dfdaemon.v2.DfdaemonUpload/StatCacheTask": UPSTREAM_STUB,
    "dfdaemon.v2.DfdaemonUpload/SyncCachePieces": UPSTREAM_STUB,
    "scheduler.v2.Scheduler/AnnounceCachePeer": UPSTREAM_STUB,
    "scheduler.v2.Scheduler/DeleteCachePeer": UPSTREAM_STUB,
    "scheduler.v2.Scheduler/DeleteCacheTask": UPSTREAM_STUB,
    "scheduler.v2.Scheduler/StatCachePeer": UPSTREAM_STUB,
    "scheduler.v2.Scheduler/StatCacheTask": UPSTREAM_STUB,
}


def call(channel, service, method, timeout=3.0):
    """The status code the server answers an empty request with."""
    request = message_factory.GetMessageClass(method.input_type)()
    path = f"/{service.full_name}/{method.name}"
    kwargs = dict(request_serializer=lambda m: m.SerializeToString(), response_deserializer=lambda b: b)
    try:
        if method.client_streaming and method.server_streaming:
            for _ in channel.stream_stream(path, **kwargs)(iter([request]), timeout=timeout):
                break
        elif method.client_streaming:
            channel.stream_unary(path, **kwargs)(iter([request]), timeout=timeout)
        elif method.server_streaming:
            for _ in channel.unary_stream(path, **kwargs)(request, timeout=timeout):
                break
        else:
            channel.unary_unary(path, **kwargs)(request, timeout=timeout)
        return grpc.StatusCode.OK
    except grpc.RpcError as err:
        return err.code()


def test_every_official_method_answers_or_is_listed_with_its_reason(make_cluster, tmp_path):
    c = make_cluster({})
    daemon = c.daemon("a")
    manager = Manager(tmp_path / "manager")
    try:
        targets = [
            (scheduler_pb2.DESCRIPTOR.services_by_name["Scheduler"], c.sched.address),
            (dfdaemon_pb2.DESCRIPTOR.services_by_name["DfdaemonDownload"], f"unix:{c.root}/a.sock"),
            (dfdaemon_pb2.DESCRIPTOR.services_by_name["DfdaemonUpload"], daemon.address),
            (manager_pb2.DESCRIPTOR.services_by_name["Manager"], manager.grpc),
        ]
        unimplemented, total = set(), 0
        for service, address in targets:
            with grpc.insecure_channel(address) as channel:
                for method in service.methods:
                    total += 1
                    if call(channel, service, method) == grpc.StatusCode.UNIMPLEMENTED:
                        unimplemented.add(f"{service.full_name}/{method.name}")
        print(f"{total - len(unimplemented)} of {total} methods implemented")
        assert sorted(unimplemented - set(UNIMPLEMENTED)) == [], "UNIMPLEMENTED without a reason in the list"
        assert sorted(set(UNIMPLEMENTED) - unimplemented) == [], "listed as unimplemented, but now answers: take it off the list"
    finally:
        manager.stop()
