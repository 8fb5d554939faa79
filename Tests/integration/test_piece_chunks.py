"""Our piece stream in chunks (issue 18): a child that sets `max_chunk_size` gets each piece
as several responses, in order, with `content_offset`, so neither side holds a 4 MiB piece
whole; a child that does not gets one response per piece, as before. The parent bounds the
size a child asks for. Checked with grpcio and stubs compiled from our .proto."""

import os
import sys
import tempfile
import zlib
from pathlib import Path

import grpc
from grpc_tools import protoc

from test_peer_limits import MIB, cached_task, daemon, origin

PROTOS = Path(__file__).resolve().parents[2] / "Protos"


def piece_transfer():
    out = tempfile.mkdtemp(prefix="piece-transfer-")
    rc = protoc.main(["protoc", f"-I{PROTOS}", f"--python_out={out}", f"--grpc_python_out={out}",
                      str(PROTOS / "dfswift/peer/v1/piece_transfer.proto")])
    assert rc == 0, rc
    sys.path.insert(0, out)
    from dfswift.peer.v1 import piece_transfer_pb2, piece_transfer_pb2_grpc
    return piece_transfer_pb2, piece_transfer_pb2_grpc


def ask(address, pb, pb_grpc, task, numbers, chunk):
    with grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 80 * MIB)]) as channel:
        stub = pb_grpc.PieceTransferStub(channel)
        requests = [pb.PieceRequest(task_id=task, number=n, max_chunk_size=chunk) for n in numbers]
        return list(stub.DownloadPieces(iter(requests), timeout=60))


def test_pieces_come_in_the_chunks_the_child_asks_for_bounded_by_the_parent(tmp_path):
    data = os.urandom(10 * MIB)  # pieces of 4, 4 and 2 MiB
    o = origin(tmp_path, data)
    d = daemon(tmp_path, "")
    task = cached_task(tmp_path, o, d)
    pb, pb_grpc = piece_transfer()
    try:
        # chunk asked -> the largest chunk the parent may send
        for asked, largest in [(1 * MIB, 1 * MIB), (300_001, 300_001), (1, 64 << 10), (0, 4 * MIB), (1 << 31, 4 * MIB), ((1 << 32) - 1, 4 * MIB)]:
            answers = ask(d.address, pb, pb_grpc, task, [2, 0, 1], asked)
            pieces = {}
            for a in answers:
                got = pieces.setdefault(a.number, bytearray())
                assert a.content_offset == len(got), (asked, a.number, a.content_offset, len(got))
                assert 0 < len(a.content) <= largest, (asked, len(a.content))
                assert a.length == (2 * MIB if a.number == 2 else 4 * MIB)
                got += a.content
            # In the order asked, each whole and true to its digest.
            assert [a.number for a in answers if a.content_offset == 0] == [2, 0, 1]
            for n, got in pieces.items():
                assert bytes(got) == data[n * 4 * MIB:n * 4 * MIB + (2 * MIB if n == 2 else 4 * MIB)]
                digests = {a.digest for a in answers if a.number == n}
                assert digests == {f"crc32:{zlib.crc32(bytes(got))}"}, digests
            chunks = len(answers)
            expected = sum(-(-size // largest) for size in (2 * MIB, 4 * MIB, 4 * MIB))
            assert chunks == expected, (asked, chunks, expected)
            print(f"max_chunk_size {asked}: {chunks} responses for 3 pieces")
        # A piece that is not there is refused, chunks or not.
        try:
            ask(d.address, pb, pb_grpc, task, [3], 1 * MIB)
            raise AssertionError("piece 3 of a 3-piece task was served")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e
    finally:
        for s in (d, o):
            s.stop()
