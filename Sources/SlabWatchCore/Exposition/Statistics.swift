// The figures the daemon keeps about itself, handed to `MetricsRenderer`
// as plain values: the sampler's, the alert router's, the HTTP server's
// (mirrored here, since the core may not import the server module) and the
// process's own.

/// Counters the sampler keeps about itself, exported as `slabwatch_*` metrics.
public struct SamplerStatistics: Sendable, Equatable {
    public var samplesTotal: UInt64 = 0
    /// Ticks not run because the previous one overran the interval.
    public var samplesSkipped: UInt64 = 0
    /// Cumulative malformed lines skipped, per source.
    public var parseErrors: [Source: UInt64] = [:]
    /// Wall time the last tick spent reading and parsing, in seconds.
    public var lastDurationSeconds: Double = 0
    /// Ring series whose history was dropped to make room for a new cache.
    public var seriesEvicted: UInt64 = 0

    public init() {}
}

/// How many alerts went to a sink with a result (`slabwatch_alerts_total`).
public struct AlertOutcome: Sendable, Hashable {
    /// `journal` or `stderr`.
    public var sink: String
    /// `sent`, `failed` or `suppressed` (held back by the per-cache cooldown).
    public var result: String

    public init(sink: String, result: String) {
        self.sink = sink
        self.result = result
    }
}

/// The HTTP server's own counters, exported as `slabwatch_http_*`.
public struct ServerStatistics: Sendable, Equatable {
    public var requests: UInt64 = 0
    public var badRequests: UInt64 = 0
    public var connectionsAccepted: UInt64 = 0
    /// Refused with 503 at the connection cap.
    public var connectionsRejected: UInt64 = 0
    /// Idle or head-less connections closed to make room at the cap.
    public var connectionsShed: UInt64 = 0
    /// Closed at the header, idle or write deadline.
    public var connectionsTimedOut: UInt64 = 0
    public var acceptErrors: UInt64 = 0
    /// Failed or unfinished TLS handshakes (plain HTTP to the TLS port among them).
    public var tlsHandshakeFailures: UInt64 = 0
    /// Requests answered 401: credentials missing or wrong.
    public var authenticationFailures: UInt64 = 0

    public init() {}
}

/// The standard `process_*` metrics, read by the daemon from /proc/self.
public struct ProcessStatistics: Sendable, Equatable {
    public var cpuSeconds: Double
    public var residentBytes: UInt64
    public var virtualBytes: UInt64
    public var openFileDescriptors: UInt64
    public var maxFileDescriptors: UInt64
    public var startTimeSeconds: Double

    public init(
        cpuSeconds: Double, residentBytes: UInt64, virtualBytes: UInt64,
        openFileDescriptors: UInt64, maxFileDescriptors: UInt64, startTimeSeconds: Double
    ) {
        self.cpuSeconds = cpuSeconds
        self.residentBytes = residentBytes
        self.virtualBytes = virtualBytes
        self.openFileDescriptors = openFileDescriptors
        self.maxFileDescriptors = maxFileDescriptors
        self.startTimeSeconds = startTimeSeconds
    }
}
