"""A parent that dies in the middle of serving a child: the child must still finish with
the right bytes (new parents, or the origin), never a failed or corrupt download."""

import os
import signal
import sys
import threading
import time
from pathlib import Path

from conftest import Server, binary, describe, run
from dfdaemon_cluster import uploaded_bytes, wait_for_hosts

HELPERS = Path(__file__).parent / "helpers"
PIECE = 4 << 20


def test_parent_dies_midway_child_recovers(tmp_path):
    content = os.urandom(12 * PIECE)
    (tmp_path / "origin").mkdir()
    (tmp_path / "origin" / "big.bin").write_bytes(content)
    # Every GET takes 0.8 s, so the parent is still fetching when the child joins it.
    origin = Server([sys.executable, HELPERS / "range_origin.py", "0", tmp_path / "origin", "0.8"], tmp_path / "o.log")
    sched = Server([binary("scheduler"), "--port", "0", "--metrics-port", "0", "--listen-ip", "127.0.0.1",
                    "--data-dir", tmp_path / "s"], tmp_path / "s.log")
    daemons = {}
    try:
        for name in ("parent", "child"):
            daemons[name] = Server([binary("dfdaemon"), "--port", "0", "--listen-ip", "127.0.0.1", "--hostname", name,
                                    "--scheduler", sched.address, "--data-dir", tmp_path / name,
                                    "--unix-socket", tmp_path / f"{name}.sock"], tmp_path / f"{name}.log")
        wait_for_hosts(sched.address, 2)
        url = f"http://{origin.address}/big.bin"
        results = {}

        def fetch(name):
            results[name] = run([binary("dfget"), url, "-O", tmp_path / f"{name}.out", "--daemon",
                                 f"unix:{tmp_path}/{name}.sock", "--quiet"], timeout=120)

        parent_job = threading.Thread(target=fetch, args=("parent",))
        parent_job.start()
        # The child joins once the parent has a piece to offer, and the parent is killed
        # only once it has served the child some bytes: the child was fetching from it.
        deadline = time.monotonic() + 60
        while "download started" not in (tmp_path / "parent.log").read_text():
            assert time.monotonic() < deadline, "the parent never started"
            time.sleep(0.05)
        child_job = threading.Thread(target=fetch, args=("child",))
        child_job.start()
        while uploaded_bytes(daemons["parent"]) == 0:
            assert time.monotonic() < deadline and child_job.is_alive(), "the child never fetched from the parent"
            time.sleep(0.05)
        daemons["parent"].proc.send_signal(signal.SIGKILL)  # dies without a word to anyone
        child_job.join(timeout=150)
        parent_job.join(timeout=150)
        assert not child_job.is_alive()
        res = results["child"]
        assert res.returncode == 0, describe(res) + Path(tmp_path / "child.log").read_text()[-2000:]
        assert (tmp_path / "child.out").read_bytes() == content
    finally:
        for d in daemons.values():
            d.stop()
        sched.stop()
        origin.stop()
