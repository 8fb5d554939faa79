"""dfdaemon behaviour with real processes: rate limits, restarts, a truncating origin,
shared downloads, several peers and a seed, GC, and the official API from grpcio."""

import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import grpc
import pytest
from dragonfly_api import common_pb2, dfdaemon_pb2, dfdaemon_pb2_grpc
from google.protobuf import duration_pb2

from conftest import Server, binary, describe, missing, run, tool
from dfdaemon_cluster import make_cluster, task_id, wait_for_task  # noqa: F401 (make_cluster is a fixture)

HELPERS = Path(__file__).parent / "helpers"
MIB = 1 << 20


def test_rate_limit_of_8_mib_per_second(make_cluster):
    c = make_cluster({"f.bin": os.urandom(32 * MIB)})
    c.daemon("a", config="download:\n  totalRateLimit: 8Mi\n")
    start = time.monotonic()
    res, out = c.dfget("a", "f.bin")
    elapsed = time.monotonic() - start
    assert res.returncode == 0, describe(res)
    assert out.stat().st_size == 32 * MIB
    assert elapsed >= 3.5, f"32 MiB at 8 MiB/s took only {elapsed:.2f}s"


def test_restarted_daemon_serves_its_complete_tasks_again(make_cluster):
    data = os.urandom(6 * MIB)
    c = make_cluster({"f.bin": data})
    c.daemon("a")
    res, _ = c.dfget("a", "f.bin")
    assert res.returncode == 0, describe(res)
    gets = len(c.origin_gets("f.bin"))
    c.daemons["a"].stop()
    c.daemon("a")
    res, out = c.dfget("a", "f.bin", out=c.root / "again.out")
    assert res.returncode == 0, describe(res)
    assert out.read_bytes() == data
    assert len(c.origin_gets("f.bin")) == gets, "served from the restarted daemon's store"


def test_truncating_origin_is_a_clear_error_and_nothing_is_cached(make_cluster):
    c = make_cluster({"x.trunc": os.urandom(2 * MIB)})
    c.daemon("a")
    res, out = c.dfget("a", "x.trunc")
    assert res.returncode == 1, describe(res)
    assert "truncated" in res.stderr or "bytes" in res.stderr, res.stderr
    assert not out.exists()
    finished = [p for p in (c.root / "a" / "metadata").glob("*.json") if '"finished":true' in p.read_text()]
    assert finished == []


def test_concurrent_requests_share_one_download(make_cluster):
    c = make_cluster({"f.bin": os.urandom(12 * MIB)}, origin_delay=0.5)
    c.daemon("a")
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(c.dfget("a", "f.bin", out=c.root / f"o{i}")))
               for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert all(r.returncode == 0 for r, _ in results), [describe(r) for r, _ in results]
    assert len({o.read_bytes() for _, o in results}) == 1
    assert len(c.origin_gets("f.bin")) == 3, "three requests, one fetch of the three pieces"


def test_seed_and_three_peers_get_identical_files_origin_serves_once(make_cluster):
    data = os.urandom(20 * MIB)
    c = make_cluster({"model.bin": data})
    c.daemon("seed", "--seed-peer")
    for n in ("n1", "n2", "n3"):
        c.daemon(n)
    c.wait_for_hosts(4)
    for n in ("n1", "n2", "n3"):
        res, out = c.dfget(n, "model.bin")
        assert res.returncode == 0, describe(res)
        assert out.read_bytes() == data
    assert len(c.origin_gets("model.bin")) == 5, "5 pieces, each fetched once (by the seed)"


def test_gc_frees_space_under_the_threshold(make_cluster):
    c = make_cluster({f"f{i}.bin": os.urandom(8 * MIB) for i in range(3)})
    c.daemon("a", config="storage:\n  diskGCThreshold: 10Mi\ngc:\n  interval: 200ms\n")
    for i in range(3):
        res, _ = c.dfget("a", f"f{i}.bin")
        assert res.returncode == 0, describe(res)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        sizes = [p.stat().st_size for p in (c.root / "a" / "content").iterdir()]
        if sum(sizes) <= 10 * MIB:
            break
        time.sleep(0.2)
    assert sum(sizes) <= 10 * MIB, sizes


def test_official_client_downloads_and_stats_through_our_daemon(make_cluster):
    data = os.urandom(5 * MIB)
    c = make_cluster({"f.bin": data})
    d = c.daemon("a")
    out = c.root / "grpcio.out"
    with grpc.insecure_channel(f"unix:{c.root}/a.sock") as channel:
        stub = dfdaemon_pb2_grpc.DfdaemonDownloadStub(channel)
        request = dfdaemon_pb2.DownloadTaskRequest(download=common_pb2.Download(
            url=c.url("f.bin"), output_path=str(out), type=common_pb2.STANDARD))
        responses = list(stub.DownloadTask(request, timeout=60))
    first = responses[0]
    assert first.WhichOneof("response") == "download_task_started_response"
    assert first.download_task_started_response.content_length == 5 * MIB
    assert len(first.download_task_started_response.pieces) == 2
    assert first.host_id == "127.0.0.1-a" and len(first.task_id) == 64 and first.peer_id.startswith("127.0.0.1-a-")
    pieces = [r.download_piece_finished_response.piece for r in responses[1:]]
    assert sorted(p.number for p in pieces) == [0, 1]
    assert all(p.digest.startswith("crc32:") for p in pieces)
    assert all(r.task_id == first.task_id and r.peer_id == first.peer_id for r in responses)
    assert out.read_bytes() == data

    with grpc.insecure_channel(d.address) as channel:
        upload = dfdaemon_pb2_grpc.DfdaemonUploadStub(channel)
        synced = list(upload.SyncPieces(dfdaemon_pb2.SyncPiecesRequest(
            host_id="other", task_id=first.task_id, interested_piece_numbers=[0, 1]), timeout=30))
        assert [(p.number, p.length) for p in synced] == [(0, 4 * MIB), (1, MIB)]
        task = upload.StatTask(dfdaemon_pb2.StatTaskRequest(task_id=first.task_id), timeout=10)
        assert task.id == first.task_id and task.content_length == 5 * MIB and task.state == "Succeeded"
        with pytest.raises(grpc.RpcError) as err:
            upload.StatTask(dfdaemon_pb2.StatTaskRequest(task_id="f" * 64), timeout=10)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_corrupt_piece_at_a_parent_is_never_passed_on(make_cluster):
    data = os.urandom(9 * MIB)
    c = make_cluster({"f.bin": data})
    c.daemon("a")
    c.daemon("b")
    c.wait_for_hosts(2)
    res, _ = c.dfget("a", "f.bin")
    assert res.returncode == 0, describe(res)
    # Flip bytes inside piece 1 of the parent's copy, behind its back.
    content = next((c.root / "a" / "content").iterdir())
    with open(content, "r+b") as f:
        f.seek(4 * MIB + 1000)
        f.write(b"\xff\xff\xff\xff")
    gets_before = len(c.origin_gets("f.bin"))
    res, out = c.dfget("b", "f.bin")
    assert res.returncode == 0, describe(res)
    assert out.read_bytes() == data, "the corrupt piece never reached the child"
    assert len(c.origin_gets("f.bin")) > gets_before, "what the parent could not serve came from the origin"
    log = Path(c.daemons["b"].log_path).read_text()
    assert "failed piece" in log


@pytest.mark.parametrize("mode", ["whole", "chunked"])
def test_lying_parent_is_caught_blocklisted_and_the_bytes_come_from_elsewhere(make_cluster, mode):
    # The liar sends each piece with its true digest but wrong bytes: in one response, or
    # in chunks that a's store takes as they come (the bad byte is in the last).
    data = os.urandom(12 * MIB)
    c = make_cluster({"f.bin": data})
    liar = c.liar("f.bin", 4 * MIB, mode)
    c.daemon("a")
    c.daemon("b")
    c.wait_for_hosts(2)
    res, out = c.dfget("a", "f.bin")
    assert res.returncode == 0, describe(res)
    assert out.read_bytes() == data
    asked = Path(liar.log_path).read_text().count("served piece")
    assert asked >= 1, "the scheduler offered the liar as a parent"
    log_a = Path(c.daemons["a"].log_path).read_text()
    assert "digest" in log_a and "blocklisting parent 127.0.0.1-liar" in log_a, log_a[-3000:]
    # A parent that has delivered nothing may hold two pieces at once (PieceQueue's
    # unmeasuredLoad); after the first bad one it is given no other, so no worker of a's
    # (eight of them, two requests each in flight) asks it again.
    assert asked <= 2, asked
    # b is offered a (honest, complete) and perhaps the liar; its bytes come from a, not the origin.
    c.wait_for_task("f.bin")  # a's last reports reached the scheduler
    gets_before = len(c.origin_gets("f.bin"))
    res, out = c.dfget("b", "f.bin")
    assert res.returncode == 0, describe(res)
    assert out.read_bytes() == data
    assert len(c.origin_gets("f.bin")) == gets_before, "b got its pieces from the honest parent"


@pytest.mark.parametrize("mode,refusal", [("skip", "bytes at 2097152 of piece"), ("empty", "sent 0 bytes at 0"),
                                          ("redigest", "changed the digest"), ("overlong", "sent 1048577 bytes")])
def test_a_parent_whose_chunks_break_the_rules_is_dropped(make_cluster, mode, refusal):
    # True bytes, but a gap in content_offset, empty chunks without end, a digest that
    # changes midway, or a byte past the piece's end: a refuses the piece at once (no
    # timeout), blocklists the liar and gets the file elsewhere.
    data = os.urandom(12 * MIB)
    c = make_cluster({"f.bin": data})
    liar = c.liar("f.bin", 4 * MIB, mode)
    c.daemon("a")
    c.wait_for_hosts(2)
    start = time.monotonic()
    res, out = c.dfget("a", "f.bin")
    elapsed = time.monotonic() - start
    assert res.returncode == 0, describe(res)
    assert out.read_bytes() == data
    assert Path(liar.log_path).read_text().count("served piece") >= 1, "the scheduler offered the liar as a parent"
    log_a = Path(c.daemons["a"].log_path).read_text()
    assert "blocklisting parent 127.0.0.1-liar" in log_a, log_a[-3000:]
    assert refusal in log_a, log_a[-3000:]
    assert elapsed < 30, f"{elapsed:.1f} s: the bad stream was waited out, not refused"


def test_scheduler_stopped_mid_life_downloads_still_succeed(make_cluster):
    files = {"before.bin": os.urandom(5 * MIB), "after.bin": os.urandom(5 * MIB)}
    c = make_cluster(files)
    c.daemon("a")
    c.wait_for_hosts(1)
    res, _ = c.dfget("a", "before.bin")
    assert res.returncode == 0, describe(res)
    c.sched.proc.kill()  # no goodbye: the daemon's channel to it just breaks
    c.sched.proc.wait(timeout=10)
    res, out = c.dfget("a", "after.bin", timeout=60)
    assert res.returncode == 0, describe(res) + Path(c.daemons["a"].log_path).read_text()[-2000:]
    assert out.read_bytes() == files["after.bin"]
    res, out = c.dfget("a", "before.bin", timeout=60)
    assert res.returncode == 0 and out.read_bytes() == files["before.bin"], describe(res)


def test_gc_frees_space_under_the_disk_percent_threshold(make_cluster, tmp_path):
    # A 64 MiB tmpfs of our own, so "percent of the disk" is something the test controls.
    mnt = tmp_path / "disk"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if mounted.returncode != 0:
        missing(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        files = {f"f{i}.bin": os.urandom(14 * MIB) for i in range(3)}
        c = make_cluster(files)
        c.daemon("a", config="storage:\n  diskGCThresholdPercent: 60\ngc:\n  interval: 200ms\n", data_dir=mnt / "a")
        for i in range(3):
            res, _ = c.dfget("a", f"f{i}.bin")
            assert res.returncode == 0, describe(res)
            time.sleep(0.05)
        used = lambda: 100 * (1 - os.statvfs(mnt).f_bavail / os.statvfs(mnt).f_blocks)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and used() > 60:
            time.sleep(0.2)
        assert used() <= 60, f"{used():.1f}% used"
        # Least recently used went first: the newest task is still served without the origin.
        gets_before = len(c.origin_gets("f2.bin"))
        res, out = c.dfget("a", "f2.bin")
        assert res.returncode == 0 and out.read_bytes() == files["f2.bin"], describe(res)
        assert len(c.origin_gets("f2.bin")) == gets_before
        assert "gc removed" in Path(c.daemons["a"].log_path).read_text()
    finally:
        for d in c.daemons.values() if "c" in locals() else []:
            d.stop()
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_daemon_metrics_are_valid_prometheus_text(make_cluster):
    import urllib.request
    c = make_cluster({"f.bin": os.urandom(MIB)})
    d = c.daemon("a")
    res, _ = c.dfget("a", "f.bin")
    assert res.returncode == 0, describe(res)
    text = urllib.request.urlopen(f"http://{d.address}/metrics", timeout=10).read().decode()
    for name in ("dragonfly_dfdaemon_download_task_total", "dragonfly_dfdaemon_download_traffic_total",
                 "dragonfly_dfdaemon_download_piece_total", "dragonfly_dfdaemon_download_piece_cost_seconds_bucket"):
        assert name in text, name
    assert 'dragonfly_dfdaemon_download_task_total{type="back_to_source"} 1' in text
    check = subprocess.run([tool("promtool", "prometheus"), "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr


def test_edited_output_does_not_poison_the_cache(make_cluster):
    # Outputs are copies of the store, never hard links into it: an edit to one must not be
    # handed to the next requester.
    data = os.urandom(2 * MIB)
    c = make_cluster({"f.bin": data})
    c.daemon("a")
    res, out = c.dfget("a", "f.bin")
    assert res.returncode == 0, describe(res)
    with open(out, "r+b") as f:
        f.write(b"scribble")
    res, again = c.dfget("a", "f.bin", out=c.root / "again.out")
    assert res.returncode == 0, describe(res)
    assert again.read_bytes() == data


def test_need_piece_content_returns_each_piece_inline_fresh_and_from_cache(make_cluster):
    # dfget --transfer-from-dfdaemon and dfcache export give no output_path: they write each
    # piece's content at its offset themselves.
    data = os.urandom(9 * MIB)
    c = make_cluster({"f.bin": data})
    c.daemon("a")
    b = c.daemon("b")
    big = [("grpc.max_receive_message_length", 64 * MIB)]

    def assemble(responses):
        started = responses[0].download_task_started_response
        pieces = [r.download_piece_finished_response.piece for r in responses[1:]]
        assert sorted(p.number for p in pieces) == list(range(len(started.pieces))) == [0, 1, 2]
        out = bytearray(started.content_length)
        for p in pieces:
            assert len(p.content) == p.length, (p.number, len(p.content), p.length)
            assert p.digest == f"crc32:{zlib.crc32(p.content)}"
            out[p.offset:p.offset + p.length] = p.content
        return bytes(out)

    def inline(stub):
        request = dfdaemon_pb2.DownloadTaskRequest(download=common_pb2.Download(
            url=c.url("f.bin"), type=common_pb2.STANDARD, need_piece_content=True))
        return list(stub.DownloadTask(request, timeout=60))

    with grpc.insecure_channel(f"unix:{c.root}/a.sock", options=big) as channel:
        stub = dfdaemon_pb2_grpc.DfdaemonDownloadStub(channel)
        assert assemble(inline(stub)) == data, "a fresh download"
        gets = len(c.origin_gets("f.bin"))
        assert assemble(inline(stub)) == data, "a cache hit"
        assert len(c.origin_gets("f.bin")) == gets, "the cache hit asked the origin"
        plain = list(stub.DownloadTask(dfdaemon_pb2.DownloadTaskRequest(download=common_pb2.Download(
            url=c.url("f.bin"), type=common_pb2.STANDARD)), timeout=60))
        assert all(len(r.download_piece_finished_response.piece.content) == 0 for r in plain[1:])

    # The upload side (another peer over TCP) answers the same way; b's pieces come from a.
    c.wait_for_task("f.bin")  # a's reports reached the scheduler
    with grpc.insecure_channel(b.address, options=big) as channel:
        assert assemble(inline(dfdaemon_pb2_grpc.DfdaemonUploadStub(channel))) == data
    assert len(c.origin_gets("f.bin")) == gets, "b fetched from a, not the origin"


def test_an_origin_that_ignores_range_python_http_server(make_cluster, tmp_path):
    # python3 -m http.server answers every ranged GET with 200 and the whole file, as many
    # static servers, small-file CDNs and dynamic endpoints do.
    data = os.urandom(9 * MIB + 123)
    c = make_cluster({})
    www = tmp_path / "www"
    www.mkdir()
    (www / "f.bin").write_bytes(data)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "http-server.log"
    with open(log, "w") as f:
        origin = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(www)],
                                  stdout=f, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "python -m http.server did not start"
                time.sleep(0.05)
        c.daemon("a")
        c.daemon("b")
        url = f"http://127.0.0.1:{port}/f.bin"

        def fetch(daemon):
            out = tmp_path / f"{daemon}.out"
            res = run([binary("dfget"), url, "-O", out, "--daemon", f"unix:{c.root}/{daemon}.sock", "--quiet"], timeout=120)
            assert res.returncode == 0, describe(res)
            return out.read_bytes()

        def gets():
            return log.read_text().count('"GET /f.bin')

        assert fetch("a") == data
        # One ranged GET per piece at most (each answered with the whole file), then one
        # whole response read in order.
        assert 2 <= gets() <= 3 + 1, log.read_text()
        assert "origin ignores Range" in Path(c.daemons["a"].log_path).read_text()
        before = gets()
        wait_for_task(c.sched.address, task_id(url))  # a's reports reached the scheduler
        assert fetch("b") == data, "b got a's pieces"
        assert gets() == before, "b's pieces came from a, not the origin"
    finally:
        origin.terminate()
        origin.wait(timeout=10)


def test_an_origin_whose_content_changes_is_a_clear_error_and_nothing_is_cached(make_cluster):
    data = os.urandom(9 * MIB)
    c = make_cluster({"f.bin": data})
    origin = Server([sys.executable, HELPERS / "faulty_origin.py", "0", c.root / "origin"], c.root / "faulty.log")
    try:
        a = c.daemon("a")
        url = f"http://{origin.address}/changing/f.bin"
        for attempt in (1, 2):
            out = c.root / f"changing-{attempt}.out"
            res = run([binary("dfget"), url, "-O", out, "--daemon", f"unix:{c.root}/a.sock", "--quiet"], timeout=120)
            assert res.returncode != 0, f"attempt {attempt}: a download whose ETag changed succeeded"
            assert "content changed" in res.stderr, describe(res)
            assert not out.exists() or out.stat().st_size == 0
            # Nothing of either version is kept: no piece in the store, no task to serve.
            content = c.root / "a" / "content"
            assert [p for p in content.iterdir() if p.stat().st_size > 0] == [], list(content.iterdir())
        a.assert_alive()
        assert "dropping every stored piece" in Path(a.log_path).read_text()
    finally:
        origin.stop()


def test_an_origin_that_refuses_head_or_lies_in_it(make_cluster):
    data = os.urandom(9 * MIB)
    c = make_cluster({"f.bin": data})
    origin = Server([sys.executable, HELPERS / "faulty_origin.py", "0", c.root / "origin"], c.root / "faulty.log")
    try:
        a = c.daemon("a")

        def fetch(path, out):
            return run([binary("dfget"), f"http://{origin.address}/{path}", "-O", out, "--daemon", f"unix:{c.root}/a.sock",
                        "--quiet"], timeout=120)

        # HEAD refused (405, as from a URL signed for GET only): a one-byte GET gives the length.
        res = fetch("nohead/f.bin", c.root / "nohead.out")
        assert res.returncode == 0, describe(res)
        assert (c.root / "nohead.out").read_bytes() == data
        log = (c.root / "faulty.log").read_text()
        assert "HEAD /nohead/f.bin None 405" in log and "GET /nohead/f.bin bytes=0-0 206" in log, log

        # HEAD announces half the length: the ranged answers' Content-Range says otherwise.
        res = fetch("shorthead/f.bin", c.root / "shorthead.out")
        assert res.returncode != 0, "a download of a length the HEAD lied about succeeded"
        assert "content changed" in res.stderr, describe(res)
        a.assert_alive()
    finally:
        origin.stop()


def test_an_origin_that_sends_no_length(make_cluster):
    # A chunked body and no Content-Length anywhere (HEAD, ranged GET): read to its end,
    # then stored as pieces; a second request is a cache hit; a cut body stores nothing.
    data = os.urandom(9 * MIB + 5)
    c = make_cluster({"f.bin": data})
    origin = Server([sys.executable, HELPERS / "faulty_origin.py", "0", c.root / "origin"], c.root / "faulty.log")
    try:
        a = c.daemon("a")

        def fetch(path, out, *extra):
            return run([binary("dfget"), f"http://{origin.address}/{path}", "-O", out, "--daemon", f"unix:{c.root}/a.sock",
                        "--quiet", *extra], timeout=120)

        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        res = fetch("chunked/f.bin", c.root / "chunked.out", "--digest", digest)
        assert res.returncode == 0, describe(res)
        assert (c.root / "chunked.out").read_bytes() == data
        gets = [l for l in (c.root / "faulty.log").read_text().splitlines() if l.startswith("GET /chunked/")]
        assert len(gets) == 2, gets  # the length probe and the one read of the body
        res = fetch("chunked/f.bin", c.root / "again.out")
        assert res.returncode == 0 and (c.root / "again.out").read_bytes() == data, describe(res)
        assert len([l for l in (c.root / "faulty.log").read_text().splitlines() if l.startswith("GET /chunked/")]) == 2
        assert "read 9437189 bytes to the end, storing them as 3 pieces" in (c.root / "a.log").read_text()

        # Truncated (no last chunk): an error, and no task was made of the half.
        res = fetch("chunkedcut/f.bin", c.root / "cut.out")
        assert res.returncode == 1 and "origin body failed" in res.stderr, describe(res)
        assert not (c.root / "cut.out").exists()
        assert not list((c.root / "a" / "spool").iterdir()), "the spool file was removed"
        a.assert_alive()
    finally:
        origin.stop()


def test_disable_and_need_back_to_source(make_cluster):
    data = os.urandom(9 * MIB)
    c = make_cluster({"f.bin": data})
    c.daemon("a")
    c.daemon("b")

    def download(daemon, out, **flags):
        return c.download_task(daemon, "f.bin", out, **flags)

    # No peer has it and the origin is off limits: a clear error, and no GET reached the origin.
    with pytest.raises(grpc.RpcError) as err:
        download("a", "a0.out", disable_back_to_source=True)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value
    assert "back-to-source is disabled" in err.value.details()
    assert c.origin_gets("f.bin") == []

    download("a", "a.out")
    assert (c.root / "a.out").read_bytes() == data
    gets = len(c.origin_gets("f.bin"))
    assert gets == 3
    c.wait_for_task("f.bin")  # a's reports reached the scheduler

    # A peer has it: the download succeeds without the origin.
    download("b", "b.out", disable_back_to_source=True)
    assert (c.root / "b.out").read_bytes() == data
    assert len(c.origin_gets("f.bin")) == gets

    # need_back_to_source: the scheduler sends the peer to the origin though a has the task.
    c.daemon("c")
    download("c", "c.out", need_back_to_source=True)
    assert (c.root / "c.out").read_bytes() == data
    assert len(c.origin_gets("f.bin")) == gets + 3, "c fetched every piece from the origin"


def test_download_timeout_is_honoured(make_cluster):
    # Each origin request takes 2 s: a 1 s timeout ends the call, a longer one does not.
    data = os.urandom(5 * MIB)
    c = make_cluster({"f.bin": data}, origin_delay=2)
    c.daemon("a")

    def download(out, **duration):
        return c.download_task("a", "f.bin", out, timeout=duration_pb2.Duration(**duration))

    start = time.monotonic()
    with pytest.raises(grpc.RpcError) as err:
        download("short.out", seconds=1)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, err.value
    assert "timeout" in err.value.details()
    assert time.monotonic() - start < 1.9, "the call outlived its timeout by most of an origin request"
    with pytest.raises(grpc.RpcError) as err:
        download("negative.out", seconds=-1)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    download("long.out", seconds=30)
    assert (c.root / "long.out").read_bytes() == data
