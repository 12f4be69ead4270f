import Testing
@testable import SlabWatchCore

/// Kernel addresses named as the kernel's traces name them, from kallsyms lines.
struct KernelSymbolsTests {
    /// This machine's (6.18) kallsyms around shmem_alloc_inode, a module's symbol, and data symbols.
    static let kallsyms = """
        ffffffff815c98f0 t shmem_free_in_core_inode
        ffffffff815c99d0 t __pfx_shmem_alloc_inode
        ffffffff815c99e0 t shmem_alloc_inode
        ffffffff81705e70 T alloc_inode
        ffffffff81705f50 T new_inode
        ffffffff82a00000 D init_task
        ffffffffc0a01000 t foo_attach_inode\t[foo]
        ffffffffc0a01100 t foo_lookup\t[foo]
        """

    static func resolve(_ addresses: Set<UInt64>, _ text: String = kallsyms) -> [UInt64: (function: String, module: String?)] {
        var symbols = KernelSymbols(resolving: addresses)
        for line in text.split(separator: "\n") { symbols.take(line) }
        return symbols.resolved()
    }

    @Test(arguments: [
        (UInt64(0xffffffff815c99fd), "shmem_alloc_inode+0x1d", String?.none),
        (0xffffffff815c99e0, "shmem_alloc_inode+0x0", nil),
        (0xffffffff815c99df, "__pfx_shmem_alloc_inode+0xf", nil),
        (0xffffffff81705e8e, "alloc_inode+0x1e", nil),
        (0xffffffff81705f60, "new_inode+0x10", nil),
        (0xffffffffc0a0102a, "foo_attach_inode+0x2a", "foo"),
        (0xffffffffc0a01111, "foo_lookup+0x11", "foo"),
    ])
    func namesTheNearestSymbolAtOrBelow(address: UInt64, function: String, module: String?) {
        let named = Self.resolve([address])[address]
        #expect(named?.function == function && named?.module == module)
    }

    @Test func manyAddressesInOnePassInAnyLineOrder() {
        let addresses: Set<UInt64> = [0xffffffff815c99fd, 0xffffffff81705e8e, 0xffffffffc0a0102a, 0xffffffff815c9900]
        let shuffled = Self.kallsyms.split(separator: "\n").reversed().joined(separator: "\n")
        let named = Self.resolve(addresses, shuffled)
        #expect(named[0xffffffff815c99fd]?.function == "shmem_alloc_inode+0x1d")
        #expect(named[0xffffffff81705e8e]?.function == "alloc_inode+0x1e")
        #expect(named[0xffffffffc0a0102a]?.function == "foo_attach_inode+0x2a")
        #expect(named[0xffffffff815c9900]?.function == "shmem_free_in_core_inode+0x10")
    }

    @Test func belowEverySymbolIsUnnamedAndHiddenAddressesAreNoticed() {
        #expect(Self.resolve([0x1000])[0x1000] == nil)
        var hidden = KernelSymbols(resolving: [0xffffffff815c99fd])
        for line in ["0000000000000000 t shmem_alloc_inode", "0000000000000000 T alloc_inode"] { hidden.take(Substring(line)) }
        #expect(hidden.addressesHidden && hidden.resolved().isEmpty)
        var shown = KernelSymbols(resolving: [0xffffffff815c99fd])
        for line in Self.kallsyms.split(separator: "\n") { shown.take(line) }
        #expect(!shown.addressesHidden)
    }
}

/// A BPF session's maps as an attribution: ranked sites, their processes and
/// cgroups, stacks trimmed to the call site, and the sentence that names them.
struct AttributionCountsTests {
    static let site: UInt64 = 0xffffffff815c99fd, other: UInt64 = 0xffffffff81705e8e

    static var counts: AttributionCounts {
        var counts = AttributionCounts()
        counts.sites = [.init(callSite: other, allocations: 500, frees: 500, netCount: 0, netBytes: 0),
                        .init(callSite: site, allocations: 20_000, frees: 5_000, netCount: 15_000, netBytes: 15_000 * 752)]
        counts.owners = [.init(callSite: site, tgid: 7, cgroupID: 1, allocations: 100, netCount: 100, netBytes: 100 * 752),
                         .init(callSite: site, tgid: 4121, cgroupID: 5000, allocations: 19_900, netCount: 14_900, netBytes: 14_900 * 752),
                         .init(callSite: site, tgid: 99, cgroupID: 6000, allocations: 1, netCount: 1, netBytes: 752)]
        counts.comms = [4121: "python3", 7: "kworker/0:1"]
        counts.stacks = [.init(callSite: site, frames: [0xffffffffc0000100, 0xffffffff815c99fd, 0xffffffff81705e8e, 0xffffffff81705f60],
                               allocations: 5000, net: 3700)]
        counts.frees = 5_500
        counts.limits = .init(notFollowed: 0, stacksLost: 2)
        return counts
    }

    static func attribution() -> Attribution {
        let names = KernelSymbolsTests.resolve(counts.addresses)
        return counts.attribution(cache: "shmem_inode_cache", symbol: { names[$0] }, cgroupPaths: [1: "/", 5000: "/system.slice/foo.service"],
                                  windowSeconds: 5, stopReason: .duration, endedMilliseconds: 1)
    }

    @Test func sitesRankedWithTheirProcessesAndCgroups() throws {
        let a = Self.attribution()
        #expect(a.source == .bpf && a.events == 20_500 + 5_500 && a.dropped == 0 && a.limits?.stacksLost == 2)
        let top = try #require(a.callSites.first)
        #expect(top.function == "shmem_alloc_inode+0x1d" && top.netCount == 15_000 && top.share == 1 && a.callSites.last?.netBytes == 0)
        let owners = try #require(top.processes)
        #expect(owners.map(\.pid) == [4121, 7, 99])
        #expect(owners[0].comm == "python3" && owners[0].cgroup == "/system.slice/foo.service" && owners[0].netCount == 14_900)
        #expect(owners[2].comm == nil && owners[2].cgroup == nil && owners[2].phrase == "pid 99 in cgroup 6000 (gone)")
        // The BPF program's and the allocator's frames above the call site are dropped; an unnamed address is hex.
        #expect(top.stacks.first?.frames == ["shmem_alloc_inode+0x1d", "alloc_inode+0x1e", "new_inode+0x10"])
        #expect(top.stacks.first?.net == 3700)
    }

    @Test func theSentenceNamesTheProcessAndCgroupThatHoldMost() {
        #expect(Self.attribution().sentence
                == "Allocated mostly by shmem_alloc_inode+0x1d (100 % of net bytes), from python3 (pid 4121) in /system.slice/foo.service.")
        var unknown = Self.attribution()
        unknown.callSites[0].processes = []
        #expect(unknown.sentence == "Allocated mostly by shmem_alloc_inode+0x1d (100 % of net bytes).")
    }

    @Test func journalFieldsNameTheProcessAndCgroup() {
        let fields = Dictionary(uniqueKeysWithValues: AlertPolicy.callSiteFields(Self.attribution()).map { ($0.name, $0.value) })
        #expect(fields["SLABWATCH_CALL_SITE"] == "shmem_alloc_inode+0x1d" && fields["SLABWATCH_PID"] == "4121")
        #expect(fields["SLABWATCH_COMM"] == "python3" && fields["SLABWATCH_CGROUP"] == "/system.slice/foo.service")
    }

    @Test func jsonAndTableCarryProcessesLimitsAndTheFallback() throws {
        var a = Self.attribution()
        let json = try JSONValue.parse(AttributionRenderer.json(a))
        #expect(json["source"]?.string == "bpf" && json["fallback"] == .null && json["stacks_lost"]?.number == 2)
        #expect(json["allocations"]?.number == 20_500 && json["net_count"]?.number == 15_000 && json["not_followed"]?.number == 0)
        let process = json["call_sites"]?.array?.first?["processes"]?.array?.first
        #expect(process?["pid"]?.number == 4121 && process?["comm"]?.string == "python3" && process?["cgroup"]?.string == "/system.slice/foo.service")
        #expect(process?["net_bytes"]?.number == 14_900 * 752 && process?["cgroup_id"]?.number == 5000)
        let table = AttributionRenderer.text(a)
        #expect(table.contains("from python3 (pid 4121) in /system.slice/foo.service") && table.contains("2 stacks lost"), "\(table)")
        a.fallback = "bpf unavailable: /sys/kernel/btf/vmlinux missing; traced with tracefs"
        #expect(try JSONValue.parse(AttributionRenderer.json(a))["fallback"]?.string == a.fallback)
        #expect(AttributionRenderer.text(a).contains("  (bpf unavailable: /sys/kernel/btf/vmlinux missing; traced with tracefs)"))
    }

    /// A free the tracepoints did not show (a bulk or RCU-batched free) leaves
    /// its object counted as net until the address comes back: the result says
    /// how often that was seen, so a net read as exact is not.
    @Test func freesNotSeenAreReportedAndMakeTheNetAnUpperBound() throws {
        var a = Self.attribution()
        #expect(try JSONValue.parse(AttributionRenderer.json(a))["frees_unseen"]?.number == 0)
        #expect(!AttributionRenderer.text(a).contains("frees were not seen"))
        a.limits?.freesUnseen = 1_234
        #expect(try JSONValue.parse(AttributionRenderer.json(a))["frees_unseen"]?.number == 1_234)
        let table = AttributionRenderer.text(a)
        #expect(table.contains("1,234 frees were not seen") && table.contains("net is an upper bound"), "\(table)")
        // Not a map that was full.
        a.limits = .init(freesUnseen: 5)
        #expect(!AttributionRenderer.text(a).contains("maps full"))
    }

    /// Attributions are kept in the state file: one written before processes,
    /// limits and fallbacks existed still decodes, and a new one round-trips.
    @Test func olderSavedAttributionsStillDecode() throws {
        let old = Attribution(cache: "kmalloc-32", source: .trace,
                              callSites: [.init(function: "x+0x1", module: nil, allocations: 5, frees: 1, netCount: 4, netBytes: 128, share: 1, stacks: [])],
                              events: 6, dropped: 0, windowSeconds: 1, stopReason: .duration)
        // What an older slabwatch wrote: the same object without the new keys.
        guard case .object(var members) = try StateEncoder.encode(old) else { Issue.record("not an object"); return }
        #expect(members["fallback"] == nil && members["limits"] == nil)
        guard case .array(var sites) = members["callSites"], case .object(let site) = sites.first else { Issue.record("no sites"); return }
        #expect(site["processes"] == nil)
        sites[0] = .object(site)
        members["callSites"] = .array(sites)
        #expect(try StateDecoder.decode(Attribution.self, from: .object(members)) == old)
        // A process kept before memory cgroups were read decodes without them.
        var withProcess = old
        withProcess.callSites[0].processes = [.init(pid: 1, comm: "a", cgroup: "/", cgroupID: 1, allocations: 5, netCount: 4, netBytes: 128)]
        guard case .object(var keptMembers) = try StateEncoder.encode(withProcess), case .array(var keptSites) = keptMembers["callSites"],
              case .object(var keptSite) = keptSites.first, case .array(let processes) = keptSite["processes"],
              case .object(var process) = processes.first else { Issue.record("no process"); return }
        #expect(process.removeValue(forKey: "memoryCgroup") == nil && process.removeValue(forKey: "memoryCgroupID") == nil, "nil is not written")
        keptSite["processes"] = .array([.object(process)])
        keptSites[0] = .object(keptSite)
        keptMembers["callSites"] = .array(keptSites)
        #expect(try StateDecoder.decode(Attribution.self, from: .object(keptMembers)) == withProcess)
        let new = Self.attribution()
        #expect(try StateDecoder.decode(Attribution.self, from: StateEncoder.encode(new)) == new)
    }

    /// A host with the memory controller on cgroup v1 (this machine kind):
    /// every process is in the cgroup2 root, `/`, and only the memory cgroup
    /// tells two services apart. It is named beside the cgroup, in the JSON,
    /// the table and the sentence.
    @Test func theMemoryCgroupIsNamedBesideTheCgroup() throws {
        var counts = AttributionCounts()
        counts.sites = [.init(callSite: Self.site, allocations: 1_000, frees: 0, netCount: 1_000, netBytes: 16_384_000)]
        counts.owners = [.init(callSite: Self.site, tgid: 4121, cgroupID: 1, memoryCgroupID: 7000, allocations: 990, netCount: 990, netBytes: 16_220_160),
                         .init(callSite: Self.site, tgid: 77, cgroupID: 1, memoryCgroupID: 8000, allocations: 9, netCount: 9, netBytes: 147_456),
                         .init(callSite: Self.site, tgid: 78, cgroupID: 1, memoryCgroupID: 0, allocations: 1, netCount: 1, netBytes: 16_384)]
        #expect(counts.cgroupIDs == [1] && counts.memoryCgroupIDs == [7000, 8000], "0 is no id: nothing to resolve")
        counts.comms = [4121: "python3"]
        let names = KernelSymbolsTests.resolve(counts.addresses)
        let a = counts.attribution(cache: "shmem_inode_cache", symbol: { names[$0] }, cgroupPaths: [1: "/"],
                                   memoryCgroupPaths: [7000: "/system.slice/foo.service"], windowSeconds: 5, stopReason: .duration,
                                   endedMilliseconds: 1)
        let owners = try #require(a.callSites.first?.processes)
        #expect(owners[0].cgroup == "/" && owners[0].memoryCgroup == "/system.slice/foo.service" && owners[0].memoryCgroupID == 7000)
        #expect(owners[0].phrase == "python3 (pid 4121) in /, memory cgroup /system.slice/foo.service")
        #expect(owners[1].memoryCgroup == nil && owners[1].phrase == "pid 77 in /, memory cgroup 8000 (gone)")
        #expect(owners[2].memoryCgroupID == nil && owners[2].phrase == "pid 78 in /", "an id the program could not read is no id")
        #expect(a.sentence == "Allocated mostly by shmem_alloc_inode+0x1d (100 % of net bytes), from python3 (pid 4121) in /, "
                + "memory cgroup /system.slice/foo.service.")
        let json = try JSONValue.parse(AttributionRenderer.json(a))
        let processes = try #require(json["call_sites"]?.array?.first?["processes"]?.array)
        #expect(processes[0]["cgroup"]?.string == "/" && processes[0]["memory_cgroup"]?.string == "/system.slice/foo.service")
        #expect(processes[0]["memory_cgroup_id"]?.number == 7000)
        #expect(processes[1]["memory_cgroup"] == .null && processes[1]["memory_cgroup_id"]?.number == 8000)
        #expect(processes[2]["memory_cgroup"] == .null && processes[2]["memory_cgroup_id"] == .null)
        #expect(AttributionRenderer.text(a).contains("from python3 (pid 4121) in /, memory cgroup /system.slice/foo.service"))
        // Where the memory cgroup is the cgroup (memory on cgroup2), it is said once.
        let same = Attribution.AllocatingProcess(pid: 5, comm: "sh", cgroup: "/a.service", cgroupID: 9, allocations: 1, netCount: 1, netBytes: 1,
                                                 memoryCgroup: "/a.service", memoryCgroupID: 9)
        #expect(same.phrase == "sh (pid 5) in /a.service")
        // A pod's container is said as the pod and container; the JSON names its owner as kube-state-metrics and cAdvisor do.
        let uid = CgroupOwnerTests.uid, id = CgroupOwnerTests.id
        let pod = Attribution.AllocatingProcess(
            pid: 6, comm: "java", cgroup: "/", cgroupID: 1, allocations: 1, netCount: 1, netBytes: 1,
            memoryCgroup: "/kubepods/burstable/pod\(uid)/\(id)", memoryCgroupID: 10)
        #expect(pod.phrase == "java (pid 6) in /, memory cgroup pod \(uid) (burstable), container 3f2a1b9c8d7e")
        var inPod = a
        inPod.callSites[0].processes = [pod, same]
        let podJSON = try JSONValue.parse(AttributionRenderer.json(inPod))
        let listed = try #require(podJSON["call_sites"]?.array?.first?["processes"]?.array)
        #expect(listed[0]["owner"]?["pod_uid"]?.string == uid && listed[0]["owner"]?["qos_class"]?.string == "burstable")
        #expect(listed[0]["owner"]?["container_id"]?.string == id && listed[0]["owner"]?["runtime"] == .null)
        #expect(listed[0]["memory_cgroup"]?.string == "/kubepods/burstable/pod\(uid)/\(id)", "the path stays in the JSON")
        #expect(listed[1]["owner"]?["kind"]?.string == "unit" && listed[1]["owner"]?["unit"]?.string == "a.service")
        #expect(processes[0]["owner"]?["unit"]?.string == "foo.service" && processes[2]["owner"] == .null)
        // A memory cgroup's name is anyone's to choose, like a cgroup's.
        var hostile = same
        hostile.memoryCgroup = "/x\u{1B}]0;owned\u{07}"
        #expect(hostile.phrase == "sh (pid 5) in /a.service, memory cgroup /x?]0;owned?")
    }

    /// A large session's maps after 1,000 pipes at 1 MiB: each allocation's
    /// first event (inside the allocator) was taken back in the kernel, which
    /// leaves its site, owner and stack rows at zero. They are no call site;
    /// the result says what was traced and how large.
    @Test func aLargeSessionShowsTheCallerAndNotTheAllocatorsOwnEvent() throws {
        let inner: UInt64 = 0xffffffff815c9a00, caller: UInt64 = 0xffffffff81705e8e
        var counts = AttributionCounts()
        counts.sites = [.init(callSite: inner, allocations: 0, frees: 0, netCount: 0, netBytes: 0),
                        .init(callSite: caller, allocations: 1_000, frees: 0, netCount: 1_000, netBytes: 16_384_000)]
        counts.owners = [.init(callSite: inner, tgid: 4121, cgroupID: 1, memoryCgroupID: 7000, allocations: 0, netCount: 0, netBytes: 0),
                         .init(callSite: caller, tgid: 4121, cgroupID: 1, memoryCgroupID: 7000, allocations: 1_000, netCount: 1_000,
                               netBytes: 16_384_000)]
        counts.stacks = [.init(callSite: inner, frames: [inner, caller], allocations: 0, net: 0),
                         .init(callSite: caller, frames: [inner, caller, 0xffffffff81705f60], allocations: 1_000, net: 1_000)]
        let names = KernelSymbolsTests.resolve(counts.addresses)
        var a = counts.attribution(cache: Attribution.outsideCaches, symbol: { names[$0] }, cgroupPaths: [1: "/"], windowSeconds: 3,
                                   stopReason: .duration, endedMilliseconds: 1)
        #expect(a.callSites.map(\.function) == ["alloc_inode+0x1e"], "\(a.callSites)")
        #expect(a.callSites[0].processes?.count == 1 && a.callSites[0].stacks.count == 1 && a.events == 1_000)
        a.largerThanBytes = 8192
        let json = try JSONValue.parse(AttributionRenderer.json(a))
        #expect(json["cache"]?.string == "(outside caches, unreclaimable)" && json["larger_than_bytes"]?.number == 8192)
        #expect(json["allocations"]?.number == 1_000 && json["net_bytes"]?.number == 16_384_000)
        let table = AttributionRenderer.text(a)
        #expect(table.hasPrefix("(outside caches, unreclaimable): 3.0 s traced (bpf)"), "\(table)")
        #expect(table.contains("(every kmalloc of more than 8.0 KiB, the largest kmalloc cache: SLUB takes them from the page allocator)"))
        a.callSites = []
        #expect(AttributionRenderer.text(a).hasSuffix("no kmalloc of more than 8.0 KiB was seen in the window\n"), "\(AttributionRenderer.text(a))")
        // A cache's session says neither.
        #expect(try JSONValue.parse(AttributionRenderer.json(Self.attribution()))["larger_than_bytes"] == .null)
        #expect(!AttributionRenderer.text(Self.attribution()).contains("every kmalloc of more than"))
    }

    /// Where the memory cgroup ids are inodes of: v1's memory hierarchy when
    /// it is mounted, else cgroup2 — unless /proc/cgroups says the controller
    /// is on a v1 hierarchy this mount table does not show.
    @Test(arguments: [
        // This machine (mountinfo and /proc/cgroups lines as read here).
        ("35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
         "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t3\t1\t1\nmemory\t4\t24\t1\n", "/sys/fs/cgroup/memory"),
        // Co-mounted with another controller; a mount of a subtree is passed over.
        ("36 31 0:33 /docker/ab /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n37 31 0:33 / /mnt/cpu\\040mem rw - cgroup cgroup rw,cpu,memory\n",
         "memory\t4\t24\t1\n", "/mnt/cpu mem"),
        // Memory on cgroup2 (hierarchy 0), and a v1 controller whose name only starts with "memory".
        ("32 31 0:29 / /sys/fs/cgroup/x rw - cgroup cgroup rw,memory_pressure\n29 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n",
         "memory\t0\t80\t1\n", "/sys/fs/cgroup"),
        // No memory controller in the kernel: the program records the cgroup2 id.
        ("29 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t0\t1\t1\n", "/sys/fs/cgroup"),
        // On a v1 hierarchy this mount namespace does not show: no path is named rather than another tree's.
        ("41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n", "memory\t4\t24\t1\n", nil),
        ("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n", "memory\t0\t1\t1\n", nil),
    ] as [(String, String, String?)])
    func memoryCgroupMountFromMountinfo(mountinfo: String, procCgroups: String, expected: String?) {
        #expect(AttributionCounts.memoryCgroupMountPoint(mountinfo: Substring(mountinfo), procCgroups: Substring(procCgroups)) == expected)
    }

    @Test(arguments: [
        ("41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n", "/sys/fs/cgroup/unified"),
        ("32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n29 1 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n", "/sys/fs/cgroup"),
        ("50 29 0:26 /kubepods /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n60 29 0:26 / /mnt/cg\\040v2 rw - cgroup2 cgroup2 rw\n", "/mnt/cg v2"),
        ("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n", nil),
    ] as [(String, String?)])
    func cgroup2MountFromMountinfo(mountinfo: String, expected: String?) {
        #expect(AttributionCounts.cgroup2MountPoint(mountinfo: Substring(mountinfo)) == expected)
    }
}
