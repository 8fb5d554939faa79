"""`Download.range` and `prefetch`, and how a task is named (`content_for_calculating_task_id`,
a registry blob's digest), with the official stubs against real dfdaemons and a Range-capable
origin that logs every GET with its Range header."""

import hashlib
import http.client
import os
import time
import zlib

import grpc
import pytest
from dragonfly_api import common_pb2, dfdaemon_pb2, dfdaemon_pb2_grpc

from conftest import describe
from dfdaemon_cluster import make_cluster  # noqa: F401 (a fixture)

MIB = 1 << 20
PIECE = 4 * MIB  # the piece length Dragonfly picks for these sizes
BIG = [("grpc.max_receive_message_length", 64 * MIB)]


def call(c, daemon="a", **fields):
    with grpc.insecure_channel(f"unix:{c.root}/{daemon}.sock", options=BIG) as channel:
        stub = dfdaemon_pb2_grpc.DfdaemonDownloadStub(channel)
        request = dfdaemon_pb2.DownloadTaskRequest(download=common_pb2.Download(type=common_pb2.STANDARD, **fields))
        return list(stub.DownloadTask(request, timeout=60))


def pieces_of(responses):
    return [r.download_piece_finished_response.piece for r in responses[1:]]


def ranged_gets(c, name):
    """The Range header of every GET the origin saw for `name` (None: a whole GET)."""
    return [line.split(" ", 2)[2] for line in c.origin_gets(name)]


def piece_ranges(numbers, size):
    return {f"bytes={n * PIECE}-{min((n + 1) * PIECE, size) - 1}" for n in numbers}


def test_a_range_fetches_and_returns_only_its_pieces(make_cluster):
    size = 5 * PIECE + 1000
    data = os.urandom(size)
    c = make_cluster({"f.bin": data})
    c.daemon("a")
    start, length = PIECE + 10, PIECE  # inside pieces 1 and 2
    responses = call(c, url=c.url("f.bin"), need_piece_content=True,
                     range=common_pb2.Range(start=start, length=length))
    started = responses[0].download_task_started_response
    assert started.content_length == size
    assert (started.range.start, started.range.length) == (start, length)
    assert [p.number for p in started.pieces] == [1, 2]
    got = pieces_of(responses)
    assert sorted(p.number for p in got) == [1, 2]
    for p in got:
        assert p.content == data[p.offset:p.offset + p.length] and p.digest == f"crc32:{zlib.crc32(p.content)}"
    # Only those two pieces were asked of the origin (besides its HEAD).
    assert set(ranged_gets(c, "f.bin")) == piece_ranges([1, 2], size), ranged_gets(c, "f.bin")


def test_a_range_header_in_request_header_is_a_range_and_never_reaches_the_origin(make_cluster):
    size = 3 * PIECE
    data = os.urandom(size)
    c = make_cluster({"f.bin": data})
    c.daemon("a")
    out = c.root / "tail.bin"
    responses = call(c, url=c.url("f.bin"), output_path=str(out), request_header={"Range": "bytes=-100"})
    started = responses[0].download_task_started_response
    assert (started.range.start, started.range.length) == (size - 100, 100)
    assert out.read_bytes() == data[-100:], "output_path holds the range"
    assert set(ranged_gets(c, "f.bin")) == piece_ranges([2], size)


def test_an_unsatisfiable_range_is_failed_precondition(make_cluster):
    c = make_cluster({"f.bin": os.urandom(1000)})
    c.daemon("a")
    for fields in ({"range": common_pb2.Range(start=1000, length=1)}, {"request_header": {"Range": "bytes=5000-"}}):
        with pytest.raises(grpc.RpcError) as err:
            call(c, url=c.url("f.bin"), **fields)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION, fields
        assert "outside the task's 1000 bytes" in err.value.details()
    assert not [g for g in c.origin_gets("f.bin") if g.split(" ", 2)[2] != "None"], "no piece was fetched"


def test_a_range_from_a_complete_task_is_served_from_the_cache(make_cluster):
    size = 3 * PIECE
    data = os.urandom(size)
    c = make_cluster({"f.bin": data})
    c.daemon("a")
    call(c, url=c.url("f.bin"))
    gets = len(c.origin_gets("f.bin"))
    responses = call(c, url=c.url("f.bin"), need_piece_content=True, range=common_pb2.Range(start=0, length=1))
    assert responses[0].download_task_started_response.is_finished
    assert [p.number for p in pieces_of(responses)] == [0]
    assert pieces_of(responses)[0].content == data[:PIECE]
    assert len(c.origin_gets("f.bin")) == gets


def stat_task(c, task_id, daemon="a"):
    with grpc.insecure_channel(f"unix:{c.root}/{daemon}.sock") as channel:
        return dfdaemon_pb2_grpc.DfdaemonDownloadStub(channel).StatTask(
            dfdaemon_pb2.StatTaskRequest(task_id=task_id), timeout=10)


def test_prefetch_fetches_the_rest_after_the_range_so_the_next_range_is_local(make_cluster):
    size = 4 * PIECE
    data = os.urandom(size)
    c = make_cluster({"f.bin": data})
    c.daemon("a")
    first = call(c, url=c.url("f.bin"), prefetch=True, range=common_pb2.Range(start=3 * PIECE, length=10))
    task_id = first[0].task_id
    assert [p.number for p in first[0].download_task_started_response.pieces] == [3]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and stat_task(c, task_id).state != "Succeeded":
        time.sleep(0.2)
    task = stat_task(c, task_id)
    assert task.state == "Succeeded" and len(task.pieces) == 4, task
    gets = len(c.origin_gets("f.bin"))
    again = call(c, url=c.url("f.bin"), need_piece_content=True, range=common_pb2.Range(start=0, length=PIECE))
    assert again[0].download_task_started_response.is_finished
    assert pieces_of(again)[0].content == data[:PIECE]
    assert len(c.origin_gets("f.bin")) == gets, "the second range was local"
    # Without prefetch, a range leaves the rest of the task alone.
    c2 = call(c, url=c.url("f.bin") + "?v=2", range=common_pb2.Range(start=0, length=10))
    time.sleep(1)
    assert stat_task(c, c2[0].task_id).state != "Succeeded"
    assert set(ranged_gets(c, "f.bin?v=2")) == piece_ranges([0], size)


def test_content_for_calculating_task_id_names_the_task(make_cluster):
    c = make_cluster({"f.bin": os.urandom(1000), "g.bin": os.urandom(1000)})
    c.daemon("a")
    first = call(c, url=c.url("f.bin"), content_for_calculating_task_id="my-model-v1")
    assert first[0].task_id == hashlib.sha256(b"my-model-v1").hexdigest()
    plain = call(c, url=c.url("g.bin"))
    assert plain[0].task_id != first[0].task_id


def test_a_blob_url_names_its_task_by_digest_when_asked(make_cluster):
    data = os.urandom(3000)
    digest = hashlib.sha256(data).hexdigest()
    c = make_cluster({})
    blobs = c.root / "origin" / "v2" / "lib" / "app" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"sha256:{digest}").write_bytes(data)
    other = c.root / "origin" / "v2" / "mirror" / "app" / "blobs"
    other.mkdir(parents=True)
    (other / f"sha256:{digest}").write_bytes(data)
    c.daemon("a")
    url = f"http://{c.origin.address}/v2/lib/app/blobs/sha256:{digest}"
    by_digest = call(c, url=url, enable_task_id_based_blob_digest=True)
    assert by_digest[0].task_id == digest
    gets = len(c.origin_gets("v2/"))
    # Another repository path, same digest: the same task, served from the cache.
    again = call(c, url=f"http://{c.origin.address}/v2/mirror/app/blobs/sha256:{digest}", enable_task_id_based_blob_digest=True)
    assert again[0].task_id == digest and again[0].download_task_started_response.is_finished
    assert len(c.origin_gets("v2/")) == gets
    # Without the flag the URL names the task, as before.
    assert call(c, url=url)[0].task_id != digest


def test_a_blob_named_by_digest_is_checked_against_it(make_cluster):
    data = os.urandom(3000)
    wrong = hashlib.sha256(b"something else").hexdigest()
    c = make_cluster({})
    blobs = c.root / "origin" / "v2" / "lib" / "app" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"sha256:{wrong}").write_bytes(data)
    c.daemon("a")
    url = f"http://{c.origin.address}/v2/lib/app/blobs/sha256:{wrong}"
    with pytest.raises(grpc.RpcError) as err:
        call(c, url=url, enable_task_id_based_blob_digest=True)
    assert "digest" in err.value.details(), err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        stat_task(c, wrong)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND, "nothing wrong stays cached under the digest's name"


def test_request_header_reaches_the_origin_and_filtered_query_params_make_one_task(make_cluster):
    data = os.urandom(3000)
    c = make_cluster({"f.bin": data})
    c.daemon("a")
    private = f"http://{c.origin.address}/private/f.bin"
    with pytest.raises(grpc.RpcError) as err:
        call(c, url=private)
    assert "401" in err.value.details(), err.value.details()
    out = c.root / "private.out"
    call(c, url=private, output_path=str(out), request_header={"Authorization": "Bearer let-me-in"})
    assert out.read_bytes() == data
    # Two signatures, one task: the second is served from the first's pieces.
    first = call(c, url=c.url("f.bin") + "?sig=one&v=1", filtered_query_params=["sig"])
    gets = len(c.origin_gets("f.bin"))
    second = call(c, url=c.url("f.bin") + "?v=1&sig=two", filtered_query_params=["sig"])
    assert first[0].task_id == second[0].task_id and second[0].download_task_started_response.is_finished
    assert len(c.origin_gets("f.bin")) == gets
    third = call(c, url=c.url("f.bin") + "?sig=three&v=1")
    assert third[0].task_id != first[0].task_id, "unfiltered, the signature names another task"


def test_stored_pieces_of_an_older_version_are_dropped_not_mixed_in(make_cluster):
    size = 3 * PIECE
    c = make_cluster({"f.bin": os.urandom(size)})
    c.daemon("a")
    call(c, url=c.url("f.bin"), range=common_pb2.Range(start=0, length=10))  # piece 0 of this version
    new = os.urandom(size)
    path = c.root / "origin" / "f.bin"
    path.write_bytes(new)
    later = time.time() + 10
    os.utime(path, (later, later))  # a new Last-Modified, whatever the clock's granularity
    out = c.root / "new.out"
    call(c, url=c.url("f.bin"), output_path=str(out))
    assert out.read_bytes() == new
    assert "changed since its pieces were stored" in (c.root / "a.log").read_text()


def test_network_clients_cannot_name_a_task_by_its_content(make_cluster):
    # With content_for_calculating_task_id a caller picks the task id; sha256(url + "STANDARD")
    # is another download's. From the upload port (any TCP client) that would let it store its
    # own origin's bytes under that download's id: refused, and nothing is fetched.
    data = os.urandom(1000)
    c = make_cluster({"f.bin": data, "evil.bin": os.urandom(1000)})
    a = c.daemon("a")
    victim = hashlib.sha256((c.url("f.bin") + "STANDARD").encode()).hexdigest()
    with grpc.insecure_channel(a.address) as channel:
        upload = dfdaemon_pb2_grpc.DfdaemonUploadStub(channel)
        request = dfdaemon_pb2.DownloadTaskRequest(download=common_pb2.Download(
            url=c.url("evil.bin"), type=common_pb2.STANDARD, content_for_calculating_task_id=c.url("f.bin") + "STANDARD"))
        with pytest.raises(grpc.RpcError) as err:
            list(upload.DownloadTask(request, timeout=30))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, err.value
    assert not c.origin_gets("evil.bin")
    # The mirror refuses the header outright.
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
    conn.request("GET", f"/v2/x/blobs/sha256:{victim}", headers={"X-Dragonfly-Content-For-Calculating-Task-ID": "x"})
    res = conn.getresponse()
    assert res.status == 400 and b"not taken from network clients" in res.read()
    # A local client may, and the victim's URL still gets its own bytes.
    out = c.root / "f.out"
    call(c, url=c.url("f.bin"), output_path=str(out))
    assert out.read_bytes() == data
