"""Wire bytes our Swift encoder produces, checked against the official dragonfly-api.

Tests/ProtoCoreTests/OfficialWireBytesTests.swift asserts that our encoder produces
exactly these hex strings for the same values; here the official Python bindings must
produce them too and parse them back to the same values. Keep the two files in step.
"""

import pytest

from dragonfly_api import common_pb2 as common
from dragonfly_api import scheduler_pb2 as scheduler
from google.protobuf import duration_pb2, timestamp_pb2  # noqa: E402

EXPECTED = {
    "peer": "0a0170120018062231089601120020808080022a0763726333323a31320200ff3800421608ffffffffffffffffff01"
            "10feffffffffffffffff013a3d0a017410021a0a687474703a2f2f6f2f6222003a01783a017942060a016112013142"
            "060a01621201324880808080802050038201080880e2cfaa06100548016000",
    "host": "0a0168220831302e302e302e3128feffffffffffffffff0130e9fb03620b0804190000000000002940",
    "announce": "0a01681201741a017072021801",
}


def official_values():
    task = common.Task(id="t", type=common.PERSISTENT_CACHE, url="http://o/b", digest="",
                       filtered_query_params=["x", "y"], request_header={"b": "2", "a": "1"},
                       content_length=2**40, piece_count=3)
    task.created_at.CopyFrom(timestamp_pb2.Timestamp(seconds=1700000000, nanos=5))
    piece = common.Piece(number=150, parent_id="", offset=0, length=4194304, digest="crc32:1",
                         content=b"\x00\xff", traffic_type=common.BACK_TO_SOURCE)
    piece.cost.CopyFrom(duration_pb2.Duration(seconds=-1, nanos=-2))
    peer = common.Peer(id="p", priority=common.LEVEL6, need_back_to_source=True, concurrent_piece_count=0)
    peer.range.SetInParent()
    peer.task.CopyFrom(task)
    peer.pieces.append(piece)
    host = common.Host(id="h", ip="10.0.0.1", port=-2, download_port=65001)
    host.cpu.CopyFrom(common.CPU(logical_count=4, percent=12.5))
    announce = scheduler.AnnouncePeerRequest(host_id="h", task_id="t", peer_id="p")
    announce.download_piece_failed_request.temporary = True
    return {"peer": peer, "host": host, "announce": announce}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_official_bindings_produce_and_accept_our_bytes(name):
    value = official_values()[name]
    ours = bytes.fromhex(EXPECTED[name])
    assert value.SerializeToString(deterministic=True) == ours
    parsed = type(value).FromString(ours)
    assert parsed == value
    if name == "peer":
        # Presence survives: set-to-default optional fields are still set.
        assert parsed.HasField("concurrent_piece_count") and parsed.HasField("range")
        assert parsed.task.HasField("digest") and not parsed.task.HasField("tag")
        assert parsed.pieces[0].HasField("parent_id") and parsed.pieces[0].HasField("traffic_type")
    if name == "announce":
        assert parsed.WhichOneof("request") == "download_piece_failed_request"
