/// Where the configuration came from, so SIGHUP can read it again the same way.
public struct ConfigurationSource: Sendable {
    public var file: String?
    public var overrides: [(key: String, value: String)]

    public init(file: String?, overrides: [(key: String, value: String)]) {
        self.file = file
        self.overrides = overrides
    }

    /// Defaults, then the file, then the flags.
    /// - Throws: `ConfigurationError` for the first problem found.
    public func load() throws(ConfigurationError) -> Configuration {
        var configuration = Configuration()
        if let file {
            let contents: String
            do { contents = try readText(file) } catch {
                throw ConfigurationError(origin: file, line: nil, key: nil, message: error.description)
            }
            configuration = try Configuration.load(file: file, contents: contents)
        }
        // A list key given more than once (repeated flags) is one list.
        var done: Set<String> = []
        for (key, _) in overrides where done.insert(key).inserted {
            let values = overrides.filter { $0.key == key }.map(\.value)
            try configuration.set(key, to: Configuration.listKeys.contains(key) ? values : [values.last!], origin: "flag --\(key)")
        }
        try configuration.validate(origin: "flags")
        return configuration
    }
}

func readText(_ path: String) throws(FileError) -> String {
    String(decoding: try FileReader(initialCapacity: 4096).read(path), as: UTF8.self)
}
