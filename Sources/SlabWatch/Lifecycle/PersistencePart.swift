import Logging
import SlabWatchCore

/// The state directory: at start the sampler and the alerts continue from
/// it when it holds a usable state; at stop the final checkpoint, written
/// only when the sampler stopped cleanly (a stuck tick would be saving a
/// state still being changed). First to start, last to stop.
final class PersistencePart: Service {
    let name = "persistence"
    private let persistence: StatePersistence
    private let source: StatePersistence.Source
    private let sampling: SamplingPart
    private let alerts: AlertRouter
    private let output: DaemonOutput
    private let logger: Logger

    init(_ persistence: StatePersistence, source: StatePersistence.Source, sampling: SamplingPart, alerts: AlertRouter,
         output: DaemonOutput, logger: Logger) {
        self.persistence = persistence
        self.source = source
        self.sampling = sampling
        self.alerts = alerts
        self.output = output
        self.logger = logger
    }

    func start() {
        guard let saved = persistence.load(source) else { return }
        let sameBoot = saved.metadata.bootID == output.bootID
        let restored = sampling.sampler.restore(saved, sameBoot: sameBoot)
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

    /// The write itself keeps `checkpointNow`'s own bound (a hung disk), not
    /// the group's deadline: the ticks have stopped, and the checkpoint is
    /// what a clean stop is for. False when that bound was reached.
    func stop(deadline: UInt64) -> Bool {
        guard !sampling.abandoned, let step = sampling.sampler.finalState() else { return true }
        return persistence.checkpointNow(output.saved(step))
    }
}
