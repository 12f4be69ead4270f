public import Logging
import Synchronization

/// Owns the daemon's parts: starts them in order, stops them in reverse
/// (as swift-service-lifecycle's `ServiceGroup` shuts down its services),
/// under one deadline. A part starts only after every earlier part is up, so
/// it may rely on them (the sampler on a listening socket and a restored
/// state). Thread-safe; a second `stop`, or one after a failed `start`,
/// does nothing.
public final class ServiceGroup: Sendable {
    /// How long the parts started before a failing one get to stop.
    public static let failedStartStopSeconds = 1.0

    private let parts: [any Service]
    private let logger: Logger
    /// How many parts, from the first, are started and not yet stopped.
    private let started = Mutex(0)

    public init(_ parts: [any Service], logger: Logger) {
        self.parts = parts
        self.logger = logger
    }

    /// Starts every part in order. When one fails, its error is logged, the
    /// parts already started stop in reverse and the error is rethrown.
    public func start() throws(ServiceError) {
        for (index, part) in parts.enumerated() {
            do { try part.start() } catch {
                logger.error("\(error.message)", metadata: error.metadata.merging(["part": "\(part.name)"]) { mine, _ in mine })
                logAbandoned(stop(within: Self.failedStartStopSeconds))
                throw error
            }
            started.withLock { $0 = index + 1 }
        }
    }

    /// Stops every started part in reverse under one deadline, `seconds` from
    /// now. An abandoned part does not keep the later ones from stopping:
    /// each still gets its turn, with whatever time is left. Returns the
    /// names of the abandoned parts, in stop order.
    public func stop(within seconds: Double) -> [String] {
        let deadline = Clock.monotonicNanoseconds() &+ UInt64(max(0, seconds) * 1e9)
        let count = started.withLock { count in
            defer { count = 0 }
            return count
        }
        var abandoned: [String] = []
        for part in parts[..<count].reversed() where !part.stop(deadline: deadline) {
            abandoned.append(part.name)
        }
        return abandoned
    }

    /// One warning per abandoned part: the process exits without its work.
    public func logAbandoned(_ names: [String]) {
        for name in names {
            logger.warning("still blocked at shutdown; exiting anyway", metadata: ["part": "\(name)"])
        }
    }
}
