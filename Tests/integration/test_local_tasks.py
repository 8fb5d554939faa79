"""A node's local tasks through the official API (dragonfly-api stubs): StatLocalTask,
ListLocalTasks and DeleteLocalTask on DfdaemonDownload, StatLocalTask on DfdaemonUpload,
DeleteHost; and `dfctl task ls/stat/rm`, the Rust dfctl's verbs, over the unix socket."""

import os
import time

import grpc
import pytest
from dragonfly_api import common_pb2, dfdaemon_pb2, dfdaemon_pb2_grpc, scheduler_pb2, scheduler_pb2_grpc
from google.protobuf import empty_pb2

from conftest import binary, describe, run
from dfdaemon_cluster import Cluster, task_id, wait_for_hosts, wait_for_task

MIB = 1 << 20


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, {"f.bin": os.urandom(9 * MIB), "g.bin": os.urandom(1000)})
    c.daemon("a")
    c.daemon("b")
    yield c
    c.stop()


def download_stub(c, daemon="a"):
    return dfdaemon_pb2_grpc.DfdaemonDownloadStub(grpc.insecure_channel(f"unix:{c.root}/{daemon}.sock"))


def fetch(c, name, daemon="a", **fields):
    return list(download_stub(c, daemon).DownloadTask(dfdaemon_pb2.DownloadTaskRequest(download=common_pb2.Download(
        url=c.url(name), type=common_pb2.STANDARD, **fields)), timeout=60))


def test_local_tasks_are_listed_described_and_deleted(cluster):
    c = cluster
    before = time.time()
    fetch(c, "f.bin")
    fetch(c, "g.bin")
    stub = download_stub(c)
    f_id, g_id = task_id(c.url("f.bin")), task_id(c.url("g.bin"))
    listed = {t.task_id: t for t in stub.ListLocalTasks(dfdaemon_pb2.ListLocalTasksRequest(), timeout=10).tasks}
    assert set(listed) == {f_id, g_id}
    f = stub.StatLocalTask(dfdaemon_pb2.StatLocalTaskRequest(task_id=f_id), timeout=10)
    assert (f.content_length, f.piece_length) == (9 * MIB, 4 * MIB)
    assert f.HasField("finished_at") and f.finished_at.seconds >= int(before) - 1
    assert f.created_at.seconds >= int(before) - 1 and f.uploaded_count == 0
    assert listed[f_id] == f

    # b fetches f from a: a's count of pieces handed out grows, seen on the upload side too.
    wait_for_task(c.sched.address, f_id)
    fetch(c, "f.bin", daemon="b")
    upload = dfdaemon_pb2_grpc.DfdaemonUploadStub(grpc.insecure_channel(c.daemons["a"].address))
    served = upload.StatLocalTask(dfdaemon_pb2.StatLocalTaskRequest(task_id=f_id), timeout=10)
    assert served.uploaded_count == 3 and served.uploading_count == 0, served

    with pytest.raises(grpc.RpcError) as err:
        stub.StatLocalTask(dfdaemon_pb2.StatLocalTaskRequest(task_id="0" * 64), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    stub.DeleteLocalTask(dfdaemon_pb2.DeleteLocalTaskRequest(task_id=f_id), timeout=10)
    assert [t.task_id for t in stub.ListLocalTasks(dfdaemon_pb2.ListLocalTasksRequest(), timeout=10).tasks] == [g_id]
    with pytest.raises(grpc.RpcError) as err:
        stub.DeleteLocalTask(dfdaemon_pb2.DeleteLocalTaskRequest(task_id=f_id), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # Asked again, the task is fetched again (from b, which still has it) and listed again.
    fetch(c, "f.bin")
    assert stub.StatLocalTask(dfdaemon_pb2.StatLocalTaskRequest(task_id=f_id), timeout=10).HasField("finished_at")


def test_delete_host_makes_the_schedulers_forget_this_node(cluster):
    c = cluster
    hosts = wait_for_hosts(c.sched.address, 2)
    assert {h.hostname for h in hosts} == {"a", "b"}
    download_stub(c, "a").DeleteHost(empty_pb2.Empty(), timeout=10)
    with grpc.insecure_channel(c.sched.address) as channel:
        left = scheduler_pb2_grpc.SchedulerStub(channel).ListHosts(scheduler_pb2.ListHostsRequest(), timeout=10).hosts
    assert {h.hostname for h in left} == {"b"}


def test_dfctl_lists_describes_and_removes(cluster):
    c = cluster
    fetch(c, "f.bin")
    f_id = task_id(c.url("f.bin"))
    sock = str(c.root / "a.sock")
    res = run([binary("dfctl"), "task", "ls", "-e", sock], timeout=30)
    assert res.returncode == 0, describe(res)
    lines = res.stdout.splitlines()
    assert lines[0].split()[:2] == ["TASK", "ID"] and len(lines) == 2, res.stdout
    assert lines[1].split()[:4] == [f_id, "finished", str(9 * MIB), str(4 * MIB)], res.stdout
    res = run([binary("dfctl"), "task", "stat", f_id, "-e", sock], timeout=30)
    assert res.returncode == 0 and f_id in res.stdout, describe(res)
    res = run([binary("dfctl"), "task", "rm", f_id, "-e", sock], timeout=30)
    assert res.returncode == 0 and f"removed {f_id}" in res.stdout, describe(res)
    res = run([binary("dfctl"), "task", "stat", f_id, "-e", sock], timeout=30)
    assert res.returncode == 1 and "not found" in res.stderr, describe(res)
    res = run([binary("dfctl"), "task", "ls", "-e", str(c.root / "none.sock")], timeout=30)
    assert res.returncode == 1, describe(res)
