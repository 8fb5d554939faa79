"""A parent that lies: it tells the scheduler it holds every piece of a file, then serves
each piece with the right digest but flipped bytes. Usage:

    lying_parent.py SCHEDULER_ADDR URL FILE PIECE_LENGTH

Prints `LISTENING <port>` once the scheduler has it as a finished peer; logs every piece
it was asked for to stderr ("served piece N")."""

import hashlib
import sys
import tempfile
import time
import uuid
import zlib
from concurrent import futures
from pathlib import Path

import grpc
from dragonfly_api import common_pb2, scheduler_pb2, scheduler_pb2_grpc
from google.protobuf import duration_pb2
from grpc_tools import protoc

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


def pieces_of(data, piece_length):
    return [(n, off, data[off:off + piece_length]) for n, off in enumerate(range(0, len(data), piece_length))]


def main():
    scheduler, url, path, piece_length = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    data = Path(path).read_bytes()
    pieces = pieces_of(data, piece_length)
    pb, pb_grpc = load_piece_transfer()

    class Liar(pb_grpc.PieceTransferServicer):
        def DownloadPieces(self, requests, context):
            for r in requests:
                n, off, good = pieces[r.number]
                bad = bytes([good[0] ^ 0xFF]) + good[1:]
                print(f"served piece {n}", file=sys.stderr, flush=True)
                yield pb.PieceResponse(number=n, offset=off, length=len(good), digest=f"crc32:{zlib.crc32(good)}",
                                       content=bad)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                         options=[("grpc.max_send_message_length", 80 << 20)])
    pb_grpc.add_PieceTransferServicer_to_server(Liar(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()

    channel = grpc.insecure_channel(scheduler)
    stub = scheduler_pb2_grpc.SchedulerStub(channel)
    host_id = "127.0.0.1-liar"
    host = common_pb2.Host(id=host_id, type=0, hostname="liar", ip="127.0.0.1", port=port, download_port=port,
                           network=common_pb2.Network())
    stub.AnnounceHost(scheduler_pb2.AnnounceHostRequest(host=host, interval=duration_pb2.Duration(seconds=30)), timeout=10)

    task_id = hashlib.sha256((url + "STANDARD").encode()).hexdigest()
    peer_id = f"127.0.0.1-liar-{uuid.uuid4()}"
    download = common_pb2.Download(url=url, type=common_pb2.STANDARD, actual_content_length=len(data),
                                    actual_piece_length=piece_length, actual_piece_count=len(pieces))

    def requests():
        def req(**kw):
            return scheduler_pb2.AnnouncePeerRequest(host_id=host_id, task_id=task_id, peer_id=peer_id, **kw)
        yield req(register_peer_request=scheduler_pb2.RegisterPeerRequest(download=download))
        yield req(download_peer_back_to_source_started_request=scheduler_pb2.DownloadPeerBackToSourceStartedRequest())
        for n, off, good in pieces:
            piece = common_pb2.Piece(number=n, offset=off, length=len(good), digest=f"crc32:{zlib.crc32(good)}",
                                     traffic_type=common_pb2.BACK_TO_SOURCE)
            yield req(download_piece_back_to_source_finished_request=scheduler_pb2.DownloadPieceBackToSourceFinishedRequest(
                piece=piece))
        yield req(download_peer_back_to_source_finished_request=scheduler_pb2.DownloadPeerBackToSourceFinishedRequest())

    # The scheduler's answers do not matter: the liar claims to have fetched everything.
    for _ in stub.AnnouncePeer(requests(), timeout=30):
        pass
    print(f"LISTENING {port}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
