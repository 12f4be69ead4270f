import Foundation
import Testing
import TestSupport
@testable import SlabWatch
@testable import SlabWatchCore

/// Kernel memory per memory cgroup from fixture trees made the way the
/// kernel lays them out (cgroup v1's `memory.kmem.usage_in_bytes`, v2's
/// `memory.stat` per Documentation/admin-guide/cgroup-v2.rst), found through
/// a mountinfo line as the kernel writes it, under a recorded /sys.
struct CgroupMemoryReaderTests {
    static let uid = "1d3a8e2c-5b6f-4c7d-9e0a-2f4b6c8d0e1f"
    static let id = "3f2a1b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a"
    static let pod = "/kubepods/burstable/pod\(uid)/\(id)"

    static func v1Tree(_ dir: TemporaryDirectory) throws {
        try dir.write("proc/self/mountinfo", "25 30 0:23 / /sys rw - sysfs sysfs rw\n35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n")
        try dir.write("sys/fs/cgroup/memory/memory.kmem.usage_in_bytes", "999999999\n")  // the root: no leaf
        try dir.write("sys/fs/cgroup/memory/system.slice/a.service/memory.kmem.usage_in_bytes", "30081024\n")
        try dir.write("sys/fs/cgroup/memory/system.slice/b.service/memory.kmem.usage_in_bytes", "4096\n")
        try dir.write("sys/fs/cgroup/memory\(pod)/memory.kmem.usage_in_bytes", "26882048\n")
        try dir.write("sys/fs/cgroup/memory/system.slice/bad\"name\nx/memory.kmem.usage_in_bytes", "8192\n")
        // A cgroup removed between the walk and the read has no files left.
        try FileManager.default.createDirectory(atPath: dir.path("sys/fs/cgroup/memory/system.slice/gone.scope"), withIntermediateDirectories: true)
    }

    static func reader(_ dir: TemporaryDirectory, limit: Int) throws -> CgroupMemoryReader {
        try #require(CgroupMemoryReader.locate(procfs: dir.path("proc"), sysfs: dir.path("sys"), limit: limit))
    }

    @Test func v1LeavesAreReadLargestFirstAndTheRestSummed() throws {
        let dir = try TemporaryDirectory()
        try Self.v1Tree(dir)
        let memory = try Self.reader(dir, limit: 2).read()
        #expect(memory.version == .v1)
        #expect(memory.entries == [.init(path: "/system.slice/a.service", kernelBytes: 30_081_024), .init(path: Self.pod, kernelBytes: 26_882_048)])
        #expect(memory.others == 2 && memory.otherKernelBytes == 4096 + 8192)
        #expect(memory.unreadable == 1 && !memory.truncated)
    }

    @Test func v2ReadsTheKernelAndSlabLinesOfMemoryStat() throws {
        let dir = try TemporaryDirectory()
        try dir.write("proc/self/mountinfo", "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n")
        try dir.write("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n")
        try dir.write("sys/fs/cgroup/system.slice/a.service/memory.stat",
                      "anon 1\nfile 2\nkernel 5000000\nkernel_stack 16384\nslab_reclaimable 1000000\nslab_unreclaimable 3000000\nslab 4000000\n")
        try dir.write("sys/fs/cgroup/system.slice/old.service/memory.stat", "anon 1\nslab_reclaimable 10\nslab_unreclaimable 20\n")  // before 5.18: no kernel line
        try dir.write("sys/fs/cgroup/init.scope/memory.stat", "garbage\n")
        let memory = try Self.reader(dir, limit: 10).read()
        #expect(memory.version == .v2)
        #expect(memory.entries == [.init(path: "/system.slice/a.service", kernelBytes: 5_000_000, slabReclaimableBytes: 1_000_000, slabUnreclaimableBytes: 3_000_000),
                                   .init(path: "/system.slice/old.service", kernelBytes: 30, slabReclaimableBytes: 10, slabUnreclaimableBytes: 20)])
        #expect(memory.unreadable == 1, "a memory.stat without the lines says nothing")
    }

    /// In a pod (deploy/kubernetes/overlays/cgroups): mountinfo shows the
    /// pod's own cgroup namespace at /sys/fs/cgroup, and the node's tree is
    /// mounted at `path.cgroupfs`; that one is read, v2 there or v1's `memory`
    /// below it, and its paths are the node's.
    @Test func aGivenCgroupfsIsReadInsteadOfTheMountinfosHierarchy() throws {
        let dir = try TemporaryDirectory()
        try dir.write("proc/self/mountinfo", "30 25 0:26 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw,nsdelegate\n")
        try dir.write("sys/fs/cgroup/cgroup.controllers", "memory pids\n")
        try dir.write("sys/fs/cgroup/memory.stat", "kernel 1\n")  // the pod's own namespace: no leaf of the node
        try dir.write("host/v2/cgroup.controllers", "cpuset cpu io memory pids\n")
        try dir.write("host/v2/kubepods.slice/kubepods-pod\(Self.uid.replacingOccurrences(of: "-", with: "_")).slice/cri-containerd-\(Self.id).scope/memory.stat",
                      "kernel 5000000\nslab_reclaimable 1000000\nslab_unreclaimable 3000000\n")
        let v2 = try #require(CgroupMemoryReader.locate(procfs: dir.path("proc"), sysfs: dir.path("sys"), cgroupfs: dir.path("host/v2"), limit: 10))
        #expect(v2.version == .v2 && v2.read().entries.map(\.path)
            == ["/kubepods.slice/kubepods-pod\(Self.uid.replacingOccurrences(of: "-", with: "_")).slice/cri-containerd-\(Self.id).scope"])
        #expect(try #require(CgroupMemoryReader.locate(procfs: dir.path("proc"), sysfs: dir.path("sys"), limit: 10)).root == dir.path("sys/fs/cgroup"))

        try dir.write("host/v1/memory/memory.kmem.usage_in_bytes", "999\n")
        try dir.write("host/v1/memory\(Self.pod)/memory.kmem.usage_in_bytes", "26882048\n")
        try dir.write("host/v1/unified/cgroup.controllers", "\n")
        let v1 = try #require(CgroupMemoryReader.locate(procfs: dir.path("proc"), sysfs: dir.path("sys"), cgroupfs: dir.path("host/v1"), limit: 10))
        #expect(v1.version == .v1 && v1.read().entries == [.init(path: Self.pod, kernelBytes: 26_882_048)])
        #expect(CgroupMemoryReader.locate(procfs: dir.path("proc"), sysfs: dir.path("sys"), cgroupfs: dir.path("host/none"), limit: 10) == nil)
    }

    /// No memory controller anywhere (a cgroup2 tree without it, as this
    /// machine's unified one): nothing to read, no reader.
    @Test func withoutAMemoryHierarchyThereIsNoReader() throws {
        let dir = try TemporaryDirectory()
        try dir.write("proc/self/mountinfo", "30 25 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n")
        try dir.write("sys/fs/cgroup/unified/cgroup.controllers", "hugetlb\n")
        #expect(CgroupMemoryReader.locate(procfs: dir.path("proc"), sysfs: dir.path("sys"), limit: 10) == nil)
        let empty = try TemporaryDirectory()
        #expect(CgroupMemoryReader.locate(procfs: empty.path("proc"), sysfs: empty.path("sys"), limit: 10) == nil)
    }

    /// The walk is bounded: a node with more cgroups than the bound reads
    /// those it reached and says it stopped.
    /// Memory charged to an interior cgroup itself — a container restarted in
    /// its pod leaves its slab charged to the pod, a v1 process may sit in an
    /// interior cgroup — is an entry of its own (its reading less its
    /// children's), so the entries and "other" add up to what the top-level
    /// cgroups hold; reading leaves only, it was nowhere. Skew between the
    /// reads (under `ownPartFloor`) and a parent whose child could not be
    /// read give no such entry.
    @Test func anInteriorCgroupsOwnPartIsAnEntry() throws {
        let dir = try TemporaryDirectory()
        try dir.write("proc/self/mountinfo", "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n")
        try dir.write("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n")
        func stat(_ path: String, kernel: Int, reclaimable: Int, unreclaimable: Int) throws {
            try dir.write("sys/fs/cgroup\(path)/memory.stat",
                          "anon 1\nkernel \(kernel)\nslab_reclaimable \(reclaimable)\nslab_unreclaimable \(unreclaimable)\n")
        }
        let pod = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(Self.uid.replacingOccurrences(of: "-", with: "_")).slice"
        try stat("\(pod)/cri-containerd-\(Self.id).scope", kernel: 30_000_000, reclaimable: 4_000_000, unreclaimable: 20_000_000)
        try stat("\(pod)/cri-containerd-\(String(Self.id.reversed())).scope", kernel: 2_000_000, reclaimable: 0, unreclaimable: 1_000_000)
        try stat(pod, kernel: 40_000_000, reclaimable: 4_500_000, unreclaimable: 26_000_000)  // 8 MB of a restarted container
        try stat("/kubepods.slice/kubepods-burstable.slice", kernel: 40_000_000 + 500_000, reclaimable: 4_500_000, unreclaimable: 26_000_000)
        try stat("/kubepods.slice", kernel: 40_500_000, reclaimable: 4_500_000, unreclaimable: 26_000_000)
        try stat("/system.slice/a.service", kernel: 3_000_000, reclaimable: 0, unreclaimable: 2_000_000)
        try FileManager.default.createDirectory(atPath: dir.path("sys/fs/cgroup/system.slice/gone.scope"), withIntermediateDirectories: true)
        try stat("/system.slice", kernel: 9_000_000, reclaimable: 0, unreclaimable: 6_000_000)  // its child gone.scope unread
        let memory = try Self.reader(dir, limit: 10).read()
        let byPath = Dictionary(uniqueKeysWithValues: memory.entries.map { ($0.path, $0) })
        #expect(byPath[pod] == .init(path: pod, kernelBytes: 8_000_000, slabReclaimableBytes: 500_000, slabUnreclaimableBytes: 5_000_000))
        #expect(byPath["/kubepods.slice/kubepods-burstable.slice"] == nil, "500 kB apart is under the floor")
        #expect(byPath["/system.slice"] == nil, "a child unread: its own part cannot be told")
        #expect(memory.entries.filter { $0.path.hasPrefix("/kubepods.slice") }.reduce(0) { $0 + $1.kernelBytes } == 40_000_000)
        #expect(memory.unreadable == 1)
    }

    /// Directory names that are not UTF-8 (a delegated subtree's owner can
    /// make them) are not read: decoded, `a\xff` and `a\xfe` would both be
    /// `a\u{FFFD}`, one cgroup twice in the history, and a state file that
    /// holds one name in two columns is refused whole.
    @Test func namesThatAreNotUTF8AreNotRead() throws {
        let dir = try TemporaryDirectory()
        try Self.v1Tree(dir)
        for byte: UInt8 in [0xFF, 0xFE] {
            var path = Array(dir.path("sys/fs/cgroup/memory/system.slice/a").utf8) + [byte, 0]
            #expect(path.withUnsafeBufferPointer { mkdir(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), 0o755) } == 0)
            path.removeLast()
            path += Array("/memory.kmem.usage_in_bytes".utf8) + [0]
            let fd = path.withUnsafeBufferPointer { open(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), O_CREAT | O_WRONLY, 0o644) }
            #expect(fd >= 0)
            #expect(write(fd, "20480000\n", 9) == 9)
            close(fd)
        }
        let memory = try Self.reader(dir, limit: 10).read()
        #expect(memory.entries.allSatisfy { !$0.path.contains("\u{FFFD}") }, "\(memory.entries)")
        #expect(memory.unreadable == 3, "gone.scope and the two names")
        var history = CgroupHistory(capacity: 4, columns: 8)
        history.append(memory, at: 1)
        #expect(try StateDecoder.decode(CgroupHistory.self, from: StateEncoder.encode(history)) == history)
    }

    /// A reader keeps its paths from one walk to the next: an unchanged
    /// cgroup's path is the last walk's string, not a new one, and a tree
    /// that changed between walks (cgroups gone, new ones beside them) reads
    /// as a new reader reads it.
    @Test func aSecondWalkReusesThePathsOfTheFirst() throws {
        let dir = try TemporaryDirectory()
        try Self.v1Tree(dir)
        let reader = try Self.reader(dir, limit: 10)
        let first = reader.read(), second = reader.read()
        #expect(second == first)
        func storage(_ path: String) -> UnsafePointer<UInt8>? { path.utf8.withContiguousStorageIfAvailable { $0.baseAddress } ?? nil }
        let long = first.entries.filter { $0.path.utf8.count > 15 }  // shorter ones are stored inline, no storage to share
        #expect(long.count == 4)
        #expect(long.allSatisfy { entry in storage(entry.path) == second.entries.first { $0.path == entry.path }.flatMap { storage($0.path) } })

        let root = reader.root
        try FileManager.default.removeItem(atPath: root + "/system.slice/a.service")
        for name in ["a.service", "a.servicf", "aa.service"] {
            try dir.write("sys/fs/cgroup/memory/system.slice/\(name).d/memory.kmem.usage_in_bytes", "\(name.utf8.count * 4096)\n")
        }
        let changed = reader.read()
        #expect(changed == CgroupMemoryReader(root: root, version: .v1, limit: 10).read())
        #expect(changed.entries.contains { $0.path == "/system.slice/a.servicf.d" } && !changed.entries.contains { $0.path == "/system.slice/a.service" })
    }

    /// Directories are listed with getdents64 into one buffer, refilled
    /// until the directory ends: a directory of more names than one buffer
    /// holds (600 records of about 96 bytes, in 32 KiB) is listed whole.
    @Test func getdentsListsADirectoryLargerThanItsBuffer() throws {
        let dir = try TemporaryDirectory()
        try dir.write("memory/memory.kmem.usage_in_bytes", "1\n")
        for pod in 0..<600 {
            try dir.write("memory/kubepods/pod\(pod)-\(Self.id)/memory.kmem.usage_in_bytes", "\(4096 * (pod + 1))\n")
        }
        let listed = CgroupMemoryReader(root: dir.path("memory"), version: .v1, limit: 1000).read()
        #expect(listed.entries.count == 600 && listed.unreadable == 0)
        #expect(Set(listed.entries.map(\.path)) == Set((0..<600).map { "/kubepods/pod\($0)-\(Self.id)" }))
    }

    /// Each cgroup's file is opened relative to its directory, open from
    /// the walk, not by its full path (the kernel then looked up every
    /// directory from the root again): a leaf whose full path is longer
    /// than the kernel takes in one path (PATH_MAX, 4,096 bytes) is read.
    @Test func aCgroupWhosePathIsLongerThanAPathIsRead() throws {
        let dir = try TemporaryDirectory()
        try dir.write("memory/memory.kmem.usage_in_bytes", "1\n")
        let name = String(repeating: "n", count: 250), levels = 20  // 5,020 bytes below the root
        var fd = open(dir.path("memory"), O_RDONLY | O_DIRECTORY)
        for _ in 0..<levels {
            #expect(mkdirat(fd, name, 0o755) == 0)
            let child = openat(fd, name, O_RDONLY | O_DIRECTORY)
            close(fd)
            fd = child
        }
        let file = openat(fd, "memory.kmem.usage_in_bytes", O_CREAT | O_WRONLY, 0o644)
        #expect(file >= 0 && write(file, "8192\n", 5) == 5)
        close(file)
        close(fd)
        let memory = CgroupMemoryReader(root: dir.path("memory"), version: .v1, limit: 10).read()
        #expect(memory.unreadable == 0)
        #expect(memory.entries.map(\.kernelBytes) == [8192], "the one leaf")
        #expect(memory.entries.first.map { $0.path == String(repeating: "/" + name, count: levels) } == true)
        // Taken down here, each level relative to its parent: a removal by full paths would fail.
        func remove(in parent: Int32, levels: Int) {
            let directory = openat(parent, name, O_RDONLY | O_DIRECTORY)
            if levels > 1 { remove(in: directory, levels: levels - 1) } else { unlinkat(directory, "memory.kmem.usage_in_bytes", 0) }
            close(directory)
            #expect(unlinkat(parent, name, AT_REMOVEDIR) == 0)
        }
        let root = open(dir.path("memory"), O_RDONLY | O_DIRECTORY)
        remove(in: root, levels: levels)
        close(root)
    }

    /// A reading's largest entries are kept in the array of the reading two
    /// walks back, once nothing holds that one (a sample holds the last):
    /// a walk then makes no array. One still held keeps what it read.
    @Test func aWalkKeepsItsEntriesInTheArrayOfTwoReadingsBack() throws {
        let dir = try TemporaryDirectory()
        try dir.write("memory/memory.kmem.usage_in_bytes", "1\n")
        for cgroup in 0..<40 { try dir.write("memory/c\(cgroup)/memory.kmem.usage_in_bytes", "\(4096 * (cgroup + 1))\n") }
        let reader = CgroupMemoryReader(root: dir.path("memory"), version: .v1, limit: 50)
        var first: CgroupMemory? = reader.read()
        #expect(first?.entries.count == 40)
        for cgroup in 2..<40 { try FileManager.default.removeItem(atPath: dir.path("memory/c\(cgroup)")) }
        let held = reader.read()  // two entries now, and held, as a sample holds the last reading
        first = nil
        let third = reader.read()
        #expect(third.entries == held.entries && held.entries.count == 2)
        #expect(third.entries.capacity >= 40, "the first reading's storage, refilled")
        let fourth = reader.read()  // the second reading is still held: its entries are left as they are
        #expect(fourth.entries == held.entries && held.entries.capacity < 40)
        withExtendedLifetime(first) {}
    }

    @Test func theWalkStopsAtItsBound() throws {
        let dir = try TemporaryDirectory()
        try Self.v1Tree(dir)
        let root = try Self.reader(dir, limit: 10).root
        let memory = CgroupMemoryReader(root: root, version: .v1, limit: 10, maxDirectories: 3).read()
        #expect(memory.truncated && memory.entries.count + memory.unreadable < 5)
    }

    /// In /metrics: the largest, `other`, the pod's UID and container beside
    /// the path, and a name with a quote and a newline escaped.
    @Test func metricsCarryTheOwnerAndEscapeTheName() throws {
        let dir = try TemporaryDirectory()
        try Self.v1Tree(dir)
        var sample = Sample(timestampMilliseconds: 0)
        sample.cgroupMemory = try Self.reader(dir, limit: 10).read()
        let text = String(decoding: MetricsRenderer.render(.init(sample: sample, exportedCaches: [], version: "t", report: .init(findings: []),
                                                                 own: SelfStatistics())), as: UTF8.self)
        #expect(text.contains("slabwatch_cgroup_kernel_memory_bytes{cgroup=\"\(Self.pod)\",container_id=\"\(Self.id)\",pod_uid=\"\(Self.uid)\",unit=\"\"} 26882048"), "\(text)")
        #expect(text.contains("slabwatch_cgroup_kernel_memory_bytes{cgroup=\"/system.slice/a.service\",container_id=\"\",pod_uid=\"\",unit=\"a.service\"} 30081024"))
        #expect(text.contains("{cgroup=\"/system.slice/bad\\\"name\\nx\","), "\(text)")
        #expect(text.contains("slabwatch_cgroups{state=\"unreadable\"} 1") && !text.contains("slabwatch_cgroup_kernel_memory_bytes{cgroup=\"other\""))
    }
}
