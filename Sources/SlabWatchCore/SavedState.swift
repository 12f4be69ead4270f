/// What slabwatch keeps on disk so a restart does not forget: the ring (both
/// tiers), the detector's findings and the alert policy's memory, with what is
/// needed to judge whether they still apply.
public struct SavedState: Sendable, Codable {
    /// Raised whenever what is saved changes shape; a newer file is set aside.
    public static let formatVersion: UInt32 = 1

    public struct Metadata: Sendable, Equatable, Codable {
        public var pageSize: UInt64
        /// /proc/sys/kernel/random/boot_id: memory described by another boot is gone.
        public var bootID: String
        /// The slabwatch version that wrote it (for people; not checked).
        public var version: String
        /// The newest sample in the ring, Unix milliseconds.
        public var lastSampleMilliseconds: Int64

        public init(pageSize: UInt64, bootID: String, version: String, lastSampleMilliseconds: Int64) {
            self.pageSize = pageSize
            self.bootID = bootID
            self.version = version
            self.lastSampleMilliseconds = lastSampleMilliseconds
        }
    }

    public var metadata: Metadata
    public var ring: SampleRing
    public var detector: GrowthDetector.Memory
    public var alerts: AlertPolicy.Memory

    public init(metadata: Metadata, ring: SampleRing, detector: GrowthDetector.Memory, alerts: AlertPolicy.Memory) {
        self.metadata = metadata
        self.ring = ring
        self.detector = detector
        self.alerts = alerts
    }

    public func serialized() throws -> [UInt8] { try StateEncoder.encode(self).serialized() }

    /// The same bytes, handed to `sink` piece by piece (the ring's columns
    /// straight from its storage).
    public func write(to sink: (UnsafeRawBufferPointer) -> Void) throws { try StateEncoder.encode(self).write(to: sink) }

    public static func parse(_ bytes: [UInt8]) throws -> SavedState {
        try StateDecoder.decode(SavedState.self, from: StateNode.parse(bytes))
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
