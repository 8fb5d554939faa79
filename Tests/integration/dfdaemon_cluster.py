"""A small cluster for dfdaemon tests: a Range-capable origin over a directory of files, a
scheduler, and dfdaemons on loopback, each with its unix socket; the official stubs reach
them through `download_task`."""

import sys
from pathlib import Path

import grpc
from dragonfly_api import common_pb2, dfdaemon_pb2, dfdaemon_pb2_grpc

from conftest import Server, binary, run

HELPERS = Path(__file__).parent / "helpers"


class Cluster:
    def __init__(self, root, files, origin_delay=None):
        self.root = root
        (root / "origin").mkdir()
        for name, data in files.items():
            (root / "origin" / name).write_bytes(data)
        args = [sys.executable, HELPERS / "range_origin.py", "0", root / "origin"]
        if origin_delay:
            args.append(str(origin_delay))
        self.origin = Server(args, root / "origin.log")
        self.sched = Server([binary("scheduler"), "--port", "0", "--metrics-port", "0", "--listen-ip", "127.0.0.1",
                             "--data-dir", root / "sched"], root / "sched.log")
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

    def liar(self, name, piece_length):
        """A fake peer that claims the whole file and serves it with flipped bytes."""
        self.daemons["liar"] = Server([sys.executable, HELPERS / "lying_parent.py", self.sched.address, self.url(name),
                                       self.root / "origin" / name, piece_length], self.root / "liar.log")
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

    def stop(self):
        for s in [*self.daemons.values(), self.sched, self.origin]:
            s.stop()
