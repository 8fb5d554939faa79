"""Python stubs for the protos the foreign side needs, generated from Protos/ at run time.

Generated code is never committed: it is produced by grpc_tools.protoc into a
directory given by the caller, by $DF_PY_STUBS, or a fresh temp dir.

Why the grpc.__path__ hack: our protos live at grpc/testing/*.proto, so protoc emits
modules named grpc.testing.* that import each other as `from grpc.testing import ...`.
`grpc` is grpcio's own (regular) package, which always wins the import, so we add the
generated grpc/ folder to its __path__ instead of renaming the protos (and grpc/reflection
to grpc_reflection's, which grpcio aliases as `grpc.reflection`). That keeps the
canonical file names (grpc/testing/test.proto) in the descriptor pool, which is what
reflection serves and what clients resolve dependencies by.

Health and v1alpha reflection come from grpcio-health-checking / grpcio-reflection; we do
not generate them: two files defining the same symbols cannot share the default pool.
"""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import types
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
PROTOS = REPO_ROOT / "Protos"
FILES = [
    "grpc/testing/empty.proto",
    "grpc/testing/messages.proto",
    "grpc/testing/test.proto",
    "grpc/reflection/v1/reflection.proto",
]


def generate(out_dir):
    """Runs protoc for FILES into out_dir; raises with protoc's stderr on failure."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}",
           f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", *FILES]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise RuntimeError(f"protoc failed ({res.returncode}): {res.stderr}")
    return out_dir


def _extend_path(package, folder):
    if str(folder) not in package.__path__:
        package.__path__.append(str(folder))


def load(stub_dir=None):
    """Imports the generated modules (generating them first if needed)."""
    stub_dir = stub_dir or os.environ.get("DF_PY_STUBS")
    if not stub_dir:
        stub_dir = tempfile.mkdtemp(prefix="df-pystubs-")
        atexit.register(shutil.rmtree, stub_dir, True)
        generate(stub_dir)
    import grpc
    generated = Path(stub_dir) / "grpc"
    _extend_path(grpc, generated)
    aliased = sys.modules.get("grpc.reflection")  # set by grpcio if grpcio-reflection is there
    if aliased is not None:
        _extend_path(aliased, generated / "reflection")
    from grpc.testing import empty_pb2, messages_pb2, test_pb2, test_pb2_grpc
    from grpc.reflection.v1 import reflection_pb2, reflection_pb2_grpc
    return types.SimpleNamespace(
        empty_pb2=empty_pb2, messages_pb2=messages_pb2,
        test_pb2=test_pb2, test_pb2_grpc=test_pb2_grpc,
        reflection_v1_pb2=reflection_pb2, reflection_v1_pb2_grpc=reflection_pb2_grpc,
    )
