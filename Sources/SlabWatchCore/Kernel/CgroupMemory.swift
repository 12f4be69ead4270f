/// Kernel memory per memory cgroup: the leaves of the memory controller's
/// hierarchy (services, pods, containers), the largest `limit` of them, the
/// rest summed. The kernel charges most slab objects to the memory cgroup of
/// the task that allocated them (`SLAB_ACCOUNT` caches, `kmalloc-cg-*`,
/// `__GFP_ACCOUNT`), so this says whose a rise of kernel memory is.
///
/// cgroup v1 tells only a total per cgroup, `memory.kmem.usage_in_bytes`
/// (slab, stacks, page tables, …); v2's `memory.stat` also splits slab into
/// reclaimable and unreclaimable.
public struct CgroupMemory: Sendable, Equatable {
    public enum Version: String, Sendable { case v1, v2 }

    public struct Entry: Sendable, Equatable {
        /// The cgroup's path in its hierarchy (`/system.slice/foo.service`): cAdvisor's `id`.
        public var path: String
        /// v1 `memory.kmem.usage_in_bytes`; v2 `memory.stat` `kernel` (else its slab).
        public var kernelBytes: UInt64
        /// v2 `slab_reclaimable` / `slab_unreclaimable`; nil on v1.
        public var slabReclaimableBytes: UInt64?
        public var slabUnreclaimableBytes: UInt64?

        public init(path: String, kernelBytes: UInt64, slabReclaimableBytes: UInt64? = nil, slabUnreclaimableBytes: UInt64? = nil) {
            self.path = path
            self.kernelBytes = kernelBytes
            self.slabReclaimableBytes = slabReclaimableBytes
            self.slabUnreclaimableBytes = slabUnreclaimableBytes
        }

        /// This interior cgroup's own part: its reading, which counts its
        /// whole subtree, less its children's; each figure at least zero
        /// (parent and children are read moments apart).
        public func less(_ children: [Entry]) -> Entry {
            func own(_ value: UInt64?, _ part: (Entry) -> UInt64?) -> UInt64? {
                guard let value else { return nil }
                let sum = children.reduce(UInt64(0)) { $0.addingSaturating(part($1) ?? 0) }
                return value > sum ? value - sum : 0
            }
            return Entry(path: path, kernelBytes: own(kernelBytes, \.kernelBytes) ?? 0,
                         slabReclaimableBytes: own(slabReclaimableBytes, \.slabReclaimableBytes),
                         slabUnreclaimableBytes: own(slabUnreclaimableBytes, \.slabUnreclaimableBytes))
        }
    }

    public var version: Version
    /// The largest leaves (and interior cgroups' own parts), largest first (then by path).
    public var entries: [Entry]
    /// Leaves read beyond the limit, and their kernel memory summed.
    public var others: Int
    public var otherKernelBytes: UInt64
    /// v2: their slab, reclaimable and unreclaimable, summed; nil on v1 or
    /// where one of them did not tell it.
    public var otherSlabReclaimableBytes: UInt64?
    public var otherSlabUnreclaimableBytes: UInt64?
    /// Leaves whose file could not be read (gone mid-walk, unreadable).
    public var unreadable: Int
    /// Whether the walk stopped at its bound on directories.
    public var truncated: Bool
    /// When the walk was taken (the sample's time): later samples carry the
    /// same reading until the next walk. Nil where unknown.
    public var readAtMilliseconds: Int64?

    public init(version: Version, entries: [Entry], others: Int = 0, otherKernelBytes: UInt64 = 0, unreadable: Int = 0,
                truncated: Bool = false) {
        self.version = version
        self.entries = entries
        self.others = others
        self.otherKernelBytes = otherKernelBytes
        self.unreadable = unreadable
        self.truncated = truncated
    }

    /// `read` entries cut to the largest `limit`, the rest summed as others.
    public static func largest(_ read: [Entry], limit: Int, version: Version, unreadable: Int = 0, truncated: Bool = false) -> CgroupMemory {
        let sorted = read.sorted { $0.kernelBytes != $1.kernelBytes ? $0.kernelBytes > $1.kernelBytes : $0.path < $1.path }
        let kept = Array(sorted.prefix(max(0, limit)))
        let rest = sorted.dropFirst(kept.count)
        var memory = CgroupMemory(version: version, entries: kept, others: rest.count,
                                  otherKernelBytes: rest.reduce(0) { $0.addingSaturating($1.kernelBytes) }, unreadable: unreadable, truncated: truncated)
        if version == .v2 {
            func summed(_ part: (Entry) -> UInt64?) -> UInt64? {
                rest.reduce(UInt64?(0)) { total, entry in total.flatMap { total in part(entry).map { total.addingSaturating($0) } } }
            }
            memory.otherSlabReclaimableBytes = summed(\.slabReclaimableBytes)
            memory.otherSlabUnreclaimableBytes = summed(\.slabUnreclaimableBytes)
        }
        return memory
    }

    /// One leaf of v2 from its `memory.stat` (`key value` lines, bytes):
    /// `kernel` where the kernel has it (5.18 and later), else the slab's
    /// two parts; nil when it has neither.
    public static func entry(path: String, memoryStat: ArraySlice<UInt8>) -> Entry? {
        var kernel: UInt64?, reclaimable: UInt64?, unreclaimable: UInt64?
        for line in memoryStat.split(separator: UInt8(ascii: "\n")) {
            let fields = line.split(separator: UInt8(ascii: " "))
            guard fields.count == 2, let value = UInt64(String(decoding: fields[1], as: UTF8.self)) else { continue }
            switch String(decoding: fields[0], as: UTF8.self) {
            case "kernel": kernel = value
            case "slab_reclaimable": reclaimable = value
            case "slab_unreclaimable": unreclaimable = value
            default: continue
            }
        }
        let slab = reclaimable.flatMap { r in unreclaimable.map { r.addingSaturating($0) } }
        guard let bytes = kernel ?? slab else { return nil }
        return Entry(path: path, kernelBytes: bytes, slabReclaimableBytes: reclaimable, slabUnreclaimableBytes: unreclaimable)
    }

    /// One leaf of v1 from its `memory.kmem.usage_in_bytes` (one number).
    public static func entry(path: String, kmemUsage: ArraySlice<UInt8>) -> Entry? {
        let text = String(decoding: kmemUsage, as: UTF8.self)
        return UInt64(text.drop { $0 == " " }.prefix { $0 != "\n" }).map { Entry(path: path, kernelBytes: $0) }
    }
}
