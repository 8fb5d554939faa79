"""Failure drills on a whole cluster (manager, scheduler, seed peer, three dfdaemons given
only the manager), all on loopback: a component killed with SIGKILL in the middle of a
three-node pull, a full disk, and an origin that resets, lies about lengths, fails with
500s or crawls. Every pull that can finish must finish with the right digest; nothing
wrong may be cached; nothing that was not killed may die; the killed one must rejoin."""

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import Server, binary, describe, free_port, missing, run
from dfdaemon_cluster import wait_for_hosts

HELPERS = Path(__file__).parent / "helpers"
sys.path.insert(0, str(HELPERS))
from manager_proc import Manager, wait_for  # noqa: E402

MIB = 1 << 20
NODES = ("n1", "n2", "n3")


class DrillCluster:
    def __init__(self, root):
        self.root = Path(root)
        (self.root / "origin").mkdir(parents=True)
        self.files = {}
        self.origin = Server([sys.executable, HELPERS / "faulty_origin.py", "0", self.root / "origin"], self.root / "origin.log")
        self.manager = Manager(self.root / "manager")
        self.sched_port, self.sched_metrics = free_port(), free_port()
        self.sched = self.start_scheduler()
        self.seed_port = free_port()
        self.seed = self.start_daemon("seed", self.seed_port, "--seed-peer")
        self.nodes = {n: self.start_daemon(n, free_port()) for n in NODES}
        token = self.manager.sign_in()
        assert wait_for(lambda: [s["state"] for s in self.manager.call("GET", "/api/v1/seed-peers", token=token)[1]] == ["active"])
        for name in ("seed", *NODES):
            assert wait_for(lambda: "names schedulers" in (self.root / f"{name}.log").read_text()), name
        wait_for_hosts(self.sched.address, 1 + len(NODES))

    def start_scheduler(self):
        return Server([binary("scheduler"), "--port", self.sched_port, "--metrics-port", self.sched_metrics,
                       "--listen-ip", "127.0.0.1", "--advertise-ip", "127.0.0.1", "--data-dir", self.root / "s",
                       "--manager", self.manager.grpc], self.root / "sched.log")

    def start_daemon(self, name, port, *extra):
        return Server([binary("dfdaemon"), "--port", port, "--listen-ip", "127.0.0.1", "--ip", "127.0.0.1",
                       "--hostname", name, "--manager", self.manager.grpc, "--data-dir", self.root / name,
                       "--unix-socket", self.root / f"{name}.sock", *extra], self.root / f"{name}.log")

    def add_file(self, name, size):
        data = os.urandom(size)
        (self.root / "origin" / name).write_bytes(data)
        self.files[name] = data
        return "sha256:" + hashlib.sha256(data).hexdigest()

    def dfget(self, node, path, out, digest=None, timeout=180):
        args = [binary("dfget"), f"http://{self.origin.address}/{path}", "-O", out, "--daemon", f"unix:{self.root}/{node}.sock",
                "--quiet"]
        if digest:
            args += ["--digest", digest]
        return run(args, timeout=timeout)

    def pull_everywhere(self, path, digest, tag):
        """Starts dfget on every node at once; returns the threads' results list."""
        results = {}

        def pull(node):
            results[node] = self.dfget(node, path, self.root / f"{tag}-{node}.out", digest)
        threads = [threading.Thread(target=pull, args=(n,)) for n in NODES]
        for t in threads:
            t.start()
        return threads, results

    def origin_gets(self, path):
        return [line for line in (self.root / "origin.log").read_text().splitlines() if line.startswith(f"GET /{path} ")]

    def all_alive(self, *skip):
        for name, s in [("manager", self.manager.server), ("sched", self.sched), ("seed", self.seed), *self.nodes.items()]:
            if name not in skip:
                s.assert_alive()

    def stop(self):
        for s in [*self.nodes.values(), self.seed, self.sched, self.origin]:
            s.stop()
        self.manager.stop()


@pytest.fixture
def drill(tmp_path):
    c = DrillCluster(tmp_path / "c")
    yield c
    c.stop()


def finish(c, threads, results, path, tag):
    for t in threads:
        t.join(timeout=200)
    for node in NODES:
        res = results.get(node)
        assert res is not None and res.returncode == 0, f"{node}: " + (describe(res) if res else "no result")
        assert (c.root / f"{tag}-{node}.out").read_bytes() == c.files[path], f"{node} got different bytes"


def kill9(server):
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=10)


def test_seed_peer_killed_mid_pull(drill):
    digest = drill.add_file("big.bin", 24 * MIB)
    threads, results = drill.pull_everywhere("slow/big.bin", digest, "seedkill")
    assert wait_for(lambda: len(drill.origin_gets("slow/big.bin")) >= 2, timeout=20), "the pull started"
    kill9(drill.seed)
    finish(drill, threads, results, "big.bin", "seedkill")
    drill.all_alive("seed")
    # Restarted on its port and data dir, the seed peer registers again and serves.
    drill.seed = drill.start_daemon("seed", drill.seed_port, "--seed-peer")
    token = drill.manager.sign_in()
    assert wait_for(lambda: [s["state"] for s in drill.manager.call("GET", "/api/v1/seed-peers", token=token)[1]] == ["active"],
                    timeout=30)


def test_scheduler_killed_mid_pull_and_restarted(drill):
    digest = drill.add_file("big.bin", 24 * MIB)
    threads, results = drill.pull_everywhere("slow/big.bin", digest, "schedkill")
    assert wait_for(lambda: len(drill.origin_gets("slow/big.bin")) >= 2, timeout=20)
    kill9(drill.sched)
    finish(drill, threads, results, "big.bin", "schedkill")
    drill.all_alive("sched")
    drill.sched = drill.start_scheduler()
    token = drill.manager.sign_in()
    assert wait_for(lambda: [s["state"] for s in drill.manager.call("GET", "/api/v1/schedulers", token=token)[1]] == ["active"],
                    timeout=30), "the restarted scheduler registered again"
    # The peers use it again: a new task is scheduled (registered) there, and succeeds.
    digest = drill.add_file("after.bin", 6 * MIB)
    metrics = f"http://127.0.0.1:{drill.sched_metrics}/metrics"

    def registered():
        res = drill.dfget("n1", "after.bin", drill.root / "after.out", digest)
        assert res.returncode == 0, describe(res)
        text = urllib.request.urlopen(metrics, timeout=10).read().decode()
        return "dragonfly_scheduler_register_peer_total" in text
    assert wait_for(registered, timeout=60), "downloads go through the restarted scheduler"


def test_manager_killed_mid_pull_and_restarted(drill):
    digest = drill.add_file("big.bin", 24 * MIB)
    threads, results = drill.pull_everywhere("slow/big.bin", digest, "mgrkill")
    assert wait_for(lambda: len(drill.origin_gets("slow/big.bin")) >= 2, timeout=20)
    kill9(drill.manager.server)
    finish(drill, threads, results, "big.bin", "mgrkill")
    assert len([g for g in drill.origin_gets("slow/big.bin") if " 206" in g or " 200" in g]) <= 12, \
        "the manager is not on the data path: P2P kept working"
    drill.all_alive("manager")
    drill.manager.start()  # same ports, same data dir
    token = drill.manager.sign_in()
    status, schedulers, _ = drill.manager.call("GET", "/api/v1/schedulers", token=token)
    assert status == 200 and [s["hostname"] for s in schedulers], "the stored registrations survived"

    # The scheduler and the seed peer reconnect and keep alive with the new process.
    def keepalives():
        text = urllib.request.urlopen(drill.manager.rest + "/metrics", timeout=10).read().decode()
        started = [line for line in text.splitlines()
                   if line.startswith("grpc_server_started_total") and 'grpc_method="KeepAlive"' in line]
        return sum(float(line.rsplit(" ", 1)[1]) for line in started) >= 2
    assert wait_for(keepalives, timeout=45), "scheduler and seed peer keep alive with the restarted manager"
    digest = drill.add_file("after.bin", 6 * MIB)
    res = drill.dfget("n2", "after.bin", drill.root / "after.out", digest)
    assert res.returncode == 0, describe(res)


@contextlib.contextmanager
def small_disk(path, size="16m"):
    """A tmpfs of `size` mounted at `path` for the test's length: a disk that fills."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    if mounted.returncode != 0:
        missing(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextlib.contextmanager
def origin_and_daemon(tmp_path, files, data_dir):
    """An origin serving `files` and one dfdaemon storing under `data_dir`, stopped after."""
    (tmp_path / "origin").mkdir()
    for name, data in files.items():
        (tmp_path / "origin" / name).write_bytes(data)
    servers = []
    try:
        servers.append(Server([sys.executable, HELPERS / "faulty_origin.py", "0", tmp_path / "origin"], tmp_path / "o.log"))
        servers.append(Server([binary("dfdaemon"), "--port", "0", "--listen-ip", "127.0.0.1", "--data-dir", data_dir,
                               "--unix-socket", tmp_path / "d.sock"], tmp_path / "d.log"))
        yield servers[0], servers[1]
    finally:
        for s in reversed(servers):
            s.stop()


def dfget_into(tmp_path, origin, name, out):
    return run([binary("dfget"), f"http://{origin.address}/{name}", "-O", out, "--daemon", f"unix:{tmp_path}/d.sock", "--quiet"],
               timeout=120)


def test_full_disk_fails_cleanly_and_the_daemon_stays_up(tmp_path):
    big, small = os.urandom(40 * MIB), os.urandom(2 * MIB)
    with small_disk(tmp_path / "disk") as mnt, \
            origin_and_daemon(tmp_path, {"big.bin": big, "small.bin": small}, mnt / "d") as (origin, daemon):
        res = dfget_into(tmp_path, origin, "big.bin", tmp_path / "big.out")
        assert res.returncode != 0, "40 MiB cannot fit in 16 MiB"
        assert "space" in res.stderr.lower(), res.stderr
        assert not (tmp_path / "big.out").exists()
        finished = [p for p in (mnt / "d" / "metadata").glob("*.json") if '"finished":true' in p.read_text()]
        assert finished == [], "nothing partial is marked complete"
        daemon.assert_alive()
        # Space freed by the failed task, a download that fits still works.
        res = dfget_into(tmp_path, origin, "small.bin", tmp_path / "small.out")
        assert res.returncode == 0, describe(res) + Path(daemon.log_path).read_text()[-2000:]
        assert (tmp_path / "small.out").read_bytes() == small


def test_an_output_on_a_full_disk_fails_cleanly_and_the_task_is_kept(tmp_path):
    """The user's file is written as pieces arrive, apart from the store: an output disk
    that fills fails that download with the reason and leaves no partial file, while the
    store (on another disk) keeps the pieces it stored for the next caller."""
    big = os.urandom(40 * MIB)
    with small_disk(tmp_path / "out") as mnt, origin_and_daemon(tmp_path, {"big.bin": big}, tmp_path / "d") as (origin, daemon):
        res = dfget_into(tmp_path, origin, "big.bin", mnt / "big.out")
        assert res.returncode != 0, "40 MiB cannot fit in 16 MiB"
        assert "space" in res.stderr.lower(), res.stderr
        assert list(mnt.iterdir()) == [], "no partial output is left"
        daemon.assert_alive()

        def gets():
            return [l for l in Path(origin.log_path).read_text().splitlines() if l.startswith("GET /big.bin")]
        before = len(gets())
        res = dfget_into(tmp_path, origin, "big.bin", tmp_path / "big.out")
        assert res.returncode == 0, describe(res) + Path(daemon.log_path).read_text()[-2000:]
        assert (tmp_path / "big.out").read_bytes() == big
        # The pieces stored before the failure stay: the next caller fetches only the rest.
        again = set(gets()[before:])
        assert len(again) < 10, sorted(again)


@pytest.mark.parametrize("mode,ok,words", [
    ("reset", False, ""), ("shortlen", False, ""), ("always500", False, "500"), ("flaky500", True, ""), ("slow", True, ""),
])
def test_origin_faults(drill, mode, ok, words):
    digest = drill.add_file(f"{mode}.bin", 6 * MIB)
    res = drill.dfget("n1", f"{mode}/{mode}.bin", drill.root / f"{mode}.out", digest, timeout=120)
    if ok:
        assert res.returncode == 0, describe(res)
        assert (drill.root / f"{mode}.out").read_bytes() == drill.files[f"{mode}.bin"]
        if mode == "flaky500":
            assert sum(1 for g in drill.origin_gets(f"{mode}/{mode}.bin") if g.endswith(" 500")) >= 2, "it was retried"
    else:
        assert res.returncode != 0, f"{mode}: a broken origin cannot give a good file"
        assert words in res.stderr, res.stderr
        assert not (drill.root / f"{mode}.out").exists()
        for node in ("seed", *NODES):
            meta = drill.root / node / "metadata"
            finished = [p for p in meta.glob("*.json") if '"finished":true' in p.read_text()] if meta.exists() else []
            assert finished == [], f"{node} cached a task from a broken origin"
    drill.all_alive()
