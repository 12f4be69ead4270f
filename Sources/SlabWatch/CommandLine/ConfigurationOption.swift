import Glibc

extension ConfigurationSource {
    /// `--config FILE`, for the commands that read a configuration.
    public static let option = TextOption(
        name: "config", valueName: "FILE",
        help: "YAML configuration file (see config/slabwatch.yml; default \(Configuration.defaultFile) when present)")

    /// `--config FILE`, else /etc/slabwatch/slabwatch.yml when present (as
    /// systemd's own daemons look for theirs), then the key flags.
    public init(_ line: ParsedCommand) {
        let file = Self.option.value(in: line) ?? (access(Configuration.defaultFile, F_OK) == 0 ? Configuration.defaultFile : nil)
        self.init(file: file, overrides: line.keyOverrides)
    }

    /// Defaults, file and flags, for a command.
    /// - Throws: `UsageError` (exit 2) saying where the first problem is.
    public func loadForCommand() throws(UsageError) -> Configuration {
        do { return try load() } catch { throw UsageError(error.description) }
    }
}
