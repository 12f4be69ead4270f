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
        // A buffer grown for one huge file goes back to its usual size.
        if buffer.count > 4 * initialCapacity && buffer.count >= 1 << 20 {
            buffer = Array(repeating: 0, count: initialCapacity)
        }
        // Made after errno is read: the string's allocation may change errno.
        func failure(_ call: String, _ code: Int32, reason: String? = nil) -> FileError {
            FileError(path: String(cString: cPath), call: call, errno: code, reason: reason)
        }
        let fd = open(cPath, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { throw failure("open", errno) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw failure("fstat", errno) }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw failure("open", EINVAL, reason: "not a regular file")
        }
        var length = 0
        while true {
            if length == buffer.count {
                guard buffer.count < maximumSize else {
                    throw failure("read", EFBIG, reason: "larger than \(maximumSize) bytes (sampler.max-source-bytes); not read")
                }
                buffer.append(contentsOf: repeatElement(0, count: min(buffer.count, maximumSize - buffer.count)))
            }
            let n = buffer.withUnsafeMutableBytes { raw in
                Glibc.read(fd, raw.baseAddress! + length, min(readSize, raw.count - length))
            }
            if n > 0 { length += n; continue }
            if n == 0 { break }
            if errno == EINTR { continue }
            throw failure("read", errno)
        }
        return buffer[0..<length]
    }

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
