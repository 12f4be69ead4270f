/// How the process ends; README's table of exit codes is held against this.
public enum ExitStatus: Int32, CaseIterable, Sendable {
    case success = 0
    case runtimeFailure = 1
    /// A bad configuration file, flag or argument.
    case badConfiguration = 2
    case cannotListen = 3

    /// For `--help` and README: `0 stopped cleanly`, ….
    public var meaning: String {
        switch self {
        case .success: "stopped cleanly"
        case .runtimeFailure: "runtime failure"
        case .badConfiguration: "bad configuration, flag or argument"
        case .cannotListen: "cannot listen on an address"
        }
    }

    /// `0 stopped cleanly, 1 runtime failure, …`: for `--help` and README.
    public static var summary: String { allCases.map { "\($0.rawValue) \($0.meaning)" }.joined(separator: ", ") }
}
