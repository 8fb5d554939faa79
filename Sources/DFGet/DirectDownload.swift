import AsyncHTTPClient
import DragonflyCommon
import Foundation
import NIOCore

/// The fallback when no dfdaemon answers: stream the URL straight into the output file,
/// checking the digest before the file appears under its name.
enum DirectDownload {
    struct DigestMismatch: Error, CustomStringConvertible {
        var expected: String
        var actual: String
        var description: String { "digest mismatch: expected \(expected), got \(actual)" }
    }

    static func run(url: String, headers: [String: String], to path: String, digest: ContentDigest?, timeout: Double) async throws {
        var request = HTTPClientRequest(url: url)
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(Int64(timeout)))
        guard (200..<300).contains(Int(response.status.code)) else {
            throw OriginFailure(status: Int(response.status.code))
        }
        let temporary = path + ".dfget-direct"
        FileManager.default.createFile(atPath: temporary, contents: nil)
        guard let out = FileHandle(forWritingAtPath: temporary) else { throw OriginFailure(status: 0) }
        let sha = digest.flatMap { StreamingDigest(algorithm: $0.algorithm.rawValue) }
        var crc: UInt32 = 0
        do {
            for try await var chunk in response.body {
                let bytes = chunk.readBytes(length: chunk.readableBytes) ?? []
                sha?.update(bytes)
                if digest?.algorithm == .crc32 { crc = Hashing.crc32(bytes, continuing: crc) }
                try out.write(contentsOf: bytes)
            }
            try out.close()
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        if let digest {
            let actual = digest.algorithm == .crc32 ? String(crc) : (sha?.finalizeHex() ?? "")
            guard actual == digest.encoded else {
                try? FileManager.default.removeItem(atPath: temporary)
                throw DigestMismatch(expected: digest.description, actual: "\(digest.algorithm.rawValue):\(actual)")
            }
        }
        guard rename(temporary, path) == 0 else { throw OriginFailure(status: 0) }
    }

    struct OriginFailure: Error, CustomStringConvertible {
        var status: Int
        var description: String { status == 0 ? "cannot write the output file" : "origin answered HTTP \(status)" }
    }
}
