import Foundation
import Glibc
import Synchronization
import Testing
@testable import SlabWatchHTTP

/// Holds work inside a handler or a verifier while closed; tests open it to let the work go.
final class Gate: Sendable {
    private let closed = Mutex(false)
    private let inside = Mutex(0)

    var waiting: Int { inside.withLock { $0 } }
    func close() { closed.withLock { $0 = true } }
    func open() { closed.withLock { $0 = false } }

    func pass() {
        inside.withLock { $0 += 1 }
        while closed.withLock({ $0 }) { usleep(1000) }
        inside.withLock { $0 -= 1 }
    }

    /// Waits (5 s at most) until `count` callers are held.
    func awaitWaiting(_ count: Int) -> Bool {
        for _ in 0..<500 where waiting < count { usleep(10_000) }
        return waiting >= count
    }
}

extension HTTPServerTests {
    /// Whether `condition` comes to hold; the 10 s limit only ends the wait on a server that hangs.
    static func eventually(_ condition: () -> Bool) -> Bool {
        for _ in 0..<1000 where !condition() { usleep(10_000) }
        return condition()
    }

    static func get(_ port: UInt16, _ target: String, user: String? = nil, password: String = "") throws -> String {
        let client = try RawClient(port: port)
        client.send(request(target, user: user, password: password))
        return client.receive()
    }

    static func request(_ target: String, user: String? = nil, password: String = "") -> String {
        let authorization = user.map { "Authorization: \(BasicAuthTests.basic($0, Array(password.utf8)))\r\n" } ?? ""
        return "GET \(target) HTTP/1.1\r\nHost: t\r\n\(authorization)Connection: close\r\n\r\n"
    }

    /// A flood of wrong passwords (300, past the old cache's 256) and a full
    /// queue of checks: the scraper whose password was verified is still
    /// answered at once, and only unverified requests get 503.
    @Test func aVerifiedScraperIsServedThroughAWrongPasswordFlood() throws {
        let gate = Gate()
        let auth = try BasicAuthenticator(users: ["alice": BasicAuthTests.hello4]) { password, hash in
            gate.pass()
            return BasicAuthenticator.bcryptMatches(password: password, hash: hash)
        }
        let running = try Running(security: WebSecurity(authenticator: auth))
        #expect(try Self.get(running.port, "/echo", user: "alice", password: "hello").hasPrefix("HTTP/1.1 200 "))
        for attempt in 0..<300 {
            let answer = try Self.get(running.port, "/echo", user: attempt.isMultiple(of: 3) ? "alice" : "u\(attempt)", password: "guess\(attempt)")
            #expect(answer.hasPrefix("HTTP/1.1 401 "), "\(attempt)")
        }
        gate.close()
        let held = try (0..<16).map { attempt in
            let client = try RawClient(port: running.port)
            client.send(Self.request("/echo", user: "alice", password: "held\(attempt)"))
            return client
        }
        #expect(gate.awaitWaiting(1))
        #expect(Self.eventually { running.server.pending.credentialChecks == 16 })  // the other 15 queued behind it
        #expect(try Self.get(running.port, "/echo", user: "mallory", password: "x").hasPrefix("HTTP/1.1 503 "))
        let scrape = try Self.get(running.port, "/echo", user: "alice", password: "hello")
        gate.open()
        #expect(scrape.hasPrefix("HTTP/1.1 200 "), "\(scrape.debugDescription)")
        for client in held { #expect(client.receive().hasPrefix("HTTP/1.1 401 ")) }
    }

    /// A reload (a new authenticator, same users) does not send verified scrapers back to bcrypt.
    @Test func aReloadKeepsVerifiedCredentials() throws {
        let first = try BasicAuthenticator(users: ["alice": BasicAuthTests.hello4])
        let running = try Running(security: WebSecurity(authenticator: first))
        #expect(try Self.get(running.port, "/echo", user: "alice", password: "hello").hasPrefix("HTTP/1.1 200 "))
        let counter = BasicAuthTests.CountingVerifier()
        for _ in 0..<3 {
            let reloaded = try BasicAuthenticator(users: ["alice": BasicAuthTests.hello4], verifier: counter.verify)
            running.server.setSecurity(WebSecurity(authenticator: reloaded))
        }
        #expect(try Self.get(running.port, "/echo", user: "alice", password: "hello").hasPrefix("HTTP/1.1 200 "))
        #expect(counter.takeWork() == 0, "the scrape paid bcrypt again after a reload")
    }

    /// A page that takes long to render holds neither other requests nor the
    /// health check; beyond 8 pages waiting, a page gets 503.
    @Test func aSlowPageDoesNotHoldOtherRequests() throws {
        let gate = Gate()
        gate.close()
        let running = try Running(isPage: { $0.path == "/page" }) { _ in
            gate.pass()
            return HTTPResponse(status: 200, text: "page\n")
        }
        defer { gate.open() }
        let page = try RawClient(port: running.port)
        page.send(Self.request("/page"))
        #expect(gate.awaitWaiting(1))
        let health = try Self.get(running.port, "/echo")
        #expect(health.hasSuffix("GET /echo -\n"), "\(health.debugDescription)")
        let queued = try (0..<7).map { _ in try RawClient(port: running.port) }
        for client in queued { client.send(Self.request("/page")) }
        #expect(Self.eventually { running.server.pending.pages == 8 })  // the first, held, and seven behind it
        #expect(try Self.get(running.port, "/page").hasPrefix("HTTP/1.1 503 "))
        gate.open()
        #expect(page.receive().hasSuffix("page\n"))
        for client in queued { #expect(client.receive().hasSuffix("page\n")) }
    }

    @Test func everyResponseSaysNosniff() throws {
        let auth = try BasicAuthenticator(users: ["alice": BasicAuthTests.hello4])
        var security = WebSecurity(authenticator: auth)
        security.excludedPaths = ["/echo", "/nowhere"]
        let running = try Running(security: security)
        let open = try Running()
        var answers = [
            try Self.get(running.port, "/echo"), try Self.get(running.port, "/nowhere"), try Self.get(running.port, "/big"),
            try Self.get(running.port, "/big", user: "alice", password: "wrong"), try Self.get(open.port, "/echo"),
        ]
        let garbage = try RawClient(port: open.port)
        garbage.send("garbage\r\n\r\n")
        answers.append(garbage.receive())
        for answer in answers {
            let head = answer.components(separatedBy: "\r\n\r\n")[0]
            #expect(head.contains("\r\nX-Content-Type-Options: nosniff"), "\(head)")
        }
        #expect(answers.map { String($0.prefix(12)) } == ["HTTP/1.1 200", "HTTP/1.1 404", "HTTP/1.1 401", "HTTP/1.1 401", "HTTP/1.1 200", "HTTP/1.1 400"])
    }

    /// A client that sends more after asking for a 4 MiB answer and its
    /// close: the bytes it sent sit unread when the server is done writing,
    /// and closing then would reset the connection and drop the part of the
    /// answer still in the server's send buffer.
    @Test func aClosingAnswerArrivesWholeThoughTheClientSentMore() throws {
        let running = try Running()
        let client = try RawClient(port: running.port)
        client.send("GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        usleep(100_000)  // the server is writing (and not reading) now
        client.send("GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        var total = 0
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            usleep(2000)  // a slow reader: the server finishes writing long before this does
            let n = recv(client.fd, &chunk, 16384, 0)
            if n <= 0 { break }
            total += n
        }
        #expect(total > 4 << 20, "\(total) bytes arrived")
    }

    /// A refusal sent while the request's body is still unread must reach the
    /// client: closing with bytes unread would send a reset that can destroy it.
    @Test func aRefusalWithTheBodyUnreadArrivesWhole() throws {
        let running = try Running()
        for attempt in 0..<5 {
            let client = try RawClient(port: running.port)
            client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 200000\r\n\r\n" + String(repeating: "x", count: 100_000))
            usleep(100_000)  // the server has answered and closed by now
            client.send(String(repeating: "y", count: 100_000))
            let response = client.receive()
            #expect(response.hasPrefix("HTTP/1.1 413 "), "\(attempt): \(response.debugDescription)")
        }
    }

    /// Connect-and-close and "half a request, then close" from two threads
    /// (bounded: 3 s or 6,000 connections each, loopback only) against a cap
    /// of 8: every scrape meanwhile is answered.
    @Test func aConnectAndCloseFloodDoesNotCostAScrape() throws {
        var limits = HTTPServerLimits()
        limits.maxConnections = 8
        let running = try Running(limits: limits)
        let answered = try Self.scrapesDuringFlood(port: running.port, payloads: [[], Array("GET /echo HTTP/1.1\r\n".utf8)])
        #expect(answered.missed == 0, "\(answered.missed) of \(answered.total) scrapes failed; flood: \(answered.flood) connections")
    }

    /// While the server's queue is busy, 100 dead connections (connected and
    /// closed, or closed after half a request) queue in the backlog with a
    /// scrape in their midst; accepted in one burst at a cap of 8, the dead
    /// ones must make room, not the scrape.
    @Test(arguments: [[], Array("GET /echo HTTP/1.1\r\n".utf8)] as [[UInt8]])
    func aScrapeInABurstOfDeadConnectionsIsAnswered(deadPayload: [UInt8]) throws {
        var limits = HTTPServerLimits()
        limits.maxConnections = 8
        let running = try Running(limits: limits)
        for round in 0..<3 {
            let missed = try Self.scrapeInBurst(port: running.port, round: round, deadPayload: deadPayload) { port in
                let hold = try RawClient(port: port)
                hold.send("GET /hold HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                return hold
            }
            #expect(!missed, "round \(round)")
        }
    }

    /// Holds the server's queue, queues 50 dead connections, a scrape and 50
    /// more, and says whether the scrape went unanswered.
    /// `hold` and `scrape` start their request and return what waits for its answer.
    static func scrapeInBurst(port: UInt16, round: Int, deadPayload: [UInt8], settle: UInt32 = 50_000,
                              hold: (UInt16) throws -> Any,
                              scrape: (UInt16, Int) throws -> () -> Bool = { port, round in
                                  let client = try RawClient(port: port)
                                  client.send(request("/echo?\(round)"))
                                  return { client.receive().hasPrefix("HTTP/1.1 200 ") }
                              }) throws -> Bool {
        let holder = try hold(port)
        usleep(settle)  // the server is inside the slow request now
        func dead() throws {
            let client = try RawClient(port: port)
            if !deadPayload.isEmpty { client.send(bytes: deadPayload) }
        }
        for _ in 0..<50 { try dead() }
        let answered = try scrape(port, round)
        usleep(settle)  // the scrape is in the backlog
        for _ in 0..<50 { try dead() }
        let missed = !answered()
        withExtendedLifetime(holder) {}
        return missed
    }

    /// Runs `scrapes` scrapes of `/echo` while threads (one per payload) open
    /// connections, send the payload and close them.
    static func scrapesDuringFlood(port: UInt16, payloads: [[UInt8]], scrapes: Int = 40,
                                   scrape: (UInt16, Int) throws -> Bool = { port, index in
                                       try get(port, "/echo?\(index)").hasSuffix("GET /echo \(index)\n")
                                   }) throws -> (missed: Int, total: Int, flood: Int) {
        let stop = Mutex(false)
        let opened = Mutex(0)
        let group = DispatchGroup()
        for payload in payloads {
            DispatchQueue.global().async(group: group) {
                let end = DispatchTime.now() + 3
                for _ in 0..<6000 {
                    if stop.withLock({ $0 }) || DispatchTime.now() > end { break }
                    guard let client = try? RawClient(port: port) else { continue }
                    if !payload.isEmpty { client.send(bytes: payload) }
                    opened.withLock { $0 += 1 }
                }
            }
        }
        usleep(100_000)  // the flood is under way
        var missed = 0
        for index in 0..<scrapes where try !scrape(port, index) { missed += 1 }
        stop.withLock { $0 = true }
        group.wait()
        return (missed, scrapes, opened.withLock { $0 })
    }
}
