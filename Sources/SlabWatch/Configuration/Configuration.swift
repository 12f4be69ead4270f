public import Logging
public import SlabWatchCore
public import SlabWatchHTTP
import LinearRegex
import Systemd

/// Everything the daemon can be told. Embedded defaults make it run with no
/// file; a YAML file (keys in docs/operating/configuration.md and `config/slabwatch.yml`) overrides
/// them; command-line flags, which use the same dotted key names
/// (`--sampler.interval 1s`), override the file.
public struct Configuration: Sendable, Equatable {
    /// 9100–9999 is fully allocated on Prometheus's default-port list; this
    /// port past it is used by no common exporter.
    public static let defaultPort: UInt16 = 10077

    public var listenAddresses = [ListenAddress(host: .any, port: defaultPort)]
    public var limits = HTTPServerLimits()
    /// exporter-toolkit's web configuration file; empty: plain HTTP, no credentials.
    public var webConfigFile = ""
    public var sampler = Sampler.Settings()
    /// The `ring.*` keys; the ring's room for series follows `sampler.max-caches` (`pipeline`).
    public var ring = SampleRing.Configuration()
    public var logLevel = Logger.Level.info
    public var alerts = AlertPolicy.Settings()
    /// Where journald's socket is expected; with none there, alerts go to stderr.
    public var journalSocket = Journal.defaultSocketPath
    public var state = PersistenceSettings()
    public var attribution = AttributionSettings()
    /// Read when no `--config` is given and the file exists.
    public static let defaultFile = "/etc/slabwatch/slabwatch.yml"

    public init() {}

    /// What the sampler's pipeline runs by, and `replay`'s: the `detector.*`
    /// keys and the ring of `ring.*` bounded by `sampler.max-caches`.
    public var pipeline: Pipeline.Settings { sampler.pipeline(ring: ring) }

    /// Reads a YAML file over the defaults.
    /// - Throws: `ConfigurationError` naming the key and line of the first problem.
    public static func load(file path: String, contents: String) throws(ConfigurationError) -> Configuration {
        var configuration = Configuration()
        try configuration.merge(yaml: contents, file: path)
        return configuration
    }

    /// Applies one setting given as text: one value, or several for a list key
    /// (e.g. a repeated flag).
    /// - Throws: `ConfigurationError` when the key is unknown or the value impossible.
    public mutating func set(_ key: String, to values: [String], origin: String) throws(ConfigurationError) {
        guard let setting = Self.settings[key] else {
            throw ConfigurationError(origin: origin, line: nil, key: key, message: "unknown key")
        }
        do { try setting(&self, values) } catch {
            throw ConfigurationError(origin: origin, line: nil, key: key, message: error.message)
        }
    }

    /// What differs in `new` that SIGHUP cannot apply: the keys the table marks
    /// `reloadable: false`, a whole section as `web.*` when all of its such
    /// keys land in one value. `ConfigurationKeyTests` holds this list and the
    /// table's `reloadable` together, key by key.
    func restartOnlyChanges(to new: Configuration) -> [String] {
        [
            ("web.*", new.listenAddresses != listenAddresses || new.limits != limits),
            ("ring.*", new.ring != ring),
            ("sampler.max-caches", new.sampler.limits.maxCaches != sampler.limits.maxCaches),
            ("sampler.max-cgroups", new.sampler.limits.maxCgroups != sampler.limits.maxCgroups),
            ("alerts.journal-socket", new.journalSocket != journalSocket),
            ("state.*", new.state != state),
            ("log.level", new.logLevel != logLevel),
        ].filter(\.1).map(\.0)
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
        let root: YAMLNode?
        do { root = try YAMLDocument.parse(yaml) } catch {
            throw ConfigurationError(origin: file, line: error.line, key: nil, message: error.message)
        }
        guard let root else { return }  // empty file: defaults
        guard case .mapping(let mapping, _) = root else {
            throw ConfigurationError(origin: file, line: root.line, key: nil, message: "top level must be a mapping of sections")
        }
        try merge(mapping, prefix: "", file: file)
        try validate(origin: file)
    }

    private mutating func merge(_ mapping: [(key: YAMLNode, value: YAMLNode)], prefix: String, file: String) throws(ConfigurationError) {
        for (keyNode, valueNode) in mapping {
            guard let name = keyNode.scalar else {
                throw ConfigurationError(origin: file, line: keyNode.line, key: prefix, message: "keys must be plain strings")
            }
            let key = prefix + name
            let line = keyNode.line
            if let setting = Self.settings[key] {
                let values: [String]
                switch valueNode {
                case .scalar(let text, _): values = [text]
                case .sequence(let items, _) where Self.listKeys.contains(key):
                    values = try items.map { (item) throws(ConfigurationError) -> String in
                        guard let text = item.scalar else {
                            throw ConfigurationError(origin: file, line: item.line, key: key, message: "list items must be strings")
                        }
                        return text
                    }
                default:
                    throw ConfigurationError(origin: file, line: line, key: key, message: "expected a single value, found \(valueNode.kind)")
                }
                do { try setting(&self, values) } catch {
                    throw ConfigurationError(origin: file, line: valueNode.line, key: key, message: error.message)
                }
            } else if Self.sections.contains(key) {
                guard case .mapping(let nested, _) = valueNode else {
                    throw ConfigurationError(origin: file, line: line, key: key, message: "expected a section (mapping), found \(valueNode.kind)")
                }
                try merge(nested, prefix: key + ".", file: file)
            } else {
                throw ConfigurationError(origin: file, line: line, key: key, message: "unknown key")
            }
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
