public import SlabWatchCore

/// Where `/metrics` reads slabwatch's figures about itself: once per tick,
/// when that tick's body is first rendered, on the requesting thread (a
/// tick nobody scrapes reads none). Given by the daemon to the sampler,
/// which hands it to each `PublishedState`: one direction, no callbacks.
public protocol SelfStatisticsSource: Sendable {
    /// The figures, with the sampler's own as of the tick.
    func statistics(sampler: SamplerStatistics) -> SelfStatistics
}

/// The sampler's figures and the process's: a sampler without a daemon
/// around it (one-shot output, `top`, the bench) has no others.
struct ProcessOnlyStatistics: SelfStatisticsSource {
    private let process = ProcessStatsReader()

    func statistics(sampler: SamplerStatistics) -> SelfStatistics {
        SelfStatistics(sampler: sampler, process: process.read())
    }
}
