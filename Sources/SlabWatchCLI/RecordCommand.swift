import SlabWatch

/// `slabwatch record DIR`: this machine's files, sample by sample, for replay anywhere.
struct RecordCommand: Subcommand {
    static let duration = DurationOption(name: "duration", summary: "stop after this long, e.g. 30m", default: nil,
                                         range: 0...Double.infinity, whenAbsent: "until SIGINT/SIGTERM")
    static let spec = CommandSpec(name: "record",
                                  summary: "Record samples of this machine into DIR (one subdirectory per sample) for replay anywhere.",
                                  options: [duration, ConfigurationSource.option],
                                  arguments: [.init("directory", "where to write the recording (created if missing)")],
                                  keySections: [.path, .sampler, .log])

    let configuration: Configuration
    let seconds: Double
    let directory: String

    init(_ line: ParsedCommand) throws(UsageError) {
        configuration = try ConfigurationSource(line).loadForCommand()
        seconds = try Self.duration.value(in: line) ?? .infinity
        directory = line.arguments[0]
    }

    func run() -> Int32 {
        do {
            let recorder = try Recorder(paths: configuration.sampler.paths, directory: directory)
            let count = try recorder.run(intervalSeconds: configuration.sampler.intervalSeconds, durationSeconds: seconds)
            printError("recorded \(count) samples into \(directory)")
            return ExitStatus.success.rawValue
        } catch { return failed(.runtimeFailure, error.description) }
    }
}
