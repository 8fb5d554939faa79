import NIOCore

/// The messages of one direction of a call, as an async sequence. Ends normally at
/// end-of-stream and throws `RPCError` when the call failed.
public struct RPCStream<Element: Sendable>: AsyncSequence, Sendable {
    public typealias Failure = any Error
    private let nextElement: @Sendable () async throws -> Element?

    public init(next: @escaping @Sendable () async throws -> Element?) {
        self.nextElement = next
    }

    public init(_ buffer: InboundBuffer<Element>) {
        self.nextElement = { try await buffer.next() }
    }

    /// A stream of already known elements (tests, adapters).
    public init(_ elements: [Element]) {
        let buffer = InboundBuffer<Element>(highWatermark: Swift.max(1, elements.count + 1))
        for e in elements { buffer.yield(e) }
        buffer.finish()
        self.init(buffer)
    }

    /// Each element is handed to `transform` as its only owner, so a decoder may keep its
    /// storage (a piece's content) instead of copying it.
    public func map<T: Sendable>(_ transform: @escaping @Sendable (consuming Element) throws -> T) -> RPCStream<T> {
        let next = nextElement
        return RPCStream<T> {
            guard let e = try await next() else { return nil }
            return try transform(consume e)
        }
    }

    public struct AsyncIterator: AsyncIteratorProtocol, Sendable {
        let nextElement: @Sendable () async throws -> Element?
        public mutating func next() async throws -> Element? { try await nextElement() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(nextElement: nextElement) }

    /// Reads exactly one element, as unary calls require.
    public func single(_ what: String) async throws -> Element {
        guard let first = try await nextElement() else {
            throw RPCError(code: .internal, message: "\(what): expected one message, got none")
        }
        if try await nextElement() != nil {
            throw RPCError(code: .internal, message: "\(what): expected one message, got more")
        }
        return first
    }
}

/// Writes messages of one direction of a call. `write` suspends while the transport
/// has too much unsent data, so a fast writer cannot outrun a slow peer.
///
/// A writer the transport made also takes messages already in wire form
/// (`writeEncoded`): a piece's envelope with its content read from disk straight into the
/// buffer that goes to the socket, never copied through the encoder or the transport.
public struct RPCWriter<Element: Sendable>: Sendable {
    private let sink: @Sendable (Element) async throws -> Void
    private let encodedSink: (@Sendable (ByteBuffer) async throws -> Void)?

    public init(_ sink: @escaping @Sendable (Element) async throws -> Void,
                encoded: (@Sendable (ByteBuffer) async throws -> Void)? = nil) {
        self.sink = sink
        self.encodedSink = encoded
    }

    public func write(_ element: Element) async throws {
        try await sink(element)
    }

    public func write(contentsOf elements: some Sequence<Element>) async throws {
        for e in elements { try await sink(e) }
    }

    /// Writes one message already encoded in the protobuf wire format, as it is.
    public func writeEncoded(_ message: ByteBuffer) async throws {
        guard let encodedSink else {
            throw RPCError(code: .internal, message: "this writer takes no encoded messages")
        }
        try await encodedSink(message)
    }

    public func map<T: Sendable>(_ transform: @escaping @Sendable (T) -> Element) -> RPCWriter<T> {
        let sink = self.sink
        return RPCWriter<T>({ try await sink(transform($0)) }, encoded: encodedSink)
    }

    /// The same writer, calling `body` before each message of either kind.
    public func observing(_ body: @escaping @Sendable () -> Void) -> RPCWriter {
        let sink = self.sink
        let encoded = encodedSink.map { encoded in
            { @Sendable (message: ByteBuffer) async throws in
                body()
                try await encoded(message)
            }
        }
        return RPCWriter({ element in
            body()
            try await sink(element)
        }, encoded: encoded)
    }
}
