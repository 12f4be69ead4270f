import Glibc
import Synchronization

/// SIGINT and SIGTERM during `measure`. Before the command starts, they end
/// measure at once; while it runs, they are passed on to it, and count as
/// dealt with when it exits rather than dies of one (a command may catch
/// SIGINT and finish: measure then reports as usual, as a shell waits for
/// such a command); after it, they end settling. A signal not dealt with
/// ends measure by that same signal once the report is out, the convention
/// that lets a calling shell or CI runner see the interruption.
///
/// Process-wide, as signal dispositions are: its state is written by the
/// handler, which may run on any thread.
public enum SignalForwarding: Sendable {
    /// The command while it runs (0 before and after), for the handler.
    nonisolated(unsafe) static var child: pid_t = 0
    /// Signals received, and the last one.
    static let received = Atomic<Int32>(0)
    static let lastSignal = Atomic<Int32>(0)
    /// Signals the command received and exited after, by its own choice.
    nonisolated(unsafe) static var dealtWith: Int32 = 0

    /// A signal arrived that no command dealt with.
    public static var pending: Bool { received.load(ordering: .relaxed) > dealtWith }

    /// Installs the handlers; call before anything else of the run (the
    /// report file included), so a signal as measure starts is not lost.
    public static func catchSignals() {
        // An ignored SIGCHLD, inherited from whatever started us, would have
        // the kernel reap the command itself and lose its exit status.
        signal(SIGCHLD, SIG_DFL)
        var handled = sigset_t()
        sigemptyset(&handled)
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber) { number in
                SignalForwarding.lastSignal.store(number, ordering: .relaxed)
                SignalForwarding.received.add(1, ordering: .relaxed)
                if SignalForwarding.child > 0 { kill(SignalForwarding.child, number) }
            }
            sigaddset(&handled, signalNumber)
        }
        // Unblocked too: a mask inherited from whatever started us would swallow them.
        pthread_sigmask(SIG_UNBLOCK, &handled, nil)
    }

    /// From now on signals go to `pid`; one that arrived as it started goes now.
    static func commandStarted(_ pid: pid_t) {
        child = pid
        if pending { kill(pid, lastSignal.load(ordering: .relaxed)) }
    }

    /// The command is gone; what it received and survived was dealt with.
    static func commandEnded(diedOfSignal: Bool) {
        child = 0
        if !diedOfSignal { dealtWith = received.load(ordering: .relaxed) }
    }

    /// Ends the process by the last signal, as if it had not been caught.
    public static func end() -> Never {
        let number = lastSignal.load(ordering: .relaxed)
        signal(number, SIG_DFL)
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, number)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        raise(number)
        exit(128 + number)
    }
}

/// Whether a signal asks measure to stop what it is doing.
public protocol Interruptions {
    var pending: Bool { get }
}

/// The signals measure caught (`SignalForwarding`).
public struct CaughtSignals: Interruptions, Sendable {
    public init() {}
    public var pending: Bool { SignalForwarding.pending }
}
