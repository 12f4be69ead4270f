import Logging
import SlabWatch
import SlabWatchCore

/// `slabwatch snapshot`: one sample, printed as the daemon's /snapshot.
struct SnapshotCommand: Subcommand {
    static let spec = CommandSpec(name: "snapshot",
                                  summary: "Take one sample and print it as the /snapshot JSON, without starting the daemon.",
                                  options: [ConfigurationSource.option], keySections: [.path, .sampler, .slab, .log])

    let sampler: Sampler

    init(_ line: ParsedCommand) throws(UsageError) {
        let configuration = try ConfigurationSource(line).loadForCommand()
        do {
            sampler = try Sampler(settings: configuration.sampler, ring: .init(fineCapacity: 2, coarseCapacity: 2),
                                  store: StateStore(), logger: makeLogger(.error))
        } catch { throw UsageError("\(error)") }
    }

    func run() -> Int32 {
        writeOut(sampler.sampleOnce().snapshot)
        return ExitStatus.success.rawValue
    }
}
