import Glibc

/// A libsystemd call that returned a negative errno.
public struct SystemdError: Error, CustomStringConvertible, Equatable {
    public var call: String
    public var errno: Int32

    public var description: String { "\(call) failed: \(String(cString: strerror(errno)))" }

    /// libsystemd returns `-errno`; this is the one place that becomes a Swift error.
    static func check(_ result: Int32, _ call: String) throws(SystemdError) -> Int32 {
        if result < 0 { throw SystemdError(call: call, errno: -result) }
        return result
    }
}
