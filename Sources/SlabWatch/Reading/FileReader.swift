import CLinux
import Glibc

/// Why a file could not be read; the message names the path and the errno text.
public struct FileError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var call: String
    public var errno: Int32
    /// Said instead of the errno text when the failure is not the system call's.
    public var reason: String?

    public init(path: String, call: String, errno: Int32, reason: String? = nil) {
        self.path = path
        self.call = call
        self.errno = errno
        self.reason = reason
    }

    public var description: String {
        var text = "\(call) \(path): \(reason ?? String(cString: strerror(errno)))"
        if errno == EACCES || errno == EPERM {
            text += " (needs root or CAP_DAC_READ_SEARCH)"
        }
        return text
    }
}

/// Reads whole files into one reused buffer.
///
/// /proc and /sys files report size 0, so they are read until EOF; the buffer
/// grows to the largest file seen and is then reused, which keeps a steady-state
/// sample free of per-file allocations. The returned slice is valid until the
/// next read. Not thread-safe: one owner.
final class FileReader {
    private var buffer: [UInt8]
    private let initialCapacity: Int
    /// Files larger than this are refused rather than read into memory without bound.
    let maximumSize: Int

    /// Per read of a sysctl file (`/proc/sys/…`) the kernel allocates and
    /// zeroes a buffer of the size asked for (`proc_sys_call_handler`): a
    /// one-line file read with 64 KiB costs 5 times what it costs with 4 KiB,
    /// and 70 times with 1 MiB. A larger file is still read whole, a page at a time.
    static let sysctlReadSize = 4 << 10

    init(initialCapacity: Int = 64 << 10, maximumSize: Int = ProcReader.Limits.defaultMaxSourceBytes) {
        self.initialCapacity = initialCapacity
        self.maximumSize = max(initialCapacity, maximumSize)
        buffer = Array(repeating: 0, count: initialCapacity)
    }

    /// Reads a regular file whole, at most `readSize` bytes per read(2).
    /// Opened non-blocking and checked with fstat before any read, so a FIFO,
    /// socket or device put in a source's place is refused at once instead of
    /// blocking the sampler in open(2) or read(2).
    func read(_ path: String, readSize: Int = .max) throws(FileError) -> ArraySlice<UInt8> {
        // withCString passes the string's own bytes; an implicit String
        // argument would copy them into a new array on every call.
        try path.withCString { cPath in Result { () throws(FileError) in try read(cPath: cPath, readSize: readSize) } }.get()
    }

    /// The same for a NUL-terminated path: a cgroup walk builds its paths in
    /// a reused buffer, not as strings. The error's path is made on failure only.
    func read(cPath: UnsafePointer<CChar>, readSize: Int = .max) throws(FileError) -> ArraySlice<UInt8> {
        let fd = try openRegular(cPath)
        defer { close(fd) }
        return try readWhole(fd, readSize: readSize) { String(cString: cPath) }
    }

    /// The same for a file named relative to an open directory: the kernel
    /// looks up one name, not every directory of the path again, and a path
    /// longer than PATH_MAX can be read (a cgroup walk reads a file in each
    /// directory it lists). `path` names the file in an error.
    func read(in directory: Int32, _ name: StaticString, readSize: Int = .max,
              path: () -> String) throws(FileError) -> ArraySlice<UInt8> {
        // A string literal's bytes end in a NUL, as openat needs.
        precondition(name.hasPointerRepresentation, "a file name is a string literal")
        let fd = try openRegular(at: directory, UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self), path: path)
        defer { close(fd) }
        return try readWhole(fd, readSize: readSize, path: path)
    }

    /// The same, nil where the file cannot be read, and no error made for a
    /// caller that only counts what it could not read (naming the file in an
    /// error was three heap allocations a failed read).
    func readIfPossible(in directory: Int32, _ name: StaticString, readSize: Int = .max) -> ArraySlice<UInt8>? {
        try? read(in: directory, name, readSize: readSize, path: { "" })
    }

    /// Reads `file` whole through the descriptor it keeps, opening it on the
    /// first read (and again after a read through it failed). A descriptor
    /// that cannot be kept is closed after the read, as `read(_:)` does.
    func read(_ file: KeptFile, readSize: Int = .max) throws(FileError) -> ArraySlice<UInt8> {
        if file.descriptor >= 0 {
            do {
                return try readWhole(file.descriptor, readSize: readSize) { file.path }
            } catch where error.errno == EFBIG {
                throw error  // the file, not the descriptor: reading it again would only cost as much again
            } catch {
                file.forget()  // not trusted again: the open below says what is wrong now
            }
        }
        let fd = try file.path.withCString { cPath in Result { () throws(FileError) in try openRegular(cPath) } }.get()
        guard KeptFile.canKeep(fd) else {
            defer { close(fd) }
            return try readWhole(fd, readSize: readSize) { file.path }
        }
        file.keep(fd)
        do {
            return try readWhole(fd, readSize: readSize) { file.path }
        } catch {
            file.forget()
            throw error
        }
    }

    /// Opens a file for reading, non-blocking, and refuses what is not a
    /// regular file (a FIFO, socket or device put in a source's place).
    private func openRegular(_ cPath: UnsafePointer<CChar>) throws(FileError) -> Int32 {
        try openRegular(at: AT_FDCWD, cPath) { String(cString: cPath) }
    }

    /// `cPath` relative to the directory `directory` (`AT_FDCWD`: the working
    /// directory, as `open` takes it); `path` names it in an error.
    private func openRegular(at directory: Int32, _ cPath: UnsafePointer<CChar>, path: () -> String) throws(FileError) -> Int32 {
        // Made after errno is read: the string's allocation may change errno.
        func failure(_ call: String, _ code: Int32, reason: String? = nil) -> FileError {
            FileError(path: path(), call: call, errno: code, reason: reason)
        }
        let fd = openat(directory, cPath, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { throw failure("open", errno) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            let code = errno
            close(fd)
            throw failure("fstat", code)
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw failure("open", EINVAL, reason: "not a regular file")
        }
        return fd
    }

    /// Reads an open file from its start to EOF into the buffer, at most
    /// `readSize` bytes per pread(2): procfs makes a file afresh when it is
    /// read from offset 0, so a kept descriptor reads the kernel's figures
    /// of now. `path` names the file in an error.
    private func readWhole(_ fd: Int32, readSize: Int, path: () -> String) throws(FileError) -> ArraySlice<UInt8> {
        shrinkAfterABurst()
        var length = 0
        while true {
            if length == buffer.count {
                guard buffer.count < maximumSize else {
                    throw FileError(path: path(), call: "read", errno: EFBIG,
                                    reason: "larger than \(maximumSize) bytes (sampler.max-source-bytes); not read")
                }
                buffer.append(contentsOf: repeatElement(0, count: min(buffer.count, maximumSize - buffer.count)))
                timesGrown += 1
            }
            let n = buffer.withUnsafeMutableBytes { raw in
                pread(fd, raw.baseAddress! + length, min(readSize, raw.count - length), off_t(length))
            }
            if n > 0 { length += n; continue }
            if n == 0 { break }
            let code = errno
            if code == EINTR { continue }
            throw FileError(path: path(), call: "read", errno: code)
        }
        recentLargest = max(recentLargest, length)
        return buffer[0..<length]
    }

    /// Reads since `recentLargest` began, and how many it spans before it
    /// starts again (from the largest of the reads before, so a file read
    /// every sample is never forgotten between two of its reads).
    private var reads = 0, recentLargest = 0, earlierLargest = 0
    static let readsRemembered = 64

    /// A buffer grown for a burst (one huge file) goes back to its usual size
    /// once the recent reads would fit in a quarter of it; one that a file
    /// read every sample needs is kept. (It went back whenever it was a
    /// megabyte or more: with 5,000 caches, /proc/slabinfo's 540 KB grew it
    /// back through four copies and an mmap every sample.)
    private func shrinkAfterABurst() {
        reads += 1
        if reads >= Self.readsRemembered {
            (earlierLargest, recentLargest, reads) = (recentLargest, 0, 0)
        }
        let needed = max(initialCapacity, recentLargest, earlierLargest)
        if buffer.count >= 1 << 20 && buffer.count > 4 * needed {
            buffer = Array(repeating: 0, count: initialCapacity)
        }
    }

    /// The buffer's size now, and how many times a read grew it (tests).
    var bufferSize: Int { buffer.count }
    private(set) var timesGrown = 0

    /// The entries of a directory with the targets of those that are symlinks.
    func listDirectory(_ path: String) throws(FileError) -> [(name: String, linkTarget: String?)] {
        guard let dir = opendir(path) else { throw FileError(path: path, call: "opendir", errno: errno) }
        defer { closedir(dir) }
        var entries: [(String, String?)] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            let target = entry.pointee.d_type == UInt8(DT_LNK) ? readLink("\(path)/\(name)") : nil
            entries.append((name, target))
        }
        return entries
    }

    private func readLink(_ path: String) -> String? {
        var target = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &target, target.count - 1)
        guard n > 0 else { return nil }
        let text = String(decoding: target[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.split(separator: "/").last.map(String.init)
    }
}

/// A kernel file read every sample through one open descriptor: procfs
/// answers a read from offset 0 with the file made afresh, so keeping the
/// descriptor saves each sample an open(2) and a close(2) per file, about a
/// tenth of a sample's CPU at a 100 ms interval. Only procfs files are kept:
/// a file anywhere else (a test's fixture, a recording replayed) may be
/// replaced by a rename, which a kept descriptor would never see. The
/// descriptor is closed with its `KeptFile`. One owner, as `FileReader`.
final class KeptFile {
    let path: String
    /// The kept descriptor, or -1 before the first read and after one failed.
    private(set) var descriptor: Int32 = -1

    init(_ path: String) {
        self.path = path
    }

    deinit { forget() }

    fileprivate func keep(_ fd: Int32) {
        forget()
        descriptor = fd
    }

    fileprivate func forget() {
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
    }

    /// Whether `fd` is a file of a procfs mount.
    fileprivate static func canKeep(_ fd: Int32) -> Bool {
        var fileSystem = statfs()
        return fstatfs(fd, &fileSystem) == 0 && fileSystem.f_type == procfsMagic
    }

    /// PROC_SUPER_MAGIC (linux/magic.h).
    static let procfsMagic = 0x9fa0
}

/// One owner at a time, as the reader that reads it.
@available(*, unavailable)
extension KeptFile: Sendable {}
