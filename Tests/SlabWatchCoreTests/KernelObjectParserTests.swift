import Testing
@testable import SlabWatchCore

/// The counts of threads, sockets and memory cgroups, parsed from this
/// machine's files as the kernel writes them, and every malformed shape
/// giving nil, never a trap or a made-up zero.
@Suite("Kernel object parsers")
struct KernelObjectParserTests {
    private func bytes(_ text: String) -> ArraySlice<UInt8> { ArraySlice(text.utf8) }

    @Test func loadavgTotalIsTheThreadCount() throws {
        let tasks = try #require(KernelObjectParser.loadavg(bytes("0.16 0.69 0.73 8/170 31327\n")))
        #expect(tasks == TaskCounts(threads: 170, runnable: 8))
    }

    @Test(arguments: ["", "\n", "0.16 0.69 0.73 8170 31327\n", "0.16 0.69 0.73 8/ 31327\n", "0.16 0.69 0.73 /170 31327\n",
                      "0.16 0.69 0.73 8/170\n", "0.16 0.69 0.73 8/1x0 31327\n", "0.16 0.69 0.73 8/99999999999999999999999 1\n",
                      "0.16 0.69 8/170 31327\n", "0.16 0.69 0.73 8/170/3 31327\n"])
    func malformedLoadavgIsNil(_ text: String) {
        #expect(KernelObjectParser.loadavg(bytes(text)) == nil)
    }

    @Test func sockstatReadsUsedAndTCP() throws {
        let text = "sockets: used 2034\nTCP: inuse 501 orphan 2 tw 7 alloc 503 mem 17\nUDP: inuse 0 mem 0\nUDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n"
        let counts = try #require(KernelObjectParser.sockstat(bytes(text)))
        #expect(counts == SocketCounts(used: 2034, tcpInUse: 501, tcpOrphan: 2, tcpTimeWait: 7, tcpAllocated: 503))
        // A namespace without TCP lines (or a kernel that words them otherwise) still has its socket count.
        #expect(KernelObjectParser.sockstat(bytes("sockets: used 14\n")) == SocketCounts(used: 14))
    }

    @Test(arguments: ["", "TCP: inuse 1\n", "sockets: used\n", "sockets: free 3\n", "sockets: used -1\n",
                      "sockets: used 3\nTCP: inuse\n", "sockets: used 3\nTCP: inuse x orphan 0\n"])
    func malformedSockstatIsNil(_ text: String) {
        #expect(KernelObjectParser.sockstat(bytes(text)) == nil)
    }

    @Test func procCgroupsMemoryRow() {
        let text = "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t3\t1\t1\nmemory\t4\t1040\t1\npids\t8\t1\t1\n"
        #expect(KernelObjectParser.memoryCgroups(bytes(text)) == 1040)
        // cgroup v2 (hierarchy 0) counts the same way.
        #expect(KernelObjectParser.memoryCgroups(bytes("memory\t0\t75\t1\n")) == 75)
    }

    @Test(arguments: ["", "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t1\t1\n", "memory\t4\t48\t0\n",
                      "memory\t4\t48\n", "memory\t4\tmany\t1\n", "memory\n"])
    func procCgroupsWithoutAnEnabledMemoryRowIsNil(_ text: String) {
        #expect(KernelObjectParser.memoryCgroups(bytes(text)) == nil)
    }

    @Test func cgroupStatPrefersTheMemoryCount() throws {
        let newer = "nr_descendants 240\nnr_subsys_memory 241\nnr_dying_descendants 68700\nnr_dying_subsys_memory 68680\n"
        let stat = try #require(KernelObjectParser.cgroupStat(bytes(newer)))
        #expect(stat.dyingMemoryCgroups == 68680)
        // Before 6.12 only the dying descendants of any controller are counted.
        let older = try #require(KernelObjectParser.cgroupStat(bytes("nr_descendants 0\nnr_dying_descendants 53\n")))
        #expect(older.dyingMemoryCgroups == 53)
        #expect(older.dyingMemory == nil)
    }

    @Test(arguments: ["", "nr_descendants 3\n", "nr_dying_descendants x\n", "nr_dying_descendants 3\nnr_dying_subsys_memory -2\n"])
    func malformedCgroupStatIsNil(_ text: String) {
        #expect(KernelObjectParser.cgroupStat(bytes(text)) == nil)
    }
}
