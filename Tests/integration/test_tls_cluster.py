"""The whole cluster over mutual TLS: manager, scheduler, seed peer and dfdaemon each with
a certificate from one CA (tools/make-test-ca.sh), requiring client certificates from it;
dfget over TCP with its own; grpcio as a foreign client with and without a certificate."""

import hashlib
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from dragonfly_api import dfdaemon_pb2, dfdaemon_pb2_grpc, manager_pb2, manager_pb2_grpc

from conftest import Server, binary, describe, run

HELPERS = Path(__file__).parent / "helpers"
sys.path.insert(0, str(HELPERS))
from manager_proc import ROOT_PASSWORD, wait_for  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
MIB = 1 << 20


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    made = subprocess.run(["bash", REPO / "tools" / "make-test-ca.sh", d / "ca", "manager", "scheduler", "seed", "node", "client"],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    rogue = subprocess.run(["bash", REPO / "tools" / "make-test-ca.sh", d / "rogue", "client"], capture_output=True, text=True)
    assert rogue.returncode == 0, rogue.stderr
    return d


def tls(certs, name):
    return ["--tls-cert", certs / "ca" / f"{name}.pem", "--tls-key", certs / "ca" / f"{name}.key", "--tls-ca", certs / "ca" / "ca.pem"]


def test_cluster_over_mutual_tls(tmp_path, certs):
    (tmp_path / "origin").mkdir()
    data = os.urandom(10 * MIB)
    (tmp_path / "origin" / "model.bin").write_bytes(data)
    servers = []

    def start(name, args, env=None):
        s = Server(args, tmp_path / f"{name}.log", env=env)
        servers.append(s)
        return s

    try:
        origin = start("origin", [sys.executable, HELPERS / "range_origin.py", "0", tmp_path / "origin"])
        manager = start("manager", [binary("manager"), "--grpc-port", "0", "--rest-port", "0", "--listen-ip", "127.0.0.1",
                                    "--data-dir", tmp_path / "m", *tls(certs, "manager")],
                        env=dict(os.environ, DRAGONFLY_INITIAL_ROOT_PASSWORD=ROOT_PASSWORD))
        start("scheduler", [binary("scheduler"), "--port", "0", "--metrics-port", "0", "--listen-ip", "127.0.0.1",
                            "--advertise-ip", "127.0.0.1", "--data-dir", tmp_path / "s", "--manager", manager.address,
                            *tls(certs, "scheduler")])
        daemons = {}
        # The node serves DfdaemonDownload over TCP to clients with a certificate (mutual TLS).
        for name, extra in (("seed", ["--seed-peer"]), ("node", ["--download-over-tcp"])):
            daemons[name] = start(name, [binary("dfdaemon"), "--port", "0", "--listen-ip", "127.0.0.1", "--ip", "127.0.0.1",
                                         "--hostname", name, "--manager", manager.address, "--data-dir", tmp_path / name,
                                         "--unix-socket", "", "--http-port", "0", *extra, *tls(certs, name)])
        for name in daemons:
            assert wait_for(lambda: "names schedulers" in (tmp_path / f"{name}.log").read_text(), timeout=30), \
                (tmp_path / f"{name}.log").read_text()[-2000:]
        time.sleep(0.5)

        # dfget over TCP with a client certificate; the bytes travel seed -> node over TLS.
        node = daemons["node"]
        res = run([binary("dfget"), f"http://{origin.address}/model.bin", "-O", tmp_path / "out.bin", "--daemon", node.address,
                   "--tls-ca", certs / "ca" / "ca.pem", "--tls-cert", certs / "ca" / "client.pem",
                   "--tls-key", certs / "ca" / "client.key"], timeout=120)
        assert res.returncode == 0, describe(res) + (tmp_path / "node.log").read_text()[-2000:]
        assert "no dfdaemon answered" not in res.stderr
        assert (tmp_path / "out.bin").read_bytes() == data
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{node.metrics_port}/metrics", timeout=10).read().decode()
        peer_bytes = re.search(r'^dragonfly_dfdaemon_download_traffic_total\{type="peer"\} (\S+)$', metrics, re.M)
        assert peer_bytes and float(peer_bytes.group(1)) == len(data), "every byte came from the seed peer, over TLS"

        # A foreign client: grpcio with a certificate from the CA is served...
        ca = (certs / "ca" / "ca.pem").read_bytes()
        good = grpc.ssl_channel_credentials(root_certificates=ca, private_key=(certs / "ca" / "client.key").read_bytes(),
                                            certificate_chain=(certs / "ca" / "client.pem").read_bytes())
        with grpc.secure_channel(manager.address, good) as channel:
            answer = manager_pb2_grpc.ManagerStub(channel).ListSchedulers(
                manager_pb2.ListSchedulersRequest(source_type=manager_pb2.PEER_SOURCE, hostname="x", ip="127.0.0.1"), timeout=10)
            assert [s.hostname for s in answer.schedulers], "the scheduler registered over mutual TLS"
        # With a certificate, the node's upload side removes a task from its cache (a
        # cluster-wide delete), which it refuses to anonymous callers.
        task = hashlib.sha256((f"http://{origin.address}/model.bin" + "STANDARD").encode()).hexdigest()
        with grpc.secure_channel(node.address, good) as channel:
            upload = dfdaemon_pb2_grpc.DfdaemonUploadStub(channel)
            assert upload.StatLocalTask(dfdaemon_pb2.StatLocalTaskRequest(task_id=task), timeout=10).task_id == task
            upload.DeleteTask(dfdaemon_pb2.DeleteTaskRequest(task_id=task), timeout=10)
            with pytest.raises(grpc.RpcError) as gone:
                upload.StatLocalTask(dfdaemon_pb2.StatLocalTaskRequest(task_id=task), timeout=10)
            assert gone.value.code() == grpc.StatusCode.NOT_FOUND, gone.value.details()
        # ...one without a certificate, or with one from another CA, or in plaintext, is not.
        rogue = grpc.ssl_channel_credentials(root_certificates=ca,
                                             private_key=(certs / "rogue" / "client.key").read_bytes(),
                                             certificate_chain=(certs / "rogue" / "client.pem").read_bytes())
        for creds in (grpc.ssl_channel_credentials(root_certificates=ca), rogue, None):
            channel = grpc.secure_channel(manager.address, creds) if creds else grpc.insecure_channel(manager.address)
            with channel, pytest.raises(grpc.RpcError) as refused:
                manager_pb2_grpc.ManagerStub(channel).ListSchedulers(
                    manager_pb2.ListSchedulersRequest(source_type=manager_pb2.PEER_SOURCE, hostname="x", ip="127.0.0.1"),
                    timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        # dfget without a certificate cannot use the daemon and says so (then goes direct).
        res = run([binary("dfget"), f"http://{origin.address}/model.bin", "-O", tmp_path / "plain.bin", "--daemon", node.address],
                  timeout=120)
        assert "no dfdaemon answered" in res.stderr, res.stderr
        for s in servers:
            s.assert_alive()
    finally:
        for s in reversed(servers):
            s.stop()
