import Foundation
import Testing
import TestSupport
@testable import SlabWatch
import SlabWatchHTTP

/// The exporter-toolkit web configuration: what it accepts, and the
/// `FILE:LINE: key: message` it gives for what it does not.
struct WebConfigurationTests {
    static let hash = "$2y$10$vaGhZBVTv0F./3cFfFMOf.dVvoKnM14swfFqxR/CzI/5qhKkuoQQO"

    /// A directory holding stand-in PEM files (parsing reads them; OpenSSL
    /// checks them later, in `security`).
    func directory() throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory()
        for name in ["server.crt", "server.key", "ca.crt"] { try dir.write("certs/\(name)", "PEM \(name)\n") }
        return dir
    }

    func parse(_ yaml: String, in dir: TemporaryDirectory) throws(ConfigurationError) -> WebConfiguration {
        try WebConfiguration.parse(yaml, file: dir.path("web.yml"))
    }

    func problem(_ yaml: String) throws -> String {
        let dir = try directory()
        do {
            _ = try parse(yaml, in: dir)
            return "accepted"
        } catch {
            return error.description.replacingOccurrences(of: dir.url.path, with: "DIR")
        }
    }

    @Test func fullConfigurationIsRead() throws {
        let dir = try directory()
        let web = try parse("""
            tls_server_config:
              cert_file: certs/server.crt
              key_file: \(dir.path("certs/server.key"))
              client_auth_type: RequireAndVerifyClientCert
              client_ca_file: certs/ca.crt
              client_allowed_sans: [prometheus.example, 10.0.0.1]
              min_version: TLS13
              max_version: TLS13
              cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]
              prefer_server_cipher_suites: false
              curve_preferences: [X25519, CurveP256]
            http_server_config:
              http2: false
              headers:
                X-Frame-Options: deny
                Strict-Transport-Security: max-age=31536000
                Content-Security-Policy: ""
            basic_auth_users:
              alice: \(Self.hash)
            auth_excluded_paths: [/healthz]
            """, in: dir)
        let tls = try #require(web.tls)
        // Relative paths are taken from the configuration file's directory.
        #expect(web.files == [dir.path("web.yml"), dir.path("certs/server.crt"), dir.path("certs/server.key"), dir.path("certs/ca.crt")])
        #expect(tls.certificateChainPEM == Array("PEM server.crt\n".utf8))
        #expect(tls.clientCAPEM == Array("PEM ca.crt\n".utf8))
        #expect(tls.clientAuth == .requireAndVerifyClientCert)
        #expect(tls.clientAllowedSANs == ["prometheus.example", "10.0.0.1"])
        #expect(tls.minVersion == .tls13 && tls.maxVersion == .tls13)
        #expect(tls.cipherList == "ECDHE-RSA-AES128-GCM-SHA256")
        #expect(!tls.preferServerCiphers)
        #expect(tls.groups == "X25519:P-256")
        #expect(web.headers.map(\.name) == ["X-Frame-Options", "Strict-Transport-Security"])  // blank: unset
        #expect(web.users == ["alice": Self.hash])
        #expect(web.excludedPaths == ["/healthz"])
    }

    /// `X-Content-Type-Options: nosniff` goes on every response unless the
    /// file sets it (to the one value exporter-toolkit allows); configured
    /// headers come after it.
    @Test func nosniffIsSentByDefault() throws {
        let dir = try directory()
        let plain = try parse("http_server_config:\n  headers:\n    X-Frame-Options: deny\n", in: dir).security(origin: "web.yml")
        #expect(plain.headers.map { "\($0.name): \($0.value)" } == ["X-Content-Type-Options: nosniff", "X-Frame-Options: deny"])
        let configured = try parse("http_server_config:\n  headers:\n    X-Content-Type-Options: NoSniff\n", in: dir).security(origin: "web.yml")
        #expect(configured.headers.map { "\($0.name): \($0.value)" } == ["X-Content-Type-Options: NoSniff"])
        #expect(WebSecurity.open.headers.map(\.name) == ["X-Content-Type-Options"])
    }

    @Test func withoutTLSKeysThereIsNoTLS() throws {
        let dir = try directory()
        let web = try parse("basic_auth_users:\n  alice: \(Self.hash)\n", in: dir)
        #expect(web.tls == nil && web.users.count == 1)
        #expect(try parse("", in: dir).tls == nil)
        let inline = try parse("tls_server_config:\n  cert: |\n    PEM inline\n  key_file: certs/server.key\n", in: dir)
        #expect(inline.tls?.certificateChainPEM == Array("PEM inline\n".utf8))
    }

    @Test func problemsNameFileLineAndKey() throws {
        let cases: [(String, String)] = [
            ("tls_server_config:\n  cert_file: certs/server.crt\n", "DIR/web.yml:2: tls_server_config: missing key_file"),
            ("tls_server_config:\n  key_file: certs/server.key\n", "DIR/web.yml:2: tls_server_config: missing cert_file"),
            ("tls_server_config:\n  cert_file: nope.crt\n  key_file: certs/server.key\n",
             "DIR/web.yml:2: tls_server_config.cert_file: open DIR/nope.crt: No such file or directory"),
            ("tls_server_config:\n  cert: x\n  cert_file: certs/server.crt\n  key_file: certs/server.key\n",
             "DIR/web.yml:3: tls_server_config.cert_file: give cert or cert_file, not both"),
            ("tls_server_config:\n  cert_file: certs/server.crt\n  key_file: certs/server.key\n  client_auth_type: Sometimes\n",
             "DIR/web.yml:4: tls_server_config.client_auth_type: unknown client_auth_type \"Sometimes\""),
            ("tls_server_config:\n  cert_file: certs/server.crt\n  key_file: certs/server.key\n  client_auth_type: VerifyClientCertIfGiven\n",
             "DIR/web.yml:2: tls_server_config: client_auth_type VerifyClientCertIfGiven needs client_ca_file"),
            ("tls_server_config:\n  cert_file: certs/server.crt\n  key_file: certs/server.key\n  min_version: TLS14\n",
             "DIR/web.yml:4: tls_server_config.min_version: unknown TLS version \"TLS14\""),
            ("tls_server_config:\n  cert_file: certs/server.crt\n  key_file: certs/server.key\n  min_version: TLS13\n  max_version: TLS12\n",
             "DIR/web.yml:2: tls_server_config: min_version is above max_version"),
            ("tls_server_config:\n  cert_file: certs/server.crt\n  key_file: certs/server.key\n  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n",
             "DIR/web.yml:4: tls_server_config.cipher_suites: unknown cipher suite \"TLS_RSA_WITH_RC4_128_SHA\""),
            ("tls_server_config:\n  cert_file: certs/server.crt\n  key_file: certs/server.key\n  curve_preferences: [CurveP224]\n",
             "DIR/web.yml:4: tls_server_config.curve_preferences: unknown curve \"CurveP224\""),
            ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
             "DIR/web.yml:3: http_server_config.headers.X-Frame-Options: must be one of deny, sameorigin"),
            ("http_server_config:\n  headers:\n    Set-Cookie: a=b\n",
             "DIR/web.yml:3: http_server_config.headers.Set-Cookie: not a header that can be set"),
            ("http_server_config:\n  headers:\n    Content-Security-Policy: \"a\\r\\nSet-Cookie: x\"\n",
             "DIR/web.yml:3: http_server_config.headers.Content-Security-Policy: control characters are not allowed"),
            ("http_server_config:\n  http2: maybe\n", "DIR/web.yml:2: http_server_config.http2: expected true or false"),
            ("basic_auth_users:\n  alice: $2y$10$short\n", "DIR/web.yml:2: basic_auth_users.alice: not a bcrypt hash"),
            ("basic_auth_users:\n  \"a:b\": \(Self.hash)\n", "DIR/web.yml:2: basic_auth_users.a:b: a user name cannot contain a colon"),
            ("basic_auth_users: [alice]\n", "DIR/web.yml:1: basic_auth_users: expected a mapping, found a list"),
            ("tls_config:\n  cert_file: x\n", "DIR/web.yml:2: tls_config: unknown key"),
            ("tls_server_config: [", "DIR/web.yml:"),
        ]
        for (yaml, expected) in cases {
            let said = try problem(yaml)
            #expect(said.hasPrefix(expected), "\(yaml)")
        }
    }

    @Test func openSSLRefusalIsAConfigurationError() throws {
        let dir = try directory()
        let web = try parse("tls_server_config:\n  cert_file: certs/server.crt\n  key_file: certs/server.key\n", in: dir)
        #expect(throws: ConfigurationError.self) { try web.security(origin: "web.yml") }
        do { _ = try web.security(origin: "web.yml") } catch {
            #expect(error.description.hasPrefix("web.yml: tls_server_config: certificate: no usable PEM certificate"))
        }
    }

    @Test func exporterToolkitFlagNameIsAnAlias() throws {
        let flags = try KeyFlags.split(["--web.config.file", "/etc/slabwatch/web.yml", "run"])
        #expect(flags.overrides.map(\.key) == ["web.config-file"])
        #expect(flags.rest == ["run"])
    }
}
