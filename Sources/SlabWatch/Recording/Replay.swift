import Glibc
public import SlabWatchCore

/// Runs a recording through the same ProcReader → pipeline path as the
/// daemon, as fast as it can.
public struct Replay: Sendable {
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

    public let settings: Pipeline.Settings

    /// A replay by `settings` (the daemon's: `Configuration.pipeline`).
    public init(settings: Pipeline.Settings) {
        self.settings = settings
    }

    /// - Parameters:
    ///   - warn: told (once) when the recording has no metadata and this machine's page size is assumed.
    ///   - onEvent: called for each transition, in time order.
    /// - Throws: `FileError` when the recording directory cannot be listed.
    public func run(_ directory: String, warn: (String) -> Void = { _ in },
                    onEvent: (GrowthDetector.Event, Int64) -> Void = { _, _ in }) throws(FileError) -> Outcome {
        let pageSize = Self.pageSize(of: directory, warn: warn)
        var pipeline = Pipeline(settings: settings)
        var report = GrowthDetector.Report()
        var skipped: [Skipped] = []
        var used = 0
        var sysfs = "\(directory)/.none"
        for (milliseconds, path) in try Recording.sampleDirectories(directory) {
            guard Recording.sampleTimes.contains(milliseconds) else {
                skipped.append(Skipped(path: path, reason: "name \(milliseconds) is not a sample time (Unix milliseconds, "
                                       + "\(Recording.sampleTimes.lowerBound) to \(Recording.sampleTimes.upperBound))"))
                continue
            }
            if access("\(path)/sys", F_OK) == 0 { sysfs = "\(path)/sys" }
            let sample = ProcReader(paths: KernelPaths(procfs: "\(path)/proc", sysfs: sysfs), pageSize: pageSize)
                .sample(timestampMilliseconds: milliseconds)
            if let broken = Source.allCases.first(where: { $0.requiredForReplay && !sample.status(of: $0).up }) {
                skipped.append(Skipped(path: path, reason: "\(broken.rawValue): \(sample.status(of: broken).error ?? "down")"))
                continue
            }
            report = pipeline.step(sample).report
            for event in report.events { onEvent(event, milliseconds) }
            used += 1
        }
        return Outcome(report: report, samplesUsed: used, skipped: skipped, findings: report.findings)
    }

    /// The recorded machine's page size; this machine's, with a warning, for
    /// recordings made by hand or by slabwatch before it wrote metadata.
    static func pageSize(of directory: String, warn: (String) -> Void) -> UInt64 {
        let path = "\(directory)/\(Recording.metadataFile)"
        let bytes: ArraySlice<UInt8>
        do { bytes = try FileReader(initialCapacity: 512, maximumSize: Recording.maximumMetadataBytes).read(path) } catch {
            // Say what is there: a FIFO or a huge file is not "missing".
            let what = switch error.errno {
            case ENOENT: "missing"
            case EFBIG: "larger than \(Recording.maximumMetadataBytes) bytes, not read"
            default: "not read (\(error.reason ?? String(cString: strerror(error.errno))))"
            }
            warn("\(path) \(what): replaying with this machine's page size (\(Host.pageSize) bytes); footprints are wrong if the recorded machine's differed")
            return Host.pageSize
        }
        guard let metadata = Recording.Metadata(text: String(decoding: bytes, as: UTF8.self)) else {
            warn("\(path) unreadable (a newer format?): replaying with this machine's page size (\(Host.pageSize) bytes)")
            return Host.pageSize
        }
        return metadata.pageSize
    }
}
