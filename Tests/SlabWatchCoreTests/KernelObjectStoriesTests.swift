import Testing
@testable import SlabWatchCore

/// The incidents fleets write post-mortems about beyond inodes, each beside a
/// busy machine's ordinary activity, each with a control day that opens
/// nothing: dying memory cgroups at Pinterest's pace, a socket leak, a thread
/// leak. What the generator puts in per unit is what the finding must say.
struct KernelObjectStoriesTests {
    typealias Stories = BusyMachineDetectorTests

    // MARK: dying memory cgroups

    /// What each dying cgroup held on the issue's day (slabinfo differences
    /// over 1,000 charged and removed cgroups), by cache.
    static let perDyingCgroup: [(cache: String, bytes: Double)] = [
        ("kmalloc-4k", 3_482), ("kmalloc-1k", 2_048), ("kmalloc-cg-2k", 1_741), ("kmalloc-cg-1k", 922),
    ]

    /// Pinterest's pace: the dying count climbs from 240 by 1.6 a second for
    /// twelve hours (68,680 more) while pods churn the live count by ±50,
    /// each removed cgroup leaving the ext4 inode of the file it charged;
    /// then the files are deleted and they are released over ten minutes.
    /// Each sample is 15 s (a twelve-hour story at 5 s is 8,640 samples).
    static func pinterest(incident: Bool) -> (BusyMachine, plateauEnd: Int64) {
        var m = BusyMachine()
        m.interval = 15
        m.counts = [.memoryCgroups: 240, .dyingMemoryCgroups: 240]
        m.objectCaches = perDyingCgroup.map { .init(cache: $0.cache, unit: .dyingMemoryCgroups, bytesPerUnit: $0.bytes) }
        m.run(600)
        for hour in 0..<12 {
            let dying = incident ? 240 + 68_680 * Double(hour + 1) / 12 : 240
            let ext4 = 60_000 + (dying - 240)
            m.run(1800, to: [.ext4: ext4 + 20_000], counts: [.memoryCgroups: 290, .dyingMemoryCgroups: (dying + m.counts[.dyingMemoryCgroups]!) / 2])
            m.run(1800, to: [.ext4: ext4], counts: [.memoryCgroups: 240, .dyingMemoryCgroups: dying])
        }
        m.run(900)
        let plateauEnd = m.now
        m.run(600, to: [.ext4: 60_000], counts: [.dyingMemoryCgroups: 240])  // the files deleted: released
        m.run(1800)
        return (m, plateauEnd)
    }

    @Test func dyingCgroupsAtPinterestsPaceAreNamed() throws {
        let (m, plateauEnd) = Self.pinterest(incident: true)
        let (reports, events) = m.replay()
        for (cache, bytes) in Self.perDyingCgroup.prefix(3) {
            let held = try #require(Stories.finding(reports[plateauEnd], cache), "\(cache)")
            #expect(held.driver == .dyingMemoryCgroups, "\(held.message)")
            #expect(Stories.within(held.bytesPerUnit, bytes), "\(cache): \(held.bytesPerUnit) B per dying cgroup, put in \(bytes)")
            #expect(held.message.contains(" per dying memory cgroup (R² "), "\(held.message)")
            #expect(held.message.contains("deleting or evicting the files they charged releases them"), "\(held.message)")
            let last = try #require(Stories.finding(reports[m.now], cache))
            #expect(last.classification == .tracksEviction, "\(last.message)")
            #expect(last.message.contains("when dying memory cgroups were released"), "\(last.message)")
        }
        // 922 B × 68,680 = 63 MB stays under the minimum growth.
        #expect(!events.contains { $0.finding.slab == "kmalloc-cg-1k" })
        // mem_cgroup (one object per memory cgroup, 161 MB) grows too, and is never fitted against its own count.
        let memcg = try #require(Stories.finding(reports[plateauEnd], "mem_cgroup"))
        #expect(memcg.driver != .memoryCgroups && memcg.driver != .dyingMemoryCgroups, "\(memcg.message)")
        #expect(memcg.message.contains("It holds one object per dying memory cgroup, so it is not fitted against their count: dying memory cgroups rose by "),
                "\(memcg.message)")
        let stray = Stories.strayFindings(events, expected: Set(Self.perDyingCgroup.map(\.cache) + ["mem_cgroup"]))
        #expect(stray.isEmpty, "\(stray)")
    }

    /// The same day without the incident: pods churn, the dying count stays.
    @Test func podChurnWithoutDyingCgroupsOpensNothing() {
        let (m, _) = Self.pinterest(incident: false)
        let (_, events) = m.replay()
        #expect(events.isEmpty, "\(events.map { "\($0.finding.slab) \($0.finding.driver)" })")
    }

    // MARK: sockets

    /// What a CLOSE_WAIT leak costs per socket in `TCP` (2,368-byte objects, 13 to 8 pages).
    static let tcpPerSocket = 2_521.0

    /// A web server's 2,000 connections come and go every two minutes; a
    /// service leaks 30,000 sockets in CLOSE_WAIT over an hour beside it
    /// (each also an inode, a dentry and an open file), holds them twenty
    /// minutes, then is restarted.
    static func closeWaitLeak(leak: Double) -> (BusyMachine, plateauEnd: Int64) {
        var m = BusyMachine()
        m.counts = [.sockets: 3_000]
        m.objectCaches = [.init(cache: "TCP", unit: .sockets, bytesPerUnit: tcpPerSocket, base: 5e6)]
        m.run(300)
        for step in 0..<30 {
            let leaked = leak * Double(step + 1) / 30
            m.run(60, to: [.ext4: 70_000], counts: [.sockets: 5_000 + leaked])
            m.run(60, to: [.ext4: 60_000], counts: [.sockets: 3_000 + leaked])
        }
        m.run(1200)
        let plateauEnd = m.now
        m.run(30, counts: [.sockets: 3_000])
        m.run(900)
        return (m, plateauEnd)
    }

    @Test func aCloseWaitLeakIsPerSocket() throws {
        let (m, plateauEnd) = Self.closeWaitLeak(leak: 30_000)
        let (reports, events) = m.replay()
        let held = try #require(Stories.finding(reports[plateauEnd], "TCP"))
        #expect(held.driver == .sockets, "sockets, not the inodes or open files that rise with them: \(held.message)")
        #expect(Stories.within(held.bytesPerUnit, Self.tcpPerSocket), "\(held.bytesPerUnit) B per socket")
        #expect(held.otherDrivers.contains { $0.driver == .openFiles }, "open files tie with it: \(held.fits)")
        #expect(held.message.hasPrefix("TCP grows 2.") && held.message.contains(" per socket (R² "), "\(held.message)")
        #expect(held.message.contains("every socket holds one"), "\(held.message)")
        let last = try #require(Stories.finding(reports[m.now], "TCP"))
        #expect(last.classification == .tracksEviction, "\(last.message)")
        #expect(last.message.contains("when sockets were closed"), "\(last.message)")
        // sock_inode_cache holds 26 MB: under the minimum growth, nothing.
        let stray = Stories.strayFindings(events, expected: ["TCP"])
        #expect(stray.isEmpty, "\(stray)")
    }

    /// At 100,000 sockets `sock_inode_cache` (86 MB) grows enough to open a
    /// finding of its own, and it is never fitted against sockets: its
    /// objects are the sockets.
    @Test func theSocketCacheIsNeverPerSocket() throws {
        let (m, plateauEnd) = Self.closeWaitLeak(leak: 100_000)
        let (reports, _) = m.replay()
        let own = try #require(Stories.finding(reports[plateauEnd], "sock_inode_cache"))
        #expect(own.driver != .sockets, "\(own.message)")
        #expect(own.fits.contains { $0.driver == .sockets && !$0.flagged }, "\(own.fits)")
        #expect(own.message.contains("It holds one object per socket, so it is not fitted against their count: sockets rose by "), "\(own.message)")
    }

    @Test func aWebServersConnectionsOpenNothing() {
        let (m, _) = Self.closeWaitLeak(leak: 0)
        let (_, events) = m.replay()
        #expect(events.isEmpty, "\(events.map { "\($0.finding.slab) \($0.finding.driver)" })")
    }

    // MARK: threads

    /// 12,000 threads leak over two hours beside processes that fork and exit
    /// (300 threads more for five minutes in every ten); `pid` holds 195 B each (a small cache: it wobbles by
    /// 10 KB, and the story's minimum growth is 2 MiB), `task_struct` 6,554.
    static func threadLeak(leak: Double) -> BusyMachine {
        var m = BusyMachine()
        m.counts = [.tasks: 900]
        m.objectCaches = [.init(cache: "pid", unit: .tasks, bytesPerUnit: 195, base: 2e6, wobble: 1e4)]
        m.run(600)
        for step in 0..<12 {
            let leaked = leak * Double(step + 1) / 12
            m.run(300, counts: [.tasks: 1_200 + leaked])
            m.run(300, counts: [.tasks: 900 + leaked])
        }
        m.run(1200)
        return m
    }

    @Test func aThreadLeakNamesTheThreadsWithoutFittingTaskStruct() throws {
        let m = Self.threadLeak(leak: 12_000)
        var settings = DetectorSettings()
        settings.minGrowthBytes = 2 * 1024 * 1024
        let (reports, _) = m.replay(settings)
        let pid = try #require(Stories.finding(reports[m.now], "pid"))
        #expect(pid.driver == .tasks, "\(pid.message)")
        #expect(Stories.within(pid.bytesPerUnit, 195), "\(pid.bytesPerUnit) B per thread")
        #expect(pid.message.contains(" per thread (R² ") && pid.message.contains("every thread holds one"), "\(pid.message)")
        let (defaults, _) = m.replay()
        let task = try #require(Stories.finding(defaults[m.now], "task_struct"), "78 MB of task_struct at the default thresholds")
        #expect(task.driver != .tasks, "\(task.message)")
        #expect(task.message.contains("It holds one object per thread, so it is not fitted against their count: threads rose by "), "\(task.message)")
        #expect(!task.message.contains("It does not follow"), "\(task.message)")
    }

    @Test func forkingProcessesOpenNothing() {
        let m = Self.threadLeak(leak: 0)
        let (_, events) = m.replay()
        #expect(events.isEmpty, "\(events.map { "\($0.finding.slab) \($0.finding.driver)" })")
    }

    // MARK: random kmalloc caches

    /// The seed's module on a kernel with `CONFIG_RANDOM_KMALLOC_CACHES`: its
    /// 512 B per inode land in the copy its call site drew at boot
    /// (`kmalloc-rnd-07-512`), while `kmalloc-512` and the fourteen other
    /// copies wobble as other callers come and go. The finding is on the copy
    /// and names the size class it belongs to, the name that is the same on
    /// the next node and after a reboot. Without the module, nothing opens.
    static func randomKmalloc(culprit: Bool) -> (BusyMachine, plateauEnd: Int64) {
        var m = BusyMachine()
        if culprit { m.culprits = [.init(cache: "kmalloc-rnd-07-512", filesystem: .mystor, bytesPerInode: 512, base: 5e6)] }
        // The other copies and the class's own cache: 0 B per unit of a count this story does not move, so they only wobble.
        m.objectCaches = (1...15).filter { $0 != 7 }.map { .init(cache: "kmalloc-rnd-\($0 < 10 ? "0" : "")\($0)-512", unit: .sockets, bytesPerUnit: 0, base: 8e6) }
            + [.init(cache: "kmalloc-512", unit: .sockets, bytesPerUnit: 0, base: 30e6)]
        m.run(300)
        m.run(450, to: [.mystor: 100_000])
        m.run(60, to: [.ext4: 160_000])  // a find beside it …
        m.run(30, to: [.ext4: 60_000])   // … evicted
        m.run(360, to: [.mystor: 200_000])
        m.run(300)
        let plateauEnd = m.now
        m.run(60, to: [.mystor: 10_000])  // drop_caches evicts the module's inodes
        m.run(600)
        return (m, plateauEnd)
    }

    @Test func aRandomKmallocCopyNamesItsSizeClass() throws {
        let (m, plateauEnd) = Self.randomKmalloc(culprit: true)
        let (reports, events) = m.replay()
        let finding = try #require(Stories.finding(reports[plateauEnd], "kmalloc-rnd-07-512"))
        #expect(finding.driver == .inodes && finding.inodeCache == "mystor_inode_cache", "\(finding.message)")
        #expect(Stories.within(finding.bytesPerUnit, 512), "\(finding.bytesPerUnit) B per inode")
        #expect(finding.message.hasPrefix("kmalloc-rnd-07-512 (a random copy of kmalloc-512: which copy a call site uses is drawn at every boot) grows "),
                "\(finding.message)")
        let last = try #require(Stories.finding(reports[m.now], "kmalloc-rnd-07-512"))
        #expect(last.classification == .tracksEviction, "\(last.message)")
        let stray = Stories.strayFindings(events, expected: ["kmalloc-rnd-07-512"])
        #expect(stray.isEmpty, "\(stray)")
    }

    /// The module's own (reclaimable) inode cache still grows; no kmalloc copy does.
    @Test func randomKmallocCopiesWobblingOpenNothing() {
        let (_, events) = Self.randomKmalloc(culprit: false).0.replay()
        #expect(Stories.strayFindings(events, expected: []).isEmpty, "\(events.map { "\($0.finding.slab) \($0.finding.driver)" })")
    }
}
