// Hand-written: conversions between the well-known types and Swift's own. The generator
// leaves this file alone (it only replaces files carrying its DO-NOT-EDIT marker).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Google_Protobuf_Timestamp {
    public init(seconds: Int64, nanos: Int32 = 0) {
        self.init()
        self.seconds = seconds
        self.nanos = nanos
    }

    /// The current wall-clock time (CLOCK_REALTIME), as Dragonfly stamps `created_at`.
    public static func now() -> Google_Protobuf_Timestamp {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Google_Protobuf_Timestamp(seconds: Int64(time.tv_sec), nanos: Int32(time.tv_nsec))
    }
}

extension Google_Protobuf_Duration {
    public init(seconds: Int64, nanos: Int32 = 0) {
        self.init()
        self.seconds = seconds
        self.nanos = nanos
    }

    /// Sub-nanosecond precision is dropped; seconds and nanos share a sign, as protobuf requires
    /// (Swift's components already truncate toward zero).
    public init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self.init(seconds: seconds, nanos: Int32(attoseconds / 1_000_000_000))
    }

    public var duration: Duration {
        .seconds(seconds) + .nanoseconds(Int64(nanos))
    }
}
