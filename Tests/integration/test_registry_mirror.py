"""The registry mirror on the dfdaemon's port, with real registries and real pullers:
Debian's docker-registry as the upstream (open and behind htpasswd), skopeo and
containerd's ctr pulling through our daemons."""

import base64
import json
import re
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import Server, binary, describe, free_port, run, stop_process, tool
from dfdaemon_cluster import wait_for_finished_peers, wait_for_hosts

HELPERS = Path(__file__).parent / "helpers"
sys.path.insert(0, str(HELPERS))
from registry import Registry, build_image, push  # noqa: E402
from mirror_setup import (EXAMPLES, MIB, PRIMARY, Mirror, assert_each_byte_fetched_once, blob,  # noqa: E402,F401 (fixtures)
                          image, metrics_showing, mirror_for, registry, request)


def test_skopeo_pulls_byte_identical_layers_through_p2p(image, registry, mirror_for):
    layout, big = image
    m = mirror_for(registry.address)
    a = m.daemon("a")
    out = m.root / "out"
    res = m.skopeo(a, "test/app:v1", out)
    assert res.returncode == 0, describe(res) + Path(a.log_path).read_text()[-3000:]
    assert blob(out, big["layer"]) == big["layer_blob"]
    assert blob(out, big["config"]) == blob(layout, big["config"])
    assert_each_byte_fetched_once(registry, big["layer"], len(big["layer_blob"]))
    metrics = metrics_showing(a, 'dragonfly_dfdaemon_proxy_request_total{type="p2p",result="success"} 2\n',
                              'dragonfly_dfdaemon_proxy_request_total{type="direct",result="success"} 2\n')
    mirror_log = [line for line in Path(a.log_path).read_text().splitlines() if "mirror " in line and " /metrics " not in line]
    counted = "\n".join(line for line in metrics.splitlines() if "proxy_request_total" in line)
    assert 'dragonfly_dfdaemon_proxy_request_total{type="p2p",result="success"} 2' in metrics, counted
    assert 'dragonfly_dfdaemon_proxy_request_total{type="direct",result="success"} 2' in metrics, counted + "\n" + "\n".join(mirror_log)


def test_two_daemons_pull_one_image_the_registry_serves_each_blob_once(image, tmp_path, mirror_for):
    layout, big = image
    reg = Registry(tmp_path / "reg", free_port())
    try:
        push(layout, "v1", reg, "test/app")
        m = mirror_for(reg.address)
        a, b = m.daemon("a"), m.daemon("b")
        wait_for_hosts(m.sched.address, 2)
        finished_downloads = 0
        for d, name in ((a, "a"), (b, "b")):
            res = m.skopeo(d, "test/app:v1", m.root / f"out-{name}")
            assert res.returncode == 0, describe(res)
            assert blob(m.root / f"out-{name}", big["layer"]) == big["layer_blob"]
            # b is offered a as the parent of each blob once the scheduler has all of a's pieces.
            finished_downloads += len(re.findall(r"download finished ", Path(d.log_path).read_text()))
            wait_for_finished_peers(m.sched.metrics_port, finished_downloads)
        assert_each_byte_fetched_once(reg, big["layer"], len(big["layer_blob"]))
        assert_each_byte_fetched_once(reg, big["config"], len(blob(layout, big["config"])))
    finally:
        reg.stop()


def test_a_retagged_image_is_seen_by_the_next_pull(tmp_path, registry, mirror_for):
    layout = tmp_path / "retag"
    first = build_image(layout, "v1", os.urandom(MIB), note="first")
    push(layout, "v1", registry, "test/retag")
    m = mirror_for(registry.address)
    a = m.daemon("a")
    res = m.skopeo(a, "test/retag:v1", tmp_path / "o1")
    assert res.returncode == 0, describe(res)
    second = build_image(layout, "v1", os.urandom(MIB), note="second")
    push(layout, "v1", registry, "test/retag")
    res = m.skopeo(a, "test/retag:v1", tmp_path / "o2")
    assert res.returncode == 0, describe(res)
    index = json.loads((tmp_path / "o2" / "index.json").read_text())
    assert [x["digest"] for x in index["manifests"]] == [second["manifest"]], (first["manifest"], index)
    assert blob(tmp_path / "o2", second["layer"]) == second["layer_blob"]


def test_a_wrong_digest_blob_fails_the_pull_and_is_not_cached(tmp_path, mirror_for):
    layout = tmp_path / "img"
    img = build_image(layout, "v1", os.urandom(9 * MIB), note="corrupt")
    reg = Registry(tmp_path / "reg", free_port())
    try:
        push(layout, "v1", reg, "test/bad")
        stored = reg.blob_file(img["layer"])
        good = stored.read_bytes()
        stored.write_bytes(good[:1000] + bytes([good[1000] ^ 0xFF]) + good[1001:])
        m = mirror_for(reg.address)
        a = m.daemon("a")
        res = m.skopeo(a, "test/bad:v1", tmp_path / "o1", timeout=120)
        assert res.returncode != 0, "a corrupt layer must not pull"
        log = Path(a.log_path).read_text()
        assert "digest" in log, log[-3000:]
        metadata = list((m.root / "a" / "metadata").glob("*.json")) if (m.root / "a" / "metadata").exists() else []
        assert not any(json.loads(p.read_text()).get("finished") for p in metadata), "nothing corrupt is cached"
        # The registry is repaired: the same daemon now pulls it, fetching it afresh.
        stored.write_bytes(good)
        res = m.skopeo(a, "test/bad:v1", tmp_path / "o2")
        assert res.returncode == 0, describe(res) + Path(a.log_path).read_text()[-2000:]
        assert blob(tmp_path / "o2", img["layer"]) == img["layer_blob"]
    finally:
        reg.stop()


def pull_with_configured_login(mirror_for, reg, user, password, big, out):
    """A daemon holding the registry login pulls private/app:v1 for a client that has none."""
    m = mirror_for(reg.address)
    a = m.daemon("a", proxy_yaml=f"  registries:\n    - url: http://{reg.address}\n      username: {user}\n"
                                 f"      password: {password}\n")
    res = m.skopeo(a, "private/app:v1", out)
    assert res.returncode == 0, describe(res) + Path(a.log_path).read_text()[-2000:]
    assert blob(out, big["layer"]) == big["layer_blob"]
    return m, a


def test_basic_auth_registry_with_credentials_in_the_config(tmp_path, image, mirror_for):
    layout, big = image
    reg = Registry(tmp_path / "reg", free_port(), users={"alice": "s3cret"})
    try:
        push(layout, "v1", reg, "private/app", creds="alice:s3cret")
        m, a = pull_with_configured_login(mirror_for, reg, "alice", "s3cret", big, tmp_path / "o1")
        # Without configured credentials the client's own Authorization passes through.
        b = m.daemon("b")
        res = m.skopeo(b, "private/app:v1", tmp_path / "o2")
        assert res.returncode != 0, "no credentials anywhere: the registry refuses"
        # containers/image never sends --src-creds to a mirror; credentials for the mirror's
        # own address in an auth file are what a client would use.
        authfile = tmp_path / "auth.json"
        token = base64.b64encode(b"alice:s3cret").decode()
        authfile.write_text(json.dumps({"auths": {b.address: {"auth": token}}}))
        res = m.skopeo(b, "private/app:v1", tmp_path / "o3", "--src-authfile", authfile)
        assert res.returncode == 0, describe(res)
        assert blob(tmp_path / "o3", big["layer"]) == big["layer_blob"]
        assert_no_secrets_logged([a.log_path, b.log_path], ["s3cret", token, "Basic "])
    finally:
        reg.stop()


def assert_no_secrets_logged(paths, secrets):
    """Neither the password, nor the header carrying it, appears in the logs, at trace level."""
    for path in paths:
        log = Path(path).read_text()
        assert "mirror GET" in log, "the log covers the pull"
        for secret in secrets:
            assert secret not in log, f"{secret!r} logged in {path}"
        assert not re.search(r"authorization\s*[:=]", log, re.I), f"an Authorization header logged in {path}"


def test_when_p2p_cannot_start_the_blob_comes_straight_from_upstream(image, registry, mirror_for):
    layout, big = image
    m = mirror_for(registry.address)
    a = m.daemon("a")
    # Sabotage the store: a file where the metadata directory should be.
    meta = m.root / "a" / "metadata"
    shutil.rmtree(meta, ignore_errors=True)
    meta.write_text("not a directory")
    res = m.skopeo(a, "test/app:v1", m.root / "out")
    assert res.returncode == 0, describe(res) + Path(a.log_path).read_text()[-2000:]
    assert blob(m.root / "out", big["layer"]) == big["layer_blob"]
    assert "going to the upstream directly" in Path(a.log_path).read_text()


class Containerd:
    """A containerd of the test's own: root, state and sockets under its directory."""

    def __init__(self, root, prepare=None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket = self.root / "containerd.sock"
        disabled = ", ".join(f'"io.containerd.{p}"' for p in (
            "grpc.v1.cri", "snapshotter.v1.btrfs", "snapshotter.v1.zfs", "snapshotter.v1.aufs", "snapshotter.v1.devmapper"))
        (self.root / "config.toml").write_text(
            f'version = 2\nroot = "{self.root / "root"}"\nstate = "{self.root / "state"}"\n'
            f"disabled_plugins = [{disabled}]\n"
            f'[grpc]\n  address = "{self.socket}"\n[ttrpc]\n  address = "{self.root / "ttrpc.sock"}"\n'
            f'[debug]\n  address = ""\n[metrics]\n  address = ""\n'
            f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{self.root / "opt"}"\n')
        if prepare:
            prepare(self.root / "config.toml")  # e.g. dfdaemon init editing it, as on a node
        self._log = open(self.root / "containerd.log", "w")
        self.proc = subprocess.Popen(["containerd", "--config", self.root / "config.toml"], stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.ctr("version").returncode == 0:
                return
            assert self.proc.poll() is None, (self.root / "containerd.log").read_text()[-2000:]
            time.sleep(0.2)
        pytest.fail("containerd did not come up")

    def ctr(self, *args, timeout=60):
        return run(["ctr", "-a", self.socket, "-n", "dftest", *args], timeout=timeout)

    def stop(self):
        stop_process(self.proc, grace=15)
        self._log.close()


def test_containerd_pulls_through_the_mirror_with_a_hosts_toml(image, tmp_path, mirror_for):
    tool("containerd", "containerd")
    layout, big = image
    reg = Registry(tmp_path / "reg", free_port())
    ctrd = None
    try:
        push(layout, "v1", reg, "test/app")
        m = mirror_for(reg.address)
        a = m.daemon("a")
        hosts = tmp_path / "certs.d" / reg.address
        hosts.mkdir(parents=True)
        # docker/containerd's hosts.toml, pointed at this test's registry and daemon.
        example = (EXAMPLES / "containerd" / "certs.d" / "docker.io" / "hosts.toml").read_text()
        assert '"https://registry-1.docker.io"' in example and '"http://127.0.0.1:65001"' in example
        (hosts / "hosts.toml").write_text(example.replace("https://registry-1.docker.io", f"http://{reg.address}")
                                          .replace("http://127.0.0.1:65001", f"http://{a.address}"))
        ctrd = Containerd(tmp_path / "ctrd")
        res = ctrd.ctr("images", "pull", "--hosts-dir", tmp_path / "certs.d", "--snapshotter", "native",
                       f"{reg.address}/test/app:v1", timeout=300)
        assert res.returncode == 0, describe(res) + Path(a.log_path).read_text()[-2000:]
        got = subprocess.run(["ctr", "-a", str(ctrd.socket), "-n", "dftest", "content", "get", big["layer"]],
                             capture_output=True, timeout=60)
        assert got.returncode == 0 and got.stdout == big["layer_blob"]
        # Every layer byte the registry served went to our daemon's piece fetches: containerd
        # did not go around the mirror (it would have, had the mirror failed).
        assert_each_byte_fetched_once(reg, big["layer"], len(big["layer_blob"]))
        metrics = metrics_showing(a, 'dragonfly_dfdaemon_proxy_request_total{type="p2p",result="success"} 2\n')
        assert 'dragonfly_dfdaemon_proxy_request_total{type="p2p",result="success"} 2' in metrics
    finally:
        if ctrd:
            ctrd.stop()
        reg.stop()


def test_dfdaemon_init_points_containerd_at_the_mirror(image, tmp_path, mirror_for):
    """`dfdaemon init` edits containerd's config and writes the hosts.toml files; the real
    containerd starts with that config and pulls through the mirror with those files."""
    tool("containerd", "containerd")
    layout, big = image
    reg = Registry(tmp_path / "reg", free_port())
    ctrd = None
    certs = tmp_path / "certs.d"
    try:
        push(layout, "v1", reg, "test/app")
        m = mirror_for(reg.address)
        a = m.daemon("a")
        dfinit = tmp_path / "dfinit.yaml"
        init_log = []

        def prepare(config):
            # An operator's containerd that already names its certs directory: dfinit keeps
            # it and writes the registries' files there (the default is /etc/containerd/certs.d).
            config.write_text(config.read_text() + f'[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "{certs}"\n')
            dfinit.write_text(yaml.safe_dump({
                "proxy": {"addr": f"http://{a.address}"},
                "containerRuntime": {"containerd": {
                    "configPath": str(config), "proxyAllRegistries": True,
                    "registries": [{"hostNamespace": reg.address, "serverAddr": f"http://{reg.address}",
                                    "capabilities": ["pull", "resolve"]}]}}}))
            dry = run([binary("dfdaemon"), "init", "--config", dfinit, "--dry-run"], timeout=30)
            assert dry.returncode == 0 and f"+++ {certs}/{reg.address}/hosts.toml" in dry.stdout, describe(dry)
            assert not certs.exists(), "--dry-run wrote something"
            for _ in range(2):
                init_log.append(run([binary("dfdaemon"), "init", "--config", dfinit], timeout=30))
                assert init_log[-1].returncode == 0, describe(init_log[-1])

        ctrd = Containerd(tmp_path / "ctrd", prepare=prepare)
        assert "wrote" in init_log[0].stdout and init_log[1].stdout.strip() == "nothing to change", [r.stdout for r in init_log]
        written = tomllib.loads((certs / reg.address / "hosts.toml").read_text())
        assert written["server"] == f"http://{reg.address}"
        assert written["host"][f"http://{a.address}"]["header"] == {"X-Dragonfly-Registry": f"http://{reg.address}"}
        assert (certs / "_default" / "hosts.toml").exists()
        res = ctrd.ctr("images", "pull", "--hosts-dir", certs, "--snapshotter", "native", f"{reg.address}/test/app:v1", timeout=300)
        assert res.returncode == 0, describe(res) + Path(a.log_path).read_text()[-2000:]
        assert_each_byte_fetched_once(reg, big["layer"], len(big["layer_blob"]))
        metrics = metrics_showing(a, 'dragonfly_dfdaemon_proxy_request_total{type="p2p",result="success"} 2\n')
        assert 'dragonfly_dfdaemon_proxy_request_total{type="p2p",result="success"} 2' in metrics
    finally:
        if ctrd:
            ctrd.stop()
        reg.stop()


@pytest.mark.parametrize("expires_in", [300, -(2**63) + 8])
def test_token_auth_registry_with_credentials_in_the_config(image, tmp_path, mirror_for, expires_in):
    # The registry trusts tokens signed by our token server; the mirror does the Bearer flow.
    # A token service's `expires_in` is held to 60 s..1 day: the hostile one overflowed.
    layout, big = image
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    made = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                "-days", "1", "-subj", "/CN=dftest-token"])
    assert made.returncode == 0, describe(made)
    tokens = Server([sys.executable, HELPERS / "token_server.py", key, cert, "dftest-issuer", "dftest-registry",
                     "bob:hunter2", str(expires_in)], tmp_path / "tokens.log")
    reg = Registry(tmp_path / "reg", free_port(),
                   token_auth=(f"http://{tokens.address}/token", "dftest-registry", "dftest-issuer", cert))
    try:
        push(layout, "v1", reg, "private/app", creds="bob:hunter2")
        m, a = pull_with_configured_login(mirror_for, reg, "bob", "hunter2", big, tmp_path / "o1")
        grants = Path(tokens.log_path).read_text().splitlines()
        assert "token repository:private/app:pull" in grants, grants
        assert_each_byte_fetched_once(reg, big["layer"], len(big["layer_blob"]))
        issued = re.findall(r"issued (\S+)", Path(tokens.log_path).read_text())
        assert_no_secrets_logged([a.log_path], ["hunter2", base64.b64encode(b"bob:hunter2").decode(), "Bearer ", *issued])
    finally:
        reg.stop()
        tokens.stop()


def test_podman_pulls_through_the_mirror(image, registry, mirror_for):
    podman = tool("podman", "podman")
    layout, big = image
    m = mirror_for(registry.address)
    a = m.daemon("a")
    # podman wants a short runroot (≤ 50 characters): a temporary directory of our own.
    store = Path(tempfile.mkdtemp(prefix="dfpod-"))
    env = dict(os.environ, CONTAINERS_REGISTRIES_CONF=str(m.registries_conf(a)))
    base = [podman, "--root", store / "graph", "--runroot", store / "run", "--tmpdir", store / "tmp",
            "--storage-driver", "vfs", "--events-backend", "none", "--cgroup-manager", "cgroupfs"]
    try:
        res = run([*base, "pull", "--quiet", f"{PRIMARY}/test/app:v1"], timeout=300, env=env)
        assert res.returncode == 0, describe(res) + Path(a.log_path).read_text()[-2000:]
        res = run([*base, "image", "inspect", "--format", "{{.Id}} {{.RootFS.Layers}}", f"{PRIMARY}/test/app:v1"], env=env)
        assert res.returncode == 0, describe(res)
    finally:
        shutil.rmtree(store, ignore_errors=True)
    config = json.loads(blob(layout, big["config"]))
    image_id, layers = res.stdout.split(" ", 1)
    assert image_id == big["config"].split(":")[1], "podman stored the config we pushed"
    assert config["rootfs"]["diff_ids"][0] in layers, "and the layer it unpacked has the pushed content"
    metrics = metrics_showing(a, 'dragonfly_dfdaemon_proxy_request_total{type="p2p",result="success"} 2\n')
    assert 'dragonfly_dfdaemon_proxy_request_total{type="p2p",result="success"} 2' in metrics, metrics


def test_redirected_origin_one_task_whatever_the_signature(tmp_path, mirror_for):
    # The origin redirects every request to a freshly "signed" URL; the task id comes from
    # the URL asked for, so two daemons share one task and each piece is fetched once.
    (tmp_path / "origin").mkdir()
    data = os.urandom(10 * MIB)
    (tmp_path / "origin" / "blob.bin").write_bytes(data)
    origin = Server([sys.executable, HELPERS / "range_origin.py", "0", tmp_path / "origin"], tmp_path / "o.log")
    try:
        m = mirror_for(origin.address)
        rules = "  rules:\n    - regex: blob\\.bin\n"
        a, b = m.daemon("a", proxy_yaml=rules), m.daemon("b", proxy_yaml=rules)
        wait_for_hosts(m.sched.address, 2)
        ids = []
        for d in (a, b):
            res, body, _ = request(d, "GET", f"http://{origin.address}/redirect/blob.bin")
            assert res.status == 200 and body == data
            ids.append(res.getheader("X-Dragonfly-Task-ID"))
            # b is offered a as its parent once the scheduler has all of a's pieces.
            wait_for_finished_peers(m.sched.metrics_port, len(ids))
        assert ids[0] == ids[1] and len(ids[0]) == 64
        gets = [l for l in Path(origin.log_path).read_text().splitlines() if l.startswith("GET /blob.bin?sig=")]
        assert len(gets) == 3, gets  # 10 MiB in 4 MiB pieces, each fetched once, all via the redirect
    finally:
        origin.stop()


def test_tls_upstream_is_verified_unless_insecure(image, tmp_path, mirror_for):
    layout, big = image
    key, cert = tmp_path / "tls.key", tmp_path / "tls.crt"
    made = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
    assert made.returncode == 0, describe(made)
    reg = Registry(tmp_path / "reg", free_port(), tls=(cert, key))
    try:
        push(layout, "v1", reg, "test/app")
        m = Mirror(tmp_path / "m", reg.address)
        try:
            for name, insecure in (("strict", "false"), ("trusting", "true")):
                config = m.root / f"{name}.yaml"
                config.write_text(f"proxy:\n  registryMirror:\n    url: https://{reg.address}\n    insecure: {insecure}\n")
                m.daemons[name] = Server([binary("dfdaemon"), "--config", config, "--port", "0", "--listen-ip", "127.0.0.1",
                                          "--hostname", name, "--scheduler", m.sched.address, "--data-dir", m.root / name,
                                          "--unix-socket", m.root / f"{name}.sock"], m.root / f"{name}.log")
            res, body, _ = request(m.daemons["strict"], "GET", "/v2/test/app/manifests/v1")
            assert res.status == 502 and res.getheader("X-Dragonfly-Error-Type") == "backend", (res.status, body)
            res = m.skopeo(m.daemons["trusting"], "test/app:v1", tmp_path / "out")
            assert res.returncode == 0, describe(res) + Path(m.daemons["trusting"].log_path).read_text()[-2000:]
            assert blob(tmp_path / "out", big["layer"]) == big["layer_blob"]
        finally:
            m.stop()
    finally:
        reg.stop()


def mirror_task(m, daemon, task_id):
    import grpc
    from dragonfly_api import dfdaemon_pb2, dfdaemon_pb2_grpc
    with grpc.insecure_channel(f"unix:{m.root}/{daemon}.sock") as channel:
        return dfdaemon_pb2_grpc.DfdaemonDownloadStub(channel).StatTask(
            dfdaemon_pb2.StatTaskRequest(task_id=task_id), timeout=10)


def test_a_range_through_the_mirror_is_its_pieces_then_the_rest_and_one_task_per_blob(image, registry, mirror_for):
    _, big = image
    data, digest = big["layer_blob"], big["layer"]
    path = f"/v2/test/app/blobs/{digest}"
    hexd = digest.split(":", 1)[1]

    # proxy.prefetch off: the range's one piece is fetched, the task stays partial.
    m1 = mirror_for(registry.address, "  prefetch: false\n")
    a = m1.daemon("a")
    res, body, _ = request(a, "GET", path, {"Range": "bytes=100-199"})
    assert res.status == 206 and body == data[100:200]
    assert res.getheader("X-Dragonfly-Task-ID") == hexd, "the blob's task is named by its digest"
    time.sleep(1)
    task = mirror_task(m1, "a", hexd)
    assert task.state != "Succeeded" and [p.number for p in task.pieces] == [0], task

    # By default the rest follows in the background, and the next request is local.
    m2 = mirror_for(registry.address)
    b = m2.daemon("b")
    res, body, _ = request(b, "GET", path, {"Range": f"bytes={len(data) - 50}-"})
    assert res.status == 206 and body == data[-50:]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and mirror_task(m2, "b", hexd).state != "Succeeded":
        time.sleep(0.2)
    assert mirror_task(m2, "b", hexd).state == "Succeeded"
    gets = len(registry.blob_gets(digest))
    # Another spelling of the same blob (the registry named with ns=) is the same task.
    res, body, _ = request(b, "GET", f"{path}?ns={registry.address}")
    assert res.status == 200 and body == data and res.getheader("X-Dragonfly-Task-ID") == hexd
    assert len(registry.blob_gets(digest)) == gets, "served from the cached task"
    # Upstream's header turns the digest naming off for one request.
    res, body, _ = request(b, "GET", path, {"X-Dragonfly-Enable-Task-ID-Based-Blob-Digest": "false", "Range": "bytes=0-9"})
    assert res.status == 206 and body == data[:10]
    assert res.getheader("X-Dragonfly-Task-ID") not in (None, hexd)
