import Glibc
import Testing
import TestSupport
@testable import Systemd

/// What the service manager passes in the environment, read by sd-daemon(3)'s
/// rules, and notifications sent over real AF_UNIX sockets of the test's own:
/// a socket file and a name in the abstract namespace. (The real manager's
/// side — systemd-socket-activate, a notify socket, the watchdog — is
/// SystemdEndToEndTests'.)
struct ServiceManagerTests {
    @Test(arguments: [
        ("/run/systemd/notify", UnixDatagramSocket.Address.path("/run/systemd/notify")),
        ("@/org/freedesktop/systemd1/notify", .abstract("/org/freedesktop/systemd1/notify")),
        ("@x", .abstract("x")),
    ])
    func notificationSocketsAreAPathOrAnAbstractName(_ socket: String, _ address: UnixDatagramSocket.Address) throws {
        #expect(try ServiceManager.notificationAddress(socket) == address)
    }

    /// Relative paths, a bare `@`, an empty value and newer managers' vsock
    /// addresses are refused with the value in the message, not sent anywhere.
    @Test(arguments: ["", "@", "run/notify", "vsock:2:1234", " /run/notify"])
    func otherNotificationSocketsAreRefused(_ socket: String) {
        #expect(throws: SystemdError(call: "NOTIFY_SOCKET='\(socket)' (an absolute path or @name)", errno: EINVAL)) {
            try ServiceManager.notify("READY=1", to: socket)
        }
    }

    @Test func aNotificationArrivesAtASocketFile() throws {
        let directory = try TemporaryDirectory()
        let receiver = try Receiver(directory.path("notify"))
        defer { receiver.close() }
        try ServiceManager.notify("READY=1\nSTATUS=sampling", to: receiver.path)
        #expect(try receiver.receive().bytes == Array("READY=1\nSTATUS=sampling".utf8))
    }

    /// An abstract name is exactly its bytes: an address padded with the rest
    /// of `sun_path` names another socket, and the datagram would be refused.
    @Test func aNotificationArrivesAtAnAbstractName() throws {
        let name = "slabwatch-test-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let receiver = try AbstractReceiver(name)
        defer { close(receiver.descriptor) }
        try ServiceManager.notify("WATCHDOG=1", to: "@" + name)
        #expect(try receiver.receive() == Array("WATCHDOG=1".utf8))
    }

    @Test func anAbstractNameNobodyListensOnIsECONNREFUSED() {
        let name = "slabwatch-test-nobody-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(throws: SystemdError(call: "sendmsg to @\(name)", errno: ECONNREFUSED)) {
            try ServiceManager.notify("READY=1", to: "@" + name)
        }
    }

    @Test func anEmptyStateIsRefused() {
        #expect { try ServiceManager.notify("", to: "/nonexistent/notify") } throws: { ($0 as? SystemdError)?.errno == EINVAL }
    }

    // MARK: the watchdog

    @Test(arguments: [
        // WATCHDOG_USEC, WATCHDOG_PID (this process is 100), expected
        ("30000000", nil, 30_000_000),
        ("30000000", "100", 30_000_000),
        ("1", nil, 1),
        ("18446744073709551614", nil, 18_446_744_073_709_551_614),
    ] as [(String?, String?, UInt64?)])
    func aWatchdogForThisProcess(_ interval: String?, _ pid: String?, _ expected: UInt64?) {
        #expect(ServiceManager.watchdogMicroseconds(interval: interval, pid: pid, processID: 100) == expected)
    }

    /// None at all, another process's (a child that inherited the variables),
    /// and every malformed value: no watchdog, as libsystemd says.
    @Test(arguments: [
        (nil, nil), (nil, "100"),
        ("30000000", "101"),
        ("0", nil), ("18446744073709551615", nil), ("18446744073709551616", nil),
        ("", nil), ("-5", nil), ("+5", nil), (" 5", nil), ("5s", nil), ("0x10", nil),
        ("30000000", ""), ("30000000", "0"), ("30000000", "-100"), ("30000000", "abc"), ("30000000", "99999999999"),
    ] as [(String?, String?)])
    func noWatchdog(_ interval: String?, _ pid: String?) {
        #expect(ServiceManager.watchdogMicroseconds(interval: interval, pid: pid, processID: 100) == nil)
    }

    // MARK: socket activation

    @Test(arguments: [
        // LISTEN_PID, LISTEN_FDS (this process is 100), descriptors expected
        (nil, nil, 0), (nil, "2", 0),
        ("101", "2", 0), ("1", "1", 0),  // for another process (LISTEN_PID is checked first)
        ("100", nil, 0),
        ("100", "1", 1), ("100", "2", 2),
        ("100", "2147483644", 2_147_483_644),  // the most that fit after descriptor 3
    ] as [(String?, String?, Int32)])
    func listenDescriptorsForThisProcess(_ pid: String?, _ count: String?, _ expected: Int32) throws {
        #expect(try ServiceManager.listenDescriptorCount(pid: pid, count: count, processID: 100) == expected)
    }

    @Test(arguments: ["", "0", "-100", "abc", "100 ", "2147483648"])
    func aMalformedListenPIDIsRefused(_ pid: String) {
        #expect(throws: SystemdError(call: "socket activation (LISTEN_PID='\(pid)')", errno: EINVAL)) {
            try ServiceManager.listenDescriptorCount(pid: pid, count: "1", processID: 100)
        }
    }

    /// No descriptor, a negative or non-numeric count, and more than fit after descriptor 3.
    @Test(arguments: ["", "0", "-1", "two", "2 ", "0x2", "2147483645", "99999999999999999999"])
    func aMalformedListenCountIsRefused(_ count: String) {
        #expect(throws: SystemdError(call: "socket activation (LISTEN_FDS='\(count)')", errno: EINVAL)) {
            try ServiceManager.listenDescriptorCount(pid: "100", count: count, processID: 100)
        }
    }

    /// Passed descriptors become close-on-exec; one more than was passed (a
    /// count larger than what is open) is EBADF, naming the descriptor.
    @Test func passedDescriptorsBecomeCloseOnExecAndAMissingOneIsEBADF() throws {
        let range = try OpenDescriptors(count: 2)
        defer { range.close() }
        #expect(range.descriptors.allSatisfy { fcntl($0, F_GETFD) & FD_CLOEXEC == 0 })
        #expect(try ServiceManager.closeOnExec(range.descriptors) == Array(range.descriptors))
        #expect(range.descriptors.allSatisfy { fcntl($0, F_GETFD) & FD_CLOEXEC != 0 })
        let missing = range.descriptors.upperBound
        #expect(throws: SystemdError(call: "socket activation: fcntl(\(missing), F_GETFD)", errno: EBADF)) {
            try ServiceManager.closeOnExec(range.descriptors.lowerBound..<missing + 1)
        }
    }
}

/// A datagram socket bound to a name in the abstract namespace (no file).
private struct AbstractReceiver {
    let descriptor: Int32

    init(_ name: String) throws {
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = [0] + Array(name.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0 else { throw SystemdError(call: "bind @\(name)", errno: errno) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)  // only trips when nothing was sent at all
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    func receive() throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = recv(descriptor, &buffer, buffer.count, 0)
        guard n >= 0 else { throw SystemdError(call: "recv", errno: errno) }
        return Array(buffer[0..<n])
    }
}

/// `count` consecutive descriptors open without close-on-exec, as a service
/// manager passes them, above the ones the test process uses; the one after
/// them is not open.
private struct OpenDescriptors {
    let descriptors: Range<Int32>

    init(count: Int32) throws {
        // Far above what the test process holds, so no other test's open(2) takes one meanwhile.
        var first: Int32 = 600
        while (first..<first + count + 1).contains(where: { fcntl($0, F_GETFD) >= 0 }) { first += count + 1 }
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard null >= 0 else { throw SystemdError(call: "open /dev/null", errno: errno) }
        defer { Glibc.close(null) }
        for descriptor in first..<first + count {  // dup2 leaves close-on-exec off
            guard dup2(null, descriptor) == descriptor else { throw SystemdError(call: "dup2 to \(descriptor)", errno: errno) }
        }
        descriptors = first..<first + count
    }

    func close() { for descriptor in descriptors { Glibc.close(descriptor) } }
}
