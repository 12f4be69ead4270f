import Foundation
import Glibc
import Testing
import TestSupport
@testable import Systemd

/// journald's native protocol, byte for byte, and sending over real AF_UNIX
/// sockets of the test's own: what arrives, and the error for each way a
/// socket can be wrong. (A real journald receiving it: JournalLiveTests.)
struct JournalTests {
    static func bytes(_ parts: [Any]) -> [UInt8] {
        parts.flatMap { part -> [UInt8] in
            if let text = part as? String { return Array(text.utf8) }
            return withUnsafeBytes(of: (part as! UInt64).littleEndian) { Array($0) }
        }
    }

    @Test(arguments: [
        ([("MESSAGE", "hello")], bytes(["MESSAGE=hello\n"])),
        ([("MESSAGE", "a"), ("PRIORITY", "4")], bytes(["MESSAGE=a\nPRIORITY=4\n"])),
        ([("EMPTY", "")], bytes(["EMPTY=\n"])),
        ([("A_1", "x=y")], bytes(["A_1=x=y\n"])),  // only the first '=' ends the name
        // A newline anywhere in the value: the binary-safe form, length in bytes (UTF-8).
        ([("MESSAGE", "two\nlines")], bytes(["MESSAGE\n", UInt64(9), "two\nlines\n"])),
        ([("MESSAGE", "é\n")], bytes(["MESSAGE\n", UInt64(3), "é\n\n"])),
        ([("X", "\n")], bytes(["X\n", UInt64(1), "\n\n"])),
        ([(String(repeating: "N", count: 64), "v")], bytes([String(repeating: "N", count: 64) + "=v\n"])),
    ] as [([(String, String)], [UInt8])])
    func entriesAreEncodedAsJournaldReadsThem(_ fields: [(String, String)], _ expected: [UInt8]) throws {
        #expect(try JournalEntry(fields.map { (name: $0.0, value: $0.1) }).bytes == expected)
    }

    /// Names journald would drop without a word are refused instead.
    @Test(arguments: ["", "message", "_PID", "1ABC", "A=B", "A\nB", "A B", "É", String(repeating: "N", count: 65)])
    func namesJournaldWouldDropAreRefused(_ name: String) {
        #expect(throws: SystemdError.self) { try JournalEntry([(name: name, value: "v")]) }
        #expect(throws: SystemdError(call: "journal field name '\(name)' (A-Z, 0-9 and _, at most 64)", errno: EINVAL)) {
            try Journal.send([(name: name, value: "v")], to: "/nonexistent/socket")
        }
    }

    @Test func anEntryWithNoFieldsIsRefused() {
        #expect { try Journal.send([], to: "/nonexistent/socket") } throws: { ($0 as? SystemdError)?.errno == EINVAL }
    }

    /// libsystemd reports success when the socket is missing; here it is ENOENT, naming the path.
    @Test func aMissingSocketIsENOENT() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("socket")
        let error = #expect(throws: SystemdError.self) { try Journal.send([(name: "MESSAGE", value: "x")], to: path) }
        #expect(error == SystemdError(call: "sendmsg to \(path)", errno: ENOENT))
        #expect(error?.description == "sendmsg to \(path) failed: No such file or directory")
    }

    /// A socket file nobody listens on (journald stopped or crashed).
    @Test func aSocketNobodyListensOnIsECONNREFUSED() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("socket")
        close(try Receiver.bind(path))  // the file stays, nobody reads
        #expect(throws: SystemdError(call: "sendmsg to \(path)", errno: ECONNREFUSED)) {
            try Journal.send([(name: "MESSAGE", value: "x")], to: path)
        }
    }

    @Test func aPathTooLongForAnAddressIsENAMETOOLONG() {
        let path = "/run/" + String(repeating: "x", count: Journal.maximumSocketPathBytes)
        #expect(Journal.maximumSocketPathBytes == 107)  // Linux's sun_path, less its terminating 0
        #expect(throws: SystemdError(call: "sendmsg to \(path)", errno: ENAMETOOLONG)) {
            try Journal.send([(name: "MESSAGE", value: "x")], to: path)
        }
    }

    @Test func anEntryArrivesAsOneDatagram() throws {
        let directory = try TemporaryDirectory()
        let receiver = try Receiver(directory.path("socket"))
        defer { receiver.close() }
        let fields = [(name: "MESSAGE", value: "two\nlines"), (name: "SLABWATCH_SLAB", value: "kmalloc-32")]
        try Journal.send(fields, to: receiver.path)
        let received = try receiver.receive()
        #expect(received.descriptor == nil)
        #expect(received.bytes == (try JournalEntry(fields)).bytes)
    }

    /// An entry larger than any datagram this socket may send goes as a memfd
    /// with exactly the seals journald needs to map it from an unprivileged
    /// sender (shrink, grow, write, seal), in a datagram of no bytes.
    @Test func anEntryTooLargeForADatagramArrivesAsASealedMemfd() throws {
        let directory = try TemporaryDirectory()
        let receiver = try Receiver(directory.path("socket"))
        defer { receiver.close() }
        let message = String(repeating: "0123456789abcde\n", count: 4 * Receiver.sendBufferBytes() / 16)
        let fields = [(name: "MESSAGE", value: message), (name: "PRIORITY", value: "6")]
        try Journal.send(fields, to: receiver.path)
        let received = try receiver.receive()
        #expect(received.bytes.isEmpty)
        let file = try #require(received.descriptor)
        defer { close(file) }
        // F_GET_SEALS, and F_SEAL_SHRINK | GROW | WRITE | SEAL, by value: glibc
        // names them only under _GNU_SOURCE.
        #expect(fcntl(file, 1024 + 10) == 0x2 | 0x4 | 0x8 | 0x1)
        var contents = [UInt8](repeating: 0, count: message.utf8.count + 100)
        let read = pread(file, &contents, contents.count, 0)
        #expect(Array(contents[0..<max(read, 0)]) == (try JournalEntry(fields)).bytes)
    }
}

/// A datagram socket of the test's own, bound at a path, that receives one
/// datagram and any descriptor passed with it.
final class Receiver {
    let path: String
    let descriptor: Int32

    init(_ path: String) throws {
        self.path = path
        descriptor = try Self.bind(path)
    }

    func close() { Glibc.close(descriptor) }

    static func bind(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)  // only trips when nothing was sent at all
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    /// The send buffer of a fresh AF_UNIX datagram socket: no datagram from one is larger.
    static func sendBufferBytes() -> Int {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { Glibc.close(fd) }
        var bytes: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, &length)
        return Int(bytes)
    }

    /// One datagram's bytes, and the descriptor passed with it (SCM_RIGHTS), if any.
    func receive() throws -> (bytes: [UInt8], descriptor: Int32?) {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        let control = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: MemoryLayout<cmsghdr>.alignment)
        defer { control.deallocate() }
        control.initializeMemory(as: UInt8.self, repeating: 0)
        let count = buffer.withUnsafeMutableBytes { raw -> Int in
            var vector = iovec(iov_base: raw.baseAddress, iov_len: raw.count)
            return withUnsafeMutablePointer(to: &vector) { vectors in
                var message = msghdr()
                message.msg_iov = vectors
                message.msg_iovlen = 1
                message.msg_control = control.baseAddress
                message.msg_controllen = control.count
                return recvmsg(descriptor, &message, Int32(MSG_CMSG_CLOEXEC))
            }
        }
        guard count >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let header = control.load(as: cmsghdr.self)
        let passed = header.cmsg_level == SOL_SOCKET && header.cmsg_type == Int32(SCM_RIGHTS)
            ? control.load(fromByteOffset: MemoryLayout<cmsghdr>.size, as: Int32.self) : nil
        return (Array(buffer[0..<count]), passed)
    }
}
