import Testing
@testable import SlabWatch
import SlabWatchCore
import SlabWatchHTTP

/// The daemon's routes, called as the HTTP server calls them.
struct RoutesTests {
    static let routes: Routes = {
        var ring = SampleRing(configuration: .init(fineCapacity: 8, coarseCapacity: 4, coarseEvery: 2))
        for t in 0..<4 {
            ring.append(Sample(timestampMilliseconds: 1_795_600_000_000 + Int64(t) * 5000, caches: [
                SlabCache(name: "kmalloc-32", activeObjects: 1, objects: 1, objectSize: 32, objectsPerSlab: 128,
                          pagesPerSlab: 1, activeSlabs: 1, slabs: UInt64(t + 1), pageSize: 4096),
            ]))
        }
        return Routes(store: StateStore(), history: HistoryReader(ring))
    }()

    static func status(_ query: String) throws -> Int {
        let request = try HTTPRequest.parse(head: Array("GET /snapshot?\(query) HTTP/1.1\r\nHost: test".utf8)[...])
        return routes.respond(to: request).status
    }

    /// `history=` is seconds in decimal digits: `0x10` is not 16 s.
    @Test(arguments: ["0x10", "0X10", "1e3", "inf", "nan", "-5", "%2B5", "%205", "5.", ".5", "1_000", "%D9%A3"])
    func historyOtherThanDecimalDigitsIsRefused(_ history: String) throws {
        #expect(try Self.status("slab=kmalloc-32&history=\(history)") == 400)
    }

    @Test(arguments: ["0", "16", "600", "1.5", "99999999999999999999"])
    func decimalHistoryIsServed(_ history: String) throws {
        #expect(try Self.status("slab=kmalloc-32&history=\(history)") == 200)
    }
}

/// Every route, method and error, answered from one real tick of this
/// machine's capture. (The server, not the routes, drops a `HEAD` response's
/// body; so here `HEAD` answers as `GET` does.)
extension RoutesTests {
    /// Routes over a sampler that has taken one sample of the local capture.
    static func served() throws -> (routes: Routes, sample: Sample) {
        let store = StateStore()
        let sampler = try Sampler(settings: .init(paths: TestPaths.localKernelPaths),
                                  ring: .init(fineCapacity: 8, coarseCapacity: 4, coarseEvery: 2), store: store, logger: quietLogger)
        let sample = sampler.sampleOnce().sample
        let routes = Routes(store: store, history: sampler.history)
        return (routes, sample)
    }

    static func request(_ target: String, method: String = "GET", headers: String = "") throws -> HTTPRequest {
        try HTTPRequest.parse(head: Array("\(method) \(target) HTTP/1.1\r\nHost: test\(headers)".utf8)[...])
    }

    static func header(_ response: HTTPResponse, _ name: String) -> String? {
        response.headers.first { $0.name == name }?.value
    }

    static func text(_ response: HTTPResponse) -> String { String(decoding: response.body, as: UTF8.self) }

    static let html = "text/html; charset=utf-8"

    @Test(arguments: [
        ("/metrics", "text/plain; version=0.0.4; charset=utf-8"),
        ("/snapshot", "application/json"),
        ("/snapshot?slab=dentry&history=60", "application/json"),
        ("/healthz", "text/plain; charset=utf-8"),
        ("/", html),
        ("/cache?slab=dentry", html),
        ("/chart.svg?slab=dentry", "image/svg+xml"),
        ("/chart.svg?slab=dentry&kind=history", "image/svg+xml"),
    ])
    func everyRouteAnswersGETAndHEADAlike(_ target: String, _ contentType: String) throws {
        let (routes, _) = try Self.served()
        let get = routes.respond(to: try Self.request(target))
        #expect(get.status == 200, "\(Self.text(get))")
        #expect(get.contentType == contentType)
        #expect(!get.body.isEmpty)
        let head = routes.respond(to: try Self.request(target, method: "HEAD"))
        #expect(head.status == get.status && head.contentType == get.contentType)
        #expect(head.headers.map { $0.name } == get.headers.map { $0.name })
        // The server sends HEAD's Content-Length, not its body. (A page says the
        // sample's age, which may tick between the two renders.)
        if !Routes.isPage(try Self.request(target)) { #expect(head.body == get.body) }
    }

    @Test func routesServeWhatTheTickPublished() throws {
        let (routes, sample) = try Self.served()
        let metrics = Self.text(routes.respond(to: try Self.request("/metrics")))
        #expect(metrics.contains("slabwatch_samples_total 1\n"))
        #expect(metrics.contains("slabwatch_slab_slabs{slab=\"dentry\"}"))
        let snapshot = Self.text(routes.respond(to: try Self.request("/snapshot")))
        #expect(snapshot.contains("\"name\":\"dentry\""))
        #expect(Self.text(routes.respond(to: try Self.request("/healthz"))).hasPrefix("ok"))
        let page = routes.respond(to: try Self.request("/"))
        #expect(Self.header(page, "Content-Security-Policy")?.hasPrefix("default-src 'none'") == true)
        #expect(sample.caches.contains { $0.name == "dentry" })
    }

    @Test(arguments: ["/metrics", "/snapshot", "/healthz", "/", "/cache?slab=dentry", "/chart.svg?slab=dentry"])
    func beforeTheFirstSampleEveryRouteIs503(_ target: String) throws {
        let routes = Routes(store: StateStore(), history: HistoryReader())
        let response = routes.respond(to: try Self.request(target))
        #expect(response.status == 503)
        #expect(Self.text(response) == "no sample taken yet\n")
        if target != "/healthz" { #expect(Self.header(response, "Retry-After") == "1") }
    }

    @Test(arguments: ["/nope", "/metrics/", "/favicon.ico", "/METRICS", "/snapshot.json"])
    func unknownPathsAre404(_ target: String) throws {
        let (routes, _) = try Self.served()
        let response = routes.respond(to: try Self.request(target))
        #expect(response.status == 404)
        #expect(Self.text(response) == "not found; try /, /metrics, /snapshot or /healthz\n")
        #expect(routes.respond(to: try Self.request(target, method: "POST")).status == 404)  // the path is looked up first
    }

    /// Every route answers (with `?slab=` where it needs one), and the pages
    /// are what the server renders on its page queue.
    @Test(arguments: Route.allCases)
    func everyRouteAnswers(_ route: Route) throws {
        let (routes, _) = try Self.served()
        let request = try Self.request(route.rawValue + (route.needsQuery ? "?slab=dentry" : ""))
        #expect(routes.respond(to: request).status == 200)
        #expect(Routes.isPage(request) == route.isPage)
    }

    /// The history answers come from the one reader: swapped to a newer ring,
    /// `/snapshot?history=`, `/chart.svg` and `/cache` all show it.
    @Test func aNewerRingChangesEveryHistoryAnswerTogether() throws {
        func ring(samples: Int) -> SampleRing {
            var pipeline = Pipeline(settings: .init(ring: .init(fineCapacity: 64, coarseCapacity: 8, coarseEvery: 8)))
            for t in 0..<samples {
                _ = pipeline.step(Sample(timestampMilliseconds: 1_795_600_000_000 + Int64(t) * 5000, caches: [
                    SlabCache(name: "dentry", activeObjects: 1, objects: 1, objectSize: 192, objectsPerSlab: 21,
                              pagesPerSlab: 1, activeSlabs: 1, slabs: UInt64(100 + t), pageSize: 4096, reclaimable: true),
                ]))
            }
            return pipeline.ring
        }
        let (routes, _) = try Self.served()
        func answers() throws -> (history: String, chart: String, page: String) {
            try (Self.text(routes.respond(to: Self.request("/snapshot?slab=dentry&history=3600"))),
                 Self.text(routes.respond(to: Self.request("/chart.svg?slab=dentry"))),
                 Self.text(routes.respond(to: Self.request("/cache?slab=dentry"))))
        }
        func points(_ json: String) throws -> Int? { try JSONValue.parse(Array(json.utf8))["points"]?.array?.count }
        routes.history.replace { $0 = ring(samples: 3) }
        let older = try answers()
        routes.history.replace { $0 = ring(samples: 9) }
        let newer = try answers()
        #expect(try points(older.history) == 3 && points(newer.history) == 9)
        #expect(newer.chart != older.chart)
        #expect(older.page.contains(older.chart) && newer.page.contains(newer.chart) && !newer.page.contains(older.chart))
    }

    @Test(arguments: ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get"])
    func otherMethodsAre405WithAllow(_ method: String) throws {
        let (routes, _) = try Self.served()
        for target in ["/metrics", "/snapshot", "/healthz", "/", "/cache?slab=dentry", "/chart.svg?slab=dentry"] {
            let response = routes.respond(to: try Self.request(target, method: method))
            #expect(response.status == 405, "\(method) \(target)")
            #expect(Self.header(response, "Allow") == "GET, HEAD")
        }
    }

    @Test(arguments: [("gzip", true), ("deflate, gzip;q=0.5", true), ("*", true), ("identity", false),
                      ("gzip;q=0", false), ("", false)])
    func metricsAndSnapshotAreGzippedWhenAccepted(_ acceptEncoding: String, _ gzipped: Bool) throws {
        let (routes, _) = try Self.served()
        for target in ["/metrics", "/snapshot"] {
            let headers = acceptEncoding.isEmpty ? "" : "\r\nAccept-Encoding: \(acceptEncoding)"
            let response = routes.respond(to: try Self.request(target, headers: headers))
            #expect(Self.header(response, "Vary") == "Accept-Encoding")
            #expect((Self.header(response, "Content-Encoding") == "gzip") == gzipped, "\(target) \(acceptEncoding)")
            #expect((response.body.prefix(2) == [0x1f, 0x8b]) == gzipped)
        }
    }

    @Test(arguments: [
        ("/cache", 400, "slab=NAME is required\n"),
        ("/cache?slab=", 400, "slab=NAME is required\n"),
        ("/cache?slab=%zz", 400, "malformed query string\n"),
        ("/cache?slab=no_such_cache", 404, "no cache of that name in the latest sample\n"),
        ("/chart.svg", 400, "slab=NAME is required\n"),
        ("/chart.svg?slab=dentry&kind=pie", 400, "kind must be history or evidence\n"),
        ("/chart.svg?slab=dentry&kind=evidence", 404, "no finding for that cache: its evidence chart exists only while one does\n"),
        ("/chart.svg?slab=no_such_cache", 404, "no cache of that name in the latest sample\n"),
        ("/snapshot?history=60", 400, "slab=NAME is required with a query\n"),
        ("/snapshot?slab=", 400, "slab=NAME is required with a query\n"),
        ("/snapshot?slab=dentry&window=60", 400, "unknown query parameter (use slab and history)\n"),
        ("/snapshot?slab=dentry&history=%", 400, "malformed query string\n"),
        ("/snapshot?slab=dentry&history=ten", 400, "history must be a number of seconds\n"),
        ("/snapshot?slab=no_such_cache", 404, "no cache of that name in the history\n"),
    ])
    func queryErrorsSayWhatIsWrong(_ target: String, _ status: Int, _ message: String) throws {
        let (routes, _) = try Self.served()
        let response = routes.respond(to: try Self.request(target))
        #expect(response.status == status)
        #expect(Self.text(response) == message)
    }

    @Test func queryValuesArePercentAndPlusDecoded() throws {
        let (routes, _) = try Self.served()
        let plain = routes.respond(to: try Self.request("/snapshot?slab=dentry&history=60"))
        let encoded = routes.respond(to: try Self.request("/snapshot?%73lab=%64entry&history=6%30"))
        #expect(encoded.status == 200 && encoded.body == plain.body)
        #expect(Self.text(plain).contains("\"slab\":\"dentry\""))
    }

    @Test func aMergedCachesOtherNameFindsIt() throws {
        let (routes, sample) = try Self.served()
        let merged = try #require(sample.caches.first { !$0.aliases.isEmpty }, "the capture has merged caches")
        let alias = try #require(merged.aliases.first)
        let history = routes.respond(to: try Self.request("/snapshot?slab=\(alias)&history=60"))
        #expect(history.status == 200)
        #expect(Self.text(history).contains("\"slab\":\"\(merged.name)\""))
        #expect(routes.respond(to: try Self.request("/cache?slab=\(alias)")).status == 200)
    }

    /// Fresh within three intervals and a second; stuck after that.
    @Test func healthSaysStuckOnceSamplesAreStale() {
        let store = StateStore()
        var sample = Sample(timestampMilliseconds: 0)
        for source in Source.allCases { sample.sources[source] = SourceStatus(up: source != .meminfo, error: nil) }
        PublishedStateTests.state(sample, publishedAtNanoseconds: 1_000_000_000, in: store)
        let routes = Routes(store: store, history: HistoryReader())
        let fresh = routes.health(now: 1_000_000_000 + 16_000_000_000)
        #expect(fresh.status == 200)
        #expect(Self.text(fresh) == "ok (sources down: meminfo)\n")
        let stuck = routes.health(now: 1_000_000_000 + 16_100_000_000)
        #expect(stuck.status == 503)
        #expect(Self.text(stuck) == "sampler stuck: last sample 16 s ago (interval 5.0 s)\n")
    }

    @Test func pagesForPeopleGoToThePageQueue() throws {
        for target in ["/", "/cache?slab=dentry", "/chart.svg?slab=dentry"] { #expect(Routes.isPage(try Self.request(target))) }
        for target in ["/metrics", "/snapshot", "/snapshot?slab=dentry", "/healthz", "/nope"] { #expect(!Routes.isPage(try Self.request(target))) }
    }
}
