import Glibc
public import SlabWatchHTTP

/// The exporter-toolkit web configuration file (`--web.config-file`): TLS,
/// client certificates, basic-auth users and response headers, in the format
/// and with the checks of Prometheus's exporters, so one file serves
/// node_exporter and slabwatch alike. Relative paths are taken from the
/// file's own directory, as exporter-toolkit does.
public struct WebConfiguration: Sendable {
    public var tls: TLSSettings?
    /// User → bcrypt hash.
    public var users: [String: String] = [:]
    public var excludedPaths: [String] = []
    public var headers: [(name: String, value: String)] = []
    /// Every file read to build this (the configuration itself first): a change
    /// to any of them means reading it again.
    public var files: [String] = []

    /// Builds what the server uses: the OpenSSL context and the authenticator.
    /// - Throws: `ConfigurationError` when OpenSSL refuses the certificate or key.
    public func security(origin: String) throws(ConfigurationError) -> WebSecurity {
        var security = WebSecurity()
        if let tls {
            do { security.tls = try TLSContext(tls) } catch {
                throw ConfigurationError(origin: origin, line: nil, key: "tls_server_config", message: error.description)
            }
        }
        if !users.isEmpty {
            do { security.authenticator = try BasicAuthenticator(users: users) } catch {
                throw ConfigurationError(origin: origin, line: nil, key: "basic_auth_users", message: error.description)
            }
        }
        security.excludedPaths = Set(excludedPaths)
        security.headers = WebSecurity.headers(configured: headers)
        return security
    }

    /// Reads and checks the file and every file it names.
    /// - Throws: `ConfigurationError` (`FILE:LINE: key: message`) for the first problem.
    public static func load(path: String) throws(ConfigurationError) -> WebConfiguration {
        let text: String
        do { text = try readText(path) } catch {
            throw ConfigurationError(origin: path, line: nil, key: nil, message: error.description)
        }
        return try parse(text, file: path)
    }

    /// Parses `text` as if read from `file` (relative paths start from its directory).
    public static func parse(_ text: String, file: String) throws(ConfigurationError) -> WebConfiguration {
        let reader = Reader(file: file)
        let root: YAMLNode?
        do { root = try YAMLDocument.parse(text) } catch {
            throw ConfigurationError(origin: file, line: error.line, key: nil, message: error.message)
        }
        var configuration = WebConfiguration()
        configuration.files = [file]
        guard let root else { return configuration }  // an empty file: nothing changes
        for (key, value) in try reader.mapping(root, "") {
            switch key {
            case "tls_server_config": configuration.tls = try reader.tls(value, files: &configuration.files)
            case "http_server_config": configuration.headers = try reader.httpServer(value)
            case "basic_auth_users": configuration.users = try reader.users(value)
            case "auth_excluded_paths": configuration.excludedPaths = try reader.strings(value, key)
            default: throw reader.error(value, key, "unknown key")
            }
        }
        return configuration
    }

    // MARK: exporter-toolkit's names

    /// Go's `tls.CipherSuites()` names → OpenSSL's. TLS 1.3 suites are accepted
    /// and, as in Go, not configurable.
    static let cipherSuites: [String: String?] = [
        "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
        "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
        "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
        "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_AES_128_GCM_SHA256": nil,
        "TLS_AES_256_GCM_SHA384": nil,
        "TLS_CHACHA20_POLY1305_SHA256": nil,
    ]

    /// Go's curve names → OpenSSL's group names.
    static let curves = ["CurveP256": "P-256", "CurveP384": "P-384", "CurveP521": "P-521", "X25519": "X25519"]

    /// The headers exporter-toolkit lets a configuration set, with the values
    /// it accepts where it limits them.
    static let headerValues: [String: Set<String>?] = [
        "Content-Security-Policy": nil, "X-XSS-Protection": nil, "Strict-Transport-Security": nil,
        "X-Frame-Options": ["deny", "sameorigin"], "X-Content-Type-Options": ["nosniff"],
    ]
}

/// Walks the YAML tree, turning every problem into `FILE:LINE: key: message`.
private struct Reader {
    let file: String
    let directory: String

    init(file: String) {
        self.file = file
        directory = file.contains("/") ? String(file[..<file.lastIndex(of: "/")!]) : "."
    }

    func error(_ node: YAMLNode, _ key: String, _ message: String) -> ConfigurationError {
        ConfigurationError(origin: file, line: node.line, key: key, message: message)
    }

    /// A mapping's keys (each once) and values; the line of the key goes with the value on error.
    func mapping(_ node: YAMLNode, _ key: String) throws(ConfigurationError) -> [(String, YAMLNode)] {
        guard case .mapping(let pairs, _) = node else { throw error(node, key, "expected a mapping, found \(node.kind)") }
        var seen: Set<String> = []
        var result: [(String, YAMLNode)] = []
        for (keyNode, value) in pairs {
            let path = key.isEmpty ? (keyNode.scalar ?? "") : "\(key).\(keyNode.scalar ?? "")"
            guard let name = keyNode.scalar else { throw error(keyNode, key, "keys must be plain strings") }
            guard seen.insert(name).inserted else { throw error(keyNode, path, "given twice") }
            result.append((name, value))
        }
        return result
    }

    func string(_ node: YAMLNode, _ key: String) throws(ConfigurationError) -> String {
        guard let text = node.scalar else { throw error(node, key, "expected a single value, found \(node.kind)") }
        return text
    }

    func strings(_ node: YAMLNode, _ key: String) throws(ConfigurationError) -> [String] {
        guard case .sequence(let items, _) = node else { throw error(node, key, "expected a list, found \(node.kind)") }
        return try items.map { (item) throws(ConfigurationError) -> String in try string(item, key) }
    }

    func bool(_ node: YAMLNode, _ key: String) throws(ConfigurationError) -> Bool {
        switch try string(node, key) {
        case "true": return true
        case "false": return false
        case let other: throw error(node, key, "expected true or false, found \"\(other)\"")
        }
    }

    func path(_ node: YAMLNode, _ key: String) throws(ConfigurationError) -> String {
        let text = try string(node, key)
        guard !text.isEmpty else { throw error(node, key, "empty path") }
        return text.hasPrefix("/") ? text : "\(directory)/\(text)"
    }

    func contents(_ path: String, _ node: YAMLNode, _ key: String) throws(ConfigurationError) -> [UInt8] {
        do { return Array(try FileReader(initialCapacity: 16 << 10, maximumSize: 1 << 20).read(path)) } catch {
            throw self.error(node, key, error.description)
        }
    }

    // MARK: sections

    func tls(_ node: YAMLNode, files: inout [String]) throws(ConfigurationError) -> TLSSettings? {
        let section = "tls_server_config"
        var pem: [String: (bytes: [UInt8], node: YAMLNode)] = [:]  // cert, key, client_ca
        var clientAuth: ClientAuthPolicy?
        var sans: [String] = [], ciphers: [String]?, groups: [String]?
        var minVersion = TLSVersion.tls12, maxVersion = TLSVersion.tls13, preferServer = true
        for (name, value) in try mapping(node, section) {
            let key = "\(section).\(name)"
            switch name {
            case "cert_file", "key_file", "client_ca_file":
                let part = String(name.dropLast(5))
                guard pem[part] == nil else { throw error(value, key, "give \(part) or \(name), not both") }
                let path = try path(value, key)
                pem[part] = (try contents(path, value, key), value)
                files.append(path)
            case "cert", "key", "client_ca":
                guard pem[name] == nil else { throw error(value, key, "give \(name) or \(name)_file, not both") }
                pem[name] = (Array(try string(value, key).utf8), value)
            case "client_auth_type":
                let text = try string(value, key)
                // "RequireClientCert" is exporter-toolkit's older spelling.
                guard let policy = ClientAuthPolicy(rawValue: text == "RequireClientCert" ? "RequireAnyClientCert" : text) else {
                    throw error(value, key, "unknown client_auth_type \"\(text)\" (one of \(ClientAuthPolicy.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                clientAuth = policy
            case "client_allowed_sans": sans = try strings(value, key)
            case "min_version": minVersion = try version(value, key)
            case "max_version": maxVersion = try version(value, key)
            case "prefer_server_cipher_suites": preferServer = try bool(value, key)
            case "cipher_suites":
                ciphers = try strings(value, key).map { (suite) throws(ConfigurationError) -> String? in
                    guard let openSSL = WebConfiguration.cipherSuites[suite] else { throw error(value, key, "unknown cipher suite \"\(suite)\"") }
                    return openSSL
                }.compactMap { $0 }
            case "curve_preferences":
                groups = try strings(value, key).map { (curve) throws(ConfigurationError) -> String in
                    guard let group = WebConfiguration.curves[curve] else {
                        throw error(value, key, "unknown curve \"\(curve)\" (one of \(WebConfiguration.curves.keys.sorted().joined(separator: ", ")))")
                    }
                    return group
                }
            default: throw error(value, key, "unknown key")
            }
        }
        // exporter-toolkit turns TLS on when any of these is given.
        guard !pem.isEmpty || clientAuth != nil else { return nil }
        guard let cert = pem["cert"] else { throw error(node, section, "missing cert_file") }
        guard let key = pem["key"] else { throw error(node, section, "missing key_file") }
        let policy = clientAuth ?? .noClientCert
        if let ca = pem["client_ca"], policy == .noClientCert {
            throw error(ca.node, section, "a client CA is given without a client_auth_type that uses it")
        }
        if pem["client_ca"] == nil, policy == .verifyClientCertIfGiven || policy == .requireAndVerifyClientCert {
            throw error(node, section, "client_auth_type \(policy.rawValue) needs client_ca_file")
        }
        guard minVersion <= maxVersion else { throw error(node, section, "min_version is above max_version") }
        var settings = TLSSettings(certificateChainPEM: cert.bytes, privateKeyPEM: key.bytes)
        settings.clientCAPEM = pem["client_ca"]?.bytes
        settings.clientAuth = policy
        settings.clientAllowedSANs = sans
        settings.minVersion = minVersion
        settings.maxVersion = maxVersion
        settings.preferServerCiphers = preferServer
        if let ciphers, !ciphers.isEmpty { settings.cipherList = ciphers.joined(separator: ":") }
        if let groups, !groups.isEmpty { settings.groups = groups.joined(separator: ":") }
        return settings
    }

    func version(_ node: YAMLNode, _ key: String) throws(ConfigurationError) -> TLSVersion {
        let text = try string(node, key)
        guard let version = TLSVersion(rawValue: text) else {
            throw error(node, key, "unknown TLS version \"\(text)\" (one of TLS10, TLS11, TLS12, TLS13)")
        }
        return version
    }

    func httpServer(_ node: YAMLNode) throws(ConfigurationError) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = []
        for (name, value) in try mapping(node, "http_server_config") {
            let key = "http_server_config.\(name)"
            switch name {
            case "http2": _ = try bool(value, key)  // HTTP/1.1 only: accepted so shared files load
            case "headers":
                for (header, text) in try mapping(value, key) {
                    let headerKey = "\(key).\(header)"
                    guard let allowed = WebConfiguration.headerValues[header] else {
                        throw error(text, headerKey, "not a header that can be set (one of \(WebConfiguration.headerValues.keys.sorted().joined(separator: ", ")))")
                    }
                    let headerValue = try string(text, headerKey)
                    if headerValue.isEmpty { continue }  // "unset if blank"
                    guard !headerValue.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
                        throw error(text, headerKey, "control characters are not allowed in a header value")
                    }
                    if let allowed, !allowed.contains(headerValue.lowercased()) {
                        throw error(text, headerKey, "must be one of \(allowed.sorted().joined(separator: ", "))")
                    }
                    headers.append((header, headerValue))
                }
            default: throw error(value, key, "unknown key")
            }
        }
        return headers
    }

    func users(_ node: YAMLNode) throws(ConfigurationError) -> [String: String] {
        var users: [String: String] = [:]
        for (user, value) in try mapping(node, "basic_auth_users") {
            let key = "basic_auth_users.\(user)"
            guard !user.contains(":") else { throw error(value, key, "a user name cannot contain a colon") }
            let hash = try string(value, key)
            guard BasicAuthenticator.isBcryptHash(hash) else {
                throw error(value, key, "not a bcrypt hash ($2a$, $2b$ or $2y$, cost 4–31, 60 characters; make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)")
            }
            users[user] = hash
        }
        return users
    }
}
