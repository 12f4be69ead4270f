import Glibc
import SlabWatch
import SlabWatchCore
import SlabWatchHTTP

/// One libFuzzer entry point; `SLABWATCH_FUZZ_TARGET` picks the code under test
/// (scripts/fuzz.sh runs each in turn). Every harness only has to survive its
/// input: a crash, a hang or a sanitizer report is the finding.
let target = getenv("SLABWATCH_FUZZ_TARGET").map { String(cString: $0) } ?? "slabinfo"

let authenticator = try! BasicAuthenticator(users: ["alice": "$2y$10$vaGhZBVTv0F./3cFfFMOf.dVvoKnM14swfFqxR/CzI/5qhKkuoQQO"])

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    switch target {
    case "slabinfo": _ = try? SlabInfoParser.parse(bytes[...], pageSize: 4096)
    case "meminfo": _ = MeminfoParser.parse(bytes[...])
    case "fs":
        _ = try? FSCountersParser.inodeNr(bytes[...])
        _ = try? FSCountersParser.dentryState(bytes[...])
        _ = try? FSCountersParser.fileNr(bytes[...])
    case "kernel-objects":
        _ = KernelObjectParser.loadavg(bytes[...])
        _ = KernelObjectParser.sockstat(bytes[...])
        _ = KernelObjectParser.memoryCgroups(bytes[...])
        _ = KernelObjectParser.cgroupStat(bytes[...])
    case "http-head":
        if let request = try? HTTPRequest.parse(head: bytes[...]) {
            _ = request.queryItems
            _ = request.wantsKeepAlive
        }
    case "query": Query.respond(bytes)
    case "config": _ = try? Configuration.load(file: "fuzz.yml", contents: String(decoding: bytes, as: UTF8.self))
    case "recording": Recording.replay(bytes)
    case "replay-names": Recording.replayNames(bytes)
    case "state": RestoredState.use(bytes)
    case "web-config":
        // Inline PEM only: a path in the input would make the fuzzer read files.
        let text = String(decoding: bytes, as: UTF8.self)
        if !text.contains("_file"), let web = try? WebConfiguration.parse(text, file: "fuzz.yml") { _ = try? web.security(origin: "fuzz.yml") }
    case "basic-auth":
        // Decides from the header alone; bcrypt itself is libcrypt's.
        _ = authenticator.decide(authorization: String(decoding: bytes, as: UTF8.self))
    case "snapshot":
        if let snapshot = try? SnapshotReader.parse(bytes) {
            var options = TopView.Options()
            options.width = 120
            _ = TopView.render(sample: snapshot.sample, history: .empty, report: .init(findings: snapshot.findings), options: options)
        }
    case "http-response": HTTPResponse.read(bytes)
    case "measurement": MeasurementReport.read(bytes)
    case "attribution":
        // trace_pipe text, a hist table and /proc/allocinfo: what a session reads from the kernel.
        let text = Substring(String(decoding: bytes, as: UTF8.self))
        // A cache's session, and a large-allocation session, which takes a repeated pointer back.
        for var accumulator in [TraceAccumulator(cache: "kmalloc-32"), TraceAccumulator(cache: Attribution.outsideCaches, largeAllocations: true)] {
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) { accumulator.take(line) }
            _ = AttributionRenderer.text(accumulator.result(windowSeconds: 1, dropped: 0, stopReason: .duration, endedMilliseconds: 0))
        }
        _ = KernelAllocationTables.attribution(cache: "x", hist: KernelAllocationTables.parseHist(text), windowSeconds: 1)
        if let rows = KernelAllocationTables.parseAllocInfo(text)?.rows {
            _ = KernelAllocationTables.attribution(cache: "x", from: rows.reversed(), to: rows, windowSeconds: 1)
        }
    default:
        let message = "unknown SLABWATCH_FUZZ_TARGET \(target)\n"
        _ = message.withCString { write(2, $0, strlen($0)) }
        exit(2)
    }
    return 0
}

/// A state file's content (as the daemon reads it after the checksum),
/// restored as the daemon restores it: what its checks let through must take
/// the first ticks (append, evaluate, alert, the reboot path) and render
/// every page, message and metric without trapping.
enum RestoredState {
    /// The machine's clock in the harness: fixed, so a finding replays.
    static let now: Int64 = 1_796_000_000_000

    static func use(_ bytes: [UInt8]) {
        guard let state = try? SavedState.parse(bytes), (try? state.checkTimes(now: now)) != nil else { return }
        var pipeline = Pipeline(settings: .init(ring: state.ring.configuration))
        _ = pipeline.restore(state, rebootSeenAt: nil)
        var policy = AlertPolicy()
        policy.memory = state.alerts
        var time = max(now, state.metadata.lastSampleMilliseconds)
        for tick in 0..<3 {
            time = time &+ 5000  // the sample clock continues after the restored newest sample
            if tick == 2 {  // a restore from an earlier boot, of the state as it stands
                let saved = SavedState(pipeline.latest!, pageSize: 4096, bootID: "earlier", procfs: "/proc", version: "fuzz",
                                       alerts: policy.memory)
                _ = pipeline.restore(saved, rebootSeenAt: time)
            }
            let step = pipeline.step(Self.sample(at: time, tick: tick, names: pipeline.ring.seriesNames.prefix(3)))
            _ = policy.alerts(for: step.report, now: time)
            render(step.sample, step.report, History(step.ring), names: step.ring.seriesNames.prefix(8))
        }
    }

    /// A sample with kmalloc-32 and up to three of the restored caches.
    static func sample(at time: Int64, tick: Int, names: ArraySlice<String>) -> Sample {
        let caches = (["kmalloc-32"] + names.filter { $0 != "kmalloc-32" }).map { name in
            SlabCache(name: name, activeObjects: 1, objects: 1, objectSize: 32, objectsPerSlab: 128,
                      pagesPerSlab: 1, activeSlabs: 1, slabs: UInt64(1 + tick), pageSize: 4096, reclaimable: false)
        }
        return Sample(timestampMilliseconds: time, caches: caches, inodes: .init(inodes: UInt64(1 + tick * 100), freeInodes: 0))
    }

    /// Everything the daemon and `top` show of a tick.
    static func render(_ sample: Sample, _ report: GrowthDetector.Report, _ history: History, names: ArraySlice<String>) {
        for finding in report.findings {
            _ = finding.message
            _ = WebPage.evidenceChart(finding)
        }
        var statistics = PersistenceStatistics()
        statistics.restore = .sameBoot
        _ = MetricsRenderer.render(.init(sample: sample, exportedCaches: sample.caches, version: "fuzz", report: report,
                                         own: SelfStatistics(persistence: statistics)))
        _ = SnapshotRenderer.render(sample, intervalSeconds: 5, report: report)
        _ = SnapshotRenderer.renderFindings(report.findings)
        let inputs = WebPage.Inputs(sample: sample, report: report, history: history, sampleAgeSeconds: 1, intervalSeconds: 5, version: "fuzz")
        _ = WebPage.index(inputs)
        for name in names + report.findings.map(\.slab) {
            _ = WebPage.cache(name, inputs)
            _ = WebPage.historyChart(slab: name, points: history.points(slab: name, seconds: .infinity) ?? [])
        }
        var options = TopView.Options()
        options.width = 120
        _ = TopView.render(sample: sample, history: history, report: report, options: options)
    }

    /// A valid state to start the corpus from (fuzz.sh asks for it once).
    static func seed() -> [UInt8] {
        let start = now - 3_600_000  // an hour before the harness's clock: times it restores
        let detector = { var s = DetectorSettings(); s.windowsSeconds = [20]; s.minGrowthBytes = 4096
                         s.minDriverChange = 1; s.openAfterEvaluations = 1; s.minPoints = 3; return s }()
        var pipeline = Pipeline(settings: .init(detector: detector, ring: .init(fineCapacity: 8, coarseCapacity: 4, coarseEvery: 2)))
        for t in 0..<8 {
            let cache = SlabCache(name: "kmalloc-32", activeObjects: 1, objects: 1, objectSize: 32, objectsPerSlab: 128,
                                  pagesPerSlab: 1, activeSlabs: UInt64(t + 1), slabs: UInt64(10 * t + 1), pageSize: 4096, reclaimable: false)
            _ = pipeline.step(Sample(timestampMilliseconds: start + Int64(t) * 5000, caches: [cache], inodes: .init(inodes: UInt64(100 * t + 1), freeInodes: 0)))
        }
        guard let latest = pipeline.latest else { return [] }
        let state = SavedState(latest, pageSize: 4096, bootID: "seed", procfs: "/proc", version: "fuzz", alerts: AlertPolicy().memory)
        return (try? state.serialized()) ?? []
    }
}

/// libFuzzer calls this once before fuzzing: with SLABWATCH_FUZZ_SEED set it
/// writes the seed of the `state` or `measurement` harness there and exits.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    guard let path = getenv("SLABWATCH_FUZZ_SEED") else { return 0 }
    let seed = target == "measurement" ? MeasurementReport.seed() : RestoredState.seed()
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { exit(1) }
    _ = seed.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    exit(0)
}

/// A daemon's answer as `top --url` reads it: the whole input in one piece,
/// then again in pieces (their size from the first byte), must give the same
/// response or the same error; a 200's body then goes to the snapshot reader.
enum HTTPResponse {
    static func read(_ bytes: [UInt8]) {
        let whole = outcome(bytes, pieceSize: max(1, bytes.count))
        let pieces = outcome(bytes, pieceSize: Int(bytes.first ?? 0) % 17 + 1)
        guard whole == pieces else { fatalError("pieces of \(Int(bytes.first ?? 0) % 17 + 1) bytes: \(pieces), whole: \(whole)") }
        if case .success(let response) = whole, response.status == 200 { _ = try? SnapshotReader.parse(response.body) }
    }

    static func outcome(_ bytes: [UInt8], pieceSize: Int) -> Result<HTTPResponseReader.Response, HTTPResponseReader.Failure> {
        var reader = HTTPResponseReader()
        return Result { () throws(HTTPResponseReader.Failure) in
            for start in stride(from: 0, to: bytes.count, by: pieceSize) {
                if let response = try reader.take(bytes[start..<min(bytes.count, start + pieceSize)]) { return response }
            }
            return try reader.finish()
        }
    }
}

/// `/snapshot?<input>` against a ring holding one cache, through the real routes.
enum Query {
    static let routes: Routes = {
        var ring = SampleRing(configuration: .init(fineCapacity: 8, coarseCapacity: 4, coarseEvery: 2))
        for t in 0..<10 {
            ring.append(Sample(timestampMilliseconds: 1_795_600_000_000 + Int64(t) * 5000, caches: [
                SlabCache(name: "kmalloc-32", activeObjects: 1, objects: 1, objectSize: 32, objectsPerSlab: 128,
                          pagesPerSlab: 1, activeSlabs: 1, slabs: UInt64(t + 1), pageSize: 4096),
            ]))
        }
        return Routes(store: StateStore(), history: HistoryReader(ring))
    }()

    static func respond(_ bytes: [UInt8]) {
        let head = Array("GET /snapshot?".utf8) + bytes + Array(" HTTP/1.1\r\nHost: fuzz".utf8)
        guard let request = try? HTTPRequest.parse(head: head[...]) else { return }
        _ = routes.respond(to: request)
    }
}

/// One recorded sample made of the input (its five proc files, split at NUL
/// bytes), replayed through ProcReader, the ring and the detector.
enum Recording {
    /// Under $TMPDIR (scripts/fuzz.sh points it into its work folder and removes it).
    static let directory: String = {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(base)/slabwatch-fuzz-XXXXXX".utf8CString)
        return String(cString: mkdtemp(&template)!)
    }()
    static let files = ["slabinfo", "meminfo", "sys/fs/inode-nr", "sys/fs/dentry-state", "sys/fs/file-nr"]

    static func replay(_ bytes: [UInt8]) {
        let sample = "\(directory)/1795600000000"
        mkdir(sample, 0o755); mkdir("\(sample)/proc", 0o755); mkdir("\(sample)/proc/sys", 0o755); mkdir("\(sample)/proc/sys/fs", 0o755)
        let parts = bytes.split(separator: 0, maxSplits: files.count - 1, omittingEmptySubsequences: false)
        for (index, file) in files.enumerated() {
            let fd = open("\(sample)/proc/\(file)", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            if index < parts.count { _ = parts[index].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
            close(fd)
        }
        _ = try? SlabWatch.Replay(settings: .init(ring: .init(fineCapacity: 8, coarseCapacity: 4))).run(directory)
    }

    /// `replay-names`: the input's lines as sample directory names (only
    /// those Int64 reads, so nothing is created outside the folder), each a
    /// link to one valid sample, replayed with a detector that fits two points.
    static let namesDirectory: String = {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(base)/slabwatch-fuzz-names-XXXXXX".utf8CString)
        return String(cString: mkdtemp(&template)!)
    }()
    static let validSample: String = {
        let sample = "\(namesDirectory)/.sample"
        for dir in ["", "/proc", "/proc/sys", "/proc/sys/fs"] { mkdir(sample + dir, 0o755) }
        let contents = ["slabinfo": "slabinfo - version: 2.1\nkmalloc-32 128 128 32 128 1 : tunables 0 0 0 : slabdata 1 1 0\n",
                        "meminfo": "MemTotal: 1024 kB\nSlab: 4 kB\nSUnreclaim: 4 kB\nSReclaimable: 0 kB\n",
                        "sys/fs/inode-nr": "10 0\n", "sys/fs/dentry-state": "12 0 45 0 0 0\n", "sys/fs/file-nr": "5 0 100\n"]
        for (file, text) in contents {
            let fd = open("\(sample)/proc/\(file)", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            _ = text.withCString { write(fd, $0, strlen($0)) }
            close(fd)
        }
        return sample
    }()

    static func replayNames(_ bytes: [UInt8]) {
        let names = String(decoding: bytes, as: UTF8.self).split(separator: "\n").prefix(16).map(String.init)
            .filter { $0.utf8.count <= 24 && Int64($0) != nil }
        var made: [String] = []
        for name in Set(names) where symlink(validSample, "\(namesDirectory)/\(name)") == 0 { made.append(name) }
        defer { for name in made { unlink("\(namesDirectory)/\(name)") } }
        var settings = DetectorSettings()
        settings.windowsSeconds = [20]
        settings.minPoints = 2
        settings.openAfterEvaluations = 1
        settings.minGrowthBytes = 0
        settings.minDriverChange = 0
        let outcome = try? SlabWatch.Replay(settings: .init(detector: settings, ring: .init(fineCapacity: 8, coarseCapacity: 4))).run(namesDirectory)
        for finding in outcome?.findings ?? [] { _ = finding.message }
    }
}

/// A `measure --json` report as `slabwatch diff` reads it, now that anyone
/// can hand one over: what the reader lets through must diff both ways
/// against a real report, render as text with no infinity in it, judge
/// budgets, and read back the same once written again.
enum MeasurementReport {
    /// A small report, made by `Measurement.report` from samples of a run
    /// of tmpfs files with an xattr each (the measure tests' workload).
    static let reference: Measurement = {
        var samples: [Sample] = []
        for step in 0..<20 {
            let files = UInt64(max(0, step - 4) * 1000)
            let slabs = 244 + files / 8
            samples.append(Sample(
                timestampMilliseconds: 1_700_000_000_000 + Int64(step) * 200,
                caches: [SlabCache(name: "kmalloc-cg-512", activeObjects: slabs * 8, objects: slabs * 8, objectSize: 512, objectsPerSlab: 8,
                                   pagesPerSlab: 1, activeSlabs: slabs, slabs: slabs, pageSize: 4096, reclaimable: false),
                         SlabCache(name: "shmem_inode_cache", activeObjects: 200 + files, objects: 210 + files, objectSize: 768,
                                   objectsPerSlab: 21, pagesPerSlab: 4, activeSlabs: 10 + files / 21, slabs: 10 + files / 21,
                                   pageSize: 4096, reclaimable: false),
                         SlabCache(name: "kmalloc-64", activeObjects: 6400, objects: 6400, objectSize: 64, objectsPerSlab: 64,
                                   pagesPerSlab: 1, activeSlabs: 100, slabs: 100, pageSize: 4096, reclaimable: false)],
                inodes: InodeCounts(inodes: 50_000 + files, freeInodes: 0)))
        }
        return Measurement.report(samples: samples, started: 4, ended: 15, command: .init(arguments: ["xattrs", "400"], exitStatus: 0,
                                                                                          wallSeconds: 2.2),
                                  intervalSeconds: 0.2, settleSeconds: 0.8)!
    }()

    static let budgets = ["kmalloc-cg-512=256B/inode", "shmem_inode_cache=1B/dentry", "unreclaimable=2KiB/inode", "kept=16MiB"]
        .map { try! Budget.parse($0) }

    static func read(_ bytes: [UInt8]) {
        guard let report = try? MeasurementReader.read(bytes) else { return }
        for text in [MeasurementDiff.text(before: report, after: reference), MeasurementDiff.text(before: reference, after: report),
                     MeasurementDiff.text(before: report, after: report), MeasurementRenderer.text(report)] where text.contains("∞") {
            fatalError("a report the reader accepted prints an infinity:\n\(text)")
        }
        // Budgets on the report's own caches too: a name is what a user would type, or nothing.
        let own = report.caches.prefix(2).compactMap { try? Budget.parse("\($0.slab)=1B/inode") }
        let judged = (budgets + own).map { ($0, $0.judge(report)) }
        for (budget, verdict) in judged { _ = budget.sentence(verdict) }
        let written = MeasurementRenderer.json(report, budgets: judged)
        guard let again = try? MeasurementReader.read(written), again == report else {
            fatalError("a report read, written and read again is not the same:\n\(String(decoding: written, as: UTF8.self))")
        }
    }

    static func seed() -> [UInt8] {
        MeasurementRenderer.json(reference, budgets: budgets.map { ($0, $0.judge(reference)) })
    }
}
