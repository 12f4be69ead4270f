/// One `--name VALUE` a command takes. Its help line and the check of its
/// value are made from one declaration (name, default, accepted values), so
/// `--help` cannot say one default or range while the code holds another.
public protocol CommandOption: Sendable {
    /// The long name, without `--`.
    var name: String { get }
    /// A one-letter spelling (`-d` for top's `--delay`); nil for most.
    var shortName: String? { get }
    /// What the value is, for the usage line: DURATION, SIZE, N, FILE, ….
    var valueName: String { get }
    /// One line for `--help`: what it does, what it accepts, its default.
    var help: String { get }
}

extension CommandOption {
    public var shortName: String? { nil }

    /// The value as given, or nil when the option is absent.
    func text(in line: ParsedCommand) -> String? { line.options[name] }
}

/// A duration (`500ms`, `5s`, `1m`, as `Units.seconds` reads them) within a range.
public struct DurationOption: CommandOption {
    public let name: String
    public let summary: String
    /// Nil when the option has no value by default (`whenAbsent` says what then happens).
    public let defaultSeconds: Double?
    public let range: ClosedRange<Double>
    public let shortName: String?
    /// What happens without the option when there is no default ("until SIGINT/SIGTERM").
    public let whenAbsent: String?

    public init(name: String, summary: String, default seconds: Double?, range: ClosedRange<Double>,
                shortName: String? = nil, whenAbsent: String? = nil) {
        self.name = name
        self.summary = summary
        self.defaultSeconds = seconds
        self.range = range
        self.shortName = shortName
        self.whenAbsent = whenAbsent
    }

    public var valueName: String { "DURATION" }

    public var help: String {
        let also = shortName.map { "also -\($0); " } ?? ""
        let accepted = acceptedText.map { "\($0); " } ?? ""
        let absent = defaultSeconds.map { "default \(Units.durationText($0))" } ?? "default: \(whenAbsent ?? "none")"
        return "\(summary) (\(also)\(accepted)\(absent))"
    }

    /// "from 10ms to 1m", "at least 100ms"; nil when any duration will do.
    var acceptedText: String? {
        switch (range.lowerBound > 0, range.upperBound.isFinite) {
        case (_, true): "from \(Units.durationText(range.lowerBound)) to \(Units.durationText(range.upperBound))"
        case (true, false): "at least \(Units.durationText(range.lowerBound))"
        case (false, false): nil
        }
    }

    /// The seconds given; nil when the option is absent.
    /// - Throws: `UsageError` for a value that is no duration or out of range.
    public func value(in line: ParsedCommand) throws(UsageError) -> Double? {
        guard let text = text(in: line) else { return nil }
        guard let seconds = Units.seconds(text), range.contains(seconds) else {
            let accepted = acceptedText.map { $0.hasPrefix("at least") ? "of \($0)" : $0 } ?? "(e.g. 500ms, 5s, 1m)"
            throw UsageError("--\(name): '\(text)' is not a duration \(accepted)")
        }
        return seconds
    }
}

/// A size in bytes (`4096`, `64KiB`, `1MiB`, as `Units.bytes` reads them).
public struct SizeOption: CommandOption {
    public let name: String
    public let summary: String
    public let defaultBytes: UInt64

    public init(name: String, summary: String, default bytes: UInt64) {
        self.name = name
        self.summary = summary
        self.defaultBytes = bytes
    }

    public var valueName: String { "SIZE" }
    public var help: String { "\(summary) (default \(Units.sizeText(defaultBytes)))" }

    /// - Throws: `UsageError` for a value that is no size.
    public func value(in line: ParsedCommand) throws(UsageError) -> UInt64? {
        guard let text = text(in: line) else { return nil }
        guard let bytes = Units.bytes(text) else { throw UsageError("--\(name): '\(text)' is not a size (e.g. 64KiB)") }
        return bytes
    }
}

/// A whole number within a range.
public struct CountOption: CommandOption {
    public let name: String
    public let summary: String
    public let defaultCount: Int
    public let range: ClosedRange<Int>

    public init(name: String, summary: String, default count: Int, range: ClosedRange<Int>) {
        self.name = name
        self.summary = summary
        self.defaultCount = count
        self.range = range
    }

    public var valueName: String { "N" }
    public var help: String { "\(summary) (\(acceptedText); default \(defaultCount))" }

    var acceptedText: String {
        if range.upperBound == .max { return range.lowerBound == 1 ? "a positive number" : "at least \(range.lowerBound)" }
        return "from \(range.lowerBound) to \(range.upperBound)"
    }

    /// - Throws: `UsageError` for a value that is no number or out of range.
    public func value(in line: ParsedCommand) throws(UsageError) -> Int? {
        guard let text = text(in: line) else { return nil }
        guard let count = Int(text), range.contains(count) else { throw UsageError("--\(name): '\(text)' is not \(acceptedText)") }
        return count
    }
}

/// One of the cases of `Choice`, by its raw value.
public struct ChoiceOption<Choice: CaseIterable & RawRepresentable & Sendable>: CommandOption where Choice.RawValue == String {
    public let name: String
    public let valueName: String
    public let summary: String
    public let defaultChoice: Choice

    public init(name: String, valueName: String, summary: String, default choice: Choice) {
        self.name = name
        self.valueName = valueName
        self.summary = summary
        self.defaultChoice = choice
    }

    public var help: String { "\(summary): \(Self.listed(or: true)) (default \(defaultChoice.rawValue))" }

    /// "a, b or c"; "a, b, c" for an error.
    static func listed(or: Bool) -> String {
        let names = Choice.allCases.map(\.rawValue)
        guard or, names.count > 1 else { return names.joined(separator: ", ") }
        return names.dropLast().joined(separator: ", ") + " or " + names.last!
    }

    /// - Throws: `UsageError` naming the accepted values.
    public func value(in line: ParsedCommand) throws(UsageError) -> Choice? {
        guard let text = text(in: line) else { return nil }
        guard let choice = Choice(rawValue: text) else { throw UsageError("--\(name): '\(text)' is not one of \(Self.listed(or: false))") }
        return choice
    }
}

/// Free text with no default (a URL, a file, a budget), checked by whoever reads it.
public struct TextOption: CommandOption {
    public let name: String
    public let valueName: String
    public let help: String

    public init(name: String, valueName: String, help: String) {
        self.name = name
        self.valueName = valueName
        self.help = help
    }

    /// The last value given; nil when absent.
    public func value(in line: ParsedCommand) -> String? { text(in: line) }

    /// Every value given, in order (an option that may be repeated).
    public func values(in line: ParsedCommand) -> [String] { line.repeated[name] ?? [] }
}
