/// The samples `slabwatch measure` keeps for its report, bounded in every
/// phase whatever its length: of the baseline only the last sample (the
/// report's "before"; nothing else of it is read), and of the run and of
/// settling at most `maximumPerPhase` each. A phase that reaches the
/// maximum is thinned: every other of its samples is dropped, keeping its
/// latest, and `append` says so, for the sampler to double its interval.
/// A sample of a few hundred caches is tens of KiB: an hour at 10 ms kept
/// whole would be tens of GiB.
///
/// Pure: the caller takes the samples and says when the command started and
/// exited. Not thread-safe: one owner.
public struct MeasurementSamples: Sendable {
    public enum Phase: Sendable, Equatable { case baseline, run, settling }

    /// Samples kept of the run, and of settling, at most.
    public static let maximumPerPhase = 1000

    public private(set) var phase = Phase.baseline
    /// Every sample taken, in all phases, kept or not.
    public private(set) var taken = 0
    /// The last baseline sample, the run's, the first after the command
    /// exited, and settling's, in time order.
    public private(set) var kept: [Sample] = []
    /// The index in `kept` of the first sample after the command exited.
    public private(set) var ended: Int?
    /// When the first sample (of any phase) was taken, for the mean interval.
    private var firstTimestamp: Int64?

    public init() {}

    /// Keeps `sample` as its phase allows.
    /// - Returns: true when the phase was just thinned (double the interval).
    public mutating func append(_ sample: Sample) -> Bool {
        taken += 1
        if firstTimestamp == nil { firstTimestamp = sample.timestampMilliseconds }
        guard phase != .baseline else {
            kept = [sample]
            return false
        }
        kept.append(sample)
        // The run's samples follow "before" (index 0); settling's follow the first after exit.
        let phaseStart = phase == .run ? 1 : (ended ?? 0) + 1
        guard kept.count - phaseStart > Self.maximumPerPhase else { return false }
        thin(from: phaseStart)
        return true
    }

    /// The command is about to start: the last baseline sample is "before".
    /// Nothing happens unless a baseline sample was taken.
    public mutating func commandStarted() {
        guard phase == .baseline, !kept.isEmpty else { return }
        phase = .run
    }

    /// The command exited; `sample` is the first taken after it.
    /// - Returns: true when the run was just thinned, as `append`.
    @discardableResult
    public mutating func commandExited(firstAfter sample: Sample) -> Bool {
        guard phase == .run else { return false }
        let thinned = append(sample)
        ended = kept.count - 1
        phase = .settling
        return thinned
    }

    /// The time between samples as they were taken, over all phases.
    public func meanIntervalSeconds(else planned: Double) -> Double {
        guard let first = firstTimestamp, let last = kept.last, taken > 1 else { return planned }
        return Double(last.timestampMilliseconds - first) / 1000 / Double(taken - 1)
    }

    /// The report of what was kept; nil until the command has exited.
    public func report(command: Measurement.Command, intervalSeconds: Double, settleSeconds: Double,
                       settings: MeasurementSettings = .init()) -> Measurement? {
        guard let ended else { return nil }
        return Measurement.report(samples: kept, started: 0, ended: ended, command: command, intervalSeconds: intervalSeconds,
                                  settleSeconds: settleSeconds, settings: settings, taken: taken)
    }

    /// Drops every other sample from `start` on, keeping the latest.
    private mutating func thin(from start: Int) {
        let phaseSamples = kept[start...]
        let thinned = phaseSamples.enumerated().filter { $0.offset % 2 == 1 || $0.offset == phaseSamples.count - 1 }.map(\.element)
        kept.removeSubrange(start...)
        kept += thinned
    }
}
