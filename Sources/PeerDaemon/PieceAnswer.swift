import GeneratedAPI
import ProtoCore

/// A parent's answer on the piece stream, read with its content left in the array the
/// message arrived in: the content is written to the store from there.
typealias PieceAnswer = InPlaceBytes<Dfswift_Peer_V1_PieceResponse>
