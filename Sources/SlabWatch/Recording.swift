import Dispatch
import Glibc
public import SlabWatchCore

/// A recording: one directory per sample, named by the sample's Unix time in
/// milliseconds, each laid out like a procfs/sysfs root:
///
///     DIR/<ms>/proc/slabinfo, proc/meminfo, proc/sys/fs/{inode-nr,dentry-state,file-nr}
///     DIR/<ms>/sys/kernel/slab/<cache>/reclaim_account   (optional)
///
/// `cp` in a shell loop makes one too. A sample without `sys/` uses the
/// newest earlier sample's, so reclaimability is recorded only when caches change.
public enum Recording {
    static let procFiles = ["slabinfo", "meminfo", "sys/fs/inode-nr", "sys/fs/dentry-state", "sys/fs/file-nr"]

    /// Sample directories of a recording, oldest first (names that are not
    /// all digits are ignored, so notes or a README may sit beside them).
    public static func sampleDirectories(_ directory: String) throws(FileReadError) -> [(milliseconds: Int64, path: String)] {
        try FileReader(initialCapacity: 16).listDirectory(directory)
            .compactMap { entry in Int64(entry.name).map { ($0, "\(directory)/\(entry.name)") } }
            .sorted { $0.0 < $1.0 }
    }
}

/// Writes samples of the live kernel into a recording directory.
public final class Recorder {
    private let paths: KernelPaths
    private let directory: String
    private let files = FileReader()
    private let reader: ProcReader
    private var recordedCacheNames: [String] = []

    public init(paths: KernelPaths, directory: String) throws(FileReadError) {
        self.paths = paths
        self.directory = directory
        reader = ProcReader(paths: paths, pageSize: Clock.pageSize)
        try makeDirectories(directory)
    }

    /// Records one sample; returns its directory. The sample is written under a
    /// temporary name and renamed, so an interrupted recording holds no half sample.
    @discardableResult
    public func record(timestampMilliseconds: Int64) throws(FileReadError) -> String {
        let final = "\(directory)/\(timestampMilliseconds)"
        let staging = "\(directory)/.partial-\(timestampMilliseconds)"
        for file in Recording.procFiles {
            let bytes = try files.read("\(paths.procfs)/\(file)")
            try write(bytes, to: "\(staging)/proc/\(file)")
        }
        let sample = reader.sample(timestampMilliseconds: timestampMilliseconds)
        let names = sample.caches.map(\.name)
        if names != recordedCacheNames {
            for cache in sample.caches {
                // A name with '/' (L2TP/IPv6) cannot be a directory; it stays unknown.
                guard let reclaimable = cache.reclaimable, !cache.name.contains("/") else { continue }
                try write(ArraySlice((reclaimable ? "1\n" : "0\n").utf8),
                          to: "\(staging)/sys/kernel/slab/\(cache.name)/reclaim_account")
            }
            recordedCacheNames = names
        }
        guard rename(staging, final) == 0 else { throw FileReadError(path: final, call: "rename", errno: errno) }
        return final
    }

    /// Records every `intervalSeconds` until `durationSeconds` have passed or
    /// SIGINT/SIGTERM arrives (the sample being written is finished first).
    /// Returns the number of samples recorded.
    public func run(intervalSeconds: Double, durationSeconds: Double) throws(FileReadError) -> Int {
        let stop = DispatchSemaphore(value: 0)
        let queue = DispatchQueue(label: "slabwatch.record.signals")
        let sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { stop.signal() }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }
        let start = Clock.monotonicNanoseconds()
        var count = 0
        while true {
            try record(timestampMilliseconds: Clock.wallMilliseconds())
            count += 1
            let next = start + UInt64(Double(count) * intervalSeconds * 1e9)
            if Double(next - start) / 1e9 > durationSeconds { return count }
            let now = Clock.monotonicNanoseconds()
            let wait = next > now ? next - now : 0
            if stop.wait(timeout: .now() + .nanoseconds(Int(wait))) == .success { return count }
        }
    }

    private func write(_ bytes: ArraySlice<UInt8>, to path: String) throws(FileReadError) {
        let parent = String(path[..<path.lastIndex(of: "/")!])
        try makeDirectories(parent)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileReadError(path: path, call: "open", errno: errno) }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw FileReadError(path: path, call: "write", errno: errno) }
    }
}

/// `mkdir -p`.
func makeDirectories(_ path: String) throws(FileReadError) {
    var current = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
        current += "/\(component)"
        if mkdir(current, 0o755) != 0 && errno != EEXIST {
            throw FileReadError(path: current, call: "mkdir", errno: errno)
        }
    }
}

/// Runs a recording through the same ProcReader → ring → detector path as the
/// daemon, as fast as it can.
public struct Replay {
    public struct Skipped: Sendable {
        public var path: String
        public var reason: String
    }

    public struct Outcome: Sendable {
        public var report: GrowthDetector.Report
        public var samplesUsed: Int
        public var skipped: [Skipped]
        /// Every finding that opened, in its final state.
        public var findings: [Finding]
    }

    public let settings: DetectorSettings
    public let ring: SampleRing.Configuration

    public init(settings: DetectorSettings, ring: SampleRing.Configuration) {
        self.settings = settings
        self.ring = ring
    }

    /// - Parameter onEvent: called for each transition, in time order.
    /// - Throws: `FileReadError` when the recording directory cannot be listed.
    public func run(_ directory: String, onEvent: (GrowthDetector.Event, Int64) -> Void = { _, _ in }) throws(FileReadError) -> Outcome {
        var ring = SampleRing(configuration: ring)
        var detector = GrowthDetector(settings: settings)
        var report = GrowthDetector.Report()
        var skipped: [Skipped] = []
        var used = 0
        var sysfs = "\(directory)/.none"
        for (milliseconds, path) in try Recording.sampleDirectories(directory) {
            if access("\(path)/sys", F_OK) == 0 { sysfs = "\(path)/sys" }
            let sample = ProcReader(paths: KernelPaths(procfs: "\(path)/proc", sysfs: sysfs), pageSize: Clock.pageSize)
                .sample(timestampMilliseconds: milliseconds)
            if let broken = Source.allCases.first(where: { $0 != .sysfsSlab && !sample.status(of: $0).up }) {
                skipped.append(Skipped(path: path, reason: "\(broken.rawValue): \(sample.status(of: broken).error ?? "down")"))
                continue
            }
            ring.append(sample)
            report = detector.evaluate(ring, latest: sample)
            for event in report.events { onEvent(event, milliseconds) }
            used += 1
        }
        return Outcome(report: report, samplesUsed: used, skipped: skipped, findings: report.findings)
    }
}
