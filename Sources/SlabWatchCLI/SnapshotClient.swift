import Glibc
import SlabWatchCore

/// Fetches `/snapshot` from a running daemon for `slabwatch top --url`:
/// plain HTTP/1.1 over a socket, one request per connection, bounded in
/// time and size. (A daemon behind TLS or basic auth is read on its node,
/// or through `ssh -L`.)
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

    func fetch() throws(Failure) -> SnapshotReader.Snapshot {
        let body = try get("/snapshot")
        do { return try SnapshotReader.parse(body) } catch { throw Failure(description: "\(display)/snapshot: \(error)") }
    }

    private func get(_ path: String) throws(Failure) -> [UInt8] {
        let fd = try connect()
        defer { close(fd) }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: \(host.contains(":") ? "[\(host)]" : host):\(port)\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else {
            throw Failure(description: "\(display): send failed: \(String(cString: strerror(errno)))")
        }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { response += buffer[0..<n] } else if n == 0 { break } else if errno == EINTR { continue } else {
                throw Failure(description: "\(display): \(errno == EAGAIN ? "no answer in 5 s" : String(cString: strerror(errno)))")
            }
            guard response.count < 64 << 20 else { throw Failure(description: "\(display): response larger than 64 MiB") }
        }
        return try Self.body(of: response, from: display)
    }

    /// The body of a complete `200` response with a Content-Length.
    static func body(of response: [UInt8], from display: String) throws(Failure) -> [UInt8] {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = response.indices.first(where: { response[$0...].starts(with: separator) }) else {
            throw Failure(description: "\(display): not an HTTP response")
        }
        let head = String(decoding: response[..<end], as: UTF8.self).split(separator: "\r\n")
        let status = head.first?.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        let body = Array(response[(end + 4)...])
        guard status == 200 else {
            throw Failure(description: "\(display) answered \(status): \(String(decoding: body.prefix(200), as: UTF8.self))")
        }
        let length = head.first { $0.lowercased().hasPrefix("content-length:") }.flatMap { Int($0.split(separator: ":")[1].trimmingPrefix(" ")) }
        guard let length, length <= body.count else { throw Failure(description: "\(display): response cut short") }
        return Array(body.prefix(length))
    }

    private func connect() throws(Failure) -> Int32 {
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
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), info.pointee.ai_protocol)
            guard fd >= 0 else { lastError = errno; continue }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 { return fd }
            lastError = errno
            close(fd)
        }
        throw Failure(description: "\(display): cannot connect: \(String(cString: strerror(lastError)))")
    }
}
