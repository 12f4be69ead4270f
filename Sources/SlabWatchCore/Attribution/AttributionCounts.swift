/// What a BPF attribution session's maps held when it ended, as read from the
/// kernel (raw addresses, ids), and how it becomes an `Attribution`: call
/// sites symbolised, processes named, cgroup ids turned into paths.
public struct AttributionCounts: Sendable, Equatable {
    /// One row of the `sites` map: a call site's counters.
    public struct Site: Sendable, Equatable {
        public var callSite: UInt64
        public var allocations: UInt64
        public var frees: UInt64
        public var netCount: Int64
        public var netBytes: Int64

        public init(callSite: UInt64, allocations: UInt64, frees: UInt64, netCount: Int64, netBytes: Int64) {
            self.callSite = callSite
            self.allocations = allocations
            self.frees = frees
            self.netCount = netCount
            self.netBytes = netBytes
        }
    }

    /// One row of the `owners` map: a call site's part allocated by one
    /// process in one cgroup and one memory cgroup.
    public struct Owner: Sendable, Equatable {
        public var callSite: UInt64
        public var tgid: UInt32
        /// The cgroup2 directory's inode (`bpf_get_current_cgroup_id`).
        public var cgroupID: UInt64
        /// The memory cgroup's directory inode, in the hierarchy the memory
        /// controller is mounted on; 0 when the program could not read it.
        public var memoryCgroupID: UInt64
        public var allocations: UInt64
        public var netCount: Int64
        public var netBytes: Int64

        public init(callSite: UInt64, tgid: UInt32, cgroupID: UInt64, memoryCgroupID: UInt64 = 0, allocations: UInt64, netCount: Int64,
                    netBytes: Int64) {
            self.callSite = callSite
            self.tgid = tgid
            self.cgroupID = cgroupID
            self.memoryCgroupID = memoryCgroupID
            self.allocations = allocations
            self.netCount = netCount
            self.netBytes = netBytes
        }
    }

    /// One row of the `stack_counts` map, with the stack's frames.
    public struct Stack: Sendable, Equatable {
        public var callSite: UInt64
        /// Return addresses, innermost first (the BPF program and the allocator above the call site).
        public var frames: [UInt64]
        public var allocations: UInt64
        public var net: Int64

        public init(callSite: UInt64, frames: [UInt64], allocations: UInt64, net: Int64) {
            self.callSite = callSite
            self.frames = frames
            self.allocations = allocations
            self.net = net
        }
    }

    public var sites: [Site] = []
    public var owners: [Owner] = []
    public var stacks: [Stack] = []
    /// Command per process, as the kernel saw it at its first allocation.
    public var comms: [UInt32: String] = [:]
    /// Frees of objects allocated in the session.
    public var frees: UInt64 = 0
    public var limits = Attribution.Limits()

    public init() {}

    /// Every address that needs a symbol: call sites and stack frames.
    public var addresses: Set<UInt64> {
        Set(sites.map(\.callSite)).union(stacks.flatMap(\.frames))
    }

    /// Every cgroup id that needs a path (under the cgroup2 mount).
    public var cgroupIDs: Set<UInt64> { Set(owners.map(\.cgroupID)) }

    /// Every memory cgroup id that needs a path (under the memory controller's hierarchy).
    public var memoryCgroupIDs: Set<UInt64> { Set(owners.map(\.memoryCgroupID).filter { $0 != 0 }) }

    /// Processes kept per call site: the few that hold most of its memory.
    static let processesPerSite = 5

    /// The attribution: `symbol` names an address (`shmem_alloc_inode+0x1d`
    /// and its module; nil: shown as hex), `cgroupPaths` names cgroup ids and
    /// `memoryCgroupPaths` memory cgroup ids.
    public func attribution(cache: String, symbol: (UInt64) -> (function: String, module: String?)?, cgroupPaths: [UInt64: String],
                            memoryCgroupPaths: [UInt64: String] = [:],
                            windowSeconds: Double, stopReason: Attribution.StopReason, endedMilliseconds: Int64) -> Attribution {
        func name(_ address: UInt64) -> (function: String, module: String?) {
            symbol(address) ?? ("0x" + String(address, radix: 16), nil)
        }
        func frame(_ address: UInt64) -> String {
            let named = name(address)
            return named.module.map { "\(named.function) [\($0)]" } ?? named.function
        }
        // Rows whose every allocation was taken back (a large allocation's first event, inside the allocator) are none.
        let ownersBySite = Dictionary(grouping: owners.filter { $0.allocations > 0 }, by: \.callSite)
        let stacksBySite = Dictionary(grouping: stacks.filter { $0.allocations > 0 }, by: \.callSite)
        let callSites = sites.filter { $0.allocations + $0.frees > 0 }.map { site -> Attribution.CallSite in
            let named = name(site.callSite)
            let stacks = (stacksBySite[site.callSite] ?? []).compactMap { stack -> Attribution.Stack? in
                guard let trimmed = TraceAccumulator.fromCallSite(stack.frames.map(frame), named.function) else { return nil }
                return Attribution.Stack(frames: trimmed, allocations: stack.allocations, net: UInt64(max(0, stack.net)))
            }.sorted { ($0.net, $0.allocations, $1.frames.joined()) > ($1.net, $1.allocations, $0.frames.joined()) }
            let owners = (ownersBySite[site.callSite] ?? []).map { owner in
                Attribution.AllocatingProcess(pid: Int32(bitPattern: owner.tgid), comm: comms[owner.tgid], cgroup: cgroupPaths[owner.cgroupID],
                                              cgroupID: owner.cgroupID, allocations: owner.allocations, netCount: owner.netCount,
                                              netBytes: owner.netBytes, memoryCgroup: memoryCgroupPaths[owner.memoryCgroupID],
                                              memoryCgroupID: owner.memoryCgroupID == 0 ? nil : owner.memoryCgroupID)
            }.sorted { ($0.netBytes, $0.allocations, $1.pid) > ($1.netBytes, $1.allocations, $0.pid) }
            return Attribution.CallSite(function: named.function, module: named.module, allocations: site.allocations, frees: site.frees,
                                        netCount: site.netCount, netBytes: site.netBytes, share: 0, stacks: Array(stacks.prefix(3)),
                                        processes: Array(owners.prefix(Self.processesPerSite)))
        }
        let allocations = sites.reduce(UInt64(0)) { $0 + $1.allocations }
        var result = Attribution(cache: cache, source: .bpf, callSites: Attribution.ranked(callSites), events: allocations + frees, dropped: 0,
                                 windowSeconds: windowSeconds, stopReason: stopReason, endedMilliseconds: endedMilliseconds)
        result.limits = limits
        return result
    }

    /// Where the cgroup2 hierarchy is mounted, from /proc/self/mountinfo
    /// (`41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw`):
    /// the first mount of its root; nil on a machine without one.
    public static func cgroup2MountPoint(mountinfo: Substring) -> String? {
        for line in mountinfo.split(separator: "\n") {
            guard let separator = line.firstRange(of: " - ") else { continue }
            let before = line[..<separator.lowerBound].split(separator: " "), after = line[separator.upperBound...].split(separator: " ")
            guard before.count >= 5, after.first == "cgroup2", before[3] == "/" else { continue }
            return unescapedMountPath(before[4])
        }
        return nil
    }

    /// Where the memory controller's hierarchy is mounted, for the memory
    /// cgroup ids a BPF session reads: a cgroup v1 mount of its root whose
    /// options name `memory` (`35 31 0:32 / /sys/fs/cgroup/memory rw,relatime
    /// - cgroup cgroup rw,memory`); else the cgroup2 mount, where the ids are
    /// when the controller is on v2 and when the kernel has none (the program
    /// then records the cgroup2 id). Not when `/proc/cgroups` says the
    /// controller is on a v1 hierarchy this mount table does not show (a
    /// container's): its ids are that hierarchy's inodes, and the same numbers
    /// in the cgroup2 tree would name other cgroups. nil: no path can be named.
    public static func memoryCgroupMountPoint(mountinfo: Substring, procCgroups: Substring?) -> String? {
        for line in mountinfo.split(separator: "\n") {
            guard let separator = line.firstRange(of: " - ") else { continue }
            let before = line[..<separator.lowerBound].split(separator: " "), after = line[separator.upperBound...].split(separator: " ")
            guard before.count >= 5, after.count >= 3, after[0] == "cgroup", before[3] == "/",
                  after[2].split(separator: ",").contains("memory") else { continue }
            return unescapedMountPath(before[4])
        }
        if let procCgroups, memoryOnV1Hierarchy(procCgroups: procCgroups) { return nil }
        return cgroup2MountPoint(mountinfo: mountinfo)
    }

    /// `/proc/cgroups` (`#subsys_name hierarchy num_cgroups enabled`): whether
    /// the memory controller is bound to a v1 hierarchy (a hierarchy id other
    /// than 0, which is cgroup2's).
    static func memoryOnV1Hierarchy(procCgroups: Substring) -> Bool {
        for line in procCgroups.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            guard fields.count >= 2, fields[0] == "memory" else { continue }
            return Int(fields[1]).map { $0 != 0 } ?? false
        }
        return false
    }

    /// mountinfo writes space, tab, newline and backslash as `\040`-style octal.
    static func unescapedMountPath(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var rest = Array(text.utf8)[...]
        while let byte = rest.first {
            if byte == UInt8(ascii: "\\"), rest.count >= 4, let code = UInt8(String(decoding: rest.dropFirst().prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(code)
                rest = rest.dropFirst(4)
            } else {
                bytes.append(byte)
                rest = rest.dropFirst()
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
