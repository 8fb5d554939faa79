import CFuzzMain
import Foundation

/// libFuzzer's per-input callback; the target comes from `dragonfly-fuzz TARGET …`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    switch FuzzTarget.selected {
    case .h2: HTTP2Target.run(bytes)
    case .grpc: GRPCMessageTarget.run(bytes)
    case .http1: HTTP1Target.run(bytes)
    case .config: ConfigTarget.run(bytes)
    case .taskid: TaskIDTarget.run(bytes)
    case .vortex: VortexTarget.run(bytes)
    case .scheduler: SchedulerTarget.run(bytes)
    case .layout: LayoutTarget.run(bytes)
    }
    return 0
}

enum FuzzTarget: String, CaseIterable {
    case h2, grpc, http1, config, taskid, vortex, scheduler, layout

    static let selected: FuzzTarget = {
        let name = ProcessInfo.processInfo.environment["DF_FUZZ_TARGET"] ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            fatalError("unknown fuzz target '\(name)'; one of \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        _ = dragonfly_fuzz_linked()
        return target
    }()
}
