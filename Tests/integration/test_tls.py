"""TLS (ALPN h2 over OpenSSL) and mutual TLS between grpcio and our executables, both
directions, plus the failures that must happen: an untrusted CA, a wrong server name, a
missing or foreign client certificate, and plaintext HTTP/2 sent to a TLS port.

The PKI is made once per session with the `openssl` CLI (EC P-256): a CA, a server
certificate for DNS:localhost and IP:127.0.0.1, a client certificate, and an unrelated
second CA with its own client certificate for the negative cases."""

import socket
import ssl
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest

from conftest import (GRPCIO_CLIENT, GRPCIO_SERVER, REFERENCE_IMPL, Server, binary,
                      describe, run, start_grpcio_server, tool)

CASES = ["empty_unary", "large_unary", "ping_pong", "custom_metadata",
         "status_code_and_message"]
CLIENT_TIMEOUT = 90     # per client process; generous, the machine may be busy building
CALL_TIMEOUT = 15       # per in-process grpcio call that must fail
TEST_SERVICE = "grpc.testing.TestService"

OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


# -- PKI ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    openssl = tool("openssl", "openssl")
    d = tmp_path_factory.mktemp("pki")
    cnf = d / "openssl.cnf"
    cnf.write_text(OPENSSL_CNF)

    def ossl(*args):
        res = run([openssl, *args], timeout=30)
        assert res.returncode == 0, describe(res)

    def key(name):
        path = d / f"{name}.key"
        ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", path)
        return path

    def ca(name, cn):
        k = key(name)
        cert = d / f"{name}.pem"
        ossl("req", "-config", cnf, "-x509", "-new", "-key", k, "-sha256", "-days", "3",
             "-subj", f"/CN={cn}", "-extensions", "ca", "-out", cert)
        return cert, k

    serial = iter(range(1000, 2000))

    def leaf(name, cn, section, ca_cert, ca_key):
        k = key(name)
        csr, cert = d / f"{name}.csr", d / f"{name}.pem"
        ossl("req", "-config", cnf, "-new", "-key", k, "-subj", f"/CN={cn}", "-out", csr)
        ossl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
             "-set_serial", next(serial), "-days", "3", "-sha256",
             "-extfile", cnf, "-extensions", section, "-out", cert)
        return cert, k

    ca_cert, ca_key = ca("ca", "df-test CA")
    server_cert, server_key = leaf("server", "localhost", "server", ca_cert, ca_key)
    client_cert, client_key = leaf("client", "df-test client", "client", ca_cert, ca_key)
    other_ca_cert, other_ca_key = ca("other-ca", "unrelated CA")
    rogue_cert, rogue_key = leaf("rogue-client", "df-test client", "client",
                                 other_ca_cert, other_ca_key)
    return SimpleNamespace(
        dir=d, ca=ca_cert, ca_key=ca_key, server_cert=server_cert, server_key=server_key,
        client_cert=client_cert, client_key=client_key, other_ca=other_ca_cert,
        rogue_cert=rogue_cert, rogue_key=rogue_key)


# -- servers -----------------------------------------------------------------------

def start_our_server(tmp_path_factory, py_env, *args):
    """Our interop-server with the given extra flags (grpcio's with DF_REFERENCE_IMPL=1;
    both take --tls --cert --key --client-ca)."""
    if REFERENCE_IMPL:
        cmd = [sys.executable, GRPCIO_SERVER, "--port", "0", *args]
    else:
        cmd = [binary("interop-server"), "--port", "0", *args]
    return Server(cmd, tmp_path_factory.mktemp("interop-server-tls") / "stderr.log",
                  env=py_env)


def tls_args(pki):
    return ["--tls", "--cert", pki.server_cert, "--key", pki.server_key]


@pytest.fixture(scope="module")
def our_tls_server(tmp_path_factory, py_env, pki):
    server = start_our_server(tmp_path_factory, py_env, *tls_args(pki))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def our_mtls_server(tmp_path_factory, py_env, pki):
    server = start_our_server(tmp_path_factory, py_env, *tls_args(pki), "--client-ca", pki.ca)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def grpcio_tls_server(tmp_path_factory, py_env, pki):
    server = start_grpcio_server(tmp_path_factory, py_env, *tls_args(pki))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def grpcio_mtls_server(tmp_path_factory, py_env, pki):
    server = start_grpcio_server(tmp_path_factory, py_env, *tls_args(pki),
                                 "--client-ca", pki.ca)
    yield server
    server.stop()


# -- clients -----------------------------------------------------------------------

def grpcio_client(server, case, py_env, *tls):
    return run([sys.executable, GRPCIO_CLIENT, "--host", "127.0.0.1", "--port", server.port,
                "--test_case", case, *tls], timeout=CLIENT_TIMEOUT, env=py_env)


def our_client(cmd, server, case, py_env, *tls):
    return run([*cmd, "--host", "127.0.0.1", "--port", server.port, "--test-case", case,
                *tls], timeout=CLIENT_TIMEOUT, env=py_env)


def grpcio_call_error(pb, address, creds=None):
    """One EmptyCall from this process on a secure (creds) or plaintext channel, which
    must fail; returns the RpcError. No wait_for_ready: a failed handshake fails the call
    as soon as the channel sees it, instead of retrying until the deadline."""
    channel = grpc.secure_channel(address, creds) if creds else grpc.insecure_channel(address)
    with channel:
        stub = pb.test_pb2_grpc.TestServiceStub(channel)
        start = time.monotonic()
        try:
            stub.EmptyCall(pb.empty_pb2.Empty(), timeout=CALL_TIMEOUT)
        except grpc.RpcError as err:
            err.elapsed = time.monotonic() - start
            return err
    pytest.fail(f"EmptyCall to {address} succeeded; it must fail")


def creds(pki, ca=None, cert=None, key=None):
    read = lambda p: Path(p).read_bytes() if p else None  # noqa: E731
    return grpc.ssl_channel_credentials(read(ca or pki.ca), private_key=read(key),
                                        certificate_chain=read(cert))


def assert_unavailable(err, server, what):
    assert err.code() == grpc.StatusCode.UNAVAILABLE, \
        f"{what}: {err.code()} ({err.details()!r}) after {err.elapsed:.1f}s, want UNAVAILABLE" \
        f"\n{server.log_tail()}"


# -- 1, 2: TLS interop, both directions ----------------------------------------------

def test_our_server_negotiates_alpn_h2(our_tls_server, pki):
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", our_tls_server.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() == "h2", tls.selected_alpn_protocol()
            assert tls.version() in ("TLSv1.2", "TLSv1.3"), tls.version()


@pytest.mark.parametrize("case", CASES)
def test_grpcio_client_against_our_tls_server(case, our_tls_server, pki, py_env):
    res = grpcio_client(our_tls_server, case, py_env, "--tls", "--ca", pki.ca)
    assert res.returncode == 0, describe(res) + "\n" + our_tls_server.log_tail()
    our_tls_server.assert_alive()


@pytest.mark.parametrize("case", CASES)
def test_our_client_against_grpcio_tls_server(case, grpcio_tls_server, interop_client_cmd,
                                              pki, py_env):
    res = our_client(interop_client_cmd, grpcio_tls_server, case, py_env,
                     "--tls", "--ca", pki.ca)
    assert res.returncode == 0, describe(res)
    grpcio_tls_server.assert_alive()


def test_our_client_against_our_tls_server(our_tls_server, interop_client_cmd, pki, py_env):
    res = our_client(interop_client_cmd, our_tls_server, "large_unary", py_env,
                     "--tls", "--ca", pki.ca)
    assert res.returncode == 0, describe(res) + "\n" + our_tls_server.log_tail()


def test_our_client_server_host_override(grpcio_tls_server, interop_client_cmd, pki, py_env):
    res = our_client(interop_client_cmd, grpcio_tls_server, "empty_unary", py_env,
                     "--tls", "--ca", pki.ca, "--server-host-override", "localhost")
    assert res.returncode == 0, describe(res)


# -- 3: an untrusted server certificate is refused -----------------------------------
# A refusal counts only next to a control: the same client with the right credentials,
# against the same server, must pass first. Otherwise a client that cannot do TLS at all
# would "reject" everything.

def assert_our_client_refused(cmd, server, py_env, good, bad):
    control = our_client(cmd, server, "empty_unary", py_env, *good)
    assert control.returncode == 0, "control (right credentials) failed:" + describe(control)
    res = our_client(cmd, server, "empty_unary", py_env, *bad)
    assert res.returncode != 0, describe(res)
    server.assert_alive()


@pytest.mark.parametrize("server_fixture", ["our_tls_server", "grpcio_tls_server"])
def test_our_client_rejects_unrelated_ca(server_fixture, request, interop_client_cmd, pki,
                                         py_env):
    server = request.getfixturevalue(server_fixture)
    assert_our_client_refused(interop_client_cmd, server, py_env,
                              ["--tls", "--ca", pki.ca], ["--tls", "--ca", pki.other_ca])


def test_our_client_rejects_wrong_server_name(grpcio_tls_server, interop_client_cmd, pki,
                                              py_env):
    # The certificate chains to the trusted CA but names localhost/127.0.0.1 only.
    assert_our_client_refused(
        interop_client_cmd, grpcio_tls_server, py_env,
        ["--tls", "--ca", pki.ca, "--server-host-override", "localhost"],
        ["--tls", "--ca", pki.ca, "--server-host-override", "wrong.example.com"])


def test_grpcio_client_rejects_unrelated_ca(our_tls_server, pki, pb):
    err = grpcio_call_error(pb, our_tls_server.address, creds(pki, ca=pki.other_ca))
    assert_unavailable(err, our_tls_server, "grpcio trusting only the unrelated CA")
    our_tls_server.assert_alive()


def test_grpcio_client_script_rejects_unrelated_ca(our_tls_server, pki, py_env):
    # The interop script too (it waits for the channel, so this takes its connect timeout).
    res = grpcio_client(our_tls_server, "empty_unary", py_env, "--tls", "--ca", pki.other_ca)
    assert res.returncode != 0, describe(res)
    our_tls_server.assert_alive()


# -- 4: mutual TLS -----------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_grpcio_client_with_cert_against_our_mtls_server(case, our_mtls_server, pki, py_env):
    res = grpcio_client(our_mtls_server, case, py_env, "--tls", "--ca", pki.ca,
                        "--cert", pki.client_cert, "--key", pki.client_key)
    assert res.returncode == 0, describe(res) + "\n" + our_mtls_server.log_tail()
    our_mtls_server.assert_alive()


def test_our_mtls_server_rejects_grpcio_client_without_cert(our_mtls_server, pki, pb):
    err = grpcio_call_error(pb, our_mtls_server.address, creds(pki))
    assert_unavailable(err, our_mtls_server, "grpcio without a client certificate")
    our_mtls_server.assert_alive()


def test_our_mtls_server_rejects_foreign_client_cert(our_mtls_server, pki, pb):
    err = grpcio_call_error(pb, our_mtls_server.address,
                            creds(pki, cert=pki.rogue_cert, key=pki.rogue_key))
    assert_unavailable(err, our_mtls_server, "grpcio with a client cert from another CA")
    our_mtls_server.assert_alive()


def test_our_mtls_server_serves_after_rejections(our_mtls_server, pki, pb):
    for cert, key in ((None, None), (pki.rogue_cert, pki.rogue_key)):
        grpcio_call_error(pb, our_mtls_server.address, creds(pki, cert=cert, key=key))
    with grpc.secure_channel(our_mtls_server.address,
                             creds(pki, cert=pki.client_cert, key=pki.client_key)) as channel:
        stub = pb.test_pb2_grpc.TestServiceStub(channel)
        stub.EmptyCall(pb.empty_pb2.Empty(), timeout=CALL_TIMEOUT)


@pytest.mark.parametrize("case", CASES)
def test_our_client_with_cert_against_grpcio_mtls_server(case, grpcio_mtls_server,
                                                         interop_client_cmd, pki, py_env):
    res = our_client(interop_client_cmd, grpcio_mtls_server, case, py_env, "--tls",
                     "--ca", pki.ca, "--cert", pki.client_cert, "--key", pki.client_key)
    assert res.returncode == 0, describe(res)
    grpcio_mtls_server.assert_alive()


@pytest.mark.parametrize("identity", ["none", "foreign"])
def test_grpcio_mtls_server_rejects_our_client(identity, grpcio_mtls_server,
                                               interop_client_cmd, pki, py_env):
    tls = ["--tls", "--ca", pki.ca]
    extra = [] if identity == "none" else ["--cert", pki.rogue_cert, "--key", pki.rogue_key]
    assert_our_client_refused(interop_client_cmd, grpcio_mtls_server, py_env,
                              [*tls, "--cert", pki.client_cert, "--key", pki.client_key],
                              [*tls, *extra])


def test_our_client_with_cert_against_our_mtls_server(our_mtls_server, interop_client_cmd,
                                                      pki, py_env):
    res = our_client(interop_client_cmd, our_mtls_server, "ping_pong", py_env, "--tls",
                     "--ca", pki.ca, "--cert", pki.client_cert, "--key", pki.client_key)
    assert res.returncode == 0, describe(res) + "\n" + our_mtls_server.log_tail()


# -- 5: dfrpc over TLS ---------------------------------------------------------------

def test_dfrpc_list_over_tls(our_tls_server, pki):
    res = run([binary("dfrpc"), "list", our_tls_server.address, "--tls", "--cacert", pki.ca],
              timeout=CLIENT_TIMEOUT)
    assert res.returncode == 0, describe(res) + "\n" + our_tls_server.log_tail()
    assert TEST_SERVICE in res.stdout.split(), describe(res)


def test_dfrpc_list_rejects_unrelated_ca(our_tls_server, pki):
    control = run([binary("dfrpc"), "list", our_tls_server.address, "--tls",
                   "--cacert", pki.ca, "--timeout", "10"], timeout=CLIENT_TIMEOUT)
    assert control.returncode == 0, "control (right CA) failed:" + describe(control)
    res = run([binary("dfrpc"), "list", our_tls_server.address, "--tls",
               "--cacert", pki.other_ca, "--timeout", "10"], timeout=CLIENT_TIMEOUT)
    assert res.returncode != 0, describe(res)
    our_tls_server.assert_alive()


# -- 6: plaintext HTTP/2 against the TLS port -----------------------------------------

def test_plaintext_h2_preface_is_refused_cleanly(our_tls_server):
    """The HTTP/2 preface is no ClientHello: the server must end the connection (with a
    TLS alert or without), not leave it hanging."""
    with socket.create_connection(("127.0.0.1", our_tls_server.port), timeout=10) as s:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes(9))
        received = b""
        try:
            while chunk := s.recv(4096):
                received += chunk
        except ConnectionResetError:
            pass
        except socket.timeout:
            pytest.fail(f"connection still open 10s after a plaintext preface;"
                        f" got {received[:64]!r}\n{our_tls_server.log_tail()}")
    # Anything sent back must be TLS records (an alert is content type 21), not HTTP/2.
    assert not received or received[0] in (21, 22), received[:64]
    our_tls_server.assert_alive()


def test_plaintext_grpcio_client_fails_and_server_keeps_serving(our_tls_server, pki, pb,
                                                                py_env):
    err = grpcio_call_error(pb, our_tls_server.address)
    assert_unavailable(err, our_tls_server, "plaintext grpcio against the TLS port")
    assert err.elapsed < CALL_TIMEOUT - 1, f"took {err.elapsed:.1f}s: the server hung"
    our_tls_server.assert_alive()
    res = grpcio_client(our_tls_server, "empty_unary", py_env, "--tls", "--ca", pki.ca)
    assert res.returncode == 0, describe(res) + "\n" + our_tls_server.log_tail()
