import SlabWatch

/// What a command accepts besides the configuration keys: named options with
/// a value, flags without one, and positional arguments.
struct CommandSpec {
    let name: String
    let abstract: String
    /// Option name (without `--`) → what its value is, for `--help`.
    var options: [(name: String, value: String, help: String)] = []
    var flags: [(name: String, help: String)] = []
    var arguments: [(name: String, help: String)] = []
    /// The configuration keys the command reads: whole sections, and single
    /// keys (or key prefixes) from others.
    var keySections: [Configuration.Section] = []
    var keys: [String] = []
    var keyPrefixes: [String] { keySections.map(\.prefix) + keys }
    /// What follows `--` is a command to run (`measure -- COMMAND [ARGS…]`), for `--help`.
    var command: (name: String, help: String)?
}

/// One parsed command line.
struct ParsedCommand {
    var spec: CommandSpec
    var options: [String: String] = [:]
    /// Every value of each option, in order (`--budget` may be given more than once).
    var repeated: [String: [String]] = [:]
    var flags: Set<String> = []
    var arguments: [String] = []
    var keyOverrides: [(key: String, value: String)] = []
    /// The words after `--`, for a spec with a `command`; not parsed at all.
    var command: [String] = []
}

/// A small command-line parser: subcommand, `--option VALUE` (or `=VALUE`),
/// `--flag`, positional arguments, and every configuration key as a flag
/// (`KeyFlags`). Written here rather than taken from a library because the
/// usual one brings Foundation into a process that runs on every node.
enum CommandLineParser {
    enum Outcome {
        case run(ParsedCommand)
        /// `--help` or `--version`: print this and exit 0.
        case print(String)
    }

    struct UsageError: Error, CustomStringConvertible {
        var description: String
    }

    /// - Throws: `UsageError` naming what is wrong.
    static func parse(_ arguments: [String], commands: [CommandSpec], defaultCommand: String,
                      overview: String, version: String) throws(UsageError) -> Outcome {
        // Nothing after `--` is slabwatch's: a workload's own `--flags` stay its own.
        let separator = arguments.firstIndex(of: "--")
        let trailing = separator.map { Array(arguments[($0 + 1)...]) }
        let arguments = separator.map { Array(arguments[..<$0]) } ?? arguments
        let keys: KeyFlags
        do { keys = try KeyFlags.split(arguments) } catch { throw UsageError(description: error.description) }
        var rest = keys.rest[...]
        if rest.first == "--version" { return .print(version) }
        if rest.first == "--help" || rest.first == "-h" || rest.first == "help" {
            return .print(overview + "\n\nCommands:\n" + commands.map { "  \($0.name.padded(14)) \($0.abstract)" }.joined(separator: "\n")
                          + "\n\nSee 'slabwatch COMMAND --help' for a command's options.")
        }
        var spec = commands.first { $0.name == defaultCommand }!
        if let first = rest.first, let named = commands.first(where: { $0.name == first }) {
            spec = named
            rest = rest.dropFirst()
        }
        var parsed = ParsedCommand(spec: spec, keyOverrides: keys.overrides)
        if let trailing {
            guard spec.command != nil else { throw UsageError(description: "'\(spec.name)' runs no command: unexpected '--'") }
            parsed.command = trailing
        }
        while let argument = rest.popFirst() {
            if argument == "--help" || argument == "-h" { return .print(help(spec)) }
            guard argument.hasPrefix("-"), argument != "-" else { parsed.arguments.append(argument); continue }
            let body = argument.drop { $0 == "-" }
            let name = String(body.prefix { $0 != "=" })
            if spec.flags.contains(where: { $0.name == name }) {
                parsed.flags.insert(name)
            } else if spec.options.contains(where: { $0.name == name }) {
                let value: String
                if let equals = body.firstIndex(of: "=") {
                    value = String(body[body.index(after: equals)...])
                } else if let next = rest.popFirst() {
                    value = next
                } else {
                    throw UsageError(description: "--\(name) needs a value")
                }
                parsed.options[name] = value
                parsed.repeated[name, default: []].append(value)
            } else {
                throw UsageError(description: "unknown option '\(argument)' for '\(spec.name)'; see 'slabwatch \(spec.name) --help'")
            }
        }
        guard parsed.arguments.count == spec.arguments.count else {
            let expected = spec.arguments.map { "<\($0.name)>" }.joined(separator: " ")
            throw UsageError(description: "'\(spec.name)' takes \(expected.isEmpty ? "no arguments" : expected); see 'slabwatch \(spec.name) --help'")
        }
        if let key = keys.unused(by: spec.keyPrefixes).first {
            throw UsageError(description: "--\(key) does not apply to '\(spec.name)'")
        }
        return .run(parsed)
    }

    static func help(_ spec: CommandSpec) -> String {
        let usage = (["slabwatch", spec.name] + spec.arguments.map { "<\($0.name)>" }
            + spec.options.map { "[--\($0.name) \($0.value)]" } + spec.flags.map { "[--\($0.name)]" }
            + (spec.command.map { ["-- \($0.name)"] } ?? [])).joined(separator: " ")
        var text = "\(spec.abstract)\n\nUsage: \(usage)"
        let lines = spec.arguments.map { "  <\($0.name)>".padded(28) + " " + $0.help }
            + (spec.command.map { ["  \($0.name)".padded(28) + " " + $0.help] } ?? [])
            + spec.options.map { "  --\($0.name) \($0.value)".padded(28) + " " + $0.help }
            + spec.flags.map { "  --\($0.name)".padded(28) + " " + $0.help }
        if !lines.isEmpty { text += "\n\n" + lines.joined(separator: "\n") }
        if !spec.keyPrefixes.isEmpty {
            text += "\n\nConfiguration keys as flags (--KEY VALUE or --KEY=VALUE):\n" + Configuration.flagHelp(prefixes: spec.keyPrefixes)
        }
        return text
    }
}

extension String {
    func padded(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
