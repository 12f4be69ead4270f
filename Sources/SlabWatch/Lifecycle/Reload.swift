import Logging

/// A part whose settings SIGHUP can change without a restart.
protocol Reloadable: Sendable {
    /// Applies `configuration`'s run-time settings.
    /// - Throws: when they cannot be applied; the part keeps its old ones.
    func apply(_ configuration: Configuration) throws
}

/// SIGHUP: read the configuration again. On error keep the running one; on
/// success apply what can change at run time to each part in order (the
/// first that throws ends the reload, so it goes first: the sampler, whose
/// regexes may not compile) and warn about keys that need a restart.
/// `RELOADING=1` and `READY=1` bracket it for systemd. Runs on the signal
/// queue only.
final class Reload: @unchecked Sendable {  // `running`: changed only in `run`, on the signal queue
    private let source: ConfigurationSource
    private var running: Configuration
    private let parts: [any Reloadable]
    private let readiness: ServiceNotifier
    private let logger: Logger

    init(source: ConfigurationSource, running: Configuration, parts: [any Reloadable], readiness: ServiceNotifier, logger: Logger) {
        self.source = source
        self.running = running
        self.parts = parts
        self.readiness = readiness
        self.logger = logger
    }

    func run() {
        readiness.send("RELOADING=1")
        defer { readiness.send("READY=1") }
        let new: Configuration
        do {
            new = try source.load()
            for part in parts { try part.apply(new) }
        } catch {
            logger.error("reload failed, keeping the running configuration", metadata: ["error": "\(error)"])
            return
        }
        let restartOnly = running.restartOnlyChanges(to: new)
        if !restartOnly.isEmpty {
            logger.warning("changed keys that take effect after a restart", metadata: ["keys": "\(restartOnly.joined(separator: ","))"])
        }
        running.sampler = new.sampler
        logger.info("configuration reloaded", metadata: ["file": "\(source.file ?? "-")"])
    }
}

extension SamplingPart: Reloadable {
    func apply(_ configuration: Configuration) throws { try sampler.apply(configuration.sampler) }
}

extension AlertRouter: Reloadable {
    func apply(_ configuration: Configuration) { apply(configuration.alerts) }
}

extension AttributionScheduler: Reloadable {
    func apply(_ configuration: Configuration) { apply(configuration.attribution) }
}

extension WebSecurityPart: Reloadable {
    func apply(_ configuration: Configuration) { reloader.reload(path: configuration.webConfigFile, reason: "SIGHUP") }
}
