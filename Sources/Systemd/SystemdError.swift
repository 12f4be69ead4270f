import Glibc

/// A system call made to speak one of systemd's protocols (the journal's
/// native protocol, sd_notify, socket activation) that failed with an errno,
/// or a value the service manager passed that is malformed (EINVAL).
public struct SystemdError: Error, CustomStringConvertible, Equatable {
    /// What failed: the C function, and the socket or file where that helps (`sendmsg to /run/…/socket`).
    public var call: String
    public var errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call) failed: \(String(cString: strerror(errno)))" }

    /// A system call returns -1 and leaves the reason in `errno`.
    @discardableResult
    static func check<Result: BinaryInteger>(syscall result: Result, _ call: @autoclosure () -> String) throws(SystemdError) -> Result {
        if result < 0 { throw SystemdError(call: call(), errno: Glibc.errno) }
        return result
    }
}
