"""Persistent tasks (dragonfly-api 2.3): a file whose home is an origin, kept by the cluster
in `persistent_replica_count` copies. Upstream's origin is object storage; ours is an
HTTP(S) URL, to which UploadPersistentTask PUTs the file. Driven by the official stubs."""

import hashlib
import os
import re
import socket
import sys
import time
import urllib.request
import zlib
from pathlib import Path

import grpc
import pytest
from dragonfly_api import common_pb2, dfdaemon_pb2, dfdaemon_pb2_grpc, scheduler_pb2, scheduler_pb2_grpc
from google.protobuf import duration_pb2

from dfdaemon_cluster import Cluster

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
import vortex_spec  # noqa: E402

MIB = 1 << 20
SCHED_CONFIG = "scheduler:\n  gc:\n    hostGCInterval: 1s\n"
DAEMON_CONFIG = "scheduler:\n  announceInterval: 1s\ngc:\n  interval: 1s\n"


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, {"existing.bin": os.urandom(6 * MIB + 7)}, sched_config=SCHED_CONFIG)
    c.daemon("seed", "--seed-peer", config=DAEMON_CONFIG)
    for name in ["a", "b", "c"]:
        c.daemon(name, config=DAEMON_CONFIG)
    c.wait_for_hosts(4)
    yield c
    c.stop()


def download_stub(c, daemon):
    return dfdaemon_pb2_grpc.DfdaemonDownloadStub(grpc.insecure_channel(f"unix:{c.root}/{daemon}.sock"))


def upload_stub(c, daemon):
    return dfdaemon_pb2_grpc.DfdaemonUploadStub(grpc.insecure_channel(c.daemons[daemon].address))


def stat(c, task):
    stub = scheduler_pb2_grpc.SchedulerStub(grpc.insecure_channel(c.sched.address))
    return stub.StatPersistentTask(scheduler_pb2.StatPersistentTaskRequest(host_id="x", task_id=task), timeout=10)


def holders(c, task):
    found = {}
    for name, server in c.daemons.items():
        for t in download_stub(c, name).ListLocalPersistentTasks(dfdaemon_pb2.ListLocalPersistentTasksRequest(), timeout=10).tasks:
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


def task_id(url):
    """Upstream's id: SHA-256 over the URL, the object storage's region and endpoint (none
    for an HTTP origin), then PERSISTENT."""
    return hashlib.sha256((url + "PERSISTENT").encode()).hexdigest()


def download(c, daemon, url, out=None, **fields):
    request = dfdaemon_pb2.DownloadPersistentTaskRequest(url=url, **fields)
    if out:
        request.output_path = str(out)
    return list(download_stub(c, daemon).DownloadPersistentTask(request, timeout=60))


def test_an_upload_puts_the_file_and_the_cluster_serves_it_from_peers(cluster, tmp_path):
    c = cluster
    data = os.urandom(9 * MIB)
    source = tmp_path / "model.bin"
    source.write_bytes(data)
    url = c.url("uploads/model.bin")
    task = download_stub(c, "a").UploadPersistentTask(dfdaemon_pb2.UploadPersistentTaskRequest(
        url=url, path=str(source), persistent_replica_count=2, ttl=duration_pb2.Duration(seconds=600)), timeout=60)
    assert task.id == task_id(url)
    assert (task.state, task.content_length, task.piece_count, task.persistent_replica_count) == ("Succeeded", len(data), 3, 2)
    # The origin now holds the file, as object storage would.
    assert (c.root / "origin" / "uploads" / "model.bin").read_bytes() == data
    wait_until("two replicas", lambda: stat(c, task.id).current_persistent_replica_count == 2)
    assert holders(c, task.id) == {"a": True, "seed": True}

    # c downloads it from the peers: the origin is asked its length, never its bytes.
    out = tmp_path / "from-peers.bin"
    responses = download(c, "c", url, out)
    assert out.read_bytes() == data
    assert responses[0].download_persistent_task_started_response.content_length == len(data)
    pieces = [r.download_piece_finished_response.piece for r in responses[1:]]
    assert sorted(p.number for p in pieces) == [0, 1, 2] and all(p.traffic_type == common_pb2.REMOTE_PEER for p in pieces)
    assert [g for g in c.origin_gets("uploads/model.bin")] == []
    assert holders(c, task.id)["c"] is False

    # The same URL again: the object exists, so it is not overwritten.
    with pytest.raises(grpc.RpcError) as err:
        download_stub(c, "b").UploadPersistentTask(dfdaemon_pb2.UploadPersistentTaskRequest(
            url=url, path=str(source), persistent_replica_count=1), timeout=30)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS

    # Pieces over Vortex with the persistent tags (2 asks, 3 answers); tag 0 is refused.
    synced = list(upload_stub(c, "a").SyncPersistentPieces(
        dfdaemon_pb2.SyncPersistentPiecesRequest(host_id="spec", task_id=task.id), timeout=10))
    assert [p.number for p in synced] == [0, 1, 2]
    with socket.create_connection(("127.0.0.1", synced[0].tcp_port), timeout=30) as sock:
        sock.sendall(vortex_spec.download_piece(task.id, 1, tag=2))
        meta, content = vortex_spec.read_response(sock, content_tag=3)
    assert content == data[4 * MIB:8 * MIB] and meta["digest"] == f"crc32:{zlib.crc32(content)}"
    with pytest.raises(vortex_spec.VortexError) as verr:
        vortex_spec.fetch_piece("127.0.0.1", synced[0].tcp_port, task.id, 0)
    assert verr.value.code == vortex_spec.NOT_FOUND

    # A cluster-wide delete (this cluster's daemons hold its secret) removes every copy; the
    # origin keeps the file.
    download_stub(c, "a").DeleteTask(dfdaemon_pb2.DeleteTaskRequest(task_id=task.id), timeout=30)
    with pytest.raises(grpc.RpcError) as err:
        stat(c, task.id)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    wait_until("every copy gone", lambda: holders(c, task.id) == {} or None)
    assert (c.root / "origin" / "uploads" / "model.bin").read_bytes() == data


def test_a_download_no_peer_can_serve_goes_to_the_origin(cluster, tmp_path):
    c = cluster
    url = c.url("existing.bin")
    data = (c.root / "origin" / "existing.bin").read_bytes()
    out = tmp_path / "direct.bin"
    responses = download(c, "b", url, out)
    assert out.read_bytes() == data
    pieces = [r.download_piece_finished_response.piece for r in responses[1:]]
    assert all(p.traffic_type == common_pb2.BACK_TO_SOURCE for p in pieces) and len(pieces) == 2
    assert len(c.origin_gets("existing.bin")) >= 2
    local = download_stub(c, "b").StatLocalPersistentTask(dfdaemon_pb2.StatLocalPersistentTaskRequest(task_id=task_id(url)), timeout=10)
    assert local.content_length == len(data) and not local.persistent
    # Asked again, it is this node's own copy.
    again = download(c, "b", url, tmp_path / "again.bin", overwrite=True)
    assert all(r.download_piece_finished_response.piece.traffic_type == common_pb2.LOCAL_PEER for r in again[1:])
    # Persistent downloads are counted as standard ones are, by where the bytes came from.
    counts = downloaded_task_counts(c, "b")
    assert counts == {"back_to_source": 1, "local": 1}, counts


def downloaded_task_counts(c, name):
    with urllib.request.urlopen(f"http://{c.daemons[name].address}/metrics", timeout=10) as res:
        text = res.read().decode()
    return {m[1]: int(float(m[2])) for m in re.finditer(r'^dragonfly_dfdaemon_download_task_total\{type="(\w+)"\} (\S+)$', text, re.M)}


def test_refusals(cluster, tmp_path):
    c = cluster
    source = tmp_path / "f.bin"
    source.write_bytes(os.urandom(MIB))
    stub = download_stub(c, "a")
    for request, code in [
        (dfdaemon_pb2.UploadPersistentTaskRequest(url=c.url("uploads/x"), path=str(source), persistent_replica_count=1,
                                                  object_storage=common_pb2.ObjectStorage(region="r", endpoint="e")),
         grpc.StatusCode.INVALID_ARGUMENT),
        (dfdaemon_pb2.UploadPersistentTaskRequest(url="s3://bucket/x", path=str(source), persistent_replica_count=1),
         grpc.StatusCode.INVALID_ARGUMENT),
        (dfdaemon_pb2.UploadPersistentTaskRequest(url="http://169.254.169.254/x", path=str(source), persistent_replica_count=1),
         grpc.StatusCode.PERMISSION_DENIED),
        (dfdaemon_pb2.UploadPersistentTaskRequest(url=c.url("uploads/y"), path="/etc/passwd", persistent_replica_count=1),
         grpc.StatusCode.PERMISSION_DENIED),
        (dfdaemon_pb2.UploadPersistentTaskRequest(url=c.url("uploads/z"), path=str(source), persistent_replica_count=0),
         grpc.StatusCode.INVALID_ARGUMENT),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            stub.UploadPersistentTask(request, timeout=30)
        assert err.value.code() == code, (request, err.value.details())
    assert not (c.root / "origin" / "uploads").exists()

    # From the TCP port: a replication goes to peers only, never to the origin, and writes
    # no file; deleting needs the cluster's own credentials.
    url = c.url("existing.bin")
    with pytest.raises(grpc.RpcError) as err:
        list(upload_stub(c, "a").DownloadPersistentTask(dfdaemon_pb2.DownloadPersistentTaskRequest(url=url), timeout=30))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        list(upload_stub(c, "a").DownloadPersistentTask(dfdaemon_pb2.DownloadPersistentTaskRequest(
            url=url, output_path=str(tmp_path / "planted")), timeout=30))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert c.origin_gets("existing.bin") == [] and not (tmp_path / "planted").exists()
    download(c, "a", url)
    with pytest.raises(grpc.RpcError) as err:
        upload_stub(c, "a").DeletePersistentTask(dfdaemon_pb2.DeletePersistentTaskRequest(task_id=task_id(url)), timeout=10)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert download_stub(c, "a").StatLocalPersistentTask(dfdaemon_pb2.StatLocalPersistentTaskRequest(task_id=task_id(url)), timeout=10)
