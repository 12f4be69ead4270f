import Foundation
import SlabWatchCore
import Testing
import TestSupport

/// Two reports `measure --json` wrote on this machine (Tests/Fixtures/measure):
/// 30,000 tmpfs files with a 400-byte, then a 100-byte xattr each.
struct MeasureReportFixtureTests {
    static func report(_ name: String) throws -> SlabWatchCore.Measurement {
        try MeasurementReader.read(Array(Data(contentsOf: RepositoryPaths.fixtures.appendingPathComponent("measure/\(name).json"))))
    }

    @Test func realReportsReadBackAndDiff() throws {
        let before = try Self.report("xattrs-400"), after = try Self.report("xattrs-100")
        #expect(try MeasurementReader.read(MeasurementRenderer.json(before)) == before, "what is read is written the same")
        #expect(before.quietCaches.count > 200, "every cache that did not move is listed with its noise floor")
        let text = MeasurementDiff.text(before: before, after: after)
        #expect(text.contains("kmalloc-cg-512: 512 B per inode of shmem_inode_cache (tmpfs) → nothing (did not move)"), "\(text)")
        #expect(text.contains("kmalloc-cg-192: nothing (did not move) → 194 B per inode of shmem_inode_cache (tmpfs) (new)"), "\(text)")
    }
}
