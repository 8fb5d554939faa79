"""Preheat through the scheduler, as Dragonfly 2.4 serves it: `PreheatImage`, `StatImage`,
`PreheatFile` and `StatFile` called with the official stubs (grpcio + dragonfly-api) on a
local cluster whose dfdaemon mirrors Debian's docker-registry. Only callers that present the
cluster's registration secret (or a client certificate) may ask."""

import os
import sys
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2

from dragonfly_api import common_pb2, scheduler_pb2, scheduler_pb2_grpc

from conftest import describe, free_port, tool

HELPERS = Path(__file__).parent / "helpers"
sys.path.insert(0, str(HELPERS))
from registry import Registry, build_image, push  # noqa: E402
from test_preheat import PreheatCluster, blob_gets  # noqa: E402

MIB = 1 << 20
SECRET_KEY = "x-dragonfly-registration-secret"


@pytest.fixture
def cluster(tmp_path):
    tool("skopeo", "skopeo")
    tool("docker-registry", "docker-registry")
    layout = tmp_path / "layout"
    img = build_image(layout, "v1", os.urandom(12 * MIB), note="scheduler-preheat")
    reg = Registry(tmp_path / "reg", free_port())
    push(layout, "v1", reg, "test/app")
    c = PreheatCluster(tmp_path / "cluster", reg)
    channel = grpc.insecure_channel(c.sched.address)
    try:
        yield c, reg, img, scheduler_pb2_grpc.SchedulerStub(channel)
    finally:
        channel.close()
        c.stop()
        reg.stop()


def secret(c):
    return [(SECRET_KEY, c.registration_secret)]


def layers_of(img):
    return {img["layer"], img["config"]}


def stat_image(c, stub, reg, **extra):
    answer = stub.StatImage(scheduler_pb2.StatImageRequest(url=f"http://{reg.address}/v2/test/app/manifests/v1",
                                                           enable_task_id_based_blob_digest=True, **extra),
                            metadata=secret(c), timeout=60)
    return {p.hostname: {l.url.rsplit("/", 1)[1] for l in p.cached_layers if l.is_finished} for p in answer.peers}, answer


def test_only_the_cluster_may_ask(cluster):
    c, reg, _, stub = cluster
    request = scheduler_pb2.PreheatImageRequest(url=f"http://{reg.address}/v2/test/app/manifests/v1")
    with pytest.raises(grpc.RpcError) as anonymous:
        stub.PreheatImage(request, timeout=30)
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED, anonymous.value
    with pytest.raises(grpc.RpcError) as wrong:
        stub.StatFile(scheduler_pb2.StatFileRequest(url=c.url()), metadata=[(SECRET_KEY, "not-the-secret")], timeout=30)
    assert wrong.value.code() == grpc.StatusCode.PERMISSION_DENIED, wrong.value
    assert not blob_gets(reg), "a refused call fetched nothing"


def test_preheat_image_to_every_peer_then_stat_and_pull_without_the_registry(cluster):
    c, reg, img, stub = cluster
    before, answer = stat_image(c, stub, reg)
    assert {l.url.rsplit("/", 1)[1] for l in answer.image.layers} == layers_of(img)
    assert before == {"seed": set(), "node": set()}, before
    stub.PreheatImage(scheduler_pb2.PreheatImageRequest(
        url=f"http://{reg.address}/v2/test/app/manifests/v1", scope="all_peers", enable_task_id_based_blob_digest=True,
        timeout=duration_pb2.Duration(seconds=120)), metadata=secret(c), timeout=180)
    after, _ = stat_image(c, stub, reg)
    assert after == {"seed": layers_of(img), "node": layers_of(img)}, after
    # A scope narrows the survey as it narrows a preheat: seed peers only.
    seeds, _ = stat_image(c, stub, reg, scope="all_seed_peers")
    assert set(seeds) == {"seed"}, seeds
    served = len(blob_gets(reg))
    res = c.skopeo("test/app:v1", c.root / "pulled")
    assert res.returncode == 0, describe(res)
    assert len(blob_gets(reg)) == served, "the pull after the preheat asked the registry for no blob"


def test_preheat_file_to_one_seed_peer_and_stat_file(cluster):
    c, _, _, stub = cluster
    url = c.url()
    stub.PreheatFile(scheduler_pb2.PreheatFileRequest(url=url, scope="single_seed_peer"), metadata=secret(c), timeout=120)
    answer = stub.StatFile(scheduler_pb2.StatFileRequest(url=url), metadata=secret(c), timeout=60)
    holding = {p.hostname for p in answer.peers if any(f.is_finished and f.url == url for f in p.cached_files)}
    assert holding == {"seed"}, answer
    assert {p.hostname for p in answer.peers} == {"seed", "node"}, "every peer is surveyed"
    out = c.root / "model.bin"
    before = c.origin_gets()
    res = c.dfget(out)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == c.content
    assert c.origin_gets() == before, "the node got the file from the seed peer"


def test_bad_requests_get_clear_errors(cluster):
    c, reg, _, stub = cluster
    cases = [
        (stub.PreheatFile, scheduler_pb2.PreheatFileRequest(url=c.url(), scope="everyone"), grpc.StatusCode.INVALID_ARGUMENT, "scope"),
        (stub.PreheatFile, scheduler_pb2.PreheatFileRequest(url="ftp://example.test/x"), grpc.StatusCode.INVALID_ARGUMENT, "http"),
        (stub.PreheatFile, scheduler_pb2.PreheatFileRequest(url=c.url(), percentage=101), grpc.StatusCode.INVALID_ARGUMENT, "percentage"),
        (stub.PreheatFile, scheduler_pb2.PreheatFileRequest(url=c.url(), header={"Bad Name": "x"}), grpc.StatusCode.INVALID_ARGUMENT, "header"),
        (stub.StatFile, scheduler_pb2.StatFileRequest(url=c.url(), object_storage=common_pb2.ObjectStorage()),
         grpc.StatusCode.INVALID_ARGUMENT, "object storage"),
        (stub.PreheatImage, scheduler_pb2.PreheatImageRequest(url=f"http://{reg.address}/v2/test/missing/manifests/v1"),
         grpc.StatusCode.FAILED_PRECONDITION, "404"),
        # The metadata address of a cloud instance is never fetched.
        (stub.StatImage, scheduler_pb2.StatImageRequest(url="http://169.254.169.254/v2/x/manifests/latest"),
         grpc.StatusCode.FAILED_PRECONDITION, "169.254.169.254"),
    ]
    for call, request, code, words in cases:
        with pytest.raises(grpc.RpcError) as err:
            call(request, metadata=secret(c), timeout=60)
        assert err.value.code() == code and words in err.value.details(), (request, err.value)
    # No seed peer is in the cluster with these ips.
    with pytest.raises(grpc.RpcError) as none:
        stub.PreheatFile(scheduler_pb2.PreheatFileRequest(url=c.url(), ips=["198.18.0.1"]), metadata=secret(c), timeout=60)
    assert none.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "no seed peer" in none.value.details()


def test_hostile_numbers_are_bounded_not_trusted(cluster):
    """Counts, percentages, concurrency and timeouts at the edges of their types: refused
    with a reason, or bounded before use; the preheat still works after them."""
    c, _, _, stub = cluster
    url = c.url()
    for request, words in [
        (scheduler_pb2.PreheatFileRequest(url=url, count=0), "count"),
        (scheduler_pb2.PreheatFileRequest(url=url, percentage=0), "percentage"),
        (scheduler_pb2.PreheatFileRequest(url=url, percentage=2**32 - 1), "percentage"),
        (scheduler_pb2.PreheatFileRequest(url=url, ips=["10.0.0.1"] * 10_001), "ips"),
        (scheduler_pb2.PreheatFileRequest(url=url, filtered_query_params=["x"] * 101), "filtered_query_params"),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            stub.PreheatFile(request, metadata=secret(c), timeout=60)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and words in err.value.details(), (words, err.value)
    # Concurrency and timeouts at their types' limits are clamped (1..64 downloads at once,
    # 1 s to a day), and a count larger than the cluster is every peer.
    stub.PreheatFile(scheduler_pb2.PreheatFileRequest(
        url=url, scope="all_peers", count=2**32 - 1, concurrent_task_count=-(2**63), concurrent_peer_count=2**63 - 1,
        timeout=duration_pb2.Duration(seconds=2**63 - 1, nanos=999_999_999)), metadata=secret(c), timeout=120)
    stub.PreheatFile(scheduler_pb2.PreheatFileRequest(
        url=url, scope="all_peers", concurrent_task_count=2**63 - 1, timeout=duration_pb2.Duration(seconds=-(2**63))),
        metadata=secret(c), timeout=120)
    answer = stub.StatFile(scheduler_pb2.StatFileRequest(url=url), metadata=secret(c), timeout=60)
    assert {p.hostname for p in answer.peers if p.cached_files} == {"seed", "node"}, answer
