"""Persistent cache tasks (`dfcache`, dragonfly-api 2.3): a file imported on one node is
kept by the cluster in `persistent_replica_count` copies, seed peers first; a copy lost
with its host is replaced; any node exports it from its peers with no origin at all; the
TTL removes every copy; deleting is for the cluster's own callers. Driven by our `dfcache`
and by the official stubs."""

import hashlib
import os
import re
import signal
import sys
import time
import urllib.request
import zlib
from pathlib import Path

import grpc
import pytest
from dragonfly_api import dfdaemon_pb2, dfdaemon_pb2_grpc, scheduler_pb2, scheduler_pb2_grpc
from google.protobuf import duration_pb2

from conftest import Server, binary, run
from dfdaemon_cluster import Cluster

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
import vortex_spec  # noqa: E402

MIB = 1 << 20
SECRET_KEY = "x-dragonfly-registration-secret"
# Hosts that stop announcing themselves are forgotten within a few seconds.
SCHED_CONFIG = "scheduler:\n  gc:\n    hostGCInterval: 1s\n"
DAEMON_CONFIG = "scheduler:\n  announceInterval: 1s\ngc:\n  interval: 1s\n"


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, {}, sched_config=SCHED_CONFIG)
    c.daemon("seed", "--seed-peer", config=DAEMON_CONFIG)
    for name in ["a", "b", "c"]:
        c.daemon(name, config=DAEMON_CONFIG)
    c.wait_for_hosts(4)
    yield c
    c.stop()


def dfcache(c, daemon, *args, timeout=120):
    return run([binary("dfcache"), *args, "--endpoint", str(c.root / f"{daemon}.sock"), "--no-progress"], timeout=timeout)


def download_stub(c, daemon):
    return dfdaemon_pb2_grpc.DfdaemonDownloadStub(grpc.insecure_channel(f"unix:{c.root}/{daemon}.sock"))


def scheduler_stub(c):
    return scheduler_pb2_grpc.SchedulerStub(grpc.insecure_channel(c.sched.address))


def stat(c, task):
    return scheduler_stub(c).StatPersistentCacheTask(scheduler_pb2.StatPersistentCacheTaskRequest(host_id="x", task_id=task), timeout=10)


def holders(c, task):
    """The daemons whose store lists the task, with whether their copy is persistent."""
    found = {}
    for name, server in c.daemons.items():
        if server.proc.poll() is not None:
            continue
        for t in download_stub(c, name).ListLocalPersistentCacheTasks(dfdaemon_pb2.ListLocalPersistentCacheTasksRequest(), timeout=10).tasks:
            if t.task_id == task and t.HasField("finished_at"):
                found[name] = t.persistent
    return found


def wait_until(what, check, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def upstream_task_id(data, tag=None, application=None, piece_length=None):
    """The id upstream's dfcache gives a file (dragonfly-client-util's id generator)."""
    h = hashlib.sha256(data)
    for part in [tag, application, None if piece_length is None else str(piece_length)]:
        if part is not None:
            h.update(part.encode())
    h.update(b"PERSISTENT_CACHE")
    return h.hexdigest()


def test_import_keeps_replicas_replaces_a_dead_host_and_exports_with_no_origin(cluster, tmp_path):
    c = cluster
    data = os.urandom(20 * MIB + 12345)
    source = tmp_path / "model.bin"
    source.write_bytes(data)

    imported = dfcache(c, "a", "import", source, "--replica-count", "2", "--ttl", "1h")
    assert imported.returncode == 0, imported.stderr
    task = imported.stdout.strip()
    assert task == upstream_task_id(data)

    # The importer's copy and one more, on the seed peer first.
    wait_until("two persistent replicas", lambda: stat(c, task).current_persistent_replica_count == 2)
    # A replica is counted once its peer reports it finished, and a peer finishes its
    # store before it reports: the seed already lists its copy as finished.
    assert holders(c, task) == {"a": True, "seed": True}
    t = stat(c, task)
    assert (t.state, t.content_length, t.piece_length, t.piece_count) == ("Succeeded", len(data), 4 * MIB, 6)
    assert t.persistent_replica_count == 2 and t.ttl.seconds == 3600

    # a dies without a word: the scheduler forgets its host and has another node fetch a copy.
    c.daemons["a"].proc.send_signal(signal.SIGKILL)
    c.daemons["a"].proc.wait(timeout=10)
    wait_until("a replacement replica", lambda: set(holders(c, task)) == {"seed", "b"} and stat(c, task).current_persistent_replica_count == 2)
    assert holders(c, task) == {"seed": True, "b": True}

    # c exports it from its peers; there is no origin for it anywhere.
    out = tmp_path / "exported.bin"
    exported = dfcache(c, "c", "export", task, "-O", out)
    assert exported.returncode == 0, exported.stderr
    assert out.read_bytes() == data
    assert c.origin_gets("") == []
    # Again from c's own copy, this time with the pieces written by dfcache itself.
    again = tmp_path / "again.bin"
    exported = dfcache(c, "c", "export", task, "-O", again, "--transfer-from-dfdaemon", "--digest", "sha256:" + hashlib.sha256(data).hexdigest())
    assert exported.returncode == 0, exported.stderr
    assert again.read_bytes() == data
    # c's copy is a cached one, not a counted replica.
    assert holders(c, task)["c"] is False
    assert stat(c, task).current_replica_count == 3

    described = dfcache(c, "b", "stat", task)
    assert described.returncode == 0, described.stderr
    assert task in described.stdout and "Succeeded" in described.stdout and "2/2" in described.stdout and "1h" in described.stdout

    # A wrong digest fails the export with dfget's digest exit code, and writes nothing.
    wrong = tmp_path / "wrong.bin"
    failed = dfcache(c, "b", "export", task, "-O", wrong, "--digest", "sha256:" + "0" * 64)
    assert failed.returncode == 3, failed.stderr
    assert not wrong.exists()

    # Removed cluster-wide (the daemons here hold the cluster's secret): every copy goes.
    removed = dfcache(c, "b", "rm", task)
    assert removed.returncode == 0, removed.stderr
    with pytest.raises(grpc.RpcError) as err:
        stat(c, task)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    wait_until("every copy deleted", lambda: holders(c, task) == {} or None)
    missing = dfcache(c, "c", "export", task, "-O", tmp_path / "gone.bin")
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_the_ttl_removes_every_copy(cluster, tmp_path):
    c = cluster
    data = os.urandom(5 * MIB)
    source = tmp_path / "short.bin"
    source.write_bytes(data)
    task = download_stub(c, "b").UploadPersistentCacheTask(dfdaemon_pb2.UploadPersistentCacheTaskRequest(
        path=str(source), persistent_replica_count=3, tag="t", application="app", ttl=duration_pb2.Duration(seconds=8)), timeout=30)
    assert task.id == upstream_task_id(data, tag="t", application="app")
    assert (task.tag, task.application, task.piece_count) == ("t", "app", 2)
    wait_until("three replicas", lambda: len(holders(c, task.id)) == 3)
    assert set(holders(c, task.id)) == {"b", "seed", "a"} or set(holders(c, task.id)) == {"b", "seed", "c"}
    local = download_stub(c, "b").StatLocalPersistentCacheTask(dfdaemon_pb2.StatLocalPersistentCacheTaskRequest(task_id=task.id), timeout=10)
    assert local.persistent and local.ttl.seconds == 8 and local.content_length == len(data)

    wait_until("the TTL to pass", lambda: holders(c, task.id) == {} or None, timeout=30)
    with pytest.raises(grpc.RpcError) as err:
        stat(c, task.id)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    for name in c.daemons:
        assert not (c.root / name / "content" / task.id).exists()


def test_refusals(cluster, tmp_path):
    c = cluster
    data = os.urandom(MIB)
    source = tmp_path / "kept.bin"
    source.write_bytes(data)
    task = download_stub(c, "a").UploadPersistentCacheTask(dfdaemon_pb2.UploadPersistentCacheTaskRequest(
        path=str(source), persistent_replica_count=1, ttl=duration_pb2.Duration(seconds=600)), timeout=30).id
    upload = dfdaemon_pb2_grpc.DfdaemonUploadStub(grpc.insecure_channel(c.daemons["a"].address))

    # From the TCP port, without the cluster's secret: no deleting a replica, no writing files.
    with pytest.raises(grpc.RpcError) as err:
        upload.DeletePersistentCacheTask(dfdaemon_pb2.DeletePersistentCacheTaskRequest(task_id=task), timeout=10)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        upload.DeletePersistentCacheTask(dfdaemon_pb2.DeletePersistentCacheTaskRequest(task_id=task), timeout=10,
                                         metadata=[(SECRET_KEY, "wrong")])
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        list(upload.DownloadPersistentCacheTask(dfdaemon_pb2.DownloadPersistentCacheTaskRequest(
            task_id=task, output_path=str(tmp_path / "planted")), timeout=10))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert not (tmp_path / "planted").exists()
    # The scheduler's deletes too.
    for call, request in [("DeletePersistentCacheTask", scheduler_pb2.DeletePersistentCacheTaskRequest(host_id="x", task_id=task)),
                          ("DeletePersistentCachePeer", scheduler_pb2.DeletePersistentCachePeerRequest(host_id="x", task_id=task, peer_id="p"))]:
        with pytest.raises(grpc.RpcError) as err:
            getattr(scheduler_stub(c), call)(request, timeout=10)
        assert err.value.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED), call
    assert holders(c, task) == {"a": True}
    assert stat(c, task).state == "Succeeded"

    # Imports: only regular files under the allowed directories, never through a symlink.
    stub = download_stub(c, "a")
    link = tmp_path / "link.bin"
    link.symlink_to(source)
    for path, code in [("/etc/passwd", grpc.StatusCode.PERMISSION_DENIED), (str(link), grpc.StatusCode.PERMISSION_DENIED),
                       (str(tmp_path / "x" / ".." / "kept.bin"), grpc.StatusCode.PERMISSION_DENIED),
                       (str(tmp_path), grpc.StatusCode.INVALID_ARGUMENT), (str(tmp_path / "absent"), grpc.StatusCode.NOT_FOUND)]:
        with pytest.raises(grpc.RpcError) as err:
            stub.UploadPersistentCacheTask(dfdaemon_pb2.UploadPersistentCacheTaskRequest(
                path=path, persistent_replica_count=1, ttl=duration_pb2.Duration(seconds=600)), timeout=10)
        assert err.value.code() == code, (path, err.value.details())
    # Hostile numbers are refused with a reason, not trapped on.
    for fields in [dict(persistent_replica_count=0), dict(persistent_replica_count=2 ** 64 - 1),
                   dict(ttl=duration_pb2.Duration(seconds=-1)), dict(ttl=duration_pb2.Duration(seconds=2 ** 63 - 1)),
                   dict(piece_length=1), dict(piece_length=2 ** 64 - 1)]:
        request = dfdaemon_pb2.UploadPersistentCacheTaskRequest(path=str(source), persistent_replica_count=1,
                                                                 ttl=duration_pb2.Duration(seconds=600))
        for k, v in fields.items():
            if isinstance(v, duration_pb2.Duration):
                getattr(request, k).CopyFrom(v)
            else:
                setattr(request, k, v)
        with pytest.raises(grpc.RpcError) as err:
            stub.UploadPersistentCacheTask(request, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, fields
    for bad in ["", "../x", "A" * 64, "0" * 200]:
        with pytest.raises(grpc.RpcError) as err:
            list(stub.DownloadPersistentCacheTask(dfdaemon_pb2.DownloadPersistentCacheTaskRequest(task_id=bad), timeout=10))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
    # The scheduler takes no impossible task: counts that disagree, a zero TTL, a non-hex id.
    sched = scheduler_stub(c)
    for fields in [dict(piece_count=7), dict(ttl=duration_pb2.Duration(seconds=0)), dict(task_id="zz"), dict(persistent_replica_count=0)]:
        request = scheduler_pb2.UploadPersistentCacheTaskStartedRequest(
            host_id="127.0.0.1-a", task_id="ab" * 32, peer_id="p", persistent_replica_count=1, piece_length=4 * MIB,
            content_length=5 * MIB, piece_count=2, ttl=duration_pb2.Duration(seconds=60))
        for k, v in fields.items():
            if isinstance(v, duration_pb2.Duration):
                getattr(request, k).CopyFrom(v)
            else:
                setattr(request, k, v)
        with pytest.raises(grpc.RpcError) as err:
            sched.UploadPersistentCacheTaskStarted(request, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, fields
    # dfcache's own checks: exit 2 before anything is sent.
    for args in [["import", source, "--ttl", "1m"], ["import", source, "--ttl", "8d"], ["import", tmp_path],
                 ["import", source, "--piece-length", "1mib"], ["export", task, "-O", tmp_path / "no" / "dir" / "f"]]:
        assert dfcache(c, "a", *args).returncode == 2, args


def test_tasks_survive_restarts_of_the_scheduler_and_the_importer(cluster, tmp_path):
    c = cluster
    data = os.urandom(9 * MIB)
    source = tmp_path / "kept.bin"
    source.write_bytes(data)
    imported = dfcache(c, "a", "import", source, "--replica-count", "2")
    assert imported.returncode == 0, imported.stderr
    task = imported.stdout.strip()
    wait_until("two replicas", lambda: stat(c, task).current_persistent_replica_count == 2)

    # The scheduler restarts on its port and finds the task where it left it.
    port = c.sched.port
    assert c.sched.stop() == 0
    c.sched = Server([binary("scheduler"), "--port", str(port), "--metrics-port", "0", "--listen-ip", "127.0.0.1",
                      "--data-dir", c.root / "sched", "--config", c.root / "sched.yaml"], c.root / "sched-2.log")
    wait_until("the restore", lambda: "restored 1 task(s)" in (c.root / "sched-2.log").read_text())
    t = stat(c, task)
    assert (t.state, t.content_length, t.current_persistent_replica_count) == ("Succeeded", len(data), 2)

    # The importer is killed and started again on the same store: its copy is still served.
    c.daemons["a"].proc.send_signal(signal.SIGKILL)
    c.daemons["a"].proc.wait(timeout=10)
    c.daemon("a", config=DAEMON_CONFIG)
    c.wait_for_hosts(4)
    assert holders(c, task) == {"a": True, "seed": True}
    out = tmp_path / "from-c.bin"
    exported = dfcache(c, "c", "export", task, "-O", out)
    assert exported.returncode == 0, exported.stderr
    assert out.read_bytes() == data
    local = tmp_path / "from-a.bin"
    exported = dfcache(c, "a", "export", task, "-O", local)
    assert exported.returncode == 0, exported.stderr
    assert local.read_bytes() == data


def test_pieces_go_over_vortex_with_the_persistent_cache_tags(cluster, tmp_path):
    """As between Rust dfdaemons: SyncPersistentCachePieces names the Vortex port, and
    pieces are asked with tag 4 and answered with tag 5; a tag-0 request is refused."""
    c = cluster
    data = os.urandom(9 * MIB)
    source = tmp_path / "v.bin"
    source.write_bytes(data)
    task = download_stub(c, "a").UploadPersistentCacheTask(dfdaemon_pb2.UploadPersistentCacheTaskRequest(
        path=str(source), persistent_replica_count=1, ttl=duration_pb2.Duration(seconds=600)), timeout=30).id
    upload = dfdaemon_pb2_grpc.DfdaemonUploadStub(grpc.insecure_channel(c.daemons["a"].address))
    synced = list(upload.SyncPersistentCachePieces(dfdaemon_pb2.SyncPersistentCachePiecesRequest(host_id="spec", task_id=task), timeout=10))
    assert [p.number for p in synced] == [0, 1, 2] and all(p.tcp_port > 0 for p in synced)
    port = synced[0].tcp_port
    for p in synced:
        meta, content = vortex_spec.fetch_piece("127.0.0.1", port, task, p.number, persistent_cache=True)
        assert content == data[p.offset:p.offset + p.length]
        assert meta["digest"] == f"crc32:{zlib.crc32(content)}"
    with pytest.raises(vortex_spec.VortexError) as err:
        vortex_spec.fetch_piece("127.0.0.1", port, task, 0)
    assert err.value.code == vortex_spec.NOT_FOUND
    # Our own dfdaemon with download.protocol tcp fetches it the same way.
    c.daemon("d", config=DAEMON_CONFIG + "download:\n  protocol: tcp\n")
    c.wait_for_hosts(5)
    out = tmp_path / "over-vortex.bin"
    exported = dfcache(c, "d", "export", task, "-O", out)
    assert exported.returncode == 0, exported.stderr
    assert out.read_bytes() == data
    with urllib.request.urlopen(f"http://{c.daemons['d'].address}/metrics", timeout=10) as res:
        metrics = res.read().decode()
    assert re.search(r'^dragonfly_dfdaemon_parent_piece_total\{transport="vortex"\} 3(\.0)?$', metrics, re.M), metrics
    assert re.search(r'^dragonfly_dfdaemon_download_task_total\{type="p2p"\} 1(\.0)?$', metrics, re.M), metrics


def test_a_replica_claimed_but_not_held_is_not_counted(cluster, tmp_path):
    """Any TCP client may announce a peer. One that says a host holds a copy it does not
    is checked with that host (SyncPersistentCachePieces) and failed, so the replica count
    never looks met on its word."""
    c = cluster
    source = tmp_path / "claimed.bin"
    source.write_bytes(os.urandom(5 * MIB))
    task = download_stub(c, "a").UploadPersistentCacheTask(dfdaemon_pb2.UploadPersistentCacheTaskRequest(
        path=str(source), persistent_replica_count=2, ttl=duration_pb2.Duration(seconds=600)), timeout=30).id
    wait_until("two replicas", lambda: stat(c, task).current_persistent_replica_count == 2)
    hosts = scheduler_stub(c).ListHosts(scheduler_pb2.ListHostsRequest(), timeout=10).hosts
    host_c = next(h.id for h in hosts if h.hostname == "c")

    def requests():
        envelope = dict(host_id=host_c, task_id=task, peer_id="127.0.0.1-c-liar")
        yield scheduler_pb2.AnnouncePersistentCachePeerRequest(**envelope, register_persistent_cache_peer_request=(
            scheduler_pb2.RegisterPersistentCachePeerRequest(persistent=True, piece_length=4 * MIB, piece_count=2)))
        yield scheduler_pb2.AnnouncePersistentCachePeerRequest(**envelope, download_persistent_cache_peer_started_request=(
            scheduler_pb2.DownloadPersistentCachePeerStartedRequest()))
        yield scheduler_pb2.AnnouncePersistentCachePeerRequest(**envelope, download_persistent_cache_peer_finished_request=(
            scheduler_pb2.DownloadPersistentCachePeerFinishedRequest()))

    answers = list(scheduler_stub(c).AnnouncePersistentCachePeer(requests(), timeout=30))
    assert answers and answers[0].HasField("normal_persistent_cache_task_response")
    peer = scheduler_pb2.StatPersistentCachePeerRequest(host_id=host_c, task_id=task, peer_id="127.0.0.1-c-liar")
    wait_until("the claim to be failed", lambda: scheduler_stub(c).StatPersistentCachePeer(peer, timeout=10).state == "Failed")
    t = stat(c, task)
    assert (t.current_persistent_replica_count, t.current_replica_count) == (2, 2), t
    assert "c" not in holders(c, task)
