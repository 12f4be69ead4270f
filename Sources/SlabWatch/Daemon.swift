import Dispatch
import Glibc
public import Logging
import SlabWatchCore
import SlabWatchHTTP

/// Exit codes, documented in README.
public enum ExitCode: Int32 {
    case success = 0
    case runtimeFailure = 1
    case badConfiguration = 2
    case cannotListen = 3
}

/// Where the configuration came from, so SIGHUP can read it again the same way.
public struct ConfigurationSource: Sendable {
    public var file: String?
    public var overrides: [(key: String, value: String)]

    public init(file: String?, overrides: [(key: String, value: String)]) {
        self.file = file
        self.overrides = overrides
    }

    /// Defaults, then the file, then the flags.
    /// - Throws: `ConfigurationError` for the first problem found.
    public func load() throws(ConfigurationError) -> Configuration {
        var configuration = Configuration()
        if let file {
            let contents: String
            do { contents = try readText(file) } catch {
                throw ConfigurationError(origin: file, line: nil, key: nil, message: error.description)
            }
            configuration = try Configuration.load(file: file, contents: contents)
        }
        for (key, value) in overrides {
            try configuration.set(key, to: value, origin: "flag --\(key)")
        }
        try configuration.validate(origin: "flags")
        return configuration
    }
}

func readText(_ path: String) throws(FileReadError) -> String {
    String(decoding: try FileReader(initialCapacity: 4096).read(path), as: UTF8.self)
}

/// Owns the daemon's long-lived parts — sampler, HTTP server, signal sources —
/// starts them in order and stops them in reverse.
public final class Daemon: @unchecked Sendable {
    private let source: ConfigurationSource
    private var configuration: Configuration
    private let logger: Logger
    private let store = StateStore()
    private let signalQueue = DispatchQueue(label: "slabwatch.signals")
    private var signalSources: [any DispatchSourceSignal] = []
    private let stopped = DispatchSemaphore(value: 0)
    private var sampler: Sampler?
    private var server: HTTPServer?

    public init(source: ConfigurationSource, configuration: Configuration, logger: Logger) {
        self.source = source
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs until SIGTERM or SIGINT. Returns the exit code.
    public func run() -> ExitCode {
        signal(SIGPIPE, SIG_IGN)
        let sampler: Sampler
        do {
            sampler = try Sampler(settings: configuration.sampler, ring: configuration.ring, store: store, logger: logger)
        } catch {
            logger.error("invalid configuration", metadata: ["error": "\(error)"])
            return .badConfiguration
        }
        let routes = Routes(store: store) { [sampler] slab, seconds in sampler.history(slab: slab, seconds: seconds) }
        let server = HTTPServer(limits: configuration.limits, logger: logger) { routes.respond(to: $0) }
        do {
            let bound = try server.start(listeningOn: configuration.listenAddresses)
            for address in bound { logger.info("listening", metadata: ["address": "\(address)"]) }
        } catch {
            logger.error("cannot listen", metadata: ["error": "\(error)"])
            return .cannotListen
        }
        self.sampler = sampler
        self.server = server
        installSignalHandlers()
        logStart()
        sampler.start()
        stopped.wait()
        shutDown()
        return .success
    }

    /// Stops a running daemon as SIGTERM would (for embedding and tests).
    public func requestStop() { stopped.signal() }

    private func logStart() {
        let c = configuration
        logger.info("started", metadata: [
            "version": "\(Sampler.version)", "interval": "\(c.sampler.intervalSeconds)s",
            "procfs": "\(c.sampler.paths.procfs)", "sysfs": "\(c.sampler.paths.sysfs)",
            "ring_bytes": "\(SampleRing(configuration: c.ring).storageBytes)",
        ])
    }

    private func installSignalHandlers() {
        for signalNumber in [SIGHUP, SIGTERM, SIGINT] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: signalQueue)
            source.setEventHandler { [unowned self] in
                if signalNumber == SIGHUP { reload() } else {
                    logger.info("stopping", metadata: ["signal": "\(signalNumber == SIGTERM ? "SIGTERM" : "SIGINT")"])
                    stopped.signal()
                }
            }
            source.resume()
            signalSources.append(source)
        }
    }

    /// SIGHUP: read the file again. On error keep the old configuration; on
    /// success apply what can change at run time (the ring keeps its history).
    private func reload() {
        let new: Configuration
        do { new = try source.load() } catch {
            logger.error("reload failed, keeping the running configuration", metadata: ["error": "\(error)"])
            return
        }
        do { try sampler?.apply(new.sampler) } catch {
            logger.error("reload failed, keeping the running configuration", metadata: ["error": "\(error)"])
            return
        }
        if new.listenAddresses != configuration.listenAddresses || new.limits != configuration.limits
            || new.ring != configuration.ring {
            logger.warning("web.* and ring.* changes take effect after a restart")
        }
        configuration.sampler = new.sampler
        logger.info("configuration reloaded", metadata: ["file": "\(source.file ?? "-")"])
    }

    private func shutDown() {
        for source in signalSources { source.cancel() }
        server?.stop()
        sampler?.stop()
        logger.info("stopped")
    }
}
