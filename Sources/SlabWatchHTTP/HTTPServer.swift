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
/// rendered once per sampler tick). `start` and `stop` may be called from any thread.
public final class HTTPServer: @unchecked Sendable {
    public typealias Handler = @Sendable (HTTPRequest) -> HTTPResponse

    private let queue = DispatchQueue(label: "slabwatch.http")
    private let limits: HTTPServerLimits
    private let logger: Logger
    private let handler: Handler
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

    public init(limits: HTTPServerLimits, logger: Logger, handler: @escaping Handler) {
        self.limits = limits
        self.logger = logger
        self.handler = handler
    }

    public var statistics: HTTPServerStatistics { stats.withLock { $0 } }

    /// TLS, credentials and headers for connections accepted from now on
    /// (and for every request's credentials check).
    public func setSecurity(_ security: WebSecurity) {
        queue.sync { self.security = security }
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
        while true {
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
    /// that sits idle or has not sent a whole head: close the one idle longest.
    /// False when every connection is owed a response.
    private func shedOne() -> Bool {
        guard let victim = connections.values.filter(\.isSheddable).min(by: { $0.lastActivity < $1.lastActivity })
        else { return false }
        stats.withLock { $0.connectionsShed += 1 }
        victim.close()
        return true
    }

    private func reject(_ fd: Int32) {
        stats.withLock { $0.connectionsRejected += 1 }
        let bytes = HTTPResponse(status: 503, text: "too many connections\n")
            .serialized(keepAlive: false, omitBody: false)
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
            stats.withLock { $0.connectionsTimedOut += 1 }
            connection.timeOut()
        }
    }

    // MARK: called by connections (on `queue`)

    fileprivate func closed(_ fd: Int32) { connections[fd] = nil }
    fileprivate var serverLimits: HTTPServerLimits { limits }
    fileprivate var serverQueue: DispatchQueue { queue }

    fileprivate func respond(to request: HTTPRequest) -> HTTPResponse {
        stats.withLock { $0.requests += 1 }
        var response = handler(request)
        response.headers += security.headers
        return response
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
                                             headers: [("Retry-After", "1")] + security.headers))
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
                            headers: [("WWW-Authenticate", "Basic realm=\"slabwatch\"")] + security.headers)
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
    /// A request is waiting for its credentials to be checked.
    private var checkingCredentials = false
    /// The client shut down its side: answer what it sent, then close.
    private var peerFinished = false
    private(set) var deadline: DispatchTime
    /// When bytes last arrived or a response was last finished.
    private(set) var lastActivity: DispatchTime = .now()

    /// Between requests, still receiving a head, or still in its TLS handshake:
    /// nothing is owed to it yet, so it can be shed to make room for a new connection.
    var isSheddable: Bool { output.isEmpty && !isClosed && !checkingCredentials }

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
        if output.isEmpty && !checkingCredentials { close() }
    }

    /// Answers every complete request in the buffer, in order (pipelining).
    private func processInput() {
        while !isClosed && output.isEmpty && !checkingCredentials {
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
            checkingCredentials = false
            guard !isClosed else { return }
            answer(request, admission)
            if output.isEmpty { resumeAfterCheck() }
        }
        if case .checking = admission {
            checkingCredentials = true
            deadline = .now() + server.serverLimits.writeTimeoutSeconds
            return
        }
        answer(request, admission)
    }

    private func answer(_ request: HTTPRequest, _ admission: HTTPServer.Admission) {
        let keepAlive = request.wantsKeepAlive
        let response: HTTPResponse
        switch admission {
        case .admitted: response = server.respond(to: request)
        case .refused(let refusal): response = refusal
        case .checking: return
        }
        send(response.serialized(keepAlive: keepAlive, omitBody: request.method == "HEAD"), thenClose: !keepAlive)
    }

    /// After an answer that was sent whole at once: go on with what arrived meanwhile.
    private func resumeAfterCheck() {
        if peerFinished { processInput(); if output.isEmpty && !checkingCredentials { close() }; return }
        processInput()
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
        send(HTTPResponse(status: status, text: message).serialized(keepAlive: false, omitBody: false),
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
        if closeAfterWrite { close(); return }
        deadline = .now() + server.serverLimits.idleTimeoutSeconds
        if peerFinished {
            processInput()
            if output.isEmpty && !checkingCredentials { close() }
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
        if output.isEmpty && !input.isEmpty && !isClosed && !handshaking {
            server.countBadRequest()
            send(HTTPResponse(status: 408, text: "request head not received in time\n")
                .serialized(keepAlive: false, omitBody: false), thenClose: true)
            if !isClosed { close() }
            return
        }
        if handshaking { server.countHandshakeFailure() }
        close()
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
