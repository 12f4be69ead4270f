/// Reads one HTTP/1.1 response as its bytes arrive (what `slabwatch top --url`
/// gets back from a daemon): the status line, the fields that frame the body
/// (Content-Length, Transfer-Encoding: chunked), and the body, framed by its
/// length, by its chunks or by the end of the connection.
///
/// Bounded and total: a head over `maxHeadBytes` or a body over
/// `maxBodyBytes` fails as soon as that is known, before anything that size
/// is kept, and no input traps. The same bytes give the same answer however
/// they are split into pieces. Text from the server in an error is shown
/// through `TerminalText`. Pure: the caller owns the socket.
public struct HTTPResponseReader: Sendable {
    /// The status line, header fields and any chunked trailer, together.
    public static let maxHeadBytes = 64 << 10
    /// A `/snapshot` is about 320 bytes per cache: 16 MiB holds 50,000 caches,
    /// more than the daemon's 4 MiB slabinfo limit can name.
    public static let maxBodyBytes = 16 << 20
    /// A chunk-size line with its extensions.
    static let maxChunkLineBytes = 4096

    public struct Response: Sendable, Equatable {
        public var status: Int
        public var body: [UInt8]
    }

    public struct Failure: Error, Equatable, CustomStringConvertible {
        public var description: String
    }

    private enum Stage: Equatable {
        case statusLine, fields, lengthBody(remaining: Int), chunkSize, chunkData(remaining: Int), chunkEnd, trailer, untilClose, done
    }

    private var stage = Stage.statusLine
    /// The line being assembled (status line, field, chunk size, trailer).
    private var line: [UInt8] = []
    private var headBytes = 0
    private var contentLength: Int?
    private var transferCodings: [String] = []
    /// The status of the response being read (also an interim 1xx one).
    private var status: Int?
    private var body: [UInt8] = []
    /// Once failed, always failed the same way.
    private var failure: Failure?

    public init() {}

    /// Takes the next bytes from the connection; the response once it is
    /// complete (anything after it is ignored), nil while more is needed.
    public mutating func take(_ bytes: ArraySlice<UInt8>) throws(Failure) -> Response? {
        if let failure { throw failure }
        do {
            var rest = bytes
            while stage != .done, !rest.isEmpty { try step(&rest) }
        } catch {
            failure = error
            throw error
        }
        return response
    }

    /// The server closed the connection: the response, if what came makes one.
    public mutating func finish() throws(Failure) -> Response {
        if let failure { throw failure }
        switch stage {
        case .done: break
        case .untilClose: stage = .done
        case .statusLine where headBytes == 0: failure = Failure(description: "closed without an answer")
        case .statusLine, .fields: failure = Failure(description: "closed in the middle of the response head")
        case .lengthBody(let remaining):
            failure = Failure(description: "response cut short: \(body.count) of \(body.count + remaining) bytes")
        case .chunkSize, .chunkData, .chunkEnd, .trailer:
            failure = Failure(description: "chunked response cut short after \(body.count) bytes")
        }
        if let failure { throw failure }
        return Response(status: status ?? 0, body: body)
    }

    private var response: Response? { stage == .done ? Response(status: status ?? 0, body: body) : nil }

    // MARK: stages

    private mutating func step(_ rest: inout ArraySlice<UInt8>) throws(Failure) {
        switch stage {
        case .statusLine, .fields, .trailer:
            guard let text = try nextLine(&rest, counted: true) else { return }
            switch stage {
            case .statusLine: try readStatusLine(text)
            case .fields: if text.isEmpty { try endOfHead() } else { try readField(text) }
            default: if text.isEmpty { stage = .done }  // trailer fields are not needed
            }
        case .chunkSize:
            guard let text = try nextLine(&rest, counted: false) else { return }
            try readChunkSize(text)
        case .chunkEnd:
            guard let text = try nextLine(&rest, counted: false) else { return }
            guard text.isEmpty else { throw Failure(description: "a chunk is longer than its size says") }
            stage = .chunkSize
        case .lengthBody(let remaining):
            let taken = takeBody(&rest, upTo: remaining)
            stage = taken == remaining ? .done : .lengthBody(remaining: remaining - taken)
        case .chunkData(let remaining):
            let taken = takeBody(&rest, upTo: remaining)
            stage = taken == remaining ? .chunkEnd : .chunkData(remaining: remaining - taken)
        case .untilClose:
            guard body.count + rest.count <= Self.maxBodyBytes else { throw Self.tooLarge }
            _ = takeBody(&rest, upTo: rest.count)
        case .done: return
        }
    }

    /// The next whole line without its LF (or CRLF), nil if it has not all
    /// come yet. Head lines (`counted`) share the head's limit; a chunk line
    /// has its own.
    private mutating func nextLine(_ rest: inout ArraySlice<UInt8>, counted: Bool) throws(Failure) -> [UInt8]? {
        let end = rest.firstIndex(of: 0x0A)
        let piece = rest[..<(end ?? rest.endIndex)]
        let length = piece.count + (end == nil ? 0 : 1)
        if counted {
            guard headBytes + length <= Self.maxHeadBytes else { throw Failure(description: "response head over \(Self.maxHeadBytes >> 10) KiB") }
        } else {
            guard line.count + length <= Self.maxChunkLineBytes else {
                throw Failure(description: "chunk-size line over \(Self.maxChunkLineBytes) bytes")
            }
        }
        line += piece
        if counted { headBytes += length }
        rest = rest[(end.map { $0 + 1 } ?? rest.endIndex)...]
        guard end != nil else { return nil }
        defer { line.removeAll(keepingCapacity: true) }
        return line.last == 0x0D ? Array(line.dropLast()) : line
    }

    /// Moves at most `count` body bytes out of `rest`; how many it moved.
    private mutating func takeBody(_ rest: inout ArraySlice<UInt8>, upTo count: Int) -> Int {
        let taken = min(count, rest.count)
        body += rest.prefix(taken)
        rest = rest.dropFirst(taken)
        return taken
    }

    private static let tooLarge = Failure(description: "response body over the \(maxBodyBytes >> 20) MiB limit")

    // MARK: head

    /// `HTTP/1.x NNN reason`.
    private mutating func readStatusLine(_ text: [UInt8]) throws(Failure) {
        let prefix = Array("HTTP/1.".utf8)
        let digits = text.count >= 12 ? Array(text[9..<12]) : []
        guard text.starts(with: prefix), text.count >= 12, (0x30...0x39).contains(text[7]), text[8] == 0x20,
              digits.allSatisfy({ (0x30...0x39).contains($0) }), text.count == 12 || text[12] == 0x20 else {
            throw Failure(description: "not an HTTP response: '\(Self.shown(text))'")
        }
        status = digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        stage = .fields
    }

    /// `name: value`; only the fields that frame the body are kept.
    private mutating func readField(_ text: [UInt8]) throws(Failure) {
        guard let colon = text.firstIndex(of: UInt8(ascii: ":")), colon > 0,
              text[..<colon].allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw Failure(description: "malformed header field '\(Self.shown(text))'")
        }
        let name = String(decoding: text[..<colon], as: UTF8.self).lowercased()
        let value = Self.trimmed(text[(colon + 1)...])
        switch name {
        case "content-length":
            // Digits only: "-1", "" and "+5" are not lengths, and a second,
            // different length is a response nobody can frame.
            guard !value.isEmpty, value.allSatisfy({ (0x30...0x39).contains($0) }) else {
                throw Failure(description: "bad Content-Length '\(Self.shown(value))'")
            }
            guard value.count <= 18 else { throw Self.tooLarge }  // and Int cannot overflow below
            let length = value.reduce(0) { $0 * 10 + Int($1 - 0x30) }
            guard contentLength == nil || contentLength == length else { throw Failure(description: "two different Content-Length fields") }
            contentLength = length
        case "transfer-encoding":
            transferCodings += value.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).map {
                String(decoding: Self.trimmed($0), as: UTF8.self).lowercased()
            }
        default: break
        }
    }

    /// The blank line: how the body is framed (RFC 9112 §6.3).
    private mutating func endOfHead() throws(Failure) {
        let code = status ?? 0
        if (100..<200).contains(code), code != 101 {
            // An interim answer (103 Early Hints): the real one follows.
            contentLength = nil
            transferCodings = []
            stage = .statusLine
            return
        }
        if code == 204 || code == 304 || code == 101 {
            stage = .done
        } else if !transferCodings.isEmpty {
            // Transfer-Encoding overrides Content-Length; chunked is the only coding we read.
            guard transferCodings == ["chunked"] else {
                throw Failure(description: "unsupported Transfer-Encoding '\(Self.shown(Array(transferCodings.joined(separator: ", ").utf8)))'")
            }
            stage = .chunkSize
        } else if let contentLength {
            guard contentLength <= Self.maxBodyBytes else { throw Self.tooLarge }
            body.reserveCapacity(min(contentLength, 1 << 20))  // a claim, until the bytes come
            stage = contentLength == 0 ? .done : .lengthBody(remaining: contentLength)
        } else {
            stage = .untilClose
        }
    }

    // MARK: chunks

    /// `HEX[;extensions]`; zero ends the body (trailer fields follow).
    private mutating func readChunkSize(_ text: [UInt8]) throws(Failure) {
        let hex = text.prefix { Self.hexDigit($0) != nil }
        let after = text[hex.endIndex...].drop { $0 == 0x20 || $0 == 0x09 }
        guard !hex.isEmpty, after.isEmpty || after.first == UInt8(ascii: ";") else {
            throw Failure(description: "bad chunk size '\(Self.shown(text))'")
        }
        var size = 0
        for digit in hex.drop(while: { $0 == UInt8(ascii: "0") }) {
            size = size * 16 + Self.hexDigit(digit)!
            guard body.count + size <= Self.maxBodyBytes else { throw Self.tooLarge }
        }
        stage = size == 0 ? .trailer : .chunkData(remaining: size)
    }

    private static func hexDigit(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A")) + 10
        default: nil
        }
    }

    // MARK: text

    /// Without the spaces and tabs around it.
    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        func blank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }
        var value = bytes.drop(while: blank)
        while let last = value.last, blank(last) { value = value.dropLast() }
        return value
    }

    /// At most 80 characters of server text, safe for a terminal.
    static func shown(_ bytes: some Collection<UInt8>) -> String {
        TerminalText.printable(String(decoding: bytes.prefix(80), as: UTF8.self))
    }
}
