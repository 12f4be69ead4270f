import SlabWatch
import SlabWatchCore

/// `slabwatch replay DIR`: a recording through the ring and the detector,
/// as fast as it reads, with every finding's transitions.
struct ReplayCommand: Subcommand {
    static let json = CommandSpec.Flag("json", "print a JSON array of every finding that opened, in the /snapshot schema")
    static let spec = CommandSpec(
        name: "replay", summary: "Run a recording through the sampler, ring and detector as fast as possible and print the findings.",
        options: [TextOption(name: "config", valueName: "FILE", help: "YAML configuration file; its detector.* and ring.* keys apply")],
        flags: [json], arguments: [.init("directory", "a directory written by 'slabwatch record' (or by cp, see docs/recording.md)")],
        keySections: [.detector, .ring, .log])

    let configuration: Configuration
    let directory: String
    let asJSON: Bool

    init(_ line: ParsedCommand) throws(UsageError) {
        // Only a file named here: replay is about the recording, not this machine's /etc.
        configuration = try ConfigurationSource(file: line.options["config"], overrides: line.keyOverrides).loadForCommand()
        directory = line.arguments[0]
        asJSON = Self.json.isSet(in: line)
    }

    func run() -> Int32 {
        let outcome: Replay.Outcome
        do {
            outcome = try Replay(settings: configuration.pipeline)
                .run(directory, warn: { printError($0) }) { event, _ in
                    if !asJSON { print(Timeline.line(event)) }
                }
        } catch { return failed(.runtimeFailure, error.description) }
        for skipped in outcome.skipped { printError("skipped \(skipped.path): \(skipped.reason)") }
        if asJSON {
            writeOut(SnapshotRenderer.renderFindings(outcome.findings))
        } else {
            print(Timeline.summary(outcome), terminator: "")
        }
        return ExitStatus.success.rawValue
    }
}
