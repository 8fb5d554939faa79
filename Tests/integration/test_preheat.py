"""Preheat through the manager: an image in Debian's docker-registry is pushed into the
seed peers by a preheat job, and a later pull through a dfdaemon's mirror costs the
registry no blob GETs at all."""

import json
import os
import sys
import time
from pathlib import Path

import pytest

from conftest import Server, binary, describe, free_port, run, tool

HELPERS = Path(__file__).parent / "helpers"
sys.path.insert(0, str(HELPERS))
from local_cluster import LocalCluster  # noqa: E402
from manager_proc import Manager, wait_for  # noqa: E402
from registry import Registry, build_image, push  # noqa: E402

MIB = 1 << 20
PRIMARY = "127.0.0.1:1"


class PreheatCluster(LocalCluster):
    """The local cluster with the dfdaemon's mirror pointing at `registry`."""

    def __init__(self, root, registry):
        super().__init__(root, mirror=registry.address, node_args=())

    def preheat(self, args, path="/api/v1/jobs", token=None, timeout=120):
        status, job, _ = self.manager.call("POST", path, {"type": "preheat", "args": args}, token or self.token)
        assert status == 201, job
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, job, _ = self.manager.call("GET", f"{path}/{job['id']}", token=token or self.token)
            assert status == 200
            if job["state"] in ("SUCCESS", "FAILURE"):
                return job
            time.sleep(0.3)
        pytest.fail(f"preheat job stuck in {job['state']}: {job}")

    def skopeo(self, ref, out):
        conf = self.root / "registries.conf"
        conf.write_text(f'[[registry]]\nlocation = "{PRIMARY}"\ninsecure = true\n'
                        f'[[registry.mirror]]\nlocation = "{self.node.address}"\ninsecure = true\n')
        return run(["skopeo", "--registries-conf", conf, "copy", "--quiet", f"docker://{PRIMARY}/{ref}", f"oci:{out}:pulled"],
                   timeout=300)


@pytest.fixture
def image(tmp_path):
    tool("skopeo", "skopeo")
    layout = tmp_path / "layout"
    return layout, build_image(layout, "v1", os.urandom(20 * MIB), note="preheat")


def blob_gets(reg):
    return [a for a in reg.access() if a[0] == "GET" and "/blobs/" in a[1]]


def test_preheated_image_pulls_without_touching_the_registry(tmp_path, image):
    layout, img = image
    reg = Registry(tmp_path / "reg", free_port())
    cluster = None
    try:
        push(layout, "v1", reg, "test/app")
        cluster = PreheatCluster(tmp_path / "c", reg)
        job = cluster.preheat({"type": "image", "url": f"http://{reg.address}/v2/test/app/manifests/v1", "scope": "all_seed_peers"})
        assert job["state"] == "SUCCESS", job
        tasks = job["result"]["tasks"]
        assert {t["url"].rsplit("/", 1)[1] for t in tasks} == {img["layer"], img["config"]}
        assert all(t["state"] == "SUCCESS" and len(t["task_id"]) == 64 for t in tasks), tasks
        before = blob_gets(reg)
        assert sum(n for _, p, _, n in before if p.endswith(img["layer"])) == len(img["layer_blob"]), "the seed peer fetched the layer"
        res = cluster.skopeo("test/app:v1", tmp_path / "out")
        assert res.returncode == 0, describe(res) + (cluster.root / "node.log").read_text()[-2000:]
        assert (tmp_path / "out" / "blobs" / "sha256" / img["layer"].split(":")[1]).read_bytes() == img["layer_blob"]
        assert blob_gets(reg) == before, "the pull after the preheat cost the registry no blob GETs"
    finally:
        if cluster:
            cluster.stop()
        reg.stop()


def test_private_image_preheat_with_and_without_the_right_credentials(tmp_path, image):
    layout, img = image
    reg = Registry(tmp_path / "reg", free_port(), users={"carol": "pa55word"})
    cluster = None
    try:
        push(layout, "v1", reg, "private/app", creds="carol:pa55word")
        cluster = PreheatCluster(tmp_path / "c", reg)
        url = f"http://{reg.address}/v2/private/app/manifests/v1"
        job = cluster.preheat({"type": "image", "url": url, "username": "carol", "password": "pa55word"})
        assert job["state"] == "SUCCESS", job
        assert job["args"]["password"] == "******" and "pa55word" not in json.dumps(job), "answers mask the password"
        listed = cluster.manager.call("GET", "/api/v1/jobs", token=cluster.token)[1]
        assert "pa55word" not in json.dumps(listed)
        assert len(job["result"]["tasks"]) == 2
        job = cluster.preheat({"type": "image", "url": url, "username": "carol", "password": "wr0ng-s3cret-Pw"})
        assert job["state"] == "FAILURE"
        assert "401" in job["result"]["message"] and "refused" in job["result"]["message"], job
        assert "wr0ng-s3cret-Pw" not in json.dumps(job), "the failure's error text does not carry the password"
        assert "wr0ng-s3cret-Pw" not in Path(cluster.manager.server.log_path).read_text()
        job = cluster.preheat({"type": "image", "url": f"http://{reg.address}/v2/private/nothing/manifests/v1",
                               "username": "carol", "password": "pa55word"})
        assert job["state"] == "FAILURE" and "404" in job["result"]["message"], job
    finally:
        if cluster:
            cluster.stop()
        reg.stop()


def test_harbor_style_client_preheats_a_file_with_a_token(tmp_path):
    (tmp_path / "origin").mkdir()
    data = os.urandom(6 * MIB)
    (tmp_path / "origin" / "model.bin").write_bytes(data)
    origin = Server([sys.executable, HELPERS / "range_origin.py", "0", tmp_path / "origin"], tmp_path / "o.log")
    reg = Registry(tmp_path / "reg", free_port())
    cluster = None
    try:
        cluster = PreheatCluster(tmp_path / "c", reg)
        m = cluster.manager
        import urllib.request
        with urllib.request.urlopen(m.rest + "/healthy", timeout=10) as res:
            assert res.status == 200
        status, pat, _ = m.call("POST", "/api/v1/personal-access-tokens",
                                {"name": "harbor", "scopes": ["job"], "expired_at": "2099-01-01T00:00:00Z"}, cluster.token)
        assert status == 201
        job = cluster.preheat({"type": "file", "url": f"http://{origin.address}/model.bin", "scope": "single_seed_peer"},
                              path="/oapi/v1/jobs", token=pat["token"])
        assert job["state"] == "SUCCESS", job
        gets = [l for l in Path(origin.log_path).read_text().splitlines() if l.startswith("GET /model.bin")]
        assert len(gets) == 2, gets  # two 4 MiB pieces, fetched by the seed peer
        res = run([binary("dfget"), f"http://{origin.address}/model.bin", "-O", tmp_path / "m.out", "--daemon",
                   f"unix:{cluster.root}/node.sock", "--quiet"], timeout=60)
        assert res.returncode == 0 and (tmp_path / "m.out").read_bytes() == data, describe(res)
        assert len([l for l in Path(origin.log_path).read_text().splitlines() if l.startswith("GET /model.bin")]) == 2
    finally:
        if cluster:
            cluster.stop()
        reg.stop()
        origin.stop()


def test_two_clusters_each_fetch_once_and_keep_to_themselves(tmp_path, image):
    layout, img = image
    reg = Registry(tmp_path / "reg", free_port())
    m = Manager(tmp_path / "manager")
    servers = []
    try:
        push(layout, "v1", reg, "test/app")
        token = m.sign_in()
        regions = {}
        for region in ("us-east", "eu-west"):
            status, cluster, _ = m.call("POST", "/api/v1/scheduler-clusters", {"name": region, "scopes": {"idc": region}}, token)
            assert status == 201, cluster
            status, seeds, _ = m.call("POST", "/api/v1/seed-peer-clusters", {"name": f"{region}-seeds", "scheduler_cluster_id": cluster["id"]}, token)
            assert status == 201, seeds
            regions[region] = (cluster["id"], seeds["id"])

        def start(name, args):
            s = Server(args, tmp_path / f"{name}.log")
            servers.append(s)
            return s

        nodes = {}
        for region, (cluster_id, seed_cluster_id) in regions.items():
            sconf = tmp_path / f"sched-{region}.yaml"
            sconf.write_text(f"manager:\n  schedulerClusterID: {cluster_id}\n  keepAlive:\n    interval: 1s\n")
            start(f"sched-{region}", [binary("scheduler"), "--config", sconf, "--port", "0", "--metrics-port", "0",
                                      "--listen-ip", "127.0.0.1", "--advertise-ip", "127.0.0.1", "--data-dir", tmp_path / f"s-{region}",
                                      "--manager", m.grpc])
            for role in ("seed", "node"):
                name = f"{role}-{region}"
                conf = tmp_path / f"{name}.yaml"
                text = f"host:\n  idc: {region}\nproxy:\n  registryMirror:\n    url: http://{reg.address}\n"
                if role == "seed":
                    text += f"seedPeer:\n  enable: true\n  clusterID: {seed_cluster_id}\n"
                conf.write_text(text)
                d = start(name, [binary("dfdaemon"), "--config", conf, "--port", "0", "--listen-ip", "127.0.0.1", "--hostname", name,
                                 "--manager", m.grpc, "--data-dir", tmp_path / name, "--unix-socket", tmp_path / f"{name}.sock"])
                if role == "node":
                    nodes[region] = d
        sched_ports = {region: servers[i * 3].port for i, region in enumerate(regions)}
        for region in regions:
            for role in ("seed", "node"):
                log = tmp_path / f"{role}-{region}.log"
                assert wait_for(lambda: f"127.0.0.1:{sched_ports[region]}" in log.read_text()), \
                    f"{role}-{region} was given its own cluster's scheduler: {log.read_text()[-1500:]}"
        time.sleep(0.5)
        conf = tmp_path / "registries.conf"
        for region, node in nodes.items():
            conf.write_text(f'[[registry]]\nlocation = "{PRIMARY}"\ninsecure = true\n'
                            f'[[registry.mirror]]\nlocation = "{node.address}"\ninsecure = true\n')
            res = run(["skopeo", "--registries-conf", conf, "copy", "--quiet", f"docker://{PRIMARY}/test/app:v1",
                       f"oci:{tmp_path / region}:pulled"], timeout=300)
            assert res.returncode == 0, describe(res)
            assert (tmp_path / region / "blobs" / "sha256" / img["layer"].split(":")[1]).read_bytes() == img["layer_blob"]
        layer_bytes = sum(n for method, path, _, n in reg.access() if method == "GET" and path.endswith(img["layer"]))
        assert layer_bytes == 2 * len(img["layer_blob"]), "each cluster fetched the layer once, and only once"
        # Each cluster's scheduler knows only its own hosts, so no piece crossed over.
        import grpc
        from dragonfly_api import scheduler_pb2, scheduler_pb2_grpc
        for region, port in sched_ports.items():
            stub = scheduler_pb2_grpc.SchedulerStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
            hosts = stub.ListHosts(scheduler_pb2.ListHostsRequest(), timeout=10).hosts
            assert sorted(h.hostname for h in hosts) == sorted([f"node-{region}", f"seed-{region}"]), hosts
    finally:
        for s in reversed(servers):
            s.stop()
        m.stop()
        reg.stop()


def test_all_peers_scope_reaches_every_peer_and_ips_narrow_it(tmp_path):
    (tmp_path / "origin").mkdir()
    (tmp_path / "origin" / "f.bin").write_bytes(os.urandom(5 * MIB))
    origin = Server([sys.executable, HELPERS / "range_origin.py", "0", tmp_path / "origin"], tmp_path / "o.log")
    reg = Registry(tmp_path / "reg", free_port())
    cluster = None
    try:
        cluster = PreheatCluster(tmp_path / "c", reg)
        url = f"http://{origin.address}/f.bin"
        job = cluster.preheat({"type": "file", "url": url, "scope": "all_peers"})
        assert job["state"] == "SUCCESS", job
        assert sorted(t["peer"] for t in job["result"]["tasks"]) == sorted([cluster.seed.address, cluster.node.address])
        # Planned and run by the cluster's scheduler (PreheatFile), which knows its peers.
        assert job["result"]["via"] == [f"scheduler {cluster.sched.address}"], job
        job = cluster.preheat({"type": "file", "url": url, "scope": "all_peers", "count": 1})
        assert len(job["result"]["tasks"]) == 1
        job = cluster.preheat({"type": "file", "url": url, "scope": "all_peers", "ips": ["192.0.2.1"]})
        assert job["state"] == "FAILURE" and "no peers" in job["result"]["message"], job
        status, body, _ = cluster.manager.call("POST", "/api/v1/jobs", {"type": "preheat", "args": {"url": url, "scope": "some"}},
                                               cluster.token)
        assert status == 400 and "scope" in body["message"], "bad arguments are refused when the job is made"
        # With the scheduler gone, the manager asks the seed peer itself.
        cluster.sched.proc.kill()
        cluster.sched.proc.wait(timeout=10)
        (tmp_path / "origin" / "g.bin").write_bytes(os.urandom(MIB))
        job = cluster.preheat({"type": "file", "url": f"http://{origin.address}/g.bin"})
        assert job["state"] == "SUCCESS" and job["result"]["via"] == ["manager"], job
        assert [t["peer"] for t in job["result"]["tasks"]] == [cluster.seed.address]
    finally:
        if cluster:
            cluster.stop()
        reg.stop()
        origin.stop()


def test_index_platform_choice_and_token_auth(tmp_path):
    from registry import build_index, push_all
    layout = tmp_path / "multi"
    images = build_index(layout, "v1", ["linux/amd64", "linux/arm64"])
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    made = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                "-days", "1", "-subj", "/CN=dftest-token"])
    assert made.returncode == 0, describe(made)
    tokens = Server([sys.executable, HELPERS / "token_server.py", key, cert, "dftest-issuer", "dftest-registry", "dave:secret99"],
                    tmp_path / "tokens.log")
    reg = Registry(tmp_path / "reg", free_port(), token_auth=(f"http://{tokens.address}/token", "dftest-registry", "dftest-issuer", cert))
    cluster = None
    try:
        push_all(layout, "v1", reg, "multi/app", creds="dave:secret99")
        cluster = PreheatCluster(tmp_path / "c", reg)
        job = cluster.preheat({"type": "image", "url": f"http://{reg.address}/v2/multi/app/manifests/v1", "platform": "linux/arm64",
                               "username": "dave", "password": "secret99", "scope": "all_seed_peers"})
        assert job["state"] == "SUCCESS", job
        digests = {t["url"].rsplit("/", 1)[1] for t in job["result"]["tasks"]}
        arm, amd = images["linux/arm64"], images["linux/amd64"]
        assert digests == {arm["layer"], arm["config"]}, "the arm64 image's blobs, and nothing of amd64's"
        assert amd["layer"] not in digests
        assert "token repository:multi/app:pull" in Path(tokens.log_path).read_text()
        job = cluster.preheat({"type": "image", "url": f"http://{reg.address}/v2/multi/app/manifests/v1", "platform": "windows/amd64",
                               "username": "dave", "password": "secret99"})
        assert job["state"] == "FAILURE" and "platform windows/amd64" in job["result"]["message"], job
    finally:
        if cluster:
            cluster.stop()
        reg.stop()
        tokens.stop()


def test_a_running_job_shows_its_progress(tmp_path):
    """Three files, one at a time, the last from an origin that drips it out over seconds:
    while the job runs its result counts the downloads done and in all."""
    (tmp_path / "origin").mkdir()
    for name, size in (("a.bin", 1024), ("b.bin", 1024), ("c.bin", 2 * MIB)):
        (tmp_path / "origin" / name).write_bytes(os.urandom(size))
    origin = Server([sys.executable, HELPERS / "faulty_origin.py", "0", tmp_path / "origin"], tmp_path / "o.log")
    reg = Registry(tmp_path / "reg", free_port())
    cluster = None
    try:
        cluster = PreheatCluster(tmp_path / "c", reg)
        urls = [f"http://{origin.address}/a.bin", f"http://{origin.address}/b.bin", f"http://{origin.address}/slow/c.bin"]
        status, job, _ = cluster.manager.call("POST", "/api/v1/jobs", {"type": "preheat", "args": {
            "type": "file", "urls": urls, "concurrent_task_count": 1}}, cluster.token)
        assert status == 201, job
        seen = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status, job, _ = cluster.manager.call("GET", f"/api/v1/jobs/{job['id']}", token=cluster.token)
            if job["state"] == "RUNNING" and job.get("result") and "progress" in job["result"]:
                seen.append(job["result"]["progress"])
            if job["state"] in ("SUCCESS", "FAILURE"):
                break
            time.sleep(0.05)
        assert job["state"] == "SUCCESS", job
        assert seen and all(p["total"] == 3 and 0 <= p["done"] <= 3 and p["failed"] == 0 for p in seen), seen
        assert any(p["done"] >= 1 for p in seen), f"the count moved while the job ran: {seen}"
        # Each download's state while it runs: some done, the slow one still under way.
        states = [{t["url"].rsplit("/", 1)[1]: t["state"] for t in p["tasks"]} for p in seen]
        assert all(len(s) == 3 for s in states), seen
        assert any(s["a.bin"] == "SUCCESS" and s["c.bin"] in ("PENDING", "RUNNING") for s in states), states
        assert job["result"]["total"] == 3 and "progress" not in job["result"], "the final result replaces the progress"
        assert job["result"]["via"] == [f"scheduler {cluster.sched.address}"], job
    finally:
        if cluster:
            cluster.stop()
        reg.stop()
        origin.stop()
