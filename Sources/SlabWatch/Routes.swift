import SlabWatchCore
public import SlabWatchHTTP

/// Maps requests to the published state. Never reads /proc and never waits on
/// the sampler: every answer comes from the last tick's published state
/// (rendered on its first request, then reused) and, for history, from the
/// one reader of the ring (the pages, `/chart.svg` and `/snapshot?history=`).
public struct Routes: Sendable {
    let store: StateStore
    let history: HistoryReader

    /// Routes over what a sampler publishes: its ticks in `store`, its ring in `history`.
    public init(store: StateStore, history: HistoryReader) {
        self.store = store
        self.history = history
    }

    /// Whether the server should render `request` on its page queue.
    @Sendable public static func isPage(_ request: HTTPRequest) -> Bool { Route(rawValue: request.path)?.isPage ?? false }

    public func respond(to request: HTTPRequest) -> HTTPResponse {
        guard let route = Route(rawValue: request.path) else { return HTTPResponse(status: 404, text: Route.notFound) }
        guard request.method == "GET" || request.method == "HEAD" else {
            return HTTPResponse(status: 405, text: "only GET and HEAD are allowed\n", headers: [("Allow", "GET, HEAD")])
        }
        switch route {
        case .metrics: return published { encoded(.metrics, of: $0, contentType: PrometheusText.contentType, for: request) }
        case .snapshot where request.query != nil: return cacheHistory(request)
        case .snapshot: return published { encoded(.snapshot, of: $0, contentType: "application/json", for: request) }
        case .healthz: return health(now: Clock.monotonicNanoseconds())
        case .cache: return page(request) { inputs, slab in WebPage.cache(slab, inputs).map(Self.html) }
        case .chart: return page(request) { inputs, slab in chart(inputs, slab: slab, request: request) }
        case .index: return published { Self.html(WebPage.index(inputs($0))) }
        }
    }

    // MARK: pages

    private func inputs(_ state: PublishedState) -> WebPage.Inputs {
        WebPage.Inputs(sample: state.sample, report: state.report, history: history.read() ?? .empty,
                       sampleAgeSeconds: Double(Clock.monotonicNanoseconds() &- state.publishedAtNanoseconds) / 1e9,
                       intervalSeconds: state.intervalSeconds, version: Host.version)
    }

    /// A page about one cache (`?slab=NAME`, by any of its aliases): 404 when
    /// the latest sample has no such cache.
    private func page(_ request: HTTPRequest, _ render: (WebPage.Inputs, String) -> HTTPResponse?) -> HTTPResponse {
        guard let items = request.queryItems else { return HTTPResponse(status: 400, text: "malformed query string\n") }
        guard let slab = items.first(where: { $0.name == "slab" })?.value, !slab.isEmpty else {
            return HTTPResponse(status: 400, text: "slab=NAME is required\n")
        }
        return published { state in
            render(inputs(state), slab) ?? HTTPResponse(status: 404, text: "no cache of that name in the latest sample\n")
        }
    }

    /// `/chart.svg?slab=NAME&kind=history|evidence`: one chart alone, to paste into a ticket.
    private func chart(_ inputs: WebPage.Inputs, slab: String, request: HTTPRequest) -> HTTPResponse? {
        let kind = request.queryItems?.first { $0.name == "kind" }?.value ?? "history"
        guard let cache = inputs.sample.caches.first(where: { $0.name == slab || $0.aliases.contains(slab) }) else { return nil }
        let chart: SVGChart
        switch kind {
        case "history":
            chart = WebPage.historyChart(slab: cache.name, points: inputs.history.points(slab: cache.name, seconds: .infinity) ?? [])
        case "evidence":
            guard let finding = inputs.report.findings.first(where: { $0.slab == cache.name }) else {
                return HTTPResponse(status: 404, text: "no finding for that cache: its evidence chart exists only while one does\n")
            }
            chart = WebPage.evidenceChart(finding)
        default: return HTTPResponse(status: 400, text: "kind must be history or evidence\n")
        }
        return HTTPResponse(status: 200, contentType: "image/svg+xml", body: Array(chart.render().utf8))
    }

    private static func html(_ text: String) -> HTTPResponse {
        HTTPResponse(status: 200, contentType: "text/html; charset=utf-8", body: Array(text.utf8),
                     headers: [("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'")])
    }

    /// Seconds written in decimal digits (`600`, `1.5`). Double's own parser
    /// also takes `0x10`, `1e3`, `inf` and `nan`, none of which the HTTP reference promises.
    static func decimalSeconds(_ text: String) -> Double? {
        let parts = text.utf8.split(separator: UInt8(ascii: "."), maxSplits: 1, omittingEmptySubsequences: false)
        let isDigit = { (byte: UInt8) in (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
        guard let whole = parts.first, !whole.isEmpty, whole.allSatisfy(isDigit),
              parts.count == 1 || (!parts[1].isEmpty && parts[1].allSatisfy(isDigit))
        else { return nil }
        return Double(text)
    }

    /// `/snapshot?slab=NAME&history=SECONDS`: one cache's series from the ring.
    private func cacheHistory(_ request: HTTPRequest) -> HTTPResponse {
        guard let items = request.queryItems else { return HTTPResponse(status: 400, text: "malformed query string\n") }
        let slab = items.first { $0.name == "slab" }?.value
        let historyText = items.first { $0.name == "history" }?.value ?? "3600"
        if items.contains(where: { $0.name != "slab" && $0.name != "history" }) {
            return HTTPResponse(status: 400, text: "unknown query parameter (use slab and history)\n")
        }
        guard let slab, !slab.isEmpty else { return HTTPResponse(status: 400, text: "slab=NAME is required with a query\n") }
        guard let seconds = Self.decimalSeconds(historyText) else {
            return HTTPResponse(status: 400, text: "history must be a number of seconds\n")
        }
        // The snapshot lists merged caches' other names as aliases: they find the cache too.
        let name = store.latest?.sample.caches.first { $0.aliases.contains(slab) }?.name ?? slab
        guard let points = history.read()?.points(slab: name, seconds: seconds) else {
            return HTTPResponse(status: 404, text: "no cache of that name in the history\n")
        }
        return HTTPResponse(status: 200, contentType: "application/json",
                            body: HistoryPoint.render(slab: name, seconds: seconds, points: points))
    }

    /// gzip when the client accepts it (Prometheus always does), identity otherwise.
    private func encoded(_ body: PublishedState.Body, of state: PublishedState, contentType: String,
                         for request: HTTPRequest) -> HTTPResponse {
        let vary = (name: "Vary", value: "Accept-Encoding")
        if Gzip.isAccepted(by: request.header("Accept-Encoding")), let compressed = state.gzipped(body) {
            return HTTPResponse(status: 200, contentType: contentType, body: compressed,
                                headers: [(name: "Content-Encoding", value: "gzip"), vary])
        }
        return HTTPResponse(status: 200, contentType: contentType, body: state.bytes(body), headers: [vary])
    }

    private func published(_ body: (PublishedState) -> HTTPResponse) -> HTTPResponse {
        guard let state = store.latest else {
            return HTTPResponse(status: 503, text: "no sample taken yet\n", headers: [("Retry-After", "1")])
        }
        return body(state)
    }

    /// Fresh means a sample was published within three intervals (plus a second
    /// of slack for short intervals); otherwise the sampler is stuck.
    func health(now: UInt64) -> HTTPResponse {
        guard let state = store.latest else {
            return HTTPResponse(status: 503, text: "no sample taken yet\n")
        }
        let age = Double(now &- state.publishedAtNanoseconds) / 1e9
        let limit = 3 * state.intervalSeconds + 1
        guard age <= limit else {
            return HTTPResponse(status: 503, text: "sampler stuck: last sample \(Int(age)) s ago (interval \(state.intervalSeconds) s)\n")
        }
        let down = Source.allCases.filter { !state.sample.status(of: $0).up }.map(\.rawValue)
        let note = down.isEmpty ? "" : " (sources down: \(down.joined(separator: ", ")))"
        return HTTPResponse(status: 200, text: "ok\(note)\n")
    }
}

/// The paths slabwatch answers.
enum Route: String, CaseIterable, Sendable {
    case index = "/"
    case metrics = "/metrics"
    case snapshot = "/snapshot"
    case healthz = "/healthz"
    case cache = "/cache"
    case chart = "/chart.svg"

    /// Pages for people: rendered per request, on the server's page queue,
    /// so `/metrics` and `/healthz` never wait behind one.
    var isPage: Bool {
        switch self {
        case .index, .cache, .chart: true
        case .metrics, .snapshot, .healthz: false
        }
    }

    /// Whether it answers only with a query (`?slab=NAME`).
    var needsQuery: Bool { self == .cache || self == .chart }

    /// The answer to a path that is none of these: the ones to try, those that need no query.
    static let notFound: String = {
        let paths = allCases.filter { !$0.needsQuery }.map(\.rawValue)
        return "not found; try \(paths.dropLast().joined(separator: ", ")) or \(paths.last ?? "/")\n"
    }()
}
