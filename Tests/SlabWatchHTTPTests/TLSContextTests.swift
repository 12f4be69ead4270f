import Foundation
import Glibc
import Testing
@testable import SlabWatchHTTP

/// The server's TLS with a real RSA certificate made by openssl, probed with
/// `openssl s_client` and curl on loopback.
struct TLSContextTests {
    /// A self-signed RSA certificate for 127.0.0.1 (RSA: static-RSA suites need one to be offered at all).
    final class Certificate {
        let directory: URL
        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-tls-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let made = try run("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                                                    "-keyout", path("key.pem"), "-out", path("cert.pem"),
                                                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"])
            guard made.status == 0 else { throw TLSError(description: "openssl req: \(made.output)") }
        }
        deinit { try? FileManager.default.removeItem(at: directory) }
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

        func settings(cipherList: String? = nil) throws -> TLSSettings {
            var settings = TLSSettings(certificateChainPEM: Array(try Data(contentsOf: URL(fileURLWithPath: path("cert.pem")))),
                                       privateKeyPEM: Array(try Data(contentsOf: URL(fileURLWithPath: path("key.pem")))))
            settings.cipherList = cipherList
            return settings
        }
    }

    /// Runs a program to its end; stdout and stderr together.
    static func run(_ program: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    /// Whether a TLS 1.2 handshake offering only `cipher` succeeds.
    static func handshake(_ port: UInt16, tls12Cipher cipher: String) throws -> Bool {
        let result = try run("/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-tls1_2", "-cipher", cipher])
        return result.status == 0 && result.output.contains("Cipher is \(cipher)")
    }

    /// testssl.sh rated the old default (OpenSSL's) average: static-RSA key
    /// exchange and CBC suites in TLS 1.2. Now ECDHE with AEAD only, as Go's.
    @Test func tls12OffersOnlyECDHEWithAEADByDefault() throws {
        let certificate = try Certificate()
        let running = try HTTPServerTests.Running(security: WebSecurity(tls: try TLSContext(certificate.settings())))
        for refused in ["AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA384", "DHE-RSA-AES128-GCM-SHA256"] {
            #expect(try !Self.handshake(running.port, tls12Cipher: refused), "\(refused) is offered")
        }
        for offered in ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"] {
            #expect(try Self.handshake(running.port, tls12Cipher: offered), "\(offered) is refused")
        }
        let tls13 = try Self.run("/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(running.port)", "-tls1_3"])
        #expect(tls13.output.contains("TLSv1.3"), "\(tls13.output)")
    }

    /// `cipher_suites` still widens the list for old clients.
    @Test func aConfiguredCipherListIsOffered() throws {
        let certificate = try Certificate()
        let running = try HTTPServerTests.Running(security: WebSecurity(tls: try TLSContext(certificate.settings(cipherList: "AES128-SHA"))))
        #expect(try Self.handshake(running.port, tls12Cipher: "AES128-SHA"))
    }

    /// Plain HTTP to the TLS port gets its 400 every time, even when the
    /// client sends more before reading.
    @Test func plainHTTPToTheTLSPortAlwaysGetsThe400() throws {
        let certificate = try Certificate()
        let running = try HTTPServerTests.Running(security: WebSecurity(tls: try TLSContext(certificate.settings())))
        for attempt in 0..<20 {
            let client = try RawClient(port: running.port)
            client.send("GET /echo HTTP/1.1\r\nHost: t\r\n")
            usleep(20_000)
            client.send("Accept: */*\r\n\r\n")
            let response = client.receive()
            #expect(response.hasPrefix("HTTP/1.1 400 ") && response.contains("HTTP request to an HTTPS server"),
                    "\(attempt): \(response.debugDescription)")
        }
    }

    /// The TLS form of the burst: ClientHellos cut short and closed, 100 of
    /// them, queued around a real TLS scrape (curl) while the server is busy.
    @Test func aTLSScrapeInABurstOfDeadHandshakesIsAnswered() throws {
        let certificate = try Certificate()
        var limits = HTTPServerLimits()
        limits.maxConnections = 8
        let running = try HTTPServerTests.Running(limits: limits, security: WebSecurity(tls: try TLSContext(certificate.settings())))
        func curl(_ target: String) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            process.arguments = ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "--cacert", certificate.path("cert.pem"),
                                 "https://127.0.0.1:\(running.port)\(target)"]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            return process
        }
        let clientHelloStart: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]
        for round in 0..<3 {
            let missed = try HTTPServerTests.scrapeInBurst(port: running.port, round: round, deadPayload: clientHelloStart, settle: 200_000,
                                                           hold: { _ in try curl("/hold?1000") }) { _, round in
                let scrape = try curl("/echo?\(round)")
                return {
                    scrape.waitUntilExit()
                    let code = (scrape.standardOutput as? Pipe)?.fileHandleForReading.readDataToEndOfFile() ?? Data()
                    return String(decoding: code, as: UTF8.self) == "200"
                }
            }
            #expect(!missed, "round \(round)")
        }
    }
}
