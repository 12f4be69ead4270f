/// Counts of kernel objects user space creates beyond files: threads,
/// sockets and memory cgroups (the drivers of `GrowthDriver.tasks`,
/// `.sockets`, `.memoryCgroups` and `.dyingMemoryCgroups`).

/// Threads from `/proc/loadavg` (`0.16 0.69 0.73 8/170 31327`): the total
/// after the `/` is the kernel's `nr_threads`, every thread of every
/// namespace.
public struct TaskCounts: Sendable, Equatable {
    /// Threads that exist (the total after `/`).
    public var threads: UInt64
    /// Threads runnable now (before the `/`).
    public var runnable: UInt64

    public init(threads: UInt64, runnable: UInt64) {
        self.threads = threads
        self.runnable = runnable
    }
}

/// `/proc/net/sockstat`: sockets of **this network namespace only**
/// (`sock_inuse_get(net)`): a host sees none of its pods' sockets, and a pod
/// only its own. The kernel-wide count of sockets is `sock_inode_cache`'s
/// object count (one `socket_alloc` per socket), which `SampleRing` prefers.
public struct SocketCounts: Sendable, Equatable {
    /// `sockets: used`.
    public var used: UInt64
    /// `TCP: inuse`, `orphan`, `tw` (time-wait), `alloc`; nil when the line is absent.
    public var tcpInUse: UInt64?
    public var tcpOrphan: UInt64?
    public var tcpTimeWait: UInt64?
    public var tcpAllocated: UInt64?

    public init(used: UInt64, tcpInUse: UInt64? = nil, tcpOrphan: UInt64? = nil, tcpTimeWait: UInt64? = nil, tcpAllocated: UInt64? = nil) {
        self.used = used
        self.tcpInUse = tcpInUse
        self.tcpOrphan = tcpOrphan
        self.tcpTimeWait = tcpTimeWait
        self.tcpAllocated = tcpAllocated
    }
}

/// Memory cgroups, live and dying. A removed memory cgroup stays "dying"
/// while page cache or kernel objects charged to it remain, holding its
/// per-cgroup structures (tens of kilobytes of slab each).
public struct MemoryCgroupCounts: Sendable, Equatable {
    public enum Version: String, Sendable { case v1, v2 }

    /// Every memory cgroup the kernel holds, live or dying (`/proc/cgroups`'
    /// memory `num_cgroups`).
    public var total: UInt64
    /// Directories of the memory hierarchy; nil when it was not walked whole.
    public var live: UInt64?
    /// Removed memory cgroups still held: v1 `total − live` when the walk saw
    /// the whole hierarchy, v2 the root's `cgroup.stat`
    /// (`nr_dying_subsys_memory`, else `nr_dying_descendants`); nil when
    /// neither can be known honestly (a pod's own cgroup namespace sees only
    /// its subtree, so `total − live` would count every other pod's cgroups
    /// as dying).
    public var dying: UInt64?
    public var version: Version

    public init(total: UInt64, live: UInt64? = nil, dying: UInt64? = nil, version: Version) {
        self.total = total
        self.live = live
        self.dying = dying
        self.version = version
    }
}

/// What a v2 cgroup's `cgroup.stat` says of its dying descendants.
public struct CgroupStat: Sendable, Equatable {
    /// `nr_dying_descendants`: removed cgroups below, any controller.
    public var dyingDescendants: UInt64
    /// `nr_dying_subsys_memory` (6.12 and later): removed memory cgroups
    /// below, the exact count; nil on older kernels.
    public var dyingMemory: UInt64?

    public init(dyingDescendants: UInt64, dyingMemory: UInt64? = nil) {
        self.dyingDescendants = dyingDescendants
        self.dyingMemory = dyingMemory
    }

    /// The dying memory cgroups, exact where the kernel says.
    public var dyingMemoryCgroups: UInt64 { dyingMemory ?? dyingDescendants }
}

/// Parsers of the files above: one pass over the bytes, like the other /proc
/// parsers; nil on input that is not such a file (never a trap).
public enum KernelObjectParser: Sendable {
    /// `/proc/loadavg`: five fields, the fourth `runnable/total`.
    public static func loadavg(_ bytes: ArraySlice<UInt8>) -> TaskCounts? {
        bytes.withUnsafeBufferPointer { buffer -> TaskCounts? in
            var lines = Lines(buffer)
            guard let line = lines.next() else { return nil }
            var fields = Fields(buffer, in: line)
            for _ in 0..<3 { guard fields.next() != nil else { return nil } }
            guard let threads = fields.next(), fields.next()?.number != nil else { return nil }
            guard let slash = threads.range.firstIndex(where: { buffer[$0] == 0x2F }) else { return nil }
            let runnable = number(buffer, threads.range.lowerBound..<slash)
            let total = number(buffer, (slash + 1)..<threads.range.upperBound)
            guard let runnable, let total else { return nil }
            return TaskCounts(threads: total, runnable: runnable)
        }
    }

    /// `/proc/net/sockstat`: `sockets: used N` is required; the TCP line's
    /// pairs are read when present. Lines of other protocols are ignored.
    public static func sockstat(_ bytes: ArraySlice<UInt8>) -> SocketCounts? {
        bytes.withUnsafeBufferPointer { buffer -> SocketCounts? in
            var lines = Lines(buffer)
            var counts: SocketCounts?
            var tcp: (inUse: UInt64?, orphan: UInt64?, timeWait: UInt64?, allocated: UInt64?) = (nil, nil, nil, nil)
            while let line = lines.next() {
                var fields = Fields(buffer, in: line)
                guard let head = fields.next() else { continue }
                if buffer.spells("sockets:", at: head.range) {
                    guard let key = fields.next(), buffer.spells("used", at: key.range), let value = fields.next()?.number else { return nil }
                    counts = SocketCounts(used: value)
                } else if buffer.spells("TCP:", at: head.range) {
                    while let key = fields.next() {
                        guard let value = fields.next()?.number else { return nil }
                        if buffer.spells("inuse", at: key.range) { tcp.inUse = value }
                        else if buffer.spells("orphan", at: key.range) { tcp.orphan = value }
                        else if buffer.spells("tw", at: key.range) { tcp.timeWait = value }
                        else if buffer.spells("alloc", at: key.range) { tcp.allocated = value }
                    }
                }
            }
            counts?.tcpInUse = tcp.inUse
            counts?.tcpOrphan = tcp.orphan
            counts?.tcpTimeWait = tcp.timeWait
            counts?.tcpAllocated = tcp.allocated
            return counts
        }
    }

    /// `/proc/cgroups`' memory row (`memory 4 48 1`: hierarchy, num_cgroups,
    /// enabled): the memory cgroups the kernel holds, live or dying; nil when
    /// there is no enabled memory row.
    public static func memoryCgroups(_ bytes: ArraySlice<UInt8>) -> UInt64? {
        bytes.withUnsafeBufferPointer { buffer -> UInt64? in
            var lines = Lines(buffer)
            while let line = lines.next() {
                var fields = Fields(buffer, in: line)
                guard let name = fields.next(), buffer.spells("memory", at: name.range) else { continue }
                guard fields.next()?.number != nil, let count = fields.next()?.number,
                      let enabled = fields.next()?.number, enabled == 1
                else { return nil }
                return count
            }
            return nil
        }
    }

    /// A v2 `cgroup.stat`: `nr_dying_descendants` is required,
    /// `nr_dying_subsys_memory` read when present.
    public static func cgroupStat(_ bytes: ArraySlice<UInt8>) -> CgroupStat? {
        bytes.withUnsafeBufferPointer { buffer -> CgroupStat? in
            var lines = Lines(buffer)
            var dying: UInt64?, memory: UInt64?
            while let line = lines.next() {
                var fields = Fields(buffer, in: line)
                guard let key = fields.next(), let value = fields.next() else { continue }
                if buffer.spells("nr_dying_descendants", at: key.range) {
                    guard let number = value.number else { return nil }
                    dying = number
                } else if buffer.spells("nr_dying_subsys_memory", at: key.range) {
                    guard let number = value.number else { return nil }
                    memory = number
                }
            }
            return dying.map { CgroupStat(dyingDescendants: $0, dyingMemory: memory) }
        }
    }

    /// The unsigned decimal spelled by `range`; nil when empty, not digits, or too large.
    private static func number(_ buffer: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> UInt64? {
        guard !range.isEmpty else { return nil }
        var fields = Fields(buffer, in: range)
        guard let field = fields.next(), field.range == range else { return nil }
        return field.number
    }
}
