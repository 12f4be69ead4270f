/// Whose memory a finding is: the memory cgroups charged for its rise, the
/// largest share first (`ChargeRanking` ranks them).
///
/// The kernel charges most slab objects (`SLAB_ACCOUNT` caches,
/// `kmalloc-cg-*`, `__GFP_ACCOUNT` allocations) to the memory cgroup of the
/// task that allocated them. Where a BPF attribution ran for the finding its
/// per-memory-cgroup net bytes are the answer; otherwise the cgroups whose
/// memory rose with the finding's footprint over its rise are: on cgroup v2,
/// for a cache of known reclaimability, their slab of the cache's own kind
/// (`basis`); else their kernel memory, which on cgroup v1 is all kernel
/// memory as one number, not this cache's part of it.
public struct ChargedCgroups: Sendable, Equatable, Codable {
    public enum Source: String, Sendable, Codable {
        /// A BPF attribution's net bytes per memory cgroup.
        case bpf
        /// cgroup v1 `memory.kmem.usage_in_bytes`: all kernel memory, not split by cache.
        case memcgKmem = "memcg-kmem"
        /// cgroup v2 `memory.stat` `kernel` (else its slab): all kernel memory, not split by cache.
        case memcgKernel = "memcg-kernel"
        /// cgroup v2 `memory.stat` `slab_reclaimable`: the slab of a reclaimable
        /// cache's kind, not split by cache.
        case memcgSlabReclaimable = "memcg-slab-reclaimable"
        /// cgroup v2 `memory.stat` `slab_unreclaimable`: the slab of an
        /// unreclaimable cache's kind, not split by cache.
        case memcgSlabUnreclaimable = "memcg-slab-unreclaimable"
        /// The cache's allocations are not charged to memory cgroups at all.
        case notAccounted = "not-accounted"
    }

    /// Which of a cgroup's figures the memory cgroups were ranked by.
    public enum Basis: String, Sendable {
        /// v2 `slab_reclaimable`, for a reclaimable cache.
        case slabReclaimable = "slab_reclaimable"
        /// v2 `slab_unreclaimable`, for an unreclaimable cache.
        case slabUnreclaimable = "slab_unreclaimable"
        /// All kernel memory: v1, the per-CPU allocator (no slab), or a cache of unknown reclaimability.
        case kernel
    }

    /// The figure ranked by; nil where no cgroup figure was (BPF, not accounted).
    public var basis: Basis? {
        switch source {
        case .memcgKmem, .memcgKernel: .kernel
        case .memcgSlabReclaimable: .slabReclaimable
        case .memcgSlabUnreclaimable: .slabUnreclaimable
        case .bpf, .notAccounted: nil
        }
    }

    /// One cgroup named for the rise.
    public struct Entry: Sendable, Equatable, Codable {
        /// Its path in the memory hierarchy (`/system.slice/foo.service`), as cAdvisor's `id`.
        public var cgroup: String
        /// How much the figure ranked by (`basis`) rose over the window (BPF: its net bytes).
        public var riseBytes: Double
        /// Its share of the rise among the cgroups that rose with the finding (0 to 1).
        public var share: Double
        /// How closely that figure followed the footprint (R², 0 to 1); nil for BPF.
        public var rSquared: Double?

        public init(cgroup: String, riseBytes: Double, share: Double, rSquared: Double?) {
            self.cgroup = cgroup
            self.riseBytes = riseBytes
            self.share = share
            self.rSquared = rSquared
        }

        /// Whom the cgroup belongs to (`CgroupOwner`); nil for a path of no one in particular.
        public var owner: CgroupOwner? { CgroupOwner.of(cgroup) }
    }

    public var source: Source
    /// The window ranked over: the finding's rise, or the BPF session's length.
    public var windowSeconds: Double
    /// At most `ChargeRanking.named` cgroups, each with at least `ChargeRanking.minShare`.
    public var entries: [Entry]
    /// The share of everyone else: smaller cgroups, and those beyond the kept ones.
    public var otherShare: Double

    public init(source: Source, windowSeconds: Double, entries: [Entry], otherShare: Double) {
        self.source = source
        self.windowSeconds = windowSeconds
        self.entries = entries
        self.otherShare = otherShare
    }

    /// The top cgroup.
    public var top: Entry? { entries.first }

    /// The sentence a person reads, after the finding's own.
    public func sentence(slab: String) -> String {
        let percent = { (share: Double) in "\(Human.decimal(share * 100, 0)) %" }
        let named = entries.map { "\(Self.name($0.cgroup)) \(percent($0.share))" }.joined(separator: ", ")
        let rest = otherShare >= 0.005 && !entries.isEmpty ? ", others \(percent(otherShare))" : ""
        switch source {
        case .notAccounted:
            return TerminalText.printable("\(slab) is not charged to memory cgroups (its allocations are not accounted): attribution names who allocates it.")
        case .bpf:
            guard !entries.isEmpty else { return "" }
            return TerminalText.printable("By BPF attribution (\(Human.duration(windowSeconds))), its net bytes were charged to \(named)\(rest).")
        case .memcgKmem, .memcgKernel:
            guard let top else {
                return "No memory cgroup's kernel memory rose with it over the same \(Human.duration(windowSeconds))."
            }
            let fit = top.rSquared.map { ", R² \(Human.decimal($0, 2))" } ?? ""
            let what = source == .memcgKmem
                ? "cgroup v1 counts a cgroup's kernel memory as one number, so this is not split by cache"
                : "this is all of a cgroup's kernel memory, not split by cache"
            return TerminalText.printable("Kernel memory charged to \(Self.name(top.cgroup)) rose \(Human.bytes(top.riseBytes)) with it over "
                + "\(Human.duration(windowSeconds))\(fit); \(what): of what the cgroups rising with it gained, \(named)\(rest).")
        case .memcgSlabReclaimable, .memcgSlabUnreclaimable:
            let kind = source == .memcgSlabReclaimable ? "reclaimable" : "unreclaimable"
            guard let top else {
                return "No memory cgroup's \(kind) slab rose with it over the same \(Human.duration(windowSeconds))."
            }
            let fit = top.rSquared.map { ", R² \(Human.decimal($0, 2))" } ?? ""
            return TerminalText.printable("\(kind.prefix(1).uppercased() + kind.dropFirst()) slab charged to \(Self.name(top.cgroup)) rose "
                + "\(Human.bytes(top.riseBytes)) with it over \(Human.duration(windowSeconds))\(fit); cgroup v2 tells a cgroup's \(kind) slab, "
                + "not split by cache: of the rise in \(kind) slab of the cgroups rising with it, \(named)\(rest).")
        }
    }

    /// A pod's or a container's cgroup as the pod and container, a unit by its path.
    static func name(_ path: String) -> String {
        guard let owner = CgroupOwner.of(path), owner.kind != .unit else { return path }
        return "\(path) (\(owner.phrase))"
    }
}
