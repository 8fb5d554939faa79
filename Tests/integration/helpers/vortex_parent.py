"""A parent that speaks only what a Rust dfdaemon speaks to its children: the official
DfdaemonUpload.SyncPieces over gRPC (announcing its pieces with `ip` and `tcp_port`), and
piece bytes over Vortex (vortex_spec.py). It has no piece stream of ours. Usage:

    vortex_parent.py SCHEDULER_ADDR URL FILE PIECE_LENGTH

Prints `LISTENING <grpc port>` once the scheduler has it as a finished peer; logs each
piece it serves to stderr ("vortex served piece N")."""

import socket
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
from dragonfly_api import dfdaemon_pb2, dfdaemon_pb2_grpc

import vortex_spec
from fake_peer import announce_finished_peer, crc32_digest, pieces_of


def main():
    scheduler, url, path, piece_length = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    data = Path(path).read_bytes()
    pieces = pieces_of(data, piece_length)

    listener = socket.create_server(("127.0.0.1", 0))
    tcp_port = listener.getsockname()[1]

    def serve(conn):
        with conn:
            while True:
                try:
                    request = vortex_spec.read_request(conn)
                except vortex_spec.VortexError as err:
                    conn.sendall(vortex_spec.error_packet(err.code, err.message))
                    return
                if request is None:
                    return
                _, task_id, number = request
                if number >= len(pieces):
                    conn.sendall(vortex_spec.error_packet(vortex_spec.NOT_FOUND, f"piece {number} not found"))
                    continue
                n, off, content = pieces[number]
                print(f"vortex served piece {n}", file=sys.stderr, flush=True)
                conn.sendall(vortex_spec.piece_content(n, off, content, crc32_digest(content), parent_id="vortex-parent",
                                                       created_at=int(time.time())))

    def accept():
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()

    class Upload(dfdaemon_pb2_grpc.DfdaemonUploadServicer):
        def SyncPieces(self, request, context):
            print(f"SyncPieces from {request.host_id}", file=sys.stderr, flush=True)
            wanted = set(request.interested_piece_numbers) or {n for n, _, _ in pieces}
            for n, off, content in pieces:
                if n in wanted:
                    yield dfdaemon_pb2.SyncPiecesResponse(number=n, offset=off, length=len(content), ip="127.0.0.1",
                                                          tcp_port=tcp_port)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    dfdaemon_pb2_grpc.add_DfdaemonUploadServicer_to_server(Upload(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    announce_finished_peer(grpc.insecure_channel(scheduler), "vortex-parent", port, url, data, piece_length)
    print(f"LISTENING {port}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
