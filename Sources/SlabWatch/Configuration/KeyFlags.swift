/// Configuration keys given on the command line as `--KEY VALUE` or
/// `--KEY=VALUE`, for every key of `Configuration.keys`: taken out of the
/// arguments before the command-line parser sees the rest, so each key is a
/// flag without a hand-written option, and the two can never drift apart.
public struct KeyFlags: Sendable {
    public var overrides: [(key: String, value: String)] = []
    /// The arguments that are not configuration keys.
    public var rest: [String] = []

    public struct UsageError: Error, CustomStringConvertible {
        public var description: String
    }

    /// - Throws: `UsageError` for a key flag without a value.
    public static func split(_ arguments: [String]) throws(UsageError) -> KeyFlags {
        var flags = KeyFlags()
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--") else { flags.rest.append(argument); continue }
            let body = argument.dropFirst(2)
            var name = String(body.prefix { $0 != "=" })
            name = aliases[name] ?? name
            guard Configuration.settings[name] != nil else { flags.rest.append(argument); continue }
            if let equals = body.firstIndex(of: "=") {
                flags.overrides.append((name, String(body[body.index(after: equals)...])))
            } else {
                guard index < arguments.endIndex else { throw UsageError(description: "--\(name) needs a value") }
                flags.overrides.append((name, arguments[index]))
                index += 1
            }
        }
        return flags
    }

    /// Other spellings of a key: exporter-toolkit's flag name, which operators
    /// of Prometheus exporters type from habit.
    static let aliases = ["web.config.file": "web.config-file"]

    /// Keys given that a command does not use (it reads only `prefixes`).
    public func unused(by prefixes: [String]) -> [String] {
        overrides.map(\.key).filter { key in !prefixes.contains { key.hasPrefix($0) } }
    }
}

extension Configuration {
    /// `--help` text for the keys starting with one of `prefixes`: flag, default, what it does.
    public static func flagHelp(prefixes: [String]) -> String {
        keys.filter { key in prefixes.contains { key.name.hasPrefix($0) } }
            .map { "  --\($0.name) VALUE   (default \($0.defaultText))\n      \($0.summary)" }
            .joined(separator: "\n")
    }

    /// The table of keys in docs/operating/configuration.md, generated from this.
    public static func markdownTable() -> String {
        var lines = ["| key | default | reloads on SIGHUP | meaning |", "|---|---|---|---|"]
        for key in keys {
            // A `|` in a default (a regex's alternation) would end the cell.
            let value = key.defaultText.split(separator: "|", omittingEmptySubsequences: false).joined(separator: "\\|")
            lines.append("| `\(key.name)` | `\(value)` | \(key.reloadable ? "yes" : "no, restart") | \(key.summary) |")
        }
        return lines.joined(separator: "\n")
    }
}
