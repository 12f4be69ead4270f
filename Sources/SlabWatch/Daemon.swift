import CMalloc
import Dispatch
import Glibc
public import Logging
import SlabWatchCore
import SlabWatchHTTP
import Synchronization
import Systemd

/// The daemon: builds its parts (everything fallible first), starts them in
/// order through a `ServiceGroup`, runs until SIGTERM or SIGINT and stops
/// them in reverse under one deadline.
public final class Daemon: Sendable {
    /// How long the parts get to stop: a tick stuck in a hung procfs read
    /// is abandoned after it, so a stop stays prompt.
    static let stopSeconds = 1.0

    private let source: ConfigurationSource
    private let configuration: Configuration
    private let logger: Logger
    private let stopRequest = DispatchSemaphore(value: 0)
    private let readiness = ServiceNotifier()
    /// Also told of every tick (a test's own); nil in the daemon.
    private let observer: (any SamplerOutput)?

    public convenience init(source: ConfigurationSource, configuration: Configuration, logger: Logger) {
        self.init(source: source, configuration: configuration, logger: logger, observer: nil)
    }

    init(source: ConfigurationSource, configuration: Configuration, logger: Logger, observer: (any SamplerOutput)?) {
        self.source = source
        self.configuration = configuration
        self.logger = logger
        self.observer = observer
    }

    /// Runs until SIGTERM or SIGINT. Returns the exit code.
    public func run() -> ExitStatus {
        signal(SIGPIPE, SIG_IGN)
        // Buffers of a megabyte or more (the ring and its copy during a
        // checkpoint, /metrics under load) are mapped and unmapped on their
        // own. glibc would otherwise raise this threshold after the first such
        // free and keep later ones in its heap: resident memory would stay at
        // every peak.
        mallopt(M_MMAP_THRESHOLD, 1 << 20)
        let running: Running
        do { running = try start() } catch { return error.status }
        stopRequest.wait()
        stop(running)
        return .success
    }

    /// The started parts, and what a test looks at.
    struct Running {
        let group: ServiceGroup
        let sampler: Sampler
        let listening: ListeningPart
    }

    /// Builds the parts and starts them. Nothing is left running when it throws.
    func start() throws(ServiceError) -> Running {
        let running = try build()
        logStart()
        try running.group.start()
        return running
    }

    /// What SIGTERM and SIGINT do.
    func requestStop() { stopRequest.signal() }

    /// Stops every part in reverse under `stopSeconds`, logging the abandoned ones.
    func stop(_ running: Running) {
        readiness.send("STOPPING=1")
        running.group.logAbandoned(running.group.stop(within: Self.stopSeconds))
        logger.info("stopped")
    }

    /// The parts in start order; they stop in reverse. Signals first, so no
    /// signal meant for the daemon kills it while the rest start; the state
    /// restored and the socket listening before the sampler's first tick, so
    /// `READY=1` (after that tick) means both; the server stops after the
    /// sampler, so /healthz answers until the ticks have ended.
    private func build() throws(ServiceError) -> Running {
        let c = configuration
        // First, on this thread alone: the descriptors systemd passed are
        // checked before anything here opens one that could take a missing
        // one's number, and their variables are unset before other threads run.
        let inherited: [Int32]
        do { inherited = try ServiceManager.listenDescriptors() } catch {
            throw failed(ServiceError(.cannotListen, "cannot listen", metadata: ["error": "\(error)"]))
        }
        let store = StateStore()
        let history = HistoryReader()
        let routes = Routes(store: store, history: history)
        let server = HTTPServer(limits: c.limits, logger: logger, isPage: Routes.isPage) { routes.respond(to: $0) }
        let webSecurity: WebSecurityReloader
        do { webSecurity = try WebSecurityReloader(path: c.webConfigFile, server: server, logger: logger) } catch {
            throw failed(ServiceError(.badConfiguration, "invalid web configuration", metadata: ["error": "\(error)"]))
        }
        let alerts = AlertRouter(settings: c.alerts, journalSocket: c.journalSocket, logger: logger)
        let persistence = StatePersistence(settings: c.state, logger: logger)
        let attached = AttachedSampler()
        let attribution = AttributionScheduler(settings: c.attribution, procfs: c.sampler.paths.procfs, logger: logger) { attached.attach($0) }
        let output = DaemonOutput(alerts: alerts, attribution: attribution, persistence: persistence, readiness: readiness,
                                  pageSize: Host.pageSize, bootID: Host.bootID(procfs: c.sampler.paths.procfs),
                                  procfs: c.sampler.paths.procfs, version: Host.version, observer: observer)
        let sampler: Sampler
        do {
            sampler = try Sampler(settings: c.sampler, ring: c.ring, store: store, history: history, output: output,
                                  statistics: DaemonStatistics(alerts: alerts, server: server, persistence: persistence), logger: logger)
        } catch {
            throw failed(ServiceError(.badConfiguration, "invalid configuration", metadata: ["error": "\(error)"]))
        }
        attached.sampler = sampler
        let signalQueue = DispatchQueue(label: "slabwatch.signals")
        let sampling = SamplingPart(sampler)
        let listening = ListeningPart(server, addresses: c.listenAddresses, inherited: inherited, logger: logger)
        let watching = WebSecurityPart(webSecurity, queue: signalQueue)
        let reload = Reload(source: source, running: c, parts: [sampling, alerts, attribution, watching], readiness: readiness, logger: logger)
        let parts: [any Service] = [
            SignalService(queue: signalQueue, reload: reload, stopRequest: stopRequest, logger: logger),
            PersistencePart(persistence, source: .init(pageSize: Host.pageSize, procfs: c.sampler.paths.procfs, ring: c.pipeline.ring),
                            sampling: sampling, alerts: alerts, output: output, logger: logger),
            alerts, listening, sampling, attribution, watching,
        ]
        return Running(group: ServiceGroup(parts, logger: logger), sampler: sampler, listening: listening)
    }

    private func failed(_ error: ServiceError) -> ServiceError {
        logger.error("\(error.message)", metadata: error.metadata)
        return error
    }

    private func logStart() {
        let c = configuration
        logger.info("started", metadata: [
            "version": "\(Host.version)", "interval": "\(c.sampler.intervalSeconds)s",
            "procfs": "\(c.sampler.paths.procfs)", "sysfs": "\(c.sampler.paths.sysfs)",
            "ring_bytes": "\(SampleRing(configuration: c.ring).storageBytes)",
        ])
    }
}

/// Where attribution sessions' results go: the sampler, which is built after
/// the scheduler (the sampler's output needs the scheduler). Sessions start
/// only after ticks, so by then it is set.
private final class AttachedSampler: Sendable {
    private let current = Mutex<Sampler?>(nil)

    var sampler: Sampler? {
        get { current.withLock { $0 } }
        set { current.withLock { $0 = newValue } }
    }

    func attach(_ attribution: Attribution) { sampler?.attach(attribution) }
}
