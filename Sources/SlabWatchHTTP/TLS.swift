internal import CTLS
import Glibc

/// Who must show a client certificate, in the terms of Go's `tls.ClientAuthType`
/// (the names exporter-toolkit's web configuration uses).
public enum ClientAuthPolicy: String, Sendable, Equatable, CaseIterable {
    case noClientCert = "NoClientCert"
    case requestClientCert = "RequestClientCert"
    case requireAnyClientCert = "RequireAnyClientCert"
    case verifyClientCertIfGiven = "VerifyClientCertIfGiven"
    case requireAndVerifyClientCert = "RequireAndVerifyClientCert"

    var requests: Bool { self != .noClientCert }
    var requires: Bool { self == .requireAnyClientCert || self == .requireAndVerifyClientCert }
    var verifies: Bool { self == .verifyClientCertIfGiven || self == .requireAndVerifyClientCert }
}

public enum TLSVersion: String, Sendable, Equatable, Comparable, CaseIterable {
    case tls10 = "TLS10", tls11 = "TLS11", tls12 = "TLS12", tls13 = "TLS13"

    var protocolVersion: Int32 {
        switch self {
        case .tls10: TLS1_VERSION
        case .tls11: TLS1_1_VERSION
        case .tls12: TLS1_2_VERSION
        case .tls13: TLS1_3_VERSION
        }
    }

    public static func < (a: TLSVersion, b: TLSVersion) -> Bool { a.protocolVersion < b.protocolVersion }
}

/// What a TLS server context is made of, with the PEM text already read
/// (the web configuration reader reads the files and says which ones they were).
public struct TLSSettings: Sendable, Equatable {
    public var certificateChainPEM: [UInt8]
    public var privateKeyPEM: [UInt8]
    public var clientCAPEM: [UInt8]?
    public var clientAuth: ClientAuthPolicy = .noClientCert
    /// A client certificate must carry one of these subject alternative names (exact match).
    public var clientAllowedSANs: [String] = []
    public var minVersion: TLSVersion = .tls12
    public var maxVersion: TLSVersion = .tls13
    /// OpenSSL cipher list for TLS 1.2 and older; nil means `defaultCipherList`.
    public var cipherList: String?
    public var preferServerCiphers = true
    /// OpenSSL group list (`P-256:X25519`); nil keeps OpenSSL's default.
    public var groups: String?

    public init(certificateChainPEM: [UInt8], privateKeyPEM: [UInt8]) {
        self.certificateChainPEM = certificateChainPEM
        self.privateKeyPEM = privateKeyPEM
    }

    /// TLS 1.2 suites offered unless `cipher_suites` says otherwise: ECDHE key
    /// exchange (forward secrecy) with AEAD ciphers only, as Go's stack under
    /// exporter-toolkit offers: no static-RSA key exchange, no CBC (LUCKY13).
    /// TLS 1.3's suites are OpenSSL's defaults (all AEAD).
    public static let defaultCipherList = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")
}

public struct TLSError: Error, CustomStringConvertible, Equatable {
    public var description: String
}

/// OpenSSL and libcrypt, loaded on first use (see CTLS.h for why).
public enum TLSLibrary: Sendable {
    /// - Throws: `TLSError` saying which library or function is missing.
    public static func load() throws(TLSError) {
        var why = [CChar](repeating: 0, count: 256)
        guard slabwatch_tls_load(&why, why.count) == 1 else {
            throw TLSError(description: "cannot load OpenSSL: " + String(decoding: why.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
    }
}

/// An OpenSSL server context built from `TLSSettings`. Immutable once built
/// (OpenSSL allows sessions to be created from it on any thread); a reload
/// builds a new one and new connections use that.
public final class TLSContext: @unchecked Sendable {  // immutable after init; OpenSSL makes sessions from one context on any thread
    let context: OpaquePointer
    let allowedSANs: [String]

    /// - Throws: `TLSError` naming the part that OpenSSL refused (a chain with
    ///   no certificate, a key that does not match it, an unknown cipher, …).
    public init(_ settings: TLSSettings) throws(TLSError) {
        try TLSLibrary.load()
        guard settings.minVersion <= settings.maxVersion else {
            throw TLSError(description: "min_version \(settings.minVersion.rawValue) is above max_version \(settings.maxVersion.rawValue)")
        }
        guard let context = slabwatch_ctx_new(settings.preferServerCiphers ? 1 : 0) else {
            throw TLSError(description: Self.reason("cannot create a TLS context"))
        }
        self.context = context
        allowedSANs = settings.clientAllowedSANs
        try configure(settings)
    }

    deinit { slabwatch_ctx_free(context) }

    private func configure(_ settings: TLSSettings) throws(TLSError) {
        try check(slabwatch_ctx_set_proto_range(context, settings.minVersion.protocolVersion, settings.maxVersion.protocolVersion),
                  "TLS version range")
        try check(slabwatch_ctx_set_ciphers(context, settings.cipherList ?? TLSSettings.defaultCipherList), "cipher_suites")
        if let groups = settings.groups { try check(slabwatch_ctx_set_groups(context, groups), "curve_preferences") }
        try check(Self.withPEM(settings.certificateChainPEM) { slabwatch_ctx_use_chain_pem(context, $0, $1) },
                  "certificate: no usable PEM certificate")
        try check(Self.withPEM(settings.privateKeyPEM) { slabwatch_ctx_use_key_pem(context, $0, $1) },
                  "key: not a PEM private key matching the certificate")
        if let ca = settings.clientCAPEM {
            guard Self.withPEM(ca, { slabwatch_ctx_use_client_ca_pem(context, $0, $1) }) > 0 else {
                throw TLSError(description: Self.reason("client CA: no PEM certificate in it"))
            }
        }
        let auth = settings.clientAuth
        slabwatch_ctx_set_client_auth(context, auth.requests ? 1 : 0, auth.requires ? 1 : 0, auth.verifies ? 1 : 0)
    }

    private static func withPEM(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>?, Int) -> Int32) -> Int32 {
        bytes.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { body($0.baseAddress, $0.count) } }
    }

    private func check(_ result: Int32, _ what: String) throws(TLSError) {
        guard result == 1 else { throw TLSError(description: Self.reason(what)) }
    }

    /// `what`, followed by OpenSSL's own reason when it queued one.
    static func reason(_ what: String) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        slabwatch_last_error(&buffer, buffer.count)
        let detail = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return detail.isEmpty ? what : "\(what) (\(detail))"
    }
}

/// One TLS connection over a non-blocking socket. OpenSSL reads and writes
/// the descriptor itself; every call says whether it must wait for the socket.
final class TLSStream {
    enum Progress: Equatable { case done, wantRead, wantWrite, failed }
    enum Transfer: Equatable { case bytes(Int), wantRead, wantWrite, closed, failed }

    private let ssl: OpaquePointer
    private let context: TLSContext  // keeps the context alive as long as the session
    private var shutDown = false

    init?(context: TLSContext, fd: Int32) {
        guard let ssl = slabwatch_ssl_new(context.context, fd) else { return nil }
        self.ssl = ssl
        self.context = context
    }

    deinit { slabwatch_ssl_free(ssl) }

    func handshake() -> Progress {
        switch slabwatch_ssl_accept(ssl) {
        case Int32(SLABWATCH_TLS_DONE):
            return context.allowedSANs.isEmpty || peerHasAllowedSAN() ? .done : .failed
        case Int32(SLABWATCH_TLS_WANT_READ): return .wantRead
        case Int32(SLABWATCH_TLS_WANT_WRITE): return .wantWrite
        default: return .failed
        }
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) -> Transfer {
        Self.transfer(slabwatch_ssl_read(ssl, buffer.baseAddress, Int32(clamping: buffer.count)))
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> Transfer {
        Self.transfer(slabwatch_ssl_write(ssl, bytes.baseAddress, Int32(clamping: bytes.count)))
    }

    /// Sends close_notify once, without waiting for the peer's.
    func shutdown() {
        guard !shutDown else { return }
        shutDown = true
        slabwatch_ssl_shutdown(ssl)
    }

    private static func transfer(_ result: Int32) -> Transfer {
        switch result {
        case 1...: .bytes(Int(result))
        case Int32(SLABWATCH_TLS_WANT_READ): .wantRead
        case Int32(SLABWATCH_TLS_WANT_WRITE): .wantWrite
        case Int32(SLABWATCH_TLS_CLOSED): .closed
        default: .failed
        }
    }

    private func peerHasAllowedSAN() -> Bool {
        var pointers = context.allowedSANs.map { strdup($0) }
        defer { pointers.forEach { free($0) } }
        return pointers.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: UnsafePointer<CChar>?.self) {
                slabwatch_peer_has_allowed_san(ssl, $0.baseAddress, $0.count) == 1
            }
        }
    }
}
