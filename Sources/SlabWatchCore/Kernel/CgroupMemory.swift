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
        var read = read, kept: [Entry] = []
        return largest(sorting: &read, into: &kept, limit: limit, version: version, unreadable: unreadable, truncated: truncated)
    }

    /// The same, sorting `read` in place and keeping the largest in `kept`'s
    /// storage (emptied first): a reader that hands back the entries of a
    /// reading nothing holds any more makes its next reading without a new
    /// array (a sort of up to 64 entries needs no buffer either).
    public static func largest(sorting read: inout [Entry], into kept: inout [Entry], limit: Int, version: Version,
                               unreadable: Int = 0, truncated: Bool = false) -> CgroupMemory {
        read.sort { $0.kernelBytes != $1.kernelBytes ? $0.kernelBytes > $1.kernelBytes : $0.path < $1.path }
        kept.removeAll(keepingCapacity: true)
        kept.append(contentsOf: read.prefix(max(0, limit)))
        let rest = read.dropFirst(kept.count)
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
        // Over the bytes, no array or string a line: a v2 walk reads this
        // file in every leaf, and a line split into strings cost ~35 heap
        // allocations a leaf. A line is two space-separated words, the
        // second a decimal number; any other line is skipped.
        var line = memoryStat.startIndex
        while line < memoryStat.endIndex {
            let end = memoryStat[line...].firstIndex(of: UInt8(ascii: "\n")) ?? memoryStat.endIndex
            if let (key, value) = keyAndValue(memoryStat[line..<end]) {
                if key.elementsEqual("kernel".utf8) { kernel = value }
                else if key.elementsEqual("slab_reclaimable".utf8) { reclaimable = value }
                else if key.elementsEqual("slab_unreclaimable".utf8) { unreclaimable = value }
            }
            line = end + 1
        }
        let slab = reclaimable.flatMap { r in unreclaimable.map { r.addingSaturating($0) } }
        guard let bytes = kernel ?? slab else { return nil }
        return Entry(path: path, kernelBytes: bytes, slabReclaimableBytes: reclaimable, slabUnreclaimableBytes: unreclaimable)
    }

    /// A `key value` line's key and value: exactly two words between runs
    /// of spaces, the value digits that fit 64 bits; nil otherwise.
    private static func keyAndValue(_ line: ArraySlice<UInt8>) -> (ArraySlice<UInt8>, UInt64)? {
        let space = UInt8(ascii: " ")
        guard let keyStart = line.firstIndex(where: { $0 != space }) else { return nil }
        let keyEnd = line[keyStart...].firstIndex(of: space) ?? line.endIndex
        guard let valueStart = line[keyEnd...].firstIndex(where: { $0 != space }) else { return nil }
        let valueEnd = line[valueStart...].firstIndex(of: space) ?? line.endIndex
        guard !line[valueEnd...].contains(where: { $0 != space }) else { return nil }
        // As `UInt64(_: String)` reads it: a sign, then at least one digit ("-" only before a zero).
        let sign = line[valueStart] == UInt8(ascii: "+") || line[valueStart] == UInt8(ascii: "-") ? line[valueStart] : nil
        let digits = line[(sign == nil ? valueStart : valueStart + 1)..<valueEnd]
        guard !digits.isEmpty else { return nil }
        var value: UInt64 = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, carry) = times10.addingReportingOverflow(UInt64(digit - UInt8(ascii: "0")))
            guard !overflow, !carry else { return nil }
            value = sum
        }
        guard sign != UInt8(ascii: "-") || value == 0 else { return nil }
        return (line[keyStart..<keyEnd], value)
    }

    /// One leaf of v1 from its `memory.kmem.usage_in_bytes` (one number).
    public static func entry(path: String, kmemUsage: ArraySlice<UInt8>) -> Entry? {
        let text = String(decoding: kmemUsage, as: UTF8.self)
        return UInt64(text.drop { $0 == " " }.prefix { $0 != "\n" }).map { Entry(path: path, kernelBytes: $0) }
    }
}
