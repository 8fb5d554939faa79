// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "dragonfly-swift",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "interop-server", targets: ["InteropServer"]),
        .executable(name: "interop-client", targets: ["InteropClient"]),
        .executable(name: "dfrpc", targets: ["DFRPC"]),
        .executable(name: "scheduler", targets: ["Scheduler"]),
        .executable(name: "dfdaemon", targets: ["DFDaemon"]),
        .executable(name: "dfget", targets: ["DFGet"]),
        .executable(name: "dfctl", targets: ["DFCtl"]),
        .executable(name: "dfcache", targets: ["DFCache"]),
        .executable(name: "manager", targets: ["Manager"]),
        .executable(name: "dragonfly", targets: ["Dragonfly"]),
        .executable(name: "proto-leak-loop", targets: ["ProtoLeakLoop"]),
        .executable(name: "dragonfly-fuzz", targets: ["DragonflyFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // Only for AsyncHTTPClient's TLS settings towards origins (certificate verification).
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        // The manager's shared database: PostgreSQL through postgres-nio (DESIGN.md).
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        // Process lifecycle: signals and ordered graceful shutdown.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // C shims over the system libraries the design card fixes.
        .systemLibrary(name: "CNGHTTP2", pkgConfig: "libnghttp2", providers: [.apt(["libnghttp2-dev"])]),
        .systemLibrary(name: "CProtobufC", pkgConfig: "libprotobuf-c", providers: [.apt(["libprotobuf-c-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .target(name: "CZlibShim", path: "Sources/CZlibShim", linkerSettings: [.linkedLibrary("z")]),

        // protobuf-c sources generated from Protos/ by tools/generate.sh.
        .target(name: "CProtos", dependencies: ["CProtobufC"], path: "Sources/CProtos",
                cSettings: [.unsafeFlags(["-w"])]),

        // Swift value types over protobuf-c: the message runtime and the generated API.
        .target(name: "ProtoCore", dependencies: ["CProtobufC"]),
        .target(name: "GeneratedAPI", dependencies: ["ProtoCore", "CProtos", "RPCCore"]),

        // A lock the thread sanitizer can see (Locked.swift says why not Mutex).
        .target(name: "Locking"),

        // Admission of accepted connections (per address, in all), for every server we run.
        .target(name: "ConnectionLimits", dependencies: ["Locking"]),

        // Our gRPC: a transport-free core and an nghttp2 transport on SwiftNIO.
        .target(name: "RPCCore", dependencies: [
            "ProtoCore", "Locking",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "RPCTransport", dependencies: [
            "RPCCore", "ProtoCore", "CNGHTTP2", "COpenSSL", "CZlibShim", "Locking", "ConnectionLimits",
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "ProtoJSON", dependencies: ["ProtoCore"]),
        .target(name: "RPCServices", dependencies: ["RPCCore", "GeneratedAPI", "ProtoCore", "Locking"]),

        // Shared by every Dragonfly component: config, metrics, operational HTTP, logging.
        // It knows nothing of gRPC: what links the transport imports DragonflyRPC.
        .target(name: "DragonflyCommon", dependencies: [
            "COpenSSL", "CZlibShim", "Locking", "HTTPServing", "ConnectionLimits",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Yams", package: "Yams"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // Where Dragonfly's shared settings (rpc limits, TLS files) meet the transport.
        .target(name: "DragonflyRPC", dependencies: ["DragonflyCommon", "RPCTransport"]),
        // The dfdaemon's piece store: content files and per-task metadata.
        .target(name: "PeerStorage", dependencies: ["DragonflyCommon", "Locking", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")]),
        // The dfdaemon: downloads (parents, origin), serves pieces, follows the scheduler.
        // Command-line options every component shares (TLS, logging).
        .target(name: "CLICommon", dependencies: [
            "DragonflyCommon", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // The dfdaemon's configuration (Dragonfly's keys), apart from the engine that uses it.
        .target(name: "PeerConfig", dependencies: ["DragonflyCommon"]),
        .target(name: "PeerDaemon", dependencies: [
            "PeerConfig", "PeerStorage", "VortexProtocol", "VortexTransport", "DragonflyCommon", "DragonflyRPC", "GeneratedAPI", "ProtoCore", "RPCCore", "RPCTransport", "HTTPServing",
            "Locking",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // SQL over SQLite (the system library) and PostgreSQL, one dialect-neutral API.
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "SQLStore", dependencies: [
            "CSQLite", "Locking",
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The manager: records, cluster search, auth; then its gRPC and REST faces.
        .target(name: "ManagerCore", dependencies: [
            "SQLStore", "DragonflyCommon",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "ManagerService", dependencies: [
            "ManagerCore", "SQLStore", "DragonflyCommon", "GeneratedAPI", "RPCCore", "RPCTransport", "RegistryClient", "HTTPServing",
            "Preheating", "Locking",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Vortex, the Rust dfdaemon's piece transport: the packet codec, then TCP.
        .target(name: "VortexProtocol"),
        .target(name: "VortexTransport", dependencies: [
            "VortexProtocol", "Locking",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Each server assembled from its parts and started, for its own executable and for all-in-one.
        .target(name: "ManagerNode", dependencies: [
            "ManagerService", "ManagerCore", "SQLStore", "DragonflyCommon", "DragonflyRPC", "RPCTransport", "RPCServices", "ConnectionLimits",
            "HTTPServing", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "SchedulerNode", dependencies: [
            "SchedulerService", "SchedulerCore", "ManagerClient", "RPCTransport", "RPCServices", "DragonflyCommon", "DragonflyRPC", "HTTPServing", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "PeerNode", dependencies: [
            "PeerDaemon", "PeerConfig", "PeerStorage", "RegistryMirror", "HTTPServing", "ManagerClient", "RPCTransport", "VortexTransport",
            "RPCServices", "RPCCore", "DragonflyCommon", "DragonflyRPC", "ConnectionLimits", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "Dragonfly", dependencies: [
            "ManagerNode", "SchedulerNode", "PeerNode", "SchedulerService", "PeerConfig", "DragonflyCommon", "RPCTransport", "CLICommon",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "Manager", dependencies: [
            "ManagerNode", "DragonflyCommon", "RPCTransport", "CLICommon",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Registration and keep-alive with the manager, for schedulers and seed peers.
        .target(name: "ManagerClient", dependencies: [
            "GeneratedAPI", "RPCCore", "RPCTransport",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The message layer in a loop, for the AddressSanitizer leak check (tools/leak-check.sh).
        .executableTarget(name: "ProtoLeakLoop", dependencies: ["ProtoCore", "GeneratedAPI"]),
        // A small HTTP/1.1 server core: keep-alive, streamed responses with backpressure.
        .target(name: "HTTPServing", dependencies: [
            "Locking", "ConnectionLimits",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Talking to OCI registries: auth challenges, tokens, image manifests.
        .target(name: "RegistryClient", dependencies: [
            "DragonflyCommon",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
        ]),
        // The dfdaemon's registry mirror on port 65001.
        // Where a mirrored request goes (upstream choice, ranges, blob digests): no HTTP client.
        .target(name: "MirrorRouting", dependencies: ["PeerConfig", "HTTPServing"]),
        .target(name: "RegistryMirror", dependencies: [
            "PeerDaemon", "PeerConfig", "MirrorRouting", "HTTPServing", "DragonflyCommon", "GeneratedAPI", "RegistryClient",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // `dfdaemon init`: container runtimes pointed at the mirror (upstream's dfinit).
        .target(name: "RuntimeSetup", dependencies: ["DragonflyCommon"]),
        .executableTarget(name: "DFDaemon", dependencies: [
            "PeerNode", "PeerConfig", "DragonflyCommon", "RPCTransport", "CLICommon", "RuntimeSetup",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "DFCtl", dependencies: [
            "GeneratedAPI", "RPCCore", "RPCTransport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .target(name: "TransferCLI", dependencies: [
            "DragonflyCommon", "GeneratedAPI",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "DFCache", dependencies: [
            "DragonflyCommon", "GeneratedAPI", "RPCCore", "RPCTransport", "DragonflyRPC", "TransferCLI",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "DFGet", dependencies: [
            "DragonflyCommon", "GeneratedAPI", "RPCCore", "RPCTransport", "DragonflyRPC", "TransferCLI",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .target(name: "SchedulerCore", dependencies: [
            "GeneratedAPI", "RPCCore", "DragonflyCommon",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        .target(name: "SchedulerService", dependencies: [
            "SchedulerCore", "GeneratedAPI", "RPCCore", "RPCTransport", "RPCServices", "DragonflyCommon", "Preheating", "Locking",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Preheats: an image's blobs, the peers a scope reaches, their downloads and what they hold.
        .target(name: "Preheating", dependencies: [
            "DragonflyCommon", "GeneratedAPI", "RPCCore", "RPCTransport", "RegistryClient",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "Scheduler", dependencies: [
            "SchedulerNode", "SchedulerService", "RPCTransport", "DragonflyCommon", "CLICommon",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "InteropServer", dependencies: [
            "RPCCore", "RPCTransport", "RPCServices", "GeneratedAPI",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .executableTarget(name: "InteropClient", dependencies: [
            "RPCCore", "RPCTransport", "GeneratedAPI",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "DFRPC", dependencies: [
            "RPCCore", "RPCTransport", "GeneratedAPI", "ProtoCore", "ProtoJSON",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // libFuzzer targets (tools/fuzz.sh builds them with -sanitize=fuzzer,address). The
        // entry point is C: libFuzzer's driver when linked, else a replayer of files.
        .target(name: "CFuzzMain", path: "Tests/Fuzz/CFuzzMain"),
        .executableTarget(name: "DragonflyFuzz", dependencies: [
            "CFuzzMain", "RPCTransport", "RPCCore", "GeneratedAPI", "ProtoCore", "HTTPServing", "MirrorRouting",
            "PeerConfig", "SchedulerService", "SchedulerCore", "DragonflyCommon", "VortexProtocol",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ], path: "Tests/Fuzz/DragonflyFuzz", swiftSettings: [.unsafeFlags(["-parse-as-library"])]),

        .testTarget(name: "VortexTests", dependencies: ["VortexProtocol", "VortexTransport",
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "DragonflyCommonTests", dependencies: [
            "DragonflyCommon", .product(name: "CoreMetrics", package: "swift-metrics"),
        ]),
        .testTarget(name: "RegistryMirrorTests", dependencies: ["RegistryMirror", "RegistryClient", "PeerDaemon", "HTTPServing", "MirrorRouting"]),
        .testTarget(name: "HTTPServingTests", dependencies: ["HTTPServing", .product(name: "NIOEmbedded", package: "swift-nio")]),
        .testTarget(name: "PreheatingTests", dependencies: ["Preheating", "GeneratedAPI"]),
        .testTarget(name: "ManagerTests", dependencies: ["ManagerCore", "ManagerService", "HTTPServing", "SQLStore", "DragonflyCommon"]),
        .testTarget(name: "PeerDaemonTests", dependencies: ["PeerDaemon", "PeerConfig", "DragonflyCommon"]),
        .testTarget(name: "RuntimeSetupTests", dependencies: ["RuntimeSetup", "DragonflyCommon"]),
        .testTarget(name: "PeerStorageTests", dependencies: ["PeerStorage", "DragonflyCommon"]),
        .testTarget(name: "SchedulerTests", dependencies: ["SchedulerCore", "DragonflyCommon", "GeneratedAPI", "RPCCore"]),
        .testTarget(name: "ProtoJSONTests", dependencies: ["ProtoJSON"]),
        .testTarget(name: "ProtoCoreTests", dependencies: ["ProtoCore", "GeneratedAPI"]),
        .testTarget(name: "RPCTests", dependencies: [
            "RPCCore", "RPCTransport", "RPCServices", "GeneratedAPI", "ConnectionLimits",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
