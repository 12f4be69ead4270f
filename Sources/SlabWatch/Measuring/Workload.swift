import Glibc

/// What `measure` runs and samples around: started once, then polled
/// without blocking until it has ended.
public protocol Workload {
    /// Starts it. - Throws: `WorkloadError` when it cannot be started.
    mutating func start() throws(WorkloadError)
    /// How it ended, once it has; nil while it runs. Never blocks.
    mutating func poll() -> Termination?
}

/// How a workload ended.
public enum Termination: Equatable, Sendable {
    case exited(Int32)
    case killed(signal: Int32)
    /// Reaped by something else: its status is lost.
    case lost

    /// As a shell reports it: the exit code, or 128 + the signal. A lost
    /// status is 1, a failure: a lost status must not pass CI.
    public var status: Int32 {
        switch self {
        case .exited(let code): code
        case .killed(let signal): 128 + signal
        case .lost: 1
        }
    }

    /// From a `waitpid` status word.
    init(waitStatus status: Int32) {
        let signal = status & 0x7F
        self = signal == 0 ? .exited((status >> 8) & 0xFF) : .killed(signal: signal)
    }
}

/// A workload that could not be started; `status` is what env(1) and
/// timeout(1) exit with then: 127 not found, 126 found but not runnable.
public struct WorkloadError: Error, CustomStringConvertible, Sendable {
    public var status: Int32
    public var description: String
}

/// A command found on PATH, run with this process's stdio and environment
/// (`measure -- COMMAND [ARGS…]`), and reaped with `waitpid(WNOHANG)`.
public struct SpawnedCommand: Workload, Sendable {
    public let arguments: [String]
    /// Whether measure's SIGINT and SIGTERM go on to it while it runs (`SignalForwarding`).
    let forwardsSignals: Bool
    private(set) var processID: pid_t?
    /// Once reaped (asked again, `poll` says it again).
    private var termination: Termination?

    /// - Parameter forwardsSignals: true in measure itself, which catches the
    ///   signals (`SignalForwarding.catchSignals`); a test runs commands without.
    public init(_ arguments: [String], forwardsSignals: Bool) {
        self.arguments = arguments
        self.forwardsSignals = forwardsSignals
    }

    public mutating func start() throws(WorkloadError) {
        guard let command = arguments.first, !command.isEmpty else { throw WorkloadError(status: 127, description: "no command to run") }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        var attributes = Self.attributes()
        defer { posix_spawnattr_destroy(&attributes) }
        let error = posix_spawnp(&pid, command, nil, &attributes, &argv, environ)
        guard error == 0 else {
            throw WorkloadError(status: error == ENOENT ? 127 : 126, description: "cannot run '\(command)': \(String(cString: strerror(error)))")
        }
        processID = pid
        if forwardsSignals { SignalForwarding.commandStarted(pid) }
    }

    /// The signals measure forwards reach the command: unblocked, at their
    /// default action (measure's own handlers end at exec anyway). Every
    /// other signal is as this thread has it, as a shell passes it on; a
    /// thread of a pool blocks SIGINT and SIGTERM, which would leave a
    /// command started there deaf to them.
    private static func attributes() -> posix_spawnattr_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        var forwarded = sigset_t()
        sigemptyset(&forwarded)
        sigaddset(&forwarded, SIGINT)
        sigaddset(&forwarded, SIGTERM)
        var mask = sigset_t()
        pthread_sigmask(SIG_SETMASK, nil, &mask)
        sigdelset(&mask, SIGINT)
        sigdelset(&mask, SIGTERM)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setsigdefault(&attributes, &forwarded)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        return attributes
    }

    public mutating func poll() -> Termination? {
        guard termination == nil, let pid = processID else { return termination }
        var status: Int32 = 0
        let reaped = waitpid(pid, &status, WNOHANG)
        let ended: Termination
        if reaped == pid {
            ended = Termination(waitStatus: status)
        } else if reaped < 0 && errno == ECHILD {
            ended = .lost
        } else {
            return nil
        }
        termination = ended
        if forwardsSignals {
            if case .killed = ended { SignalForwarding.commandEnded(diedOfSignal: true) } else { SignalForwarding.commandEnded(diedOfSignal: false) }
        }
        return ended
    }
}
