"""The manager against real clients: grpcio with the official dragonfly-api stubs on the
gRPC side, plain HTTP on REST, on SQLite and on a real PostgreSQL; and our own scheduler
and dfdaemon finding each other through it."""

import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import grpc
import pytest
from dragonfly_api import manager_pb2

from conftest import Server, binary, describe, free_port, missing, run

HELPERS = Path(__file__).parent / "helpers"
sys.path.insert(0, str(HELPERS))
import postgres  # noqa: E402
from manager_proc import ROOT_PASSWORD, Manager, wait_for  # noqa: E402



@pytest.fixture(scope="module")
def pg():
    if postgres.bin_dir() is None:
        missing("PostgreSQL server not installed (apt-get install postgresql)")
    server = postgres.Postgres(free_port())
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def manager(request, tmp_path):
    url = None
    if request.param == "postgres":
        url = request.getfixturevalue("pg").database("m_" + uuid.uuid4().hex[:12])
    m = Manager(tmp_path / "manager", url)
    yield m
    m.stop()


def register(m, hostname, ip, cluster_id=1, port=65002):
    return m.stub.UpdateScheduler(manager_pb2.UpdateSchedulerRequest(
        source_type=manager_pb2.SCHEDULER_SOURCE, hostname=hostname, ip=ip, port=port, scheduler_cluster_id=cluster_id), timeout=10)


class KeepAlive:
    """A KeepAlive client stream that runs until closed."""

    def __init__(self, m, hostname, ip, cluster_id=1):
        self.closed = False
        self.requests_sent = 0

        def requests():
            while not self.closed:
                self.requests_sent += 1
                yield manager_pb2.KeepAliveRequest(source_type=manager_pb2.SCHEDULER_SOURCE, hostname=hostname, ip=ip,
                                                   cluster_id=cluster_id)
                time.sleep(0.2)
        self.future = m.stub.KeepAlive.future(requests(), timeout=60)

    def close(self):
        self.closed = True
        self.future.result(timeout=10)


def listed(m, **host):
    return m.stub.ListSchedulers(manager_pb2.ListSchedulersRequest(source_type=manager_pb2.PEER_SOURCE, **host), timeout=10).schedulers


def test_a_scheduler_is_listed_while_it_keeps_alive(manager):
    s = register(manager, "sched-a", "10.0.0.1")
    assert s.scheduler_cluster_id == 1 and s.scheduler_cluster.name == "cluster-1"
    assert listed(manager, hostname="node", ip="10.9.9.9") == [], "registered but not alive yet"
    ka = KeepAlive(manager, "sched-a", "10.0.0.1")
    assert wait_for(lambda: [x.hostname for x in listed(manager, hostname="node", ip="10.9.9.9")] == ["sched-a"])
    got = listed(manager, hostname="node", ip="10.9.9.9")[0]
    assert got.ip == "10.0.0.1" and got.port == 65002 and got.state == "active"
    ka.close()
    assert wait_for(lambda: listed(manager, hostname="node", ip="10.9.9.9") == []), "inactive once its stream ended"
    assert manager.stub.GetScheduler(manager_pb2.GetSchedulerRequest(hostname="sched-a", ip="10.0.0.1",
                                                                     scheduler_cluster_id=1), timeout=10).state == "inactive"


def test_list_schedulers_picks_the_best_matching_cluster(manager):
    token = manager.sign_in()
    status, east, _ = manager.call("POST", "/api/v1/scheduler-clusters",
                                   {"name": "east", "scopes": {"cidrs": ["10.1.0.0/16"], "idc": "idc-east"}}, token)
    assert status == 201, east
    register(manager, "default-sched", "10.0.0.1", cluster_id=1)
    register(manager, "east-sched", "10.1.0.1", cluster_id=east["id"])
    streams = [KeepAlive(manager, "default-sched", "10.0.0.1", 1), KeepAlive(manager, "east-sched", "10.1.0.1", east["id"])]
    try:
        assert wait_for(lambda: [x.hostname for x in listed(manager, hostname="n1", ip="10.1.2.3")] == ["east-sched"])
        # An IDC match alone (0.25) also beats the default cluster (0.01).
        assert [x.hostname for x in listed(manager, hostname="n2", ip="192.168.0.9", idc="idc-east")] == ["east-sched"]
        assert [x.hostname for x in listed(manager, hostname="n3", ip="192.168.0.9")] == ["default-sched"]
        # Naming a cluster bypasses scoring.
        assert [x.hostname for x in listed(manager, hostname="n1", ip="10.1.2.3", scheduler_cluster_id=1)] == ["default-sched"]
    finally:
        for s in streams:
            s.close()


def test_keep_alive_for_an_unregistered_scheduler_is_refused(manager):
    def requests():
        yield manager_pb2.KeepAliveRequest(source_type=manager_pb2.SCHEDULER_SOURCE, hostname="ghost", ip="10.0.0.9", cluster_id=1)
    with pytest.raises(grpc.RpcError) as err:
        manager.stub.KeepAlive(requests(), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        register(manager, "s", "10.0.0.1", cluster_id=999)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_seed_peers_register_and_are_listed(manager):
    sp = manager.stub.UpdateSeedPeer(manager_pb2.UpdateSeedPeerRequest(
        source_type=manager_pb2.SEED_PEER_SOURCE, hostname="seed-1", type="super", ip="10.0.0.7", port=65001,
        download_port=65001, seed_peer_cluster_id=1), timeout=10)
    assert sp.seed_peer_cluster.name == "cluster-1" and sp.state == "inactive"
    got = manager.stub.GetSeedPeer(manager_pb2.GetSeedPeerRequest(hostname="seed-1", ip="10.0.0.7", seed_peer_cluster_id=1), timeout=10)
    assert got.id == sp.id
    manager.stub.DeleteSeedPeer(manager_pb2.DeleteSeedPeerRequest(hostname="seed-1", ip="10.0.0.7", seed_peer_cluster_id=1), timeout=10)
    with pytest.raises(grpc.RpcError) as err:
        manager.stub.GetSeedPeer(manager_pb2.GetSeedPeerRequest(hostname="seed-1", ip="10.0.0.7", seed_peer_cluster_id=1), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_rest_crud_pagination_and_errors(manager):
    token = manager.sign_in()
    for i in range(12):
        status, _, _ = manager.call("POST", "/api/v1/seed-peer-clusters", {"name": f"spc-{i}", "bio": "x"}, token)
        assert status == 201
    status, page2, headers = manager.call("GET", "/api/v1/seed-peer-clusters?page=2&per_page=5", token=token)
    assert status == 200 and len(page2) == 5 and headers["X-Total-Count"] == "13"
    assert 'rel="next"' in headers["Link"] and 'rel="prev"' in headers["Link"]
    first = page2[0]
    status, patched, _ = manager.call("PATCH", f"/api/v1/seed-peer-clusters/{first['id']}", {"bio": "changed"}, token)
    assert status == 200 and patched["bio"] == "changed" and patched["name"] == first["name"]
    status, body, _ = manager.call("POST", "/api/v1/seed-peer-clusters", {"name": first["name"]}, token)
    assert status == 409 and "message" in body
    status, body, _ = manager.call("DELETE", f"/api/v1/seed-peer-clusters/{first['id']}", token=token)
    assert status == 204
    status, body, _ = manager.call("GET", f"/api/v1/seed-peer-clusters/{first['id']}", token=token)
    assert status == 404 and body["message"]
    status, body, _ = manager.call("GET", "/api/v1/seed-peer-clusters/abc", token=token)
    assert status == 400
    status, body, _ = manager.call("POST", "/api/v1/scheduler-clusters", {"name": "bad", "scopes": {"cidrs": ["nope"]}}, token)
    assert status == 400 and "cidrs" in body["message"]
    status, body, _ = manager.call("GET", "/api/v1/scheduler-clusters?per_page=0", token=token)
    assert status == 400


def test_auth_root_guest_and_tokens(manager):
    status, body, _ = manager.call("GET", "/api/v1/schedulers")
    assert status == 401 and body["message"]
    status, _, _ = manager.call("GET", "/api/v1/schedulers", token="not-a-token")
    assert status == 401
    status, guest, _ = manager.call("POST", "/api/v1/users/signup", {"name": "guest1", "password": "guest-password"})
    assert status == 201 and guest["role"] == "guest"
    guest_token = manager.sign_in("guest1", "guest-password")
    status, _, _ = manager.call("GET", "/api/v1/scheduler-clusters", token=guest_token)
    assert status == 200, "guests read"
    status, _, _ = manager.call("POST", "/api/v1/scheduler-clusters", {"name": "g"}, guest_token)
    assert status == 403, "guests do not write"
    status, _, _ = manager.call("POST", "/api/v1/users/signin", {"name": "root", "password": "wrong"})
    assert status == 401
    root = manager.sign_in()
    status, pat, _ = manager.call("POST", "/api/v1/personal-access-tokens",
                                  {"name": "ci", "scopes": ["job"], "expired_at": "2099-01-01T00:00:00Z"}, root)
    assert status == 201 and pat["token"].startswith("dfp_")
    secret = pat["token"]
    status, job, _ = manager.call("POST", "/oapi/v1/jobs", {"type": "preheat", "args": {"type": "image", "url": "http://r/v2/a/manifests/1"}}, secret)
    assert status == 201 and job["state"] == "PENDING"
    status, _, _ = manager.call("GET", f"/oapi/v1/jobs/{job['id']}", token=secret)
    assert status == 200
    status, _, _ = manager.call("GET", "/oapi/v1/jobs", token=root)
    assert status == 401, "the open API takes tokens, not sessions"
    status, _, _ = manager.call("GET", "/api/v1/jobs", token=secret)
    assert status == 401, "and the console API takes sessions, not tokens"
    status, _, _ = manager.call("DELETE", f"/api/v1/personal-access-tokens/{pat['id']}", token=root)
    assert status == 204
    status, _, _ = manager.call("GET", "/oapi/v1/jobs", token=secret)
    assert status == 401, "a deleted token stops working"


def test_jobs_and_the_seeds_preheat_alias(manager):
    token = manager.sign_in()
    status, job, _ = manager.call("POST", "/api/v1/jobs", {"type": "preheat", "args": {"type": "image", "url": "http://r/v2/a/manifests/1"}}, token)
    assert status == 201
    status, body, _ = manager.call("POST", "/api/v1/jobs", {"type": "preheat", "args": {}}, token)
    assert status == 400 and "url" in body["message"]
    status, alias, _ = manager.call("POST", "/api/v1/preheat", {"type": "image", "url": "harbor.example/app:v1", "scope": "all_peers"}, token)
    assert status == 201 and alias["status"] == "PENDING"
    status, again, _ = manager.call("GET", f"/api/v1/preheat/{alias['id']}", token=token)
    assert status == 200 and again["id"] == alias["id"] and again["job"]["args"]["url"] == "harbor.example/app:v1"
    status, listed_jobs, headers = manager.call("GET", "/api/v1/jobs?type=preheat", token=token)
    assert status == 200 and headers["X-Total-Count"] == "2"
    status, _, _ = manager.call("POST", "/api/v1/preheat", {"url": "x"})
    assert status == 401


def test_everything_survives_a_restart(manager):
    token = manager.sign_in()
    manager.call("POST", "/api/v1/scheduler-clusters", {"name": "kept"}, token)
    manager.call("POST", "/api/v1/users/signup", {"name": "kept-user", "password": "kept-password"})
    status, job, _ = manager.call("POST", "/api/v1/jobs", {"type": "preheat", "args": {"url": "http://o/f"}}, token)
    assert status == 201
    manager.restart()
    token = manager.sign_in()
    status, clusters, _ = manager.call("GET", "/api/v1/scheduler-clusters?name=kept", token=token)
    assert status == 200 and [c["name"] for c in clusters] == ["kept"]
    assert manager.sign_in("kept-user", "kept-password")
    status, again, _ = manager.call("GET", f"/api/v1/jobs/{job['id']}", token=token)
    assert status == 200 and again["args"]["url"] == "http://o/f"


def test_openapi_document_and_operational_endpoints(manager):
    status, doc, _ = manager.call("GET", "/api/v1/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    for path in ("/api/v1/scheduler-clusters/{id}", "/oapi/v1/jobs", "/api/v1/preheat", "/api/v1/users/signin"):
        assert path in doc["paths"], path
    with urllib.request.urlopen(manager.rest + "/healthy", timeout=10) as res:
        assert res.read() == b"OK"
    with urllib.request.urlopen(manager.rest + "/metrics", timeout=10) as res:
        assert b"dragonfly_manager_rest_request_total" in res.read()


def test_our_scheduler_registers_and_a_daemon_finds_it_through_the_manager(tmp_path):
    m = Manager(tmp_path / "manager")
    sched = daemon = origin = None
    try:
        sched = Server([binary("scheduler"), "--port", "0", "--metrics-port", "0", "--listen-ip", "127.0.0.1",
                        "--advertise-ip", "127.0.0.1", "--data-dir", tmp_path / "s", "--manager", m.grpc], tmp_path / "s.log")
        assert wait_for(lambda: [s.port for s in listed(m, hostname="node", ip="127.0.0.1")] == [sched.port]), \
            Path(tmp_path / "s.log").read_text()[-2000:]
        (tmp_path / "origin").mkdir()
        (tmp_path / "origin" / "f.bin").write_bytes(os.urandom(5 << 20))
        origin = Server([sys.executable, HELPERS / "range_origin.py", "0", tmp_path / "origin"], tmp_path / "o.log")
        daemon = Server([binary("dfdaemon"), "--port", "0", "--listen-ip", "127.0.0.1", "--hostname", "node",
                         "--manager", m.grpc, "--data-dir", tmp_path / "d", "--unix-socket", tmp_path / "d.sock"], tmp_path / "d.log")
        assert wait_for(lambda: "manager" in Path(tmp_path / "d.log").read_text() and "names schedulers" in Path(tmp_path / "d.log").read_text())
        res = run([binary("dfget"), f"http://{origin.address}/f.bin", "-O", tmp_path / "f.out", "--daemon",
                   f"unix:{tmp_path}/d.sock", "--quiet"], timeout=60)
        assert res.returncode == 0, describe(res)
        assert (tmp_path / "f.out").read_bytes() == (tmp_path / "origin" / "f.bin").read_bytes()
        # The download went through the scheduler the manager named.
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{sched.metrics_port}/metrics", timeout=10).read().decode()
        assert "dragonfly_scheduler_register_peer_total" in metrics or "dragonfly_scheduler_download_peer" in metrics, metrics[:2000]
        sched.stop()
        assert wait_for(lambda: listed(m, hostname="node", ip="127.0.0.1") == []), "a stopped scheduler leaves the list"
    finally:
        for s in (daemon, origin, sched):
            if s:
                s.stop()
        m.stop()


def test_schemathesis_finds_no_server_errors(tmp_path):
    # Fuzzes every operation of the served OpenAPI document, signed in as root; any 5xx fails.
    st = Path(sys.executable).parent / "st"
    if not st.exists():
        missing("schemathesis not installed in the venv (pip install -r requirements.txt)")
    m = Manager(tmp_path / "manager")
    try:
        token = m.sign_in()
        res = run([st, "run", f"{m.rest}/api/v1/openapi.json", "--url", m.rest, "--checks", "not_a_server_error",
                   "--header", f"Authorization: Bearer {token}", "--max-examples", "20", "--generation-deterministic",
                   "--request-timeout", "10"], timeout=600)
        assert res.returncode == 0, describe(res)[-4000:]
        counts = re.search(r"(\d+) generated, (\d+) passed", res.stdout)
        assert counts and counts.group(1) == counts.group(2) and int(counts.group(1)) > 100, res.stdout[-3000:]
        assert "internal error" not in Path(m.server.log_path).read_text()
    finally:
        m.stop()


def test_example_config_starts_and_unknown_keys_are_named(tmp_path):
    example = Path(__file__).parents[2] / "docker" / "manager.yaml"
    m = Server([binary("manager"), "--config", example, "--grpc-port", "0", "--rest-port", "0", "--listen-ip", "127.0.0.1",
                "--data-dir", tmp_path / "m"], tmp_path / "m.log", env=dict(os.environ, DRAGONFLY_INITIAL_ROOT_PASSWORD=ROOT_PASSWORD))
    m.stop()
    bad = tmp_path / "bad.yaml"
    bad.write_text("database:\n  type: sqlite\n  colour: blue\n")
    res = run([binary("manager"), "--config", bad, "--data-dir", tmp_path / "b"], timeout=30)
    assert res.returncode != 0 and "database.colour" in res.stderr, describe(res)


def test_generated_root_password_is_printed_once(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DRAGONFLY_INITIAL_ROOT_PASSWORD"}
    m = Server([binary("manager"), "--grpc-port", "0", "--rest-port", "0", "--listen-ip", "127.0.0.1",
                "--data-dir", tmp_path / "m"], tmp_path / "m.log", env=env)
    m.stop()
    printed = re.search(r"created user root with password (\S+)", Path(tmp_path / "m.log").read_text())
    assert printed, Path(tmp_path / "m.log").read_text()
    again = Server([binary("manager"), "--grpc-port", "0", "--rest-port", "0", "--listen-ip", "127.0.0.1",
                    "--data-dir", tmp_path / "m"], tmp_path / "m2.log", env=env)
    try:
        assert "created user root" not in Path(tmp_path / "m2.log").read_text()
        req = urllib.request.Request(f"http://127.0.0.1:{again.metrics_port}/api/v1/users/signin", method="POST",
                                     data=json.dumps({"name": "root", "password": printed.group(1)}).encode())
        with urllib.request.urlopen(req, timeout=10) as res:
            assert json.loads(res.read())["token"]
    finally:
        again.stop()


def test_a_seed_peer_daemon_registers_and_keeps_alive(tmp_path):
    m = Manager(tmp_path / "manager")
    seed = None
    try:
        seed = Server([binary("dfdaemon"), "--seed-peer", "--port", "0", "--listen-ip", "127.0.0.1", "--hostname", "seed-1",
                       "--manager", m.grpc, "--data-dir", tmp_path / "seed", "--unix-socket", tmp_path / "seed.sock"],
                      tmp_path / "seed.log")
        token = m.sign_in()

        def seeds():
            return m.call("GET", "/api/v1/seed-peers", token=token)[1]
        assert wait_for(lambda: [(s["hostname"], s["state"], s["port"]) for s in seeds()] == [("seed-1", "active", seed.port)]), \
            Path(tmp_path / "seed.log").read_text()[-2000:]
        listed_seeds = m.stub.ListSeedPeers(manager_pb2.ListSeedPeersRequest(source_type=manager_pb2.PEER_SOURCE), timeout=10).seed_peers
        assert [s.hostname for s in listed_seeds] == ["seed-1"]
        sid = seeds()[0]["id"]
        status, patched, _ = m.call("PATCH", f"/api/v1/seed-peers/{sid}", {"idc": "idc-9"}, token)
        assert status == 200 and patched["idc"] == "idc-9" and patched["hostname"] == "seed-1"
        seed.stop()
        seed = None
        assert wait_for(lambda: [s["state"] for s in seeds()] == ["inactive"])
    finally:
        if seed:
            seed.stop()
        m.stop()


def test_a_rest_port_in_use_stops_the_manager_with_a_clear_error(tmp_path):
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = run([binary("manager"), "--grpc-port", "0", "--rest-port", port, "--listen-ip", "127.0.0.1",
                   "--data-dir", tmp_path / "m"], timeout=60, env=dict(os.environ, DRAGONFLY_INITIAL_ROOT_PASSWORD=ROOT_PASSWORD))
    assert res.returncode != 0 and "LISTENING" not in res.stdout, describe(res)
    assert "REST server failed" in res.stderr and "in use" in res.stderr.lower(), describe(res)


def test_repeated_failed_sign_ins_are_throttled(manager):
    status, _, _ = manager.call("POST", "/api/v1/users/signup", {"name": "target", "password": "target-password"})
    assert status == 201
    for _ in range(5):
        assert manager.call("POST", "/api/v1/users/signin", {"name": "target", "password": "guess"})[0] == 401
    status, body, headers = manager.call("POST", "/api/v1/users/signin", {"name": "target", "password": "target-password"})
    assert status == 429 and "too many failed sign-ins" in body["message"], body
    assert 1 <= int(headers["Retry-After"]) <= 60
    # Other names are not affected, and the right password worked before the limit.
    assert manager.sign_in()
    status, _, _ = manager.call("POST", "/api/v1/users/signin", {"name": "target2", "password": "x"})
    assert status == 401



def test_preheat_urls_and_headers_are_validated(manager):
    token = manager.sign_in()
    bad = [
        ({"type": "file", "url": "ftp://example.com/f"}, "http(s)"),
        ({"type": "file", "url": "http://example.com/a b"}, "spaces"),
        ({"type": "image", "url": "gopher://r/v2/a/manifests/1"}, "reference"),
        ({"type": "file", "url": "http://o/f", "headers": {"X-A\r\nInjected": "1"}}, "header name"),
        ({"type": "file", "url": "http://o/f", "headers": {"X-A": "1\r\nInjected: yes"}}, "one line"),
    ]
    for args, words in bad:
        status, body, _ = manager.call("POST", "/api/v1/jobs", {"type": "preheat", "args": args}, token)
        assert status == 400 and words in body["message"], (args, status, body)
    status, _, _ = manager.call("POST", "/api/v1/jobs", {"type": "preheat", "args": {
        "type": "image", "url": "registry.example/team/app:v1", "headers": {"X-Trace": "a\tb"}}}, token)
    assert status == 201, "a reference and a tab in a header value are fine"
