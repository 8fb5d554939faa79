"""The real `scheduler` binary driven over gRPC by grpcio + the official dragonfly-api stubs.

Every simulated peer is its own AnnouncePeer bidi stream (`PeerConn`): requests go through
a queue-backed iterator and responses are pumped into a queue by a thread, so a test can
send a request and read the answer step by step, always with a timeout.

Configs are fast (retryInterval 50ms, small retry limits) so the retry paths take well
under a second. Everything listens on 127.0.0.1; only processes started here are stopped.
"""

import queue
import re
import subprocess
import threading
import time
import urllib.request
from concurrent import futures

import grpc
import pytest
from google.protobuf import duration_pb2

from dragonfly_api import common_pb2, dfdaemon_pb2_grpc, scheduler_pb2, scheduler_pb2_grpc

from conftest import Server, binary, describe, run, tool

RPC_TIMEOUT = 10          # unary calls
STREAM_TIMEOUT = 60       # whole AnnouncePeer call (a deadline, so nothing can hang)
RECV_TIMEOUT = 5          # one scheduling answer

RETRY_INTERVAL = 0.05     # scheduler.retryInterval below
FAST = {
    "retryInterval": "50ms",
    "retryBackToSourceLimit": 3,
    "retryLimit": 6,
    "backToSourceCount": 10,
}

MiB = 1024 * 1024
PIECE_LENGTH = 4 * MiB
CONTENT_LENGTH = 10 * MiB          # pieces of 4, 4 and 2 MiB
PIECE_COUNT = 3

NEED_BTS_FLAG = "peer's NeedBackToSource is true"
NEED_BTS_RETRY = "scheduling exceeded RetryBackToSourceLimit"


# ---------------------------------------------------------------------------------------
# The scheduler process

def write_config(path, scheduler_keys):
    lines = ["scheduler:"] + [f"  {k}: {v}" for k, v in scheduler_keys.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


class Sched:
    """One running scheduler with a channel, a stub and bookkeeping of what tests sent."""

    def __init__(self, tmp_path, scheduler_keys):
        tmp_path.mkdir(parents=True, exist_ok=True)
        config = write_config(tmp_path / "scheduler.yaml", scheduler_keys)
        self.server = Server(
            [binary("scheduler"), "--port", "0", "--metrics-port", "0", "--listen-ip", "127.0.0.1",
             "--data-dir", tmp_path / "data", "--config", config],
            tmp_path / "stderr.log")
        self.channel = grpc.insecure_channel(self.server.address)
        grpc.channel_ready_future(self.channel).result(timeout=RPC_TIMEOUT)
        self.stub = scheduler_pb2_grpc.SchedulerStub(self.channel)
        self.peers = []
        # What the tests made the scheduler see, for the metrics checks.
        self.registrations = 0
        self.streams = 0
        self.failed_streams = 0
        self.piece_costs = []   # seconds

    # unary helpers
    def announce_host(self, host_id, type=0, **kwargs):
        host = make_host(host_id, type=type, **kwargs)
        self.stub.AnnounceHost(scheduler_pb2.AnnounceHostRequest(host=host), timeout=RPC_TIMEOUT)
        return host

    def list_hosts(self, type=None):
        req = scheduler_pb2.ListHostsRequest() if type is None else scheduler_pb2.ListHostsRequest(type=type)
        return list(self.stub.ListHosts(req, timeout=RPC_TIMEOUT).hosts)

    def delete_host(self, host_id):
        self.stub.DeleteHost(scheduler_pb2.DeleteHostRequest(host_id=host_id), timeout=RPC_TIMEOUT)

    def stat_peer(self, peer):
        return self.stub.StatPeer(scheduler_pb2.StatPeerRequest(
            host_id=peer.host_id, task_id=peer.task_id, peer_id=peer.peer_id), timeout=RPC_TIMEOUT)

    def stat_task(self, task_id, host_id=""):
        return self.stub.StatTask(scheduler_pb2.StatTaskRequest(host_id=host_id, task_id=task_id),
                                  timeout=RPC_TIMEOUT)

    def delete_peer(self, peer):
        self.stub.DeletePeer(scheduler_pb2.DeletePeerRequest(
            host_id=peer.host_id, task_id=peer.task_id, peer_id=peer.peer_id), timeout=RPC_TIMEOUT)

    def peer(self, host_id, task_id, peer_id):
        conn = PeerConn(self, host_id, task_id, peer_id)
        self.peers.append(conn)
        self.streams += 1
        return conn

    def metrics_text(self):
        return http_get(self.server.metrics_port, "/metrics")[1]

    def close(self):
        for p in self.peers:
            p.close()
        self.channel.close()
        self.server.stop()


def http_get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=RPC_TIMEOUT) as r:
        return r.status, r.read().decode("utf-8", "replace")


@pytest.fixture(scope="module")
def sched(tmp_path_factory):
    """The shared scheduler (fast config, no seed hosts ever) for most tests."""
    s = Sched(tmp_path_factory.mktemp("scheduler-shared"), FAST)
    yield s
    s.close()


@pytest.fixture
def new_sched(tmp_path):
    """A fresh scheduler per call, for tests that need their own config or a clean host list."""
    made = []

    def make(**overrides):
        s = Sched(tmp_path / f"scheduler-{len(made)}", {**FAST, **overrides})
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


# ---------------------------------------------------------------------------------------
# Messages

def make_host(host_id, type=0, ip="127.0.0.1", port=65000, disable_shared=False, idc="", location=""):
    return common_pb2.Host(
        id=host_id, type=type, hostname=f"{host_id}-name", name=f"{host_id}-display", ip=ip, port=port, download_port=port + 1,
        os="linux", platform="debian", kernel_version="6.1", disable_shared=disable_shared,
        cpu=common_pb2.CPU(logical_count=4, physical_count=2),
        memory=common_pb2.Memory(total=8 << 30, available=4 << 30),
        network=common_pb2.Network(idc=idc, location=location, max_tx_bandwidth=10_000_000_000,
                                   max_rx_bandwidth=10_000_000_000),
        disk=common_pb2.Disk(total=100 << 30, free=50 << 30))


def make_download(url, **kwargs):
    return common_pb2.Download(url=url, piece_length=PIECE_LENGTH, **kwargs)


def sized_download(url, **kwargs):
    """A download whose size the client knows (what dfdaemon sends once it has it)."""
    return make_download(url, actual_content_length=CONTENT_LENGTH, actual_piece_length=PIECE_LENGTH,
                         actual_piece_count=PIECE_COUNT, **kwargs)


def make_piece(number, cost_ms, parent_id=None, traffic_type=None):
    offset = number * PIECE_LENGTH
    length = min(PIECE_LENGTH, CONTENT_LENGTH - offset)
    kwargs = {}
    if parent_id is not None:
        kwargs["parent_id"] = parent_id
    if traffic_type is not None:
        kwargs["traffic_type"] = traffic_type
    return common_pb2.Piece(number=number, offset=offset, length=length,
                            cost=duration_pb2.Duration(seconds=cost_ms // 1000,
                                                          nanos=cost_ms % 1000 * 1_000_000), **kwargs)


# ---------------------------------------------------------------------------------------
# A simulated peer: one AnnouncePeer stream

_END = object()


class PeerConn:
    def __init__(self, sched, host_id, task_id, peer_id):
        self.sched = sched
        self.host_id, self.task_id, self.peer_id = host_id, task_id, peer_id
        self._requests = queue.Queue()
        self._responses = queue.Queue()
        self._closed = threading.Event()
        self.ended = None   # (code, details) once the stream is over
        self.call = sched.stub.AnnouncePeer(self._request_iter(), timeout=STREAM_TIMEOUT)
        threading.Thread(target=self._pump, daemon=True).start()

    def _request_iter(self):
        while not self._closed.is_set():
            try:
                item = self._requests.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is None:
                return
            yield item

    def _pump(self):
        try:
            for response in self.call:
                self._responses.put(response)
            self._responses.put(_END)
        except grpc.RpcError as err:
            self._responses.put(err)

    # sending
    def send(self, **oneof):
        self._requests.put(scheduler_pb2.AnnouncePeerRequest(
            host_id=self.host_id, task_id=self.task_id, peer_id=self.peer_id, **oneof))

    def register(self, download):
        self.sched.registrations += 1
        self.send(register_peer_request=scheduler_pb2.RegisterPeerRequest(download=download))

    def started(self):
        self.send(download_peer_started_request=scheduler_pb2.DownloadPeerStartedRequest())

    def back_to_source_started(self):
        self.send(download_peer_back_to_source_started_request=
                  scheduler_pb2.DownloadPeerBackToSourceStartedRequest(description="origin"))

    def piece_back_to_source_finished(self, piece):
        self.sched.piece_costs.append(piece.cost.seconds + piece.cost.nanos / 1e9)
        self.send(download_piece_back_to_source_finished_request=
                  scheduler_pb2.DownloadPieceBackToSourceFinishedRequest(piece=piece))

    def piece_finished(self, piece):
        self.sched.piece_costs.append(piece.cost.seconds + piece.cost.nanos / 1e9)
        self.send(download_piece_finished_request=scheduler_pb2.DownloadPieceFinishedRequest(piece=piece))

    def piece_failed(self, parent_id, temporary, piece_number=0):
        self.send(download_piece_failed_request=scheduler_pb2.DownloadPieceFailedRequest(
            piece_number=piece_number, parent_id=parent_id, temporary=temporary))

    def finished(self):
        self.send(download_peer_finished_request=scheduler_pb2.DownloadPeerFinishedRequest())

    def back_to_source_finished(self):
        self.send(download_peer_back_to_source_finished_request=
                  scheduler_pb2.DownloadPeerBackToSourceFinishedRequest())

    def half_close(self):
        self._requests.put(None)

    def close(self):
        self._closed.set()
        self._requests.put(None)
        self.call.cancel()

    # receiving
    def _next(self, timeout):
        try:
            item = self._responses.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"peer {self.peer_id}: nothing from the scheduler in {timeout}s\n"
                                 f"{self.sched.server.log_tail()}") from None
        if item is _END:
            self.ended = (grpc.StatusCode.OK, "")
        elif isinstance(item, grpc.RpcError):
            self.ended = (item.code(), item.details())
            self.sched.failed_streams += 1
        return item

    def recv(self, timeout=RECV_TIMEOUT):
        """The next AnnouncePeerResponse; fails if the stream ended instead."""
        item = self._next(timeout)
        if item is _END or isinstance(item, grpc.RpcError):
            raise AssertionError(f"peer {self.peer_id}: stream ended {self.ended} instead of a response")
        return item

    def expect(self, kind, timeout=RECV_TIMEOUT):
        response = self.recv(timeout)
        got = response.WhichOneof("response")
        assert got == kind, f"peer {self.peer_id}: expected {kind}, got {got}: {response}"
        return getattr(response, kind)

    def expect_parents(self, timeout=RECV_TIMEOUT):
        return list(self.expect("normal_task_response", timeout).candidate_parents)

    def expect_no_response(self, wait):
        try:
            item = self._responses.get(timeout=wait)
        except queue.Empty:
            return
        raise AssertionError(f"peer {self.peer_id}: expected silence, got {item!r}")

    def expect_end(self, timeout=RECV_TIMEOUT):
        """Waits for the stream to end; returns (status code, details)."""
        item = self._next(timeout)
        if not (item is _END or isinstance(item, grpc.RpcError)):
            raise AssertionError(f"peer {self.peer_id}: expected the stream to end, got {item}")
        return self.ended


# ---------------------------------------------------------------------------------------
# Scenario helpers

def back_to_source_peer(sched, host_id, task_id, peer_id, download=None, expect_description=NEED_BTS_FLAG):
    """A peer told to go back to source that reports it started doing so (state BackToSource)."""
    peer = sched.peer(host_id, task_id, peer_id)
    peer.register(download or make_download(f"https://origin.test/{task_id}", need_back_to_source=True))
    bts = peer.expect("need_back_to_source_response")
    if expect_description is not None:
        assert bts.description == expect_description
    peer.back_to_source_started()
    wait_state(sched, peer, "BackToSource")
    return peer


def wait_state(sched, peer, state, timeout=RECV_TIMEOUT):
    """Stream requests are processed asynchronously: poll StatPeer until the state shows."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = sched.stat_peer(peer).state
        if last == state:
            return
        time.sleep(0.02)
    raise AssertionError(f"peer {peer.peer_id} stayed {last!r}, expected {state!r}")


def ids(peers):
    return sorted(p.id for p in peers)


def rpc_error(fn, *args, **kwargs):
    with pytest.raises(grpc.RpcError) as info:
        fn(*args, timeout=RPC_TIMEOUT, **kwargs)
    return info.value


# ---------------------------------------------------------------------------------------
# 1. Hosts

def test_announce_list_delete_hosts(new_sched):
    s = new_sched()
    assert s.list_hosts() == []
    s.announce_host("host-a", idc="idc-1", location="cn|hz")
    s.announce_host("host-b", port=65100)
    s.announce_host("seed-1", type=1, port=65200)

    hosts = {h.id: h for h in s.list_hosts()}
    assert sorted(hosts) == ["host-a", "host-b", "seed-1"]
    a = hosts["host-a"]
    assert (a.type, a.hostname, a.ip, a.port, a.download_port) == (0, "host-a-name", "127.0.0.1", 65000, 65001)
    assert (a.network.idc, a.network.location) == ("idc-1", "cn|hz")
    assert a.cpu.logical_count == 4 and a.memory.total == 8 << 30 and a.disk.free == 50 << 30
    assert hosts["host-b"].port == 65100
    assert hosts["seed-1"].type == 1

    assert ids(s.list_hosts(type=1)) == ["seed-1"]
    assert ids(s.list_hosts(type=0)) == ["host-a", "host-b"]
    assert s.list_hosts(type=2) == []        # strong seeds: none announced

    # Announcing again updates the host in place (no duplicate).
    s.announce_host("host-a", idc="idc-2", location="cn|hz")
    hosts = {h.id: h for h in s.list_hosts()}
    assert len(hosts) == 3 and hosts["host-a"].network.idc == "idc-2"

    s.delete_host("host-b")
    assert ids(s.list_hosts()) == ["host-a", "seed-1"]
    s.delete_host("seed-1")
    assert s.list_hosts(type=1) == []

    err = rpc_error(s.stub.AnnounceHost, scheduler_pb2.AnnounceHostRequest(host=common_pb2.Host()))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, "a host needs an id"

    err = rpc_error(s.stub.DeleteHost, scheduler_pb2.DeleteHostRequest(host_id="no-such-host"))
    assert err.code() == grpc.StatusCode.NOT_FOUND, err
    err = rpc_error(s.stub.DeleteHost, scheduler_pb2.DeleteHostRequest(host_id="host-b"))
    assert err.code() == grpc.StatusCode.NOT_FOUND, "deleting twice"
    s.server.assert_alive()


# ---------------------------------------------------------------------------------------
# 2. First peer goes back to source; StatTask / StatPeer

def first_peer_back_to_source(sched, task_id, host_id, peer_id, costs=(10, 20, 30)):
    sched.announce_host(host_id)
    peer = sched.peer(host_id, task_id, peer_id)
    peer.register(sized_download(f"https://origin.test/{task_id}.bin"))
    assert peer.expect("need_back_to_source_response").description == NEED_BTS_FLAG
    peer.back_to_source_started()
    pieces = [make_piece(n, cost) for n, cost in enumerate(costs)]
    for p in pieces:
        peer.piece_back_to_source_finished(p)
    peer.back_to_source_finished()
    assert peer.expect_end() == (grpc.StatusCode.OK, "")
    return peer, pieces


def test_first_peer_goes_back_to_source(sched):
    task = "task-first"
    peer, pieces = first_peer_back_to_source(sched, task, "t2-host-1", "t2-peer-1")

    t = sched.stat_task(task)
    assert t.id == task
    assert t.url == f"https://origin.test/{task}.bin"
    assert t.state == "Succeeded"
    assert t.content_length == CONTENT_LENGTH
    assert t.piece_count == PIECE_COUNT
    assert t.size_scope == common_pb2.NORMAL
    assert t.peer_count == 1
    got = sorted(t.pieces, key=lambda p: p.number)
    assert [(p.number, p.offset, p.length) for p in got] == [(0, 0, 4 * MiB), (1, 4 * MiB, 4 * MiB),
                                                               (2, 8 * MiB, 2 * MiB)]
    assert [p.cost.ToNanoseconds() for p in got] == [10_000_000, 20_000_000, 30_000_000]

    p = sched.stat_peer(peer)
    assert p.id == "t2-peer-1"
    assert p.state == "Succeeded"
    assert p.need_back_to_source is True
    assert p.task.id == task and p.task.state == "Succeeded"
    assert p.host.id == "t2-host-1" and p.host.hostname == "t2-host-1-name"
    assert p.host.name == "t2-host-1-display", "StatPeer's host has the name (upstream 7)"
    assert p.cost.ToNanoseconds() > 0


# ---------------------------------------------------------------------------------------
# 3. Second peer is offered the first

def test_second_peer_is_offered_the_first(sched):
    task = "task-second"
    first, _ = first_peer_back_to_source(sched, task, "t3-host-1", "t3-peer-1")
    sched.announce_host("t3-host-2")

    second = sched.peer("t3-host-2", task, "t3-peer-2")
    second.register(make_download(f"https://origin.test/{task}.bin"))
    parents = second.expect_parents()
    assert [p.id for p in parents] == ["t3-peer-1"]
    parent = parents[0]
    assert parent.host.id == "t3-host-1"
    assert parent.host.hostname == "t3-host-1-name"
    assert parent.host.name == "", "candidates carry no host name (upstream 2.2)"
    assert (parent.host.ip, parent.host.port) == ("127.0.0.1", 65000)
    assert parent.state == "Succeeded"
    assert parent.task.id == task and parent.task.content_length == CONTENT_LENGTH
    assert len(parent.task.pieces) == 0, "candidates carry no pieces"

    # A new peer puts the succeeded task back to Running.
    assert sched.stat_task(task).state == "Running"
    second.started()
    wait_state(sched, second, "Running")
    for n in range(PIECE_COUNT):
        second.piece_finished(make_piece(n, 5, parent_id="t3-peer-1",
                                         traffic_type=common_pb2.REMOTE_PEER))
    second.finished()
    assert second.expect_end() == (grpc.StatusCode.OK, "")
    p = sched.stat_peer(second)
    assert p.state == "Succeeded" and p.need_back_to_source is False
    assert sched.stat_task(task).peer_count == 2


def test_second_peer_on_same_host_is_not_offered_it(sched):
    """Same host is never a parent: with only that one the peer goes to the origin after the
    back-to-source retry limit."""
    task = "task-same-host"
    first_peer_back_to_source(sched, task, "t3b-host", "t3b-peer-1")
    other = sched.peer("t3b-host", task, "t3b-peer-2")
    other.register(make_download(f"https://origin.test/{task}.bin"))
    # The task is Succeeded but has no available peer on another host: flagged at register.
    assert other.expect("need_back_to_source_response").description == NEED_BTS_FLAG


# ---------------------------------------------------------------------------------------
# 4. Failed parent

def test_piece_failure_blocks_parent_and_reschedules(sched):
    task = "task-piece-failed"
    for h in ("t4-h1", "t4-h2", "t4-h3"):
        sched.announce_host(h)
    p1 = back_to_source_peer(sched, "t4-h1", task, "t4-p1")
    p2 = back_to_source_peer(sched, "t4-h2", task, "t4-p2")

    child = sched.peer("t4-h3", task, "t4-c")
    child.register(make_download(f"https://origin.test/{task}"))
    assert ids(child.expect_parents()) == ["t4-p1", "t4-p2"]
    child.started()
    wait_state(sched, child, "Running")

    # Temporary failure from p1: p1 is blocked, new candidates come at once.
    child.piece_failed(parent_id="t4-p1", temporary=True)
    assert ids(child.expect_parents()) == ["t4-p2"]

    # A non-temporary failure does not reschedule.
    child.piece_failed(parent_id="t4-p2", temporary=False)
    child.expect_no_response(wait=0.5)

    # p2 fails temporarily too: nobody is left, so after retryBackToSourceLimit rounds the
    # child is sent to the origin.
    start = time.monotonic()
    child.piece_failed(parent_id="t4-p2", temporary=True)
    bts = child.expect("need_back_to_source_response")
    elapsed = time.monotonic() - start
    assert bts.description == NEED_BTS_RETRY
    assert elapsed >= FAST["retryBackToSourceLimit"] * RETRY_INTERVAL * 0.8, elapsed

    # The blocklist is for this peer only: a fresh peer is still offered both.
    sched.announce_host("t4-h4")
    fresh = sched.peer("t4-h4", task, "t4-fresh")
    fresh.register(make_download(f"https://origin.test/{task}"))
    assert ids(fresh.expect_parents()) == ["t4-p1", "t4-p2"]
    for p in (p1, p2, child, fresh):
        assert p.ended is None, f"{p.peer_id} stream ended early: {p.ended}"


def test_reschedule_request_excludes_listed_parents(sched):
    task = "task-reschedule"
    for h in ("t4b-h1", "t4b-h2", "t4b-h3"):
        sched.announce_host(h)
    back_to_source_peer(sched, "t4b-h1", task, "t4b-p1")
    back_to_source_peer(sched, "t4b-h2", task, "t4b-p2")
    child = sched.peer("t4b-h3", task, "t4b-c")
    child.register(make_download(f"https://origin.test/{task}"))
    parents = child.expect_parents()
    assert ids(parents) == ["t4b-p1", "t4b-p2"]
    child.started()
    bad = [p for p in parents if p.id == "t4b-p2"]
    child.send(reschedule_peer_request=scheduler_pb2.ReschedulePeerRequest(
        candidate_parents=bad, description="slow"))
    assert ids(child.expect_parents()) == ["t4b-p1"]


# ---------------------------------------------------------------------------------------
# 5. Leaving parent

def test_deleted_parent_children_are_rescheduled(sched):
    task = "task-parent-leaves"
    for h in ("t5-h1", "t5-h2", "t5-h3"):
        sched.announce_host(h)
    p = back_to_source_peer(sched, "t5-h1", task, "t5-p")
    q = back_to_source_peer(sched, "t5-h2", task, "t5-q")
    child = sched.peer("t5-h3", task, "t5-c")
    child.register(make_download(f"https://origin.test/{task}"))
    assert ids(child.expect_parents()) == ["t5-p", "t5-q"]
    child.started()
    wait_state(sched, child, "Running")

    sched.delete_peer(p)
    assert ids(child.expect_parents()) == ["t5-q"]
    err = rpc_error(sched.stub.StatPeer, scheduler_pb2.StatPeerRequest(
        host_id="t5-h1", task_id=task, peer_id="t5-p"))
    assert err.code() == grpc.StatusCode.NOT_FOUND

    # The last parent leaves: no parent is left, so the child goes back to source.
    sched.delete_peer(q)
    bts = child.expect("need_back_to_source_response")
    assert bts.description == NEED_BTS_RETRY
    # DeletePeer of an unknown peer is still OK (as upstream).
    sched.delete_peer(p)
    assert child.ended is None


def test_deleted_parent_host_children_are_rescheduled(sched):
    task = "task-host-leaves"
    for h in ("t5b-h1", "t5b-h2", "t5b-h3"):
        sched.announce_host(h)
    back_to_source_peer(sched, "t5b-h1", task, "t5b-p")
    q = back_to_source_peer(sched, "t5b-h2", task, "t5b-q")
    child = sched.peer("t5b-h3", task, "t5b-c")
    child.register(make_download(f"https://origin.test/{task}"))
    assert ids(child.expect_parents()) == ["t5b-p", "t5b-q"]
    child.started()
    wait_state(sched, child, "Running")

    sched.delete_host("t5b-h1")
    assert ids(child.expect_parents()) == ["t5b-q"]
    err = rpc_error(sched.stub.StatPeer, scheduler_pb2.StatPeerRequest(
        host_id="t5b-h1", task_id=task, peer_id="t5b-p"))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert sched.stat_task(task).peer_count == 2
    assert q.ended is None


def test_delete_task_reschedules_children(sched):
    task = "task-delete-task"
    for h in ("t5c-h1", "t5c-h2", "t5c-h3"):
        sched.announce_host(h)
    back_to_source_peer(sched, "t5c-h1", task, "t5c-p")
    back_to_source_peer(sched, "t5c-h2", task, "t5c-q")
    child = sched.peer("t5c-h3", task, "t5c-c")
    child.register(make_download(f"https://origin.test/{task}"))
    assert ids(child.expect_parents()) == ["t5c-p", "t5c-q"]

    sched.stub.DeleteTask(scheduler_pb2.DeleteTaskRequest(host_id="t5c-h1", task_id=task), timeout=RPC_TIMEOUT)
    assert ids(child.expect_parents()) == ["t5c-q"]
    assert sched.stat_task(task).peer_count == 2
    err = rpc_error(sched.stub.DeleteTask, scheduler_pb2.DeleteTaskRequest(host_id="no-such-host", task_id=task))
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_stat_peer_host_has_no_disable_shared(sched):
    sched.announce_host("t5d-host", disable_shared=True)
    peer = back_to_source_peer(sched, "t5d-host", "task-stat-host", "t5d-peer")
    host = sched.stat_peer(peer).host
    assert host.id == "t5d-host" and host.name == "t5d-host-display"
    assert host.disable_shared is False


# ---------------------------------------------------------------------------------------
# 6. backToSourceCount

def test_back_to_source_count_is_honoured(new_sched):
    # backToSourceCount 1: `len(backToSourcePeers) <= 1` is checked before a peer is added,
    # so two peers may be back-to-source at once, never a third.
    s = new_sched(backToSourceCount=1, retryBackToSourceLimit=2, retryLimit=4)
    task = "task-bts-count"
    url = f"https://origin.test/{task}"
    # disable_shared hosts are never parents: nobody has an eligible parent.
    for h in ("h-a", "h-b", "h-c", "h-d", "h-e"):
        s.announce_host(h, disable_shared=True)

    a = s.peer("h-a", task, "p-a")
    a.register(make_download(url))
    assert a.expect("need_back_to_source_response").description == NEED_BTS_FLAG
    a.back_to_source_started()
    wait_state(s, a, "BackToSource")

    b = s.peer("h-b", task, "p-b")
    b.register(make_download(url))
    assert b.expect("need_back_to_source_response").description == NEED_BTS_RETRY
    b.back_to_source_started()
    wait_state(s, b, "BackToSource")

    # Third peer: no parent, and back-to-source is full → RetryLimit → FAILED_PRECONDITION.
    c = s.peer("h-c", task, "p-c")
    start = time.monotonic()
    c.register(make_download(url))
    code, details = c.expect_end()
    elapsed = time.monotonic() - start
    assert code == grpc.StatusCode.FAILED_PRECONDITION, (code, details)
    assert "RetryLimit" in details
    assert elapsed >= 4 * RETRY_INTERVAL * 0.8, elapsed
    assert s.stat_peer(c).state == "Failed"

    # Even a peer that asks for the origin is refused while the limit is reached.
    d = s.peer("h-d", task, "p-d")
    d.register(make_download(url, need_back_to_source=True))
    code, details = d.expect_end()
    assert code == grpc.StatusCode.FAILED_PRECONDITION, (code, details)

    # One back-to-source peer finishes: a slot is free again.
    a.back_to_source_finished()
    assert a.expect_end() == (grpc.StatusCode.OK, "")
    e = s.peer("h-e", task, "p-e")
    e.register(make_download(url))
    assert e.expect("need_back_to_source_response").description == NEED_BTS_RETRY
    assert b.ended is None


def test_back_to_source_count_full_peers_get_parents(new_sched):
    s = new_sched(backToSourceCount=1)
    task = "task-bts-parents"
    url = f"https://origin.test/{task}"
    for h in ("h-1", "h-2", "h-3"):
        s.announce_host(h)
    back_to_source_peer(s, "h-1", task, "p-1", download=make_download(url, need_back_to_source=True))
    back_to_source_peer(s, "h-2", task, "p-2", download=make_download(url, need_back_to_source=True))
    # Wants the origin, but the limit is reached: scheduled to the two instead.
    third = s.peer("h-3", task, "p-3")
    third.register(make_download(url, need_back_to_source=True))
    assert ids(third.expect_parents()) == ["p-1", "p-2"]


# ---------------------------------------------------------------------------------------
# 7. Empty task

def test_empty_task(sched):
    sched.announce_host("t7-host")
    peer = sched.peer("t7-host", "task-empty", "t7-peer")
    peer.register(make_download("https://origin.test/empty", actual_content_length=0))
    peer.expect("empty_task_response")
    assert sched.stat_peer(peer).state == "ReceivedEmpty"
    assert sched.stat_task("task-empty").size_scope == common_pb2.EMPTY
    peer.finished()
    assert peer.expect_end() == (grpc.StatusCode.OK, "")
    assert sched.stat_peer(peer).state == "Succeeded"


def test_absent_content_length_is_not_empty(sched):
    sched.announce_host("t7b-host")
    peer = sched.peer("t7b-host", "task-unknown-size", "t7b-peer")
    peer.register(make_download("https://origin.test/unknown-size"))
    assert peer.expect("need_back_to_source_response").description == NEED_BTS_FLAG
    assert sched.stat_task("task-unknown-size").size_scope == common_pb2.NORMAL


# ---------------------------------------------------------------------------------------
# 8. Errors on the stream and for unknown ids

def test_register_on_unknown_host_is_not_found(sched):
    peer = sched.peer("no-such-host", "task-x", "t8-peer")
    peer.register(make_download("https://origin.test/x"))
    code, details = peer.expect_end()
    assert code == grpc.StatusCode.NOT_FOUND, (code, details)
    assert "no-such-host" in details
    sched.registrations -= 1   # refused before it counts as a registration


def test_register_without_peer_id_is_invalid_argument(sched):
    sched.announce_host("t8-host-0")
    peer = sched.peer("t8-host-0", "task-z", "")
    peer.register(make_download("https://origin.test/z"))
    sched.registrations -= 1
    code, details = peer.expect_end()
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)


def test_request_without_oneof_is_failed_precondition(sched):
    sched.announce_host("t8-host")
    peer = sched.peer("t8-host", "task-y", "t8-peer-2")
    peer.send()   # no request oneof
    code, details = peer.expect_end()
    assert code == grpc.StatusCode.FAILED_PRECONDITION, (code, details)
    assert "unknown request" in details


def test_stat_unknown_is_not_found(sched):
    err = rpc_error(sched.stub.StatPeer, scheduler_pb2.StatPeerRequest(peer_id="nobody"))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = rpc_error(sched.stub.StatTask, scheduler_pb2.StatTaskRequest(task_id="no-task"))
    assert err.code() == grpc.StatusCode.NOT_FOUND


# ---------------------------------------------------------------------------------------
# 9. Unimplemented official methods

def test_unimplemented_methods(sched):
    err = rpc_error(sched.stub.StatCachePeer, scheduler_pb2.StatCachePeerRequest(peer_id="x"))
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED, err
    # Persistent cache tasks are served (test_persistent_cache.py): an unknown one is not found.
    err = rpc_error(sched.stub.StatPersistentCacheTask, scheduler_pb2.StatPersistentCacheTaskRequest(task_id="ab"))
    assert err.code() == grpc.StatusCode.NOT_FOUND, err
    # Preheats are served (test_scheduler_preheat.py), but never to an anonymous caller.
    err = rpc_error(sched.stub.PreheatImage, scheduler_pb2.PreheatImageRequest(url="https://r.test/v2/a/manifests/1"))
    assert err.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED), err
    sched.server.assert_alive()


# ---------------------------------------------------------------------------------------
# 10. Metrics

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)(\s+\d+)?$')


def parse_metrics(text):
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples


def total(samples, name, **match):
    return sum(v for n, l, v in samples if n == name and all(l.get(k) == x for k, x in match.items()))


def test_metrics(sched):
    # Some traffic of its own, so the test also holds when run alone.
    first_peer_back_to_source(sched, "task-metrics", "t10-host", "t10-peer", costs=(15, 250, 2500))

    status, body = http_get(sched.server.metrics_port, "/healthy")
    assert (status, body.strip()) == (200, "OK")

    text = sched.metrics_text()
    for name in ("dragonfly_scheduler_download_peer_total",
                 "dragonfly_scheduler_download_piece_cost_seconds_bucket",
                 "dragonfly_scheduler_register_peer_total",
                 "dragonfly_scheduler_announce_peer_total"):
        assert name in text, f"{name} missing from /metrics"
    samples = parse_metrics(text)

    registered = total(samples, "dragonfly_scheduler_register_peer_total")
    assert registered == sched.registrations, (registered, sched.registrations)
    assert total(samples, "dragonfly_scheduler_register_peer_total",
                 priority="LEVEL0", task_type="STANDARD", host_type="normal") == registered
    assert total(samples, "dragonfly_scheduler_download_peer_total") == sched.registrations
    assert total(samples, "dragonfly_scheduler_announce_peer_total") >= sched.streams
    assert total(samples, "dragonfly_scheduler_announce_peer_failure_total") >= sched.failed_streams
    assert total(samples, "dragonfly_scheduler_download_piece_finished_total",
                 traffic_type="BACK_TO_SOURCE") >= 3

    # The piece-cost histogram: every cost the tests reported, cumulative buckets.
    count = total(samples, "dragonfly_scheduler_download_piece_cost_seconds_count")
    assert count == len(sched.piece_costs), (count, sched.piece_costs)
    assert total(samples, "dragonfly_scheduler_download_piece_cost_seconds_sum") == pytest.approx(
        sum(sched.piece_costs), rel=1e-6)
    buckets = sorted(((float(l["le"]), v) for n, l, v in samples
                      if n == "dragonfly_scheduler_download_piece_cost_seconds_bucket"), key=lambda b: b[0])
    assert buckets and buckets[-1][0] == float("inf") and buckets[-1][1] == count
    values = [v for _, v in buckets]
    assert values == sorted(values), f"buckets not cumulative: {buckets}"
    for le, v in buckets:
        assert v == sum(1 for c in sched.piece_costs if c <= le), (le, v, sched.piece_costs)

    res = subprocess.run([tool("promtool", "prometheus"), "check", "metrics"], input=text, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, describe(res)


# ---------------------------------------------------------------------------------------
# 11. Config errors

def test_config_unknown_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("scheduler:\n  retryInterval: 50ms\n  bogusKnob: 3\n")
    res = run([binary("scheduler"), "--port", "0", "--metrics-port", "0", "--listen-ip", "127.0.0.1",
               "--data-dir", tmp_path / "data", "--config", bad], timeout=30)
    assert res.returncode != 0, describe(res)
    assert "scheduler.bogusKnob" in res.stderr, describe(res)
    assert "LISTENING" not in res.stdout


def test_config_missing_file(tmp_path):
    missing_path = tmp_path / "does-not-exist.yaml"
    res = run([binary("scheduler"), "--port", "0", "--metrics-port", "0", "--listen-ip", "127.0.0.1",
               "--data-dir", tmp_path / "data", "--config", missing_path], timeout=30)
    assert res.returncode != 0, describe(res)
    assert str(missing_path) in res.stderr, describe(res)
    assert re.search(r"cannot read|no such file|not found|does not exist", res.stderr, re.I), describe(res)
    assert "LISTENING" not in res.stdout


# ---------------------------------------------------------------------------------------
# 12. Seed peer trigger

class FakeSeed(dfdaemon_pb2_grpc.DfdaemonUploadServicer):
    def __init__(self):
        self.requests = queue.Queue()

    def DownloadTask(self, request, context):
        self.requests.put(request)
        return iter(())


@pytest.fixture
def fake_seed():
    seed = FakeSeed()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    dfdaemon_pb2_grpc.add_DfdaemonUploadServicer_to_server(seed, server)
    seed.port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield seed
    server.stop(grace=None)


def test_seed_peer_is_triggered(new_sched, fake_seed):
    s = new_sched()
    s.announce_host("seed-host", type=1, ip="127.0.0.1", port=fake_seed.port)
    s.announce_host("t12-host")
    assert ids(s.list_hosts(type=1)) == ["seed-host"]

    url = "https://origin.test/seeded.bin?token=1"
    peer = s.peer("t12-host", "task-seeded", "t12-peer")
    peer.register(make_download(url, tag="t", application="app"))
    try:
        request = fake_seed.requests.get(timeout=5)
    except queue.Empty:
        pytest.fail(f"the seed peer got no DownloadTask in 5s\n{s.server.log_tail()}")
    assert request.download.url == url
    assert request.download.need_back_to_source is True
    assert (request.download.tag, request.download.application) == ("t", "app")
    assert request.download.piece_length == PIECE_LENGTH
    assert not request.download.HasField("output_path")

    # The peer itself is not flagged for the origin: it waits for the seed, and as the fake
    # seed never registers, gets NeedBackToSource after retryBackToSourceLimit rounds.
    assert peer.expect("need_back_to_source_response").description == NEED_BTS_RETRY
    assert s.stat_peer(peer).need_back_to_source is False
    assert fake_seed.requests.empty(), "exactly one trigger"


def test_triggered_seed_becomes_parent(new_sched, fake_seed):
    """Upstream 5.5: the seed daemon registers its own peer with need_back_to_source, goes to
    the origin, and the waiting normal peer's retries then find it."""
    s = new_sched(retryInterval="100ms", retryBackToSourceLimit=30, retryLimit=40)
    s.announce_host("seed-host", type=1, ip="127.0.0.1", port=fake_seed.port)
    s.announce_host("normal-host")
    task, url = "task-seed-parent", "https://origin.test/seed-parent.bin"

    child = s.peer("normal-host", task, "child")
    child.register(make_download(url))
    request = fake_seed.requests.get(timeout=5)
    assert request.download.url == url and request.download.need_back_to_source

    # What the seed daemon does on DownloadTask (the fake one only records it).
    seed = s.peer("seed-host", task, "seed-peer")
    seed.register(request.download)
    assert seed.expect("need_back_to_source_response").description == NEED_BTS_FLAG
    seed.back_to_source_started()

    parents = child.expect_parents()
    assert [p.id for p in parents] == ["seed-peer"]
    assert parents[0].host.id == "seed-host" and parents[0].host.type == 1
    assert parents[0].state == "BackToSource"
    assert fake_seed.requests.empty(), "the seed's own registration triggers nothing"


def test_seed_trigger_priorities(new_sched, fake_seed):
    """With a seed available: LEVEL1 is forbidden, LEVEL2 is NOT_FOUND, LEVEL3 goes to the
    origin itself without asking the seed (upstream 5.2)."""
    s = new_sched()
    s.announce_host("seed-host", type=1, ip="127.0.0.1", port=fake_seed.port)
    s.announce_host("normal-host")

    l1 = s.peer("normal-host", "task-l1", "p-l1")
    l1.register(make_download("https://origin.test/l1", priority=common_pb2.LEVEL1))
    code, details = l1.expect_end()
    assert code == grpc.StatusCode.FAILED_PRECONDITION, (code, details)

    l2 = s.peer("normal-host", "task-l2", "p-l2")
    l2.register(make_download("https://origin.test/l2", priority=common_pb2.LEVEL2))
    code, details = l2.expect_end()
    assert code == grpc.StatusCode.NOT_FOUND, (code, details)

    l3 = s.peer("normal-host", "task-l3", "p-l3")
    l3.register(make_download("https://origin.test/l3", priority=common_pb2.LEVEL3))
    assert l3.expect("need_back_to_source_response").description == NEED_BTS_FLAG
    time.sleep(0.3)
    assert fake_seed.requests.empty(), "no seed trigger for LEVEL1-3"
