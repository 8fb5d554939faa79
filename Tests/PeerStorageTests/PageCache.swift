import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// How many of the file's pages in [offset, offset + count) are in the page cache.
func residentPages(_ path: String, offset: Int, count: Int) throws -> Int {
    let fd = open(path, O_RDONLY)
    try #require(fd >= 0)
    defer { close(fd) }
    let map = mmap(nil, offset + count, PROT_READ, MAP_SHARED, fd, 0)
    try #require(map != MAP_FAILED)
    defer { munmap(map, offset + count) }
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    var vector = [UInt8](repeating: 0, count: (offset + count + page - 1) / page)
    try #require(mincore(map, offset + count, &vector) == 0)
    return vector[(offset / page)...].filter { $0 & 1 != 0 }.count
}

/// Writes the file's dirty pages and drops its pages from the cache, as if it had been
/// written long ago.
func dropFromCache(_ path: String) throws {
    let fd = open(path, O_RDONLY)
    try #require(fd >= 0)
    defer { close(fd) }
    try #require(fsync(fd) == 0)
    try #require(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0)
}
