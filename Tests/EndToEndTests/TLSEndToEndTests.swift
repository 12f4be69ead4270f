import Foundation
import Glibc
import Testing
import TestSupport

/// slabwatch behind exporter-toolkit's web configuration: TLS, client
/// certificates and basic auth, checked with real curl, a real Prometheus
/// server and certificates made by the real openssl command.
@Suite(.serialized)
struct TLSEndToEndTests {
    /// `hello`, hashed by libcrypt with bcrypt at cost 10 (`$2y$`, as htpasswd writes it).
    static let helloHash = "$2y$10$vaGhZBVTv0F./3cFfFMOf.dVvoKnM14swfFqxR/CzI/5qhKkuoQQO"
    static let fixture = EndToEndTests.fixtureArguments

    @Test func prometheusScrapesOverTLSWithBasicAuth() throws {
        let pki = try TestPKI()
        let web = try pki.write("web.yml", """
            tls_server_config:
              cert_file: server.crt
              key_file: server.key
            http_server_config:
              headers:
                X-Content-Type-Options: nosniff
            basic_auth_users:
              alice: \(Self.helloHash)
            """)
        let daemon = try DaemonProcess(arguments: Self.fixture + ["--web.config.file", web], scheme: "https",
                                       clientOptions: ["--cacert", pki.path("ca.crt"), "-u", "alice:hello"])
        let good = try daemon.get("/metrics")
        #expect(good.status == 200 && good.body.contains("slabwatch_slab_footprint_bytes"))
        #expect(good.headers.contains("X-Content-Type-Options: nosniff"))

        let anonymous = try DaemonProcess.run("/usr/bin/curl", ["-sS", "-D", "-", "--cacert", pki.path("ca.crt"), daemon.url("/metrics")])
        #expect(anonymous.output.hasPrefix("HTTP/1.1 401"))
        #expect(anonymous.output.contains("WWW-Authenticate: Basic"))
        #expect(!anonymous.output.contains("slabwatch_slab_footprint_bytes"))
        let wrong = try DaemonProcess.run("/usr/bin/curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", pki.path("ca.crt"),
                                                            "-u", "alice:nope", daemon.url("/metrics")])
        #expect(wrong.output == "401")
        let unknownUser = try DaemonProcess.run("/usr/bin/curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", pki.path("ca.crt"),
                                                                  "-u", "mallory:hello", daemon.url("/metrics")])
        #expect(unknownUser.output == "401")

        // Plain HTTP to the TLS port: told so, and nobody else is disturbed.
        let plain = try DaemonProcess.run("/usr/bin/curl", ["-sS", "http://127.0.0.1:\(daemon.port)/metrics"])
        #expect(plain.output.contains("HTTP request to an HTTPS server"))
        #expect(try daemon.get("/healthz").status == 200)

        let prometheus = try PrometheusServer(scrapeConfigs: """
              - job_name: slabwatch
                scheme: https
                tls_config:
                  ca_file: \(pki.path("ca.crt"))
                basic_auth:
                  username: alice
                  password: hello
                static_configs:
                  - targets: ["127.0.0.1:\(daemon.port)"]

            """)
        try daemon.waitFor("Prometheus to scrape over TLS", timeout: 60) { try prometheus.value("up{job=\"slabwatch\"}") == "1" }
        #expect(try prometheus.value("count(slabwatch_slab_footprint_bytes)") == "20")  // the bounded default's top 20
        let values = samples(try daemon.get("/metrics").body)
        #expect(values["slabwatch_http_authentication_failures_total"] == 3)
        #expect(values["slabwatch_http_tls_handshake_failures_total"] ?? 0 >= 1)
    }

    @Test func prometheusScrapesOverMutualTLS() throws {
        let pki = try TestPKI()
        let web = try pki.write("web.yml", """
            tls_server_config:
              cert_file: server.crt
              key_file: server.key
              client_auth_type: RequireAndVerifyClientCert
              client_ca_file: ca.crt
              client_allowed_sans: [prometheus.example]
              min_version: TLS12
            """)
        let clientCertificate = ["--cert", pki.path("client.crt"), "--key", pki.path("client.key")]
        let daemon = try DaemonProcess(arguments: Self.fixture + ["--web.config-file", web], scheme: "https",
                                       clientOptions: ["--cacert", pki.path("ca.crt")] + clientCertificate)
        #expect(try daemon.get("/healthz").status == 200)
        let noCertificate = try DaemonProcess.run("/usr/bin/curl", ["-sS", "--cacert", pki.path("ca.crt"), daemon.url("/metrics")])
        #expect(noCertificate.status != 0 && !noCertificate.output.contains("slabwatch_"))
        // Signed by the CA but without an allowed SAN: refused too.
        let stranger = try DaemonProcess.run("/usr/bin/curl", ["-sS", "--cacert", pki.path("ca.crt"), "--cert", pki.path("stranger.crt"),
                                                               "--key", pki.path("stranger.key"), daemon.url("/metrics")])
        #expect(stranger.status != 0 && !stranger.output.contains("slabwatch_"))

        let prometheus = try PrometheusServer(scrapeConfigs: """
              - job_name: slabwatch
                scheme: https
                tls_config:
                  ca_file: \(pki.path("ca.crt"))
                  cert_file: \(pki.path("client.crt"))
                  key_file: \(pki.path("client.key"))
                static_configs:
                  - targets: ["127.0.0.1:\(daemon.port)"]

            """)
        try daemon.waitFor("Prometheus to scrape over mTLS", timeout: 60) { try prometheus.value("up{job=\"slabwatch\"}") == "1" }
    }

    /// OpenSSL costs a daemon about 2.5 MB resident; one without a web
    /// configuration must not load it at all.
    @Test func openSSLIsLoadedOnlyWhenConfigured() throws {
        func mapsOpenSSL(_ daemon: DaemonProcess) throws -> Bool {
            try String(contentsOfFile: "/proc/\(daemon.pid)/maps", encoding: .utf8).contains("libcrypto.so")
        }
        let plain = try DaemonProcess(arguments: Self.fixture)
        #expect(try !mapsOpenSSL(plain))
        let pki = try TestPKI()
        let web = try pki.write("web.yml", "basic_auth_users:\n  alice: \(Self.helloHash)\n")
        let protected = try DaemonProcess(arguments: Self.fixture + ["--web.config-file", web], clientOptions: ["-u", "alice:hello"])
        #expect(try mapsOpenSSL(protected))
    }

    @Test func rotatedCertificateIsServedWithoutARestart() throws {
        let pki = try TestPKI()
        let web = try pki.write("web.yml", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n")
        let daemon = try DaemonProcess(arguments: Self.fixture + ["--web.config-file", web], scheme: "https",
                                       clientOptions: ["--cacert", pki.path("ca.crt")])
        #expect(try pki.servedSubject(daemon).contains("CN=localhost"))

        // A half-written certificate is refused; the running one stays.
        try replaceFile(URL(fileURLWithPath: pki.path("server.crt")), with: "-----BEGIN CERTIFICATE-----\ntruncated\n")
        try daemon.waitFor("the broken certificate to be reported") { daemon.log.contains("web configuration not reloaded") }
        #expect(try daemon.get("/healthz").status == 200)

        // The usual rotation: new files renamed into place.
        try pki.issueServerCertificate(commonName: "rotated")
        try daemon.waitFor("the new certificate to be served") { try pki.servedSubject(daemon).contains("CN=rotated") }
        #expect(daemon.log.contains("web configuration reloaded"))
    }

    @Test func badWebConfigurationsStopStartupWithExit2() throws {
        let pki = try TestPKI()
        let cases: [(name: String, yaml: String, says: String)] = [
            ("missing.yml", "tls_server_config:\n  cert_file: nowhere.crt\n  key_file: server.key\n",
             "missing.yml:2: tls_server_config.cert_file: open \(pki.path("nowhere.crt")): No such file or directory"),
            ("mismatch.yml", "tls_server_config:\n  cert_file: server.crt\n  key_file: client.key\n",
             "tls_server_config: key: not a PEM private key matching the certificate"),
            ("directory.yml", "tls_server_config:\n  cert_file: .\n  key_file: server.key\n",
             "directory.yml:2: tls_server_config.cert_file:"),
            ("hash.yml", "basic_auth_users:\n  alice: hello\n", "hash.yml:2: basic_auth_users.alice: not a bcrypt hash"),
            ("unknown.yml", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  ciphers: []\n",
             "unknown.yml:4: tls_server_config.ciphers: unknown key"),
            ("noauth.yml", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: ca.crt\n",
             "noauth.yml:4: tls_server_config: a client CA is given without a client_auth_type"),
        ]
        for item in cases {
            let file = try pki.write(item.name, item.yaml)
            let run = try DaemonProcess.run(DaemonProcess.binary.path, Self.fixture + [
                "--web.listen-address", "127.0.0.1:0", "--state.directory", "", "--web.config-file", file,
            ])
            #expect(run.status == 2, "\(item.name): \(run.error)")
            #expect(run.error.contains(item.says), "\(item.name): \(run.error)")
            #expect(!run.error.contains("listening"), "\(item.name) must fail before listening")
        }
        // check-config loads the web configuration its file names, as the daemon would.
        let config = try pki.write("slabwatch.yml", "web:\n  config-file: \(pki.path("mismatch.yml"))\n")
        let check = try DaemonProcess.run(DaemonProcess.binary.path, ["check-config", config])
        #expect(check.status == 2 && check.error.contains("not a PEM private key matching the certificate"), "\(check.error)")
        try pki.write("slabwatch.yml", "web:\n  config-file: \(pki.path("good.yml"))\n")
        try pki.write("good.yml", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n")
        let good = try DaemonProcess.run(DaemonProcess.binary.path, ["check-config", config])
        #expect(good.status == 0 && good.output.contains("good.yml: ok"), "\(good.output)\(good.error)")
        // An unreadable file, as the daemon's own unprivileged user would meet it.
        let key = pki.path("server.key")
        chmod(key, 0o600)
        let unprivileged = try DaemonProcess.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
            DaemonProcess.binary.path, "--web.listen-address", "127.0.0.1:0", "--state.directory", "",
            "--web.config-file", try pki.write("web.yml", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n")])
        #expect(unprivileged.status == 2)
        #expect(unprivileged.error.contains("Permission denied"), "\(unprivileged.error)")
    }

    /// Connections that never finish a handshake are shed for a scrape and
    /// closed at web.header-timeout; the scrape gets through meanwhile.
    @Test func unfinishedHandshakesDoNotKeepAScrapeOut() throws {
        let pki = try TestPKI()
        let web = try pki.write("web.yml", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n")
        let daemon = try DaemonProcess(arguments: Self.fixture + ["--web.config-file", web, "--web.header-timeout", "2s"],
                                       scheme: "https", clientOptions: ["--cacert", pki.path("ca.crt")])
        // Half of them send the first bytes of a ClientHello and stop; the others send nothing.
        var stalled: [Int32] = []
        defer { stalled.forEach { close($0) } }
        for index in 0..<300 {
            let fd = try connectLoopback(daemon.port)
            if index.isMultiple(of: 2) { _ = [UInt8]([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) } }
            stalled.append(fd)
        }
        let scrape = try daemon.get("/metrics")
        #expect(scrape.status == 200)
        let values = samples(scrape.body)
        // 300 stalled + this scrape at a cap of 64: all but 63 made room.
        #expect(values["slabwatch_http_connections_shed_total"] ?? 0 >= 237)
        try daemon.waitFor("the stalled handshakes to time out", timeout: 10) {
            let now = samples(try daemon.get("/metrics").body)
            return now["slabwatch_http_tls_handshake_failures_total"] ?? 0 >= 63
        }
    }
}

/// A CA, a server certificate for localhost/127.0.0.1, a client certificate
/// with SAN prometheus.example and one without it, made with openssl in a
/// temporary directory that goes away with the value.
final class TestPKI {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-pki-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                     "-keyout", path("ca.key"), "-out", path("ca.crt"), "-subj", "/CN=slabwatch test CA"])
        try issue("server", subject: "/CN=localhost", san: "DNS:localhost,IP:127.0.0.1")
        try issue("client", subject: "/CN=prometheus", san: "DNS:prometheus.example")
        try issue("stranger", subject: "/CN=stranger", san: "DNS:stranger.example")
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        try replaceFile(directory.appendingPathComponent(name), with: text)
        return path(name)
    }

    /// A new server key and certificate, renamed over the old files as cert managers do.
    func issueServerCertificate(commonName: String) throws {
        try issue("next", subject: "/CN=\(commonName)", san: "DNS:localhost,IP:127.0.0.1")
        rename(path("next.key"), path("server.key"))
        rename(path("next.crt"), path("server.crt"))
    }

    /// The subject of the certificate the daemon presents now.
    func servedSubject(_ daemon: DaemonProcess) throws -> String {
        let result = try DaemonProcess.run("/usr/bin/curl", ["-sv", "-o", "/dev/null", "--cacert", path("ca.crt"), daemon.url("/healthz")])
        return result.error.split(separator: "\n").first { $0.contains("subject:") }.map(String.init) ?? ""
    }

    func issue(_ name: String, subject: String, san: String) throws {
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path("\(name).key"),
                     "-out", path("\(name).csr"), "-subj", subject])
        try write("\(name).ext", "subjectAltName=\(san)\n")
        try openssl(["x509", "-req", "-in", path("\(name).csr"), "-CA", path("ca.crt"), "-CAkey", path("ca.key"),
                     "-CAcreateserial", "-days", "2", "-out", path("\(name).crt"), "-extfile", path("\(name).ext")])
        chmod(path("\(name).key"), 0o644)  // read by the daemon's unprivileged case only where the test says
    }

    private func openssl(_ arguments: [String]) throws {
        let result = try DaemonProcess.run("/usr/bin/openssl", arguments)
        guard result.status == 0 else { throw DaemonProcess.Failure(message: "openssl \(arguments[0]) failed: \(result.error)") }
    }
}

/// A TCP connection to the daemon on loopback, left for the caller to close.
func connectLoopback(_ port: UInt16) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard result == 0 else { close(fd); throw DaemonProcess.Failure(message: "connect: errno \(errno)") }
    return fd
}
