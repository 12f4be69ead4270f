public import SlabWatchCore
import Synchronization

/// The ring as of the sampler's last record, for everything that shows
/// history: the pages, `/chart.svg`, `/snapshot?history=`, `top`. One reader
/// for all of them, so no two answers come from different rings.
///
/// A read never waits for the detector: the sampler holds the lock only while
/// it appends (`replace`), and evaluates outside it. `/metrics` never reads
/// it (the published state holds no ring). Thread-safe.
public final class HistoryReader: Sendable {
    private let shared: Mutex<SampleRing?>

    /// A reader of `ring`; nil (the default) until the sampler records a sample.
    public init(_ ring: SampleRing? = nil) {
        shared = Mutex(ring)
    }

    /// The history as of the last record; nil before the first.
    public func read() -> History? {
        shared.withLock { ring in ring.map(History.init) }
    }

    /// Changes the shared ring under the lock (the sampler's append, restore
    /// and reload). Setting it to nil first and back after the change leaves
    /// the owner's ring the only reference while it changes, so an append
    /// writes in place instead of copying.
    func replace<Result>(_ change: (inout SampleRing?) -> Result) -> Result {
        shared.withLock { change(&$0) }
    }
}
