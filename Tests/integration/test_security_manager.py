"""Attacks on the manager, each performed and each refused (issue 17, items 9 and 10):
registering a scheduler or seed peer without the cluster's secret, flooding the sign-in
throttle with made-up names, telling real names from timing, reading credentials out of
jobs and cluster tasks as a guest, oversized sign-ups, a world-readable store, and a
token that outlives sign-out."""

import http.client
import json
import os
import statistics
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc
import pytest
from dragonfly_api import manager_pb2, manager_pb2_grpc

from conftest import Server, binary, describe, run
from test_limits import http1

HELPERS = Path(__file__).parent / "helpers"
sys.path.insert(0, str(HELPERS))
from manager_proc import (REGISTRATION_SECRET_KEY, ROOT_PASSWORD, Manager, WithMetadata,  # noqa: E402
                          registration_secret, wait_for)

REFUSED = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)


@pytest.fixture
def manager(tmp_path):
    m = Manager(tmp_path / "manager")
    yield m
    m.stop()


def plain_stub(m, *metadata):
    """A stub as anyone on the network has it: no secret, or the one given."""
    channel = grpc.insecure_channel(m.grpc)
    if metadata:
        channel = grpc.intercept_channel(channel, WithMetadata(*metadata))
    return manager_pb2_grpc.ManagerStub(channel)


def scheduler_request(hostname, ip, cluster_id=1):
    return manager_pb2.UpdateSchedulerRequest(source_type=manager_pb2.SCHEDULER_SOURCE, hostname=hostname, ip=ip,
                                              port=65002, scheduler_cluster_id=cluster_id)


def keep_alive_once(stub, hostname, ip, cluster_id=1, seconds=1.0):
    """A KeepAlive stream that sends a few pings and ends; returns the RpcError, if any."""
    def pings():
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            yield manager_pb2.KeepAliveRequest(source_type=manager_pb2.SCHEDULER_SOURCE, hostname=hostname, ip=ip,
                                               cluster_id=cluster_id)
            time.sleep(0.2)
    try:
        stub.KeepAlive(pings(), timeout=10)
        return None
    except grpc.RpcError as err:
        return err


def listed_hostnames(stub, ip="10.6.6.6"):
    answer = stub.ListSchedulers(manager_pb2.ListSchedulersRequest(source_type=manager_pb2.PEER_SOURCE, hostname="victim-node",
                                                                   ip=ip), timeout=10)
    return [s.hostname for s in answer.schedulers]


class Client:
    """REST calls from a chosen loopback address (all of 127/8 is local on Linux), one
    kept-alive connection per address, so a test can be many clients or one."""

    def __init__(self, m, source="127.0.0.1"):
        self.port = int(m.rest.rsplit(":", 1)[1])
        self.source = source
        self.conn = None

    def call(self, method, path, body=None, token=None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30, source_address=(self.source, 0))
            try:
                self.conn.request(method, path, body=data, headers=headers)
                res = self.conn.getresponse()
                raw = res.read()
                return res.status, raw, res.headers
            except (http.client.HTTPException, ConnectionError):
                # The server may close an idle or refused connection; one fresh try.
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def json(self, method, path, body=None, token=None):
        status, raw, headers = self.call(method, path, body, token)
        return status, (json.loads(raw) if raw else None), headers

    def sign_in(self, name, password):
        return self.call("POST", "/api/v1/users/signin", {"name": name, "password": password})

    def close(self):
        if self.conn:
            self.conn.close()


# --- item 9: registration ---------------------------------------------------------------

def test_a_scheduler_without_the_secret_is_refused_and_never_listed(manager):
    anyone = plain_stub(manager)
    for stub, expected in ((anyone, REFUSED), (plain_stub(manager, (REGISTRATION_SECRET_KEY, "guessed")), (grpc.StatusCode.PERMISSION_DENIED,))):
        with pytest.raises(grpc.RpcError) as refused:
            stub.UpdateScheduler(scheduler_request("evil-scheduler", "10.6.6.6"), timeout=10)
        assert refused.value.code() in expected, refused.value
        err = keep_alive_once(stub, "evil-scheduler", "10.6.6.6")
        assert err is not None and err.code() in REFUSED, err
    # Nothing was stored: not in what dfdaemons are told, not in the REST list either.
    assert "evil-scheduler" not in listed_hostnames(anyone)
    token = manager.sign_in()
    schedulers = manager.call("GET", "/api/v1/schedulers", token=token)[1]
    assert all(s["hostname"] != "evil-scheduler" for s in schedulers), schedulers

    # The same calls with the secret register it, and dfdaemons are then sent to it.
    manager.stub.UpdateScheduler(scheduler_request("good-scheduler", "10.0.0.8"), timeout=10)
    assert keep_alive_once(manager.stub, "good-scheduler", "10.0.0.8", seconds=0.3) is None
    streaming = {}

    def pings():
        while not streaming.get("done"):
            yield manager_pb2.KeepAliveRequest(source_type=manager_pb2.SCHEDULER_SOURCE, hostname="good-scheduler", ip="10.0.0.8",
                                               cluster_id=1)
            time.sleep(0.2)
    future = manager.stub.KeepAlive.future(pings(), timeout=30)
    try:
        # Read-only calls need no secret.
        assert wait_for(lambda: listed_hostnames(anyone) == ["good-scheduler"])
        got = anyone.GetScheduler(manager_pb2.GetSchedulerRequest(hostname="good-scheduler", ip="10.0.0.8", scheduler_cluster_id=1),
                                  timeout=10)
        assert got.hostname == "good-scheduler"
    finally:
        streaming["done"] = True
        future.result(timeout=10)


def test_seed_peer_registration_and_deletion_need_the_secret(manager):
    anyone = plain_stub(manager)
    seed = manager_pb2.UpdateSeedPeerRequest(source_type=manager_pb2.SEED_PEER_SOURCE, hostname="evil-seed", type="super",
                                             ip="10.6.6.7", port=65001, download_port=65001, seed_peer_cluster_id=1)
    with pytest.raises(grpc.RpcError) as refused:
        anyone.UpdateSeedPeer(seed, timeout=10)
    assert refused.value.code() in REFUSED
    token = manager.sign_in()
    assert manager.call("GET", "/api/v1/seed-peers", token=token)[1] == []

    seed.hostname = "seed-1"
    manager.stub.UpdateSeedPeer(seed, timeout=10)
    delete = manager_pb2.DeleteSeedPeerRequest(hostname="seed-1", ip="10.6.6.7", seed_peer_cluster_id=1)
    with pytest.raises(grpc.RpcError) as refused:
        anyone.DeleteSeedPeer(delete, timeout=10)
    assert refused.value.code() in REFUSED
    assert [s["hostname"] for s in manager.call("GET", "/api/v1/seed-peers", token=token)[1]] == ["seed-1"]
    # ListSeedPeers is what dfdaemons call: open.
    anyone.ListSeedPeers(manager_pb2.ListSeedPeersRequest(source_type=manager_pb2.PEER_SOURCE), timeout=10)
    manager.stub.DeleteSeedPeer(delete, timeout=10)
    assert manager.call("GET", "/api/v1/seed-peers", token=token)[1] == []


def test_with_nothing_configured_registration_is_off_unless_opted_in(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DRAGONFLY_REGISTRATION_SECRET"}
    env["DRAGONFLY_INITIAL_ROOT_PASSWORD"] = ROOT_PASSWORD
    base = [binary("manager"), "--grpc-port", "0", "--rest-port", "0", "--listen-ip", "127.0.0.1"]
    closed = Server(base + ["--data-dir", tmp_path / "closed"], tmp_path / "closed.log", env=env)
    try:
        stub = manager_pb2_grpc.ManagerStub(grpc.insecure_channel(closed.address))
        with pytest.raises(grpc.RpcError) as refused:
            stub.UpdateScheduler(scheduler_request("s", "10.0.0.1"), timeout=10)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "registrationSecret" in refused.value.details()
    finally:
        closed.stop()
    assert "registration: refused" in (tmp_path / "closed.log").read_text()
    opened = Server(base + ["--data-dir", tmp_path / "open", "--open-registration"], tmp_path / "open.log", env=env)
    try:
        stub = manager_pb2_grpc.ManagerStub(grpc.insecure_channel(opened.address))
        assert stub.UpdateScheduler(scheduler_request("s", "10.0.0.1"), timeout=10).hostname == "s"
    finally:
        opened.stop()
    assert "OPEN to anyone" in (tmp_path / "open.log").read_text()


def test_with_mutual_tls_a_client_certificate_suffices(tmp_path):
    made = subprocess.run(["bash", Path(__file__).resolve().parents[2] / "tools" / "make-test-ca.sh", tmp_path / "ca", "manager", "client"],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    ca = tmp_path / "ca"
    env = {k: v for k, v in os.environ.items() if k != "DRAGONFLY_REGISTRATION_SECRET"}
    env["DRAGONFLY_INITIAL_ROOT_PASSWORD"] = ROOT_PASSWORD
    m = Server([binary("manager"), "--grpc-port", "0", "--rest-port", "0", "--listen-ip", "127.0.0.1", "--data-dir", tmp_path / "m",
                "--tls-cert", ca / "manager.pem", "--tls-key", ca / "manager.key", "--tls-ca", ca / "ca.pem"], tmp_path / "m.log", env=env)
    try:
        assert "client certificates (mutual TLS)" in (tmp_path / "m.log").read_text()
        creds = grpc.ssl_channel_credentials(root_certificates=(ca / "ca.pem").read_bytes(),
                                             private_key=(ca / "client.key").read_bytes(),
                                             certificate_chain=(ca / "client.pem").read_bytes())
        stub = manager_pb2_grpc.ManagerStub(grpc.secure_channel(f"localhost:{m.port}", creds))
        assert stub.UpdateScheduler(scheduler_request("cert-scheduler", "10.0.0.2"), timeout=10).hostname == "cert-scheduler"
        # Without a certificate there is no connection to call on at all.
        bare = manager_pb2_grpc.ManagerStub(grpc.secure_channel(
            f"localhost:{m.port}", grpc.ssl_channel_credentials(root_certificates=(ca / "ca.pem").read_bytes())))
        with pytest.raises(grpc.RpcError) as refused:
            bare.UpdateScheduler(scheduler_request("evil-scheduler", "10.6.6.6"), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        m.stop()


def test_our_scheduler_with_a_wrong_secret_stays_out(manager, tmp_path):
    sched = Server([binary("scheduler"), "--port", "0", "--metrics-port", "0", "--listen-ip", "127.0.0.1", "--advertise-ip", "127.0.0.1",
                    "--data-dir", tmp_path / "s", "--manager", manager.grpc, "--registration-secret", "not-the-secret"],
                   tmp_path / "s.log")
    try:
        assert wait_for(lambda: "refused registration" in (tmp_path / "s.log").read_text()), (tmp_path / "s.log").read_text()[-2000:]
        assert listed_hostnames(plain_stub(manager), ip="127.0.0.1") == []
    finally:
        sched.stop()


# --- item 10: sign-in ------------------------------------------------------------------

def sign_up(client, name, password="victim-password-1", email=""):
    status, raw, _ = client.call("POST", "/api/v1/users/signup", {"name": name, "password": password, "email": email})
    assert status == 201, (status, raw[:300])


def test_flooding_made_up_names_does_not_unlock_a_real_account(manager):
    attacker = Client(manager, "127.0.0.2")
    sign_up(attacker, "victim")
    for _ in range(5):
        assert attacker.sign_in("victim", "wrong-password")[0] == 401
    status, raw, headers = attacker.sign_in("victim", "wrong-password")
    assert status == 429 and b"victim" in raw and int(headers["Retry-After"]) > 0
    # 10,000 made-up names from a few addresses: the first of each address fail (and are
    # recorded), the rest are stopped by the per-address limit before they cost a hash.
    answers = {}
    floods = [Client(manager, f"127.0.1.{i}") for i in range(1, 6)]
    started = time.monotonic()
    for n in range(10_000):
        status = floods[n % len(floods)].sign_in(f"made-up-{n}-{uuid.uuid4().hex[:6]}", "whatever")[0]
        answers[status] = answers.get(status, 0) + 1
    flood_seconds = time.monotonic() - started
    assert set(answers) <= {401, 429} and answers.get(429, 0) > 9000, answers
    # From an address that never failed: the account is still held, the right password too.
    fresh = Client(manager, "127.0.0.3")
    status, raw, _ = fresh.sign_in("victim", "victim-password-1")
    assert status == 429 and b"for victim" in raw, (status, raw, answers, flood_seconds)
    # The held address is refused whatever name it tries; another address is not.
    assert floods[0].sign_in("victim-2", "x" * 10)[0] == 429
    assert Client(manager, "127.0.0.4").sign_in("root", ROOT_PASSWORD)[0] == 200
    for c in (attacker, fresh, *floods):
        c.close()


def test_sign_in_time_does_not_tell_real_names_from_made_up_ones(manager):
    known = Client(manager, "127.0.0.5")
    unknown = Client(manager, "127.0.0.6")
    names = [f"user-{i}" for i in range(10)]
    for name in names:
        sign_up(known, name)
    real, made_up = [], []
    for name in names:  # interleaved, so load on the machine hits both alike
        started = time.perf_counter()
        assert known.sign_in(name, "wrong-password")[0] == 401
        real.append(time.perf_counter() - started)
        started = time.perf_counter()
        assert unknown.sign_in(f"nobody-{uuid.uuid4().hex}", "wrong-password")[0] == 401
        made_up.append(time.perf_counter() - started)
    ratio = statistics.median(real) / statistics.median(made_up)
    print(f"median sign-in: real name {statistics.median(real) * 1000:.1f} ms, "
          f"made-up name {statistics.median(made_up) * 1000:.1f} ms, ratio {ratio:.2f}")
    assert 1 / 3 < ratio < 3, (real, made_up)


def test_sign_up_fields_are_bounded(manager):
    c = Client(manager)
    # A 1 MB address (the body cap, 1 MiB, lets it through to the check).
    for body in ({"name": "big-email", "password": "password-1", "email": "a" * 1_000_000 + "@example.com"},
                 {"name": "long-email", "password": "password-1", "email": "a" * 243 + "@example.com"},
                 {"name": "n" * 65, "password": "password-1"},
                 {"name": "long-password", "password": "p" * 1025},
                 {"name": "ctl\u0007name", "password": "password-1"}):
        status, raw, _ = c.call("POST", "/api/v1/users/signup", body)
        assert status == 400, (status, raw[:200], {k: len(v) for k, v in body.items()})
    status, raw, _ = c.call("POST", "/api/v1/users/signin", {"name": "root", "password": "p" * 1_000_000})
    assert status == 400, (status, raw[:200])
    sign_up(c, "fits", email="a" * 242 + "@example.com")


# --- item 10: the store and sessions -----------------------------------------------------

def test_the_store_is_private_to_the_manager(manager):
    root = Path(manager.root)
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700, oct(os.stat(root).st_mode)
    manager.sign_in()  # writes: the WAL and shared-memory files exist now
    for name in ("manager.db", "manager.db-wal", "manager.db-shm", "jwt.key"):
        path = root / name
        if name == "manager.db" or path.exists():
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, (name, oct(os.stat(path).st_mode))


def test_a_signed_out_token_is_refused_even_after_a_restart(manager):
    token = manager.sign_in()
    other = manager.sign_in()
    assert manager.call("GET", "/api/v1/users/me", token=token)[0] == 200
    assert manager.call("POST", "/api/v1/users/signout", token=token)[0] == 204
    assert manager.call("GET", "/api/v1/users/me", token=token)[0] == 401
    # Only that session ended.
    assert manager.call("GET", "/api/v1/users/me", token=other)[0] == 200
    manager.restart()
    assert manager.call("GET", "/api/v1/users/me", token=token)[0] == 401
    assert manager.call("GET", "/api/v1/users/me", token=other)[0] == 200


# --- item 10: credentials in what guests see -------------------------------------------

SECRETS = ["COOKIE-SECRET-1", "APIKEY-SECRET-2", "BEARER-SECRET-3", "CUSTOM-TOKEN-SECRET-4", "AMZSIG-SECRET-5",
           "AMZCRED-SECRET-6", "AMZTOKEN-SECRET-7", "GOOGSIG-SECRET-8", "PASSWORD-SECRET-9"]


def guest_token(manager):
    c = Client(manager)
    sign_up(c, "guest-1", password="guest-password-1")
    status, body, _ = c.json("POST", "/api/v1/users/signin", {"name": "guest-1", "password": "guest-password-1"})
    assert status == 200
    return body["token"]


def test_a_guest_sees_jobs_without_their_credentials(manager):
    root = manager.sign_in()
    url = ("http://origin.example/blob?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=AMZSIG-SECRET-5"
           "&X-Amz-Credential=AMZCRED-SECRET-6&X-Amz-Security-Token=AMZTOKEN-SECRET-7&part=7")
    args = {"type": "file", "urls": [url, "https://user:PASSWORD-SECRET-9@storage.example/o?X-Goog-Signature=GOOGSIG-SECRET-8"],
            "headers": {"Cookie": "session=COOKIE-SECRET-1", "X-Api-Key": "APIKEY-SECRET-2", "Authorization": "Bearer BEARER-SECRET-3",
                        "X-Custom-Token": "CUSTOM-TOKEN-SECRET-4", "Accept": "application/json"}}
    status, job, _ = manager.call("POST", "/api/v1/jobs", {"type": "preheat", "args": args}, root)
    assert status == 201, job
    guest = guest_token(manager)
    c = Client(manager)
    views = [c.call("GET", path, token=guest) for path in ("/api/v1/jobs", f"/api/v1/jobs/{job['id']}", f"/api/v1/preheat/{job['id']}")]
    for status, raw, _ in views:
        assert status == 200, raw[:300]
        text = raw.decode()
        leaked = [s for s in SECRETS if s in text]
        assert not leaked, (leaked, text[:2000])
        # What is not a credential stays readable.
        assert "part=7" in text and "application/json" in text and "X-Amz-Signature=******" in text
    # Root's view is masked the same way: nobody reads these back through the API.
    assert not [s for s in SECRETS if s in c.call("GET", f"/api/v1/jobs/{job['id']}", token=root)[1].decode()]


def test_a_guest_sees_cluster_tasks_without_signed_url_parameters(manager, tmp_path):
    (tmp_path / "origin").mkdir()
    (tmp_path / "origin" / "f.bin").write_bytes(os.urandom(1 << 20))
    servers = []
    try:
        origin = Server([sys.executable, HELPERS / "range_origin.py", "0", tmp_path / "origin"], tmp_path / "o.log")
        servers.append(origin)
        servers.append(Server([binary("scheduler"), "--port", "0", "--metrics-port", "0", "--listen-ip", "127.0.0.1",
                               "--advertise-ip", "127.0.0.1", "--data-dir", tmp_path / "s", "--manager", manager.grpc], tmp_path / "s.log"))
        servers.append(Server([binary("dfdaemon"), "--port", "0", "--listen-ip", "127.0.0.1", "--hostname", "node", "--manager", manager.grpc,
                               "--data-dir", tmp_path / "d", "--unix-socket", tmp_path / "d.sock"], tmp_path / "d.log"))
        assert wait_for(lambda: "names schedulers" in (tmp_path / "d.log").read_text(), timeout=30)
        url = f"http://{origin.address}/f.bin?X-Amz-Signature=AMZSIG-SECRET-5&X-Amz-Credential=AMZCRED-SECRET-6&v=1"
        res = run([binary("dfget"), url, "-O", tmp_path / "f.out", "--daemon", f"unix:{tmp_path}/d.sock", "--quiet"], timeout=60)
        assert res.returncode == 0, describe(res)
        guest = guest_token(manager)
        c = Client(manager)

        def tasks():
            status, raw, _ = c.call("GET", "/api/v1/scheduler-clusters/1/tasks", token=guest)
            assert status == 200, raw[:300]
            return raw.decode()
        assert wait_for(lambda: "f.bin" in tasks(), timeout=20), tasks()
        text = tasks()
        assert "AMZSIG-SECRET-5" not in text and "AMZCRED-SECRET-6" not in text, text
        assert "v=1" in text and "X-Amz-Signature=******" in text, text
    finally:
        for s in reversed(servers):
            s.stop()


def test_rest_refuses_hostile_ids_paths_and_methods(manager):
    """The REST router, attacked: ids at and past the integer limits, encoded traversal and
    NUL in a path, methods it does not route, a body on a GET. Each is a clear 4xx in JSON;
    the manager stays up and answers normally afterwards."""
    token = manager.sign_in()
    for bad_id in ("0", "-1", "18446744073709551616", "99999999999999999999999", "1e3", "%00", "%2e%2e"):
        status, body, _ = manager.call("GET", f"/api/v1/scheduler-clusters/{bad_id}", token=token)
        assert status == 400 and body["message"], (bad_id, status, body)
    status, body, _ = manager.call("GET", "/api/v1/scheduler-clusters/18446744073709551615", token=token)
    assert status == 404 and body["message"], (status, body)
    for path in ("/api/v1/../../etc/passwd", "/api/v1/%2e%2e/%2e%2e/etc/passwd", "/console/../api/v1/users", "/api/v1/users/1/extra"):
        status, body, _ = manager.call("GET", path, token=token)
        assert status == 404 and "passwd" not in json.dumps(body or {}).replace(path, ""), (path, status, body)
    status, body, headers = manager.call("PUT", "/api/v1/users/1", {"name": "x"}, token=token)
    assert status == 405 and headers["Allow"] == "GET", (status, body)
    for page in ("0", "-1", "9223372036854775808", "abc"):
        status, body, _ = manager.call("GET", f"/api/v1/users?page={page}", token=token)
        assert status == 400, (page, status, body)
    port = int(manager.rest.rsplit(":", 1)[1])
    odd = http1(port, b"BREW /api/v1/users HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
    assert odd.startswith(b"HTTP/1.1 4"), odd[:200]
    with_body = http1(port, b"GET /healthy HTTP/1.1\r\nHost: m\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
    assert with_body.startswith(b"HTTP/1.1 200"), with_body[:200]
    nul = http1(port, b"GET /api/v1/users/\x00 HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
    assert nul.startswith(b"HTTP/1.1 4"), nul[:200]
    status, _, _ = manager.call("GET", "/api/v1/users/me", token=token)
    assert status == 200


def test_preheat_numbers_past_any_integer_are_refused_not_fatal(manager):
    """A job's args are JSON numbers of any size: 1e20 as a piece length used to trap the
    manager in the conversion, before the range checks. Each is a 400, or bounded, and the
    manager answers afterwards."""
    token = manager.sign_in()
    base = {"type": "file", "url": "https://origin.example/x"}
    for extra in ({"piece_length": 1e20}, {"count": -1e19}, {"piece_length": 4194304.5}):
        status, body, _ = manager.call("POST", "/api/v1/jobs", {"type": "preheat", "args": {**base, **extra}}, token)
        assert status == 400 and body["message"], (extra, status, body)
    status, job, _ = manager.call("POST", "/api/v1/jobs", {"type": "preheat", "args": {
        **base, "scope": "all_peers", "count": 1e19, "concurrent_task_count": -1e19}}, token)
    assert status == 201, job
    status, _, _ = manager.call("GET", "/api/v1/users/me", token=token)
    assert status == 200
