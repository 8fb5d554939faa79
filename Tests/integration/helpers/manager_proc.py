"""A manager process for tests: started on free ports, signed in to over REST."""

import collections
import os
import time
from pathlib import Path

import grpc
from dragonfly_api import manager_pb2_grpc

from conftest import Server, binary, cluster_tools

ROOT_PASSWORD = cluster_tools.ROOT_PASSWORD
REGISTRATION_SECRET_KEY = "x-dragonfly-registration-secret"


def registration_secret():
    """The secret conftest put in the environment, which every manager here requires."""
    return os.environ[cluster_tools.REGISTRATION_SECRET_VAR]


class _CallDetails(collections.namedtuple("_CallDetails", "method timeout metadata credentials wait_for_ready compression"),
                   grpc.ClientCallDetails):
    pass


class WithMetadata(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                   grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds fixed metadata to every call on a channel, as a registering scheduler would."""

    def __init__(self, *pairs):
        self.pairs = list(pairs)

    def _details(self, d):
        return _CallDetails(d.method, d.timeout, list(d.metadata or []) + self.pairs, d.credentials,
                            getattr(d, "wait_for_ready", None), getattr(d, "compression", None))

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._details(details), requests)


def registering_channel(address):
    """A channel whose calls carry the registration secret."""
    return grpc.intercept_channel(grpc.insecure_channel(address), WithMetadata((REGISTRATION_SECRET_KEY, registration_secret())))


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
        # Tests register schedulers and seed peers by hand, so this stub carries the secret.
        self.stub = manager_pb2_grpc.ManagerStub(registering_channel(self.grpc))

    def restart(self):
        self.server.stop()
        self.start()

    def stop(self):
        self.server.stop()


def wait_for(predicate, timeout=10):
    return cluster_tools.wait_for(predicate, timeout)
