import SlabWatchCore

/// What the daemon does with each tick of its sampler: alerts and attribution
/// from the step's report, a checkpoint when one is due, and readiness, the
/// watchdog and the status line once the tick is published. Runs on the
/// sampler's queue; every part it calls returns at once.
struct DaemonOutput: SamplerOutput {
    let alerts: AlertRouter
    let attribution: AttributionScheduler
    let persistence: StatePersistence
    let readiness: ServiceNotifier
    /// What a checkpoint says about the machine and the program that took it.
    let pageSize: UInt64
    let bootID: String
    let procfs: String
    let version: String
    /// Also told of every tick: a test's own, nil in the daemon.
    var observer: (any SamplerOutput)? = nil

    func evaluated(_ step: Pipeline.Step) {
        let now = step.sample.timestampMilliseconds
        alerts.route(step.report, now: now)
        attribution.consider(step.report)
        // The step goes to the persistence queue by value: the next append
        // copies the ring once (copy on write) while the checkpoint is encoded.
        if persistence.isDue(now: now) { persistence.checkpoint(saved(step), now: now) }
    }

    func published(_ state: PublishedState) {
        readiness.ticked(state, intervalSeconds: state.intervalSeconds)
        observer?.published(state)
    }

    func transitions(_ events: [GrowthDetector.Event]) {
        guard let now = events.last?.timestampMilliseconds else { return }
        alerts.route(events, now: now)
    }

    /// `step` as the state file keeps it, with the alerts sent so far.
    func saved(_ step: Pipeline.Step) -> SavedState {
        SavedState(step, pageSize: pageSize, bootID: bootID, procfs: procfs, version: version, alerts: alerts.memory)
    }
}
