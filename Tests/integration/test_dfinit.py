"""`dfdaemon init` for Docker, CRI-O and podman: the files it writes, read back by the real
podman, kept as they were in a backup, and left alone on a second run. (containerd, which
pulls through the mirror with what init wrote, is in test_registry_mirror.py.)"""

import json
import os
import shutil
import subprocess

import yaml

from conftest import binary, describe, missing, run


def init(tmp_path, config, *extra):
    path = tmp_path / "dfinit.yaml"
    path.write_text(yaml.safe_dump(config))
    return run([binary("dfdaemon"), "init", "--config", path, *extra], timeout=30)


def test_docker_daemon_json_gets_the_mirror_and_keeps_its_settings(tmp_path):
    daemon_json = tmp_path / "docker" / "daemon.json"
    daemon_json.parent.mkdir()
    original = '{"log-driver": "journald", "registry-mirrors": ["https://mirror.example"]}\n'
    daemon_json.write_text(original)
    config = {"proxy": {"addr": "http://127.0.0.1:65001"}, "containerRuntime": {"docker": {"configPath": str(daemon_json)}}}

    dry = init(tmp_path, config, "--dry-run")
    assert dry.returncode == 0, describe(dry)
    assert any(l.startswith("+") and "127.0.0.1:65001" in l for l in dry.stdout.splitlines()), dry.stdout
    assert daemon_json.read_text() == original, "--dry-run changed the file"

    res = init(tmp_path, config)
    assert res.returncode == 0, describe(res)
    got = json.loads(daemon_json.read_text())
    assert got["log-driver"] == "journald"
    assert got["registry-mirrors"] == ["http://127.0.0.1:65001", "https://mirror.example"]
    assert got["insecure-registries"] == ["127.0.0.1:65001"]
    assert (tmp_path / "docker" / "daemon.json.dfinit.bak").read_text() == original

    again = init(tmp_path, config)
    assert again.returncode == 0 and again.stdout.strip() == "nothing to change", describe(again)
    assert (tmp_path / "docker" / "daemon.json.dfinit.bak").read_text() == original, "the backup is the file before dfinit"


def test_podman_reads_the_mirror_from_the_registries_conf_init_writes(tmp_path):
    if shutil.which("podman") is None:
        missing("podman not installed (apt-get install podman)")
    conf = tmp_path / "containers" / "registries.conf"
    config = {"proxy": {"addr": "http://127.0.0.1:65001"}, "containerRuntime": {"podman": {
        "configPath": str(conf), "unqualifiedSearchRegistries": ["docker.io"],
        "registries": [{"prefix": "docker.io", "location": "registry-1.docker.io"}]}}}
    res = init(tmp_path, config)
    assert res.returncode == 0, describe(res)
    info = subprocess.run(["podman", "info", "--format", "{{json .Registries}}"], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, CONTAINERS_REGISTRIES_CONF=str(conf)))
    assert info.returncode == 0, info.stderr
    registries = json.loads(info.stdout)
    assert registries["search"] == ["docker.io"]
    assert registries["docker.io"]["Location"] == "registry-1.docker.io"
    assert [(m["Location"], m["Insecure"]) for m in registries["docker.io"]["Mirrors"]] == [("127.0.0.1:65001", True)]


def test_a_bad_config_is_named_and_nothing_is_written(tmp_path):
    target = tmp_path / "daemon.json"
    for config, words in [
        ({"containerRuntime": {"docker": {"configPath": str(target), "colour": "blue"}}}, "colour"),
        ({"containerRuntime": {"docker": {}, "podman": {}}}, "exactly one"),
        ({"proxy": {"addr": "ftp://127.0.0.1:1"}, "containerRuntime": {"docker": {"configPath": str(target)}}}, "proxy.addr"),
        ({"containerRuntime": {"containerd": {"configPath": str(tmp_path / "c.toml"),
                                              "registries": [{"hostNamespace": "../etc", "serverAddr": "https://x"}]}}}, "hostNamespace"),
    ]:
        res = init(tmp_path, config)
        assert res.returncode == 1 and words in res.stderr, (config, describe(res))
    assert not target.exists()
    target.write_text("not json")
    res = init(tmp_path, {"containerRuntime": {"docker": {"configPath": str(target)}}})
    assert res.returncode == 1 and "not a JSON object" in res.stderr, describe(res)
    assert target.read_text() == "not json"
