"""A whole local cluster for tests: an origin, the manager, a scheduler registered with it,
a seed peer and a dfdaemon that are given only the manager's address."""

import os
import sys
import time
from pathlib import Path

from conftest import Server, binary, run
from manager_proc import Manager, wait_for

HELPERS = Path(__file__).parent
MIB = 1 << 20
SIZE = 12 * MIB


class LocalCluster:
    """Origin, manager, a scheduler registered with it, a seed peer and a dfdaemon that know
    only the manager. By default the dfdaemon logs JSON and mirrors the origin with a P2P
    rule for model.bin; `mirror` points its mirror elsewhere (a registry) instead."""

    def __init__(self, root, mirror=None, node_args=("--log-format", "json", "--log-level", "debug")):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "origin").mkdir()
        self.content = os.urandom(SIZE)
        (self.root / "origin" / "model.bin").write_bytes(self.content)
        self.servers = []
        self.origin = self.server("origin", [sys.executable, HELPERS / "range_origin.py", "0", self.root / "origin"])
        self.manager = Manager(self.root / "manager")
        self.sched = self.server("sched", [binary("scheduler"), "--port", "0", "--metrics-port", "0", "--listen-ip", "127.0.0.1",
                                           "--advertise-ip", "127.0.0.1", "--data-dir", self.root / "s",
                                           "--manager", self.manager.grpc])
        self.seed = self.daemon("seed", "--seed-peer")
        config = self.root / "node.yaml"
        if mirror:
            config.write_text(f"proxy:\n  registryMirror:\n    url: http://{mirror}\n")
        else:
            config.write_text(f"proxy:\n  registryMirror:\n    url: http://{self.origin.address}\n"
                              "  rules:\n    - regex: 'model\\.bin$'\n")
        self.node = self.daemon("node", "--config", config, *node_args)
        self.token = self.manager.sign_in()
        assert wait_for(lambda: [s["state"] for s in self.manager.call("GET", "/api/v1/seed-peers", token=self.token)[1]] == ["active"])
        for name in ("seed", "node"):
            assert wait_for(lambda: "names schedulers" in (self.root / f"{name}.log").read_text()), name
        time.sleep(0.5)

    def server(self, name, args):
        s = Server(args, self.root / f"{name}.log")
        self.servers.append(s)
        return s

    def daemon(self, name, *extra):
        return self.server(name, [binary("dfdaemon"), "--port", "0", "--listen-ip", "127.0.0.1", "--ip", "127.0.0.1",
                                  "--hostname", name, "--manager", self.manager.grpc, "--data-dir", self.root / name,
                                  "--unix-socket", self.root / f"{name}.sock", *extra])

    def dfget(self, out, *extra, url=None):
        return run([binary("dfget"), url or f"http://{self.origin.address}/model.bin", "-O", out,
                    "--daemon", f"unix:{self.root}/node.sock", *extra], timeout=120)

    def endpoints(self):
        return {
            "manager": f"{self.manager.rest}/metrics",
            "scheduler": f"http://127.0.0.1:{self.sched.metrics_port}/metrics",
            "seed": f"http://{self.seed.address}/metrics",
            "dfdaemon": f"http://{self.node.address}/metrics",
        }

    def stop(self):
        for s in reversed(self.servers):
            s.stop()
        self.manager.stop()
