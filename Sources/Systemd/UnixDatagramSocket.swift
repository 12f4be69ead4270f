import CMemfd
import Glibc

/// An unbound AF_UNIX datagram socket (close-on-exec), closed when it goes
/// out of scope; it sends to a socket named by its address. One Swift function
/// per C call, each failure a `SystemdError` naming the address.
struct UnixDatagramSocket: ~Copyable {
    /// Where a datagram goes.
    enum Address: Equatable, Sendable, CustomStringConvertible {
        /// A socket file (journald's, a notification socket under /run).
        case path(String)
        /// A name in Linux's abstract namespace: no file, and the name is
        /// exactly its bytes (no terminating 0). systemd writes it `@name`.
        case abstract(String)

        var description: String {
            switch self {
            case .path(let path): path
            case .abstract(let name): "@" + name
            }
        }
    }

    private let descriptor: Int32

    init() throws(SystemdError) {
        let type = Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        descriptor = try SystemdError.check(syscall: socket(AF_UNIX, type, 0), "socket(AF_UNIX, SOCK_DGRAM)")
    }

    deinit { close(descriptor) }

    /// Sends `bytes` as one datagram to the socket at `address` (EMSGSIZE when
    /// they do not fit in one).
    func send(_ bytes: [UInt8], to address: Address) throws(SystemdError) {
        try sendMessage(bytes, passing: nil, to: address)
    }

    /// Passes `file` to the socket at `address` (SCM_RIGHTS) in a datagram of no bytes.
    func send(passing file: borrowing SealedMemoryFile, to address: Address) throws(SystemdError) {
        try sendMessage([], passing: file.descriptor, to: address)
    }

    private func sendMessage(_ bytes: [UInt8], passing file: Int32?, to destination: Address) throws(SystemdError) {
        var (address, length) = try Self.socketAddress(destination)
        let control = file.map(Self.rightsMessage)
        defer { control?.deallocate() }
        var result = 0
        var failure: Int32 = 0
        repeat {
            result = withUnsafeMutablePointer(to: &address) { name in
                bytes.withUnsafeBytes { raw in
                    var vector = iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress), iov_len: raw.count)
                    return withUnsafeMutablePointer(to: &vector) { vectors in
                        var message = msghdr()
                        message.msg_name = UnsafeMutableRawPointer(name)
                        message.msg_namelen = length
                        message.msg_iov = vectors
                        message.msg_iovlen = 1
                        message.msg_control = control?.baseAddress
                        message.msg_controllen = control?.count ?? 0
                        let sent = sendmsg(descriptor, &message, Int32(MSG_NOSIGNAL))
                        failure = errno
                        return sent
                    }
                }
            }
        } while result < 0 && failure == EINTR
        if result < 0 { throw SystemdError(call: "sendmsg to \(destination)", errno: failure) }
    }

    /// The socket address and its length: a path ends at its first 0 (the
    /// rest of `sun_path` stays 0), an abstract name after its last byte,
    /// after a leading 0 that says it is abstract.
    private static func socketAddress(_ destination: Address) throws(SystemdError) -> (sockaddr_un, socklen_t) {
        let (bytes, prefix): ([UInt8], [UInt8]) = switch destination {
        case .path(let path): (Array(path.utf8), [])
        case .abstract(let name): (Array(name.utf8), [0])
        }
        guard bytes.count <= Journal.maximumSocketPathBytes else {
            throw SystemdError(call: "sendmsg to \(destination)", errno: ENAMETOOLONG)
        }
        guard !bytes.isEmpty, !bytes.contains(0) else { throw SystemdError(call: "sendmsg to \(destination)", errno: EINVAL) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: prefix + bytes) }
        let length = switch destination {
        case .path: MemoryLayout<sockaddr_un>.size
        case .abstract: MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + prefix.count + bytes.count
        }
        return (address, socklen_t(length))
    }

    /// One SCM_RIGHTS control message carrying `descriptor`, laid out as the
    /// CMSG_* macros (which Swift cannot import) lay it out: a `cmsghdr`, then
    /// the data, each padded to the size of `size_t`.
    private static func rightsMessage(_ descriptor: Int32) -> UnsafeMutableRawBufferPointer {
        func aligned(_ length: Int) -> Int { (length + MemoryLayout<Int>.size - 1) & ~(MemoryLayout<Int>.size - 1) }
        let headerLength = aligned(MemoryLayout<cmsghdr>.size)
        let buffer = UnsafeMutableRawBufferPointer.allocate(
            byteCount: headerLength + aligned(MemoryLayout<Int32>.size), alignment: MemoryLayout<cmsghdr>.alignment)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        let header = buffer.baseAddress!.bindMemory(to: cmsghdr.self, capacity: 1)
        header.pointee.cmsg_len = headerLength + MemoryLayout<Int32>.size  // CMSG_LEN(sizeof(int))
        header.pointee.cmsg_level = SOL_SOCKET
        header.pointee.cmsg_type = Int32(SCM_RIGHTS)
        buffer.storeBytes(of: descriptor, toByteOffset: headerLength, as: Int32.self)
        return buffer
    }
}

/// A memfd holding some bytes, sealed against every change (shrinking,
/// growing, writing, more seals): journald maps such a file instead of
/// copying it, and accepts it from an unprivileged sender. Closed when it
/// goes out of scope.
struct SealedMemoryFile: ~Copyable {
    fileprivate let descriptor: Int32

    /// The kernel's values (<linux/memfd.h>, <linux/fcntl.h>, a stable ABI):
    /// glibc names them only under _GNU_SOURCE, which CMemfd must not define.
    private static let allowSealing: UInt32 = 0x0002, closeOnExec: UInt32 = 0x0001
    private static let addSeals: Int32 = 1024 + 9  // F_LINUX_SPECIFIC_BASE + 9
    private static let sealSeal: Int32 = 0x1, sealShrink: Int32 = 0x2, sealGrow: Int32 = 0x4, sealWrite: Int32 = 0x8

    /// Exactly these four seals: journald before systemd 254 takes a memfd as
    /// sealed only when its seals are exactly these (no F_SEAL_EXEC, hence no MFD_NOEXEC_SEAL).
    static let seals = sealShrink | sealGrow | sealWrite | sealSeal

    init(_ bytes: [UInt8], name: String) throws(SystemdError) {
        let file = try SystemdError.check(syscall: memfd_create(name, Self.allowSealing | Self.closeOnExec), "memfd_create")
        do throws(SystemdError) {
            try Self.write(bytes, to: file)
            try SystemdError.check(syscall: fcntl(file, Self.addSeals, Self.seals), "fcntl(F_ADD_SEALS) on a memfd")
        } catch {
            close(file)
            throw error
        }
        descriptor = file
    }

    deinit { close(descriptor) }

    private static func write(_ bytes: [UInt8], to file: Int32) throws(SystemdError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(file, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            offset += try SystemdError.check(syscall: written, "write to a memfd")
        }
    }
}
