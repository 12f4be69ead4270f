import Foundation
import Glibc
import Testing
import TestSupport

/// The real binary, real curl, real promtool, on a recorded root and on this
/// machine's live /proc. Serialized: each test owns a daemon process.
@Suite(.serialized)
struct EndToEndTests {
    static var fixtureArguments: [String] {
        ["--path.procfs", Paths.localCapture.appendingPathComponent("proc").path,
         "--path.sysfs", Paths.localCapture.appendingPathComponent("sys").path,
         "--sampler.interval", "200ms"]
    }

    @Test func fixtureRootServesEveryEndpoint() throws {
        let daemon = try DaemonProcess(arguments: Self.fixtureArguments)
        let metrics = try daemon.get("/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.headers.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"))
        let values = samples(metrics.body)
        let recorded = try String(contentsOf: Paths.localCapture.appendingPathComponent("proc/slabinfo"), encoding: .utf8)
        let line = try #require(recorded.split(separator: "\n").first { $0.hasPrefix("ext4_inode_cache ") }).split(separator: " ")
        #expect(values["slabwatch_slab_footprint_bytes{slab=\"ext4_inode_cache\"}"] == Double(line[14])! * Double(line[5])! * 4096)
        #expect(values["slabwatch_slab_reclaimable{slab=\"ext4_inode_cache\"}"] == 1)
        #expect(values["slabwatch_source_up{source=\"slabinfo\"}"] == 1)
        #expect(values["process_resident_memory_bytes"] ?? 0 > 0)
        let lint = try DaemonProcess.run(Paths.promtool, ["check", "metrics"], input: Data(metrics.body.utf8))
        #expect(lint.status == 0 && lint.output.isEmpty && lint.error.isEmpty, "\(lint.output)\(lint.error)")

        let snapshot = try daemon.get("/snapshot")
        #expect(snapshot.headers.contains("Content-Type: application/json"))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(snapshot.body.utf8)) as? [String: Any])
        let caches = try #require(json["caches"] as? [[String: Any]])
        #expect(caches.count == 235)
        #expect(caches.first?["name"] as? String == "ext4_inode_cache")
        #expect(json["interval_seconds"] as? Double == 0.2)
        // A merged cache's alias, as the snapshot lists it, finds its history.
        let merged = try #require(caches.first { $0["name"] as? String == "lsm_file_cache" })
        #expect((merged["aliases"] as? [String])?.contains("fsnotify_mark_connector") == true)
        let byAlias = try daemon.get("/snapshot?slab=fsnotify_mark_connector&history=60")
        #expect(byAlias.status == 200 && byAlias.body.contains("\"slab\":\"lsm_file_cache\""), "\(byAlias.status) \(byAlias.body)")

        #expect(try daemon.get("/healthz").status == 200)
        #expect(try daemon.get("/").body.contains("href=\"/metrics\""))
        // HEAD on / (its body never changes; /metrics changes every tick).
        let index = try daemon.get("/")
        let head = try DaemonProcess.run("/usr/bin/curl", ["-sS", "-I", "--max-time", "5", "http://127.0.0.1:\(daemon.port)/"])
        #expect(head.status == 0 && head.output.hasPrefix("HTTP/1.1 200 OK"))
        #expect(head.output.contains("Content-Length: \(index.body.utf8.count)\r\n"))
        let metricsHead = try DaemonProcess.run("/usr/bin/curl", ["-sS", "-I", "--max-time", "5", "http://127.0.0.1:\(daemon.port)/metrics"])
        #expect(metricsHead.output.contains("Content-Type: text/plain; version=0.0.4"))
        #expect(try daemon.get("/nope").status == 404)
        // Error texts never echo the request: a reflected body is an injection surface.
        for target in ["/cache?slab=probe%3Cb%3E", "/snapshot?slab=probe%3Cb%3E", "/snapshot?probe%3Cb%3E=1",
                       "/chart.svg?slab=probe%3Cb%3E", "/nope?probe"] {
            let refused = try daemon.get(target)
            #expect(refused.status >= 400 && !refused.body.contains("probe"), "\(target): \(refused.status) \(refused.body)")
            #expect(refused.headers.contains("X-Content-Type-Options: nosniff"), "\(target)")
        }
        #expect(index.headers.contains("X-Content-Type-Options: nosniff"))
        let post = try daemon.get("/metrics", extra: ["-X", "DELETE"])
        #expect(post.status == 405 && post.headers.contains("Allow: GET, HEAD"))
        let huge = try daemon.get("/metrics", extra: ["-H", "X-Big: \(String(repeating: "x", count: 10_000))"])
        #expect(huge.status == 431)
        #expect(daemon.process.isRunning)
        try daemon.waitFor("server counters in /metrics") {
            samples(try daemon.get("/metrics").body)["slabwatch_http_bad_requests_total"] ?? 0 >= 1
        }
        #expect(samples(try daemon.get("/metrics").body)["slabwatch_http_requests_total"] ?? 0 >= 5)

        let stop = daemon.terminate()
        #expect(stop.isClean, "\(stop)")
    }

    @Test func slowClientDoesNotBlockOthers() throws {
        let daemon = try DaemonProcess(arguments: Self.fixtureArguments + ["--web.header-timeout", "1s"])
        let slow = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(slow) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = daemon.port.bigEndian
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(slow, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(connected == 0)
        _ = "GET /metrics HTTP/1.1\r\n".withCString { send(slow, $0, strlen($0), 0) }
        #expect(try daemon.get("/healthz").status == 200)  // served while the slow one dangles
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(slow, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = recv(slow, &buffer, buffer.count, 0)
        #expect(n > 0 && String(decoding: buffer[0..<max(n, 0)], as: UTF8.self).hasPrefix("HTTP/1.1 408 "))
    }

    @Test func sighupReloadsAndKeepsServingOnABrokenFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = dir.appendingPathComponent("slabwatch.yml")
        try replaceFile(config, with: "slab:\n  include: \"dentry|ext4_.*\"\n")
        let daemon = try DaemonProcess(arguments: Self.fixtureArguments + ["--config", config.path])
        let before = samples(try daemon.get("/metrics").body)
        #expect(before["slabwatch_slab_footprint_bytes{slab=\"dentry\"}"] != nil)
        #expect(before["slabwatch_slab_footprint_bytes{slab=\"kmalloc-32\"}"] == nil)
        let samplesBefore = before["slabwatch_samples_total"] ?? 0

        try replaceFile(config, with: "slab:\n  include: \"kmalloc-32\"\n")
        daemon.signal(SIGHUP)
        try daemon.waitFor("reload") {
            samples(try daemon.get("/metrics").body)["slabwatch_slab_footprint_bytes{slab=\"kmalloc-32\"}"] != nil
        }
        let after = samples(try daemon.get("/metrics").body)
        #expect(after["slabwatch_slab_footprint_bytes{slab=\"dentry\"}"] == nil)
        #expect(after["slabwatch_samples_total"] ?? 0 > samplesBefore)  // history and counters kept
        // --web.listen-address came from a flag and did not change: no restart warning.
        #expect(!daemon.log.contains("take effect after a restart"), "\(daemon.log)")
        daemon.signal(SIGUSR1)  // ignored, and said so; the daemon keeps serving
        try daemon.waitFor("SIGUSR1 logged") { daemon.log.contains("signal ignored") }
        #expect(try daemon.get("/healthz").status == 200)

        try replaceFile(config, with: "slab:\n  include: [broken\n")
        daemon.signal(SIGHUP)
        try daemon.waitFor("reload failure logged") { daemon.log.contains("reload failed") }
        #expect(daemon.log.contains("YAML syntax error"))
        #expect(samples(try daemon.get("/metrics").body)["slabwatch_slab_footprint_bytes{slab=\"kmalloc-32\"}"] != nil)
        #expect(daemon.terminate().status == 0)
    }

    @Test func liveProcFootprintsMatchSlabinfo() throws {
        let daemon = try DaemonProcess(arguments: ["--sampler.interval", "500ms", "--slab.export", "all"])
        let values = samples(try daemon.get("/metrics").body)
        let slabinfo = try DaemonProcess.run("/bin/cat", ["/proc/slabinfo"]).output  // /proc sizes read as 0
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        var compared = 0
        for line in slabinfo.split(separator: "\n").dropFirst(2) {
            let fields = line.split(separator: " ")
            guard let pages = Double(fields[5]), let slabs = Double(fields[14]), slabs > 100 else { continue }
            let kernel = slabs * pages * pageSize
            let ours = try #require(values["slabwatch_slab_footprint_bytes{slab=\"\(fields[0])\"}"])
            #expect(abs(ours - kernel) / kernel < 0.2, "\(fields[0]): \(ours) vs \(kernel)")  // sampled moments apart
            compared += 1
        }
        #expect(compared > 5)
        #expect(values["slabwatch_memory_slab_unreclaimable_bytes"] ?? 0 > 0)
        #expect(values["slabwatch_source_up{source=\"sysfs_slab\"}"] == 1)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(try daemon.get("/snapshot").body.utf8)) as? [String: Any])
        let dentry = try #require((json["caches"] as? [[String: Any]])?.first { $0["name"] as? String == "dentry" })
        #expect(dentry["reclaimable"] as? Bool == true)
    }

    @Test(.enabled(if: getuid() == 0, "drops to nobody"))
    func unprivilegedUserKeepsServingWhatItCanRead() throws {
        let daemon = try DaemonProcess(
            arguments: ["--sampler.interval", "500ms"],
            wrapper: ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
        let values = samples(try daemon.get("/metrics").body)
        #expect(values["slabwatch_source_up{source=\"slabinfo\"}"] == 0)
        #expect(values["slabwatch_source_up{source=\"meminfo\"}"] == 1)
        #expect(values["slabwatch_memory_total_bytes"] ?? 0 > 0)
        let health = try daemon.get("/healthz")
        #expect(health.status == 200 && health.body.contains("slabinfo"))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(try daemon.get("/snapshot").body.utf8)) as? [String: Any])
        let sources = try #require(json["sources"] as? [String: [String: Any]])
        #expect((sources["slabinfo"]?["error"] as? String)?.contains("CAP_DAC_READ_SEARCH") == true)
        #expect(daemon.log.contains("source down"))
    }

    @Test func realPrometheusScrapesTheDaemon() throws {
        let daemon = try DaemonProcess(arguments: Self.fixtureArguments)
        let prometheus = try PrometheusServer(scrapeConfigs: """
              - job_name: slabwatch
                static_configs:
                  - targets: ["127.0.0.1:\(daemon.port)"]

            """)
        try daemon.waitFor("Prometheus to scrape", timeout: 60) { try prometheus.value("up{job=\"slabwatch\"}") == "1" }
        #expect(try prometheus.value("count(slabwatch_slab_footprint_bytes)") == "20")  // the bounded default's top 20
        let failures = try prometheus.query("scrape_samples_post_metric_relabeling{job=\"slabwatch\"} > 0")
        #expect(!failures.isEmpty)
    }

    @Test func commandsAndExitCodes() throws {
        let snapshot = try DaemonProcess.run(DaemonProcess.binary.path, ["snapshot"] + Self.fixtureArguments.prefix(4))
        #expect(snapshot.status == 0)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(snapshot.output.utf8)) as? [String: Any])
        #expect((json["caches"] as? [Any])?.count == 235)

        let good = try DaemonProcess.run(DaemonProcess.binary.path, ["check-config", Paths.repositoryRoot.appendingPathComponent("config/slabwatch.yml").path])
        #expect(good.status == 0)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-cc-\(UUID().uuidString).yml")
        try replaceFile(dir, with: "sampler:\n  interval: 5 parsecs\n")
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = try DaemonProcess.run(DaemonProcess.binary.path, ["check-config", dir.path])
        #expect(bad.status == 2)
        #expect(bad.error.contains(":2: sampler.interval:"))

        let badFlag = try DaemonProcess.run(DaemonProcess.binary.path, ["--sampler.interval", "never"])
        #expect(badFlag.status == 2)
        #expect(badFlag.error.split(separator: "\n").count == 1)
        // Usage errors exit 2 like configuration errors (ArgumentParser's own code is 64).
        let unknownFlag = try DaemonProcess.run(DaemonProcess.binary.path, ["--no-such-flag"])
        #expect(unknownFlag.status == 2 && unknownFlag.error.contains("no-such-flag"))
        // A word that is no command never runs the daemon with it as an argument.
        let unknownCommand = try DaemonProcess.run(DaemonProcess.binary.path, ["frobnicate"])
        #expect(unknownCommand.status == 2 && unknownCommand.error == "slabwatch: unknown command 'frobnicate'; see 'slabwatch --help'\n",
                "\(unknownCommand.error)")
        let missingFile = try DaemonProcess.run(DaemonProcess.binary.path, ["check-config"])
        #expect(missingFile.status == 2)

        let daemon = try DaemonProcess(arguments: Self.fixtureArguments)
        // Its own state directory too: a daemon takes its state lock before it
        // listens, so without one this run left /var/lib/slabwatch behind.
        let defaultState = "/var/lib/slabwatch"
        let defaultStateExisted = FileManager.default.fileExists(atPath: defaultState)
        let clash = try DaemonProcess.run(DaemonProcess.binary.path, Self.fixtureArguments
            + ["--web.listen-address", "127.0.0.1:\(daemon.port)", "--state.directory", ""])
        #expect(clash.status == 3)
        #expect(clash.error.contains("Address already in use"))
        #expect(FileManager.default.fileExists(atPath: defaultState) == defaultStateExisted, "the test left \(defaultState)")

        let version = try DaemonProcess.run(DaemonProcess.binary.path, ["--version"])
        #expect(version.status == 0 && !version.output.isEmpty)
        let help = try DaemonProcess.run(DaemonProcess.binary.path, ["--help"])
        #expect(help.output.contains("snapshot") && help.output.contains("check-config"))
        // Every key is a flag of `run`; other commands list and take only the keys they use.
        let runHelp = try DaemonProcess.run(DaemonProcess.binary.path, ["run", "--help"])
        for key in ["web.listen-address", "alerts.cooldown", "alerts.journal-socket", "detector.trend-limit-share",
                    "detector.critical-exhaustion", "sampler.max-caches", "log.level"] {
            #expect(runHelp.output.contains("--\(key) VALUE"), "run --help lacks --\(key)")
        }
        let snapshotHelp = try DaemonProcess.run(DaemonProcess.binary.path, ["snapshot", "--help"])
        #expect(!snapshotHelp.output.contains("--web."))
        let misplaced = try DaemonProcess.run(DaemonProcess.binary.path, ["replay", "/nonexistent", "--web.listen-address", ":1"])
        #expect(misplaced.status == 2 && misplaced.error.contains("--web.listen-address does not apply to 'replay'"))
    }
}

/// A procfs root with tiny meminfo and VFS counters, and the slabinfo a test
/// gives (none: the test puts its own in place); removed when released.
final class FakeProcRoot {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-proc-\(UUID().uuidString)")

    init(slabinfo: String?) throws {
        try FileManager.default.createDirectory(at: url.appendingPathComponent("proc/sys/fs"), withIntermediateDirectories: true)
        var files = ["meminfo": "MemTotal: 1 kB\n", "sys/fs/inode-nr": "1 0\n",
                     "sys/fs/dentry-state": "1 0 45 0 0 0\n", "sys/fs/file-nr": "1 0 9\n"]
        if let slabinfo { files["slabinfo"] = slabinfo }
        for (file, text) in files {
            try replaceFile(url.appendingPathComponent("proc/\(file)"), with: text)
        }
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// Daemon flags reading this root every 200 ms.
    var arguments: [String] {
        ["--path.procfs", url.appendingPathComponent("proc").path, "--path.sysfs", url.appendingPathComponent("sys").path,
         "--sampler.interval", "200ms"]
    }
}

/// An unused loopback port (bind to 0, read it back, release it).
func freePort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            _ = bind(fd, $0, length)
            _ = getsockname(fd, $0, &length)
        }
    }
    return UInt16(bigEndian: addr.sin_port)
}

extension EndToEndTests {
    /// A FIFO in place of /proc/slabinfo used to block the sampler in open(2)
    /// for ever. Now it is refused at once as not a regular file: the source is
    /// down (one log line), everything else keeps being sampled and served, and
    /// the source comes back by itself when a regular file replaces the FIFO.
    @Test func fifoInPlaceOfASourceIsRefusedAndRecovers() throws {
        let root = try FakeProcRoot(slabinfo: nil)
        let fifo = root.url.appendingPathComponent("proc/slabinfo").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let daemon = try DaemonProcess(arguments: root.arguments)
        try daemon.waitFor("samples despite the FIFO", timeout: 10) {
            samples(try daemon.get("/metrics").body)["slabwatch_samples_total"] ?? 0 >= 5
        }
        let metrics = samples(try daemon.get("/metrics").body)
        #expect(metrics["slabwatch_source_up{source=\"slabinfo\"}"] == 0)
        #expect(metrics["slabwatch_source_up{source=\"meminfo\"}"] == 1)
        #expect(metrics["slabwatch_samples_skipped_total"] == 0)
        let health = try daemon.get("/healthz")
        #expect(health.status == 200 && health.body.contains("slabinfo"), "\(health.body)")
        #expect(daemon.log.contains("not a regular file"), "\(daemon.log)")

        unlink(fifo)
        try replaceFile(URL(fileURLWithPath: fifo), with: "slabinfo - version: 2.1\ndentry 1 2 192 21 1 : tunables 0 0 0 : slabdata 1 1 0\n")
        try daemon.waitFor("slabinfo up again", timeout: 10) {
            samples(try daemon.get("/metrics").body)["slabwatch_source_up{source=\"slabinfo\"}"] == 1
        }
        #expect(daemon.log.contains("source up again"))
        let stop = daemon.terminate()
        #expect(stop.isClean, "\(stop)")
    }
}

extension EndToEndTests {
    /// 10,000 caches used to cost 229 MB that never came back; now the sample
    /// keeps sampler.max-caches of them (the largest), says so once, counts the
    /// rest, and the daemon's memory stays bounded.
    @Test func tenThousandCachesAreBoundedByMaxCaches() throws {
        var slabinfo = "slabinfo - version: 2.1\n"
        for i in 0..<10_000 { slabinfo += "cache\(i) 1 1 32 128 1 : tunables 0 0 0 : slabdata \(i + 1) \(i + 1) 0\n" }
        let root = try FakeProcRoot(slabinfo: slabinfo)
        let daemon = try DaemonProcess(arguments: root.arguments)
        try daemon.waitFor("20 samples", timeout: 30) {
            samples(try daemon.get("/metrics").body)["slabwatch_samples_total"] ?? 0 >= 20
        }
        let metrics = samples(try daemon.get("/metrics").body)
        // Of the 2048 kept, /metrics lists the bounded default's top 20.
        #expect(metrics["slabwatch_caches{state=\"exported\"}"] == 20)
        #expect(metrics["slabwatch_caches{state=\"beyond_top\"}"] == 2028)
        #expect(metrics["slabwatch_caches{state=\"over_limit\"}"] == 7952)
        #expect(metrics["slabwatch_slab_footprint_bytes{slab=\"cache9999\"}"] != nil)  // the largest are kept
        #expect(metrics["slabwatch_slab_footprint_bytes{slab=\"cache0\"}"] == nil)
        #expect(daemon.log.components(separatedBy: "more caches than sampler.max-caches").count == 2)  // said once
        let resident = try #require(metrics["process_resident_memory_bytes"])
        #expect(resident < 120e6, "\(resident / 1e6) MB")  // 229 MB before the limit
    }
}

extension EndToEndTests {
    /// Out of file descriptors: silent connections use up the daemon's limit,
    /// so accept() and every source read fail with EMFILE. The daemon logs it,
    /// keeps running, and once the connections time out, every source —
    /// /sys/kernel/slab too, retried with backoff — comes back by itself.
    @Test func outOfDescriptorsDegradesAndRecovers() throws {
        let daemon = try DaemonProcess(arguments: Self.fixtureArguments + ["--web.header-timeout", "2s"],
                                       wrapper: ["/usr/bin/prlimit", "--nofile=40:40"])
        try daemon.waitFor("first samples") { samples(try daemon.get("/metrics").body)["slabwatch_samples_total"] ?? 0 >= 3 }
        var silent: [Int32] = []
        defer { silent.forEach { close($0) } }
        for _ in 0..<60 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = daemon.port.bigEndian
            inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
            _ = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            silent.append(fd)
        }
        try daemon.waitFor("sources down for lack of descriptors", timeout: 10) { daemon.log.contains("Too many open files") }
        #expect(daemon.log.contains("accept: out of file descriptors"))
        silent.forEach { close($0) }
        silent = []
        try daemon.waitFor("every source up again", timeout: 20) {
            everySourceUp(samples((try? daemon.get("/metrics").body) ?? ""))
        }
        #expect(daemon.log.contains("source up again"))
        let snapshot = try daemon.get("/snapshot").body
        #expect(snapshot.contains("\"name\":\"dentry\"") && snapshot.contains("\"reclaimable\":true"))
        #expect(daemon.terminate().status == 0)
    }
}

extension EndToEndTests {
    /// No Foundation in the process: it costs more resident memory than all
    /// of slabwatch's own work (the YAML is read with libyaml, the command
    /// line with a parser of our own).
    @Test func runningDaemonMapsNoFoundation() throws {
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("slabwatch-nofoundation-\(UUID().uuidString).yml")
        try replaceFile(config, with: "sampler:\n  interval: 200ms\n")
        defer { try? FileManager.default.removeItem(at: config) }
        let daemon = try DaemonProcess(arguments: Self.fixtureArguments + ["--config", config.path])
        #expect(try daemon.get("/metrics").status == 200)
        let maps = try DaemonProcess.run("/bin/cat", ["/proc/\(daemon.pid)/maps"]).output  // /proc sizes read as 0
        let libraries = Set(maps.split(separator: "\n").compactMap { $0.split(separator: " ").last }.filter { $0.contains(".so") })
        #expect(!libraries.contains { $0.contains("libFoundation") || $0.contains("icu") }, "\(libraries.sorted())")
        #expect(libraries.contains { $0.contains("libyaml") })
    }
}

extension EndToEndTests {
    /// gzip when asked (curl --compressed, as Prometheus does on every scrape),
    /// the same bytes once decompressed, identity otherwise.
    @Test func gzipWhenTheClientAcceptsIt() throws {
        let daemon = try DaemonProcess(arguments: Array(Self.fixtureArguments.prefix(4)) + ["--sampler.interval", "1h"])
        for path in ["/metrics", "/snapshot"] {
            let plain = try daemon.get(path)
            #expect(!plain.headers.contains("Content-Encoding") && plain.headers.contains("Vary: Accept-Encoding"))
            let compressed = try daemon.get(path, extra: ["--compressed"])
            #expect(compressed.headers.contains("Content-Encoding: gzip"), "\(compressed.headers)")
            #expect(compressed.body == plain.body)  // one tick (1 h interval): the same document
            let length = try #require(compressed.headers.split(separator: "\r\n").first { $0.hasPrefix("Content-Length: ") })
            #expect(Int(length.dropFirst(16)) ?? .max < plain.body.utf8.count / 4, "\(length)")
        }
    }
}

extension EndToEndTests {
    /// The shipped fleet rules are valid and behave as their unit tests say.
    @Test func prometheusRulesPassPromtool() throws {
        let dir = Paths.repositoryRoot.appendingPathComponent("config/prometheus")
        let check = try DaemonProcess.run(Paths.promtool, ["check", "rules", dir.appendingPathComponent("slabwatch-rules.yml").path])
        #expect(check.status == 0, "\(check.output)\(check.error)")
        let test = try DaemonProcess.run(Paths.promtool, ["test", "rules", dir.appendingPathComponent("slabwatch-rules.test.yml").path])
        #expect(test.status == 0, "\(test.output)\(test.error)")
    }
}
