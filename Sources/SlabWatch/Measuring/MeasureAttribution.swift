import Dispatch
public import SlabWatchCore
import Synchronization

/// An attribution session while measure's workload runs (`--attribute`),
/// on a background queue, ended when the workload exits. A session that
/// cannot run (no tracefs, not root) says why and the measurement goes on.
public struct AttributionRun: RunWatcher {
    /// The cache to attribute; nil for `auto` until one has grown.
    public private(set) var cache: String?
    private let auto: Bool
    private let settings: AttributionSettings
    private let inodeCaches: InodeCacheSelector
    private let say: @Sendable (String) -> Void
    private var done: DispatchSemaphore?
    private let result = Found()

    /// The session's result, handed from its queue to the measuring thread,
    /// and the workload's end, handed the other way.
    private final class Found: Sendable {
        let attribution = Mutex<Attribution?>(nil)
        let workloadEnded = Atomic<Bool>(false)
        /// Signalled once: when the session counts (it first asks whether it
        /// is cancelled once attached), or when it ended without.
        let counting = DispatchSemaphore(value: 0)
        private let countingSaid = Atomic<Bool>(false)

        func sayCounting() {
            if !countingSaid.exchange(true, ordering: .relaxed) { counting.signal() }
        }
    }

    /// - Parameters:
    ///   - cache: a cache name, or nil for `auto`: the unreclaimable cache
    ///     (not an inode cache, as `inodeCaches` selects them) grown most in
    ///     the workload's first second.
    ///   - say: where the session's messages go (stderr).
    public init(cache: String?, settings: AttributionSettings, inodeCaches: InodeCacheSelector, say: @escaping @Sendable (String) -> Void) {
        self.cache = cache
        self.auto = cache == nil
        var settings = settings
        settings.durationSeconds = 3600  // the workload's exit ends it
        self.settings = settings
        self.inodeCaches = inodeCaches
        self.say = say
    }

    /// A named cache's session attaches before the workload starts, so a
    /// short workload (a module load takes a tenth of a second) is traced
    /// whole: started after it, the session missed its first allocations, or
    /// all of them. Waits at most `attachSeconds`.
    public mutating func workloadStarting() {
        guard let cache else { return }
        start(cache)
        _ = result.counting.wait(timeout: .now() + Self.attachSeconds)
    }

    /// How long the workload waits for its session to attach: longer than a
    /// BPF load on a busy machine, short enough that a stuck one delays
    /// little (the measurement goes on without it).
    static let attachSeconds = 10.0

    public mutating func workloadStarted() {}

    public mutating func sampled(_ samples: MeasurementSamples, secondsSinceStart: Double) {
        guard auto, done == nil, secondsSinceStart >= 1, let before = samples.kept.first, let latest = samples.kept.last else { return }
        guard let grown = Self.grownMost(since: before, latest: latest, inodeCaches: inodeCaches) else { return }
        cache = grown
        start(grown)
    }

    public mutating func workloadEnded() {
        result.workloadEnded.store(true, ordering: .relaxed)
    }

    /// Of the unreclaimable caches that are not inode caches (the memory a
    /// module hangs off its inodes, as the daemon attributes unreclaimable
    /// caches), the one that grew most since `before`; nil when none grew.
    static func grownMost(since before: Sample, latest: Sample, inodeCaches: InodeCacheSelector) -> String? {
        var grown: (name: String, bytes: Double)?
        for cache in latest.caches where cache.reclaimable != true && !inodeCaches.selects(cache) {
            let was = before.caches.first { $0.name == cache.name }?.footprintBytes ?? 0
            let growth = Double(cache.footprintBytes) - Double(was)
            if growth > (grown?.bytes ?? 0) { grown = (cache.name, growth) }
        }
        return grown?.name
    }

    private mutating func start(_ cache: String) {
        let semaphore = DispatchSemaphore(value: 0)
        done = semaphore
        let (settings, result, say) = (settings, result, say)
        DispatchQueue.global().async {
            do {
                let outcome = try AttributionSession.run(cache: cache, settings: settings, say: say, cancelled: {
                    result.sayCounting()
                    return result.workloadEnded.load(ordering: .relaxed)
                })
                result.attribution.withLock { $0 = outcome.attribution }
                if let failure = outcome.cleanupFailure { say("--attribute \(cache): \(failure)") }
            } catch {
                say("--attribute \(cache): \(error)")
            }
            result.sayCounting()
            semaphore.signal()
        }
    }

    /// Waits for the session (it ends when the workload has exited) and returns what it found.
    public func finish() -> [Attribution] {
        guard let done else { return [] }
        done.wait()
        return result.attribution.withLock { $0 }.map { [$0] } ?? []
    }
}

/// One owner: the measuring thread.
@available(*, unavailable)
extension AttributionRun: Sendable {}
