import Dispatch
import Logging
import SlabWatchCore
import Synchronization

/// Runs attribution sessions for the daemon: when a finding on an
/// unreclaimable cache opens, or rises again after holding or falling, one
/// session traces who allocates it — never two at once, at most one per
/// cache per `attribution.cooldown` — and the result is attached to the
/// finding. A finding that becomes due while another session runs waits in
/// an `AttributionQueue` and is traced when that session ends (unless it
/// resolved meanwhile). Where the kernel keeps /proc/allocinfo (and this
/// process can read it) the session is two reads of it, with no tracing,
/// and runs even without `attribution.enabled`; otherwise a BPF session (a
/// tracefs one where BPF cannot run, and the result says why), only with it.
/// Failures are logged once per kind and never stop the daemon; a session
/// that could not remove what it set up in the kernel is logged every time.
final class AttributionScheduler: Sendable {
    /// Runs one session for `slab` (`allocInfo`: by /proc/allocinfo, without
    /// tracing), polling `cancelled`. The daemon's runs the real sessions; a
    /// test passes its own.
    typealias Runner = @Sendable (_ slab: String, _ settings: AttributionSettings, _ allocInfo: Bool,
                                  _ cancelled: () -> Bool) throws(Tracefs.Failure) -> AttributionSession.Outcome

    private struct State {
        var settings: AttributionSettings
        /// The cache being traced.
        var running: String?
        var stopping = false
        var queue = AttributionQueue()
        var lastRun: [String: UInt64] = [:]  // monotonic nanoseconds
        var lastPhase: [String: Finding.Phase] = [:]
        var saidFailures: Set<String> = []
        var saidRefused: Set<String> = []

        func coolingDown(_ slab: String, now: UInt64) -> Bool {
            lastRun[slab].map { Double(now - $0) / 1e9 < settings.cooldownSeconds } ?? false
        }
    }

    /// A session about to start.
    private struct Due {
        var slab: String
        var settings: AttributionSettings
        var allocInfo: Bool
    }

    private let state: Mutex<State>
    private let procfs: String
    private let logger: Logger
    private let runner: Runner
    private let attach: @Sendable (Attribution) -> Void
    private let done = DispatchGroup()

    init(settings: AttributionSettings, procfs: String, logger: Logger, runner: Runner? = nil,
         attach: @escaping @Sendable (Attribution) -> Void) {
        state = Mutex(State(settings: settings))
        self.procfs = procfs
        self.logger = logger
        self.runner = runner ?? Self.sessions(procfs: procfs, logger: logger)
        self.attach = attach
    }

    /// The real sessions: /proc/allocinfo where asked, else the best tracing path.
    static func sessions(procfs: String, logger: Logger) -> Runner {
        { slab, settings, allocInfo, cancelled throws(Tracefs.Failure) in
            allocInfo
                ? .init(attribution: try AttributionSession.allocInfo(cache: slab, procfs: procfs, seconds: settings.durationSeconds,
                                                                      cancelled: cancelled))
                : try AttributionSession.run(cache: slab, settings: settings, say: { logger.notice("\($0)") }, cancelled: cancelled)
        }
    }

    func apply(_ settings: AttributionSettings) { state.withLock { $0.settings = settings } }

    /// Called after every evaluation (sampler queue): queues the findings
    /// that became due, and starts a session when none runs.
    func consider(_ report: GrowthDetector.Report) {
        let opened = Set(report.events.filter { $0.kind == .opened }.map(\.finding.slab))
        let now = Clock.monotonicNanoseconds()
        let allocInfo = report.findings.contains { $0.state == .open } && AttributionSession.hasAllocInfo(procfs: procfs)
        var refused: [String] = []
        let due: Due? = state.withLock { state in
            state.queue.refresh(from: report.findings)
            for finding in report.findings where finding.state == .open {
                let risesAgain = finding.phase == .rising && state.lastPhase[finding.slab].map { $0 != .rising } == true
                state.lastPhase[finding.slab] = finding.phase
                guard state.settings.enabled || allocInfo, finding.reclaimable == false, opened.contains(finding.slab) || risesAgain,
                      !state.coolingDown(finding.slab, now: now) else { continue }
                if !state.queue.add(finding), state.saidRefused.insert(finding.slab).inserted { refused.append(finding.slab) }
            }
            return Self.next(&state, now: now, allocInfo: allocInfo)
        }
        for slab in refused {
            logger.warning("attribution queue full: this finding is not attributed (said once per cache)",
                           metadata: ["slab": "\(slab)", "waiting": "\(AttributionQueue.capacity)"])
        }
        if let due { start(due) }
    }

    /// Ends a running session early (it still cleans up), starts no other, and waits.
    func stop() {
        state.withLock { $0.stopping = true }
        done.wait()
    }

    /// The oldest waiting finding, when no session runs: marked running.
    private static func next(_ state: inout State, now: UInt64, allocInfo: Bool) -> Due? {
        guard state.running == nil, !state.stopping, state.settings.enabled || allocInfo else { return nil }
        guard let finding = state.queue.next(where: { [state] in $0.reclaimable == false && !state.coolingDown($0.slab, now: now) }) else {
            return nil
        }
        state.running = finding.slab
        state.lastRun[finding.slab] = now
        return Due(slab: finding.slab, settings: state.settings, allocInfo: allocInfo)
    }

    private func start(_ due: Due) {
        logger.info("attribution session started", metadata: [
            "slab": "\(due.slab)", "duration": "\(due.settings.durationSeconds)s",
            "source": "\(due.allocInfo ? "allocinfo" : due.settings.source.rawValue)",
        ])
        done.enter()
        DispatchQueue.global(qos: .utility).async { [self] in
            run(due)
            // The next waiting finding starts before this one leaves the group, so stop() waits for it too.
            let allocInfo = AttributionSession.hasAllocInfo(procfs: procfs), now = Clock.monotonicNanoseconds()
            let next = state.withLock { state in
                state.running = nil
                return Self.next(&state, now: now, allocInfo: allocInfo)
            }
            if let next { start(next) }
            done.leave()
        }
    }

    private func run(_ due: Due) {
        do {
            let outcome = try runner(due.slab, due.settings, due.allocInfo) { self.state.withLock { $0.stopping } }
            let result = outcome.attribution
            logger.info("attribution session finished", metadata: [
                "slab": "\(due.slab)", "source": "\(result.source.rawValue)", "events": "\(result.events)", "dropped": "\(result.dropped)",
                "call_site": "\(result.callSites.first?.symbol ?? "-")",
            ])
            if let fallback = result.fallback { logger.notice("\(fallback)", metadata: ["slab": "\(due.slab)"]) }
            if let failure = outcome.cleanupFailure { logger.error("attribution session left tracing behind", metadata: ["slab": "\(due.slab)", "error": "\(failure)"]) }
            attach(result)
        } catch {
            let kind = "\(error)"
            if state.withLock({ $0.saidFailures.insert(kind).inserted }) {
                logger.error("attribution session failed (said once)", metadata: ["slab": "\(due.slab)", "error": "\(error)"])
            }
        }
    }
}
