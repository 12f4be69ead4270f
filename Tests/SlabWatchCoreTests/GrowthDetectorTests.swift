import Testing
import TestSupport
@testable import SlabWatchCore

struct GrowthDetectorTests {
    @Test func seedScenarioIsAPerInodeCacheThatTracksEviction() throws {
        let (report, events) = Scenario.seed().replay()
        let finding = try #require(report.findings.first { $0.slab == "kmalloc-32" })
        #expect(finding.driver == .inodes)
        #expect(abs(finding.bytesPerUnit - 32768) / 32768 < 0.03, "\(finding.bytesPerUnit)")
        #expect(finding.rSquared > 0.99)
        #expect(finding.reclaimable == false)
        #expect(finding.classification == .tracksEviction)
        #expect(finding.state == .resolved)
        #expect(finding.growthBytes > 25e9)
        #expect(finding.message.hasPrefix("kmalloc-32 grows 32.0 KiB per cached inode (R² "))
        #expect(finding.message.contains("while inodes rose by 1,00"))
        #expect(finding.message.contains("Unreclaimable. Its memory came back: "))
        #expect(finding.message.hasSuffix("It fell with the inode count when inodes were evicted: memory attached to cached inodes, not a leak."))
        #expect(finding.resolution == .memoryReturned)
        #expect(finding.otherDrivers.contains { $0.driver == .dentries })
        #expect(finding.evidence.count <= 60 && finding.evidence.count >= 8)
        #expect(events.map(\.kind).first == .opened)
        // 53 MB/s would exhaust 200 GiB within an hour, but a rise of a minute or two
        // says nothing about the next hour (exhaustionLookahead): critical only
        // once the cache holds 10 % of MemTotal.
        #expect(events.first?.finding.severity == .warning)
        #expect(events.contains { $0.kind == .escalated && $0.finding.severity == .critical && $0.finding.heldBytes > 25 << 30 })
        #expect(events.contains { $0.kind == .reclassified && $0.finding.classification == .tracksEviction })
        #expect(events.last?.kind == .resolved)
        #expect(report.findings.count == 1, "\(report.findings.map(\.slab))")
    }

    @Test func escalatesWhenTheCacheReachesAShareOfMemory() throws {
        var s = Scenario()
        s.memTotal = 16 << 30
        s.memAvailable = 1 << 50  // no exhaustion in sight: only the share counts
        var inodes = 10_000.0
        for _ in 0..<200 {
            inodes += 5000
            s.add(inodes: inodes, caches: [("kmalloc-64", 2048 * inodes + s.jitter(1e6), false)] + s.background())
        }
        let (report, events) = s.replay()
        #expect(events.map(\.kind).prefix(2) == [.opened, .escalated])
        #expect(events.first?.finding.severity == .warning)
        #expect(report.findings.first?.severity == .critical)  // 2 GiB > 10 % of 16 GiB
    }

    @Test func leakLikeWhenInodesFallAndTheCacheDoesNot() throws {
        let (report, events) = Scenario.seed(cacheFalls: false).replay()
        let finding = try #require(report.findings.first { $0.slab == "kmalloc-32" })
        #expect(finding.classification == .leakLike)
        #expect(finding.message.contains("The inode count fell but it did not: leak-like."))
        #expect(!events.contains { $0.finding.classification == .tracksEviction })
    }

    @Test func openFindingWhileStillRising() throws {
        var s = Scenario.seed()
        s.samples = Array(s.samples.prefix(24 + 120))
        let (report, _) = s.replay()
        let finding = try #require(report.findings.first)
        #expect(finding.state == .open && finding.classification == .undetermined)
        #expect(finding.severity == .critical)
        #expect(report.openCounts[.critical] == 1)
        #expect(finding.message.contains("Inodes have only risen so far"))
        let trend = try #require(report.trend)
        #expect(trend.secondsToLimit != nil)
        let perInode = try #require(trend.fits.first { $0.memory == .slabUnreclaimable && $0.driver == .inodes })
        #expect(abs(perInode.bytesPerUnit - 32768) / 32768 < 0.05)
    }

    @Test func reclaimableGrowthIsInfoAndCanBeSwitchedOff() throws {
        var s = Scenario()
        var dentries = 100_000.0
        for _ in 0..<180 {
            dentries += 5000
            s.add(inodes: dentries / 2, dentries: dentries + s.jitter(500),
                  caches: [("dentry", 192 * dentries + s.jitter(1e6), true)] + s.background())
        }
        let (report, _) = s.replay()
        let finding = try #require(report.findings.first { $0.slab == "dentry" })
        #expect(finding.severity == .info)
        #expect(finding.reclaimable == true)
        // 192 bytes per dentry, so 384 per inode (two dentries per inode here):
        // each driver's fit states its own slope, and the finding the slope of its driver.
        let perDentry = try #require(finding.fits.first { $0.driver == .dentries })
        #expect(abs(perDentry.bytesPerUnit - 192) / 192 < 0.05, "\(perDentry)")
        let perInode = try #require(finding.fits.first { $0.driver == .inodes && $0.inodeCache == nil })
        #expect(abs(perInode.bytesPerUnit - 384) / 384 < 0.05, "\(perInode)")
        let own = try #require(finding.fits.first { $0.driver == finding.driver && $0.inodeCache == finding.inodeCache })
        #expect(abs(finding.bytesPerUnit - own.bytesPerUnit) / own.bytesPerUnit < 0.05, "\(finding.driver): \(finding.bytesPerUnit) vs \(own)")
        var off = DetectorSettings()
        off.reportReclaimable = false
        #expect(s.replay(off).0.findings.isEmpty)
    }

    @Test(arguments: ["idle", "random walk", "sawtooth", "bursty", "constant"])
    func ordinaryMachinesStaySilent(_ shape: String) throws {
        var s = Scenario()
        var walk = 3e9, inodes = 500_000.0
        for i in 0..<1440 {  // two hours at 5 s
            inodes += s.jitter(2000)
            let value: Double
            switch shape {
            case "random walk": walk += s.jitter(8e6); value = walk
            case "sawtooth": value = 1e9 + Double(i % 60) * 4e6  // fills, then reclaimed, every 5 min
            case "bursty": value = 1e9 + (i % 97 < 3 ? 300e6 : 0) + s.jitter(2e6)
            case "constant": value = 1e9
            default: value = 1e9 + s.jitter(20e6)
            }
            s.add(inodes: inodes, caches: [("subject", value, false)] + s.background())
        }
        let (report, events) = s.replay()
        #expect(report.findings.isEmpty, "\(report.findings.map(\.message))")
        #expect(events.isEmpty)
        // Silence is not NaN: the trend is still fitted over two hours, and its figures are numbers.
        let trend = try #require(report.trend)
        #expect(!trend.fits.isEmpty)
        for fit in trend.fits { #expect(fit.bytesPerUnit.isFinite && fit.rSquared.isFinite, "\(fit)") }
    }

    @Test func cachesAppearingAndVanishingMidway() throws {
        var s = Scenario()
        var inodes = 10_000.0
        for i in 0..<300 {
            inodes += 4000
            var caches = s.background()
            if i >= 50 && i < 250 { caches.append(("module_cache", 300 * (inodes - 210_000) + 1e6, false)) }
            if i < 100 { caches.append(("early_cache", 1e6, false)) }
            s.add(inodes: inodes, caches: caches)
        }
        let (report, events) = s.replay()
        let finding = try #require(report.findings.first { $0.slab == "module_cache" })
        #expect(finding.state == .resolved)  // the module was unloaded
        #expect(abs(finding.bytesPerUnit - 300) / 300 < 0.05)
        #expect(events.filter { $0.kind == .opened }.count == 1)
    }
}
