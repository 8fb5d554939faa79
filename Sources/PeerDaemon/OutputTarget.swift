import Foundation
import RPCCore
#if canImport(Glibc)
import Glibc
#endif

/// Where a local client asked the daemon to put a finished task. The daemon usually runs as
/// root, so the path is checked before anything is fetched: absolute, no `.` or `..`, under
/// one of `download.allowedOutputDirs`, and written through directory descriptors opened
/// without following symlinks, so a link planted below the allowed directory (now or
/// between the check and the write) cannot send the file elsewhere.
struct OutputTarget: Sendable {
    /// The allowed directory the path is under, as configured (trusted).
    let root: String
    /// The directories between `root` and the file.
    let below: [String]
    let name: String

    var path: String { ([root == "/" ? "" : root] + below + [name]).joined(separator: "/") }

    static func check(_ path: String, allowed: [String]) throws(RPCError) -> OutputTarget {
        func refuse(_ why: String) -> RPCError {
            RPCError(code: .permissionDenied, message: "output path \(path) refused: \(why)")
        }
        guard path.hasPrefix("/") else { throw refuse("it must be absolute") }
        guard !path.utf8.contains(0), path.utf8.count <= 4096 else { throw refuse("it is not a usable path") }
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard let name = parts.last else { throw refuse("it names no file") }
        guard !parts.contains(where: { $0 == "." || $0 == ".." }) else { throw refuse("it contains . or ..") }
        for root in allowed {
            let rootParts = root.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
            guard parts.count > rootParts.count, Array(parts.prefix(rootParts.count)) == rootParts else { continue }
            return OutputTarget(root: "/" + rootParts.joined(separator: "/"),
                                below: Array(parts[rootParts.count..<(parts.count - 1)]), name: name)
        }
        throw refuse("it is not under download.allowedOutputDirs (\(allowed.joined(separator: ", ")))")
    }

    /// The file's directory, opened component by component below `root` without following
    /// symlinks; missing directories are created.
    func openDirectory() throws(RPCError) -> Int32 {
        var fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("cannot open \(root)") }
        for component in below {
            var next = openat(fd, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0 && errno == ENOENT {
                _ = mkdirat(fd, component, 0o755)
                next = openat(fd, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            let why = errno
            close(fd)
            guard next >= 0 else {
                throw why == ELOOP || why == ENOTDIR
                    ? RPCError(code: .permissionDenied, message: "output path \(path) refused: \(component) is a symlink or not a directory")
                    : failure("cannot open directory \(component)")
            }
            fd = next
        }
        return fd
    }

    /// Checks, before anything is fetched, what `write` checks again when it writes: the
    /// directory is reachable without symlinks and the name is free or a regular file.
    func preflight() throws(RPCError) {
        close(try openWritableDirectory())
    }

    func openWritableDirectory() throws(RPCError) -> Int32 {
        let dir = try openDirectory()
        var st = stat()
        if fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & S_IFMT) != S_IFREG {
            close(dir)
            throw RPCError(code: .permissionDenied, message: "output path \(path) refused: it exists and is not a regular file")
        }
        return dir
    }

    /// Puts a copy of `source` at the path through a temporary name and a rename, so a
    /// reader never sees half a file. A copy, not a hard link: whoever can write the output
    /// must not be able to change what the store serves to other peers. An existing entry is
    /// replaced only if it is a regular file.
    func write(from source: String) throws(RPCError) {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw failure("cannot open the stored content") }
        var st = stat()
        let statted = fstat(input, &st)
        close(input)
        guard statted == 0, st.st_size >= 0 else { throw failure("cannot read the stored content's size") }
        let length = UInt64(st.st_size)
        let file = try OutputFile(self, length: length)
        try file.copy(from: source, offset: 0, length: length)
        try file.commit()
    }

    func failure(_ what: String) -> RPCError {
        RPCError(code: .internal, message: "cannot write \(path): \(what): \(String(cString: strerror(errno)))")
    }
}
