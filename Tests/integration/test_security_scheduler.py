"""Issue 17 items 3 and 6 against the real `scheduler` binary, over grpcio + dragonfly-api.

Item 3: unauthenticated clients choose every number the scheduler computes with. Fake hosts,
a parent registered with piece_length 2**60 that goes back to source, then children with
concurrent_piece_count 1 used to trap the process (a checked add after a wrapping multiply
in the parent's bandwidth bookkeeping). Here the same four streams, and 0, 2**63 and
2**64-1 in every number the scheduler reads, must be answered (refused or saturated) and
the scheduler must still serve normal calls afterwards.

Item 6: a task's credentials stay with the peer that owns it. StatTask, StatPeer, the
candidate parents sent to other peers and the console's inspect service show no credential
header and no URL signature; a triggered seed peer, which fetches the origin for the peer,
still gets them. Everything listens on 127.0.0.1; only processes started here are stopped.
"""

import grpc
import pytest
from google.protobuf import duration_pb2

from dragonfly_api import common_pb2, scheduler_pb2

from test_scheduler import FAST, RPC_TIMEOUT, Sched, make_download, make_host, wait_state
from test_scheduler import fake_seed  # noqa: F401  (a fixture, found by pytest under this name)

U64_MAX = 2**64 - 1
U32_MAX = 2**32 - 1
I64_MAX = 2**63 - 1
HOSTILE = [0, 2**63, U64_MAX]


@pytest.fixture
def sched(tmp_path):
    s = Sched(tmp_path / "scheduler", FAST)
    yield s
    s.close()


def hostile_host(host_id, n):
    host = make_host(host_id)
    host.type = n & U32_MAX
    host.cpu.logical_count = n & U32_MAX
    host.cpu.percent = float("inf")
    host.memory.total = host.memory.available = n
    host.network.max_tx_bandwidth = host.network.tx_bandwidth = host.network.max_rx_bandwidth = n
    host.disk.total = host.disk.free = n
    return host


def announce(s, host, interval_seconds=None):
    request = scheduler_pb2.AnnounceHostRequest(host=host)
    if interval_seconds is not None:
        request.interval.CopyFrom(duration_pb2.Duration(seconds=interval_seconds, nanos=999_999_999 if interval_seconds > 0 else 0))
    s.stub.AnnounceHost(request, timeout=RPC_TIMEOUT)


def huge_download(**kwargs):
    return common_pb2.Download(url="https://origin.test/huge.bin", piece_length=2**60, actual_piece_length=2**60,
                               actual_content_length=U64_MAX, actual_piece_count=8, **kwargs)


def hostile_piece(number, n, seconds):
    return common_pb2.Piece(number=number, offset=n, length=n, digest="crc32:0",
                            cost=duration_pb2.Duration(seconds=seconds, nanos=999_999_999 if seconds > 0 else -999_999_999))


def assert_serves_normally(s):
    """The process is alive and a normal peer still gets its normal answer."""
    s.server.assert_alive()
    s.announce_host("normal-host")
    assert "normal-host" in [h.id for h in s.list_hosts()]
    peer = s.peer("normal-host", "task-normal-after", "peer-normal-after")
    peer.register(make_download("https://origin.test/normal.bin", need_back_to_source=True))
    peer.expect("need_back_to_source_response")
    assert s.stat_task("task-normal-after").state == "Running"
    s.server.assert_alive()


def test_four_stream_overflow_attack_is_survived(sched):
    s = sched
    # Fake hosts, with the extremes in every host statistic and announce interval.
    for i, n in enumerate(HOSTILE):
        announce(s, hostile_host(f"fake-{i}", n), interval_seconds=[0, I64_MAX, -2**63][i])
    for h in ["parent-host", "child-1", "child-2", "child-3"]:
        announce(s, make_host(h), interval_seconds=I64_MAX)

    # Stream 1: the parent, piece_length 2**60, goes back to source.
    parent = s.peer("parent-host", "task-huge", "parent")
    parent.register(huge_download(need_back_to_source=True))
    parent.expect("need_back_to_source_response")
    parent.back_to_source_started()
    wait_state(s, parent, "BackToSource")

    # Streams 2-4: children with one concurrent piece (2**63 b/s each), then 2**32-1.
    # Two of them overflowed the parent host's bandwidth sum before the fix.
    for i, count in enumerate([1, 1, U32_MAX], start=1):
        child = s.peer(f"child-{i}", "task-huge", f"child-{i}")
        child.register(huge_download(concurrent_piece_count=count))
        parents = child.expect_parents()
        assert [p.id for p in parents] == ["parent"]
        s.server.assert_alive()

    # Piece reports with the extremes in number, offset, length and cost.
    for n, seconds in [(0, 0), (2**63, I64_MAX), (U64_MAX, -2**63)]:
        parent.piece_back_to_source_finished(hostile_piece(n & U32_MAX, n, seconds))
        parent.piece_finished(hostile_piece(7, n, seconds))
    wait_state(s, parent, "BackToSource")
    task = s.stat_task("task-huge")
    assert task.content_length == I64_MAX          # 2**64-1 is kept as the largest length there is
    assert task.peer_count == 4
    assert {p.number for p in task.pieces} <= set(range(8)), "pieces beyond the count are not kept"

    # The parent host looked busiest: a fifth child still gets an answer, not a crash.
    late = s.peer("child-3", "task-huge", "child-late")
    late.register(huge_download(concurrent_piece_count=U32_MAX))
    late.recv()
    assert_serves_normally(s)
    metrics = s.metrics_text()
    negative = [line for line in metrics.splitlines() if line and not line.startswith("#") and line.split()[-1].startswith("-")]
    assert negative == [], "a counter wrapped negative"


@pytest.mark.parametrize("n", HOSTILE)
def test_extreme_registration_numbers_are_answered(sched, n):
    s = sched
    for h in ["x-parent", "x-child"]:
        announce(s, hostile_host(h, n))
    download = common_pb2.Download(url=f"https://origin.test/extreme-{n}.bin", piece_length=n, actual_piece_length=n,
                                   actual_content_length=n, actual_piece_count=n, concurrent_piece_count=n & U32_MAX,
                                   range=common_pb2.Range(start=n, length=n), need_back_to_source=True)
    task = f"task-extreme-{n}"
    first = s.peer("x-parent", task, "x-parent-peer")
    first.register(download)
    # 0 bytes is an empty task; anything else is sent to the origin.
    first.expect("empty_task_response" if n == 0 else "need_back_to_source_response")
    if n:
        first.back_to_source_started()
        wait_state(s, first, "BackToSource")
        download.need_back_to_source = False
        child = s.peer("x-child", task, "x-child-peer")
        child.register(download)
        child.recv()
    assert s.stat_task(task).content_length == min(n, I64_MAX)
    assert_serves_normally(s)


def test_peer_id_reused_for_another_task_is_invalid_argument(sched):
    s = sched
    s.announce_host("reuse-host")
    first = s.peer("reuse-host", "task-reuse-1", "reused-peer")
    first.register(make_download("https://origin.test/reuse-1.bin", need_back_to_source=True))
    first.expect("need_back_to_source_response")
    second = s.peer("reuse-host", "task-reuse-2", "reused-peer")
    second.register(make_download("https://origin.test/reuse-2.bin"))
    code, _ = second.expect_end()
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert_serves_normally(s)


# ---------------------------------------------------------------------------------------
# Item 6: credentials

PRESIGNED = ("https://bucket.origin.test/private/blob.bin?X-Amz-Algorithm=AWS4-HMAC-SHA256"
             "&X-Amz-Credential=AKIAS3CR3TCRED%2F20260101%2Fus-east-1&X-Amz-Date=20260101T000000Z"
             "&X-Amz-Expires=900&X-Amz-Security-Token=S3CR3TSESSIONTOKEN&X-Amz-Signature=5ec7e7519a7f0e&part=7")
HEADERS = {"Authorization": "Bearer s3cr3t-bearer", "Cookie": "sid=s3cr3t-cookie", "X-Api-Key": "s3cr3t-apikey",
           "Proxy-Authorization": "Basic s3cr3t-proxy", "Accept": "application/octet-stream"}
SECRETS = ["s3cr3t-bearer", "s3cr3t-cookie", "s3cr3t-apikey", "s3cr3t-proxy", "AKIAS3CR3TCRED", "S3CR3TSESSIONTOKEN",
           "5ec7e7519a7f0e"]


def secret_download(**kwargs):
    return common_pb2.Download(url=PRESIGNED, piece_length=4 << 20, request_header=HEADERS,
                               actual_content_length=10 << 20, actual_piece_length=4 << 20, actual_piece_count=3, **kwargs)


def leaked(message_or_bytes):
    data = message_or_bytes if isinstance(message_or_bytes, bytes) else message_or_bytes.SerializeToString()
    return [secret for secret in SECRETS if secret.encode() in data]


def list_tasks_raw(s):
    """The console's inspect service (our own proto): the raw response bytes, searched as is."""
    call = s.channel.unary_unary("/dfswift.scheduler.v1.SchedulerInspect/ListTasks",
                                 request_serializer=lambda b: b, response_deserializer=lambda b: b)
    return call(b"", timeout=RPC_TIMEOUT)


def test_stat_task_stat_peer_parents_and_inspect_show_no_credentials(sched):
    s = sched
    for h in ["owner-host", "other-host"]:
        s.announce_host(h)
    owner = s.peer("owner-host", "task-secret", "owner")
    owner.register(secret_download(need_back_to_source=True))
    owner.expect("need_back_to_source_response")
    owner.back_to_source_started()
    wait_state(s, owner, "BackToSource")

    other = s.peer("other-host", "task-secret", "other")
    other.register(secret_download())
    parents = other.expect_parents()
    assert [p.id for p in parents] == ["owner"]
    assert leaked(parents[0]) == [], "a candidate parent carries the owner's credentials"
    assert dict(parents[0].task.request_header) == {"Accept": "application/octet-stream"}

    task = s.stat_task("task-secret")
    assert leaked(task) == []
    assert dict(task.request_header) == {"Accept": "application/octet-stream"}
    # The signature's value is masked; the URL is otherwise as sent, non-secret parameters too.
    assert task.url.startswith("https://bucket.origin.test/private/blob.bin?X-Amz-Algorithm=AWS4-HMAC-SHA256")
    assert "X-Amz-Signature=" in task.url and "X-Amz-Expires=900" in task.url and task.url.endswith("&part=7")
    assert leaked(s.stat_peer(owner)) == []
    assert leaked(s.stat_peer(other)) == []

    raw = list_tasks_raw(s)
    assert b"task-secret" in raw and b"bucket.origin.test/private/blob.bin" in raw
    assert leaked(raw) == []


def test_seed_peer_still_gets_the_credentials_it_fetches_with(sched, fake_seed):
    s = sched
    s.announce_host("seed-host", type=1, ip="127.0.0.1", port=fake_seed.port)
    s.announce_host("asking-host")
    peer = s.peer("asking-host", "task-seeded-secret", "asking")
    peer.register(secret_download())
    request = fake_seed.requests.get(timeout=10)
    assert request.download.url == PRESIGNED
    assert dict(request.download.request_header) == HEADERS
    assert leaked(s.stat_task("task-seeded-secret")) == []
    assert leaked(list_tasks_raw(s)) == []
