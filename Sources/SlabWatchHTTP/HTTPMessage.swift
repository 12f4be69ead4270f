/// A parsed HTTP/1.x request head. Bodies are never read: the server refuses them.
public struct HTTPRequest: Sendable, Equatable {
    public var method: String
    /// The path part of the request target, e.g. `/metrics`.
    public var path: String
    /// What followed `?` in the request target, without it; nil when absent.
    public var query: String?
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    /// Header fields in arrival order; names as sent.
    public var headers: [(name: String, value: String)]

    public static func == (a: HTTPRequest, b: HTTPRequest) -> Bool {
        a.method == b.method && a.path == b.path && a.query == b.query
            && a.minorVersion == b.minorVersion
            && a.headers.elementsEqual(b.headers) { $0.name == $1.name && $0.value == $1.value }
    }

    /// The first value of a header, matched case-insensitively.
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }

    /// The query's `name=value` pairs, percent- and `+`-decoded; nil when malformed.
    public var queryItems: [(name: String, value: String)]? {
        guard let query, !query.isEmpty else { return [] }
        var items: [(String, String)] = []
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = Self.percentDecoded(parts[0]),
                  let value = Self.percentDecoded(parts.count > 1 ? parts[1] : "") else { return nil }
            items.append((name, value))
        }
        return items
    }

    static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"): bytes.append(0x20)
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
                bytes.append(high << 4 | low)
            default: bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Parses a request head (the bytes before the blank line), as the server
    /// does; exposed for the fuzzer. - Throws: `RequestHeadParser.Failure`.
    public static func parse(head: ArraySlice<UInt8>) throws -> HTTPRequest {
        try RequestHeadParser.parse(head)
    }

    /// HTTP/1.1 keeps the connection unless told `close`; 1.0 only with `keep-alive`.
    public var wantsKeepAlive: Bool {
        let connection = header("Connection")?.lowercased() ?? ""
        return minorVersion >= 1 ? !connection.contains("close") : connection.contains("keep-alive")
    }
}

/// A complete response; the server adds `Content-Length`, `Date`-free framing and
/// `Connection`, and sends head and body in one write.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]
    public var headers: [(name: String, value: String)]

    public init(status: Int, contentType: String = "text/plain; charset=utf-8", body: [UInt8] = [],
                headers: [(name: String, value: String)] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.headers = headers
    }

    public init(status: Int, text: String, headers: [(name: String, value: String)] = []) {
        self.init(status: status, body: Array(text.utf8), headers: headers)
    }

    /// Head and (unless `omitBody`, for HEAD) body as the bytes to send.
    func serialized(keepAlive: Bool, omitBody: Bool) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(Self.reason(status))\r\n"
        head += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
        for header in headers { head += "\(header.name): \(header.value)\r\n" }
        head += keepAlive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n"
        var bytes = Array(head.utf8)
        if !omitBody {
            bytes.reserveCapacity(bytes.count + body.count)
            bytes.append(contentsOf: body)
        }
        return bytes
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 413: "Content Too Large"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        default: "Status"
        }
    }
}

/// Parses a request head (everything before the blank line) in one linear pass.
enum RequestHeadParser {
    enum Failure: Error, Equatable {
        case malformed(String)
        case unsupportedVersion
    }

    static let maxHeaderCount = 100

    /// - Parameter head: the bytes before `\r\n\r\n` (line ends `\r\n` or bare `\n`).
    static func parse(_ head: ArraySlice<UInt8>) throws(Failure) -> HTTPRequest {
        var lines = head.split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
            line.last == 0x0D ? line.dropLast() : line
        }[...]
        guard let requestLine = lines.popFirst() else { throw .malformed("empty request") }
        var request = try parseRequestLine(requestLine)
        guard lines.count <= maxHeaderCount else { throw .malformed("more than \(maxHeaderCount) header fields") }
        for line in lines {
            request.headers.append(try parseHeaderLine(line))
        }
        try checkFraming(request)
        return request
    }

    /// RFC 9112 §3.2 and §6.3: an HTTP/1.1 request has exactly one Host; a
    /// request with two Content-Lengths, a non-numeric one, or both
    /// Content-Length and Transfer-Encoding is framed ambiguously (the shapes
    /// request smuggling uses) and is refused rather than guessed at.
    private static func checkFraming(_ request: HTTPRequest) throws(Failure) {
        func count(_ name: String) -> Int { request.headers.count { $0.name.lowercased() == name } }
        let hosts = count("host")
        if hosts > 1 || (request.minorVersion >= 1 && hosts == 0) {
            throw .malformed("an HTTP/1.1 request needs exactly one Host header")
        }
        let lengths = request.headers.filter { $0.name.lowercased() == "content-length" }
        if lengths.count > 1 { throw .malformed("more than one Content-Length") }
        if let length = lengths.first {
            guard !length.value.isEmpty, length.value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                throw .malformed("Content-Length is not a number")
            }
            if count("transfer-encoding") > 0 { throw .malformed("both Content-Length and Transfer-Encoding") }
        }
    }

    private static func parseRequestLine(_ line: ArraySlice<UInt8>) throws(Failure) -> HTTPRequest {
        let parts = line.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3, let method = token(parts[0]), !parts[1].isEmpty,
              parts[1].allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { throw .malformed("request line is not 'METHOD target HTTP/1.x'") }
        let version = parts[2]
        guard version.starts(with: Array("HTTP/".utf8)) else {
            throw .malformed("request line is not 'METHOD target HTTP/1.x'")
        }
        let minor: Int
        switch String(decoding: version, as: UTF8.self) {
        case "HTTP/1.1": minor = 1
        case "HTTP/1.0": minor = 0
        default: throw .unsupportedVersion
        }
        let target = try originForm(String(decoding: parts[1], as: UTF8.self))
        let pathEnd = target.firstIndex(of: "?")
        return HTTPRequest(
            method: method, path: String(target[..<(pathEnd ?? target.endIndex)]),
            query: pathEnd.map { String(target[target.index(after: $0)...]) },
            minorVersion: minor, headers: [])
    }

    /// The path and query of an origin-form target (`/metrics?x`), or of an
    /// absolute-form one (`http://host:10077/metrics`, which proxies send and
    /// RFC 9112 §3.2.2 says a server must accept).
    private static func originForm(_ target: String) throws(Failure) -> Substring {
        if target.hasPrefix("/") { return target[...] }
        let lower = target.lowercased()
        for scheme in ["http://", "https://"] where lower.hasPrefix(scheme) {
            let authorityAndPath = target.dropFirst(scheme.count)
            guard let first = authorityAndPath.first, first != "/" else { break }
            guard let slash = authorityAndPath.firstIndex(where: { $0 == "/" || $0 == "?" }) else { return "/" }
            let rest = authorityAndPath[slash...]
            return rest.first == "?" ? "/" + rest : rest
        }
        throw .malformed("request target must start with '/' or be an absolute http URL")
    }

    private static func parseHeaderLine(_ line: ArraySlice<UInt8>) throws(Failure) -> (name: String, value: String) {
        guard let colon = line.firstIndex(of: 0x3A), let name = token(line[..<colon]) else {
            throw .malformed("header line is not 'Name: value'")
        }
        let value = line[(colon + 1)...].drop { $0 == 0x20 || $0 == 0x09 }
        guard !value.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) else {
            throw .malformed("control character in header '\(name)'")
        }
        var trimmed = value
        while let last = trimmed.last, last == 0x20 || last == 0x09 { trimmed = trimmed.dropLast() }
        return (name, String(decoding: trimmed, as: UTF8.self))
    }

    /// An RFC 9110 token (method or header name), or nil.
    private static func token(_ bytes: ArraySlice<UInt8>) -> String? {
        guard !bytes.isEmpty, bytes.allSatisfy(isTokenByte) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            Array("!#$%&'*+-.^_`|~".utf8).contains(b)
        }
    }
}
