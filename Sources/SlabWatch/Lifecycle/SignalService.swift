import Dispatch
import Glibc
import Logging

/// The signals the daemon answers, on its own queue: SIGTERM and SIGINT
/// request the stop, SIGHUP reloads the configuration, and SIGUSR1/2 are
/// logged, not obeyed (they would kill the process by default, and log
/// rotation scripts send them). First to start, so no signal meant for the
/// daemon kills it while the other parts start; last to stop.
final class SignalService: @unchecked Sendable, Service {  // `sources`: set in start, cancelled in stop, both on the daemon's thread
    let name = "signals"
    private let queue: DispatchQueue
    private let reload: Reload
    private let stopRequest: DispatchSemaphore
    private let logger: Logger
    private var sources: [any DispatchSourceSignal] = []

    /// `stopRequest` is signalled at SIGTERM or SIGINT.
    init(queue: DispatchQueue, reload: Reload, stopRequest: DispatchSemaphore, logger: Logger) {
        self.queue = queue
        self.reload = reload
        self.stopRequest = stopRequest
        self.logger = logger
    }

    func start() {
        for signalNumber in [SIGHUP, SIGTERM, SIGINT, SIGUSR1, SIGUSR2] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
            source.setEventHandler { [self] in handle(signalNumber) }
            source.resume()
            sources.append(source)
        }
    }

    /// The signals stay ignored: one arriving while the process exits is not its end.
    func stop(deadline: UInt64) -> Bool {
        for source in sources { source.cancel() }
        sources.removeAll()
        return true
    }

    private func handle(_ signalNumber: Int32) {
        switch signalNumber {
        case SIGHUP: reload.run()
        case SIGTERM, SIGINT:
            logger.info("stopping", metadata: ["signal": "\(signalNumber == SIGTERM ? "SIGTERM" : "SIGINT")"])
            stopRequest.signal()
        default:
            logger.notice("signal ignored (only SIGHUP, SIGTERM and SIGINT mean something)",
                          metadata: ["signal": "\(signalNumber == SIGUSR1 ? "SIGUSR1" : "SIGUSR2")"])
        }
    }
}
