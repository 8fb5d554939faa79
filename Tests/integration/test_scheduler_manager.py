"""The scheduler registers with a manager (UpdateScheduler, then a KeepAlive stream) and
keeps scheduling when the manager is missing or goes away. The manager here is a grpcio
server built from the official dragonfly-api stubs, standing in until ours exists."""

import threading
import time
from concurrent import futures

import grpc
import pytest
from dragonfly_api import manager_pb2, manager_pb2_grpc, scheduler_pb2, scheduler_pb2_grpc, common_pb2

from conftest import Server, binary, free_port


class RecordingManager(manager_pb2_grpc.ManagerServicer):
    def __init__(self):
        self.updates = []
        self.keepalives = []
        self.lock = threading.Lock()

    def UpdateScheduler(self, request, context):
        with self.lock:
            self.updates.append(request)
        return manager_pb2.Scheduler(id=1, hostname=request.hostname, ip=request.ip, port=request.port,
                                     scheduler_cluster_id=request.scheduler_cluster_id, state="active")

    def KeepAlive(self, request_iterator, context):
        for request in request_iterator:
            with self.lock:
                self.keepalives.append(request)
        from google.protobuf import empty_pb2
        return empty_pb2.Empty()


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def manager():
    servicer = RecordingManager()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    manager_pb2_grpc.add_ManagerServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, port, server
    server.stop(grace=None)


def start_scheduler(tmp_path, manager_addr):
    config = tmp_path / "scheduler.yaml"
    config.write_text(
        "server:\n  advertiseIP: 127.0.0.1\n  host: sched-test\n"
        "manager:\n  addr: %s\n  schedulerClusterID: 7\n  keepAlive:\n    interval: 200ms\n" % manager_addr)
    return Server([binary("scheduler"), "--port", "0", "--metrics-port", "0", "--listen-ip", "127.0.0.1",
                   "--data-dir", str(tmp_path / "data"), "--config", str(config)], tmp_path / "stderr.log")


def announce_and_list(address):
    with grpc.insecure_channel(address) as channel:
        stub = scheduler_pb2_grpc.SchedulerStub(channel)
        stub.AnnounceHost(scheduler_pb2.AnnounceHostRequest(host=common_pb2.Host(id="h1", ip="127.0.0.1", hostname="h1")),
                          timeout=10)
        return [h.id for h in stub.ListHosts(scheduler_pb2.ListHostsRequest(), timeout=10).hosts]


def test_scheduler_registers_and_keeps_alive(tmp_path, manager):
    servicer, port, _ = manager
    sched = start_scheduler(tmp_path, f"127.0.0.1:{port}")
    try:
        assert wait_for(lambda: servicer.updates), "no UpdateScheduler reached the manager"
        update = servicer.updates[0]
        assert update.source_type == manager_pb2.SCHEDULER_SOURCE
        assert update.hostname == "sched-test"
        assert update.ip == "127.0.0.1"
        assert update.port == sched.port
        assert update.scheduler_cluster_id == 7
        assert wait_for(lambda: len(servicer.keepalives) >= 3), "keepalives did not keep coming"
        assert all(k.cluster_id == 7 and k.hostname == "sched-test" for k in servicer.keepalives)
        assert announce_and_list(sched.address) == ["h1"]
    finally:
        sched.stop()


def test_scheduler_keeps_scheduling_without_its_manager(tmp_path, manager):
    servicer, port, server = manager
    sched = start_scheduler(tmp_path, f"127.0.0.1:{port}")
    try:
        assert wait_for(lambda: servicer.keepalives)
        server.stop(grace=None)  # the manager goes away
        time.sleep(0.5)
        sched.assert_alive()
        assert announce_and_list(sched.address) == ["h1"]
    finally:
        sched.stop()


def test_scheduler_starts_with_an_unreachable_manager(tmp_path):
    sched = start_scheduler(tmp_path, f"127.0.0.1:{free_port()}")
    try:
        assert announce_and_list(sched.address) == ["h1"]
        sched.assert_alive()
    finally:
        sched.stop()
