"""The container images, built and run: tools/build-images.sh builds each Dockerfile's
runtime stage from the release binaries (DF_RELEASE_BIN_DIR, built with the README's
command) in a private dockerd (docker.io, no bridge or iptables); the compose file's four
services then run from those images, and skopeo pulls an image through the containerised
dfdaemon's mirror, the containerised seed peer fetching it from the registry first.

The daemon has no bridge network, so the services share the host's network: the compose
file's commands, environment and mounts are used as written, with the addresses of its
`dragonfly` network and its fixed ports replaced by loopback and free ports."""

import json
import os
import re
import shutil
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT, describe, free_port, missing, run, tool

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from registry import Registry, build_image, push  # noqa: E402
from test_docker_mirror import Dockerd  # noqa: E402
from mirror_setup import PRIMARY, assert_each_byte_fetched_once, blob  # noqa: E402

MIB = 1 << 20
COMPOSE = REPO_ROOT / "docker" / "compose.yaml"
SERVICES = ("manager", "scheduler", "seed-peer", "dfdaemon")


def docker_cli():
    # Debian's docker.io client: BuildKit built in, matching the daemon's API.
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and Path(candidate).is_file():
            return candidate
    missing("docker not installed (apt-get install docker.io)")


def release_binaries():
    path = os.environ.get("DF_RELEASE_BIN_DIR")
    if not path:
        missing("DF_RELEASE_BIN_DIR not set (tools/test.sh builds the release binaries and sets it)")
    for p in ("manager", "scheduler", "dfdaemon", "dfget", "dfcache", "dfctl", "dfrpc"):
        if not (Path(path) / p).is_file():
            missing(f"no release build of {p} in {path}")
    return path


def interpolate(value):
    """Compose's ${VAR:-default} with the defaults (the test sets none of those variables)."""
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m.group(1), m.group(2)), value)


class ComposeCluster:
    """compose.yaml's services as `docker run` containers on the host's network."""

    def __init__(self, dockerd, tmp_path, registry):
        self.d = dockerd
        self.ports = {"manager-grpc": free_port(), "manager-rest": free_port(), "scheduler": free_port(),
                      "scheduler-metrics": free_port(), "seed-peer": free_port(), "dfdaemon": free_port()}
        compose = yaml.safe_load(COMPOSE.read_text())
        addresses = {name: svc["networks"]["dragonfly"]["ipv4_address"] for name, svc in compose["services"].items()
                     if isinstance(svc.get("networks"), dict) and "dragonfly" in svc["networks"]}
        flags = {
            "manager": ["--listen-ip", "127.0.0.1", "--grpc-port", str(self.ports["manager-grpc"]),
                        "--rest-port", str(self.ports["manager-rest"])],
            "scheduler": ["--listen-ip", "127.0.0.1", "--port", str(self.ports["scheduler"]),
                          "--metrics-port", str(self.ports["scheduler-metrics"])],
            "seed-peer": ["--listen-ip", "127.0.0.1", "--port", str(self.ports["seed-peer"])],
            "dfdaemon": ["--listen-ip", "127.0.0.1", "--port", str(self.ports["dfdaemon"])],
        }
        configs = tmp_path / "configs"
        configs.mkdir()
        self.containers = []
        for name in SERVICES:
            svc = compose["services"][name]
            args = ["run", "-d", "--name", f"dftest-{name}", "--network", "host"]
            if "user" in svc:
                args += ["--user", svc["user"]]
            for key, value in (svc.get("environment") or {}).items():
                args += ["-e", f"{key}={interpolate(str(value))}"]
            for volume in svc.get("volumes", []):
                source, target, *mode = volume.split(":")
                if source.startswith("./"):
                    copy = configs / Path(source).name
                    text = (COMPOSE.parent / source).read_text()
                    if name == "dfdaemon":
                        # The mirror's upstream: this test's registry instead of Docker Hub.
                        config = yaml.safe_load(text)
                        config["proxy"]["registryMirror"]["url"] = f"http://{registry.address}"
                        text = yaml.safe_dump(config)
                    copy.write_text(text)
                    copy.chmod(0o644)
                    source = str(copy)
                else:
                    source = f"dftest-{source}"  # a named volume of the test's own
                args += ["-v", ":".join([source, target, *mode])]
            command = []
            for arg in svc["command"]:
                arg = arg.replace("manager:65003", f"127.0.0.1:{self.ports['manager-grpc']}")
                arg = arg.replace("scheduler:65002", f"127.0.0.1:{self.ports['scheduler']}")
                command.append("127.0.0.1" if arg in addresses.values() else arg)
            res = self.d.docker(*args, svc["image"], *command, *flags[name], timeout=60)
            assert res.returncode == 0, describe(res)
            self.containers.append(f"dftest-{name}")
            self.wait_healthy(name)

    def http_port(self, name):
        return {"manager": self.ports["manager-rest"], "scheduler": self.ports["scheduler-metrics"],
                "seed-peer": self.ports["seed-peer"], "dfdaemon": self.ports["dfdaemon"]}[name]

    def wait_healthy(self, name):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port(name)}/healthy", timeout=2) as res:
                    if res.status == 200:
                        return
            except OSError:
                pass
            state = self.d.docker("inspect", "--format", "{{.State.Status}}", f"dftest-{name}")
            assert state.stdout.strip() == "running", self.logs(name)
            time.sleep(0.3)
        pytest.fail(f"{name} did not become healthy:\n{self.logs(name)}")

    def metrics(self, name):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port(name)}/metrics", timeout=10) as res:
            return res.read().decode()

    def logs(self, name):
        res = self.d.docker("logs", "--tail", "40", f"dftest-{name}")
        return res.stdout + res.stderr

    def stop(self):
        for c in reversed(self.containers):
            self.d.docker("rm", "-f", c, timeout=60)


def test_images_built_from_release_binaries_run_the_compose_cluster_and_serve_a_pull(tmp_path):
    binaries = release_binaries()
    tool("skopeo", "skopeo")
    tool("docker-registry", "docker-registry")
    tool("debootstrap", "debootstrap")
    cli = docker_cli()
    empty = tmp_path / "daemon.json"
    empty.write_text("{}")
    dockerd = Dockerd(empty)
    cluster = None
    reg = Registry(tmp_path / "reg", free_port())
    try:
        env = dict(os.environ, DOCKER_HOST=f"unix://{dockerd.socket}", DOCKER_CLI=cli)
        built = run(["bash", REPO_ROOT / "tools" / "build-images.sh", binaries], env=env, timeout=900)
        assert built.returncode == 0, describe(built)
        for image in ("manager", "scheduler", "dfdaemon"):
            inspect = dockerd.docker("image", "inspect", f"dragonfly-swift/{image}:dev")
            config = json.loads(inspect.stdout)[0]["Config"]
            assert config["Entrypoint"] == [f"/usr/local/bin/{image}"], config
            # The binary in the image is the release build the README makes, byte for byte.
            copied = dockerd.docker("run", "--rm", "--entrypoint", "sha256sum", f"dragonfly-swift/{image}:dev",
                                    f"/usr/local/bin/{image}")
            local = run(["sha256sum", Path(binaries) / image])
            assert copied.stdout.split()[0] == local.stdout.split()[0], describe(copied)
        # The node's CLIs ship beside the dfdaemon, the same builds.
        for client in ("dfget", "dfcache", "dfctl", "dfrpc"):
            copied = dockerd.docker("run", "--rm", "--entrypoint", "sha256sum", "dragonfly-swift/dfdaemon:dev", f"/usr/local/bin/{client}")
            local = run(["sha256sum", Path(binaries) / client])
            assert copied.stdout.split()[0] == local.stdout.split()[0], describe(copied)

        layout = tmp_path / "layout"
        img = build_image(layout, "v1", os.urandom(20 * MIB), note="images")
        push(layout, "v1", reg, "test/app")
        cluster = ComposeCluster(dockerd, tmp_path, reg)
        daemon = f"127.0.0.1:{cluster.ports['dfdaemon']}"
        conf = tmp_path / "registries.conf"
        conf.write_text(f'[[registry]]\nlocation = "{PRIMARY}"\ninsecure = true\n'
                        f'[[registry.mirror]]\nlocation = "{daemon}"\ninsecure = true\n')
        res = run(["skopeo", "--registries-conf", conf, "copy", "--quiet", f"docker://{PRIMARY}/test/app:v1",
                   f"oci:{tmp_path / 'out'}:pulled"], timeout=300)
        assert res.returncode == 0, describe(res) + cluster.logs("dfdaemon")
        assert blob(tmp_path / "out", img["layer"]) == img["layer_blob"]
        # The registry served the layer once, as the seed peer's ranged piece fetches; the
        # containerised dfdaemon got it from the containerised seed peer.
        assert_each_byte_fetched_once(reg, img["layer"], len(img["layer_blob"]))
        uploaded = re.search(r"^dragonfly_dfdaemon_upload_traffic_total (\S+)", cluster.metrics("seed-peer"), re.M)
        assert uploaded and float(uploaded.group(1)) >= len(img["layer_blob"]), cluster.metrics("seed-peer")[-2000:]
        assert 'dragonfly_dfdaemon_proxy_request_total{type="p2p",result="success"}' in cluster.metrics("dfdaemon")
    finally:
        if cluster:
            cluster.stop()
        dockerd.stop()
        reg.stop()
