import Foundation
import Testing
import TestSupport
@testable import SlabWatch
import SlabWatchCore
import SlabWatchHTTP

struct ConfigurationTests {
    @Test func shippedExampleIsValidAndEqualsTheDefaults() throws {
        let file = TestPaths.repositoryRoot.appendingPathComponent("config/slabwatch.yml")
        let loaded = try ConfigurationSource(file: file.path, overrides: []).load()
        let defaults = Configuration()
        #expect(loaded.listenAddresses == defaults.listenAddresses)
        #expect(loaded.limits == defaults.limits)
        #expect(loaded.ring == defaults.ring)
        #expect(loaded.sampler.intervalSeconds == defaults.sampler.intervalSeconds)
        #expect(loaded.sampler.paths == defaults.sampler.paths)
        #expect(loaded.logLevel == defaults.logLevel)
        #expect(loaded.sampler.detector == defaults.sampler.detector)
        #expect(loaded.sampler.bound == defaults.sampler.bound)
    }

    @Test func fileValuesAndFlagOverrides() throws {
        let dir = try TemporaryDirectory()
        try dir.write("c.yml", """
            web:
              listen-address: ["127.0.0.1:9999", "[::1]:9999"]
              max-header-bytes: 16KiB
            sampler:
              interval: 500ms
            slab:
              min-memory-bytes: 1MiB
              top-by-growth: 0
            """)
        let c = try ConfigurationSource(file: dir.path("c.yml"), overrides: [("sampler.interval", "1m"), ("slab.export", "all")]).load()
        #expect(c.listenAddresses.map(\.description) == ["127.0.0.1:9999", "[::1]:9999"])
        #expect(c.limits.maxHeaderBytes == 16384)
        #expect(c.sampler.intervalSeconds == 60)
        #expect(c.sampler.minimumFootprintBytes == 1 << 20)
        #expect(c.sampler.bound == ExportBound(all: true, topByFootprint: 20, topByGrowth: 0))
    }

    @Test(arguments: [
        ("sampler:\n  intervall: 5s\n", "c.yml:2: sampler.intervall: unknown key"),
        ("sampler:\n  interval: soon\n", "c.yml:2: sampler.interval: 'soon' is not a duration (e.g. 500ms, 5s, 1m)"),
        ("sampler:\n  interval: 0s\n", "c.yml:2: sampler.interval: 0s is out of range (0.1s to 3600.0s)"),
        ("web:\n  max-connections: [1, 2]\n", "c.yml:2: web.max-connections: expected a single value, found a list"),
        ("web: 5\n", "c.yml:1: web: expected a section (mapping), found a value"),
        ("web:\n  listen-address: \"nowhere\"\n", "c.yml:2: web.listen-address: invalid listen address 'nowhere': expected HOST:PORT, [IPv6]:PORT or :PORT"),
        ("ring:\n  fine-samples: -3\n", "c.yml:2: ring.fine-samples: -3 is out of range (2 to 1000000)"),
        ("slab:\n  include: \"kmalloc-[\"\n", "c.yml:2: slab.include: invalid regular expression 'kmalloc-[': missing ']'"),
        ("slab:\n  exclude: \"(a)\\\\1\"\n", "c.yml:2: slab.exclude: invalid regular expression '(a)\\1': backreferences are not supported"),
        ("sampler:\n  interval: 5s\n  interval: 1s\n", "c.yml:3: duplicate key 'interval'"),
        ("sampler:\n  interval: 5s\nsampler:\n  interval: 1s\n", "c.yml:3: duplicate key 'sampler'"),
        ("a: &x 5s\nsampler:\n  interval: *x\n", "c.yml:1: anchors (&name) are not accepted"),
        ("- just\n- a list\n", "c.yml:1: top level must be a mapping of sections"),
        ("web:\n  max-connections: 5\n   bad: indent\n", "c.yml:3: YAML syntax error"),
        ("log:\n  level: loud\n", "c.yml:2: log.level: 'loud' is not one of"),
        ("detector:\n  min-r-squared: 1.5\n", "c.yml:2: detector.min-r-squared: '1.5' must be a number above 0 and at most 1"),
        ("detector:\n  reclaimable: maybe\n", "c.yml:2: detector.reclaimable: 'maybe' is not true or false"),
        ("detector:\n  windows: [5m, soon]\n", "c.yml:2: detector.windows: 'soon' is not a duration"),
        ("slab:\n  export: everything\n", "c.yml:2: slab.export: 'everything' is not one of bounded, all"),
    ])
    func badFileIsOneClearLineNamingKeyAndLine(yaml: String, expected: String) throws {
        let dir = try TemporaryDirectory()
        try dir.write("c.yml", yaml)
        do {
            _ = try ConfigurationSource(file: dir.path("c.yml"), overrides: []).load()
            Issue.record("accepted: \(yaml)")
        } catch {
            let text = error.description.replacingOccurrences(of: dir.url.path + "/", with: "")
            #expect(text.hasPrefix(expected), "\(text)")
            #expect(!text.contains("\n"))
        }
    }

    @Test func badFlagNamesTheFlag() {
        #expect(throws: ConfigurationError(origin: "flag --web.max-connections", line: nil, key: "web.max-connections",
                                           message: "'many' is not a whole number")) {
            try ConfigurationSource(file: nil, overrides: [("web.max-connections", "many")]).load()
        }
    }

    @Test func missingFileIsAClearError() {
        #expect(throws: ConfigurationError.self) {
            try ConfigurationSource(file: "/nonexistent/slabwatch.yml", overrides: []).load()
        }
    }

    @Test func emptyFileMeansDefaults() throws {
        let dir = try TemporaryDirectory()
        try dir.write("c.yml", "")
        let c = try ConfigurationSource(file: dir.path("c.yml"), overrides: []).load()
        #expect(c.sampler.intervalSeconds == 5)
    }

    @Test(arguments: [("500ms", 0.5), ("5s", 5.0), ("1m", 60.0), ("2h", 7200.0), ("7", 7.0)])
    func durations(text: String, seconds: Double) {
        #expect(Units.seconds(text) == seconds)
    }

    @Test(arguments: [("4096", UInt64(4096)), ("64KiB", 65536), ("64MiB", 64 << 20), ("10kB", 10_000), ("1GB", 1_000_000_000)])
    func sizes(text: String, bytes: UInt64) {
        #expect(Units.bytes(text) == bytes)
    }

    @Test(arguments: ["", "1.5KiB", "KiB", "-1", "99999999999999999999", "1 MiB"])
    func badSizes(text: String) {
        #expect(Units.bytes(text) == nil)
    }
}

struct ListenAddressTests {
    @Test(arguments: [
        ("127.0.0.1:10077", "127.0.0.1:10077"), ("[::1]:80", "[::1]:80"), ("[::]:9", "[::]:9"),
        (":10077", ":10077"), ("localhost:1", "127.0.0.1:1"),
    ])
    func parses(text: String, canonical: String) throws {
        #expect(try ListenAddress(parsing: text).description == canonical)
    }

    @Test(arguments: ["10077", "host:1", "1.2.3:4", "[::1:80", "127.0.0.1:65536", "127.0.0.1:", "::1:80"])
    func rejects(text: String) {
        #expect(throws: ListenAddress.Invalid.self) { try ListenAddress(parsing: text) }
    }
}

/// The YAML reader refuses what a configuration never needs and an attacker would use.
struct YAMLDocumentTests {
    @Test(arguments: [
        ("a: &x [1, 2]\nb: *x\n", "anchors (&name) are not accepted"),
        ("b: *x\n", "aliases (*name) are not accepted"),
        ("a: 1\n---\nb: 2\n", "more than one YAML document"),
        (String(repeating: "[", count: 40) + String(repeating: "]", count: 40), "nested deeper than 32 levels"),
        ("# " + String(repeating: "x", count: 1 << 20) + "\n", "larger than 1048576 bytes"),
        ("a: 1\na: 2\n", "duplicate key 'a'"),
        ("a: [1, 2\n", "YAML syntax error"),
    ] as [(String, String)])
    func refuses(_ text: String, _ reason: String) {
        #expect {
            _ = try YAMLDocument.parse(text)
        } throws: { error in
            (error as? YAMLError)?.message.contains(reason) == true
        }
    }

    @Test func readsTheShippedFileWithLines() throws {
        let text = try String(contentsOf: TestPaths.repositoryRoot.appendingPathComponent("config/slabwatch.yml"), encoding: .utf8)
        guard case .mapping(let sections, _) = try #require(try YAMLDocument.parse(text)) else { Issue.record("not a mapping"); return }
        #expect(sections.map { $0.key.scalar } == ["web", "path", "sampler", "ring", "slab", "detector", "alerts", "state", "attribution", "log"])
        let web = try #require(sections.first?.value)
        guard case .mapping(let keys, _) = web else { Issue.record("web is not a mapping"); return }
        #expect(keys.first?.key.scalar == "listen-address" && keys.first?.value.scalar == ":10077")
        #expect(text.split(separator: "\n", omittingEmptySubsequences: false)[keys[0].key.line - 1].contains("listen-address"))
        #expect(try YAMLDocument.parse("") == nil)
    }
}
