"""A manager process for tests: started on free ports, signed in to over REST."""

import os
import time
from pathlib import Path

import grpc
from dragonfly_api import manager_pb2_grpc

from conftest import Server, binary, cluster_tools

ROOT_PASSWORD = cluster_tools.ROOT_PASSWORD


class Manager(cluster_tools.ManagerREST):
    def __init__(self, root, database_url=None):
        self.root = Path(root)
        self.database_url = database_url
        self.ports = (0, 0)
        self.start()

    def start(self):
        """Starts (or restarts) the manager; a restart keeps the ports of the first start."""
        args = [binary("manager"), "--grpc-port", self.ports[0], "--rest-port", self.ports[1], "--listen-ip", "127.0.0.1",
                "--data-dir", self.root]
        if self.database_url:
            args += ["--database-url", self.database_url]
        env = dict(os.environ, DRAGONFLY_INITIAL_ROOT_PASSWORD=ROOT_PASSWORD)
        log = self.root.with_suffix(".log")
        if log.exists():
            log.rename(log.with_suffix(f".{int(time.time() * 1000)}.log"))
        self.server = Server(args, log, env=env)
        self.ports = (self.server.port, self.server.metrics_port)
        self.grpc = self.server.address
        self.rest = f"http://127.0.0.1:{self.server.metrics_port}"
        self.stub = manager_pb2_grpc.ManagerStub(grpc.insecure_channel(self.grpc))

    def restart(self):
        self.server.stop()
        self.start()

    def stop(self):
        self.server.stop()


def wait_for(predicate, timeout=10):
    return cluster_tools.wait_for(predicate, timeout)
