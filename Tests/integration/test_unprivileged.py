"""Everything runs without root: the images run the manager, the scheduler and seed peers
as uid 10001 with every capability dropped, and users run dfget as themselves. A socket
option only root may set (SO_DEBUG, which `.socketOption(.tcp_nodelay)` set by mistake)
once made every connection of such a process fail; here each server and client runs as an
unprivileged user and a download goes through two dfdaemons."""

import os
import re
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path

from conftest import Server, binary, describe, missing, run

HELPERS = Path(__file__).parent / "helpers"
UID = 10001


def as_user(cmd):
    # setpriv (util-linux) drops to the uid and gid with no supplementary groups.
    return [shutil.which("setpriv"), "--reuid", str(UID), "--regid", str(UID), "--clear-groups", *map(str, cmd)]


def owned(path):
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, UID, UID)
    return path


def test_servers_and_clients_without_root(tmp_path):
    if os.geteuid() != 0:
        missing("needs root to start processes as another user")  # fails under CI, which runs as root
    # pytest's own temporary directories are private to root: a directory the user can reach.
    root = owned(Path(tempfile.mkdtemp(prefix="df-unprivileged-", dir="/tmp")))
    content = tmp_path / "origin"
    content.mkdir()
    blob = os.urandom(9 << 20)
    (content / "blob.bin").write_bytes(blob)
    servers = []
    try:
        origin = Server([sys.executable, HELPERS / "range_origin.py", "0", content], tmp_path / "origin.log")
        servers.append(origin)
        manager = Server(as_user([binary("manager"), "--grpc-port", "0", "--rest-port", "0", "--listen-ip", "127.0.0.1",
                                  "--data-dir", owned(root / "manager"), "--open-registration"]),
                         tmp_path / "manager.log", env=dict(os.environ, DRAGONFLY_INITIAL_ROOT_PASSWORD="unprivileged"))
        servers.append(manager)
        sched = Server(as_user([binary("scheduler"), "--port", "0", "--metrics-port", "0", "--listen-ip", "127.0.0.1",
                                "--data-dir", owned(root / "sched"), "--manager", manager.address]), tmp_path / "sched.log")
        servers.append(sched)
        peers = {}
        for name in ("a", "b"):
            peers[name] = Server(as_user([binary("dfdaemon"), "--port", "0", "--listen-ip", "127.0.0.1", "--ip", "127.0.0.1",
                                          "--hostname", f"peer-{name}", "--scheduler", sched.address,
                                          "--data-dir", owned(root / name), "--unix-socket", root / f"{name}.sock"]),
                                 tmp_path / f"{name}.log")
            servers.append(peers[name])
        url = f"http://{origin.address}/blob.bin"
        for name in ("a", "b"):
            out = owned(root / f"out-{name}") / "blob.bin"
            res = run(as_user([binary("dfget"), url, "-O", out, "--daemon", f"unix:{root / f'{name}.sock'}", "--quiet"]),
                      timeout=120)
            assert res.returncode == 0, describe(res) + Path(peers[name].log_path).read_text()[-2000:]
            assert out.read_bytes() == blob
        # b's pieces came from a, over TCP between two unprivileged processes.
        metrics = urllib.request.urlopen(f"http://{peers['b'].address}/metrics", timeout=10).read().decode()
        from_peers = re.search(r'^dragonfly_dfdaemon_download_traffic_total\{type="peer"\} (\S+)', metrics, re.M)
        assert from_peers and float(from_peers.group(1)) == len(blob), metrics[-3000:]
        # gRPC to each server from an unprivileged client, and the scheduler's own calls to
        # the manager (it registered).
        for server in (manager, sched, peers["a"]):
            listed = run(as_user([binary("dfrpc"), "list", server.address]), timeout=30)
            assert listed.returncode == 0 and "grpc.health.v1.Health" in listed.stdout, describe(listed)
        assert "cannot connect" not in Path(sched.log_path).read_text()
    finally:
        for s in reversed(servers):
            s.stop()
        shutil.rmtree(root, ignore_errors=True)
