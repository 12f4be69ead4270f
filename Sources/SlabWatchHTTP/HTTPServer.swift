import Dispatch
import Glibc
public import Logging
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

/// Counters about the server itself; read with `HTTPServer.statistics`.
public struct HTTPServerStatistics: Sendable, Equatable {
    public var requests: UInt64 = 0
    public var connectionsAccepted: UInt64 = 0
    public var connectionsRejected: UInt64 = 0
    /// Idle or head-less connections closed to make room at the cap.
    public var connectionsShed: UInt64 = 0
    public var connectionsTimedOut: UInt64 = 0
    public var acceptErrors: UInt64 = 0
    public var badRequests: UInt64 = 0
    /// TLS handshakes that failed or did not finish (plain HTTP to a TLS port among them).
    public var tlsHandshakeFailures: UInt64 = 0
    /// Requests refused for missing or wrong credentials.
    public var authenticationFailures: UInt64 = 0
}

/// A small HTTP/1.1 server: keep-alive, `GET`/`HEAD` routing left to the
/// handler, no request bodies, bounded heads, deadlines and a connection cap.
///
/// All connection state lives on one serial queue; the handler runs there too,
/// so it must be fast and must not block (slabwatch's handler copies bytes
/// rendered once per sampler tick). Requests `isPage` picks (pages for people,
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
    fileprivate var receiveBuffer = [UInt8](repeating: 0, count: 16 * 1024)
    private var connections: [Int32: Connection] = [:]
    private var sweeper: (any DispatchSourceTimer)?
    private let stats = Mutex(HTTPServerStatistics())
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

    public var statistics: HTTPServerStatistics { stats.withLock { $0 } }

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
            for fd in fds { addListener(fd) }
            startSweeper()
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
            sweeper = nil
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

    private func startSweeper() {
        guard sweeper == nil else { return }
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + .milliseconds(250), repeating: .milliseconds(250), leeway: .milliseconds(50))
        timer.setEventHandler { [unowned self] in sweep() }
        sweeper = timer
        timer.resume()
    }

    private func sweep() {
        let now = DispatchTime.now()
        for connection in connections.values where connection.deadline < now {
            // A client that keeps its side open after our last response is not late: it is done.
            if !connection.isLingering { stats.withLock { $0.connectionsTimedOut += 1 } }
            connection.timeOut()
        }
    }

    // MARK: called by connections (on `queue`)

    fileprivate func closed(_ fd: Int32) { connections[fd] = nil }
    fileprivate var serverLimits: HTTPServerLimits { limits }
    fileprivate var serverQueue: DispatchQueue { queue }

    fileprivate func respond(to request: HTTPRequest) -> HTTPResponse {
        stats.withLock { $0.requests += 1 }
        return handler(request)
    }

    fileprivate func isPageRequest(_ request: HTTPRequest) -> Bool { isPage(request) }

    fileprivate enum PageRender {
        case queued
        case refused(HTTPResponse)
    }

    /// Renders a page off this queue; `then` gets the response back on it.
    fileprivate func renderPage(_ request: HTTPRequest, then: @escaping (HTTPResponse) -> Void) -> PageRender {
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
    fileprivate func serialized(_ response: HTTPResponse, keepAlive: Bool, omitBody: Bool) -> [UInt8] {
        var response = response
        response.headers += security.headers
        return response.serialized(keepAlive: keepAlive, omitBody: omitBody)
    }

    fileprivate func countBadRequest() { stats.withLock { $0.badRequests += 1 } }
    fileprivate func countHandshakeFailure() { stats.withLock { $0.tlsHandshakeFailures += 1 } }

    fileprivate enum Admission {
        case admitted
        case refused(HTTPResponse)
        case checking
    }

    /// Whether `request` may be answered. When bcrypt must run, it runs off this
    /// queue and `then` is called back on it with the answer.
    fileprivate func admit(_ request: HTTPRequest, then: @escaping (Admission) -> Void) -> Admission {
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

/// One client connection; every method runs on the server's queue.
private final class Connection {
    let fd: Int32
    private unowned let server: HTTPServer
    private let readSource: any DispatchSourceRead
    private var writeSource: (any DispatchSourceWrite)?
    /// nil on a plain-HTTP server, and after a plain request reached a TLS port.
    private var tls: TLSStream?
    private var handshaking: Bool
    /// OpenSSL needs the socket writable before it can go on reading (the
    /// handshake's reply, a TLS 1.3 key update).
    private var readNeedsWritable = false
    private var input: [UInt8] = []
    private var scanned = 0  // bytes of `input` already searched for the end of the head
    private var output: [UInt8] = []
    private var written = 0
    private var closeAfterWrite = false
    private var readSuspended = false
    private var writeSuspended = false
    private var openSources = 1
    private var isClosed = false
    /// A request's answer is being prepared off the server's queue (its
    /// credentials checked, or its page rendered).
    private var awaitingAnswer = false
    /// The last response is sent and our side shut: what still arrives is
    /// read and dropped until the client closes (see `lingerThenClose`).
    private var lingering = false
    /// Closed, or only waiting for the client to close.
    private var isFinished: Bool { isClosed || lingering }
    var isLingering: Bool { lingering }
    /// The client shut down its side: answer what it sent, then close.
    private var peerFinished = false
    private(set) var deadline: DispatchTime
    /// When bytes last arrived or a response was last finished.
    private(set) var lastActivity: DispatchTime = .now()

    /// Between requests, still receiving a head, or still in its TLS handshake:
    /// nothing is owed to it yet, so it can be shed to make room for a new connection.
    var isSheddable: Bool { output.isEmpty && !isClosed && !awaitingAnswer }

    /// Which sheddable connection goes first (lowest), from what its socket
    /// holds now: 0 when the peer has gone and left nothing to answer (or we
    /// only wait for it to go), 1 when it has gone after sending something
    /// (half a request, most often; a whole one followed by a half-close at
    /// times), 2 when it is open with nothing waiting to be read (idle or
    /// silent), 3 when bytes wait (a request that came in the same burst as
    /// the new connection, most likely).
    func sheddingRank(_ readiness: Socket.Readiness?) -> Int {
        guard !lingering, let readiness else { return 0 }
        if readiness.peerGone {
            // A handshake cannot finish once the client has stopped sending.
            return handshaking || !readiness.hasPendingBytes ? 0 : 1
        }
        return readiness.hasPendingBytes ? 3 : 2
    }

    init(fd: Int32, server: HTTPServer, tls context: TLSContext?) {
        self.fd = fd
        self.server = server
        readSource = DispatchSource.makeReadSource(fileDescriptor: fd, queue: server.serverQueue)
        // The handshake and the first head share one deadline, as Go's ReadHeaderTimeout does.
        deadline = .now() + server.serverLimits.headerTimeoutSeconds
        tls = context.flatMap { TLSStream(context: $0, fd: fd) }
        handshaking = tls != nil
        input.reserveCapacity(1024)
    }

    func start() {
        readSource.setEventHandler { [self] in readAvailable() }
        readSource.setCancelHandler { [self] in sourceCancelled() }
        readSource.resume()
    }

    private enum Received { case bytes(Int), wouldBlock, needsWritable, closed, failed }

    private func receive() -> Received {
        if let tls {
            switch server.receiveBuffer.withUnsafeMutableBytes({ tls.read(into: $0) }) {
            case .bytes(let n): return .bytes(n)
            case .wantRead: return .wouldBlock
            case .wantWrite: return .needsWritable
            case .closed: return .closed
            case .failed: return .failed
            }
        }
        while true {
            let n = server.receiveBuffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { return .bytes(n) }
            if n == 0 { return .closed }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: return .failed  // a reset or other error: nobody is left to answer
            }
        }
    }

    private func readAvailable() {
        if lingering { drain(); return }
        if handshaking && !continueHandshake() { return }
        reading: while true {
            switch receive() {
            case .bytes(let n):
                lastActivity = .now()
                if input.isEmpty { deadline = .now() + server.serverLimits.headerTimeoutSeconds }
                input.append(contentsOf: server.receiveBuffer[0..<n])
                if input.count > server.serverLimits.maxHeaderBytes + 4096 { break reading }
            case .wouldBlock: break reading
            case .needsWritable:
                readNeedsWritable = true
                processInput()
                if output.isEmpty && !isClosed { waitUntilWritable(extendingDeadline: false) }
                return
            case .closed: finishAfterAnswering(); return
            case .failed: close(); return
            }
        }
        processInput()
    }

    /// Drives the TLS handshake; true once it is done and requests can be read.
    private func continueHandshake() -> Bool {
        guard let tls else { return true }
        if refusePlainHTTP() { return false }
        switch tls.handshake() {
        case .done:
            handshaking = false
            return true
        case .wantRead:
            return false
        case .wantWrite:
            readNeedsWritable = true
            waitUntilWritable(extendingDeadline: false)
            return false
        case .failed:
            server.countHandshakeFailure()
            close()
            return false
        }
    }

    /// A TLS record starts with 0x16; a plain request to the TLS port gets a
    /// plain 400 saying so (as Go's servers answer), not a silent reset.
    private func refusePlainHTTP() -> Bool {
        var first: UInt8 = 0
        let n = recv(fd, &first, 1, Int32(MSG_PEEK))
        guard n == 1, first != 0x16, (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(first) else { return false }
        server.countHandshakeFailure()
        tls = nil
        handshaking = false
        fail(400, "client sent an HTTP request to an HTTPS server\n")
        return true
    }

    /// EOF after a request (`shutdown(SHUT_WR)`) still gets its answers: stop
    /// reading (the source would fire for ever at EOF), answer every complete
    /// request received, then close.
    private func finishAfterAnswering() {
        peerFinished = true
        if !readSuspended { readSuspended = true; readSource.suspend() }
        processInput()
        if output.isEmpty && !awaitingAnswer { close() }
    }

    /// Answers every complete request in the buffer, in order (pipelining).
    private func processInput() {
        while !isFinished && output.isEmpty && !awaitingAnswer {
            guard let headEnd = findEndOfHead() else {
                if input.count > server.serverLimits.maxHeaderBytes {
                    fail(431, "request head larger than \(server.serverLimits.maxHeaderBytes) bytes\n")
                }
                return
            }
            if headEnd.head > server.serverLimits.maxHeaderBytes {
                fail(431, "request head larger than \(server.serverLimits.maxHeaderBytes) bytes\n")
                return
            }
            let head = input[0..<headEnd.head]
            input.removeFirst(headEnd.next)
            scanned = 0
            handle(head: head)
        }
    }

    private func handle(head: ArraySlice<UInt8>) {
        let request: HTTPRequest
        do { request = try RequestHeadParser.parse(head) } catch {
            switch error {
            case .unsupportedVersion: fail(505, "only HTTP/1.0 and HTTP/1.1 are supported\n")
            case .malformed(let why): fail(400, "bad request: \(why)\n")
            }
            return
        }
        if request.header("Transfer-Encoding") != nil
            || (request.header("Content-Length").map { $0 != "0" } ?? false) {
            fail(413, "request bodies are not accepted\n")
            return
        }
        let admission = server.admit(request) { [self] admission in
            resume { answer(request, admission) }
        }
        if case .checking = admission {
            awaitAnswer()
            return
        }
        answer(request, admission)
    }

    private func answer(_ request: HTTPRequest, _ admission: HTTPServer.Admission) {
        switch admission {
        case .admitted where server.isPageRequest(request):
            let render = server.renderPage(request) { [self] response in
                resume { reply(request, response) }
            }
            switch render {
            case .queued: awaitAnswer()
            case .refused(let busy): reply(request, busy)
            }
        case .admitted: reply(request, server.respond(to: request))
        case .refused(let refusal): reply(request, refusal)
        case .checking: return
        }
    }

    private func reply(_ request: HTTPRequest, _ response: HTTPResponse) {
        let keepAlive = request.wantsKeepAlive
        send(server.serialized(response, keepAlive: keepAlive, omitBody: request.method == "HEAD"), thenClose: !keepAlive)
    }

    /// Holds the connection (no further request is read) until an answer
    /// prepared off the queue comes back through `resume`.
    private func awaitAnswer() {
        awaitingAnswer = true
        deadline = .now() + server.serverLimits.writeTimeoutSeconds
    }

    /// Back on the server's queue with an answer: send it, then go on with
    /// what arrived meanwhile.
    private func resume(_ deliver: () -> Void) {
        awaitingAnswer = false
        guard !isFinished else { return }
        deliver()
        guard output.isEmpty, !isFinished else { return }
        processInput()
        if peerFinished && output.isEmpty && !awaitingAnswer { close() }
    }

    /// Finds `\r\n\r\n` (or `\n\n`), resuming where the last search stopped so
    /// a head trickling in byte by byte is scanned once in total.
    private func findEndOfHead() -> (head: Int, next: Int)? {
        var i = max(0, scanned - 3)
        while i < input.count {
            if input[i] == 0x0A {
                if i + 1 < input.count, input[i + 1] == 0x0A { return (i, i + 2) }
                if i + 2 < input.count, input[i + 1] == 0x0D, input[i + 2] == 0x0A {
                    return (i > 0 && input[i - 1] == 0x0D ? i - 1 : i, i + 3)
                }
            }
            i += 1
        }
        scanned = input.count
        return nil
    }

    private func fail(_ status: Int, _ message: String) {
        server.countBadRequest()
        send(server.serialized(HTTPResponse(status: status, text: message), keepAlive: false, omitBody: false),
             thenClose: true)
    }

    // MARK: writing

    private func send(_ bytes: [UInt8], thenClose: Bool) {
        output = bytes
        written = 0
        closeAfterWrite = thenClose
        flush()
    }

    private enum Sent { case bytes(Int), wouldBlock, failed }

    private func transmit() -> Sent {
        if let tls {
            let result = output.withUnsafeBytes { tls.write(UnsafeRawBufferPointer(rebasing: $0[written...])) }
            switch result {
            case .bytes(let n): return .bytes(n)
            case .wantWrite: return .wouldBlock
            case .wantRead, .closed, .failed: return .failed  // renegotiation is off: nothing to wait for
            }
        }
        while true {
            let n = output.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + written, $0.count - written, Int32(MSG_NOSIGNAL))
            }
            if n > 0 { return .bytes(n) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return .wouldBlock }
            return .failed
        }
    }

    private func flush() {
        while written < output.count {
            switch transmit() {
            case .bytes(let n): written += n
            case .wouldBlock: waitUntilWritable(extendingDeadline: true); return
            case .failed: close(); return
            }
        }
        output = []
        lastActivity = .now()
        if closeAfterWrite { lingerThenClose(); return }
        deadline = .now() + server.serverLimits.idleTimeoutSeconds
        if peerFinished {
            processInput()
            if output.isEmpty && !awaitingAnswer { close() }
            return
        }
        if readSuspended { readSuspended = false; readSource.resume() }
        if !input.isEmpty { processInput() }
    }

    /// Waits for room in the socket; reading pauses meanwhile. A response's
    /// writes get `web.write-timeout`; a handshake keeps its own deadline.
    private func waitUntilWritable(extendingDeadline: Bool) {
        if extendingDeadline { deadline = .now() + server.serverLimits.writeTimeoutSeconds }
        if !readSuspended { readSuspended = true; readSource.suspend() }
        if writeSource == nil {
            let source = DispatchSource.makeWriteSource(fileDescriptor: fd, queue: server.serverQueue)
            source.setEventHandler { [self] in
                writeSuspended = true
                writeSource?.suspend()
                writable()
            }
            source.setCancelHandler { [self] in sourceCancelled() }
            openSources += 1
            writeSource = source
            source.resume()
        } else if writeSuspended {
            writeSuspended = false
            writeSource?.resume()
        }
    }

    private func writable() {
        guard readNeedsWritable else { flush(); return }
        readNeedsWritable = false
        if readSuspended { readSuspended = false; readSource.resume() }
        readAvailable()
    }

    // MARK: closing

    func timeOut() {
        if output.isEmpty && !input.isEmpty && !isFinished && !handshaking {
            server.countBadRequest()
            send(server.serialized(HTTPResponse(status: 408, text: "request head not received in time\n"),
                                   keepAlive: false, omitBody: false), thenClose: true)
            if !output.isEmpty { close() }  // a client that reads nothing does not get to linger
            return
        }
        if handshaking { server.countHandshakeFailure() }
        close()
    }

    /// Closing with bytes unread in the receive buffer makes the kernel send a
    /// reset, and a reset can destroy the response before the client reads it
    /// (a 400 for plain HTTP to the TLS port, a 413 with its body unread). So
    /// after the last response: send FIN (after close_notify on TLS), then read
    /// and drop what still arrives until the client closes, for a second at
    /// most (as Go's server and Apache's lingering close do).
    private func lingerThenClose() {
        guard !peerFinished else { close(); return }
        tls?.shutdown()
        tls = nil  // what still arrives is dropped unread: no need to decrypt it
        lingering = true
        Glibc.shutdown(fd, Int32(SHUT_WR))
        deadline = .now() + min(1, server.serverLimits.idleTimeoutSeconds)
        if writeSource != nil, !writeSuspended { writeSuspended = true; writeSource?.suspend() }
        if readSuspended { readSuspended = false; readSource.resume() }
        drain()
    }

    /// Reads and drops what arrived (64 KiB at most per call, so a client that
    /// never stops sending cannot hold the queue); closes at EOF or on an error.
    private func drain() {
        for _ in 0..<4 {
            let n = server.receiveBuffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
            close()
            return
        }
    }

    /// Cancels the sources; the descriptor is closed once both have finished,
    /// as Dispatch requires.
    func close() {
        guard !isClosed else { return }
        isClosed = true
        tls?.shutdown()
        if readSuspended { readSuspended = false; readSource.resume() }
        readSource.cancel()
        if let writeSource {
            if writeSuspended { writeSuspended = false; writeSource.resume() }
            writeSource.cancel()
        }
        server.closed(fd)
    }

    private func sourceCancelled() {
        openSources -= 1
        if openSources == 0 { Glibc.close(fd) }
    }
}
