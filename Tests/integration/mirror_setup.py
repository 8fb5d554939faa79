"""The registry mirror's test setup: an image in an OCI layout, Debian's docker-registry
serving it, and a scheduler with dfdaemons whose mirror points at an upstream."""

import http.client
import os
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import Server, binary, free_port, run, tool

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from registry import Registry, build_image, push  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "docker"
MIB = 1 << 20
# Nothing listens on port 1: a puller that bypassed the mirror would fail, not hide it.
PRIMARY = "127.0.0.1:1"


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    tool("skopeo", "skopeo")
    tool("docker-registry", "docker-registry")
    layout = tmp_path_factory.mktemp("oci") / "layout"
    big = build_image(layout, "v1", os.urandom(64 * MIB), note="big")
    return layout, big


@pytest.fixture(scope="module")
def registry(tmp_path_factory, image):
    layout, _ = image
    reg = Registry(tmp_path_factory.mktemp("registry"), free_port())
    push(layout, "v1", reg, "test/app")
    yield reg
    reg.stop()


class Mirror:
    """A scheduler and dfdaemons whose mirror points at `upstream`."""

    def __init__(self, root, upstream, proxy_yaml=""):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.upstream = upstream
        self.proxy_yaml = proxy_yaml
        self.sched = Server([binary("scheduler"), "--port", "0", "--metrics-port", "0", "--listen-ip", "127.0.0.1",
                             "--data-dir", self.root / "sched"], self.root / "sched.log")
        self.daemons = {}

    def daemon(self, name, proxy_yaml=None):
        config = self.root / f"{name}.yaml"
        config.write_text(f"proxy:\n  registryMirror:\n    url: http://{self.upstream}\n" + (proxy_yaml or self.proxy_yaml))
        self.daemons[name] = Server([binary("dfdaemon"), "--config", config, "--port", "0", "--listen-ip", "127.0.0.1",
                                     "--hostname", name, "--scheduler", self.sched.address, "--data-dir", self.root / name,
                                     "--unix-socket", self.root / f"{name}.sock", "--log-level", "trace"],
                                    self.root / f"{name}.log")
        return self.daemons[name]

    def registries_conf(self, daemon):
        """docker/podman/registries.conf, with this test's addresses."""
        path = self.root / f"registries-{daemon.port}.conf"
        example = (EXAMPLES / "podman" / "registries.conf").read_text()
        assert 'location = "docker.io"' in example and 'location = "127.0.0.1:65001"' in example
        path.write_text(example.replace('location = "docker.io"', f'location = "{PRIMARY}"\ninsecure = true')
                        .replace('location = "127.0.0.1:65001"', f'location = "{daemon.address}"'))
        return path

    def skopeo(self, daemon, ref, out, *extra, timeout=300):
        return run(["skopeo", "--registries-conf", self.registries_conf(daemon), "copy", "--quiet", *extra,
                    f"docker://{PRIMARY}/{ref}", f"oci:{out}:pulled"], timeout=timeout)

    def stop(self):
        for s in [*self.daemons.values(), self.sched]:
            s.stop()


@pytest.fixture
def mirror_for(tmp_path):
    made = []

    def make(upstream, proxy_yaml=""):
        m = Mirror(tmp_path / f"m{len(made)}", upstream, proxy_yaml)
        made.append(m)
        return m
    yield make
    for m in made:
        m.stop()


def blob(layout, digest):
    return (Path(layout) / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()


def assert_each_byte_fetched_once(reg, digest, size):
    gets = reg.blob_gets(digest)
    assert gets, f"the registry never served {digest}"
    assert all(status == 206 for _, _, status, _ in gets), f"only ranged piece fetches, no whole-blob GETs: {gets}"
    assert sum(n for *_, n in gets) == size, f"{digest}: {len(gets)} GETs, {sum(n for *_, n in gets)} bytes for {size}"


def request(daemon, method, path, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    conn.request(method, path, headers=headers or {})
    res = conn.getresponse()
    return res, res.read(), conn


def metrics_showing(daemon, *needles, timeout=30):
    """The daemon's metrics once they show all of `needles`, or as they are when `timeout`
    passes: a request is counted just after its response went out, so a client can be done
    before the count shows. Fresh-clone CI runs failed here twice with no direct request
    counted as a success even after 30 s: skopeo closes as soon as it has read a response's
    declared length, and the responses were counted as failed when that close came before
    the server wrote the end (Tests/HTTPServingTests/ResponseWriterEndTests.swift). A third
    counted its `/v2/` ping as failed: it hangs up after the head, before the body
    (test_mirror_http.py::test_a_client_that_hangs_up_after_the_head_is_not_a_failed_request)."""
    deadline = time.monotonic() + timeout
    while True:
        metrics = urllib.request.urlopen(f"http://{daemon.address}/metrics", timeout=10).read().decode()
        if all(n in metrics for n in needles) or time.monotonic() > deadline:
            return metrics
        time.sleep(0.1)
