import NIOCore
import ConnectionLimits

/// Counts each REST connection in at a `ConnectionGate` and closes one the gate refuses,
/// so a flood from one address cannot use up the manager's descriptors through its REST
/// port. Hummingbird adds it to every connection's pipeline.
final class ConnectionCapHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    let gate: ConnectionGate
    private var counted = false

    init(gate: ConnectionGate) { self.gate = gate }

    func handlerAdded(context: ChannelHandlerContext) {
        guard !counted else { return }
        let ip = context.channel.remoteAddress?.ipAddress
        if gate.admit(ip) != nil {
            context.close(promise: nil)
            return
        }
        counted = true
        let gate = gate
        context.channel.closeFuture.whenComplete { _ in gate.release(ip) }
    }
}
