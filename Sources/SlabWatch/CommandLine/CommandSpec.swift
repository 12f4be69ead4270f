/// What a command accepts besides the configuration keys: named options with
/// a value, flags without one, positional arguments, and a command after
/// `--`. The parser checks a command line against it and `--help` is
/// rendered from it, so the two cannot drift apart.
public struct CommandSpec: Sendable {
    /// A word without a value (`--json`).
    public struct Flag: Sendable {
        public let name: String
        public let help: String

        public init(_ name: String, _ help: String) {
            self.name = name
            self.help = help
        }

        public func isSet(in line: ParsedCommand) -> Bool { line.flags.contains(name) }
    }

    /// A positional argument (`<cache>`), or what follows `--`.
    public struct Argument: Sendable {
        public let name: String
        public let help: String

        public init(_ name: String, _ help: String) {
            self.name = name
            self.help = help
        }
    }

    public let name: String
    /// One sentence, for `slabwatch --help` and the command's own help.
    public let summary: String
    public var options: [any CommandOption] = []
    public var flags: [Flag] = []
    public var arguments: [Argument] = []
    /// The configuration keys the command reads: whole sections, and single
    /// keys (or key prefixes) from others.
    public var keySections: [Configuration.Section] = []
    public var keys: [String] = []
    /// What follows `--` is a command to run (`measure -- COMMAND [ARGS…]`); nil: no `--` allowed.
    public var command: Argument?

    public init(name: String, summary: String, options: [any CommandOption] = [], flags: [Flag] = [], arguments: [Argument] = [],
                keySections: [Configuration.Section] = [], keys: [String] = [], command: Argument? = nil) {
        self.name = name
        self.summary = summary
        self.options = options
        self.flags = flags
        self.arguments = arguments
        self.keySections = keySections
        self.keys = keys
        self.command = command
    }

    var keyPrefixes: [String] { keySections.map(\.prefix) + keys }

    func option(named name: Substring) -> (any CommandOption)? {
        options.first { $0.name == name || $0.shortName.map { name == $0 } == true }
    }
}

/// One parsed command line: the values as given (strings), checked against
/// the spec's names; the typed options read and range-check them
/// (`DurationOption.value(in:)`, …).
public struct ParsedCommand: Sendable {
    public let spec: CommandSpec
    /// Each option's last value, by its long name.
    public internal(set) var options: [String: String] = [:]
    /// Every value of each option, in order (`--budget` may be given more than once).
    public internal(set) var repeated: [String: [String]] = [:]
    public internal(set) var flags: Set<String> = []
    public internal(set) var arguments: [String] = []
    public internal(set) var keyOverrides: [(key: String, value: String)] = []
    /// The words after `--`, for a spec with a `command`; not parsed at all.
    public internal(set) var command: [String] = []

    init(spec: CommandSpec, keyOverrides: [(key: String, value: String)]) {
        self.spec = spec
        self.keyOverrides = keyOverrides
    }
}

/// A command line that cannot be run as given: one line on stderr, exit 2.
public struct UsageError: Error, CustomStringConvertible, Sendable {
    public var description: String

    public init(_ description: String) { self.description = description }
}

/// One `slabwatch` command. The executable dispatches over a list of these
/// and holds nothing else: the spec says what the command accepts, `init`
/// checks every value before anything runs, `run` does the work.
public protocol Subcommand {
    static var spec: CommandSpec { get }
    /// Reads and checks the command line and the configuration it names.
    /// - Throws: `UsageError` for any bad value (the process exits 2).
    init(_ line: ParsedCommand) throws(UsageError)
    /// Runs the command. - Returns: the process's exit status.
    func run() -> Int32
}
