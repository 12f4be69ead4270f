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

    public mutating func workloadStarted() {
        if let cache { start(cache) }
    }

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
                let outcome = try AttributionSession.run(cache: cache, settings: settings, say: say,
                                                         cancelled: { result.workloadEnded.load(ordering: .relaxed) })
                result.attribution.withLock { $0 = outcome.attribution }
                if let failure = outcome.cleanupFailure { say("--attribute \(cache): \(failure)") }
            } catch {
                say("--attribute \(cache): \(error)")
            }
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
