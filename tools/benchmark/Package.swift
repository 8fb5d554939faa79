// swift-tools-version:6.0
// Benchmark-only package: compares our nghttp2-based interop-server with a grpc-swift-2
// TestService server. Kept apart from the root package so the product never depends on
// grpc-swift. No swift-protobuf: the few protobuf fields involved are coded by hand.
import PackageDescription

let package = Package(
    name: "dragonfly-benchmark",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "bench-grpcswift-server", targets: ["GRPCSwiftServer"]),
        .executable(name: "bench-client", targets: ["BenchClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
    ],
    targets: [
        .target(name: "BenchCodec", dependencies: [
            .product(name: "GRPCCore", package: "grpc-swift-2"),
        ]),
        .executableTarget(name: "GRPCSwiftServer", dependencies: [
            "BenchCodec",
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
        ]),
        .executableTarget(name: "BenchClient", dependencies: [
            "BenchCodec",
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
