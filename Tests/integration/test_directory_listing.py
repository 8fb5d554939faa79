"""ListTaskEntries and `dfget --recursive` against a real directory index (Python's
http.server), through two dfdaemons: every file identical, each asked of the origin once."""

import os
import re
import sys
from pathlib import Path
from urllib.parse import quote

import grpc
import pytest
from dragonfly_api import dfdaemon_pb2, dfdaemon_pb2_grpc

from conftest import Server, binary, run
from dfdaemon_cluster import HELPERS, make_cluster, task_id, wait_for_task  # noqa: F401 (fixture)

MIB = 1 << 20


def make_tree(root):
    """50 files over three levels: 10 in the root, 10 in a/, 10 in a/b/, 10 in c/, 10 in
    c/d e/ (a space in a name); one of them spans two 4 MiB pieces."""
    files = {}
    for folder in ["", "a/", "a/b/", "c/", "c/d e/"]:
        for i in range(10):
            name = f"{folder}f{i}.bin"
            size = 5 * MIB if name == "a/b/f3.bin" else 1 + (i * 7919) % 200_000
            data = os.urandom(size)
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
            files[name] = data
    return files


@pytest.fixture
def index_origin():
    """Starts http.server over a directory; each one is stopped when the test ends, however
    it ends (they used to outlive the run)."""
    started = []

    def start(tree, log):
        started.append(Server([sys.executable, HELPERS / "index_origin.py", tree], log))
        return started[-1]
    yield start
    for server in started:
        server.stop()


def served_tree(make_cluster, index_origin, tmp_path):
    """A cluster (scheduler, no daemons yet), the 50-file tree and http.server over it."""
    c = make_cluster({})
    tree = tmp_path / "tree"
    tree.mkdir()
    files = make_tree(tree)
    return c, files, index_origin(tree, tmp_path / "index.log")


def origin_gets(log):
    """GET request paths in http.server's access log, percent-decoded."""
    from urllib.parse import unquote
    return [unquote(m.group(1)) for m in re.finditer(r'"GET (\S+) HTTP/1\.[01]"', Path(log).read_text())]


def test_dfget_recursive_through_two_daemons_asks_the_origin_once_per_file(make_cluster, index_origin, tmp_path):
    c, files, index = served_tree(make_cluster, index_origin, tmp_path)
    config = f'download:\n  allowedOutputDirs: ["{tmp_path}"]\n'
    c.daemon("a", config=config)
    c.daemon("b", config=config)
    c.wait_for_hosts(2)
    url = f"http://{index.address}/"

    def dfget_r(daemon, out, *extra):
        return run([binary("dfget"), url, "-r", "-O", out, "--daemon", f"unix:{c.root}/{daemon}.sock", "--quiet", *extra],
                   timeout=300)

    res = dfget_r("a", tmp_path / "out-a")
    assert res.returncode == 0, res.stderr
    for name, data in files.items():
        assert (tmp_path / "out-a" / name).read_bytes() == data, name
    got = sorted(str(p.relative_to(tmp_path / "out-a")) for p in (tmp_path / "out-a").rglob("*") if p.is_file())
    assert got == sorted(files), "exactly the tree, nothing else"

    after_a = origin_gets(tmp_path / "index.log")
    # One GET per file. http.server ignores Range, so the one file of two pieces is read
    # whole after its first ranged GET came back 200 (the daemon's Range-ignored path).
    for name, data in files.items():
        count = after_a.count("/" + name)
        assert count == 1 if len(data) <= 4 * MIB else 1 <= count <= 3, (name, count)

    # a's reports reached the scheduler, so b is offered a rather than the origin.
    for name in files:
        wait_for_task(c.sched.address, task_id(url + quote(name)))
    res = dfget_r("b", tmp_path / "out-b")
    assert res.returncode == 0, res.stderr
    for name, data in files.items():
        assert (tmp_path / "out-b" / name).read_bytes() == data, name

    # b asked the origin for no file at all: every byte came from a.
    gets = origin_gets(tmp_path / "index.log")
    assert [g for g in gets if not g.endswith("/")] == [g for g in after_a if not g.endswith("/")]
    # The index pages were read once per listing: five directories, two listings.
    assert sorted(g for g in gets if g.endswith("/")) == sorted(["/", "/a/", "/a/b/", "/c/", "/c/d e/"] * 2)


def test_include_files_and_max_files(make_cluster, index_origin, tmp_path):
    c, files, index = served_tree(make_cluster, index_origin, tmp_path)
    c.daemon("a", config=f'download:\n  allowedOutputDirs: ["{tmp_path}"]\n')
    url = f"http://{index.address}"  # no trailing slash: dfget adds it, as upstream's

    res = run([binary("dfget"), url, "-r", "-O", tmp_path / "some", "--daemon", f"unix:{c.root}/a.sock", "--quiet",
               "--include-files", "a/b/*", "--include-files", "c/d e/", "--include-files", "f1.bin"], timeout=300)
    assert res.returncode == 0, res.stderr
    want = sorted(n for n in files if n.startswith("a/b/") or n.startswith("c/d e/") or n == "f1.bin")
    got = sorted(str(p.relative_to(tmp_path / "some")) for p in (tmp_path / "some").rglob("*") if p.is_file())
    assert got == want and len(want) == 21

    res = run([binary("dfget"), url, "-r", "-O", tmp_path / "too-many", "--daemon", f"unix:{c.root}/a.sock", "--quiet",
               "--max-files", "49"], timeout=120)
    assert res.returncode == 2 and "more than --max-files 49" in res.stderr, res.stderr
    assert not any((tmp_path / "too-many").rglob("*.bin")), "nothing is downloaded when the limit is passed"


def test_list_task_entries_with_the_official_stubs(make_cluster, index_origin, tmp_path):
    c, files, index = served_tree(make_cluster, index_origin, tmp_path)
    c.daemon("a")
    base = f"http://{index.address}/"
    with grpc.insecure_channel(f"unix:{c.root}/a.sock") as channel:
        stub = dfdaemon_pb2_grpc.DfdaemonDownloadStub(channel)
        listing = stub.ListTaskEntries(dfdaemon_pb2.ListTaskEntriesRequest(task_id="t", url=base), timeout=60)
        assert listing.status_code == 200
        dirs = sorted(e.url for e in listing.entries if e.is_dir)
        assert dirs == [base + d for d in ["a/", "a/b/", "c/", "c/d%20e/"]]
        listed = sorted(e.url[len(base):].replace("%20", " ") for e in listing.entries if not e.is_dir)
        assert listed == sorted(files)
        # A file is stat'ed: its length, no entries (as upstream's HTTP backend answers).
        one = stub.ListTaskEntries(dfdaemon_pb2.ListTaskEntriesRequest(task_id="t", url=base + "a/b/f3.bin"), timeout=60)
        assert one.content_length == 5 * MIB and list(one.entries) == []
        # Not HTTP: refused clearly; a missing directory is NOT_FOUND.
        for url, code in [("ftp://127.0.0.1/x/", grpc.StatusCode.INVALID_ARGUMENT), (base + "nope/", grpc.StatusCode.NOT_FOUND)]:
            try:
                stub.ListTaskEntries(dfdaemon_pb2.ListTaskEntriesRequest(task_id="t", url=url), timeout=60)
                raise AssertionError(f"{url} was listed")
            except grpc.RpcError as err:
                assert err.code() == code, (url, err.code(), err.details())


HOSTILE = """<html><body>
<a href="../secret.txt">up</a> <a href="http://127.0.0.2:1/x.bin">elsewhere</a> <a href="%2e%2e/evil.bin">encoded up</a>
<a href="ok.bin">ok</a></body></html>"""


def test_a_hostile_index_cannot_make_dfget_write_outside_its_directory(make_cluster, index_origin, tmp_path):
    c = make_cluster({})
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "index.html").write_text(HOSTILE)  # http.server serves index.html for d/
    (tree / "d" / "ok.bin").write_bytes(b"fine")
    (tree / "secret.txt").write_text("not for the listing")
    index = index_origin(tree, tmp_path / "index.log")
    c.daemon("a", config=f'download:\n  allowedOutputDirs: ["{tmp_path}"]\n')
    res = run([binary("dfget"), f"http://{index.address}/d/", "-r", "-O", tmp_path / "out", "--daemon", f"unix:{c.root}/a.sock",
               "--quiet"], timeout=120)
    # The daemon lists only ok.bin and %2e%2e/evil.bin (inside d/ as text); dfget refuses
    # the decoded `..` before anything is written.
    assert res.returncode == 1 and "not a safe relative path" in res.stderr, res.stderr
    assert not (tmp_path / "evil.bin").exists() and not (tmp_path / "out" / "secret.txt").exists()
    assert not any((tmp_path / "out").rglob("*.bin"))


def test_the_upload_port_does_not_list_for_anonymous_callers(make_cluster, index_origin, tmp_path):
    """The attack: a TCP client of the node asks it to read an index only the node can
    reach. Without mutual TLS the upload port refuses; the unix socket still lists."""
    c, files, index = served_tree(make_cluster, index_origin, tmp_path)
    a = c.daemon("a")
    request = dfdaemon_pb2.ListTaskEntriesRequest(task_id="t", url=f"http://{index.address}/")
    with grpc.insecure_channel(a.address) as channel:
        try:
            dfdaemon_pb2_grpc.DfdaemonUploadStub(channel).ListTaskEntries(request, timeout=30)
            raise AssertionError("the upload port listed an origin for an anonymous caller")
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.PERMISSION_DENIED, (err.code(), err.details())
    assert origin_gets(tmp_path / "index.log") == [], "the origin was read for the refused caller"
    with grpc.insecure_channel(f"unix:{c.root}/a.sock") as channel:
        listing = dfdaemon_pb2_grpc.DfdaemonDownloadStub(channel).ListTaskEntries(request, timeout=60)
    assert len([e for e in listing.entries if not e.is_dir]) == len(files)


def test_the_upload_port_does_not_delete_for_anonymous_callers(make_cluster, index_origin, tmp_path):
    """The attack: a TCP client tries to empty a node's cache (its pulls would go back to
    the origin). Without mutual TLS the upload port refuses and the task stays."""
    c, files, index = served_tree(make_cluster, index_origin, tmp_path)
    c.daemon("a", config=f'download:\n  allowedOutputDirs: ["{tmp_path}"]\n')
    url = f"http://{index.address}/f1.bin"
    res = run([binary("dfget"), url, "-O", tmp_path / "f1.bin", "--daemon", f"unix:{c.root}/a.sock", "--quiet"], timeout=60)
    assert res.returncode == 0, res.stderr
    task = task_id(url)
    with grpc.insecure_channel(c.daemons["a"].address) as channel:
        try:
            dfdaemon_pb2_grpc.DfdaemonUploadStub(channel).DeleteTask(dfdaemon_pb2.DeleteTaskRequest(task_id=task), timeout=10)
            raise AssertionError("the upload port deleted a task for an anonymous caller")
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.PERMISSION_DENIED, (err.code(), err.details())
    with grpc.insecure_channel(f"unix:{c.root}/a.sock") as channel:
        stat = dfdaemon_pb2_grpc.DfdaemonDownloadStub(channel).StatLocalTask(dfdaemon_pb2.StatLocalTaskRequest(task_id=task), timeout=10)
    assert stat.task_id == task and stat.content_length == len(files["f1.bin"])
