import Logging
import NIOCore
import RPCCore

/// What the libFuzzer targets (Tests/Fuzz) drive, as SPI rather than `@testable`: a
/// testable import does not build with `swift build -c release`, and a newcomer's first
/// build is that one. Nothing here is for services.
@_spi(Fuzzing)
public enum TransportFuzzing {
    /// Adds a gRPC server connection whose router serves nothing (every call ends with
    /// UNIMPLEMENTED) to `pipeline`, with small limits so the fuzzer reaches them.
    public static func addServerConnection(to pipeline: ChannelPipeline.SynchronousOperations, logger: Logger) throws {
        let logic = ServerConnection(router: RPCRouter([]),
                                     settings: ServerCallSettings(maxReceiveMessageSize: 1 << 16, maxSendMessageSize: 1 << 16),
                                     logger: logger, remoteAddress: "fuzz")
        var settings = HTTP2Session.Settings()
        settings.maxConcurrentStreams = 16
        let session = try HTTP2Session(role: .server, settings: settings)
        try pipeline.addHandler(HTTP2ConnectionHandler(session: session, logic: logic, logger: logger))
    }

    /// The messages gRPC's length-prefixed framing yields from `bytes`, until the first
    /// error or the end.
    public static func deframe(_ bytes: UnsafeRawBufferPointer, maxMessageSize: Int, encoding: String?) -> [[UInt8]] {
        var deframer = MessageDeframer(maxMessageSize: maxMessageSize, encoding: encoding)
        deframer.append(bytes)
        var messages: [[UInt8]] = []
        while let message = try? deframer.next() { messages.append(message) }
        return messages
    }
}
