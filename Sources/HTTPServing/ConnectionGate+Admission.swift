import ConnectionLimits

/// The gate that admits gRPC connections admits HTTP/1.1 ones the same way.
extension ConnectionGate: ConnectionAdmission {
    public func refusal(for ip: String?) -> (any Error)? { admit(ip) }
    public func closed(_ ip: String?) { release(ip) }
}
