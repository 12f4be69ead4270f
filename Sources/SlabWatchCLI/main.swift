import Glibc
import SlabWatch

// `slabwatch`: the daemon (`run`, the default) and its operator commands.
// This executable is wiring: each command checks its line and calls the
// library; every configuration key is also a flag of the same dotted name,
// for the commands that use it.

let commands: [any Subcommand.Type] = [
    RunCommand.self, SnapshotCommand.self, TopCommand.self, AttributeCommand.self, MeasureCommand.self, DiffCommand.self,
    CheckConfigCommand.self, RecordCommand.self, ReplayCommand.self,
]

let overview = """
    slabwatch \(Host.version): watch kernel slab caches and tell which one grows, with what, and whether it comes back.

    Serves Prometheus metrics on /metrics, the latest sample as JSON on /snapshot
    and a health check on /healthz (default port \(Configuration.defaultPort)).
    Reading /proc/slabinfo needs root or CAP_DAC_READ_SEARCH.
    Every configuration key is also a flag: --KEY VALUE (see 'slabwatch run --help').
    Exit codes: \(ExitStatus.summary).
    """

StandardStreams.ensureOpen()
do {
    switch try CommandLineParser.parse(Array(CommandLine.arguments.dropFirst()), commands: commands.map { $0.spec },
                                       defaultCommand: RunCommand.spec.name, overview: overview, version: Host.version) {
    case .print(let text):
        print(text)
        exit(ExitStatus.success.rawValue)
    case .run(let line):
        let command = try commands.first { $0.spec.name == line.spec.name }!.init(line)
        exit(command.run())
    }
} catch {
    fail(.badConfiguration, error.description)
}
