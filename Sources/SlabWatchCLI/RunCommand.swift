import SlabWatch

/// `slabwatch run` (the default): the daemon.
struct RunCommand: Subcommand {
    static let spec = CommandSpec(name: "run", summary: "Run the daemon (the default command).",
                                  options: [ConfigurationSource.option], keySections: Configuration.Section.allCases)

    let source: ConfigurationSource
    let configuration: Configuration

    init(_ line: ParsedCommand) throws(UsageError) {
        source = ConfigurationSource(line)
        configuration = try source.loadForCommand()
    }

    func run() -> Int32 {
        Daemon(source: source, configuration: configuration, logger: makeLogger(configuration.logLevel)).run().rawValue
    }
}
