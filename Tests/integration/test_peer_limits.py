"""The dfdaemon's limits mean what the README says (issue 18): `upload.rateLimit` is one
budget for all uploads, `download.perPeerRateLimit` limits each task's download, and the
host announces its real upload load to the scheduler, whose evaluator weighs parents by it."""

import os
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
from dragonfly_api import common_pb2, dfdaemon_pb2, dfdaemon_pb2_grpc, scheduler_pb2_grpc
from google.protobuf import empty_pb2

from conftest import Server, binary, run

HELPERS = Path(__file__).parent / "helpers"
MIB = 1 << 20


def origin(tmp_path, data):
    (tmp_path / "origin").mkdir()
    (tmp_path / "origin" / "f.bin").write_bytes(data)
    return Server([sys.executable, HELPERS / "range_origin.py", "0", tmp_path / "origin"], tmp_path / "origin.log")


def daemon(tmp_path, config, *extra):
    path = tmp_path / "d.yaml"
    path.write_text(config)
    return Server([binary("dfdaemon"), "--config", path, "--port", "0", "--listen-ip", "127.0.0.1", "--hostname", "d",
                   "--data-dir", tmp_path / "d-data", "--unix-socket", tmp_path / "d.sock", *extra], tmp_path / "d.log")


def cached_task(tmp_path, o, d):
    """Downloads the origin's file through the daemon; returns its task id."""
    with grpc.insecure_channel(f"unix:{tmp_path}/d.sock") as channel:
        answers = list(dfdaemon_pb2_grpc.DfdaemonDownloadStub(channel).DownloadTask(dfdaemon_pb2.DownloadTaskRequest(
            download=common_pb2.Download(url=f"http://{o.address}/f.bin", type=common_pb2.STANDARD)), timeout=60))
    return answers[0].task_id


def piece_request(task_id, number):
    task = task_id.encode()
    return b"\x0a" + bytes([len(task)]) + task + b"\x10" + bytes([number])


def fetch_pieces(address, task_id, numbers):
    """Bytes of the PieceTransfer answers for `numbers`, as a child would ask for them."""
    with grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 80 * MIB)]) as channel:
        stream = channel.stream_stream("/dfswift.peer.v1.PieceTransfer/DownloadPieces",
                                       request_serializer=lambda b: b, response_deserializer=lambda b: b)
        return sum(len(r) for r in stream(iter([piece_request(task_id, n) for n in numbers]), timeout=60))


def test_upload_rate_limit_is_one_budget_for_all_children(tmp_path):
    data = os.urandom(8 * MIB)
    o = origin(tmp_path, data)
    d = daemon(tmp_path, "upload:\n  rateLimit: 4Mi\n")
    task = cached_task(tmp_path, o, d)
    # Three children at once, each taking both 4 MiB pieces: 24 MiB through a 4 MiB/s budget
    # (at most one second saved up) take at least 5 s; three budgets of their own would take 2 s.
    sizes = []
    start = time.monotonic()
    threads = [threading.Thread(target=lambda: sizes.append(fetch_pieces(d.address, task, [0, 1]))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    elapsed = time.monotonic() - start
    assert len(sizes) == 3 and all(s >= 8 * MIB for s in sizes), sizes
    print(f"3 children x 8 MiB under upload.rateLimit 4Mi: {elapsed:.2f} s")
    assert elapsed >= 4.0, f"{elapsed:.2f} s: the children did not share one budget"
    for s in (d, o):
        s.stop()


def test_per_peer_download_rate_limit_limits_each_task(tmp_path):
    data = os.urandom(8 * MIB)
    o = origin(tmp_path, data)
    d = daemon(tmp_path, "download:\n  perPeerRateLimit: 4Mi\n")
    start = time.monotonic()
    res = run([binary("dfget"), f"http://{o.address}/f.bin", "-O", tmp_path / "f.out", "--daemon", f"unix:{tmp_path}/d.sock",
               "--quiet"], timeout=60)
    elapsed = time.monotonic() - start
    assert res.returncode == 0 and (tmp_path / "f.out").read_bytes() == data, res.stderr
    print(f"8 MiB under download.perPeerRateLimit 4Mi: {elapsed:.2f} s")
    assert elapsed >= 1.5, f"{elapsed:.2f} s: the task's download was not limited"
    for s in (d, o):
        s.stop()


class AnnounceRecorder(scheduler_pb2_grpc.SchedulerServicer):
    def __init__(self):
        self.hosts = []

    def AnnounceHost(self, request, context):
        self.hosts.append(request.host)
        return empty_pb2.Empty()

    def DeleteHost(self, request, context):
        return empty_pb2.Empty()


def test_the_host_announces_its_upload_load(tmp_path):
    data = os.urandom(8 * MIB)
    o = origin(tmp_path, data)
    recorder = AnnounceRecorder()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    scheduler_pb2_grpc.add_SchedulerServicer_to_server(recorder, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    d = daemon(tmp_path, "scheduler:\n  announceInterval: 1s\nupload:\n  rateLimit: 100Mi\n", "--scheduler", f"127.0.0.1:{port}")
    try:
        # With its downloads going to the origin (the recorder schedules nothing), the host
        # still announces; then it serves a child, and the next announcement shows the load.
        task = cached_task(tmp_path, o, d)
        deadline = time.monotonic() + 20
        while not recorder.hosts and time.monotonic() < deadline:
            time.sleep(0.1)
        assert recorder.hosts, "the host was announced"
        assert recorder.hosts[-1].network.max_tx_bandwidth == 100 * MIB * 8, recorder.hosts[-1].network
        served = fetch_pieces(d.address, task, [0, 1])
        assert served >= 8 * MIB
        seen = len(recorder.hosts)
        deadline = time.monotonic() + 20
        loaded = None
        while time.monotonic() < deadline and loaded is None:
            loaded = next((h for h in recorder.hosts[seen:] if h.network.tx_bandwidth > 0), None)
            time.sleep(0.1)
        assert loaded is not None, [h.network for h in recorder.hosts]
        print(f"announced after serving 8 MiB: tx {loaded.network.tx_bandwidth} bit/s, rx {loaded.network.rx_bandwidth} bit/s")
    finally:
        d.stop()
        server.stop(0)
        o.stop()
