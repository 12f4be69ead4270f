import Dispatch
import Glibc

/// One client connection; every method runs on the server's queue.
final class Connection {
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
    /// When the server closes it unless something happens first; the
    /// server's sweeper is told of each new one (it fires by the earliest).
    private(set) var deadline: DispatchTime {
        didSet { server.deadlineSet(deadline) }
    }
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
