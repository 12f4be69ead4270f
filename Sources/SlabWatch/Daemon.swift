import CMalloc
import Dispatch
import Glibc
public import Logging
import SlabWatchCore
import SlabWatchHTTP
import Synchronization
import Systemd

/// Owns the daemon's long-lived parts — sampler, HTTP server, signal sources —
/// starts them in order and stops them in reverse.
public final class Daemon: @unchecked Sendable {  // fields set in run() before the signal sources start, then changed only on signalQueue
    private let source: ConfigurationSource
    private var configuration: Configuration
    private let logger: Logger
    private let store = StateStore()
    private let signalQueue = DispatchQueue(label: "slabwatch.signals")
    private var signalSources: [any DispatchSourceSignal] = []
    private let stopped = DispatchSemaphore(value: 0)
    private var sampler: Sampler?
    private var server: HTTPServer?
    private var alerts: AlertRouter?
    private var persistence: StatePersistence?
    private var webSecurity: WebSecurityReloader?
    private var attribution: AttributionScheduler?
    private var output: DaemonOutput?
    private var bootID = ""
    private let readiness = ServiceNotifier()

    public init(source: ConfigurationSource, configuration: Configuration, logger: Logger) {
        self.source = source
        self.configuration = configuration
        self.logger = logger
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
        let history = HistoryReader()
        let routes = Routes(store: store, history: history)
        let server = HTTPServer(limits: configuration.limits, logger: logger, isPage: Routes.isPage) { routes.respond(to: $0) }
        do { webSecurity = try WebSecurityReloader(path: configuration.webConfigFile, server: server, logger: logger) } catch {
            logger.error("invalid web configuration", metadata: ["error": "\(error)"])
            return .badConfiguration
        }
        let alerts = AlertRouter(settings: configuration.alerts, journalSocket: configuration.journalSocket, logger: logger)
        let persistence = StatePersistence(settings: configuration.state, logger: logger)
        // Sessions start only after ticks: by then `sampler` below is set, and takes their results.
        let attribution = AttributionScheduler(settings: configuration.attribution, procfs: configuration.sampler.paths.procfs,
                                               logger: logger) { [unowned self] in self.sampler?.attach($0) }
        bootID = Host.bootID(procfs: configuration.sampler.paths.procfs)
        let output = DaemonOutput(alerts: alerts, attribution: attribution, persistence: persistence, readiness: readiness,
                                  pageSize: Host.pageSize, bootID: bootID, procfs: configuration.sampler.paths.procfs,
                                  version: Host.version)
        let sampler: Sampler
        do {
            sampler = try Sampler(settings: configuration.sampler, ring: configuration.ring, store: store, history: history,
                                  output: output, statistics: DaemonStatistics(alerts: alerts, server: server, persistence: persistence),
                                  logger: logger)
        } catch {
            logger.error("invalid configuration", metadata: ["error": "\(error)"])
            return .badConfiguration
        }
        guard listen(server) else { return .cannotListen }
        webSecurity?.watch(on: signalQueue)
        self.attribution = attribution
        self.sampler = sampler
        self.server = server
        self.alerts = alerts
        self.persistence = persistence
        self.output = output
        installSignalHandlers()
        logStart()
        restore(sampler, alerts, persistence)
        sampler.start()
        stopped.wait()
        shutDown()
        return .success
    }

    /// Serves on sockets passed by systemd (socket activation) when there are
    /// any, otherwise binds the configured addresses.
    private func listen(_ server: HTTPServer) -> Bool {
        do {
            let inherited = try ServiceManager.listenDescriptors()
            let bound = inherited.isEmpty
                ? try server.start(listeningOn: configuration.listenAddresses)
                : server.start(listeningDescriptors: inherited)
            for address in bound {
                logger.info("listening", metadata: ["address": "\(address)", "activated": "\(!inherited.isEmpty)"])
            }
            return true
        } catch {
            logger.error("cannot listen", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Continues from `state.directory` when it holds a usable state.
    private func restore(_ sampler: Sampler, _ alerts: AlertRouter, _ persistence: StatePersistence) {
        let source = StatePersistence.Source(pageSize: Host.pageSize, procfs: configuration.sampler.paths.procfs,
                                             ring: configuration.pipeline.ring)
        guard let saved = persistence.load(source) else { return }
        let sameBoot = saved.metadata.bootID == bootID
        let restored = sampler.restore(saved, sameBoot: sameBoot)
        alerts.memory = saved.alerts
        persistence.restored(sameBoot ? .sameBoot : .earlierBoot)
        if !restored.ringKept {
            logger.warning("ring.* changed since the state was saved; its history is not restored (findings are)")
        }
        logger.info("state restored", metadata: [
            "file": "\(persistence.directory)/\(StatePersistence.fileName)", "boot": "\(sameBoot ? "same" : "earlier")",
            "samples": "\(restored.samples)", "open_findings": "\(restored.openFindings)",
            "saved_by": "\(saved.metadata.version)",
        ])
    }

    private func logStart() {
        let c = configuration
        logger.info("started", metadata: [
            "version": "\(Host.version)", "interval": "\(c.sampler.intervalSeconds)s",
            "procfs": "\(c.sampler.paths.procfs)", "sysfs": "\(c.sampler.paths.sysfs)",
            "ring_bytes": "\(SampleRing(configuration: c.ring).storageBytes)",
        ])
    }

    private func installSignalHandlers() {
        // SIGUSR1/2 would kill the process by default; a stray `kill -USR1`
        // (log rotation scripts send it) must not stop a monitoring daemon.
        for signalNumber in [SIGHUP, SIGTERM, SIGINT, SIGUSR1, SIGUSR2] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: signalQueue)
            source.setEventHandler { [unowned self] in
                switch signalNumber {
                case SIGHUP: reload()
                case SIGTERM, SIGINT:
                    logger.info("stopping", metadata: ["signal": "\(signalNumber == SIGTERM ? "SIGTERM" : "SIGINT")"])
                    stopped.signal()
                default:
                    logger.notice("signal ignored (only SIGHUP, SIGTERM and SIGINT mean something)",
                                  metadata: ["signal": "\(signalNumber == SIGUSR1 ? "SIGUSR1" : "SIGUSR2")"])
                }
            }
            source.resume()
            signalSources.append(source)
        }
    }

    /// SIGHUP: read the file again. On error keep the old configuration; on
    /// success apply what can change at run time (the ring keeps its history).
    private func reload() {
        readiness.send("RELOADING=1")
        defer { readiness.send("READY=1") }
        let new: Configuration
        do { new = try source.load() } catch {
            logger.error("reload failed, keeping the running configuration", metadata: ["error": "\(error)"])
            return
        }
        do { try sampler?.apply(new.sampler) } catch {
            logger.error("reload failed, keeping the running configuration", metadata: ["error": "\(error)"])
            return
        }
        alerts?.apply(new.alerts)
        attribution?.apply(new.attribution)
        webSecurity?.reload(path: new.webConfigFile, reason: "SIGHUP")
        let restartOnly = configuration.restartOnlyChanges(to: new)
        if !restartOnly.isEmpty {
            logger.warning("changed keys that take effect after a restart", metadata: ["keys": "\(restartOnly.joined(separator: ","))"])
        }
        configuration.sampler = new.sampler
        logger.info("configuration reloaded", metadata: ["file": "\(source.file ?? "-")"])
    }

    private func shutDown() {
        readiness.send("STOPPING=1")
        for source in signalSources { source.cancel() }
        webSecurity?.stop()
        attribution?.stop()
        server?.stop()
        let samplerStopped = sampler?.stop() != false
        if !samplerStopped { logger.warning("sampler tick still blocked at shutdown; exiting anyway") }
        alerts?.drain()
        if samplerStopped, let persistence, let output, let step = sampler?.finalState() {
            persistence.checkpointNow(output.saved(step))
        }
        logger.info("stopped")
    }
}
