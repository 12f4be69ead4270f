public import SlabWatchCore

/// How the process ends; docs/operating/configuration.md's table of exit codes is generated from this.
public enum ExitStatus: Int32, CaseIterable, Sendable {
    case success = 0
    case runtimeFailure = 1
    /// A bad configuration file, flag or argument.
    case badConfiguration = 2
    case cannotListen = 3
    /// `attribute`: no tracefs in this kernel, or it cannot be mounted.
    case tracingUnavailable = 4
    /// `attribute`: tracefs needs root (or CAP_SYS_ADMIN / CAP_DAC_OVERRIDE).
    case notPermitted = 5
    /// `measure`: a budget was exceeded (the command itself succeeded).
    case budgetExceeded = 6
    /// `measure`: a budget could not be judged (its driver did not move enough, a noisy fit).
    case cannotJudge = 7
    /// `measure`: the command it ran exited non-zero or was killed (its own
    /// status is in the report: measure never passes it on as its own, so
    /// that no status of the command can read as one of measure's).
    case commandFailed = 8

    /// For `--help` and the docs: `0 stopped cleanly`, ….
    public var meaning: String {
        switch self {
        case .success: "stopped cleanly"
        case .runtimeFailure: "runtime failure"
        case .badConfiguration: "bad configuration, flag or argument"
        case .cannotListen: "cannot listen on an address"
        case .tracingUnavailable: "no tracefs (attribute)"
        case .notPermitted: "not permitted to trace (attribute)"
        case .budgetExceeded: "a budget exceeded (measure)"
        case .cannotJudge: "a budget that cannot be judged (measure)"
        case .commandFailed: "the command failed (measure)"
        }
    }

    /// `0 stopped cleanly, 1 runtime failure, …`: for `--help` and the docs.
    public static var summary: String { allCases.map { "\($0.rawValue) \($0.meaning)" }.joined(separator: ", ") }

    /// `measure`'s own status, never the command's: the command's failure
    /// first (CI must see the workload broke), then an exceeded budget, then
    /// one that cannot be judged.
    public static func measured(commandStatus: Int32, verdicts: [Budget.Verdict]) -> ExitStatus {
        if commandStatus != 0 { return .commandFailed }
        if verdicts.contains(where: { if case .exceeded = $0 { true } else { false } }) { return .budgetExceeded }
        if verdicts.contains(where: { if case .cannotJudge = $0 { true } else { false } }) { return .cannotJudge }
        return .success
    }
}
