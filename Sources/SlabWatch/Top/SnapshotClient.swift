import Glibc
import SlabWatchCore

/// Fetches `/snapshot` from a running daemon for `slabwatch top --url`:
/// plain HTTP/1.1 over a socket, one request per connection, bounded in
/// time (`deadlineSeconds` for the whole exchange) and size (what
/// `HTTPResponseReader` and `JSONValue` accept). Server text in an error is
/// made safe for the terminal. (A daemon behind TLS or basic auth is read on
/// its node, or through `ssh -L`.)
struct SnapshotClient {
    let host: String
    let port: String
    let display: String

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// `http://HOST[:PORT][/]`; the port defaults to slabwatch's.
    init(url: String) throws(Failure) {
        guard url.hasPrefix("http://") else {
            throw Failure(description: "--url: '\(url)' must start with http:// (for a daemon behind TLS, run top on its node or through ssh -L)")
        }
        var rest = url.dropFirst(7)
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty, !rest.contains("/") else { throw Failure(description: "--url: give http://HOST:PORT, without a path") }
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            port = after.hasPrefix(":") ? String(after.dropFirst()) : "10077"
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            port = String(rest[rest.index(after: colon)...])
        } else {
            host = String(rest)
            port = "10077"
        }
        guard !host.isEmpty, let number = Int(port), (1...65535).contains(number) else {
            throw Failure(description: "--url: '\(url)' has no usable host and port")
        }
        display = url
    }

    /// How long one fetch may take, from connecting to the last byte of the
    /// answer: a server that drips a byte at a time cannot hold top longer.
    static let deadlineSeconds = 10

    func fetch() throws(Failure) -> SnapshotReader.Snapshot {
        let body = try get("/snapshot")
        do { return try SnapshotReader.parse(body) } catch { throw Failure(description: "\(display)/snapshot: \(error)") }
    }

    private func get(_ path: String) throws(Failure) -> [UInt8] {
        let deadline = Deadline(seconds: Self.deadlineSeconds)
        let fd = try connect(before: deadline)
        defer { close(fd) }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: \(host.contains(":") ? "[\(host)]" : host):\(port)\r\nConnection: close\r\n\r\n".utf8)
        try send(request, on: fd, before: deadline)
        let response = try receive(on: fd, before: deadline)
        guard response.status == 200 else {
            var text = Substring(String(decoding: response.body.prefix(200), as: UTF8.self))
            while text.last?.isWhitespace == true { text = text.dropLast() }  // its own newline is no control to show
            throw Failure(description: "\(display) answered \(response.status): \(TerminalText.printable(text))")
        }
        return response.body
    }

    private func send(_ request: [UInt8], on fd: Int32, before deadline: Deadline) throws(Failure) {
        var offset = 0
        while offset < request.count {
            try wait(for: Int16(POLLOUT), on: fd, before: deadline, failing: "could not send the request")
            let n = request.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n > 0 { offset += n } else if n < 0, errno == EINTR || errno == EAGAIN { continue } else {
                throw Failure(description: "\(display): send failed: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Reads until the response is complete (by its length or its last
    /// chunk: the server may keep the connection open), the server closes,
    /// or the deadline passes.
    private func receive(on fd: Int32, before deadline: Deadline) throws(Failure) -> HTTPResponseReader.Response {
        var reader = HTTPResponseReader()
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            try wait(for: Int16(POLLIN), on: fd, before: deadline, failing: "no complete answer")
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                guard errno == EINTR || errno == EAGAIN else { throw Failure(description: "\(display): \(String(cString: strerror(errno)))") }
                continue
            }
            do {
                if n == 0 { return try reader.finish() }
                if let response = try reader.take(buffer[0..<n]) { return response }
            } catch { throw Failure(description: "\(display): \(error.description)") }
        }
    }

    /// Waits until `fd` is ready for `events`; once the deadline has passed,
    /// fails saying `what` ("no complete answer") happened in time.
    private func wait(for events: Int16, on fd: Int32, before deadline: Deadline, failing what: String) throws(Failure) {
        while true {
            let milliseconds = deadline.remainingMilliseconds
            guard milliseconds > 0 else {
                throw Failure(description: "\(display): \(what) within \(Self.deadlineSeconds) s")
            }
            var descriptor = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&descriptor, 1, milliseconds)
            if ready > 0 { return }
            if ready < 0 && errno != EINTR { throw Failure(description: "\(display): \(String(cString: strerror(errno)))") }
        }
    }

    private func connect(before deadline: Deadline) throws(Failure) -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, port, &hints, &list)
        guard status == 0, let first = list else {
            throw Failure(description: "\(display): cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var lastError: Int32 = 0
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            // Non-blocking: every wait is a poll bounded by the deadline.
            let kind = info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
            let fd = socket(info.pointee.ai_family, kind, info.pointee.ai_protocol)
            guard fd >= 0 else { lastError = errno; continue }
            if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return fd }
            lastError = errno
            if lastError == EINPROGRESS {
                do { try wait(for: Int16(POLLOUT), on: fd, before: deadline, failing: "could not connect") } catch {
                    close(fd)  // top keeps polling: a refresh that fails must not leak its socket
                    throw error
                }
                var socketError: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &socketError, &length)
                if socketError == 0 { return fd }
                lastError = socketError
            }
            close(fd)
        }
        throw Failure(description: "\(display): cannot connect: \(String(cString: strerror(lastError)))")
    }
}

/// A point on the monotonic clock that a fetch must finish by.
private struct Deadline {
    let nanoseconds: UInt64

    init(seconds: Int) { nanoseconds = Clock.monotonicNanoseconds() + UInt64(seconds) * 1_000_000_000 }

    /// Rounded up, so a poll never returns just before the deadline and spins.
    var remainingMilliseconds: Int32 {
        let now = Clock.monotonicNanoseconds()
        return now >= nanoseconds ? 0 : Int32((nanoseconds - now + 999_999) / 1_000_000)
    }
}
