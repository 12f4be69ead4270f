import Testing
@testable import SlabWatchCore

/// How `top --url` reads a daemon's answer: framed by length, by chunks or
/// by the end of the connection; every malformed or oversized answer a clear
/// error; the same answer however the bytes are split.
struct HTTPResponseReaderTests {
    enum Outcome: Equatable {
        /// Complete as it arrived: status and body.
        case body(Int, String)
        /// Complete once the server closed.
        case atClose(Int, String)
        case failure(String)
    }

    /// Fed in one piece, then `finish()` (the server closed) if that did not complete it.
    static func read(_ text: String) -> Outcome {
        let bytes = Array(text.utf8)
        return readInPieces(bytes, size: max(1, bytes.count))
    }

    @Test(arguments: [
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", Outcome.body(200, "hello")),
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello and more", .body(200, "hello")),  // the rest is not ours
        ("HTTP/1.0 404 Not Found\r\ncontent-length:  3 \r\n\r\nno\n", .body(404, "no\n")),
        ("HTTP/1.1 200 OK\nContent-Length: 2\n\nok", .body(200, "ok")),  // bare LF line ends (RFC 9112 §2.2)
        ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", .body(200, "")),
        ("HTTP/1.1 204 No Content\r\n\r\n", .body(204, "")),
        ("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", .body(200, "x")),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=\"a b\"\r\n!\r\n0\r\nTrailer: t\r\n\r\n", .body(200, "hello!")),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\nContent-Length: 99\r\n\r\nA\r\n0123456789\r\n000\r\n\r\n", .body(200, "0123456789")),
        ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nhello", .failure("bad Content-Length '-1'")),
        ("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\nhello", .failure("bad Content-Length ''")),
        ("HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello", .failure("bad Content-Length '+5'")),
        ("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello", .failure("bad Content-Length '5, 5'")),
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 4\r\n\r\nhello", .failure("two different Content-Length fields")),
        ("HTTP/1.1 200 OK\r\nContent-Length: 16777217\r\n\r\n", .failure("response body over the 16 MiB limit")),
        ("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", .failure("response body over the 16 MiB limit")),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", .failure("unsupported Transfer-Encoding 'gzip, chunked'")),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", .failure("bad chunk size 'zz'")),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", .failure("bad chunk size '-1'")),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffffffff\r\n", .failure("response body over the 16 MiB limit")),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", .failure("a chunk is longer than its size says")),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", .failure("chunked response cut short after 3 bytes")),
        ("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", .failure("response cut short: 5 of 10 bytes")),
        ("HTTP/1.1 200 OK\r\n\r\nuntil the end", .atClose(200, "until the end")),
        ("HTTP/1.1 200 OK\r\nContent-", .failure("closed in the middle of the response head")),
        ("", .failure("closed without an answer")),
        ("SSH-2.0-OpenSSH_9.6\r\n", .failure("not an HTTP response: 'SSH-2.0-OpenSSH_9.6'")),
        ("HTTP/1.1 2000 OK\r\n\r\n", .failure("not an HTTP response: 'HTTP/1.1 2000 OK'")),
        ("HTTP/1.1 200 OK\r\n folded: value\r\n\r\n", .failure("malformed header field ' folded: value'")),
        ("HTTP/1.1 200 OK\r\nName : value\r\n\r\n", .failure("malformed header field 'Name : value'")),
        ("HTTP/1.1 200 \u{1b}]0;t\u{7}\r\nX\u{1b}[2J\r\n\r\n", .failure("malformed header field 'X?[2J'")),
    ])
    func framesTheBodyOrSaysWhyNot(_ response: String, _ expected: Outcome) {
        #expect(Self.read(response) == expected, "\(response.debugDescription)")
    }

    /// Every split of each response above into pieces of 1 to 7 bytes gives
    /// the answer the whole does: framing never depends on how recv cuts.
    @Test func anySplitGivesTheSameAnswer() {
        let responses = [
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext\r\n!\r\n0\r\nTrailer: t\r\n\r\n",
            "HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc",
        ]
        for response in responses {
            let whole = Self.read(response)
            for size in 1...7 {
                let split = Self.readInPieces(Array(response.utf8), size: size)
                #expect(split == whole, "\(response.debugDescription) in pieces of \(size)")
            }
        }
    }

    static func readInPieces(_ bytes: [UInt8], size: Int) -> Outcome {
        var reader = HTTPResponseReader()
        do {
            for start in stride(from: 0, to: bytes.count, by: size) {
                if let response = try reader.take(bytes[start..<min(bytes.count, start + size)]) {
                    return .body(response.status, String(decoding: response.body, as: UTF8.self))
                }
            }
            let response = try reader.finish()
            return .atClose(response.status, String(decoding: response.body, as: UTF8.self))
        } catch { return .failure(error.description) }
    }

    /// A head that never ends, a chunk line that never ends, a body beyond
    /// the limit with no length: each fails once past its bound, before the
    /// server closes (nothing that size is kept).
    @Test func boundsHoldWithoutTheServerClosing() {
        var head = HTTPResponseReader()
        let field = Array("X-Pad: \(String(repeating: "a", count: 1000))\r\n".utf8)
        #expect(throws: HTTPResponseReader.Failure(description: "response head over 64 KiB")) {
            _ = try head.take(Array("HTTP/1.1 200 OK\r\n".utf8)[...])
            for _ in 0..<100 { _ = try head.take(field[...]) }
        }
        var chunk = HTTPResponseReader()
        #expect(throws: HTTPResponseReader.Failure(description: "chunk-size line over 4096 bytes")) {
            _ = try chunk.take(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;".utf8)[...])
            for _ in 0..<10 { _ = try chunk.take([UInt8](repeating: UInt8(ascii: "x"), count: 1000)[...]) }
        }
        var untilClose = HTTPResponseReader()
        let block = [UInt8](repeating: UInt8(ascii: "["), count: 1 << 20)
        #expect(throws: HTTPResponseReader.Failure(description: "response body over the 16 MiB limit")) {
            _ = try untilClose.take(Array("HTTP/1.1 200 OK\r\n\r\n".utf8)[...])
            for _ in 0..<17 { _ = try untilClose.take(block[...]) }
        }
        // Failed once, failed for good: the same error again.
        #expect(throws: HTTPResponseReader.Failure(description: "response body over the 16 MiB limit")) { _ = try untilClose.finish() }
    }

    /// Complete by its length while the connection stays open: the answer
    /// is there without waiting for a close.
    @Test func aCompleteAnswerNeedsNoClose() throws {
        var reader = HTTPResponseReader()
        #expect(try reader.take(Array("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab".utf8)[...]) == nil)
        let response = try #require(try reader.take(Array("cd".utf8)[...]))
        #expect(response == .init(status: 200, body: Array("abcd".utf8)))
    }
}
