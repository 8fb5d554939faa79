"""Makes a test process look like a finished peer to the scheduler: announces a host and
reports every piece of a file as fetched from the origin, so the scheduler offers it as a
parent."""

import hashlib
import uuid
import zlib

from dragonfly_api import common_pb2, scheduler_pb2, scheduler_pb2_grpc
from google.protobuf import duration_pb2


def pieces_of(data, piece_length):
    return [(n, off, data[off:off + piece_length]) for n, off in enumerate(range(0, len(data), piece_length))]


def crc32_digest(content):
    return f"crc32:{zlib.crc32(content)}"


def task_id_of(url):
    return hashlib.sha256((url + "STANDARD").encode()).hexdigest()


def announce_finished_peer(channel, name, port, url, data, piece_length):
    stub = scheduler_pb2_grpc.SchedulerStub(channel)
    host_id = f"127.0.0.1-{name}"
    host = common_pb2.Host(id=host_id, type=0, hostname=name, ip="127.0.0.1", port=port, download_port=port,
                           network=common_pb2.Network())
    stub.AnnounceHost(scheduler_pb2.AnnounceHostRequest(host=host, interval=duration_pb2.Duration(seconds=30)), timeout=10)
    task_id = task_id_of(url)
    peer_id = f"127.0.0.1-{name}-{uuid.uuid4()}"
    pieces = pieces_of(data, piece_length)
    download = common_pb2.Download(url=url, type=common_pb2.STANDARD, actual_content_length=len(data),
                                    actual_piece_length=piece_length, actual_piece_count=len(pieces))

    def requests():
        def req(**kw):
            return scheduler_pb2.AnnouncePeerRequest(host_id=host_id, task_id=task_id, peer_id=peer_id, **kw)
        yield req(register_peer_request=scheduler_pb2.RegisterPeerRequest(download=download))
        yield req(download_peer_back_to_source_started_request=scheduler_pb2.DownloadPeerBackToSourceStartedRequest())
        for n, off, content in pieces:
            piece = common_pb2.Piece(number=n, offset=off, length=len(content), digest=crc32_digest(content),
                                     traffic_type=common_pb2.BACK_TO_SOURCE)
            yield req(download_piece_back_to_source_finished_request=scheduler_pb2.DownloadPieceBackToSourceFinishedRequest(
                piece=piece))
        yield req(download_peer_back_to_source_finished_request=scheduler_pb2.DownloadPeerBackToSourceFinishedRequest())

    # The scheduler's answers do not matter: this peer claims to have fetched everything.
    for _ in stub.AnnouncePeer(requests(), timeout=30):
        pass
    return task_id
