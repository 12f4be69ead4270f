import SlabWatchCore
import SlabWatchHTTP

/// slabwatch's figures about itself in the daemon, where every owner is
/// known: each part keeps its own counters, and they are read together when
/// a tick's `/metrics` is first rendered.
struct DaemonStatistics: SelfStatisticsSource {
    let alerts: AlertRouter
    let server: HTTPServer
    let persistence: StatePersistence
    private let process = ProcessStatsReader()

    init(alerts: AlertRouter, server: HTTPServer, persistence: StatePersistence) {
        self.alerts = alerts
        self.server = server
        self.persistence = persistence
    }

    func statistics(sampler: SamplerStatistics) -> SelfStatistics {
        SelfStatistics(sampler: sampler, process: process.read(), alerts: alerts.outcomes,
                       server: server.statistics, persistence: persistence.statistics)
    }
}
