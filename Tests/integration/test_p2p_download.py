"""The download path end to end with real processes: an origin, the scheduler, two
dfdaemons and dfget. The origin must serve each piece once; the second peer gets every
byte from the first; digests are checked; a pull never fails because Dragonfly did."""

import hashlib
import os
import re
import sys
import urllib.request
from pathlib import Path

import pytest

from conftest import Server, binary, describe, run

HELPERS = Path(__file__).parent / "helpers"
PIECE = 4 << 20
SIZE = 3 * PIECE + 12345  # four pieces, the last one short


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("p2p")
    content_dir = root / "origin"
    content_dir.mkdir()
    blob = os.urandom(SIZE)
    (content_dir / "blob.bin").write_bytes(blob)
    (content_dir / "small.txt").write_bytes(b"hello dragonfly\n")
    origin = Server([sys.executable, HELPERS / "range_origin.py", "0", content_dir], root / "origin.log")
    sched = Server([binary("scheduler"), "--port", "0", "--metrics-port", "0", "--listen-ip", "127.0.0.1",
                    "--data-dir", root / "sched"], root / "sched.log")
    peers = []
    for name in ("a", "b"):
        peers.append(Server([binary("dfdaemon"), "--port", "0", "--listen-ip", "127.0.0.1", "--ip", "127.0.0.1",
                             "--hostname", f"peer-{name}", "--scheduler", sched.address,
                             "--data-dir", root / name, "--unix-socket", root / f"{name}.sock"], root / f"{name}.log"))
    yield dict(root=root, blob=blob, origin=origin, sched=sched, peers=peers)
    for s in [*peers, sched, origin]:
        s.stop()


def origin_requests(cluster, method="GET", path="/blob.bin"):
    lines = Path(cluster["origin"].log_path).read_text().splitlines()
    return [l for l in lines if l.startswith(f"{method} {path}")]


def dfget(cluster, peer, url, out, *extra, timeout=120):
    sock = cluster["root"] / f"{peer}.sock"
    return run([binary("dfget"), url, "-O", out, "--daemon", f"unix:{sock}", "--quiet", *extra], timeout=timeout)


def metric(peer_server, name):
    text = urllib.request.urlopen(f"http://{peer_server.address}/metrics", timeout=10).read().decode()
    values = [float(m.group(1)) for m in re.finditer(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.M)]
    return sum(values)


def test_second_peer_gets_every_byte_from_the_first(cluster):
    url = f"http://{cluster['origin'].address}/blob.bin"
    out_a, out_b = cluster["root"] / "a.out", cluster["root"] / "b.out"
    res = dfget(cluster, "a", url + "?sig=one", out_a, "--filtered-query-params", "sig")
    assert res.returncode == 0, describe(res)
    assert out_a.read_bytes() == cluster["blob"]
    gets_after_first = len(origin_requests(cluster))
    assert gets_after_first == 4, "the first peer fetches each of the 4 pieces once"

    digest = "sha256:" + hashlib.sha256(cluster["blob"]).hexdigest()
    res = dfget(cluster, "b", url + "?sig=two", out_b, "--filtered-query-params", "sig", "--digest", digest)
    assert res.returncode == 0, describe(res)
    assert out_b.read_bytes() == cluster["blob"]
    assert len(origin_requests(cluster)) == gets_after_first, "the origin served no byte twice"
    b, a = cluster["peers"][1], cluster["peers"][0]
    assert metric(b, 'dragonfly_dfdaemon_download_traffic_total{type="peer"}') == SIZE
    assert metric(a, "dragonfly_dfdaemon_upload_traffic_total") >= SIZE


def test_a_complete_local_copy_is_served_without_the_origin(cluster):
    url = f"http://{cluster['origin'].address}/blob.bin"
    before = len(origin_requests(cluster)) + len(origin_requests(cluster, "HEAD"))
    out = cluster["root"] / "again.out"
    res = dfget(cluster, "a", url, out)
    assert res.returncode == 0, describe(res)
    assert out.read_bytes() == cluster["blob"]
    assert len(origin_requests(cluster)) + len(origin_requests(cluster, "HEAD")) == before


def test_digest_mismatch_fails_and_leaves_no_file(cluster):
    url = f"http://{cluster['origin'].address}/small.txt"
    out = cluster["root"] / "bad-digest.out"
    res = dfget(cluster, "a", url, out, "--digest", "sha256:" + "0" * 64)
    assert res.returncode == 3, describe(res)
    assert "digest" in res.stderr
    assert not out.exists()


def test_missing_origin_file_is_a_clear_error(cluster):
    url = f"http://{cluster['origin'].address}/nope.bin"
    out = cluster["root"] / "nope.out"
    res = dfget(cluster, "a", url, out)
    assert res.returncode == 1, describe(res)
    assert "404" in res.stderr
    assert not out.exists()


def test_without_a_daemon_dfget_downloads_directly(cluster, tmp_path):
    url = f"http://{cluster['origin'].address}/small.txt"
    out = tmp_path / "direct.out"
    res = run([binary("dfget"), url, "-O", out, "--daemon", f"unix:{tmp_path}/no.sock"], timeout=60)
    assert res.returncode == 0, describe(res)
    assert out.read_bytes() == b"hello dragonfly\n"
    assert "directly from the origin" in res.stderr


def test_without_a_scheduler_the_daemon_goes_to_the_origin(tmp_path, cluster):
    lonely = Server([binary("dfdaemon"), "--port", "0", "--listen-ip", "127.0.0.1", "--hostname", "lonely",
                     "--scheduler", "127.0.0.1:1", "--data-dir", tmp_path / "d", "--unix-socket", tmp_path / "l.sock"],
                    tmp_path / "l.log")
    try:
        out = tmp_path / "l.out"
        url = f"http://{cluster['origin'].address}/small.txt?x=1"
        res = run([binary("dfget"), url, "-O", out, "--daemon", f"unix:{tmp_path}/l.sock", "--quiet"], timeout=60)
        assert res.returncode == 0, describe(res)
        assert out.read_bytes() == b"hello dragonfly\n"
    finally:
        lonely.stop()


def test_daemon_port_also_speaks_http1(cluster):
    peer = cluster["peers"][0]
    assert urllib.request.urlopen(f"http://{peer.address}/healthy", timeout=10).read() == b"OK"


@pytest.mark.parametrize("name", ["dfdaemon.yaml", "seed-peer.yaml"])
def test_example_configs_start_a_daemon(tmp_path, name):
    # The shipped examples must load; paths and ports are overridden by flags.
    config = Path(__file__).parents[2] / "docker" / name
    d = Server([binary("dfdaemon"), "--config", config, "--port", "0", "--listen-ip", "127.0.0.1",
                "--data-dir", tmp_path / "d", "--unix-socket", tmp_path / "s.sock"], tmp_path / "log")
    d.stop()


def test_unknown_daemon_config_key_is_named(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("download:\n  concurrentPieceCountt: 3\n")
    res = run([binary("dfdaemon"), "--config", config], timeout=30)
    assert res.returncode != 0
    assert "download.concurrentPieceCountt" in res.stderr
