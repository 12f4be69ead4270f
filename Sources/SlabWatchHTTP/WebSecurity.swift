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
    /// Added to every response (`http_server_config.headers`).
    public var headers: [(name: String, value: String)] = []

    public init(tls: TLSContext? = nil, authenticator: BasicAuthenticator? = nil) {
        self.tls = tls
        self.authenticator = authenticator
    }

    public static let open = WebSecurity()
}
