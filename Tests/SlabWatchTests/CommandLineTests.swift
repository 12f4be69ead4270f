import SlabWatchCore
import Testing
@testable import SlabWatch

/// The command line: which command a first word names, and options whose
/// help and checks come from one declaration (the library's defaults and
/// ranges), so `--help` cannot drift from what the code does.
struct CommandLineTests {
    /// Three commands shaped like the executable's: the default, one with a
    /// short option and a flag, one that runs a command after `--`.
    static let commands = [
        CommandSpec(name: "run", summary: "the daemon", options: [ConfigurationSource.option], keySections: Configuration.Section.allCases),
        CommandSpec(name: "top", summary: "the screen", options: [TopView.Options.delay, TopView.Options.sort], flags: [.init("once", "one screen")],
                    keySections: [.sampler]),
        CommandSpec(name: "measure", summary: "a workload",
                    options: MeasureRun.Settings.options + [MeasurementSettings.noise],
                    command: .init("COMMAND", "the workload")),
    ]

    static func parse(_ arguments: [String]) throws(UsageError) -> CommandLineParser.Outcome {
        try CommandLineParser.parse(arguments, commands: commands, defaultCommand: "run", overview: "overview", version: "1.2.3")
    }

    static func line(_ arguments: [String]) throws -> ParsedCommand {
        guard case .run(let line) = try parse(arguments) else { throw UsageError("printed instead of parsed") }
        return line
    }

    /// What each line comes to: the command it runs, "help", or its error.
    @Test(arguments: [
        ([], "run"),
        (["--config", "x"], "run"),
        (["--sampler.interval", "5s"], "run"),
        (["frobnicate"], "unknown command 'frobnicate'; see 'slabwatch --help'"),
        (["frobnicate", "--config", "x"], "unknown command 'frobnicate'; see 'slabwatch --help'"),
        (["run", "x"], "'run' takes no arguments; see 'slabwatch run --help'"),
        (["--config", "x", "y"], "'run' takes no arguments; see 'slabwatch run --help'"),
        (["help"], "help"),
        (["--help"], "help"),
        (["top", "-d", "1s"], "top"),
        (["top", "--delay=1s", "--once"], "top"),
        (["top", "--frob"], "unknown option '--frob' for 'top'; see 'slabwatch top --help'"),
        (["top", "--delay"], "--delay needs a value"),
        (["top", "--", "x"], "'top' runs no command: unexpected '--'"),
        (["top", "--path.procfs", "/x"], "--path.procfs does not apply to 'top'"),
        (["measure", "--", "sh", "-d", "x"], "measure"),
    ])
    func theFirstWordIsTheCommand(arguments: [String], expected: String) {
        let outcome: String
        do {
            switch try Self.parse(arguments) {
            case .run(let line): outcome = line.spec.name
            case .print(let text): outcome = text.contains("\nCommands:\n  run ") ? "help" : text
            }
        } catch { outcome = error.description }
        #expect(outcome == expected, "\(arguments)")
    }

    /// `-d` is top's `--delay`; after `--` every word is the workload's.
    @Test func shortNamesAndTheWorkloadsWords() throws {
        #expect(try TopView.Options.delay.value(in: Self.line(["top", "-d", "500ms"])) == 0.5)
        #expect(try Self.line(["measure", "--interval", "1s", "--", "sh", "-d", "--interval", "x"]).command == ["sh", "-d", "--interval", "x"])
    }

    /// Every option's help says its default as a flag would take it, and
    /// what it says reads back as that default, inside the accepted range.
    @Test func everyHelpLineSaysTheDefaultThatIsUsed() throws {
        let durations = MeasureRun.Settings.options + [TopView.Options.delay, AttributionSettings.duration]
        for option in durations {
            let seconds = try #require(option.defaultSeconds)
            let text = Units.durationText(seconds)
            #expect(option.help.contains("default \(text))"), "\(option.help)")
            #expect(Units.seconds(text) == seconds && option.range.contains(seconds), "\(option.name)")
        }
        let noise = MeasurementSettings.noise
        #expect(noise.help.hasSuffix("(default \(Units.sizeText(noise.defaultBytes)))") && noise.defaultBytes == MeasurementSettings().noiseBytes)
        #expect(Units.bytes(Units.sizeText(noise.defaultBytes)) == noise.defaultBytes)
        #expect(AttributionSettings.maxEvents.help.hasSuffix("default \(AttributionSettings().maxEvents))"))
        #expect(TopView.Options.sort.help.hasSuffix("(default \(TopView.Options().sort.rawValue))"))
        #expect(AttributionSettings.source.help.hasSuffix("(default \(AttributionSettings().source.rawValue))"))
        #expect(TopView.Options.delay.defaultSeconds == TopView.Options().intervalSeconds)
        #expect(MeasureRun.Settings.interval.defaultSeconds == MeasureRun.Settings().intervalSeconds)
        #expect(AttributionSettings.duration.defaultSeconds == AttributionSettings().durationSeconds)
    }

    /// A command line without options leaves every setting at the library's default.
    @Test func noOptionsAreTheLibrarysDefaults() throws {
        #expect(try MeasureRun.Settings(Self.line(["measure", "--", "x"])) == MeasureRun.Settings())
        let measured = try MeasureRun.Settings(Self.line(["measure", "--interval", "50ms", "--settle", "0", "--", "x"]))
        #expect(measured.intervalSeconds == 0.05 && measured.settleSeconds == 0 && measured.baselineSeconds == MeasureRun.Settings().baselineSeconds)
        #expect(try AttributionSettings(Self.line(["measure", "--", "x"]), over: AttributionSettings()) == AttributionSettings())
        #expect(try TopView.Options.delay.value(in: Self.line(["top"])) == nil)
    }

    /// A value outside its range is refused saying the range, as the help says it.
    @Test(arguments: [
        (["measure", "--interval", "0", "--", "x"], "--interval: '0' is not a duration from 10ms to 1m"),
        (["measure", "--interval", "61s", "--", "x"], "--interval: '61s' is not a duration from 10ms to 1m"),
        (["measure", "--interval", "0x10ms", "--", "x"], "--interval: '0x10ms' is not a duration from 10ms to 1m"),
        (["measure", "--settle", "1e3ms", "--", "x"], "--settle: '1e3ms' is not a duration from 0s to 1h"),
        (["measure", "--noise", "lots", "--", "x"], "--noise: 'lots' is not a size (e.g. 64KiB)"),
        (["top", "-d", "10ms"], "--delay: '10ms' is not a duration of at least 100ms"),
        (["top", "--sort", "weight"], "--sort: 'weight' is not one of footprint, growth, objects, size, name"),
    ])
    func outOfRangeSaysTheRange(arguments: [String], message: String) throws {
        let line = try Self.line(arguments)
        var thrown: String?
        do {
            _ = try MeasureRun.Settings(line)
            _ = try MeasurementSettings.noise.value(in: line)
            _ = try TopView.Options.delay.value(in: line)
            _ = try TopView.Options.sort.value(in: line)
        } catch { thrown = error.description }
        #expect(thrown == message)
        if let duration = line.spec.options.first(where: { message.hasPrefix("--\($0.name):") }) as? DurationOption,
           let accepted = duration.acceptedText {
            #expect(message.hasSuffix(accepted) && duration.help.contains(accepted), "the help says the range the error says")
        }
    }

    @Test(arguments: [
        (1, 10.0, "at least 1s"), (0, 3600, "from 0s to 1h"), (0.01, 60, "from 10ms to 1m"),
    ])
    func rangesAreWrittenAsFlagsTakeThem(lower: Double, upper: Double, text: String) {
        let option = DurationOption(name: "t", summary: "s", default: lower, range: lower...(upper == 10 ? .infinity : upper))
        #expect(option.acceptedText == text)
        #expect(DurationOption(name: "t", summary: "s", default: nil, range: 0...Double.infinity, whenAbsent: "forever").help == "s (default: forever)")
    }

    @Test(arguments: [(UInt64(1) << 20, "1MiB"), (64 << 10, "64KiB"), (1000, "1000"), (0, "0"), (3 << 30, "3GiB"), (1536, "1536")])
    func sizesAreWrittenAsFlagsTakeThem(bytes: UInt64, text: String) {
        #expect(Units.sizeText(bytes) == text)
        #expect(Units.bytes(text) == bytes)
    }
}
