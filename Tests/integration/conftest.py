"""Shared fixtures for the cross-process tests: generated stubs, binary paths, servers.

Environment:
  DF_BIN_DIR           our built executables (default .build/debug, relative to the repo)
  DF_SHARED_DIR        the shared/ folder with tools/ (default ../shared from the repo)
  DF_REQUIRE_BINARIES  1 = a missing binary or tool fails instead of skipping (for CI)
  DF_REFERENCE_IMPL    1 = stand grpcio_server.py / grpcio_client.py in for our
                       interop-server / interop-client, to check the tests themselves
"""

import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
INTEROP_DIR = HERE / "interop"
GRPCIO_SERVER = INTEROP_DIR / "grpcio_server.py"
GRPCIO_CLIENT = INTEROP_DIR / "grpcio_client.py"

sys.path.insert(0, str(INTEROP_DIR))
import interop_stubs  # noqa: E402

LISTENING = re.compile(r"^LISTENING (\d+)(?: METRICS (\d+))?\s*$")
REFERENCE_IMPL = os.environ.get("DF_REFERENCE_IMPL") == "1"


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


class Server:
    """A server process we started, ready once it printed `LISTENING <port>`."""

    def __init__(self, cmd, log_path, env=None, ready_timeout=30.0):
        self.cmd = [str(c) for c in cmd]
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=self._log,
                                     stdin=subprocess.DEVNULL, text=True, env=env)
        self._lines = queue.Queue()
        # Drain stdout for the whole life of the process: a full pipe would block it.
        threading.Thread(target=self._pump, daemon=True).start()
        self.port = self._wait_listening(ready_timeout)
        self.address = f"127.0.0.1:{self.port}"

    def _pump(self):
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _wait_listening(self, timeout):
        deadline = time.monotonic() + timeout
        seen = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                self.stop()
                pytest.fail(f"{self.cmd} exited ({self.proc.returncode}) before LISTENING;"
                            f" stdout: {seen}\n{self.log_tail()}")
            seen.append(line)
            if match := LISTENING.match(line):
                # Servers with an operational HTTP port print it after the gRPC one.
                self.metrics_port = int(match.group(2)) if match.group(2) else None
                return int(match.group(1))
        self.stop()
        pytest.fail(f"{self.cmd} printed no 'LISTENING <port>' in {timeout}s; stdout: {seen}"
                    f"\n{self.log_tail()}")

    def log_tail(self, lines=40):
        text = Path(self.log_path).read_text(errors="replace").splitlines()[-lines:]
        return "--- server stderr (tail)\n" + "\n".join(text)

    def assert_alive(self):
        code = self.proc.poll()
        assert code is None, f"server {self.cmd} died with exit code {code}\n{self.log_tail()}"

    def stop(self):
        stop_process(self.proc)
        self._log.close()


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
