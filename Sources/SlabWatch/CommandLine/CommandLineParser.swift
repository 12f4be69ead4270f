/// A small command-line parser: subcommand, `--option VALUE` (or `=VALUE`),
/// `--flag`, positional arguments, and every configuration key as a flag
/// (`KeyFlags`). Written here rather than taken from a library because the
/// usual one brings Foundation into a process that runs on every node.
public enum CommandLineParser: Sendable {
    public enum Outcome: Sendable {
        case run(ParsedCommand)
        /// `--help` or `--version`: print this and exit 0.
        case print(String)
    }

    /// The first word names the command. None, or an option first, is
    /// `defaultCommand` (`slabwatch --config FILE` runs the daemon); any
    /// other word is an unknown command, never an argument of the default.
    /// - Throws: `UsageError` naming what is wrong.
    public static func parse(_ arguments: [String], commands: [CommandSpec], defaultCommand: String,
                             overview: String, version: String) throws(UsageError) -> Outcome {
        // Nothing after `--` is slabwatch's: a workload's own `--flags` stay its own.
        let separator = arguments.firstIndex(of: "--")
        let trailing = separator.map { Array(arguments[($0 + 1)...]) }
        let arguments = separator.map { Array(arguments[..<$0]) } ?? arguments
        let keys: KeyFlags
        do { keys = try KeyFlags.split(arguments) } catch { throw UsageError(error.description) }
        var rest = keys.rest[...]
        if rest.first == "--version" { return .print(version) }
        if rest.first == "--help" || rest.first == "-h" || rest.first == "help" {
            return .print(overview + "\n\nCommands:\n" + commands.map { "  \($0.name.padded(14)) \($0.summary)" }.joined(separator: "\n")
                          + "\n\nSee 'slabwatch COMMAND --help' for a command's options.")
        }
        guard var spec = commands.first(where: { $0.name == defaultCommand }) else { throw UsageError("no command '\(defaultCommand)'") }
        if let first = rest.first, !first.hasPrefix("-") {
            guard let named = commands.first(where: { $0.name == first }) else {
                throw UsageError("unknown command '\(first)'; see 'slabwatch --help'")
            }
            spec = named
            rest = rest.dropFirst()
        }
        var parsed = ParsedCommand(spec: spec, keyOverrides: keys.overrides)
        if let trailing {
            guard spec.command != nil else { throw UsageError("'\(spec.name)' runs no command: unexpected '--'") }
            parsed.command = trailing
        }
        while let argument = rest.popFirst() {
            if argument == "--help" || argument == "-h" { return .print(help(spec)) }
            guard argument.hasPrefix("-"), argument != "-" else { parsed.arguments.append(argument); continue }
            let body = argument.drop { $0 == "-" }
            let name = body.prefix { $0 != "=" }
            if spec.flags.contains(where: { $0.name == name }) {
                parsed.flags.insert(String(name))
            } else if let option = spec.option(named: name) {
                let value: String
                if let equals = body.firstIndex(of: "=") {
                    value = String(body[body.index(after: equals)...])
                } else if let next = rest.popFirst() {
                    value = next
                } else {
                    throw UsageError("--\(option.name) needs a value")
                }
                parsed.options[option.name] = value
                parsed.repeated[option.name, default: []].append(value)
            } else {
                throw UsageError("unknown option '\(argument)' for '\(spec.name)'; see 'slabwatch \(spec.name) --help'")
            }
        }
        guard parsed.arguments.count == spec.arguments.count else {
            let expected = spec.arguments.map { "<\($0.name)>" }.joined(separator: " ")
            throw UsageError("'\(spec.name)' takes \(expected.isEmpty ? "no arguments" : expected); see 'slabwatch \(spec.name) --help'")
        }
        if let key = keys.unused(by: spec.keyPrefixes).first {
            throw UsageError("--\(key) does not apply to '\(spec.name)'")
        }
        return .run(parsed)
    }

    /// `slabwatch COMMAND --help`: the summary, the usage line, each
    /// argument, option and flag, and the configuration keys it reads.
    public static func help(_ spec: CommandSpec) -> String {
        let usage = (["slabwatch", spec.name] + spec.arguments.map { "<\($0.name)>" }
            + spec.options.map { "[--\($0.name) \($0.valueName)]" } + spec.flags.map { "[--\($0.name)]" }
            + (spec.command.map { ["-- \($0.name)"] } ?? [])).joined(separator: " ")
        var text = "\(spec.summary)\n\nUsage: \(usage)"
        let lines = spec.arguments.map { "  <\($0.name)>".padded(28) + " " + $0.help }
            + (spec.command.map { ["  \($0.name)".padded(28) + " " + $0.help] } ?? [])
            + spec.options.map { "  --\($0.name) \($0.valueName)".padded(28) + " " + $0.help }
            + spec.flags.map { "  --\($0.name)".padded(28) + " " + $0.help }
        if !lines.isEmpty { text += "\n\n" + lines.joined(separator: "\n") }
        if !spec.keyPrefixes.isEmpty {
            text += "\n\nConfiguration keys as flags (--KEY VALUE or --KEY=VALUE):\n" + Configuration.flagHelp(prefixes: spec.keyPrefixes)
        }
        return text
    }
}

extension String {
    /// The text with spaces after it up to `width` characters.
    func padded(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
