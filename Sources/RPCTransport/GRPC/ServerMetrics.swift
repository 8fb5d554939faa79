import CoreMetrics
import RPCCore

/// Per-method server metrics through swift-metrics, under the names go-grpc-prometheus
/// made familiar to operators. With no metrics backend bootstrapped they cost nothing.
public enum RPCServerMetrics {
    public static let started = "grpc_server_started_total"
    public static let handled = "grpc_server_handled_total"
    public static let handlingSeconds = "grpc_server_handling_seconds"
    public static let messagesReceived = "grpc_server_msg_received_total"
    public static let messagesSent = "grpc_server_msg_sent_total"

    /// Help texts for the exposition, for the process's metrics bridge.
    public static let help: [String: String] = [
        started: "RPCs started on the server",
        handled: "RPCs completed on the server, by status code",
        handlingSeconds: "Time from the request headers to the status, per RPC",
        messagesReceived: "Request messages received",
        messagesSent: "Response messages sent",
    ]

    static func typeLabel(_ kind: RPCKind) -> String {
        switch kind {
        case .unary: "unary"
        case .clientStreaming: "client_stream"
        case .serverStreaming: "server_stream"
        case .bidirectionalStreaming: "bidi_stream"
        }
    }
}

/// The metric handles of one call, made when it starts.
struct CallMetrics: Sendable {
    let dimensions: [(String, String)]
    let received: Counter
    let sent: Counter
    let start = ContinuousClock.now

    init(path: String, kind: RPCKind) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        let service = parts.first.map(String.init) ?? ""
        let method = parts.count > 1 ? String(parts[1]) : ""
        dimensions = [("grpc_type", RPCServerMetrics.typeLabel(kind)), ("grpc_service", service), ("grpc_method", method)]
        received = Counter(label: RPCServerMetrics.messagesReceived, dimensions: dimensions)
        sent = Counter(label: RPCServerMetrics.messagesSent, dimensions: dimensions)
        Counter(label: RPCServerMetrics.started, dimensions: dimensions).increment()
    }

    func finished(_ code: StatusCode) {
        Counter(label: RPCServerMetrics.handled, dimensions: dimensions + [("grpc_code", code.description)]).increment()
        let elapsed = ContinuousClock.now - start
        let nanos = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
        CoreMetrics.Timer(label: RPCServerMetrics.handlingSeconds, dimensions: dimensions).recordNanoseconds(nanos)
    }
}

extension RPCStream {
    /// The same stream, counting each element as it passes.
    func counting(_ counter: Counter) -> RPCStream {
        map { element in
            counter.increment()
            return element
        }
    }
}

extension RPCWriter {
    /// The same writer, counting each element written.
    func counting(_ counter: Counter) -> RPCWriter {
        observing { counter.increment() }
    }
}
