"""Docker pulling through the mirror: Debian's dockerd (docker.io), run as private daemons
of the test's own (no bridge, no iptables, their own roots and sockets), configured by
`dfdaemon init` with `registry-mirrors`, pull a Docker Hub-named image that a local
docker-registry serves behind our dfdaemons."""

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import binary, describe, free_port, run, stop_process, tool

HELPERS = Path(__file__).parent / "helpers"
sys.path.insert(0, str(HELPERS))
from registry import Registry, build_image, push  # noqa: E402
from mirror_setup import assert_each_byte_fetched_once, blob, mirror_for  # noqa: E402,F401 (a fixture)

MIB = 1 << 20


class Dockerd:
    """A dockerd of the test's own. Registry traffic other than the mirror's goes to a proxy
    on port 1, where nothing listens: a fallback to Docker Hub fails here instead of leaving
    the machine."""

    def __init__(self, daemon_json):
        dockerd = tool("dockerd", "docker.io")
        # Short: containerd's sockets live under the exec root (unix paths max 108 bytes).
        self.root = Path(tempfile.mkdtemp(prefix="dfdk", dir="/tmp"))
        self.socket = self.root / "docker.sock"
        env = dict(os.environ, HTTP_PROXY="http://127.0.0.1:1", HTTPS_PROXY="http://127.0.0.1:1",
                   NO_PROXY="127.0.0.1,localhost")
        self._log = open(self.root / "dockerd.log", "w")
        self.proc = subprocess.Popen(
            [dockerd, "--config-file", daemon_json, "--data-root", self.root / "data", "--exec-root", self.root / "exec",
             "--pidfile", self.root / "dockerd.pid", "--host", f"unix://{self.socket}", "--bridge=none",
             "--iptables=false", "--ip-masq=false", "--storage-driver", "vfs"],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.docker("version").returncode == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.3)
        log = (self.root / "dockerd.log").read_text()[-3000:]
        self.stop()
        pytest.fail(f"dockerd did not come up:\n{log}")

    def docker(self, *args, timeout=60):
        return run(["docker", "-H", f"unix://{self.socket}", *args], timeout=timeout)

    def stop(self):
        # dockerd stops the containerd it started, but leaves its network namespace
        # bind-mounted under the exec root.
        stop_process(self.proc, grace=30)
        self._log.close()
        netns = self.root / "exec" / "netns" / "default"
        if os.path.ismount(netns):
            subprocess.run(["umount", netns], capture_output=True, timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def dockerds():
    started = []

    def start(daemon_json):
        started.append(Dockerd(daemon_json))
        return started[-1]
    yield start
    for d in started:
        d.stop()


def layer_file(saved):
    """data.bin from the one layer of a `docker save` archive."""
    with tarfile.open(saved) as archive:
        layers = [n for n in archive.getnames() if n.endswith("layer.tar")]
        assert len(layers) == 1, archive.getnames()
        with tarfile.open(fileobj=archive.extractfile(layers[0])) as layer:
            return layer.extractfile("data.bin").read()


def dfinit_for_docker(tmp_path, name, daemon):
    """daemon.json for one Docker host, written by `dfdaemon init` as on a node."""
    daemon_json = tmp_path / name / "daemon.json"
    daemon_json.parent.mkdir(parents=True)
    daemon_json.write_text(json.dumps({"log-level": "info", "max-concurrent-downloads": 3}))
    config = tmp_path / f"dfinit-{name}.yaml"
    config.write_text(yaml.safe_dump({"proxy": {"addr": f"http://{daemon.address}"},
                                      "containerRuntime": {"docker": {"configPath": str(daemon_json)}}}))
    res = run([binary("dfdaemon"), "init", "--config", config], timeout=30)
    assert res.returncode == 0, describe(res)
    written = json.loads(daemon_json.read_text())
    assert written["registry-mirrors"] == [f"http://{daemon.address}"]
    assert written["insecure-registries"] == [daemon.address]
    assert written["max-concurrent-downloads"] == 3, "dfinit keeps the host's other settings"
    return daemon_json


def test_two_docker_hosts_pull_a_hub_image_through_p2p_the_registry_serves_each_blob_once(tmp_path, mirror_for, dockerds):
    tool("skopeo", "skopeo")
    tool("docker-registry", "docker-registry")
    layout = tmp_path / "layout"
    img = build_image(layout, "v1", os.urandom(24 * MIB), note="docker")
    reg = Registry(tmp_path / "reg", free_port())
    try:
        # Docker Hub's name for an official image: `docker pull app:v1` asks for library/app.
        push(layout, "v1", reg, "library/app")
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(img["layer_blob"]))) as layer:
            expected = layer.extractfile("data.bin").read()
        # Without the mirror the pull has nowhere to go: Docker Hub is out of reach by design,
        # so a pull that succeeds below went through our dfdaemon.
        plain = tmp_path / "plain.json"
        plain.write_text("{}")
        docker = dockerds(plain)
        res = docker.docker("pull", "app:v1", timeout=120)
        assert res.returncode != 0, describe(res)
        docker.stop()
        m = mirror_for(reg.address)
        a, b = m.daemon("a"), m.daemon("b")
        for name, daemon in (("host-a", a), ("host-b", b)):
            docker = dockerds(dfinit_for_docker(tmp_path, name, daemon))
            res = docker.docker("pull", "app:v1", timeout=300)
            assert res.returncode == 0, describe(res) + Path(daemon.log_path).read_text()[-2000:]
            image_id = docker.docker("image", "inspect", "--format", "{{.Id}}", "app:v1")
            assert image_id.stdout.strip() == img["config"], describe(image_id)
            # The layer as Docker stored it holds the file we put in, byte for byte.
            saved = docker.docker("save", "-o", tmp_path / f"{name}.tar", "app:v1", timeout=120)
            assert saved.returncode == 0, describe(saved)
            assert layer_file(tmp_path / f"{name}.tar") == expected
            metrics = urllib.request.urlopen(f"http://{daemon.address}/metrics", timeout=10).read().decode()
            assert 'dragonfly_dfdaemon_proxy_request_total{type="p2p",result="success"}' in metrics, \
                "Docker's blob requests went through the mirror as P2P tasks"
            docker.stop()
            time.sleep(0.5)  # a's last piece reports reach the scheduler before b asks
        # Two Docker hosts, one copy of each blob from the registry: b's came from a.
        assert_each_byte_fetched_once(reg, img["layer"], len(img["layer_blob"]))
        assert_each_byte_fetched_once(reg, img["config"], len(blob(layout, img["config"])))
    finally:
        reg.stop()
