public import Logging
public import SlabWatchCore
public import SlabWatchHTTP
import Yams

/// Everything the daemon can be told. Embedded defaults make it run with no
/// file; a YAML file (keys in README and `config/slabwatch.yml`) overrides
/// them; command-line flags, which use the same dotted key names
/// (`--sampler.interval 1s`), override the file.
public struct Configuration: Sendable, Equatable {
    /// 9100–9999 is fully allocated on Prometheus's default-port list; this
    /// port past it is used by no common exporter.
    public static let defaultPort: UInt16 = 10077

    public var listenAddresses = [ListenAddress(host: .any, port: defaultPort)]
    public var limits = HTTPServerLimits()
    public var sampler = Sampler.Settings()
    public var ring = SampleRing.Configuration()
    public var logLevel = Logger.Level.info
    public var alerts = AlertPolicy.Settings()
    /// Where journald's socket is expected; with none there, alerts go to stderr.
    public var journalSocket = "/run/systemd/journal/socket"
    /// Read when no `--config` is given and the file exists.
    public static let defaultFile = "/etc/slabwatch/slabwatch.yml"

    public init() {}

    /// Reads a YAML file over the defaults.
    /// - Throws: `ConfigurationError` naming the key and line of the first problem.
    public static func load(file path: String, contents: String) throws(ConfigurationError) -> Configuration {
        var configuration = Configuration()
        try configuration.merge(yaml: contents, file: path)
        return configuration
    }

    /// Applies one setting given as text, e.g. from a command-line flag.
    /// - Throws: `ConfigurationError` when the key is unknown or the value impossible.
    public mutating func set(_ key: String, to value: String, origin: String) throws(ConfigurationError) {
        try set(key, to: [value], origin: origin)
    }

    /// Applies one setting given as several texts (a list key given by a repeated flag).
    public mutating func set(_ key: String, to values: [String], origin: String) throws(ConfigurationError) {
        guard let setting = Self.settings[key] else {
            throw ConfigurationError(origin: origin, line: nil, key: key, message: "unknown key")
        }
        do { try setting(&self, values) } catch {
            throw ConfigurationError(origin: origin, line: nil, key: key, message: error.message)
        }
    }

    /// Checks the whole: the filter regexes compile (the setters check them
    /// too, with a line number; this covers a configuration built in code).
    public func validate(origin: String) throws(ConfigurationError) {
        do { _ = try sampler.makeFilter() } catch {
            let key = error.pattern == sampler.include ? "slab.include" : "slab.exclude"
            throw ConfigurationError(origin: origin, line: nil, key: key, message: error.message)
        }
    }

    // MARK: YAML

    mutating func merge(yaml: String, file: String) throws(ConfigurationError) {
        let root: Node?
        do { root = try Yams.compose(yaml: yaml) } catch {
            throw ConfigurationError(origin: file, line: Self.line(of: error), key: nil,
                                     message: "YAML syntax error: \(Self.problem(of: error))")
        }
        guard let root else { return }  // empty file: defaults
        guard case .mapping(let mapping) = root else {
            throw ConfigurationError(origin: file, line: root.mark?.line, key: nil, message: "top level must be a mapping of sections")
        }
        try merge(mapping, prefix: "", file: file)
        try validate(origin: file)
    }

    private mutating func merge(_ mapping: Node.Mapping, prefix: String, file: String) throws(ConfigurationError) {
        for (keyNode, valueNode) in mapping {
            guard let name = keyNode.scalar?.string else {
                throw ConfigurationError(origin: file, line: keyNode.mark?.line, key: prefix, message: "keys must be plain strings")
            }
            let key = prefix + name
            let line = keyNode.mark?.line
            if let setting = Self.settings[key] {
                let values: [String]
                switch valueNode {
                case .scalar(let scalar): values = [scalar.string]
                case .sequence(let items) where Self.listKeys.contains(key):
                    values = try items.map { (item) throws(ConfigurationError) -> String in
                        guard let text = item.scalar?.string else {
                            throw ConfigurationError(origin: file, line: item.mark?.line, key: key, message: "list items must be strings")
                        }
                        return text
                    }
                default:
                    throw ConfigurationError(origin: file, line: line, key: key, message: "expected a single value, found \(Self.kind(valueNode))")
                }
                do { try setting(&self, values) } catch {
                    throw ConfigurationError(origin: file, line: valueNode.mark?.line ?? line, key: key, message: error.message)
                }
            } else if Self.sections.contains(key) {
                guard case .mapping(let nested) = valueNode else {
                    throw ConfigurationError(origin: file, line: line, key: key, message: "expected a section (mapping), found \(Self.kind(valueNode))")
                }
                try merge(nested, prefix: key + ".", file: file)
            } else {
                throw ConfigurationError(origin: file, line: line, key: key, message: "unknown key")
            }
        }
    }

    private static func kind(_ node: Node) -> String {
        switch node {
        case .scalar: "a value"
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    private static func line(of error: any Error) -> Int? {
        guard let yamlError = error as? YamlError else { return nil }
        switch yamlError {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        case .duplicatedKeysInMapping(_, let context): return context.mark.line
        default: return nil
        }
    }

    private static func problem(of error: any Error) -> String {
        guard let yamlError = error as? YamlError else { return "\(error)" }
        switch yamlError {
        case .scanner(_, let problem, _, _), .parser(_, let problem, _, _), .composer(_, let problem, _, _): return problem
        case .duplicatedKeysInMapping(let keys, _):
            return "duplicate key \(keys.map { "'\($0)'" }.joined(separator: ", ")) (this is its first occurrence)"
        default: return "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
        }
    }
}

/// A configuration problem, formatted as one line: `FILE:LINE: key: message`.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public var origin: String
    public var line: Int?
    public var key: String?
    public var message: String

    public var description: String {
        var text = origin
        if let line { text += ":\(line)" }
        text += ": "
        if let key, !key.isEmpty { text += "\(key): " }
        return text + message
    }
}
