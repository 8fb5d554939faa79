import DragonflyCommon
import Foundation
import RPCCore
#if canImport(Glibc)
import Glibc
#endif

/// A file a local client asked the daemon to import (`dfcache import`). The daemon usually
/// runs as root, so the file is held to the rules an output path is: absolute, no `.` or
/// `..`, under one of `download.allowedOutputDirs`, reached without following symlinks,
/// and a regular file. It is read through the one descriptor opened here.
struct ImportSource: Sendable {
    let path: String
    let fd: Int32
    let length: UInt64

    static func open(_ path: String, allowed: [String]) throws(RPCError) -> ImportSource {
        let target: OutputTarget
        do {
            target = try OutputTarget.check(path, allowed: allowed)
        } catch {
            throw RPCError(code: error.code, message: error.message.replacingOccurrences(of: "output path", with: "import path"))
        }
        let dir = try target.openDirectory()
        defer { Glibc.close(dir) }
        let fd = openat(dir, target.name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            let why = errno
            throw RPCError(code: why == ELOOP ? .permissionDenied : (why == ENOENT ? .notFound : .internal),
                           message: "cannot open \(path): \(String(cString: strerror(why)))")
        }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size >= 0 else {
            Glibc.close(fd)
            throw RPCError(code: .invalidArgument, message: "\(path) is not a regular file")
        }
        return ImportSource(path: path, fd: fd, length: UInt64(st.st_size))
    }

    func close() { Glibc.close(fd) }

    /// `length` bytes at `offset`; a file that shrank while it was read is an error.
    func read(offset: UInt64, length: UInt64) throws -> [UInt8] {
        let bytes = [UInt8](unsafeUninitializedCapacity: Int(length)) { buffer, count in
            count = 0
            guard let base = buffer.baseAddress else { return }
            while count < buffer.count {
                let n = pread(fd, base + count, buffer.count - count, off_t(offset) + off_t(count))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { break }
                count += n
            }
        }
        guard UInt64(bytes.count) == length else {
            throw RPCError(code: .dataLoss, message: "\(path) changed while it was imported: read \(bytes.count) of \(length) bytes at \(offset)")
        }
        return bytes
    }

    /// The task id upstream's dfcache gives the file: SHA-256 over its bytes, then the tag,
    /// the application and the piece length asked for (each only if given), then
    /// `PERSISTENT_CACHE`.
    func persistentCacheTaskID(tag: String?, application: String?, pieceLength: UInt64?) throws -> String {
        guard let digest = StreamingDigest(algorithm: "sha256") else { throw RPCError(code: .internal, message: "no SHA-256") }
        var offset: UInt64 = 0
        while offset < length {
            let chunk = try read(offset: offset, length: min(4 << 20, length - offset))
            digest.update(chunk)
            offset += UInt64(chunk.count)
        }
        if let tag { digest.update(Array(tag.utf8)) }
        if let application { digest.update(Array(application.utf8)) }
        if let pieceLength { digest.update(Array(String(pieceLength).utf8)) }
        digest.update(Array("PERSISTENT_CACHE".utf8))
        return digest.finalizeHex()
    }
}
