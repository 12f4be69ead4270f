import Glibc

/// A libsystemd call, or a system call made on systemd's behalf (the journal's
/// native protocol), that failed with an errno.
public struct SystemdError: Error, CustomStringConvertible, Equatable {
    /// What failed: the C function, and the socket or file where that helps (`sendmsg to /run/…/socket`).
    public var call: String
    public var errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call) failed: \(String(cString: strerror(errno)))" }

    /// libsystemd returns `-errno`; this and `check(syscall:_:)` are the only
    /// places an errno becomes a Swift error.
    static func check(_ result: Int32, _ call: String) throws(SystemdError) -> Int32 {
        if result < 0 { throw SystemdError(call: call, errno: -result) }
        return result
    }

    /// A system call returns -1 and leaves the reason in `errno`.
    @discardableResult
    static func check<Result: BinaryInteger>(syscall result: Result, _ call: @autoclosure () -> String) throws(SystemdError) -> Result {
        if result < 0 { throw SystemdError(call: call(), errno: Glibc.errno) }
        return result
    }
}
