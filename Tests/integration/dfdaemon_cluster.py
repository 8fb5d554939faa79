"""A small cluster for dfdaemon tests: a Range-capable origin over a directory of files, a
scheduler, and dfdaemons on loopback, each with its unix socket; the official stubs reach
them through `download_task`."""

import hashlib
import re
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from dragonfly_api import common_pb2, dfdaemon_pb2, dfdaemon_pb2_grpc, scheduler_pb2, scheduler_pb2_grpc

from conftest import Server, binary, run

HELPERS = Path(__file__).parent / "helpers"


class Cluster:
    def __init__(self, root, files, origin_delay=None, sched_config=None):
        self.root = root
        (root / "origin").mkdir()
        for name, data in files.items():
            (root / "origin" / name).write_bytes(data)
        args = [sys.executable, HELPERS / "range_origin.py", "0", root / "origin"]
        if origin_delay:
            args.append(str(origin_delay))
        self.origin = Server(args, root / "origin.log")
        sched_args = [binary("scheduler"), "--port", "0", "--metrics-port", "0", "--listen-ip", "127.0.0.1", "--data-dir", root / "sched"]
        if sched_config:
            (root / "sched.yaml").write_text(sched_config)
            sched_args += ["--config", root / "sched.yaml"]
        self.sched = Server(sched_args, root / "sched.log")
        self.daemons = {}

    def daemon(self, name, *extra, config=None, data_dir=None):
        args = [binary("dfdaemon"), "--port", "0", "--listen-ip", "127.0.0.1", "--hostname", name,
                "--scheduler", self.sched.address, "--data-dir", data_dir or self.root / name,
                "--unix-socket", self.root / f"{name}.sock",
                *extra]
        if config:
            path = self.root / f"{name}.yaml"
            path.write_text(config)
            args += ["--config", path]
        self.daemons[name] = Server(args, self.root / f"{name}.log")
        return self.daemons[name]

    def liar(self, name, piece_length, mode="whole"):
        """A fake peer that claims the whole file and serves it with flipped bytes, each
        piece in one response (`whole`) or in the chunks the child asks for (`chunked`)."""
        self.daemons["liar"] = Server([sys.executable, HELPERS / "lying_parent.py", self.sched.address, self.url(name),
                                       self.root / "origin" / name, piece_length, mode], self.root / "liar.log")
        return self.daemons["liar"]

    def url(self, name):
        return f"http://{self.origin.address}/{name}"

    def dfget(self, daemon, name, *extra, out=None, timeout=120):
        out = out or self.root / f"{daemon}-{name}.out"
        return run([binary("dfget"), self.url(name), "-O", out, "--daemon", f"unix:{self.root}/{daemon}.sock", "--quiet", "--overwrite",
                    *extra], timeout=timeout), out

    def download_task(self, daemon, name, out, **fields):
        """DownloadTask through the daemon's unix socket with the official stubs; the
        responses, or grpc.RpcError."""
        with grpc.insecure_channel(f"unix:{self.root}/{daemon}.sock") as channel:
            stub = dfdaemon_pb2_grpc.DfdaemonDownloadStub(channel)
            request = dfdaemon_pb2.DownloadTaskRequest(download=common_pb2.Download(
                url=self.url(name), output_path=str(self.root / out), type=common_pb2.STANDARD, **fields))
            return list(stub.DownloadTask(request, timeout=60))

    def origin_gets(self, name):
        return [l for l in Path(self.origin.log_path).read_text().splitlines() if l.startswith(f"GET /{name}")]

    def wait_for_hosts(self, count, timeout=15):
        """Until the scheduler knows `count` hosts (each daemon announces itself as it starts)."""
        wait_for_hosts(self.sched.address, count, timeout)

    def wait_for_task(self, name, timeout=15):
        """Until the scheduler records the task of file `name` (plain URL) as succeeded, so a
        peer that asks next is offered its holders rather than the origin."""
        wait_for_task(self.sched.address, task_id(self.url(name)), timeout)

    def stop(self):
        for s in [*self.daemons.values(), self.sched, self.origin]:
            s.stop()


@pytest.fixture
def make_cluster(tmp_path):
    made = []

    def make(files, **kw):
        c = Cluster(tmp_path, files, **kw)
        made.append(c)
        return c
    yield make
    for c in made:
        c.stop()


def task_id(url):
    """The task id of a plain URL (no tag, application, piece length or filter)."""
    return hashlib.sha256((url + "STANDARD").encode()).hexdigest()


def wait_for_hosts(scheduler, count, timeout=15):
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(scheduler) as channel:
        stub = scheduler_pb2_grpc.SchedulerStub(channel)
        while True:
            hosts = stub.ListHosts(scheduler_pb2.ListHostsRequest(), timeout=5).hosts
            if len(hosts) >= count:
                return hosts
            assert time.monotonic() < deadline, f"the scheduler knows {len(hosts)} hosts, not {count}"
            time.sleep(0.05)


def wait_for_task(scheduler, task, timeout=15):
    deadline = time.monotonic() + timeout
    state = "unknown"
    with grpc.insecure_channel(scheduler) as channel:
        stub = scheduler_pb2_grpc.SchedulerStub(channel)
        while time.monotonic() < deadline:
            try:
                state = stub.StatTask(scheduler_pb2.StatTaskRequest(task_id=task), timeout=5).state
            except grpc.RpcError as err:
                state = err.code().name
            if state == "Succeeded":
                return
            time.sleep(0.05)
    raise AssertionError(f"task {task} is {state} at the scheduler, not Succeeded")


def wait_for_finished_peers(metrics_port, count, timeout=15):
    """Until the scheduler has counted `count` peers finished: each reports its pieces
    before it reports finishing, so from then on they are all known to the scheduler.
    (A task fetched by ranges, as a registry mirror's are, never becomes Succeeded.)"""
    deadline = time.monotonic() + timeout
    done = 0.0
    while time.monotonic() < deadline:
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
        done = sum(float(v) for v in re.findall(r"^dragonfly_scheduler_download_peer_finished_total\{[^}]*\} (\S+)$", text, re.M))
        if done >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"the scheduler counted {done} peers finished, not {count}")


def uploaded_bytes(daemon):
    """What a dfdaemon has served to other peers, from its /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{daemon.port}/metrics", timeout=10).read().decode()
    found = re.search(r"^\S*upload_traffic_total(?:\{[^}]*\})? (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0
