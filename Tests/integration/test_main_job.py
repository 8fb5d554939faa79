"""The README's main job (tools/local_cluster.py) and the all-in-one process."""

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import BIN_DIR, binary, run

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tools" / "local_cluster.py"
HELPERS = Path(__file__).parent / "helpers"
MIB = 1 << 20


def lines_until(proc, pattern, timeout):
    """Reads proc's stdout until a line matches; returns every line read."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if re.search(pattern, line):
            return seen
    pytest.fail(f"no line matching {pattern!r} in {timeout}s:\n{''.join(seen)}")


def test_main_job_downloads_through_each_dfdaemon_and_reports_sources(tmp_path):
    binary("dfget")
    res = run([sys.executable, SCRIPT, "--bin-dir", BIN_DIR, "--no-hold", "--size-mib", "8", "--work-dir", tmp_path],
              timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    for node in ("node-1", "node-2"):
        m = re.search(rf"dfget through {node}: 8 MiB in [\d.]+ s, content identical to the origin's; "
                      rf"{node} got ([\d.]+) MiB from peers and ([\d.]+) MiB from the origin", out)
        assert m, out
        # Every byte a dfdaemon holds came from the seed peer or the other node, none from the origin.
        assert (float(m.group(1)), float(m.group(2))) == (8.0, 0.0), out
    m = re.search(r"seed peer: ([\d.]+) MiB from the origin.*origin requests in all: (\d+)", out)
    assert m and float(m.group(1)) == 8.0, out
    assert int(m.group(2)) == 2, out  # two 4 MiB pieces, each fetched once for the whole cluster
    assert re.search(r"stopped: (\S+ exit 0, ){5}manager exit 0", out), out
    assert (tmp_path / "node-2.model.bin").stat().st_size == 8 * MIB


def test_main_job_holds_until_ctrl_c_then_stops_every_server(tmp_path):
    binary("dfget")
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--bin-dir", str(BIN_DIR), "--size-mib", "4", "--work-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = lines_until(proc, r"cluster running; Ctrl-C stops it", 180)
        ports = [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", "".join(seen))]
        assert len(ports) >= 6, seen
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, "".join(seen) + rest
    assert re.search(r"stopped: (\S+ exit 0, ){5}manager exit 0", rest), rest
    # Nothing of the cluster still listens.
    import socket
    for port in ports:
        with socket.socket() as s:
            s.settimeout(1)
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open after Ctrl-C"


ALL_IN_ONE = """\
dataDir: {root}/data
manager:
  server:
    grpc:
      listenIP: 127.0.0.1
      port: 0
    rest:
      addr: 127.0.0.1:0
scheduler:
  server:
    listenIP: 127.0.0.1
    port: 0
  metrics:
    addr: 127.0.0.1:0
seedPeer:
  server:
    listen: 127.0.0.1:0
  host:
    ip: 127.0.0.1
    hostname: edge
dfdaemon:
  server:
    listen: 127.0.0.1:0
  download:
    server:
      socketPath: {root}/dfdaemon.sock
  host:
    ip: 127.0.0.1
    hostname: edge
"""


def test_all_in_one_config_is_checked_by_each_components_loader(tmp_path):
    dragonfly = binary("dragonfly")
    good = tmp_path / "good.yaml"
    good.write_text(ALL_IN_ONE.format(root=tmp_path))
    for config in (good, REPO / "docker" / "all-in-one.yaml"):
        res = run([dragonfly, "all-in-one", "--config", config, "--check-config"])
        assert res.returncode == 0 and res.stdout.strip() == "config OK", (config, res.stdout + res.stderr)
    for bad, named in [(ALL_IN_ONE.format(root=tmp_path) + "redis:\n  addr: x\n", "redis"),
                       (ALL_IN_ONE.format(root=tmp_path).replace("    hostname: edge\ndfdaemon:", "    hostname: edge\n    hostnmae: x\ndfdaemon:"),
                        "host.hostnmae"),
                       (ALL_IN_ONE.format(root=tmp_path).replace("  metrics:\n    addr: 127.0.0.1:0\n", "  metrics:\n    addr: 127.0.0.1:0\n  scheduler:\n    retryLimit: 0\n"),
                        "scheduler.retryLimit")]:
        path = tmp_path / "bad.yaml"
        path.write_text(bad)
        res = run([dragonfly, "all-in-one", "--config", path, "--check-config"])
        assert res.returncode != 0 and named in res.stderr, (named, res.stdout, res.stderr)


def test_all_in_one_serves_p2p_in_one_process_and_stops_on_sigterm(tmp_path):
    dragonfly, dfget = binary("dragonfly"), binary("dfget")
    (tmp_path / "origin").mkdir()
    content = bytes(range(256)) * (40 * 4096)  # 40 MiB: ten 4 MiB pieces
    (tmp_path / "origin" / "big.bin").write_bytes(content)
    origin = subprocess.Popen([sys.executable, str(HELPERS / "range_origin.py"), "0", str(tmp_path / "origin")],
                              stdout=subprocess.PIPE, stderr=open(tmp_path / "origin.log", "w"), text=True)
    config = tmp_path / "aio.yaml"
    config.write_text(ALL_IN_ONE.format(root=tmp_path))
    log = open(tmp_path / "aio.log", "w")
    proc = subprocess.Popen([str(dragonfly), "all-in-one", "--config", str(config)], stdout=subprocess.PIPE, stderr=log, text=True,
                            env={"DRAGONFLY_INITIAL_ROOT_PASSWORD": "edge-password-1", "PATH": "/usr/bin:/bin"})
    try:
        origin_port = int(origin.stdout.readline().split()[1])
        line = proc.stdout.readline()
        m = re.match(r"LISTENING (\d+) MANAGER (\d+) REST (\d+) SCHEDULER (\d+) SCHEDULER_METRICS (\d+) SEED_PEER (\d+)", line)
        assert m, line + (tmp_path / "aio.log").read_text()
        node, manager, rest, scheduler, sched_metrics, seed = (int(p) for p in m.groups())
        assert len({node, manager, rest, scheduler, sched_metrics, seed}) == 6

        res = run([dfget, f"http://127.0.0.1:{origin_port}/big.bin", "-O", tmp_path / "got.bin", "--daemon",
                   f"unix:{tmp_path}/dfdaemon.sock"], timeout=120)
        assert res.returncode == 0, res.stderr + (tmp_path / "aio.log").read_text()[-3000:]
        assert (tmp_path / "got.bin").read_bytes() == content

        def scrape(port):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                return r.read().decode()
        # The seed peer fetched from the origin, the dfdaemon every byte from the seed peer.
        assert f'dragonfly_dfdaemon_download_traffic_total{{type="peer"}} {len(content)}' in scrape(node)
        assert f'dragonfly_seed_peer_download_traffic_total{{type="back_to_source"}} {len(content)}' in scrape(seed)
        assert sum(1 for l in (tmp_path / "origin.log").read_text().splitlines() if l.startswith("GET")) == 10
        assert "dragonfly_scheduler_" in scrape(sched_metrics)

        # The manager knows its scheduler and seed peer, both active, as in a cluster.
        def call(path, token=None, body=None):
            req = urllib.request.Request(f"http://127.0.0.1:{rest}{path}", data=json.dumps(body).encode() if body else None,
                                         headers={"Content-Type": "application/json",
                                                  **({"Authorization": f"Bearer {token}"} if token else {})})
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read())
        token = call("/api/v1/users/signin", body={"name": "root", "password": "edge-password-1"})["token"]
        assert [(s["port"], s["state"]) for s in call("/api/v1/schedulers", token)] == [(scheduler, "active")]
        assert [(s["port"], s["state"]) for s in call("/api/v1/seed-peers", token)] == [(seed, "active")]
        assert (tmp_path / "data" / "manager" / "manager.db").exists()
        assert (tmp_path / "data" / "seed-peer").is_dir() and (tmp_path / "data" / "dfdaemon").is_dir()

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, (tmp_path / "aio.log").read_text()[-3000:]
        # A clean stop logs no error, and goes in order: the peers leave a scheduler that is
        # still there, the scheduler stops before the manager it reports to.
        lines = (tmp_path / "aio.log").read_text().splitlines()
        assert not [l for l in lines if " ERROR " in l or " CRITICAL " in l], "\n".join(lines[-40:])
        stops = [l.split(": ", 1)[0].rsplit(" ", 1)[-1] for l in lines if l.endswith(" stopped")]
        assert stops[-1] == "manager" and stops[-2] == "scheduler", stops
        assert sorted(stops[:-2]) == ["dfdaemon", "seed-peer"], stops
    finally:
        for p in (proc, origin):
            if p.poll() is None:
                p.kill()
                p.wait()
        log.close()
