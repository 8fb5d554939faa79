"""Shared fixtures for the cross-process tests: generated stubs, binary paths, servers.

Environment:
  DF_BIN_DIR           our built executables (default .build/debug, relative to the repo)
  DF_SHARED_DIR        the shared/ folder with tools/ (default ../shared from the repo)
  DF_REQUIRE_BINARIES  1 = a missing binary or tool fails instead of skipping (for CI)
  DF_REFERENCE_IMPL    1 = stand grpcio_server.py / grpcio_client.py in for our
                       interop-server / interop-client, to check the tests themselves
"""

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
INTEROP_DIR = HERE / "interop"
GRPCIO_SERVER = INTEROP_DIR / "grpcio_server.py"
GRPCIO_CLIENT = INTEROP_DIR / "grpcio_client.py"

sys.path.insert(0, str(INTEROP_DIR))
import interop_stubs  # noqa: E402

# tools/local_cluster.py, the main job's cluster script, is the tests' process handling too;
# loaded under its own name, as helpers/local_cluster.py is `local_cluster` here.
_spec = importlib.util.spec_from_file_location("cluster_tools", REPO_ROOT / "tools" / "local_cluster.py")
cluster_tools = importlib.util.module_from_spec(_spec)
sys.modules["cluster_tools"] = cluster_tools
_spec.loader.exec_module(cluster_tools)

REFERENCE_IMPL = os.environ.get("DF_REFERENCE_IMPL") == "1"

# Every manager a test starts refuses scheduler and seed peer registration without a
# secret; the ones started here, and the schedulers and seed peers, inherit this one.
os.environ.setdefault(cluster_tools.REGISTRATION_SECRET_VAR, "integration-tests-registration-secret")


def _repo_path(value):
    path = Path(value)
    return path if path.is_absolute() else REPO_ROOT / path


BIN_DIR = _repo_path(os.environ.get("DF_BIN_DIR", ".build/debug"))
SHARED_DIR = _repo_path(os.environ.get("DF_SHARED_DIR", "../shared"))


def missing(reason):
    """Skips, or fails when CI says everything must be there."""
    if os.environ.get("DF_REQUIRE_BINARIES") == "1":
        pytest.fail(reason + " (DF_REQUIRE_BINARIES=1)")
    pytest.skip(reason)


def binary(name):
    path = BIN_DIR / name
    if not path.is_file():
        missing(f"{path} not built (build the package or set DF_BIN_DIR)")
    return path


def tool(name, package):
    path = shutil.which(name)
    if path is None:
        missing(f"{name} not installed (apt-get install {package})")
    return path


def free_port():
    """A loopback port that was free a moment ago (for programs that cannot take 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc, grace=10):
    """Ends only this process, by its pid: TERM, then KILL if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def run(cmd, timeout=60, **kwargs):
    """subprocess.run with captured text output; a timeout fails the test, never hangs it."""
    try:
        return subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                              errors="replace", timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"timed out after {timeout}s: {cmd}\nstdout:\n{err.stdout}\nstderr:\n{err.stderr}")


def describe(res):
    """A finished command's exit code and output, for assertion messages."""
    return (f"\n$ {' '.join(map(str, res.args))}\nexit {res.returncode}\n"
            f"--- stdout\n{res.stdout}\n--- stderr\n{res.stderr}")


def build_descriptor_set(out_path):
    """protoc --include_imports over every file in Protos/ (the well-known types come
    from grpc_tools, so no system protobuf headers are needed)."""
    import grpc_tools
    wkt = Path(grpc_tools.__file__).parent / "_proto"
    protos = REPO_ROOT / "Protos"
    files = sorted(str(p.relative_to(protos)) for p in protos.rglob("*.proto"))
    res = run([sys.executable, "-m", "grpc_tools.protoc", "--include_imports",
               f"--descriptor_set_out={out_path}", f"-I{protos}", f"-I{wkt}", *files],
              timeout=120)
    assert res.returncode == 0, describe(res)
    return out_path


def shared_tool(name):
    """Path of a script in shared/tools; skips (or fails in CI) when shared/ is absent."""
    path = SHARED_DIR / "tools" / name
    if not path.is_file():
        missing(f"{path} not found (set DF_SHARED_DIR)")
    return path


class Server(cluster_tools.Process):
    """A server process we started, ready once it printed `LISTENING <port>`; a server that
    does not start fails the test."""

    def __init__(self, cmd, log_path, env=None, ready_timeout=30.0):
        try:
            super().__init__(cmd, log_path, env=env, ready_timeout=ready_timeout)
        except cluster_tools.StartFailed as err:
            pytest.fail(str(err))

    def assert_alive(self):
        code = self.proc.poll()
        assert code is None, f"server {self.cmd} died with exit code {code}\n{self.log_tail()}"


@pytest.fixture(scope="session")
def stub_dir(tmp_path_factory):
    return interop_stubs.generate(tmp_path_factory.mktemp("pystubs"))


@pytest.fixture(scope="session")
def pb(stub_dir):
    """The generated modules (grpc.testing and our grpc.reflection.v1), imported here."""
    return interop_stubs.load(stub_dir)


@pytest.fixture(scope="session")
def py_env(stub_dir):
    """Environment for the Python helper scripts: reuse the session's stubs."""
    return {**os.environ, "DF_PY_STUBS": str(stub_dir)}


def start_grpcio_server(tmp_path_factory, py_env, *args):
    log = tmp_path_factory.mktemp("grpcio-server") / "stderr.log"
    return Server([sys.executable, GRPCIO_SERVER, "--port", "0", *args], log, env=py_env)


@pytest.fixture(scope="session")
def grpcio_server(tmp_path_factory, py_env):
    """The grpcio reference server (reflection v1 and v1alpha, health)."""
    server = start_grpcio_server(tmp_path_factory, py_env)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def interop_server(tmp_path_factory, py_env):
    """Our `interop-server --port 0` (or grpcio's in DF_REFERENCE_IMPL mode)."""
    if REFERENCE_IMPL:
        cmd = [sys.executable, GRPCIO_SERVER, "--port", "0"]
    else:
        cmd = [binary("interop-server"), "--port", "0"]
    server = Server(cmd, tmp_path_factory.mktemp("interop-server") / "stderr.log", env=py_env)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def interop_client_cmd():
    """Our `interop-client` (or grpcio's in DF_REFERENCE_IMPL mode); add --host/--port/--test-case."""
    if REFERENCE_IMPL:
        return [sys.executable, GRPCIO_CLIENT]
    return [binary("interop-client")]
