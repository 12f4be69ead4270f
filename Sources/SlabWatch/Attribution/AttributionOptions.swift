extension AttributionSettings {
    /// `attribute --duration`: how long one session traces.
    public static let duration = DurationOption(name: "duration", summary: "how long to trace", default: Self().durationSeconds,
                                                range: 0.1...600)
    /// `attribute --max-events`: a session ends after this many events.
    public static let maxEvents = CountOption(name: "max-events", summary: "stop after this many events", default: Self().maxEvents,
                                              range: 1...Int.max)
    /// `attribute --source`: the path a session takes.
    public static let source = ChoiceOption<Source>(name: "source", valueName: "SOURCE",
                                                    summary: "auto: BPF where it can run, else tracefs; or one forced",
                                                    default: Self().source)

    /// `settings` (the configuration's attribution.* keys) with the command
    /// line's `--duration`, `--max-events` and `--source` over them.
    /// - Throws: `UsageError` for a value out of its range.
    public init(_ line: ParsedCommand, over settings: AttributionSettings) throws(UsageError) {
        self = settings
        durationSeconds = try Self.duration.value(in: line) ?? durationSeconds
        maxEvents = try Self.maxEvents.value(in: line) ?? maxEvents
        source = try Self.source.value(in: line) ?? source
    }
}
