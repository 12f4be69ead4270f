import Testing
@testable import SlabWatchCore

/// What a finding says, per driver and per phase.
struct FindingSentenceTests {
    static func finding(_ driver: GrowthDriver, growth: Double = 3.1 * 1024 * 1024 * 1024, window: Double = 600) -> Finding {
        let fit = Finding.RiseFit(
            bytesPerUnit: 4096, rSquared: 0.99, windowSeconds: window, growthBytes: growth, driverChange: 800_000,
            fits: [], points: [], footprintFloor: 100_000_000, driverFloor: 1000, driverPeak: 801_000,
            driverPeakAt: 0, footprintAtDriverPeak: 3_500_000_000)
        let cache = SlabCache(name: "filp", activeObjects: 1, objects: 1, objectSize: 256, objectsPerSlab: 16,
                              pagesPerSlab: 1, activeSlabs: 1, slabs: 3_500_000_000 / 4096, pageSize: 4096, reclaimable: false)
        return Finding(slab: "filp", driver: driver, fit: fit, cache: cache, now: 0, settings: .init())
    }

    /// Where the driver stands, which decides the next step.
    enum Standing: CaseIterable, Sendable {
        /// It has only risen.
        case risen
        /// It fell, but not below the units the finding grew with (others' may have gone).
        case fellUnclear
        /// It fell far enough to tell; the cache has not followed yet.
        case fellWaiting
    }

    /// Where the filesystem kind comes from: the driver's inode cache, or the
    /// finding's own cache when that is an inode cache.
    enum KindSource: CaseIterable, Sendable { case driversInodeCache, ownCache }

    /// One finding in each combination; nil where the combination cannot be
    /// (an inode cache drives only inodes; a classified finding's driver fell;
    /// time never falls).
    static func finding(_ driver: GrowthDriver, _ kind: FilesystemKind, _ source: KindSource, _ phase: Finding.Phase,
                        _ classification: Finding.Classification, _ standing: Standing, resolved: Bool,
                        series: DerivedSeries? = nil) -> Finding? {
        if source == .driversInodeCache && driver != .inodes { return nil }
        // A derived series is no inode cache: its kind comes from its driver's inode cache, or is unknown.
        if series != nil && source == .ownCache && kind != .unknown { return nil }
        if classification != .undetermined && standing == .risen { return nil }
        if driver == .time && (classification != .undetermined || standing != .risen) { return nil }  // time never falls
        let inodeCaches: [FilesystemKind: String] = [.tmpfs: "shmem_inode_cache", .evictable: "ext4_inode_cache"]
        var f = Self.finding(driver)
        if source == .ownCache { f.slab = inodeCaches[kind] ?? "kmalloc-32" } else { f.slab = "kmalloc-cg-512"; f.inodeCache = inodeCaches[kind] }
        f.phase = phase
        f.classification = classification
        if standing != .risen {
            f.driverFellAt = 1000
            f.fallTrail.append(.init(timestampMilliseconds: 1000, driver: 500_000, footprintBytes: 3_000_000_000, segment: .fall))
            f.leakEvidenceBelow = 200_000
            if standing == .fellWaiting { f.leakEvidenceAt = 1000 }
        }
        if resolved { f.state = .resolved; f.resolution = .memoryReturned }
        if let series { f.slab = series.name; f.reclaimable = series.reclaimable }
        return f
    }

    static let everyFinding: [(String, Finding)] = {
        var all: [(String, Finding)] = []
        for driver in GrowthDriver.allCases {
            for kind in FilesystemKind.allCases {
                for source in KindSource.allCases {
                    for phase in Finding.Phase.allCases {
                        for classification in [Finding.Classification.undetermined, .tracksEviction, .leakLike] {
                            for standing in Standing.allCases {
                                for resolved in [false, true] {
                                    for series in [nil] + DerivedSeries.all {
                                        guard let f = finding(driver, kind, source, phase, classification, standing, resolved: resolved,
                                                              series: series) else { continue }
                                        all.append(("\(series?.name ?? "cache") \(driver) \(kind) \(source) \(phase) \(classification) "
                                                    + "\(standing) \(resolved ? "resolved" : "open")", f))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return all
    }()

    /// The sentence never contradicts itself, whatever the phase, driver,
    /// filesystem kind, classification and where the driver stands: no
    /// "only risen" once the driver fell or the memory falls, "deleted" for
    /// tmpfs and "evicted" for filesystems the kernel evicts, "closed" for open
    /// files, and no drop_caches for memory it cannot free.
    @Test func noSentenceContradictsItself() {
        #expect(Self.everyFinding.count > 200)
        for (name, f) in Self.everyFinding {
            let message = f.message
            let (driver, kind) = (f.driver, f.filesystemKind)
            let dropCaches = message.contains("echo 2 > /proc/sys/vm/drop_caches")
            if f.driverFellAt != nil || f.phase == .falling || f.state == .resolved {
                #expect(!message.contains("only risen"), "\(name): \(message)")
            }
            if kind == .tmpfs || driver == .openFiles || driver == .time {
                #expect(!dropCaches, "\(name): \(message)")
                #expect(!message.contains("evict"), "\(name): \(message)")
            }
            switch f.classification {
            case .tracksEviction:
                #expect(message.contains(", not a leak."), "\(name): \(message)")
                let verb = switch driver {
                case .openFiles, .sockets: "closed"
                case .tasks: "exited"
                case .memoryCgroups: "removed"
                case .dyingMemoryCgroups: "released"
                default: kind == .tmpfs ? "deleted" : "evicted"
                }
                let went = driver == .tasks ? " threads \(verb): " : " were \(verb): "
                if driver != .time { #expect(message.contains(went), "\(name): \(message)") }
            case .leakLike:
                #expect(message.contains(": leak-like."), "\(name): \(message)")
            case .undetermined:
                #expect(!message.contains("not a leak") && !message.contains(": leak-like."), "\(name): \(message)")
                let advises = message.contains("so far: ") || message.contains("to tell yet: ")
                #expect(advises == (f.state == .open && f.driverFellAt == nil && driver != .time), "\(name): \(message)")
            }
            if f.classification == .undetermined && f.state == .open && f.driverFellAt == nil
                && (driver == .inodes || driver == .dentries) && kind != .tmpfs {
                #expect(dropCaches, "\(name): what would tell it from a leak: \(message)")
            }
            #expect(message.hasSuffix(".") && !message.contains("  ") && !message.contains(" ."), "\(name): \(message)")
            if let series = DerivedSeries.named(f.slab) { Self.expectNoCacheWords(message, of: series, f, name) }
        }
    }

    /// A derived series' sentence says what the memory is, never calls it a
    /// cache or advises what only a cache's finding could take (attributing
    /// it by name), and ends an open finding with its own next step.
    static func expectNoCacheWords(_ message: String, of series: DerivedSeries, _ f: Finding, _ name: String) {
        #expect(message.hasPrefix("\(series.subject) grows "), "\(name): \(message)")
        #expect(!message.contains("Run 'slabwatch attribute"), "\(name): \(message)")
        for cacheWord in [" cache falls", " cache from a leak", "Its cache", "Unreclaimable.", "Reclaimable (", "Reclaimability"] {
            #expect(!message.contains(cacheWord), "\(name): \(message)")
        }
        #expect(message.contains(series.nextStep) == (f.state == .open), "\(name): \(message)")
    }

    /// Only the unreclaimable series outside the caches has a session that
    /// names its callers; Percpu says none does.
    @Test func eachDerivedSeriesNamesItsOwnNextStep() throws {
        let outside = try #require(Self.finding(.inodes, .tmpfs, .driversInodeCache, .rising, .leakLike, .fellWaiting, resolved: false,
                                                series: .outsideUnreclaimable))
        #expect(outside.message.hasSuffix("leak-like. Its call sites can be named: slabwatch attribute '(outside caches, unreclaimable)' "
                                          + "traces the kmallocs above the largest kmalloc cache and their frees."), "\(outside.message)")
        let percpu = try #require(Self.finding(.time, .unknown, .ownCache, .rising, .undetermined, .risen, resolved: false, series: .percpu))
        #expect(percpu.message.hasPrefix("Memory of the per-CPU allocator (Percpu in /proc/meminfo, per-CPU allocations, no slab cache) grows"),
                "\(percpu.message)")
        #expect(percpu.message.contains("No tracepoint attribution names who allocates it"), "\(percpu.message)")
        var gone = outside
        gone.state = .resolved
        gone.resolution = .cacheGone
        #expect(gone.message.contains("Its series is gone: a source it is derived from stopped answering."), "\(gone.message)")
    }

    /// A random kmalloc copy's name is drawn at boot: the sentence names the
    /// size class that stays, so a node after a reboot, or the next node,
    /// can be matched; any other kmalloc name is said as it is.
    @Test func aRandomKmallocCopyIsNamedWithItsSizeClass() {
        var f = Self.finding(.inodes)
        f.slab = "kmalloc-rnd-07-512"
        #expect(f.message.hasPrefix("kmalloc-rnd-07-512 (a random copy of kmalloc-512: which copy a call site uses is drawn at every boot) grows 4.0 KiB per "),
                "\(f.message)")
        f.slab = "kmalloc-rnd-15-1k"
        #expect(f.message.hasPrefix("kmalloc-rnd-15-1k (a random copy of kmalloc-1k: "), "\(f.message)")
        for name in ["kmalloc-512", "kmalloc-cg-512", "dma-kmalloc-512", "rnd-07-512"] {
            f.slab = name
            #expect(f.message.hasPrefix("\(name) grows "), "\(f.message)")
        }
        #expect(KmallocCache.sizeClass(ofRandomCopy: "kmalloc-rnd-01-8k") == "kmalloc-8k")
        #expect(KmallocCache.sizeClass(ofRandomCopy: "kmalloc-rnd-x") == nil)
    }

    /// A tmpfs inode cache growing with the global inode count: deleting its
    /// files, not drop_caches, tells (the kind comes from its own name).
    @Test func aTmpfsInodeCacheOnTheGlobalCountIsNotToldToDropCaches() throws {
        let f = try #require(Self.finding(.inodes, .tmpfs, .ownCache, .holding, .undetermined, .risen, resolved: false))
        #expect(f.message.hasPrefix("shmem_inode_cache grows 4.0 KiB per cached inode (R² 0.990"), "\(f.message)")
        #expect(f.message.hasSuffix("Inodes have only risen so far: tmpfs inodes go only when their files are deleted "
                                    + "(drop_caches frees none), and a per-inode cache falls with them where a leak does not."), "\(f.message)")
    }

    @Test(arguments: [("shmem_inode_cache", "their files were deleted: memory attached to tmpfs inodes, not a leak."),
                      ("ext4_inode_cache", "inodes were evicted: memory attached to cached inodes, not a leak.")])
    func anInodeCacheDriverIsNamedWithHowItsInodesWent(_ cache: String, _ ending: String) {
        var f = Self.finding(.inodes)
        f.inodeCache = cache
        #expect(f.message.hasPrefix("filp grows 4.0 KiB per cached inode of \(cache) (R² 0.990"), "\(f.message)")
        #expect(f.message.contains("while \(cache) inodes rose by 800,000"))
        f.classification = .tracksEviction
        #expect(f.message.hasSuffix("It fell with the inode count of \(cache) when \(ending)"), "\(f.message)")
    }

    /// Falling memory while the driver has not fallen far enough: not "only risen".
    @Test func fallingMemoryWithADriverThatBarelyFellSaysSo() throws {
        let f = try #require(Self.finding(.inodes, .evictable, .driversInodeCache, .falling, .undetermined, .risen, resolved: false))
        #expect(f.message.contains("Falling: still holds "))
        #expect(f.message.contains("Inodes of ext4_inode_cache have not fallen far enough to tell yet: evicting them"), "\(f.message)")
    }

    /// A restored finding may hold any times: a state file once trapped the
    /// daemon on its first /snapshot with `lastSeen − lastRise` overflowing.
    @Test(arguments: [Finding.Phase.holding, .rising, .falling])
    func extremeRestoredTimesSaturate(_ phase: Finding.Phase) {
        var f = Self.finding(.inodes)
        f.phase = phase
        f.lastSeenMilliseconds = .max
        f.lastRiseMilliseconds = .min
        #expect(!f.message.isEmpty)
        f.state = .resolved
        f.resolution = .stoppedGrowing
        f.lastSeenMilliseconds = .min
        f.lastRiseMilliseconds = .max
        #expect(f.message.contains("It stopped growing"))
    }

    @Test func bytesPerSecondHasTheSignOfTheGrowth() {
        let f = Self.finding(.inodes)
        #expect(f.bytesPerSecond > 0)
        #expect(abs(f.bytesPerSecond - f.growthBytes / 600) < 1)
        #expect(Self.finding(.inodes, growth: -1e9).bytesPerSecond < 0)
    }

    @Test func phasesAreSaid() {
        var f = Self.finding(.inodes)
        #expect(f.message.contains("Still growing: holds 3.2 GiB more than before the rise."), "\(f.message)")
        let cache = SlabCache(name: "filp", activeObjects: 1, objects: 1, objectSize: 256, objectsPerSlab: 16,
                              pagesPerSlab: 1, activeSlabs: 1, slabs: 3_500_000_000 / 4096, pageSize: 4096, reclaimable: false)
        f.follow(cache, driverValue: 801_000, now: 7_800_000, settings: .init())  // 2 h 10 min later, unchanged
        #expect(f.phase == .holding)
        #expect(f.message.contains("Stopped growing 2 h 10 min ago and still holds 3.2 GiB."), "\(f.message)")
    }

    @Test func openFilesThatCloseAreNotEvicted() {
        var f = Self.finding(.openFiles)
        f.classification = .tracksEviction
        #expect(f.message.hasSuffix("It fell with the open file count when open files were closed: memory attached to open files, not a leak."))
    }

    @Test func evidenceTrailStaysBoundedHoweverLongTheFall() {
        var trail = EvidenceTrail(capacity: 20)
        for i in 0..<100_000 {
            trail.append(.init(timestampMilliseconds: Int64(i), driver: Double(i), footprintBytes: 0, segment: .fall))
        }
        #expect(trail.all.count <= 20)
        #expect(trail.all.first?.timestampMilliseconds == 0)  // the driver's peak stays
        #expect(trail.all.last?.timestampMilliseconds == 99_999)  // and the newest point is shown
        #expect(EvidenceTrail.spread(Array(0..<61), to: 60).count == 60)
        #expect(EvidenceTrail.spread(Array(0..<61), to: 60).last == 60)
    }

    @Test(arguments: [(0.0, "0 s"), (59.0, "59 s"), (119.0, "119 s"), (120.0, "2 min"), (7199.0, "119 min"),
                       (7200.0, "2 h"), (7800.0, "2 h 10 min"), (86_400.0 * 3 + 3600, "3 d 1 h")] as [(Double, String)])
    func elapsedReadsLikeAPerson(_ seconds: Double, _ expected: String) {
        #expect(Human.elapsed(seconds) == expected)
    }
}
