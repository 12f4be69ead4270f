import Testing
@testable import SlabWatch
import SlabWatchCore

/// ProcReader against this machine's real /proc and /sys.
struct ProcReaderLiveTests {
    @Test func liveSampleHasCachesMemoryAndCounters() throws {
        let reader = ProcReader(paths: KernelPaths(), pageSize: Host.pageSize)
        let sample = reader.sample(timestampMilliseconds: 1)
        #expect(sample.status(of: .meminfo).up)
        #expect(sample.meminfo?.totalBytes ?? 0 > 0)
        #expect(sample.inodes != nil && sample.dentries != nil && sample.fileHandles != nil)
        if sample.status(of: .slabinfo).up {
            #expect(sample.caches.count > 50)
        }
        let dentry = try #require(sample.caches.first { $0.name == "dentry" })
        #expect(dentry.reclaimable == true)
        #expect(dentry.footprintBytes > 0)
    }
}
