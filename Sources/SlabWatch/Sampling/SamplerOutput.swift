public import SlabWatchCore

/// Where a sampler's ticks go besides the `StateStore`: the daemon's alerts,
/// attribution, checkpoints and readiness (`DaemonOutput`), or nowhere.
///
/// Every method runs on the sampler's queue and must not block: it delays
/// the next tick. Within a tick the order is `evaluated`, then the state is
/// published, then `published` (a timer's tick only; `sampleOnce` publishes
/// to the store alone).
public protocol SamplerOutput: Sendable {
    /// After the pipeline's step, before its state is published: alerts,
    /// attribution, a checkpoint when one is due. Keep `step` only as long as
    /// that work needs it (`Pipeline.Step` holds the ring).
    func evaluated(_ step: Pipeline.Step)
    /// After the tick's state is published: readiness, the watchdog, the status line.
    func published(_ state: PublishedState)
    /// Finding transitions outside a tick (an attribution attached).
    func transitions(_ events: [GrowthDetector.Event])
}

/// Ticks that go to the store alone: one-shot output, `top`, the bench.
public struct NoSamplerOutput: SamplerOutput {
    public init() {}
    public func evaluated(_ step: Pipeline.Step) {}
    public func published(_ state: PublishedState) {}
    public func transitions(_ events: [GrowthDetector.Event]) {}
}
