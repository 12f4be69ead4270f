public import Logging

/// One long-lived part of the daemon: the shape of swift-service-lifecycle's
/// `Service`, with `start` and `stop` in place of `run()` because the parts
/// are event sources (Dispatch timers, sockets, signals), not loops that own
/// a thread. `ServiceGroup` starts the parts in order and stops them in reverse.
public protocol Service: AnyObject, Sendable {
    /// For the log: which part failed to start or was abandoned at shutdown.
    var name: String { get }
    /// Starts the part's sources and returns.
    /// - Throws: `ServiceError` with the status the process exits with
    ///   (start-up fails loudly, before `READY=1`).
    func start() throws(ServiceError)
    /// Ends the part's work, waiting at most until `deadline` (monotonic
    /// nanoseconds, as `Clock.monotonicNanoseconds()`) for work under way.
    /// Returns false when the part was abandoned: its work is stuck (a hung
    /// procfs read) and the process exits without it. A part whose work must
    /// finish to leave the machine as it was says so where it overruns.
    func stop(deadline: UInt64) -> Bool
}

/// Why a part could not start: what the log says, and the status the
/// process exits with.
public struct ServiceError: Error, Sendable, CustomStringConvertible {
    public let status: ExitStatus
    public let message: String
    public let metadata: Logger.Metadata

    public init(_ status: ExitStatus, _ message: String, metadata: Logger.Metadata = [:]) {
        self.status = status
        self.message = message
        self.metadata = metadata
    }

    public var description: String { message }
}

extension Clock {
    /// Seconds from now until `deadline` (monotonic nanoseconds); 0 once it
    /// has passed. For the parts that wait with a timeout.
    static func seconds(until deadline: UInt64) -> Double {
        let now = monotonicNanoseconds()
        return deadline > now ? Double(deadline - now) / 1e9 : 0
    }
}
