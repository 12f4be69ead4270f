/// What slabwatch keeps on disk so a restart does not forget: the ring (both
/// tiers), the detector's findings and the alert policy's memory, with what is
/// needed to judge whether they still apply.
public struct SavedState: Sendable, Codable {
    /// Raised whenever what is saved changes shape; a newer file is set aside.
    /// 2: the metadata says which procfs root the state describes.
    public static let formatVersion: UInt32 = 2

    public struct Metadata: Sendable, Equatable, Codable {
        public var pageSize: UInt64
        /// /proc/sys/kernel/random/boot_id: memory described by another boot is gone.
        public var bootID: String
        /// The procfs root the samples were read from (`sampler.procfs`): a
        /// state recorded from another root describes another machine.
        public var procfs: String
        /// The slabwatch version that wrote it (for people; not checked).
        public var version: String
        /// The newest sample in the ring, Unix milliseconds.
        public var lastSampleMilliseconds: Int64

        public init(pageSize: UInt64, bootID: String, procfs: String = "/proc", version: String, lastSampleMilliseconds: Int64) {
            self.pageSize = pageSize
            self.bootID = bootID
            self.procfs = procfs
            self.version = version
            self.lastSampleMilliseconds = lastSampleMilliseconds
        }
    }

    public var metadata: Metadata
    public var ring: SampleRing
    public var detector: GrowthDetector.Memory
    public var alerts: AlertPolicy.Memory
    /// Kernel memory per memory cgroup; nil in a file written before it was kept.
    public var cgroups: CgroupHistory?

    public init(metadata: Metadata, ring: SampleRing, detector: GrowthDetector.Memory, alerts: AlertPolicy.Memory,
                cgroups: CgroupHistory? = nil) {
        self.metadata = metadata
        self.ring = ring
        self.detector = detector
        self.alerts = alerts
        self.cgroups = cgroups
    }

    /// A pipeline's step as a checkpoint keeps it: its ring and the
    /// detector's memory, the newest sample's time read from that ring, and
    /// what says where and by whom they were taken.
    public init(_ step: Pipeline.Step, pageSize: UInt64, bootID: String, procfs: String, version: String,
                alerts: AlertPolicy.Memory) {
        let ring = step.ring
        let newest = ring.fine.count > 0 ? ring.fine.time(at: ring.fine.count - 1) : 0
        self.init(metadata: .init(pageSize: pageSize, bootID: bootID, procfs: procfs, version: version,
                                  lastSampleMilliseconds: newest),
                  ring: ring, detector: step.memory, alerts: alerts, cgroups: step.cgroups)
    }

    public func serialized() throws -> [UInt8] { try StateEncoder.encode(self).serialized() }

    /// The same bytes, handed to `sink` piece by piece (the ring's columns
    /// straight from its storage).
    public func write(to sink: (UnsafeRawBufferPointer) -> Void) throws { try StateEncoder.encode(self).write(to: sink) }

    public static func parse(_ bytes: [UInt8]) throws -> SavedState {
        try StateDecoder.decode(SavedState.self, from: StateNode.parse(bytes))
    }
}

// MARK: value ranges

extension SavedState {
    /// 2000-01-01T00:00:00Z: no sample slabwatch took is older.
    public static let earliestMilliseconds: Int64 = 946_684_800_000
    /// How far ahead of the machine's clock a saved time may be: timestamps
    /// never run backwards (`SampleClock`), so after the wall clock is set
    /// back they lead it for a while. A day covers any step NTP makes.
    public static let futureToleranceMilliseconds: Int64 = 86_400_000

    /// Checks that every time in the state lies between 2000 and a day past
    /// `now` (the machine's clock, Unix milliseconds), that each tier's times
    /// never go back, and that the metadata's newest sample is the ring's:
    /// with these, no difference of two times the daemon takes can overflow,
    /// whatever the file says. The ring checks its own counters as it decodes.
    /// - Throws: `StateFormatError` naming the first time out of range.
    public func checkTimes(now: Int64) throws(StateFormatError) {
        let latest = now.addingReportingOverflow(Self.futureToleranceMilliseconds)
        let valid = Self.earliestMilliseconds...(latest.overflow ? .max : latest.partialValue)
        func check(_ time: Int64, _ what: String) throws(StateFormatError) {
            guard valid.contains(time) else {
                throw StateFormatError("\(what) at \(time) ms is outside \(valid.lowerBound)...\(valid.upperBound) (2000 to a day from now)")
            }
        }
        var newest: Int64?
        for (name, tier) in [("fine", ring.fine), ("coarse", ring.coarse)] {
            var previous = Int64.min
            for position in 0..<tier.count {
                let time = tier.time(at: position)
                try check(time, "ring.\(name) sample \(position)")
                guard time >= previous else { throw StateFormatError("ring.\(name) sample \(position) is older than the one before it") }
                previous = time
            }
            if tier.count > 0 { newest = max(newest ?? .min, previous) }
        }
        if let newest {
            try check(metadata.lastSampleMilliseconds, "metadata.lastSampleMilliseconds")
            guard metadata.lastSampleMilliseconds >= newest else { throw StateFormatError("the ring holds samples newer than its metadata says") }
        } else if metadata.lastSampleMilliseconds != 0 {
            try check(metadata.lastSampleMilliseconds, "metadata.lastSampleMilliseconds")
        }
        if let cgroups {
            for position in 0..<cgroups.count { try check(cgroups.time(at: position), "cgroups reading \(position)") }
        }
        for finding in detector.openFindings {
            try check(finding.firstSeenMilliseconds, "finding \(finding.slab) first seen")
            try check(finding.lastSeenMilliseconds, "finding \(finding.slab) last seen")
            try check(finding.lastRiseMilliseconds, "finding \(finding.slab) last rise")
            guard finding.firstSeenMilliseconds <= finding.lastSeenMilliseconds else {
                throw StateFormatError("finding \(finding.slab) was last seen before it was first seen")
            }
        }
    }
}

/// How the state on disk fared at start-up and since, for `slabwatch_state_*`.
public struct PersistenceStatistics: Sendable, Equatable {
    public enum Restore: String, Sendable, CaseIterable {
        /// Nothing to restore (first start, or persistence disabled).
        case none
        /// Same boot: history and findings continue.
        case sameBoot = "same-boot"
        /// An earlier boot: history kept for display, open findings resolved.
        case earlierBoot = "earlier-boot"
        /// Unreadable, corrupt, foreign or newer: set aside, started fresh.
        case discarded
    }

    /// False when persistence is off or the directory cannot be written.
    public var enabled = false
    public var restore = Restore.none
    public var checkpointsWritten: UInt64 = 0
    public var checkpointsFailed: UInt64 = 0
    /// Unix seconds of the last checkpoint written, nil before the first.
    public var lastCheckpointSeconds: Double?
    public var lastCheckpointBytes = 0
    public var lastCheckpointDurationSeconds = 0.0

    public init() {}
}
