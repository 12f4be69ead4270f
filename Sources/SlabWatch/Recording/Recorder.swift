import Dispatch
import Glibc
import SlabWatchCore

/// Writes samples of the live kernel into a recording directory.
public final class Recorder {
    private let paths: KernelPaths
    private let directory: String
    private let files = FileReader()
    private let reader: ProcReader
    private var recordedCacheNames: [String] = []

    public init(paths: KernelPaths, directory: String) throws(FileError) {
        self.paths = paths
        self.directory = directory
        reader = ProcReader(paths: paths, pageSize: Host.pageSize)
        try makeDirectories(directory)
        let metadata = Recording.Metadata(pageSize: Host.pageSize, kernel: Self.kernelRelease(), recorder: Host.version)
        try write(ArraySlice(metadata.text.utf8), to: "\(directory)/\(Recording.metadataFile)")
    }

    private static func kernelRelease() -> String {
        var names = utsname()
        uname(&names)
        return withUnsafeBytes(of: names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// Records one sample; returns its directory. The sample is written under a
    /// temporary name and renamed, so an interrupted recording holds no half sample.
    @discardableResult
    public func record(timestampMilliseconds: Int64) throws(FileError) -> String {
        let final = "\(directory)/\(timestampMilliseconds)"
        let staging = "\(directory)/.partial-\(timestampMilliseconds)"
        for file in Recording.procFiles {
            let bytes: ArraySlice<UInt8>
            do {
                bytes = try files.read("\(paths.procfs)/\(file)")
            } catch where error.errno == ENOENT && KernelPaths.optionalProcFiles.contains(file) {
                // A kernel without this file (no network stack, no cgroups, an
                // older /proc): the sample is recorded without it and replays
                // with that source down, as the daemon reads such a kernel.
                continue
            }
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
        guard rename(staging, final) == 0 else { throw FileError(path: final, call: "rename", errno: errno) }
        return final
    }

    /// Records every `intervalSeconds` until `durationSeconds` have passed or
    /// SIGINT/SIGTERM arrives (the sample being written is finished first).
    /// Returns the number of samples recorded.
    public func run(intervalSeconds: Double, durationSeconds: Double) throws(FileError) -> Int {
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

    private func write(_ bytes: ArraySlice<UInt8>, to path: String) throws(FileError) {
        let parent = String(path[..<path.lastIndex(of: "/")!])
        try makeDirectories(parent)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(path: path, call: "open", errno: errno) }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw FileError(path: path, call: "write", errno: errno) }
    }
}

/// One owner at a time: it reuses one file buffer and remembers what it recorded.
@available(*, unavailable)
extension Recorder: Sendable {}
