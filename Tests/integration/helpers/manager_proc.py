"""A manager process for tests: started on free ports, signed in to over REST."""

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
from dragonfly_api import manager_pb2_grpc

from conftest import Server, binary

ROOT_PASSWORD = "root-password-1"


class Manager:
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

    def call(self, method, path, body=None, token=None):
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
        assert status == 200, body
        return body["token"]

    def stop(self):
        self.server.stop()


def wait_for(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()
