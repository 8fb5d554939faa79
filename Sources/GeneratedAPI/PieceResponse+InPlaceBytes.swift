// Hand-written: the piece stream's content may be read where it arrived (InPlaceBytes).
// The generator leaves this file alone (it only replaces files carrying its DO-NOT-EDIT marker).
import ProtoCore

extension Dfswift_Peer_V1_PieceResponse: ProtoMessageWithInPlaceBytes {
    public static var inPlaceBytesField: (number: UInt32, keyPath: WritableKeyPath<Self, [UInt8]> & Sendable) {
        (5, \.content)
    }
}
