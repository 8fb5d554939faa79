"""A node's local tasks through the official API (dragonfly-api stubs): StatLocalTask,
ListLocalTasks and DeleteLocalTask on DfdaemonDownload, StatLocalTask on DfdaemonUpload,
DeleteHost; and `dfctl task ls/stat/rm`, the Rust dfctl's verbs, over the unix socket."""

import json
import os
import re
import time
import urllib.request

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


def test_sync_host_streams_this_hosts_network_load(cluster):
    c = cluster
    fetch(c, "f.bin")
    wait_for_task(c.sched.address, task_id(c.url("f.bin")))
    with grpc.insecure_channel(c.daemons["a"].address) as channel:
        stream = dfdaemon_pb2_grpc.DfdaemonUploadStub(channel).SyncHost(
            dfdaemon_pb2.SyncHostRequest(host_id="b-host", peer_id="b-peer"), timeout=30)
        first = next(stream)
        assert first.hostname == "a" and first.network.max_tx_bandwidth > 0, first
        fetch(c, "f.bin", daemon="b")  # a sends 9 MiB to b
        sending = [next(stream).network.tx_bandwidth for _ in range(3)]
        assert max(sending) > 0, f"a's tx rate never showed the upload: {sending}"
        stream.cancel()


def test_stats_json_counts_bytes_by_source_and_matches_the_metrics(cluster):
    c = cluster
    size = 9 * MIB
    fetch(c, "f.bin")  # a: from the origin
    wait_for_task(c.sched.address, task_id(c.url("f.bin")))
    fetch(c, "f.bin", daemon="b")  # b: from a
    fetch(c, "f.bin")  # a: from its own cache
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{c.daemons['a'].port}/metrics", timeout=10).read().decode()
    origin_metric = re.search(r'download_traffic_total\{type="back_to_source"\} (\S+)', metrics)
    assert origin_metric and float(origin_metric.group(1)) == size, metrics[:2000]
    for name in ("a", "b"):
        c.daemons[name].stop()  # a clean stop writes the file
    a = json.loads((c.root / "a" / "stats.json").read_text())
    b = json.loads((c.root / "b" / "stats.json").read_text())
    f_id = task_id(c.url("f.bin"))
    assert a["total"] == {"peer": 0, "origin": size, "cache": size}, a
    assert a["tasks"][f_id] == a["total"]
    assert b["total"] == {"peer": size, "origin": 0, "cache": 0}, b
    res = run([binary("dfctl"), "stats", "--file", c.root / "b" / "stats.json", "--tasks"], timeout=30)
    assert res.returncode == 0, describe(res)
    assert res.stdout.splitlines() == [f"total  peer {size}  origin 0  cache 0  peer share 100.0%",
                                       f"{f_id}  peer {size}  origin 0  cache 0  peer share 100.0%"], res.stdout
