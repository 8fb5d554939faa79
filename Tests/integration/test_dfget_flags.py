"""dfget's flags that users script with, as the Rust dfget has them: --transfer-from-dfdaemon,
--overwrite (and no clobbering without it), --disable-back-to-source, --piece-length,
--priority, --content-for-calculating-task-id, --no-progress and --log-level; each checked
against what the daemon did (its task, the origin's log), not only dfget's exit status."""

import hashlib
import os
import re
import urllib.request

import pytest

from conftest import binary, describe, run
from dfdaemon_cluster import Cluster

MIB = 1 << 20


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, {"f.bin": os.urandom(9 * MIB + 77), "small.bin": os.urandom(1000)})
    c.daemon("a")
    yield c
    c.stop()


def dfget(c, name, out, *flags, timeout=120):
    return run([binary("dfget"), c.url(name), "-O", out, "--daemon", f"unix:{c.root}/a.sock", *flags], timeout=timeout)


def task_ids_in_log(c):
    return re.findall(r"task_id=([0-9a-f]{64})", (c.root / "a.log").read_text())


def test_transfer_from_dfdaemon_writes_the_pieces_itself(cluster, tmp_path):
    c = cluster
    out = tmp_path / "out" / "f.bin"
    res = dfget(c, "f.bin", out, "--transfer-from-dfdaemon", "--no-progress")
    assert res.returncode == 0, describe(res)
    assert out.read_bytes() == (c.root / "origin" / "f.bin").read_bytes()
    assert res.stderr == "", "--no-progress prints nothing on success"
    # From the cache too, and no temporary file is left beside the output.
    again = tmp_path / "out" / "again.bin"
    assert dfget(c, "f.bin", again, "--transfer-from-dfdaemon", "--quiet").returncode == 0
    assert again.read_bytes() == out.read_bytes()
    assert sorted(p.name for p in out.parent.iterdir()) == ["again.bin", "f.bin"]
    # A wrong digest: exit 3 and nothing at the output path.
    bad = tmp_path / "out" / "bad.bin"
    res = dfget(c, "f.bin", bad, "--transfer-from-dfdaemon", "--quiet", "--digest", "sha256:" + "0" * 64)
    assert res.returncode == 3, describe(res)
    assert not bad.exists() and sorted(p.name for p in out.parent.iterdir()) == ["again.bin", "f.bin"]


def test_an_existing_output_is_kept_without_overwrite(cluster, tmp_path):
    c = cluster
    out = tmp_path / "small.bin"
    out.write_bytes(b"precious")
    res = dfget(c, "small.bin", out, "--quiet")
    assert res.returncode == 2 and "already exists" in res.stderr, describe(res)
    assert out.read_bytes() == b"precious"
    assert not c.origin_gets("small.bin"), "nothing was downloaded"
    res = dfget(c, "small.bin", out, "--quiet", "--overwrite")
    assert res.returncode == 0, describe(res)
    assert out.read_bytes() == (c.root / "origin" / "small.bin").read_bytes()


def test_disable_back_to_source_fails_instead_of_fetching(cluster, tmp_path):
    c = cluster
    res = dfget(c, "small.bin", tmp_path / "x", "--quiet", "--disable-back-to-source")
    assert res.returncode == 1 and "back-to-source is disabled" in res.stderr, describe(res)
    assert not c.origin_gets("small.bin") and not (tmp_path / "x").exists()
    # With no daemon at all it does not download directly either.
    res = run([binary("dfget"), c.url("small.bin"), "-O", tmp_path / "y", "--daemon", f"unix:{tmp_path}/none.sock",
               "--disable-back-to-source"], timeout=60)
    assert res.returncode == 1 and "no dfdaemon answered" in res.stderr, describe(res)
    assert not c.origin_gets("small.bin")


def test_piece_length_is_used_and_names_another_task(cluster, tmp_path):
    c = cluster
    assert dfget(c, "f.bin", tmp_path / "p1", "--quiet").returncode == 0
    res = dfget(c, "f.bin", tmp_path / "p2", "--quiet", "--piece-length", "8mib")
    assert res.returncode == 0, describe(res)
    ranges = [line.split(" ", 2)[2] for line in c.origin_gets("f.bin")]
    assert "bytes=0-8388607" in ranges, "8 MiB pieces were fetched"
    assert len(set(task_ids_in_log(c))) == 2
    for bad in ("3mib", "1gib", "lots"):
        res = dfget(c, "f.bin", tmp_path / "p3", "--piece-length", bad)
        assert res.returncode == 2, (bad, describe(res))


def test_content_for_calculating_task_id_and_priority_reach_the_daemon(cluster, tmp_path):
    c = cluster
    res = dfget(c, "small.bin", tmp_path / "t1", "--content-for-calculating-task-id", "model-v1", "-l", "debug", "-p", "3")
    assert res.returncode == 0, describe(res)
    expected = hashlib.sha256(b"model-v1").hexdigest()
    assert f"task {expected}" in res.stderr, "debug output names the task"
    assert expected in task_ids_in_log(c)
    # The scheduler counts the peer under the priority dfget gave.
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{c.sched.metrics_port}/metrics", timeout=10).read().decode()
    assert re.search(r'priority="LEVEL3"', metrics), [l for l in metrics.splitlines() if "priority=" in l][:5]
    res = dfget(c, "small.bin", tmp_path / "t2", "-p", "9")
    assert res.returncode == 2, describe(res)


def test_log_level_error_hides_the_fallback_notice(tmp_path):
    (tmp_path / "c").mkdir()
    c = Cluster(tmp_path / "c", {"s.bin": b"x" * 100})
    try:
        for level, shown in (("info", True), ("error", False)):
            out = tmp_path / f"{level}.bin"
            res = run([binary("dfget"), c.url("s.bin"), "-O", out, "--daemon", f"unix:{tmp_path}/none.sock",
                       "--log-level", level, "--no-progress"], timeout=60)
            assert res.returncode == 0 and out.read_bytes() == b"x" * 100, describe(res)
            assert ("downloading directly" in res.stderr) == shown, (level, res.stderr)
    finally:
        c.stop()
