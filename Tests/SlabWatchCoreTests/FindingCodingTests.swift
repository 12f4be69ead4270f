import Testing
@testable import SlabWatchCore

/// A finding's stored properties are the state file's format (synthesized
/// Codable under explicit `CodingKeys`): renaming a property in Swift must
/// change neither what a checkpoint writes nor what an older one reads back.
struct FindingCodingTests {
    /// Every member of a finding in the state file (format 2), as written
    /// since before the rise fit's names (floor/peak) were taken for the
    /// finding's own fields. A new stored property adds its key here.
    static let stateKeys: Set<String> = [
        "slab", "driver", "inodeCache", "fit", "reclaimable", "classification", "state", "severity", "phase",
        "resolution", "firstSeenMilliseconds", "lastSeenMilliseconds", "lastRiseMilliseconds", "attribution",
        "charged",
        "baselineBytes", "peakBytes", "footprintBytes", "driverBaseline", "peakDriver", "peakDriverAt",
        "footprintAtPeakDriver", "driverFellAt", "fallTrail", "leakEvidenceBelow", "leakEvidenceAt", "phaseLevel",
        "lastFallMilliseconds", "backSince", "evidenceLimit", "largestRiseGain", "recentBytesPerSecond",
        "riseBeganMilliseconds", "calmerSince", "discountedInodeCaches", "discountReference",
    ]

    @Test func everyFieldRoundTrips() throws {
        let finding = Self.everyFieldSet()
        let restored = try StateDecoder.decode(Finding.self, from: StateNode.parse(StateEncoder.encode(finding).serialized()))
        #expect(restored == finding)
    }

    /// Every stored property is written (none left out of `CodingKeys`),
    /// under the key the state file has always used.
    @Test func everyFieldIsWrittenUnderItsStateKey() throws {
        let finding = Self.everyFieldSet()
        guard case .object(let members) = try StateEncoder.encode(finding) else {
            Issue.record("a finding is not written as an object")
            return
        }
        #expect(Set(members.keys) == Self.stateKeys)
        #expect(Mirror(reflecting: finding).children.count == Self.stateKeys.count)
    }

    /// The renamed fields keep their old keys, each with its own value (two
    /// keys of one type swapped would still round-trip, but misread old files).
    @Test func renamedFieldsKeepTheirOldKeys() throws {
        let finding = Self.everyFieldSet()
        guard case .object(let members) = try StateEncoder.encode(finding) else {
            Issue.record("a finding is not written as an object")
            return
        }
        #expect(members["baselineBytes"] == .unsigned(finding.footprintFloor))
        #expect(members["peakBytes"] == .unsigned(finding.footprintPeak))
        #expect(members["driverBaseline"] == .double(finding.driverFloor))
        #expect(members["peakDriver"] == .double(finding.driverPeak))
        #expect(members["peakDriverAt"] == .integer(finding.driverPeakAt))
        #expect(members["footprintAtPeakDriver"] == .unsigned(finding.footprintAtDriverPeak))
    }

    /// A finding whose every field differs from its default and from the
    /// others of its type, optionals included (nil ones are not written).
    static func everyFieldSet() -> Finding {
        let fits = [Finding.DriverFit(driver: .inodes, inodeCache: "shmem_inode_cache", bytesPerUnit: 512, rSquared: 0.99,
                                      driverChange: 100_000, flagged: true)]
        let points = [Finding.EvidencePoint(timestampMilliseconds: 1_000, driver: 40_000, footprintBytes: 8 << 20, segment: .rise),
                      Finding.EvidencePoint(timestampMilliseconds: 61_000, driver: 140_000, footprintBytes: 60 << 20, segment: .rise)]
        let fit = Finding.RiseFit(
            bytesPerUnit: 512, rSquared: 0.99, windowSeconds: 60, growthBytes: Double(52 << 20), driverChange: 100_000, fits: fits,
            points: points, footprintFloor: 8 << 20, driverFloor: 40_000, driverPeak: 140_000, driverPeakAt: 61_000,
            footprintAtDriverPeak: 60 << 20)
        let cache = SlabCache(name: "kmalloc-cg-512", activeObjects: 1, objects: 1, objectSize: 512, objectsPerSlab: 8,
                              pagesPerSlab: 1, activeSlabs: 1, slabs: 15_000, pageSize: 4096, reclaimable: false)
        var finding = Finding(slab: "kmalloc-cg-512", driver: .inodes, fit: fit, cache: cache, now: 61_000, settings: .init())
        finding.inodeCache = "shmem_inode_cache"
        finding.classification = .tracksEviction
        finding.state = .resolved
        finding.severity = .critical
        finding.phase = .falling
        finding.resolution = .memoryReturned
        finding.firstSeenMilliseconds = 61_001
        finding.lastSeenMilliseconds = 900_000
        finding.lastRiseMilliseconds = 120_000
        finding.attribution = Attribution(cache: "kmalloc-cg-512", source: .bpf, callSites: [], events: 7, dropped: 1,
                                          windowSeconds: 10, stopReason: .duration, malformedLines: 2, endedMilliseconds: 130_000)
        finding.charged = ChargedCgroups(source: .memcgKmem, windowSeconds: 600, entries: [
            .init(cgroup: "/system.slice/foo.service", riseBytes: 3e7, share: 0.9, rSquared: 0.99),
            .init(cgroup: "/system.slice/bar.service", riseBytes: 2e6, share: 0.06, rSquared: nil),
        ], otherShare: 0.04)
        finding.footprintFloor = 7 << 20
        finding.footprintPeak = 70 << 20
        finding.footprintBytes = 9 << 20
        finding.driverFloor = 39_000
        finding.driverPeak = 150_000
        finding.driverPeakAt = 125_000
        finding.footprintAtDriverPeak = 68 << 20
        finding.driverFellAt = 300_000
        finding.fallTrail.append(.init(timestampMilliseconds: 300_000, driver: 50_000, footprintBytes: 10 << 20, segment: .fall))
        finding.leakEvidenceBelow = 20_000
        finding.leakEvidenceAt = 310_000
        finding.phaseLevel = 11 << 20
        finding.lastFallMilliseconds = 320_000
        finding.backSince = 330_000
        finding.evidenceLimit = 33
        finding.largestRiseGain = 61e6
        finding.recentBytesPerSecond = -4096
        finding.riseBeganMilliseconds = 500
        finding.calmerSince = 340_000
        finding.discountedInodeCaches = ["ext4_inode_cache"]
        finding.discountReference = 1_234
        return finding
    }
}
