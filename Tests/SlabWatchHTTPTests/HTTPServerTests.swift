import Foundation
import Glibc
import Logging
import SlabWatchCore  // ServerStatistics, which the server counts in
import Testing
@testable import SlabWatchHTTP

/// The real server on a real loopback socket, driven by raw bytes.
struct HTTPServerTests {
    final class Running {
        let server: HTTPServer
        let port: UInt16

        init(limits: HTTPServerLimits = HTTPServerLimits(), address: String = "127.0.0.1:0", security: WebSecurity? = nil,
             isPage: @escaping HTTPServer.PageTest = { _ in false }, pages: @escaping HTTPServer.Handler = { _ in HTTPResponse(status: 404) }) throws {
            server = HTTPServer(limits: limits, logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() }, isPage: isPage) { request in
                switch request.path {
                case "/echo": HTTPResponse(status: 200, text: "\(request.method) \(request.path) \(request.query ?? "-")\n")
                case "/big": HTTPResponse(status: 200, body: [UInt8](repeating: 0x61, count: 4 << 20))
                case "/page": pages(request)
                case "/hold":  // keeps the server's queue busy, as a slow handshake or render would
                    { usleep(UInt32(request.query.flatMap { UInt32($0) } ?? 300) * 1000); return HTTPResponse(status: 200, text: "held\n") }()
                default: HTTPResponse(status: 404, text: "nope\n")
                }
            }
            if let security { server.setSecurity(security) }
            let bound = try server.start(listeningOn: [try ListenAddress(parsing: address)])
            port = bound[0].port
        }

        deinit { server.stop() }
    }

    @Test func keepAliveServesSeveralRequestsOnOneConnection() throws {
        let running = try Running()
        let client = try RawClient(port: running.port)
        client.send("GET /echo?x=1 HTTP/1.1\r\nHost: t\r\n\r\n")
        let first = client.receive(until: "\n-\n") + client.receive(until: "x=1\n")
        #expect(first.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(first.contains("Connection: keep-alive\r\n"))
        #expect(first.hasSuffix("GET /echo x=1\n"))
        client.send("GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        let second = client.receive()
        #expect(second.contains("Connection: close\r\n"))
        #expect(second.hasSuffix("GET /echo -\n"))
        #expect(running.server.statistics.requests == 2)
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let running = try Running()
        let client = try RawClient(port: running.port)
        client.send("GET /echo?a HTTP/1.1\r\nHost: t\r\n\r\nGET /echo?b HTTP/1.1\r\nHost: t\r\n\r\nGET /echo?c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        let all = client.receive()
        let bodies = all.components(separatedBy: "\r\n\r\n").dropFirst().map { $0.prefix { $0 != "\n" } }
        #expect(bodies == ["GET /echo a", "GET /echo b", "GET /echo c"])
    }

    @Test func headHasLengthButNoBody() throws {
        let running = try Running()
        let client = try RawClient(port: running.port)
        client.send("HEAD /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        let response = client.receive()
        #expect(response.contains("Content-Length: 13\r\n"))  // "HEAD /echo -\n"
        #expect(response.hasSuffix("\r\n\r\n"))
    }

    @Test func http10ClosesUnlessKeepAlive() throws {
        let running = try Running()
        let client = try RawClient(port: running.port)
        client.send("GET /echo HTTP/1.0\r\n\r\n")
        #expect(client.receive().contains("Connection: close"))
        #expect(client.isClosedByPeer())
    }

    @Test(arguments: [
        ("garbage\r\n\r\n", "400"),
        ("GET\r\n\r\n", "400"),
        ("GET /echo HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n", "400"),
        ("GET /echo HTTP/1.1\r\nHost: t\r\n: empty name\r\n\r\n", "400"),
        ("GET echo HTTP/1.1\r\nHost: t\r\n\r\n", "400"),
        ("G@T /echo HTTP/1.1\r\nHost: t\r\n\r\n", "400"),
        ("GET /echo HTTP/2.0\r\n\r\n", "505"),
        ("GET /echo SPDY/1.1\r\n\r\n", "400"),
        ("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", "413"),
        ("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", "413"),
        ("\u{16}\u{03}\u{01}\u{02}\u{00}\u{01}\u{00}\u{01}\u{fc}\u{03}\u{03}\r\n\r\n", "400"),
        ("GET /echo HTTP/1.1\r\n\r\n", "400"),  // no Host
        ("GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400"),
        ("GET /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", "400"),
        ("GET /echo HTTP/1.1\r\nHost: t\r\nContent-Length: +0\r\n\r\n", "400"),
        ("GET /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n", "400"),
        ("GET ftp://host/echo HTTP/1.1\r\nHost: t\r\n\r\n", "400"),
    ])
    func badRequestsGetAStatusAndAClose(request: String, status: String) throws {
        let running = try Running()
        let client = try RawClient(port: running.port)
        client.send(bytes: Array(request.utf8))  // may hold NUL bytes
        let response = client.receive()
        #expect(response.hasPrefix("HTTP/1.1 \(status) "), "got \(response.debugDescription)")
        #expect(response.contains("Connection: close"))
        #expect(client.isClosedByPeer())
    }

    @Test func oversizedHeadGets431() throws {
        var limits = HTTPServerLimits()
        limits.maxHeaderBytes = 1024
        let running = try Running(limits: limits)
        let client = try RawClient(port: running.port)
        client.send("GET /echo HTTP/1.1\r\nHost: t\r\nX-Long: \(String(repeating: "a", count: 2000))\r\n\r\n")
        #expect(client.receive().hasPrefix("HTTP/1.1 431 "))
        let endless = try RawClient(port: running.port)
        endless.send("GET /echo HTTP/1.1\r\nHost: t\r\n" + String(repeating: "X-A: b\r\n", count: 400))  // never ends the head
        #expect(endless.receive().hasPrefix("HTTP/1.1 431 "))
    }

    @Test func slowClientIsClosedAtTheHeaderDeadline() throws {
        var limits = HTTPServerLimits()
        limits.headerTimeoutSeconds = 0.5
        let running = try Running(limits: limits)
        let client = try RawClient(port: running.port)
        client.send("GET /echo HTTP/1.1\r\nHost: t\r\n")
        for _ in 0..<3 { usleep(200_000); client.send("X-Drip: 1\r\n") }  // still dripping past the deadline
        let response = client.receive()
        #expect(response.hasPrefix("HTTP/1.1 408 "))
        #expect(running.server.statistics.connectionsTimedOut >= 1)
        let silent = try RawClient(port: running.port)  // connects and says nothing
        #expect(silent.isClosedByPeer())
    }

    /// The deadlines' timer runs only while a connection is open: an idle
    /// server does not wake its process.
    @Test func theDeadlinesAreCheckedOnlyWhileAConnectionIsOpen() throws {
        let running = try Running()
        #expect(!running.server.isSweeping, "no connection yet")
        do {
            let client = try RawClient(port: running.port)
            client.send("GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(client.receive().hasPrefix("HTTP/1.1 200 "))
            withExtendedLifetime(client) { #expect(running.server.isSweeping, "a connection is open") }
        }
        var waited = 0
        while running.server.isSweeping && waited < 500 { usleep(10_000); waited += 1 }
        #expect(!running.server.isSweeping, "the last connection closed")
    }

    /// A connection kept open between requests (as Prometheus keeps its
    /// scrape connection) wakes the server at its deadline, not before: a
    /// timer of its own at every deadline, none in between.
    @Test func aKeptAliveConnectionWakesTheServerOnlyAtItsDeadline() throws {
        let running = try Running()  // idle deadline 60 s
        let client = try RawClient(port: running.port)
        client.send("GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(client.receive(until: "GET /echo -\n").hasSuffix("GET /echo -\n"))
        let before = running.server.sweepsRun
        usleep(1_200_000)
        withExtendedLifetime(client) {
            #expect(running.server.sweepsRun - before <= 1, "woken \(running.server.sweepsRun - before) times in 1.2 s")
            #expect(running.server.isSweeping, "set for the connection's deadline")
        }
    }

    /// The sweeper stops with the last connection and starts again with the next.
    @Test func aConnectionAfterTheLastClosedStillTimesOut() throws {
        var limits = HTTPServerLimits()
        limits.idleTimeoutSeconds = 0.3
        let running = try Running(limits: limits)
        for _ in 0..<2 {
            let client = try RawClient(port: running.port)
            client.send("GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(client.receive(until: "GET /echo -\n").hasSuffix("GET /echo -\n"))
            #expect(client.isClosedByPeer())
            #expect(Self.eventually { !running.server.isSweeping })
        }
    }

    @Test func idleKeepAliveConnectionIsClosed() throws {
        var limits = HTTPServerLimits()
        limits.idleTimeoutSeconds = 0.3
        let running = try Running(limits: limits)
        let client = try RawClient(port: running.port)
        client.send("GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(client.receive(until: "GET /echo -\n").hasSuffix("GET /echo -\n"))
        #expect(client.isClosedByPeer())
    }

    @Test func atTheCapTheConnectionIdleLongestMakesRoom() throws {
        var limits = HTTPServerLimits()
        limits.maxConnections = 2
        let running = try Running(limits: limits)
        let silent = try RawClient(port: running.port)  // connects and never sends a head
        #expect(Self.eventually { running.server.statistics.connectionsAccepted == 1 })  // accepted before `idle`
        let idle = try RawClient(port: running.port)
        idle.send("GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = idle.receive(until: "-\n")  // both are accepted by now; `silent` has been quiet longest
        let scrape = try RawClient(port: running.port)
        scrape.send("GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(scrape.receive().hasSuffix("GET /echo -\n"))
        #expect(silent.isClosedByPeer())
        #expect(running.server.statistics.connectionsShed == 1)
        #expect(running.server.statistics.connectionsRejected == 0)
        idle.send("GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(idle.receive().hasSuffix("GET /echo -\n"))
    }

    @Test func atTheCap503OnlyWhenEveryConnectionIsOwedAResponse() throws {
        var limits = HTTPServerLimits()
        limits.maxConnections = 2
        let running = try Running(limits: limits)
        // Two readers that ask for 4 MiB and do not read: both mid-response.
        let busy = try (0..<2).map { _ in try RawClient(port: running.port) }
        for client in busy { client.send("GET /big HTTP/1.1\r\nHost: t\r\n\r\n") }
        usleep(300_000)
        let extra = try RawClient(port: running.port)
        #expect(extra.receive().hasPrefix("HTTP/1.1 503 "))
        #expect(running.server.statistics.connectionsRejected == 1)
        #expect(running.server.statistics.connectionsShed == 0)
    }

    /// Silent connections that reconnect as soon as they are dropped cannot keep a scrape out.
    @Test func silentConnectionsAtTheCapDoNotLockOutAScrape() throws {
        var limits = HTTPServerLimits()
        limits.maxConnections = 8
        let running = try Running(limits: limits)
        var silent = try (0..<8).map { _ in try RawClient(port: running.port) }
        for round in 0..<5 {
            let scrape = try RawClient(port: running.port)
            scrape.send("GET /echo?\(round) HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            #expect(scrape.receive().hasPrefix("HTTP/1.1 200 "), "round \(round)")
            silent.append(try RawClient(port: running.port))  // the attacker comes back
        }
        #expect(running.server.statistics.connectionsRejected == 0)
    }

    @Test func aRequestFollowedByHalfCloseIsAlwaysAnswered() throws {
        let running = try Running()
        for i in 0..<20 {
            let client = try RawClient(port: running.port)
            client.send("GET /echo?\(i) HTTP/1.1\r\nHost: t\r\n\r\nGET /echo?again HTTP/1.1\r\nHost: t\r\n\r\n")
            client.finishSending()
            let response = client.receive()
            #expect(response.contains("GET /echo \(i)\n") && response.hasSuffix("GET /echo again\n"), "\(i): \(response.debugDescription)")
        }
    }

    @Test(arguments: [
        ("GET http://127.0.0.1:10077/echo?x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", "GET /echo x\n"),
        ("GET HTTP://host/echo HTTP/1.1\r\nHost: host\r\nConnection: close\r\n\r\n", "GET /echo -\n"),
        ("GET http://host?y HTTP/1.1\r\nHost: host\r\nConnection: close\r\n\r\n", "nope\n"),  // path "/": the 404 route
        ("GET /echo HTTP/1.0\r\n\r\n", "GET /echo -\n"),  // HTTP/1.0 needs no Host
    ])
    func absoluteFormAndHTTP10AreServed(request: String, body: String) throws {
        let running = try Running()
        let client = try RawClient(port: running.port)
        client.send(request)
        let response = client.receive()
        #expect(response.hasPrefix("HTTP/1.1 ") && response.hasSuffix(body), "\(response.debugDescription)")
    }

    /// Two Content-Lengths (0, then 33): the "body" must not be answered as a second request.
    @Test func ambiguousFramingIsRefusedNotSmuggled() throws {
        let running = try Running()
        let client = try RawClient(port: running.port)
        client.send("GET /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nContent-Length: 33\r\n\r\nGET /echo?smuggled HTTP/1.1\r\nHost: t\r\n\r\n")
        let response = client.receive()
        #expect(response.hasPrefix("HTTP/1.1 400 "), "\(response.debugDescription)")
        #expect(!response.contains("smuggled"))
        #expect(running.server.statistics.requests == 0)
    }

    @Test func largeBodyToASlowReaderArrivesWhole() throws {
        let running = try Running()
        let client = try RawClient(port: running.port)
        client.send("GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        usleep(300_000)  // 4 MiB exceeds the socket buffers: the server must wait for writability
        let response = client.receive()
        let body = response.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
        #expect(body.utf8.count == 4 << 20)
    }

    @Test func servesIPv6Loopback() throws {
        let running = try Running(address: "[::1]:0")
        let client = try RawClient(port: running.port, ipv6: true)
        client.send("GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        #expect(client.receive().hasSuffix("GET /echo -\n"))
    }

    @Test func portInUseIsAnError() throws {
        let running = try Running()
        let second = HTTPServer(limits: .init(), logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() }) { _ in HTTPResponse(status: 200) }
        #expect(throws: SocketError.self) {
            try second.start(listeningOn: [ListenAddress(host: .ipv4("127.0.0.1"), port: running.port)])
        }
    }

    @Test func stopClosesEverything() throws {
        let running = try Running()
        let client = try RawClient(port: running.port)
        client.send("GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = client.receive(until: "-\n")
        #expect(Self.listeningSockets(port: running.port) == 1)
        running.server.stop()
        #expect(client.isClosedByPeer())
        // The listener is closed: no socket of this process listens on the port.
        // (Binding the port again, or connecting to it, would race with
        // parallel tests, which the kernel may hand the freed port.)
        #expect(Self.listeningSockets(port: running.port) == 0)
    }

    /// This process's TCP sockets in LISTEN on `port` (IPv4), from
    /// /proc/net/tcp matched against the inodes of /proc/self/fd.
    static func listeningSockets(port: UInt16) -> Int {
        let ours = Set(((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap { fd -> String? in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)"),
                  target.hasPrefix("socket:[") else { return nil }
            return String(target.dropFirst(8).dropLast())
        })
        let table = (try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8)) ?? ""
        let hexPort = String(port, radix: 16, uppercase: true)
        let wanted = String(repeating: "0", count: 4 - hexPort.count) + hexPort
        return table.split(separator: "\n").dropFirst().filter { line in
            let fields = line.split(separator: " ")
            return fields.count > 9 && fields[1].hasSuffix(":\(wanted)") && fields[3] == "0A" && ours.contains(String(fields[9]))
        }.count
    }
}

struct GzipTests {
    @Test(arguments: [
        ("gzip", true), ("gzip, deflate, br", true), ("br;q=1.0, gzip;q=0.8, *;q=0.1", true), ("x-gzip", true),
        ("*", true), ("gzip;q=0", false), ("GZIP;Q=0.000", false), ("identity", false), ("deflate", false), ("", false),
    ] as [(String, Bool)])
    func acceptEncoding(_ header: String, _ accepted: Bool) {
        #expect(Gzip.isAccepted(by: header) == accepted)
    }

    @Test func compressesToAGzipMember() throws {
        let text = Array(String(repeating: "slabwatch_slab_footprint_bytes{slab=\"dentry\"} 18968576\n", count: 2000).utf8)
        let gz = try #require(Gzip.compress(text))
        #expect(gz.prefix(3) == [0x1F, 0x8B, 0x08])  // gzip magic, deflate
        #expect(gz.count < text.count / 20)
        // The trailer holds the input size (ISIZE, little-endian).
        let size = gz.suffix(4).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(size == text.count)
    }
}
