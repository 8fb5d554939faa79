"""A parent that lies: it tells the scheduler it holds every piece of a file, then serves
each piece with the right digest but flipped bytes. Usage:

    lying_parent.py SCHEDULER_ADDR URL FILE PIECE_LENGTH [whole|chunked]

`chunked` answers a request that sets max_chunk_size in chunks, as our dfdaemon does, with
the flipped byte in the last one, so the child has stored most of the piece before it can
tell; `whole` (the default) sends each piece in one response, as an older peer would.
Malformed chunks, with true bytes: `skip` leaves a gap in content_offset, `empty` sends
empty chunks without end, `overlong` ends with a chunk a byte longer than the piece holds, `redigest`
changes the digest after the first chunk.
Prints `LISTENING <port>` once the scheduler has it as a finished peer; logs every piece
it was asked for to stderr ("served piece N")."""

import sys
import tempfile
import time
from concurrent import futures
from pathlib import Path

import grpc
from grpc_tools import protoc

from fake_peer import announce_finished_peer, crc32_digest, pieces_of

PROTOS = Path(__file__).resolve().parents[3] / "Protos"


def load_piece_transfer():
    out = tempfile.mkdtemp(prefix="lying-parent-")
    rc = protoc.main(["protoc", f"-I{PROTOS}", f"--python_out={out}", f"--grpc_python_out={out}",
                      str(PROTOS / "dfswift/peer/v1/piece_transfer.proto")])
    if rc != 0:
        sys.exit(f"protoc failed: {rc}")
    sys.path.insert(0, out)
    from dfswift.peer.v1 import piece_transfer_pb2, piece_transfer_pb2_grpc
    return piece_transfer_pb2, piece_transfer_pb2_grpc


def malformed(pb, mode, n, off, good, size):
    """True bytes in chunks that break the stream's rules, in the way `mode` names."""
    def chunk(at, content, digest=None):
        return pb.PieceResponse(number=n, offset=off, length=len(good), digest=digest or crc32_digest(good),
                                content_offset=at, content=content)
    if mode == "empty":
        for _ in range(100_000):
            yield chunk(0, b"")
        return
    if mode == "skip":
        yield chunk(0, good[:size])
        yield chunk(2 * size, good[2 * size:3 * size])
        return
    if mode == "redigest":
        yield chunk(0, good[:size])
        yield chunk(size, good[size:2 * size], digest="crc32:1")
        return
    # overlong: the last chunk runs a byte past the piece's end
    for at in range(0, len(good), size):
        yield chunk(at, good[at:at + size] + (b"x" if at + size >= len(good) else b""))


def main():
    scheduler, url, path, piece_length = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    mode = sys.argv[5] if len(sys.argv) > 5 else "whole"
    data = Path(path).read_bytes()
    pieces = pieces_of(data, piece_length)
    pb, pb_grpc = load_piece_transfer()

    class Liar(pb_grpc.PieceTransferServicer):
        def DownloadPieces(self, requests, context):
            for r in requests:
                n, off, good = pieces[r.number]
                bad = good[:-1] + bytes([good[-1] ^ 0xFF])
                print(f"served piece {n}", file=sys.stderr, flush=True)
                size = r.max_chunk_size if mode != "whole" and r.max_chunk_size > 0 else len(bad)
                digest = crc32_digest(good)
                if mode in ("skip", "empty", "overlong", "redigest"):
                    yield from malformed(pb, mode, n, off, good, size)
                    continue
                for at in range(0, len(bad), size):
                    yield pb.PieceResponse(number=n, offset=off, length=len(good), digest=digest,
                                           content_offset=at, content=bad[at:at + size])

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                         options=[("grpc.max_send_message_length", 80 << 20)])
    pb_grpc.add_PieceTransferServicer_to_server(Liar(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    announce_finished_peer(grpc.insecure_channel(scheduler), "liar", port, url, data, piece_length)
    print(f"LISTENING {port}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
