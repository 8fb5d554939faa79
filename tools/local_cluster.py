#!/usr/bin/env python3
"""A whole Dragonfly cluster on 127.0.0.1: an origin HTTP server, the manager (SQLite), a
scheduler registered with it, a seed peer and dfdaemons that are given only the manager's
address, each on its own ports (the OS picks them) and in its own data dir.

Run as a program it is the README's main job: it starts the cluster, downloads a test file
with dfget through each dfdaemon, prints where the bytes came from, and keeps the cluster
up until Ctrl-C (or stops at once with --no-hold). The integration tests import the same
`LocalCluster` (Tests/integration/helpers/local_cluster.py)."""

import argparse
import json
import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RANGE_ORIGIN = REPO / "Tests" / "integration" / "helpers" / "range_origin.py"
LISTENING = re.compile(r"^LISTENING (\d+)(?: METRICS (\d+))?\s*$")
MIB = 1 << 20
ROOT_PASSWORD = "root-password-1"
# The manager refuses scheduler and seed peer registration without it (README, "Limits and
# hardening"); all three read it from the environment, which keeps it out of `ps`.
REGISTRATION_SECRET_VAR = "DRAGONFLY_REGISTRATION_SECRET"


class StartFailed(RuntimeError):
    """A server exited, or printed no LISTENING line in time."""


class Process:
    """A server we started, ready once it printed `LISTENING <port> [METRICS <port>]`;
    stopped by its own pid only."""

    def __init__(self, cmd, log_path, env=None, ready_timeout=60.0):
        self.cmd = [str(c) for c in cmd]
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "w")
        # Its own session: a Ctrl-C at the terminal reaches only us, and we stop it in order.
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL,
                                     text=True, env=env, start_new_session=True)
        self._lines = queue.Queue()
        # Drain stdout for the whole life of the process: a full pipe would block it.
        threading.Thread(target=self._pump, daemon=True).start()
        self.port, self.metrics_port = self._wait_listening(ready_timeout)
        self.address = f"127.0.0.1:{self.port}"

    def _pump(self):
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _wait_listening(self, timeout):
        deadline = time.monotonic() + timeout
        seen = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                self.stop()
                raise StartFailed(f"{self.cmd} exited ({self.proc.returncode}) before LISTENING; stdout: {seen}\n{self.log_tail()}")
            seen.append(line)
            if match := LISTENING.match(line):
                return int(match.group(1)), (int(match.group(2)) if match.group(2) else None)
        self.stop()
        raise StartFailed(f"{self.cmd} printed no 'LISTENING <port>' in {timeout}s; stdout: {seen}\n{self.log_tail()}")

    def log_tail(self, lines=40):
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            text = []
        return "--- server stderr (tail)\n" + "\n".join(text)

    def stop(self, grace=10):
        """SIGTERM, then SIGKILL if it lingers; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode


class ManagerREST:
    """Calls on a manager's REST API at `self.rest` (http://host:port)."""

    rest = ""

    def call(self, method, path, body=None, token=None):
        """(status, parsed JSON body or None, headers); HTTP errors are answers, not exceptions."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.rest + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=20) as res:
                raw = res.read()
                return res.status, (json.loads(raw) if raw else None), res.headers
        except urllib.error.HTTPError as err:
            raw = err.read()
            return err.code, (json.loads(raw) if raw else None), err.headers

    def sign_in(self, name="root", password=ROOT_PASSWORD):
        status, body, _ = self.call("POST", "/api/v1/users/signin", {"name": name, "password": password})
        if status != 200:
            raise AssertionError(f"sign-in as {name} failed: {status} {body}")
        return body["token"]


class ManagerAPI(ManagerREST):
    """The manager process (SQLite in `root`) and its REST API."""

    def __init__(self, bin_dir, root, registration_secret=None):
        self.root = Path(root)
        env = dict(os.environ, DRAGONFLY_INITIAL_ROOT_PASSWORD=ROOT_PASSWORD)
        if registration_secret:
            env[REGISTRATION_SECRET_VAR] = registration_secret
        self.server = Process([Path(bin_dir) / "manager", "--grpc-port", 0, "--rest-port", 0, "--listen-ip", "127.0.0.1",
                               "--data-dir", self.root], self.root.with_suffix(".log"), env=env)
        self.grpc = self.server.address
        self.rest = f"http://127.0.0.1:{self.server.metrics_port}"

    def stop(self):
        return self.server.stop()


def wait_for(predicate, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


class LocalCluster:
    """Origin, manager, a scheduler registered with it, a seed peer and one dfdaemon per
    name in `nodes`, all knowing only the manager. The origin serves `model.bin` (`size`
    random bytes). `node_config` is YAML given to every dfdaemon, `{origin}` in it standing for
    the origin's address; `node_args` are extra flags."""

    def __init__(self, root, bin_dir, nodes=("node-1", "node-2"), size=24 * MIB, node_config=None, node_args=()):
        self.root = Path(root)
        self.bin_dir = Path(bin_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "origin").mkdir(exist_ok=True)
        self.content = os.urandom(size)
        (self.root / "origin" / "model.bin").write_bytes(self.content)
        self.servers = []
        self.manager = None
        # One secret per cluster, shared by the manager, the scheduler and the seed peer.
        self.registration_secret = os.environ.get(REGISTRATION_SECRET_VAR) or secrets.token_hex(16)
        self.env = dict(os.environ, **{REGISTRATION_SECRET_VAR: self.registration_secret})
        try:
            self._start(nodes, node_config, node_args)
        except BaseException:
            self.stop()
            raise

    def _start(self, nodes, node_config, node_args):
        self.origin = self.server("origin", [sys.executable, RANGE_ORIGIN, "0", self.root / "origin"])
        self.manager = ManagerAPI(self.bin_dir, self.root / "manager", self.registration_secret)
        self.sched = self.server("sched", [self.bin_dir / "scheduler", "--port", 0, "--metrics-port", 0, "--listen-ip", "127.0.0.1",
                                           "--advertise-ip", "127.0.0.1", "--data-dir", self.root / "s", "--manager", self.manager.grpc])
        self.seed = self.daemon("seed", "--seed-peer")
        extra = list(node_args)
        if node_config:
            config = self.root / "node.yaml"
            config.write_text(node_config.replace("{origin}", self.origin.address))
            extra = ["--config", config, *extra]
        self.nodes = [self.daemon(name, *extra) for name in nodes]
        self.node = self.nodes[0]
        self.node_names = list(nodes)
        self.token = self.manager.sign_in()
        # Ready when the seed peer is active in the manager and every peer was told of the scheduler.
        if not wait_for(lambda: [s["state"] for s in self.manager.call("GET", "/api/v1/seed-peers", token=self.token)[1]] == ["active"]):
            raise RuntimeError("the seed peer never became active in the manager")
        for name in ["seed", *nodes]:
            if not wait_for(lambda: "names schedulers" in (self.root / f"{name}.log").read_text(errors="replace")):
                raise RuntimeError(f"{name} was never told of a scheduler:\n" + (self.root / f"{name}.log").read_text()[-2000:])
        time.sleep(0.5)  # their first host announcements reach the scheduler

    def server(self, name, args):
        s = Process(args, self.root / f"{name}.log", env=self.env)
        self.servers.append(s)
        return s

    def daemon(self, name, *extra):
        return self.server(name, [self.bin_dir / "dfdaemon", "--port", 0, "--listen-ip", "127.0.0.1", "--ip", "127.0.0.1",
                                  "--hostname", name, "--manager", self.manager.grpc, "--data-dir", self.root / name,
                                  "--unix-socket", self.root / f"{name}.sock", *extra])

    def url(self, path="model.bin"):
        return f"http://{self.origin.address}/{path}"

    def dfget(self, out, *extra, url=None, node=None, timeout=120):
        """dfget through a dfdaemon's unix socket (the first one by default)."""
        name = node or self.node_names[0]
        cmd = [self.bin_dir / "dfget", url or self.url(), "-O", out, "--daemon", f"unix:{self.root}/{name}.sock", *extra]
        return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, errors="replace", timeout=timeout)

    def endpoints(self):
        return {
            "manager": f"{self.manager.rest}/metrics",
            "scheduler": f"http://127.0.0.1:{self.sched.metrics_port}/metrics",
            "seed": f"http://{self.seed.address}/metrics",
            "dfdaemon": f"http://{self.node.address}/metrics",
        }

    def traffic(self, process):
        """A dfdaemon's download_traffic_total by type (`peer`, `back_to_source`), in bytes."""
        with urllib.request.urlopen(f"http://{process.address}/metrics", timeout=10) as res:
            text = res.read().decode()
        found = {}
        for m in re.finditer(r'^dragonfly_dfdaemon_download_traffic_total\{type="(\w+)"\} (\S+)$', text, re.M):
            found[m.group(1)] = int(float(m.group(2)))
        return found

    def origin_gets(self):
        """Requests the origin has answered so far (one log line each)."""
        return sum(1 for line in (self.root / "origin.log").read_text(errors="replace").splitlines() if line.startswith("GET"))

    def stop(self):
        """Stops every process, peers first; returns {name: exit status}."""
        statuses = {}
        for s in reversed(self.servers):
            statuses[s.log_path.stem] = s.stop()
        if self.manager:
            statuses["manager"] = self.manager.stop()
        return statuses


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin-dir", default=os.environ.get("DF_BIN_DIR", REPO / ".build" / "release"),
                        help="where manager, scheduler, dfdaemon and dfget are (default .build/release)")
    parser.add_argument("--work-dir", help="data dirs and logs (default: a new temporary dir, removed at the end)")
    parser.add_argument("--size-mib", type=int, default=24, help="size of the test file the origin serves")
    parser.add_argument("--nodes", type=int, default=2, help="number of dfdaemons")
    parser.add_argument("--no-hold", action="store_true", help="stop after the downloads instead of waiting for Ctrl-C")
    args = parser.parse_args()

    import shutil
    import tempfile
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="dragonfly-local-"))
    names = [f"node-{i + 1}" for i in range(args.nodes)]
    # Ctrl-C is ours to handle: the servers run in their own sessions and are stopped in order.
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    cluster = LocalCluster(work, args.bin_dir, nodes=names, size=args.size_mib * MIB)
    ok = True
    try:
        print(f"cluster up in {work}:")
        print(f"  origin     http://{cluster.origin.address}/model.bin ({args.size_mib} MiB)")
        print(f"  manager    gRPC {cluster.manager.grpc}, REST and console {cluster.manager.rest} (root / {ROOT_PASSWORD})")
        print(f"  scheduler  {cluster.sched.address}, metrics http://127.0.0.1:{cluster.sched.metrics_port}/metrics")
        print(f"  seed peer  {cluster.seed.address}")
        for name, node in zip(names, cluster.nodes):
            print(f"  dfdaemon   {name} {node.address} (unix:{work}/{name}.sock)")
        print()
        for name, node in zip(names, cluster.nodes):
            out = work / f"{name}.model.bin"
            before = cluster.origin_gets()
            started = time.monotonic()
            res = cluster.dfget(out, "--quiet", node=name)
            took = time.monotonic() - started
            if res.returncode != 0:
                print(f"dfget through {name} failed: {res.stderr.strip()}")
                ok = False
                continue
            same = out.read_bytes() == cluster.content
            t = cluster.traffic(node)
            print(f"dfget through {name}: {args.size_mib} MiB in {took:.2f} s, content {'identical to' if same else 'DIFFERENT from'} the origin's;"
                  f" {name} got {t.get('peer', 0) / MIB:.1f} MiB from peers and {t.get('back_to_source', 0) / MIB:.1f} MiB from the origin;"
                  f" the origin answered {cluster.origin_gets() - before} requests meanwhile")
            ok = ok and same
        seed = cluster.traffic(cluster.seed)
        print(f"seed peer: {seed.get('back_to_source', 0) / MIB:.1f} MiB from the origin, {seed.get('peer', 0) / MIB:.1f} MiB from peers;"
              f" origin requests in all: {cluster.origin_gets()}")
        if not args.no_hold and not stop.is_set():
            print("\ncluster running; Ctrl-C stops it")
            while not stop.wait(1):
                if any(s.proc.poll() is not None for s in cluster.servers):
                    print("a server exited on its own; stopping")
                    ok = False
                    break
    finally:
        statuses = cluster.stop()
        clean = all(code == 0 for code in statuses.values())
        print(f"stopped: {', '.join(f'{n} exit {c}' for n, c in statuses.items())}")
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok and clean else 1)


if __name__ == "__main__":
    main()
