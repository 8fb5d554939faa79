"""Load on one dfdaemon: 200 concurrent clients pulling 20 tasks through its mirror for a
bounded time (DF_LOAD_SECONDS, default 60). Every response must be whole and right; the
daemon's open files and memory are printed before, after, and once it has settled, and
must come back down."""

import hashlib
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path

from conftest import Server, binary

HELPERS = Path(__file__).parent / "helpers"
CLIENTS, TASKS = 200, 20
SECONDS = float(os.environ.get("DF_LOAD_SECONDS", "60"))


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_200_clients_on_20_tasks(tmp_path, capsys):
    (tmp_path / "origin").mkdir()
    sums = {}
    for i in range(TASKS):
        data = os.urandom((256 << 10) + i * 4096)
        (tmp_path / "origin" / f"t{i}.bin").write_bytes(data)
        sums[i] = hashlib.sha256(data).hexdigest()
    origin = Server([sys.executable, HELPERS / "range_origin.py", "0", tmp_path / "origin"], tmp_path / "origin.log")
    config = tmp_path / "d.yaml"
    config.write_text(f"proxy:\n  registryMirror:\n    url: http://{origin.address}\n  rules:\n    - regex: 't[0-9]+\\.bin$'\n"
                      "upload:\n  concurrentLimit: 500\n")
    daemon = Server([binary("dfdaemon"), "--config", config, "--port", "0", "--listen-ip", "127.0.0.1",
                     "--data-dir", tmp_path / "d", "--unix-socket", ""], tmp_path / "d.log")
    pid = daemon.proc.pid
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": f"http://{daemon.address}"}))
    # Warm: every task fetched once, so the load measures serving, not the origin.
    for i in range(TASKS):
        with opener.open(f"http://{origin.address}/t{i}.bin", timeout=60) as res:
            assert hashlib.sha256(res.read()).hexdigest() == sums[i]
    before = (fds(pid), rss_mib(pid))

    stop = time.monotonic() + SECONDS
    counts, errors = [0] * CLIENTS, []

    def client(n):
        i = n % TASKS
        while time.monotonic() < stop and len(errors) < 20:
            try:
                with opener.open(f"http://{origin.address}/t{i}.bin", timeout=60) as res:
                    body = res.read()
                if hashlib.sha256(body).hexdigest() != sums[i]:
                    errors.append(f"client {n}: wrong bytes for t{i} ({len(body)} bytes)")
                counts[n] += 1
            except Exception as err:  # any failure is an error of the run
                errors.append(f"client {n}: {err!r}")
            i = (i + 1) % TASKS

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    start = time.monotonic()
    for t in threads:
        t.start()
    peak_fds = before[0]
    while any(t.is_alive() for t in threads):
        peak_fds = max(peak_fds, fds(pid))
        time.sleep(0.5)
    for t in threads:
        t.join(timeout=120)
    elapsed = time.monotonic() - start
    during = (peak_fds, rss_mib(pid))
    time.sleep(3)  # let closed connections go
    after = (fds(pid), rss_mib(pid))
    total = sum(counts)
    with capsys.disabled():
        print(f"\nload: {CLIENTS} clients, {TASKS} tasks, {elapsed:.0f} s: {total} responses ({total / elapsed:.0f}/s), "
              f"{len(errors)} errors; daemon fds {before[0]} -> peak {during[0]} -> {after[0]}, "
              f"RSS {before[1]:.0f} -> {during[1]:.0f} -> {after[1]:.0f} MiB")
    assert not errors, errors[:5]
    assert all(c > 0 for c in counts), "every client was served"
    daemon.assert_alive()
    assert after[0] <= before[0] + 10, f"file descriptors left open: {before[0]} before, {after[0]} after"
    assert after[1] <= before[1] + 256, f"memory grew from {before[1]:.0f} to {after[1]:.0f} MiB"
    daemon.stop()
    origin.stop()
