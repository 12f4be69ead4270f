import Dispatch
import Logging
import SlabWatchHTTP
import Synchronization

// The daemon's parts that wrap one object each. Their order lives in
// `Daemon.parts`.

/// Journal alerts: nothing to start; at stop, the entries already routed are sent.
extension AlertRouter: Service {
    var name: String { "alerts" }
    func start() {}
    func stop(deadline: UInt64) -> Bool {
        drain()
        return true
    }
}

/// Tracing sessions: nothing to start (a finding starts one); at stop, the
/// running session ends early and is waited for past the deadline, because
/// it removes what it put in the kernel (a tracefs instance, a BPF program).
extension AttributionScheduler: Service {
    var name: String { "attribution" }
    func start() {}
    func stop(deadline: UInt64) -> Bool {
        stop()
        return true
    }
}

/// The HTTP server on the sockets systemd passed (socket activation) when
/// there are any, otherwise on the configured addresses.
final class ListeningPart: Service {
    let name = "server"
    private let server: HTTPServer
    private let addresses: [ListenAddress]
    private let inherited: [Int32]
    private let logger: Logger
    private let boundAddresses = Mutex<[ListenAddress]>([])

    /// The addresses it listens on once started (a port 0 resolved).
    var bound: [ListenAddress] { boundAddresses.withLock { $0 } }

    /// `inherited`: what `ServiceManager.listenDescriptors()` gave, claimed
    /// before anything else opens a descriptor (see `Daemon`).
    init(_ server: HTTPServer, addresses: [ListenAddress], inherited: [Int32], logger: Logger) {
        self.server = server
        self.addresses = addresses
        self.inherited = inherited
        self.logger = logger
    }

    func start() throws(ServiceError) {
        do {
            let bound = inherited.isEmpty ? try server.start(listeningOn: addresses) : server.start(listeningDescriptors: inherited)
            boundAddresses.withLock { $0 = bound }
            for address in bound {
                logger.info("listening", metadata: ["address": "\(address)", "activated": "\(!inherited.isEmpty)"])
            }
        } catch {
            throw ServiceError(.cannotListen, "cannot listen", metadata: ["error": "\(error)"])
        }
    }

    func stop(deadline: UInt64) -> Bool {
        server.stop()
        return true
    }
}

/// The ticks. A tick stuck in the kernel (a hung procfs read) is abandoned
/// at the deadline; the state part then writes no final checkpoint, since
/// the state it would save is still being changed.
final class SamplingPart: Service {
    let name = "sampler"
    let sampler: Sampler
    private let abandonedTick = Atomic(false)

    init(_ sampler: Sampler) { self.sampler = sampler }

    /// Whether `stop` gave up on a running tick.
    var abandoned: Bool { abandonedTick.load(ordering: .acquiring) }

    func start() { sampler.start() }

    func stop(deadline: UInt64) -> Bool {
        let stopped = sampler.stop(timeout: Clock.seconds(until: deadline))
        if !stopped { abandonedTick.store(true, ordering: .releasing) }
        return stopped
    }
}

/// The once-a-second check of the web configuration's files.
final class WebSecurityPart: Service {
    let name = "web-security"
    let reloader: WebSecurityReloader
    private let queue: DispatchQueue

    init(_ reloader: WebSecurityReloader, queue: DispatchQueue) {
        self.reloader = reloader
        self.queue = queue
    }

    func start() { reloader.watch(on: queue) }

    func stop(deadline: UInt64) -> Bool {
        reloader.stop()
        return true
    }
}
