"""The dfdaemon's trust boundary, attacked as an anonymous client on loopback would (issue 17):
who may write files, hostile piece lengths, the origin policy on every fetch path and every
redirect hop, digests on cache hits, credentials kept from the scheduler, and downloads that
nobody waits for. Each test performs the attack and asserts the refusal, then that the daemon
still serves."""

import http.server
import os
import socket
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest
import yaml
from dragonfly_api import common_pb2, dfdaemon_pb2, dfdaemon_pb2_grpc, scheduler_pb2, scheduler_pb2_grpc
from google.protobuf import empty_pb2

from conftest import Server, binary, run

HELPERS = Path(__file__).parent / "helpers"
MIB = 1 << 20
REPO = Path(__file__).resolve().parents[2]


STARTED = []


@pytest.fixture(autouse=True)
def stop_what_a_test_left():
    """A test that fails midway still stops the servers it started."""
    yield
    while STARTED:
        STARTED.pop().stop()


def started(server):
    STARTED.append(server)
    return server


def origin(tmp_path, files, name="origin", delay=None):
    root = tmp_path / name
    root.mkdir(exist_ok=True)
    for file, data in files.items():
        (root / file).write_bytes(data)
    args = [sys.executable, HELPERS / "range_origin.py", "0", root] + ([str(delay)] if delay else [])
    return started(Server(args, tmp_path / f"{name}.log"))


def gets(server):
    return [line for line in Path(server.log_path).read_text(errors="replace").splitlines() if line.startswith("GET")]


def daemon(tmp_path, config="", *extra, name="d"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(config)
    return started(Server([binary("dfdaemon"), "--config", path, "--port", "0", "--listen-ip", "127.0.0.1",
                           "--hostname", name, "--data-dir", tmp_path / f"{name}-data", "--unix-socket", tmp_path / f"{name}.sock",
                           *extra], tmp_path / f"{name}.log"))


def download_request(url, **fields):
    return dfdaemon_pb2.DownloadTaskRequest(download=common_pb2.Download(url=url, type=common_pb2.STANDARD, **fields))


def refused(call, code):
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() == code, (err.value.code(), err.value.details())
    return err.value.details()


def healthy_download(d, url, expected, out):
    """The daemon still serves after an attack: a normal download over its socket."""
    res = run([binary("dfget"), url, "-O", out, "--daemon", f"unix:{d.log_path.parent}/{d.log_path.stem}.sock", "--quiet"],
              timeout=60)
    assert res.returncode == 0, res.stderr
    assert Path(out).read_bytes() == expected
    d.assert_alive()


class InProcessOrigin:
    """An HTTP server in this process whose `respond(handler, body)` answers HEAD and GET;
    the headers of every request are kept in `seen`."""

    def __init__(self):
        outer = self
        self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.seen.append(dict(self.headers))
                outer.respond(self, True)

            def do_HEAD(self):
                outer.seen.append(dict(self.headers))
                outer.respond(self, False)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class RedirectingOrigin(InProcessOrigin):
    """Answers every request with a redirect to `target`."""

    def __init__(self, target):
        self.target = target
        super().__init__()

    def respond(self, h, body):
        h.send_response(302)
        h.send_header("Location", self.target + h.path)
        h.send_header("Content-Length", "0")
        h.end_headers()


# 1. Who may write files ---------------------------------------------------------------------

def test_tcp_clients_cannot_reach_the_download_service_or_write_files(tmp_path):
    data = os.urandom(MIB)
    o = origin(tmp_path, {"f.bin": data})
    d = daemon(tmp_path, f"download:\n  allowedOutputDirs: [{tmp_path}/out]\n")
    victim = tmp_path / "out" / "victim"
    url = f"http://{o.address}/f.bin"
    with grpc.insecure_channel(d.address) as channel:
        download = dfdaemon_pb2_grpc.DfdaemonDownloadStub(channel)
        refused(lambda: list(download.DownloadTask(download_request(url, output_path=str(victim)), timeout=30)),
                grpc.StatusCode.UNIMPLEMENTED)
        refused(lambda: download.DeleteTask(dfdaemon_pb2.DeleteTaskRequest(task_id="a" * 64), timeout=10),
                grpc.StatusCode.UNIMPLEMENTED)
        # The upload service (for the scheduler and the manager) downloads into the cache only.
        upload = dfdaemon_pb2_grpc.DfdaemonUploadStub(channel)
        answers = list(upload.DownloadTask(download_request(url, output_path=str(victim)), timeout=30))
        assert answers and answers[0].WhichOneof("response") == "download_task_started_response"
    assert not victim.exists(), "the upload service wrote a file a remote client named"
    assert not (tmp_path / "out").exists()
    healthy_download(d, url, data, tmp_path / "out" / "ok.bin")
    for s in (d, o):
        s.stop()


def test_output_paths_outside_the_allowed_directories_or_through_symlinks_are_refused(tmp_path):
    data = os.urandom(MIB)
    o = origin(tmp_path, {"f.bin": data})
    allowed = tmp_path / "out"
    (allowed / "sub").mkdir(parents=True)
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir()
    (secret_dir / "keep").write_text("untouched")
    os.symlink(secret_dir, allowed / "link")            # a symlinked directory below the allowed one
    os.symlink(secret_dir / "keep", allowed / "file-link")  # an existing entry that is a symlink
    d = daemon(tmp_path, f"download:\n  allowedOutputDirs: [{allowed}]\n")
    url = f"http://{o.address}/f.bin"
    with grpc.insecure_channel(f"unix:{tmp_path}/d.sock") as channel:
        stub = dfdaemon_pb2_grpc.DfdaemonDownloadStub(channel)
        for path in (secret_dir / "new", "relative/out.bin", f"{allowed}/../secret/keep", f"{allowed}/link/keep",
                     f"{allowed}/file-link", "/etc/dragonfly-test-should-not-exist", str(allowed)):
            why = refused(lambda: list(stub.DownloadTask(download_request(url, output_path=str(path)), timeout=30)),
                          grpc.StatusCode.PERMISSION_DENIED)
            assert "output path" in why, why
        assert not Path("/etc/dragonfly-test-should-not-exist").exists()
        assert (secret_dir / "keep").read_text() == "untouched"
        assert sorted(os.listdir(secret_dir)) == ["keep"]
        assert gets(o) == [], "a refused path cost the origin nothing"
        # Inside the allowed directory, including one made on the way, it works.
        list(stub.DownloadTask(download_request(url, output_path=str(allowed / "sub" / "new" / "f.bin")), timeout=30))
    assert (allowed / "sub" / "new" / "f.bin").read_bytes() == data
    for s in (d, o):
        s.stop()


def test_download_over_tcp_needs_mutual_tls(tmp_path):
    res = run([binary("dfdaemon"), "--port", "0", "--download-over-tcp", "--data-dir", tmp_path / "d", "--unix-socket", ""],
              timeout=30)
    assert res.returncode != 0 and "mutual TLS" in res.stderr, res.stderr


# 2. Hostile piece lengths -------------------------------------------------------------------

def test_hostile_piece_lengths_are_refused_and_the_daemon_keeps_serving(tmp_path):
    data = os.urandom(MIB)
    o = origin(tmp_path, {"f.bin": data})
    d = daemon(tmp_path, f"proxy:\n  registryMirror:\n    url: http://{o.address}\n")
    url = f"http://{o.address}/f.bin"
    with grpc.insecure_channel(f"unix:{tmp_path}/d.sock") as local, grpc.insecure_channel(d.address) as remote:
        for stub in (dfdaemon_pb2_grpc.DfdaemonDownloadStub(local), dfdaemon_pb2_grpc.DfdaemonUploadStub(remote)):
            for length in (2**64 - 1, 2**63, 1, 0x1000, (64 << 20) + 1):
                why = refused(lambda: list(stub.DownloadTask(download_request(url, piece_length=length), timeout=30)),
                              grpc.StatusCode.INVALID_ARGUMENT)
                assert "piece" in why, why
    for length in ("18446744073709551615", "1", "99999999999999999999999", "-4"):
        status, body = mirror_get(d.port, f"/v2/x/blobs/sha256:{'a' * 64}", {"X-Dragonfly-Piece-Length": length})
        assert status == 400 and b"Piece-Length" in body, (length, body[:300])
    assert gets(o) == [], "no refused request reached the origin"
    healthy_download(d, url, data, tmp_path / "ok.bin")
    for s in (d, o):
        s.stop()


def test_an_origin_claiming_an_enormous_length_is_refused(tmp_path):
    class Liar(InProcessOrigin):
        def respond(self, h, body):
            h.send_response(200)
            h.send_header("Content-Length", str(2**64 - 1))
            h.end_headers()

    liar = Liar()
    d = daemon(tmp_path)
    try:
        with grpc.insecure_channel(f"unix:{tmp_path}/d.sock") as channel:
            stub = dfdaemon_pb2_grpc.DfdaemonDownloadStub(channel)
            for length in (None, 4 << 20):
                fields = {"piece_length": length} if length else {}
                why = refused(lambda: list(stub.DownloadTask(download_request(
                    f"http://{liar.address}/huge", **fields), timeout=30)),
                    grpc.StatusCode.INVALID_ARGUMENT)
                assert "pieces" in why, why
        d.assert_alive()
    finally:
        liar.close()
        d.stop()


def mirror_get(port, path, headers=None, absolute=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    target = absolute or path
    lines = [f"GET {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    return int(data.split(b" ", 2)[1]), data


# 4. One origin policy for every fetch --------------------------------------------------------

def test_a_redirect_from_an_allowed_origin_to_another_host_is_refused(tmp_path):
    data = os.urandom(MIB)
    other = origin(tmp_path, {"f.bin": data}, name="other")
    hop = RedirectingOrigin(f"http://{other.address}")
    d = daemon(tmp_path, f"download:\n  allowedOrigins: [\"{hop.address}\"]\n")
    try:
        with grpc.insecure_channel(f"unix:{tmp_path}/d.sock") as channel:
            stub = dfdaemon_pb2_grpc.DfdaemonDownloadStub(channel)
            why = refused(lambda: list(stub.DownloadTask(download_request(f"http://{hop.address}/f.bin"), timeout=30)),
                          grpc.StatusCode.PERMISSION_DENIED)
            assert "allowedOrigins" in why, why
        assert hop.seen, "the allowed origin was asked"
        assert Path(other.log_path).read_text().count("HEAD") == 0 and gets(other) == [], "the redirect target was never contacted"
        d.assert_alive()
    finally:
        hop.close()
        for s in (d, other):
            s.stop()


class RecordingFileOrigin(InProcessOrigin):
    """Serves one file, Range honoured."""

    def __init__(self, data):
        self.data = data
        super().__init__()

    def respond(self, h, body):
        first, last = 0, len(self.data) - 1
        if rng := h.headers.get("Range"):
            a, b = rng.split("=", 1)[1].split("-")
            first, last = int(a), min(int(b), len(self.data) - 1)
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {first}-{last}/{len(self.data)}")
        else:
            h.send_response(200)
        h.send_header("Content-Length", str(last - first + 1))
        h.end_headers()
        if body:
            h.wfile.write(self.data[first:last + 1])


def test_credentials_are_not_sent_to_the_host_a_redirect_names(tmp_path):
    data = os.urandom(MIB)
    other = RecordingFileOrigin(data)
    hop = RedirectingOrigin(f"http://{other.address}")
    d = daemon(tmp_path)
    try:
        res = run([binary("dfget"), f"http://{hop.address}/f.bin", "-O", tmp_path / "f.out", "--daemon", f"unix:{tmp_path}/d.sock",
                   "-H", "Authorization: Bearer hop-only-secret", "-H", "Accept: application/x-test", "--quiet"], timeout=60)
        assert res.returncode == 0, res.stderr
        assert (tmp_path / "f.out").read_bytes() == data
        assert any(h.get("Authorization") == "Bearer hop-only-secret" for h in hop.seen), "the first host got the login"
        assert other.seen, "the redirect was followed"
        assert all("hop-only-secret" not in str(h) for h in other.seen), other.seen
        assert all(h.get("Accept") == "application/x-test" for h in other.seen), "other headers still go"
    finally:
        hop.close()
        other.close()
        d.stop()


def test_a_registrys_credentials_never_go_over_another_scheme(tmp_path):
    # The login is for https://HOST; a client names http://HOST (header, or an absolute URI
    # through the proxy), where whoever listens in plain text would read it.
    class Registry(InProcessOrigin):
        """Asks for Basic credentials, as the registry the login is for would."""

        def respond(self, h, body):
            h.send_response(401)
            h.send_header("WWW-Authenticate", 'Basic realm="registry"')
            h.send_header("Content-Length", "0")
            h.end_headers()

    plain = Registry()
    host = plain.address
    d = daemon(tmp_path, f"proxy:\n  registryMirror:\n    url: http://{host}\n  registries:\n"
                         f"    - url: https://{host}\n      username: bob\n      password: hunter2\n")
    try:
        for path, headers in (("/v2/a/manifests/v1", {"X-Dragonfly-Registry": f"http://{host}"}),
                              (f"http://{host}/v2/a/manifests/v1", {})):
            status, body = mirror_get(d.port, path, headers)
            assert status == 401, (path, status, body)
        assert plain.seen, "the requests went to the plain-text host"
        assert all("Authorization" not in h for h in plain.seen), plain.seen
        d.assert_alive()
    finally:
        plain.close()
        d.stop()


def test_refuse_private_origins_refuses_loopback_on_every_path(tmp_path):
    data = os.urandom(MIB)
    o = origin(tmp_path, {"f.bin": data})
    d = daemon(tmp_path, "download:\n  refusePrivateOrigins: true\n"
                         "proxy:\n  registryMirror:\n    url: http://127.0.0.1:9\n    dynamic: true\n")
    with grpc.insecure_channel(f"unix:{tmp_path}/d.sock") as channel:
        stub = dfdaemon_pb2_grpc.DfdaemonDownloadStub(channel)
        for url in (f"http://{o.address}/f.bin", f"http://localhost:{o.port}/f.bin", f"http://127.1:{o.port}/f.bin",
                    f"http://[::ffff:127.0.0.1]:{o.port}/f.bin", f"http://2130706433:{o.port}/f.bin", "file:///etc/passwd"):
            why = refused(lambda: list(stub.DownloadTask(download_request(url), timeout=30)), grpc.StatusCode.PERMISSION_DENIED)
            assert "private" in why or "http(s)" in why, (url, why)
    # The mirror: a P2P blob, a manifest through the direct proxy, and an absolute-form request.
    for path, absolute in ((f"/v2/x/blobs/sha256:{'b' * 64}?ns={o.address}", None),
                           (f"/v2/x/manifests/latest?ns={o.address}", None),
                           (None, f"http://{o.address}/f.bin")):
        status, body = mirror_get(d.port, path, absolute=absolute)
        assert status == 403 and b"private" in body, (path, absolute, body[:300])
    assert gets(o) == [] and "HEAD" not in Path(o.log_path).read_text(), "no refused request reached the origin"
    for s in (d, o):
        s.stop()


REDIRECTOR = """
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass
    def answer(self):
        self.send_response(302)
        self.send_header("Location", sys.argv[1])
        self.send_header("Content-Length", "0")
        self.end_headers()
    do_GET = do_HEAD = answer
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"LISTENING {server.server_address[1]}", flush=True)
server.serve_forever()
"""


def test_link_local_and_metadata_addresses_are_refused_directly_and_through_redirects(tmp_path):
    # The daemon runs in a network namespace of its own that holds only loopback: were a
    # refusal to fail, the connection still could not leave this machine.
    d = Server(["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', binary("dfdaemon"), "--port", "0",
                "--listen-ip", "127.0.0.1", "--hostname", "d", "--data-dir", tmp_path / "d-data",
                "--unix-socket", tmp_path / "d.sock"], tmp_path / "d.log")
    script = tmp_path / "redirector.py"
    script.write_text(REDIRECTOR)
    hop = Server(["nsenter", f"--net=/proc/{d.proc.pid}/ns/net", sys.executable, script,
                  "http://169.254.169.254/latest/meta-data/iam/security-credentials/"], tmp_path / "hop.log")
    try:
        with grpc.insecure_channel(f"unix:{tmp_path}/d.sock") as channel:
            stub = dfdaemon_pb2_grpc.DfdaemonDownloadStub(channel)
            for url in ("http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/latest/meta-data/",
                        "http://[::ffff:169.254.169.254]/", "http://100.100.100.200/latest/meta-data/",
                        "http://2852039166/", f"http://127.0.0.1:{hop.port}/f.bin"):
                why = refused(lambda: list(stub.DownloadTask(download_request(url), timeout=30)), grpc.StatusCode.PERMISSION_DENIED)
                assert "link-local" in why, (url, why)
        d.assert_alive()
    finally:
        hop.stop()
        d.stop()
    # Allowed explicitly, the same request is attempted (and fails: the namespace has no route).
    config = tmp_path / "open.yaml"
    config.write_text("download:\n  allowLinkLocalOrigins: true\n")
    d = Server(["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', binary("dfdaemon"), "--config", config,
                "--port", "0", "--listen-ip", "127.0.0.1", "--hostname", "open", "--data-dir", tmp_path / "open-data",
                "--unix-socket", tmp_path / "open.sock"], tmp_path / "open.log")
    try:
        with grpc.insecure_channel(f"unix:{tmp_path}/open.sock") as channel:
            stub = dfdaemon_pb2_grpc.DfdaemonDownloadStub(channel)
            with pytest.raises(grpc.RpcError) as err:
                list(stub.DownloadTask(download_request("http://169.254.169.254/latest/meta-data/"), timeout=30))
            assert err.value.code() != grpc.StatusCode.PERMISSION_DENIED and "link-local" not in err.value.details()
    finally:
        d.stop()


def test_the_mirror_honours_the_allow_list_for_dynamic_upstreams(tmp_path):
    data = os.urandom(MIB)
    allowed = origin(tmp_path, {"f.bin": data}, name="allowed")
    other = origin(tmp_path, {"f.bin": data}, name="other")
    d = daemon(tmp_path, f"download:\n  allowedOrigins: [\"{allowed.address}\"]\n"
                         f"proxy:\n  registryMirror:\n    url: http://{allowed.address}\n    dynamic: true\n")
    for path, absolute in ((f"/v2/x/manifests/latest?ns={other.address}", None), (None, f"http://{other.address}/f.bin")):
        status, body = mirror_get(d.port, path, absolute=absolute)
        assert status == 403 and b"allowedOrigins" in body, body[:300]
    assert gets(other) == [] and "HEAD" not in Path(other.log_path).read_text(), "the other host was never contacted"
    for s in (d, allowed, other):
        s.stop()


def test_shipped_examples_do_not_make_the_mirror_an_open_proxy():
    for path in (REPO / "docker" / "dfdaemon.yaml",):
        config = yaml.safe_load(path.read_text())
        assert config["proxy"]["registryMirror"].get("dynamic", False) is False, path


# 5. Digests on cache hits -------------------------------------------------------------------

def test_a_digest_is_checked_on_cache_hits_and_a_wrong_one_deletes_nothing(tmp_path):
    import hashlib
    data = os.urandom(5 * MIB)
    o = origin(tmp_path, {"f.bin": data})
    d = daemon(tmp_path)
    url = f"http://{o.address}/f.bin"
    sock = f"unix:{tmp_path}/d.sock"
    right = "sha256:" + hashlib.sha256(data).hexdigest()
    wrong = "sha256:" + hashlib.sha256(b"something else").hexdigest()

    # A first request with a wrong digest fails, but the pieces it fetched stay.
    res = run([binary("dfget"), url, "-O", tmp_path / "a.out", "--daemon", sock, "--digest", wrong, "--quiet"], timeout=60)
    assert res.returncode == 3, res.stderr
    fetched = len(gets(o))
    assert fetched == 2
    # A cache hit with the wrong digest: refused, exit 3, nothing fetched, nothing deleted.
    res = run([binary("dfget"), url, "-O", tmp_path / "b.out", "--daemon", sock, "--digest", wrong, "--quiet"], timeout=60)
    assert res.returncode == 3 and "digest" in res.stderr, res.stderr
    assert not (tmp_path / "b.out").exists()
    # The right digest, and no digest, are served from the cache.
    for extra in (["--digest", right], []):
        res = run([binary("dfget"), url, "-O", tmp_path / "c.out", "--daemon", sock, "--quiet", "--overwrite", *extra], timeout=60)
        assert res.returncode == 0 and (tmp_path / "c.out").read_bytes() == data, res.stderr
    assert len(gets(o)) == fetched, "the wrong-digest requests deleted nothing"
    for s in (d, o):
        s.stop()


class HeldLengthlessOrigin(InProcessOrigin):
    """Gives no length anywhere (HEAD, ranged GET), so the daemon spools the body to a file
    of the task's name; the whole-body GET sends 64 KiB, then waits for `release`."""

    def __init__(self):
        self.release = threading.Event()
        super().__init__()

    def respond(self, h, body):
        h.send_response(200)
        h.end_headers()
        if not body:
            return
        h.wfile.write(b"x" * 65536)
        h.wfile.flush()
        if h.headers.get("Range") is None:
            self.release.wait(30)
            h.wfile.write(b"y" * 65536)


def test_a_blob_digest_in_a_url_cannot_name_a_file_outside_the_store(tmp_path):
    # A task id taken from `…/blobs/sha256:<64 characters>` named the spool file of an origin
    # without a length; 64 characters of `../` and a name put it in any directory.
    victim = tmp_path / "victim"
    victim.mkdir()
    o = HeldLengthlessOrigin()
    d = daemon(tmp_path)
    digest = "../../victim/" + "a" * 51
    assert len(digest) == 64
    url = f"http://{o.address}/v2/x/blobs/sha256:{digest}"
    spool = tmp_path / "d-data" / "spool"
    try:
        with grpc.insecure_channel(d.address) as channel, futures.ThreadPoolExecutor(1) as pool:
            stub = dfdaemon_pb2_grpc.DfdaemonUploadStub(channel)
            call = pool.submit(lambda: list(stub.DownloadTask(download_request(url, enable_task_id_based_blob_digest=True),
                                                              timeout=60)))
            deadline = time.monotonic() + 30
            while not any(victim.iterdir()) and not (spool.is_dir() and any(spool.iterdir())):
                assert time.monotonic() < deadline and not call.done(), "the body was never spooled"
                time.sleep(0.05)
            assert list(victim.iterdir()) == [], "a file was written outside the store"
            spooled = [p.name.split(".")[0] for p in spool.iterdir()]
            assert all(len(n) == 64 and all(c in "0123456789abcdef" for c in n) for n in spooled), spooled
            o.release.set()
            responses = call.result(timeout=60)
        assert responses and all(r.task_id == spooled[0] for r in responses)
        assert list(victim.iterdir()) == []
        d.assert_alive()
    finally:
        o.release.set()
        o.close()
        d.stop()


# 6. Credentials stay on the peer that owns them ------------------------------------------------

class RecordingScheduler(scheduler_pb2_grpc.SchedulerServicer):
    """A scheduler that records what peers register and sends each back to the origin."""

    def __init__(self):
        self.registered = []

    def AnnounceHost(self, request, context):
        return empty_pb2.Empty()

    def DeleteHost(self, request, context):
        return empty_pb2.Empty()

    def AnnouncePeer(self, requests, context):
        for r in requests:
            if r.WhichOneof("request") == "register_peer_request":
                self.registered.append(r.register_peer_request.download)
                yield scheduler_pb2.AnnouncePeerResponse(need_back_to_source_response=scheduler_pb2.NeedBackToSourceResponse(
                    description="recording scheduler"))
            elif r.WhichOneof("request") in ("download_peer_back_to_source_finished_request", "download_peer_back_to_source_failed_request"):
                return


def test_request_credentials_never_reach_the_scheduler(tmp_path):
    data = os.urandom(MIB)
    o = origin(tmp_path, {"f.bin": data})
    recorder = RecordingScheduler()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    scheduler_pb2_grpc.add_SchedulerServicer_to_server(recorder, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    d = daemon(tmp_path, "", "--scheduler", f"127.0.0.1:{port}")
    try:
        res = run([binary("dfget"), f"http://{o.address}/f.bin", "-O", tmp_path / "f.out", "--daemon", f"unix:{tmp_path}/d.sock",
                   "-H", "Authorization: Bearer node-only", "-H", "Cookie: session=node-only", "-H", "X-Api-Key: node-only",
                   "-H", "Accept: application/x-test", "--quiet"], timeout=60)
        assert res.returncode == 0, res.stderr
        assert len(recorder.registered) == 1, "the download was registered with the scheduler"
        sent = recorder.registered[0]
        assert "node-only" not in str(sent), sent
        assert sent.request_header.get("Accept") == "application/x-test", "headers that are not credentials still go"
    finally:
        d.stop()
        server.stop(0)
        o.stop()


# 8. Downloads nobody waits for ------------------------------------------------------------------

def wait_until_origin_is_quiet(o, quiet_for=4, limit=30):
    """The origin's GET count once it has stayed put for `quiet_for` seconds."""
    deadline = time.monotonic() + limit
    last, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = len(gets(o))
        if n != last:
            last, stable_since = n, time.monotonic()
        elif time.monotonic() - stable_since > quiet_for:
            return last
        time.sleep(0.2)
    raise AssertionError(f"the origin never went quiet: {last} GETs")


@pytest.mark.parametrize("service", ["download-on-socket", "upload-on-tcp"])
def test_a_download_the_client_abandons_stops_fetching(tmp_path, service):
    data = os.urandom(40 * MIB)
    o = origin(tmp_path, {"f.bin": data}, delay=1.5)
    d = daemon(tmp_path, "download:\n  concurrentPieceCount: 2\n")
    url = f"http://{o.address}/f.bin"
    address = f"unix:{tmp_path}/d.sock" if service == "download-on-socket" else d.address
    stub_type = dfdaemon_pb2_grpc.DfdaemonDownloadStub if service == "download-on-socket" else dfdaemon_pb2_grpc.DfdaemonUploadStub
    with grpc.insecure_channel(address) as channel:
        call = stub_type(channel).DownloadTask(download_request(url, piece_length=4 * MIB), timeout=120)
        first = next(call)
        assert first.WhichOneof("response") == "download_task_started_response"
        call.cancel()
    fetched = wait_until_origin_is_quiet(o)
    assert fetched < 10, f"the abandoned download went on: {fetched} of 10 pieces fetched"
    d.assert_alive()
    for s in (d, o):
        s.stop()


def test_a_seed_peers_download_goes_on_when_the_caller_leaves(tmp_path):
    data = os.urandom(12 * MIB)
    o = origin(tmp_path, {"f.bin": data}, delay=0.5)
    d = daemon(tmp_path, "", "--seed-peer")
    url = f"http://{o.address}/f.bin"
    with grpc.insecure_channel(d.address) as channel:
        upload = dfdaemon_pb2_grpc.DfdaemonUploadStub(channel)
        call = upload.DownloadTask(download_request(url, piece_length=4 * MIB), timeout=120)
        first = next(call)
        task_id = first.task_id
        call.cancel()
        deadline = time.monotonic() + 60
        state = None
        while time.monotonic() < deadline:
            try:
                state = upload.StatTask(dfdaemon_pb2.StatTaskRequest(task_id=task_id), timeout=10).state
            except grpc.RpcError:
                state = None
            if state == "Succeeded":
                break
            time.sleep(0.2)
        assert state == "Succeeded", "a preheat or seed fetch finishes without its caller"
    for s in (d, o):
        s.stop()


def test_a_tasks_signed_url_is_masked_for_anyone_who_asks(tmp_path):
    data = os.urandom(MIB)
    o = origin(tmp_path, {"f.bin": data})
    d = daemon(tmp_path)
    url = f"http://{o.address}/f.bin?X-Amz-Signature=sig-secret-123&X-Amz-Credential=cred-secret-456&part=7"
    with grpc.insecure_channel(f"unix:{tmp_path}/d.sock") as local, grpc.insecure_channel(d.address) as remote:
        answers = list(dfdaemon_pb2_grpc.DfdaemonDownloadStub(local).DownloadTask(download_request(url), timeout=30))
        task_id = answers[0].task_id
        for stub in (dfdaemon_pb2_grpc.DfdaemonUploadStub(remote), dfdaemon_pb2_grpc.DfdaemonDownloadStub(local)):
            task = stub.StatTask(dfdaemon_pb2.StatTaskRequest(task_id=task_id), timeout=10)
            assert "sig-secret-123" not in task.url and "cred-secret-456" not in task.url, task.url
            assert task.url.startswith(f"http://{o.address}/f.bin?") and "part=7" in task.url, task.url
    for s in (d, o):
        s.stop()
