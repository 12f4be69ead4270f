// The figures the daemon keeps about itself, handed to `MetricsRenderer` as
// one plain value (`SelfStatistics`): the sampler's, the alert router's, the
// HTTP server's (which counts in `ServerStatistics` itself), the state's and
// the process's own.

/// Everything `/metrics` says about slabwatch itself, as of one render: one
/// value, assembled where its owners meet (the daemon) and passed to
/// `MetricsRenderer`; a part that is nil is not rendered (HELP and TYPE too).
public struct SelfStatistics: Sendable, Equatable {
    /// `slabwatch_samples_*`, `slabwatch_parse_errors_total`, …: as of the tick.
    public var sampler: SamplerStatistics
    /// `process_*`; nil when /proc/self could not be read.
    public var process: ProcessStatistics?
    /// `slabwatch_alerts_total`; every sink × result is rendered, absent ones as 0.
    public var alerts: [AlertOutcome: UInt64]
    /// `slabwatch_http_*`; nil where no server runs (one-shot output, the bench).
    public var server: ServerStatistics?
    /// `slabwatch_state_*`; nil in one-shot output, which keeps no state.
    public var persistence: PersistenceStatistics?

    public init(sampler: SamplerStatistics = .init(), process: ProcessStatistics? = nil,
                alerts: [AlertOutcome: UInt64] = [:], server: ServerStatistics? = nil,
                persistence: PersistenceStatistics? = nil) {
        self.sampler = sampler
        self.process = process
        self.alerts = alerts
        self.server = server
        self.persistence = persistence
    }
}

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
    /// Where an alert went; the raw value is the `sink` label.
    public enum Sink: String, Sendable, CaseIterable {
        case journal, stderr
    }

    /// What became of it; the raw value is the `result` label.
    public enum Result: String, Sendable, CaseIterable {
        case failed, sent
        /// Held back by the per-cache cooldown.
        case suppressed
    }

    public var sink: Sink
    public var result: Result

    public init(sink: Sink, result: Result) {
        self.sink = sink
        self.result = result
    }
}

/// The HTTP server's own counters, exported as `slabwatch_http_*`: kept by
/// `HTTPServer` in this very type (read with `HTTPServer.statistics`), so a
/// counter it adds is one the renderer can see.
public struct ServerStatistics: Sendable, Equatable {
    /// Requests answered by a route (pages included).
    public var requests: UInt64 = 0
    /// Answered 400, 408, 413, 431 or 505.
    public var badRequests: UInt64 = 0
    public var connectionsAccepted: UInt64 = 0
    /// Refused with 503 at the connection cap.
    public var connectionsRejected: UInt64 = 0
    /// Idle or head-less connections closed to make room at the cap.
    public var connectionsShed: UInt64 = 0
    /// Closed at the header, idle or write deadline.
    public var connectionsTimedOut: UInt64 = 0
    /// accept() failures, running out of descriptors among them.
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
