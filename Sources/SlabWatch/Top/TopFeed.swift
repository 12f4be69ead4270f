public import SlabWatchCore

/// What one screen of `slabwatch top` is drawn from.
public struct TopFrame: Sendable {
    public var sample: Sample
    public var history: History
    public var report: GrowthDetector.Report

    public init(sample: Sample, history: History, report: GrowthDetector.Report) {
        self.sample = sample
        self.history = history
        self.report = report
    }
}

/// Why a frame could not be had (a daemon that cannot be read), said on one line.
public struct TopFailure: Error, CustomStringConvertible, Sendable {
    public var description: String

    public init(_ description: String) { self.description = description }
}

/// Where top's frames come from. `next` may block (a daemon's answer has a
/// deadline of its own); it is called by one thread at a time.
public protocol TopFeed: Sendable {
    func next() throws(TopFailure) -> TopFrame
}

/// This kernel, through the daemon's own path (ProcReader → ring →
/// detector), so a finding appears here too once there are enough samples.
public struct LocalFeed: TopFeed {
    private let sampler: Sampler

    public init(_ sampler: Sampler) { self.sampler = sampler }

    public func next() -> TopFrame {
        let state = sampler.sampleOnce()
        return TopFrame(sample: state.sample, history: sampler.history.read() ?? .empty, report: state.report)
    }
}

/// A running daemon's `/snapshot`, polled: its findings as it reports them
/// (from its whole history), and the growth columns from the snapshots this
/// top has seen, kept in a ring of its own.
public final class RemoteFeed: TopFeed, @unchecked Sendable {  // `ring`: one fetch at a time (TopFeed's contract)
    private let client: SnapshotClient
    private var ring = SampleRing()

    /// `http://HOST[:PORT]`. - Throws: `TopFailure` for a URL top cannot use.
    public init(url: String) throws(TopFailure) {
        do { client = try SnapshotClient(url: url) } catch { throw TopFailure(error.description) }
    }

    public func next() throws(TopFailure) -> TopFrame {
        let snapshot: SnapshotReader.Snapshot
        do { snapshot = try client.fetch() } catch { throw TopFailure(error.description) }
        // Two polls within one of the daemon's ticks see the same sample.
        let newest = ring.fine.count > 0 ? ring.fine.time(at: ring.fine.count - 1) : Int64.min
        if snapshot.sample.timestampMilliseconds > newest { ring.append(snapshot.sample) }
        return TopFrame(sample: snapshot.sample, history: History(ring), report: GrowthDetector.Report(findings: snapshot.findings))
    }
}
