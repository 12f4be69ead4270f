import Testing
@testable import SlabWatch

/// The files ProcReader reads under the procfs root are the files a
/// recording copies: a source added to one and not the other would replay
/// as down.
struct KernelPathsTests {
    @Test func everyProcFileReadIsRecorded() {
        let paths = KernelPaths(procfs: "/recorded/proc", sysfs: "/recorded/sys")
        let read = [paths.slabinfo, paths.meminfo, paths.inodeNr, paths.dentryState, paths.fileNr, paths.zoneinfo,
                    paths.loadavg, paths.sockstat, paths.cgroups]
        #expect(read == KernelPaths.procFiles.map { "/recorded/proc/\($0)" })
        #expect(Recording.procFiles == KernelPaths.procFiles)
    }
}
