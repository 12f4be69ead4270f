/// Who may read the server and how: TLS, basic authentication and extra
/// response headers, from the exporter-toolkit web configuration file.
/// The server swaps in a new value on reload; connections already open keep
/// the TLS context they were accepted with.
public struct WebSecurity: Sendable {
    /// nil: plain HTTP.
    public var tls: TLSContext?
    /// nil: no credentials asked.
    public var authenticator: BasicAuthenticator?
    /// Paths served without credentials (exporter-toolkit's `auth_excluded_paths`).
    public var excludedPaths: Set<String> = []
    /// Added to every response (`http_server_config.headers`, over the defaults).
    public var headers: [(name: String, value: String)] = WebSecurity.defaultHeaders

    /// Sent unless configured otherwise: they cost nothing and keep a browser
    /// from reading `/metrics` or an error text as something it could run.
    public static let defaultHeaders: [(name: String, value: String)] = [("X-Content-Type-Options", "nosniff")]

    /// The defaults with `configured` added, a configured name replacing a default.
    public static func headers(configured: [(name: String, value: String)]) -> [(name: String, value: String)] {
        defaultHeaders.filter { header in !configured.contains { $0.name.lowercased() == header.name.lowercased() } } + configured
    }

    public init(tls: TLSContext? = nil, authenticator: BasicAuthenticator? = nil) {
        self.tls = tls
        self.authenticator = authenticator
    }

    public static let open = WebSecurity()
}
