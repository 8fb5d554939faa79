"""Parents are chosen per piece by measured speed (issue 18): with two parents, one
throttled to a tenth of the other's upload rate, the fast one serves most pieces and the
download takes at most 1.3 x the time the fast parent alone needs."""

import os
import re
import time
import urllib.request

from conftest import describe
from dfdaemon_cluster import Cluster

MIB = 1 << 20

FAST = "upload:\n  rateLimit: 20Mi\n"
SLOW = "upload:\n  rateLimit: 2Mi\n"


def uploaded(daemon):
    text = urllib.request.urlopen(f"http://{daemon.address}/metrics", timeout=10).read().decode()
    m = re.search(r"^dragonfly_dfdaemon_upload_traffic_total(?:\{[^}]*\})? (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def timed_dfget(c, daemon, name):
    start = time.monotonic()
    res, out = c.dfget(daemon, name)
    return time.monotonic() - start, res, out


def test_a_parent_ten_times_slower_takes_few_pieces_and_costs_little_time(tmp_path):
    data = os.urandom(80 * MIB)  # 20 pieces of 4 MiB
    clusters = []
    try:
        # The fast parent alone: one cluster, parent "a", child "ref".
        (tmp_path / "alone").mkdir()
        alone = Cluster(tmp_path / "alone", {"f.bin": data})
        clusters.append(alone)
        alone.daemon("a", config=FAST)
        alone.wait_for_hosts(1)
        res, _ = alone.dfget("a", "f.bin")
        assert res.returncode == 0, describe(res)
        alone.daemon("ref")
        time.sleep(1.5)  # the upload budget saved up while idle is the same in both runs
        fast_alone, res, out = timed_dfget(alone, "ref", "f.bin")
        assert res.returncode == 0 and out.read_bytes() == data, describe(res)

        # Both parents: a second cluster, parents "a" (fast) and "b" (a tenth of its rate).
        (tmp_path / "both").mkdir()
        both = Cluster(tmp_path / "both", {"f.bin": data})
        clusters.append(both)
        a = both.daemon("a", config=FAST)
        b = both.daemon("b", config=SLOW)
        both.wait_for_hosts(2)
        for name in ("a", "b"):
            res, _ = both.dfget(name, "f.bin")
            assert res.returncode == 0, describe(res)
        both.daemon("c")
        time.sleep(1.5)
        before = {"a": uploaded(a), "b": uploaded(b)}
        gets_before = len(both.origin_gets("f.bin"))
        with_slow, res, out = timed_dfget(both, "c", "f.bin")
        assert res.returncode == 0 and out.read_bytes() == data, describe(res)
        served = {name: uploaded(d) - before[name] for name, d in (("a", a), ("b", b))}
        print(f"fast parent alone: {fast_alone:.2f} s; with a parent at a tenth of its rate: {with_slow:.2f} s "
              f"({with_slow / fast_alone:.2f} x); bytes served: fast {served['a'] / MIB:.0f} MiB, slow {served['b'] / MIB:.0f} MiB")
        assert len(both.origin_gets("f.bin")) == gets_before, "every piece came from the parents"
        assert served["a"] + served["b"] >= len(data)
        assert served["a"] > 0.75 * len(data), f"the fast parent served most pieces: {served}"
        assert with_slow <= 1.3 * fast_alone, f"{with_slow:.2f} s against {fast_alone:.2f} s from the fast parent alone"
    finally:
        for c in clusters:
            c.stop()
