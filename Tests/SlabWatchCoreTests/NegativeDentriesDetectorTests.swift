import Testing
@testable import SlabWatchCore

/// The curl/NSS story on a busy machine: a health check stat()s a name that
/// does not exist thousands of times a second, and every lookup leaves a
/// negative dentry (192 bytes of `dentry`, no inode), while a build's ext4
/// files come and go beside it. "dentry grows 192 B per dentry" is true of
/// every dentry; the finding must say negative dentries, and what they cost.
struct NegativeDentriesDetectorTests {
    typealias Stories = BusyMachineDetectorTests

    /// What `BusyMachine` charges `dentry` for each negative dentry.
    static let bytesPerNegativeDentry = 192.0

    /// Five minutes of an ordinary machine, ten of a health check at 3,000
    /// missing names a second beside a build whose 30,000 ext4 inodes come
    /// and go every two minutes, five with the check stopped, then
    /// `echo 2 > drop_caches` and ten minutes after it.
    static func healthCheckStorm() -> (BusyMachine, plateauEnd: Int64) {
        var m = BusyMachine()
        m.negativeDentries = 8_000
        m.run(300)
        for _ in 0..<5 {
            m.run(60, to: [.ext4: 90_000], negativeDentries: m.negativeDentries! + 180_000)
            m.run(60, to: [.ext4: 60_000], negativeDentries: m.negativeDentries! + 180_000)
        }
        m.run(300)
        let plateauEnd = m.now
        m.run(10, to: [.ext4: 30_000], negativeDentries: 5_000)  // drop_caches frees both kinds of dentry
        m.run(600)
        return (m, plateauEnd)
    }

    @Test func aHealthCheckStormIsPerNegativeDentry() throws {
        let (m, plateauEnd) = Self.healthCheckStorm()
        let (reports, events) = m.replay()
        let held = try #require(Stories.finding(reports[plateauEnd], "dentry"))
        #expect(held.driver == .negativeDentries && held.inodeCache == nil)
        #expect(Stories.within(held.bytesPerUnit, Self.bytesPerNegativeDentry), "\(held.bytesPerUnit) B per negative dentry")
        #expect(held.rSquared > 0.99)
        #expect(held.driverChange > 1_000_000, "its window saw the storm: \(held.driverChange)")
        // Every dentry explains it as well, and is the tautology the finding avoids.
        #expect(held.otherDrivers.contains { $0.driver == .dentries })
        #expect(held.reclaimable == true && held.severity == .info)
        #expect(held.state == .open && held.classification == .undetermined, "the build's evictions are not its driver falling")
        #expect(held.message.hasPrefix("dentry grows 19") && held.message.contains(" B per negative dentry (R² "), "\(held.message)")
        #expect(held.message.contains("while negative dentries rose by "), "\(held.message)")
        #expect(held.message.contains("lookups of names that do not exist"), "\(held.message)")
        #expect(held.message.contains("echo 2 > /proc/sys/vm/drop_caches"), "\(held.message)")

        let last = try #require(Stories.finding(reports[m.now], "dentry"))
        #expect(last.driver == .negativeDentries && last.classification == .tracksEviction)
        #expect(last.message.contains("It fell with the negative dentry count when negative dentries were evicted"), "\(last.message)")
        #expect(Stories.kinds(events, "dentry").first == "opened:undetermined")
        #expect(!Stories.kinds(events, "dentry").contains { $0.hasSuffix("leak-like") })
        let others = Set(events.map(\.finding.slab)).subtracting(["dentry"])
        #expect(others.isEmpty, "no other cache grew: \(others.sorted())")
    }

    /// A find warms the dentry cache after a drop_caches just before the
    /// health check starts: 77,000 positive dentries the negative count does
    /// not see, in the same windows. Against its own count `dentry` fits
    /// better than a near tie, as it always does on a live machine where
    /// other dentries come and go; the finding must still say negative.
    @Test func otherDentriesBeforeTheStormDoNotMakeItPerDentry() throws {
        var m = BusyMachine()
        m.negativeDentries = 8_000
        m.run(300)
        m.run(60, to: [.ext4: 130_000])
        m.run(120, negativeDentries: 368_000)
        m.run(120)
        let (reports, _) = m.replay()
        let finding = try #require(Stories.finding(reports[m.now], "dentry"))
        let own = try #require(finding.fits.first { $0.driver == .dentries })
        #expect(own.rSquared - finding.rSquared > DetectorSettings().nearTieRSquared, "\(finding.fits)")
        #expect(finding.driver == .negativeDentries, "\(finding.message)")
        #expect(Stories.within(finding.bytesPerUnit, Self.bytesPerNegativeDentry, 0.1), "\(finding.bytesPerUnit) B per negative dentry")
    }

    /// The control: the same machine's `find` over 340,000 ext4 files, while
    /// ordinary lookups leave 25 negative dentries a second (15,000 in the
    /// find's ten minutes, past `minDriverChange`, and as steady as the
    /// find). `dentry` grows per inode; nothing is per negative dentry.
    @Test func aFindBesideOrdinaryLookupsIsNotPerNegativeDentry() throws {
        var m = BusyMachine()
        m.negativeDentries = 8_000
        m.run(300)
        m.run(600, to: [.ext4: 400_000], negativeDentries: 23_000)
        m.run(300)
        let (reports, events) = m.replay()
        #expect(!events.contains { $0.finding.driver == .negativeDentries }, "\(events.map { "\($0.finding.slab) \($0.finding.driver)" })")
        let dentry = try #require(Stories.finding(reports[m.now], "dentry"))
        #expect(dentry.driver == .inodes, "\(dentry.message)")
    }
}
