import SlabWatch

/// `slabwatch check-config FILE`: the file, and the web configuration it
/// names (certificates and key loaded as the daemon would), as `promtool
/// check web-config` does.
struct CheckConfigCommand: Subcommand {
    static let spec = CommandSpec(name: "check-config",
                                  summary: "Validate a configuration file (and the web configuration it names) and exit (0 valid, 2 invalid).",
                                  arguments: [.init("file", "the YAML configuration file to check")])

    let file: String

    init(_ line: ParsedCommand) { file = line.arguments[0] }

    func run() -> Int32 {
        do {
            let configuration = try ConfigurationSource(file: file, overrides: []).load()
            if !configuration.webConfigFile.isEmpty {
                _ = try WebConfiguration.load(path: configuration.webConfigFile).security(origin: configuration.webConfigFile)
                print("\(configuration.webConfigFile): ok")
            }
            print("\(file): ok")
            return ExitStatus.success.rawValue
        } catch { return failed(.badConfiguration, error.description) }
    }
}
