import Dispatch
import Logging
import SlabWatchCore
import Synchronization

/// Runs attribution sessions for the daemon: when a
/// finding on an unreclaimable cache opens, or rises again after holding or
/// falling, one session traces who allocates it — never two at once, at most
/// one per cache per `attribution.cooldown` — and the result is attached to
/// the finding. Where the kernel keeps /proc/allocinfo (and this process can
/// read it) the session is two reads of it, with no tracing, and runs even
/// without `attribution.enabled`; otherwise a BPF session (a tracefs one
/// where BPF cannot run, and the result says why), only with it.
/// Failures are logged once per kind and never stop the daemon; a session
/// that could not remove what it set up in the kernel is logged every time.
final class AttributionScheduler: Sendable {
    private struct State {
        var settings: AttributionSettings
        var running = false
        var stopping = false
        var lastRun: [String: UInt64] = [:]  // monotonic nanoseconds
        var lastPhase: [String: Finding.Phase] = [:]
        var saidFailures: Set<String> = []
    }

    private let state: Mutex<State>
    private let procfs: String
    private let logger: Logger
    private let attach: @Sendable (Attribution) -> Void
    private let done = DispatchGroup()

    init(settings: AttributionSettings, procfs: String, logger: Logger, attach: @escaping @Sendable (Attribution) -> Void) {
        state = Mutex(State(settings: settings))
        self.procfs = procfs
        self.logger = logger
        self.attach = attach
    }

    func apply(_ settings: AttributionSettings) { state.withLock { $0.settings = settings } }

    /// Called after every evaluation (sampler queue): starts a session when one is due.
    func consider(_ report: GrowthDetector.Report) {
        let opened = Set(report.events.filter { $0.kind == .opened }.map(\.finding.slab))
        let now = Clock.monotonicNanoseconds()
        let allocInfo = report.findings.contains { $0.state == .open } && AttributionSession.hasAllocInfo(procfs: procfs)
        let due: (String, AttributionSettings)? = state.withLock { state in
            var due: (String, AttributionSettings)?
            for finding in report.findings where finding.state == .open {
                let risesAgain = finding.phase == .rising && state.lastPhase[finding.slab].map { $0 != .rising } == true
                state.lastPhase[finding.slab] = finding.phase
                guard state.settings.enabled || allocInfo, !state.running, !state.stopping, due == nil, finding.reclaimable == false,
                      opened.contains(finding.slab) || risesAgain else { continue }
                if let last = state.lastRun[finding.slab], Double(now - last) / 1e9 < state.settings.cooldownSeconds { continue }
                state.running = true
                state.lastRun[finding.slab] = now
                due = (finding.slab, state.settings)
            }
            return due
        }
        if let (slab, settings) = due { start(slab, settings, allocInfo: allocInfo) }
    }

    /// Ends a running session early (it still cleans up) and waits for it.
    func stop() {
        state.withLock { $0.stopping = true }
        done.wait()
    }

    private func start(_ slab: String, _ settings: AttributionSettings, allocInfo: Bool) {
        logger.info("attribution session started", metadata: [
            "slab": "\(slab)", "duration": "\(settings.durationSeconds)s", "source": "\(allocInfo ? "allocinfo" : settings.source.rawValue)",
        ])
        done.enter()
        DispatchQueue.global(qos: .utility).async { [self] in
            defer {
                state.withLock { $0.running = false }
                done.leave()
            }
            do {
                let cancelled = { self.state.withLock { $0.stopping } }
                let outcome = allocInfo
                    ? .init(attribution: try AttributionSession.allocInfo(cache: slab, procfs: procfs, seconds: settings.durationSeconds,
                                                                          cancelled: cancelled))
                    : try AttributionSession.run(cache: slab, settings: settings, say: { [logger] in logger.notice("\($0)") },
                                                 cancelled: cancelled)
                let result = outcome.attribution
                logger.info("attribution session finished", metadata: [
                    "slab": "\(slab)", "source": "\(result.source.rawValue)", "events": "\(result.events)", "dropped": "\(result.dropped)",
                    "call_site": "\(result.callSites.first?.symbol ?? "-")",
                ])
                if let fallback = result.fallback { logger.notice("\(fallback)", metadata: ["slab": "\(slab)"]) }
                if let failure = outcome.cleanupFailure {
                    logger.error("attribution session left tracing behind", metadata: ["slab": "\(slab)", "error": "\(failure)"])
                }
                attach(result)
            } catch {
                let kind = "\(error)"
                if state.withLock({ $0.saidFailures.insert(kind).inserted }) {
                    logger.error("attribution session failed (said once)", metadata: ["slab": "\(slab)", "error": "\(error)"])
                }
            }
        }
    }
}
