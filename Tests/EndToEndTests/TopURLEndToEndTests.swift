import Foundation
import Glibc
import Testing
import TestSupport

/// `slabwatch top --url` against servers that answer badly on purpose: the
/// real binary, a loopback server sending exactly the hostile bytes. Each
/// ends in one clear line and exit 1, or in the screen; never a trap, a
/// hang, the terminal's title changed or memory without bound.
extension EndToEndTests {
    static func topOnce(_ server: HostileServer, timeout: Double = 25) throws -> (status: Int32, error: String, output: String, seconds: Double, killed: Bool) {
        try runLimited(DaemonProcess.binary.path, ["top", "--url", server.url, "--once", "-d", "100ms"], timeout: timeout)
    }

    @Test(arguments: [
        ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}", "bad Content-Length '-1'"),  // trapped: prefix of a negative length
        ("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n{}", "bad Content-Length ''"),  // trapped: index out of range
        ("HTTP/1.1 200 OK\r\nContent-Length: 20000000\r\n\r\n[[0],", "response body over the 16 MiB limit"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx", "unsupported Transfer-Encoding 'gzip'"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n", "bad chunk size '-5'"),
        ("SSH-2.0-OpenSSH_9.6\r\n", "not an HTTP response: 'SSH-2.0-OpenSSH_9.6'"),
    ])
    func topURLRefusesAMalformedAnswerWithOneLine(_ answer: String, _ expected: String) throws {
        let server = try HostileServer { HostileServer.send($0, answer) }
        defer { server.stop() }
        let result = try Self.topOnce(server)
        #expect(result.status == 1 && result.error == "slabwatch: \(server.url): \(expected)\n", "\(result.status) \(result.error)")
    }

    /// A complete answer on a connection the server keeps open was "no
    /// answer in 5 s"; a chunked one was "cut short". Both are read. The
    /// open connection is held until the test ends, past top's 10 s
    /// deadline: a top that waited for the close would end in "no complete
    /// answer within 10 s" and exit 1, so exit 0 and the screen show that it
    /// read the answer by its length, with no clock in the test.
    @Test func topURLReadsAnswersFramedByLengthOrByChunks() throws {
        let snapshot = Array(HostileServer.snapshot.utf8)
        let open = try HostileServer(holdOpen: true) {
            HostileServer.send($0, "HTTP/1.1 200 OK\r\nContent-Length: \(snapshot.count)\r\n\r\n")
            HostileServer.send($0, snapshot)
        }
        defer { open.stop() }
        let chunked = try HostileServer { connection in
            HostileServer.send(connection, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for start in stride(from: 0, to: snapshot.count, by: 40) {
                let piece = snapshot[start..<min(snapshot.count, start + 40)]
                HostileServer.send(connection, String(piece.count, radix: 16) + ";n=\(start)\r\n")
                HostileServer.send(connection, Array(piece) + [13, 10])
                usleep(1000)  // in separate segments
            }
            HostileServer.send(connection, "0\r\nX-Trailer: t\r\n\r\n")
        }
        defer { chunked.stop() }
        for server in [open, chunked] {
            let result = try Self.topOnce(server)
            #expect(result.status == 0, "\(result.error)")
            #expect(result.output.contains("hostile-cache"), "\(result.output)")
        }
    }

    /// A byte every second used to reset a 5 s limit per recv, for ever;
    /// the whole answer now has 10 s.
    @Test func topURLGivesUpOnADrippingServerAtItsDeadline() throws {
        let server = try HostileServer { connection in
            HostileServer.send(connection, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            while HostileServer.send(connection, [UInt8(ascii: " ")]) { sleep(1) }
        }
        defer { server.stop() }
        // 60 s only catches a top that never gives up (it is killed then);
        // that it gave up at its own deadline is the message it ends with.
        let result = try Self.topOnce(server, timeout: 60)
        #expect(!result.killed && result.status == 1, "still waiting after \(result.seconds) s")
        #expect(result.error == "slabwatch: \(server.url): no complete answer within 10 s\n", "\(result.error)")
    }

    /// A server's error body is shown, but not obeyed: the title-setting
    /// OSC, the colour CSI and their one-scalar C1 forms arrive as `?`.
    @Test func topURLShowsAnErrorBodyWithoutItsEscapeCodes() throws {
        let body = "\u{1b}]0;pwned\u{7}\u{1b}[31mred\u{9b}32mgreen\u{9d}2;title\u{9c}\r\n"
        let server = try HostileServer { HostileServer.send($0, "HTTP/1.1 500 Oops\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)") }
        defer { server.stop() }
        let result = try Self.topOnce(server)
        #expect(result.status == 1)
        #expect(result.error == "slabwatch: \(server.url) answered 500: ?]0;pwned??[31mred?32mgreen?2;title?\n", "\(result.error.debugDescription)")
        #expect(!result.error.dropLast().unicodeScalars.contains(where: HostileText.isControl))
    }

    /// A million and more one-element arrays (4 MB) are refused by count,
    /// not read into hundreds of megabytes (docs/watching.md has the figures).
    @Test func topURLRefusesADocumentWiderThanItsLimit() throws {
        let body = Array("[".utf8) + Array(repeating: Array("[0],".utf8), count: 1_100_000).flatMap { $0 } + Array("0]".utf8)
        let server = try HostileServer {
            HostileServer.send($0, "HTTP/1.1 200 OK\r\nContent-Length: \(body.count)\r\n\r\n")
            HostileServer.send($0, body)
        }
        defer { server.stop() }
        let result = try Self.topOnce(server)
        #expect(result.status == 1 && result.error.contains("/snapshot: invalid JSON at byte") && result.error.contains("more than 1048576 values"),
                "\(result.error)")
    }

    /// Interactive top waiting on a daemon that drips: the screen says so,
    /// and `q` and Ctrl-C end it at once (the fetch used to block the keys).
    @Test func topURLInATerminalQuitsWhileADaemonDrips() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") else {
            Issue.record("tmux is not installed (scripts/test.sh installs it)"); return
        }
        let server = try HostileServer { connection in
            HostileServer.send(connection, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            while HostileServer.send(connection, [UInt8(ascii: " ")]) { sleep(1) }
        }
        defer { server.stop() }
        let session = "slabwatch-top-url-\(getpid())"
        let command = "\(DaemonProcess.binary.path) top --url \(server.url)"
        let endTmux = try Self.startTmux(session, command)
        defer { endTmux() }
        func screen() throws -> String { try Self.tmux(["capture-pane", "-p", "-t", session]).output }
        func dead() -> Bool { (try? Self.tmux(["display-message", "-p", "-t", session, "#{pane_dead}"]).output) == "1\n" }
        func waitFor(_ what: String, within seconds: Double, _ condition: () throws -> Bool) throws {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if try condition() { return }
                usleep(50_000)
            }
            Issue.record("no \(what) within \(seconds) s; screen:\n\(try screen())")
        }
        for key in ["q", "C-c"] {
            try waitFor("waiting screen", within: 5) { try screen().contains("waiting for the first sample") }
            _ = try Self.tmux(["send-keys", "-t", session, key])
            try waitFor("exit on \(key)", within: 2, dead)
            #expect(try !screen().contains("slabwatch top from"), "the normal screen is back")
            _ = try Self.tmux(["respawn-pane", "-t", session, command])
        }
    }
}
