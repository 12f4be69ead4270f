import Dispatch
import Glibc
public import Logging
// For `ServerStatistics` only: the server counts in the type `/metrics` renders.
public import SlabWatchCore
import Synchronization

/// Limits that keep a misbehaving or hostile client from holding the server.
public struct HTTPServerLimits: Sendable, Equatable {
    /// At this many open connections, a new one makes room by closing the one
    /// idle longest (or still sending its head); 503 only when all are mid-response.
    public var maxConnections: Int = 64
    /// A request head larger than this is answered 431.
    public var maxHeaderBytes: Int = 8192
    /// Time from a request's first byte to the end of its head.
    public var headerTimeoutSeconds: Double = 5
    /// Time a keep-alive connection may sit idle between requests.
    public var idleTimeoutSeconds: Double = 60
    /// Time a client may take to read a response.
    public var writeTimeoutSeconds: Double = 10

    public init() {}
}

/// A small HTTP/1.1 server: keep-alive, `GET`/`HEAD` routing left to the
/// handler, no request bodies, bounded heads, deadlines and a connection cap.
///
/// All connection state lives on one serial queue; the handler runs there too,
/// so it must be fast and must not block. (slabwatch's handler renders
/// `/metrics` or `/snapshot` at most once per sampler tick, on the first request
/// after it, and gzips it at most once; every later request of the tick copies
/// those bytes. Each request on this queue, `/healthz` too, can wait for that
/// one render.) Requests `isPage` picks (pages for people,
/// slower to render) are handed to the handler on a serial queue of their own,
/// so `/metrics` and `/healthz` never wait behind a page. `start` and `stop`
/// may be called from any thread.
public final class HTTPServer: @unchecked Sendable {
    public typealias Handler = @Sendable (HTTPRequest) -> HTTPResponse
    /// True for a request whose answer may take long to render.
    public typealias PageTest = @Sendable (HTTPRequest) -> Bool

    private let queue = DispatchQueue(label: "slabwatch.http")
    private let limits: HTTPServerLimits
    private let logger: Logger
    private let handler: Handler
    private let isPage: PageTest
    /// Pages render here, one at a time, at most `maxPendingPages` waiting.
    private let pageQueue = DispatchQueue(label: "slabwatch.http.pages")
    private var pendingPages = 0
    private let maxPendingPages = 8
    /// Connections accepted per wake-up of a listener: between batches the
    /// connections already accepted are read, so a burst of dead ones is seen
    /// to be dead (and a live one to have sent its request) before the cap
    /// must choose whom to shed.
    private let acceptBatch = 16
    private var listeners: [(fd: Int32, source: any DispatchSourceRead)] = []
    private var pausedListeners: Set<Int32> = []  // suspended while out of descriptors
    /// One read buffer shared by every connection (all run on `queue`), so a
    /// request costs no allocation to receive.
    var receiveBuffer = [UInt8](repeating: 0, count: 16 * 1024)
    private var connections: [Int32: Connection] = [:]
    private var sweeper: (any DispatchSourceTimer)?
    /// When `sweeper` fires next; nil while it is not set to.
    private var sweepAt: DispatchTime?
    private var sweeps = 0
    private var stopped = false
    private let stats = Mutex(ServerStatistics())
    private var security = WebSecurity.open
    /// bcrypt runs here, one check at a time (as exporter-toolkit does), so a
    /// stream of made-up passwords costs one core at most and never holds the
    /// queue that serves scrapes.
    private let authQueue = DispatchQueue(label: "slabwatch.http.auth")
    private var pendingAuthChecks = 0
    private let maxPendingAuthChecks = 16

    public init(limits: HTTPServerLimits, logger: Logger, isPage: @escaping PageTest = { _ in false },
                handler: @escaping Handler) {
        self.limits = limits
        self.logger = logger
        self.isPage = isPage
        self.handler = handler
    }

    /// The server's counters so far (`slabwatch_http_*`).
    public var statistics: ServerStatistics { stats.withLock { $0 } }

    /// Pages and credential checks admitted and not yet answered, read on the
    /// server's queue: the event a test waits for before it fills the queues.
    var pending: (pages: Int, credentialChecks: Int) { queue.sync { (pendingPages, pendingAuthChecks) } }

    /// TLS, credentials and headers for connections accepted from now on
    /// (and for every request's credentials check). Credentials the running
    /// authenticator verified stay verified where the user's hash is unchanged.
    public func setSecurity(_ security: WebSecurity) {
        queue.sync {
            if let next = security.authenticator, let running = self.security.authenticator {
                next.adoptVerified(from: running)
            }
            self.security = security
        }
    }

    /// Binds every address and starts accepting. Returns the bound addresses
    /// (with the real port where 0 was asked for).
    /// - Throws: `SocketError` if any address cannot be bound; nothing stays open then.
    @discardableResult
    public func start(listeningOn addresses: [ListenAddress]) throws(SocketError) -> [ListenAddress] {
        var fds: [Int32] = []
        for address in addresses {
            do { fds.append(try Socket.listen(on: address)) } catch {
                fds.forEach { _ = close($0) }
                throw error
            }
        }
        return start(listeningDescriptors: fds)
    }

    /// Serves on already-listening sockets (socket activation passes these).
    @discardableResult
    public func start(listeningDescriptors fds: [Int32]) -> [ListenAddress] {
        queue.sync {
            stopped = false
            for fd in fds { addListener(fd) }
        }
        return fds.compactMap(Socket.localAddress)
    }

    /// Stops accepting, closes every connection and waits until that is done.
    public func stop() {
        queue.sync {
            for listener in listeners {
                // A suspended source never runs its cancel handler (which closes the fd).
                if pausedListeners.remove(listener.fd) != nil { listener.source.resume() }
                listener.source.cancel()
            }
            listeners.removeAll()
            for connection in connections.values { connection.close() }
            connections.removeAll()
            sweeper?.cancel()
            (sweeper, sweepAt) = (nil, nil)
            stopped = true
        }
    }

    // MARK: accepting

    private func addListener(_ fd: Int32) {
        Socket.setNonBlocking(fd)
        let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        source.setEventHandler { [unowned self] in acceptAll(fd, source) }
        source.setCancelHandler { close(fd) }
        listeners.append((fd, source))
        source.resume()
    }

    private func acceptAll(_ listenFD: Int32, _ source: any DispatchSourceRead) {
        for _ in 0..<acceptBatch {
            let fd = accept(listenFD, nil, nil)
            if fd < 0 {
                switch errno {
                case EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED: return
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    backOff(source, errno: errno)
                    return
                default:
                    stats.withLock { $0.acceptErrors += 1 }
                    logger.warning("accept failed", metadata: ["errno": "\(errno)"])
                    return
                }
            }
            if connections.count >= limits.maxConnections && !shedOne() {
                reject(fd)
                continue
            }
            stats.withLock { $0.connectionsAccepted += 1 }
            Socket.prepareAccepted(fd)
            let connection = Connection(fd: fd, server: self, tls: security.tls)
            connections[fd] = connection
            deadlineSet(connection.deadline)
            connection.start()
        }
    }

    /// Out of descriptors: stop accepting for a moment (the backlog holds
    /// clients meanwhile) instead of spinning on a listener that stays readable.
    private func backOff(_ source: any DispatchSourceRead, errno code: Int32) {
        let fd = Int32(source.handle)
        stats.withLock { $0.acceptErrors += 1 }
        logger.warning("accept: out of file descriptors, pausing 100 ms", metadata: ["errno": "\(code)"])
        source.suspend()
        pausedListeners.insert(fd)
        queue.asyncAfter(deadline: .now() + .milliseconds(100)) { [weak self] in
            guard let self, pausedListeners.remove(fd) != nil,
                  let listener = listeners.first(where: { $0.fd == fd }) else { return }
            listener.source.resume()
        }
    }

    /// At the cap, a new connection (a scrape, say) is worth more than one
    /// that is owed nothing: close one whose peer has gone first, then one
    /// with nothing waiting to be read, and among those the one idle longest;
    /// one whose request sits unread in the socket goes last. False when
    /// every connection is owed a response.
    private func shedOne() -> Bool {
        let candidates = connections.values.filter(\.isSheddable)
        guard !candidates.isEmpty else { return false }
        let readiness = Socket.readiness(candidates.map(\.fd))
        let victim = candidates.min { a, b in
            let (rankA, rankB) = (a.sheddingRank(readiness[a.fd]), b.sheddingRank(readiness[b.fd]))
            return rankA != rankB ? rankA < rankB : a.lastActivity < b.lastActivity
        }!
        stats.withLock { $0.connectionsShed += 1 }
        victim.close()
        return true
    }

    private func reject(_ fd: Int32) {
        stats.withLock { $0.connectionsRejected += 1 }
        let bytes = serialized(HTTPResponse(status: 503, text: "too many connections\n"), keepAlive: false, omitBody: false)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        close(fd)
    }

    // MARK: deadlines

    /// The sweeper fires at the earliest of the connections' deadlines and
    /// at no other time: an idle daemon, or one whose scraper keeps its
    /// connection open between scrapes, wakes only to sample and to answer.
    /// (A 250 ms timer woke Dispatch's threads four times a second, 5 % of a
    /// daemon's CPU at a 100 ms interval and most of its wakes at the
    /// default 5 s.) A deadline that moves later lets the sweeper fire early
    /// once, find nothing due, and wait for the new earliest.
    func deadlineSet(_ deadline: DispatchTime) {
        if stopped { return }  // a connection closing after `stop` sets no timer that would outlive the server
        if let next = sweepAt, next <= deadline { return }
        let timer = sweeper ?? makeSweeper()
        timer.schedule(deadline: deadline, leeway: .milliseconds(50))
        sweepAt = deadline
    }

    private func makeSweeper() -> any DispatchSourceTimer {
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.setEventHandler { [unowned self] in sweep() }
        timer.resume()
        sweeper = timer
        return timer
    }

    private func sweep() {
        sweepAt = nil
        let now = DispatchTime.now()
        for connection in connections.values where connection.deadline <= now {
            // A client that keeps its side open after our last response is not late: it is done.
            if !connection.isLingering { stats.withLock { $0.connectionsTimedOut += 1 } }
            connection.timeOut()
        }
        sweeps += 1
        if let next = connections.values.lazy.map(\.deadline).min() { deadlineSet(next) }
    }

    // MARK: called by connections (on `queue`)

    func closed(_ fd: Int32) {
        connections[fd] = nil
        if connections.isEmpty {
            sweeper?.cancel()
            (sweeper, sweepAt) = (nil, nil)
        }
    }

    /// Whether the sweeper is set to fire, and how many times it has (tests).
    var isSweeping: Bool { queue.sync { sweepAt != nil } }
    var sweepsRun: Int { queue.sync { sweeps } }
    var serverLimits: HTTPServerLimits { limits }
    var serverQueue: DispatchQueue { queue }

    func respond(to request: HTTPRequest) -> HTTPResponse {
        stats.withLock { $0.requests += 1 }
        return handler(request)
    }

    func isPageRequest(_ request: HTTPRequest) -> Bool { isPage(request) }

    enum PageRender {
        case queued
        case refused(HTTPResponse)
    }

    /// Renders a page off this queue; `then` gets the response back on it.
    func renderPage(_ request: HTTPRequest, then: @escaping (HTTPResponse) -> Void) -> PageRender {
        guard pendingPages < maxPendingPages else {
            return .refused(HTTPResponse(status: 503, text: "too many pages being rendered\n", headers: [("Retry-After", "1")]))
        }
        pendingPages += 1
        stats.withLock { $0.requests += 1 }
        let callback = OnServerQueue(then)
        pageQueue.async { [self] in
            let response = handler(request)
            queue.async { [self] in
                pendingPages -= 1
                callback.value(response)
            }
        }
        return .queued
    }

    /// Every response, the server's own refusals among them, carries the
    /// configured headers (`X-Content-Type-Options: nosniff` by default).
    func serialized(_ response: HTTPResponse, keepAlive: Bool, omitBody: Bool) -> [UInt8] {
        var response = response
        response.headers += security.headers
        return response.serialized(keepAlive: keepAlive, omitBody: omitBody)
    }

    func countBadRequest() { stats.withLock { $0.badRequests += 1 } }
    func countHandshakeFailure() { stats.withLock { $0.tlsHandshakeFailures += 1 } }

    enum Admission {
        case admitted
        case refused(HTTPResponse)
        case checking
    }

    /// Whether `request` may be answered. When bcrypt must run, it runs off this
    /// queue and `then` is called back on it with the answer.
    func admit(_ request: HTTPRequest, then: @escaping (Admission) -> Void) -> Admission {
        guard let authenticator = security.authenticator, !security.excludedPaths.contains(request.path) else { return .admitted }
        switch authenticator.decide(authorization: request.header("Authorization")) {
        case .granted: return .admitted
        case .refused: return .refused(unauthorized())
        case .needsCheck(let credentials):
            guard pendingAuthChecks < maxPendingAuthChecks else {
                return .refused(HTTPResponse(status: 503, text: "too many credential checks in progress\n",
                                             headers: [("Retry-After", "1")]))
            }
            pendingAuthChecks += 1
            let callback = OnServerQueue(then)
            authQueue.async { [self] in
                let granted = authenticator.verify(credentials)
                queue.async { [self] in
                    pendingAuthChecks -= 1
                    callback.value(granted ? .admitted : .refused(unauthorized()))
                }
            }
            return .checking
        }
    }

    private func unauthorized() -> HTTPResponse {
        stats.withLock { $0.authenticationFailures += 1 }
        return HTTPResponse(status: 401, text: "Unauthorized\n",
                            headers: [("WWW-Authenticate", "Basic realm=\"slabwatch\"")])
    }
}

/// A value that crosses to another queue and back but is only used on the
/// server's queue (a connection's continuation).
private struct OnServerQueue<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
