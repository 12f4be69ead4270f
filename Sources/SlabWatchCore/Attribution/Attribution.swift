/// Who allocates a cache's memory: call sites ranked by the bytes they
/// allocated during a window and had not freed by its end (net), each with
/// its most common stacks. Built from a BPF session's maps, from a tracefs
/// session's events, from a kernel hist trigger, or from two reads of
/// /proc/allocinfo. Fields added after the first release are optional, so
/// attributions kept in an older state file still decode.
public struct Attribution: Sendable, Equatable, Codable {
    public enum Source: String, Sendable, Codable {
        /// A BPF program on the kmem tracepoints: every allocation counted and
        /// followed to its free in the kernel (exact net), with processes and cgroups.
        case bpf
        /// Streamed kmem events: allocations matched with their frees.
        case trace
        /// A hist trigger's totals: allocations only (frees cannot be matched).
        case hist
        /// Growth of /proc/allocinfo's per-call-site counters between two reads.
        case allocinfo
    }

    public enum StopReason: String, Sendable, Codable {
        case duration
        case maxEvents = "max-events"
        case interrupted
    }

    public struct Stack: Sendable, Equatable, Codable {
        /// Symbolised frames, innermost first, from the call site outwards.
        public var frames: [String]
        public var allocations: UInt64
        /// Allocations with this stack still live at the end.
        public var net: UInt64
    }

    /// Who allocated a call site's objects: one process in one cgroup (and
    /// one memory cgroup).
    public struct AllocatingProcess: Sendable, Equatable, Codable {
        /// The process (thread group) id.
        public var pid: Int32
        /// Its command when it first allocated; nil when the session could not keep it.
        public var comm: String?
        /// The cgroup's path under the cgroup2 mount (`/system.slice/foo.service`);
        /// nil when it was gone before the session ended.
        public var cgroup: String?
        public var cgroupID: UInt64
        public var allocations: UInt64
        public var netCount: Int64
        public var netBytes: Int64
        /// The memory cgroup its accounted allocations are charged to, as a
        /// path under the hierarchy the memory controller is mounted on (cgroup
        /// v1's memory hierarchy, else the cgroup2 mount); nil when it was gone
        /// before the session ended, or not known. On a host with the memory
        /// controller on v1 beside a cgroup2 mount, `cgroup` is `/` for every
        /// process and this is the one that names the service.
        public var memoryCgroup: String? = nil
        /// Its directory's inode in that hierarchy; nil when the session did
        /// not read it (tracefs, or kept by an older slabwatch).
        public var memoryCgroupID: UInt64? = nil

        public init(pid: Int32, comm: String?, cgroup: String?, cgroupID: UInt64, allocations: UInt64, netCount: Int64, netBytes: Int64,
                    memoryCgroup: String? = nil, memoryCgroupID: UInt64? = nil) {
            self.pid = pid
            self.comm = comm
            self.cgroup = cgroup
            self.cgroupID = cgroupID
            self.allocations = allocations
            self.netCount = netCount
            self.netBytes = netBytes
            self.memoryCgroup = memoryCgroup
            self.memoryCgroupID = memoryCgroupID
        }

        /// `python3 (pid 4121) in /system.slice/foo.service`, and `, memory
        /// cgroup /x` when that is another; the command and the cgroups are
        /// anyone's to name: their controls are shown as `?`.
        /// A pod's or a container's cgroup is said as the pod and container
        /// (`pod 1d3a… (burstable), containerd container 3f2a1b9c8d7e`), a
        /// path of a hundred characters otherwise; a unit's path names it.
        public var phrase: String {
            let process = "\(comm ?? "pid \(pid)")\(comm == nil ? "" : " (pid \(pid))")"
            let cgroup = self.cgroup.map(Self.named) ?? "cgroup \(cgroupID) (gone)"
            guard let memoryCgroupID, memoryCgroup != self.cgroup || self.cgroup == nil else {
                return TerminalText.printable("\(process) in \(cgroup)")
            }
            return TerminalText.printable("\(process) in \(cgroup), memory cgroup \(memoryCgroup.map(Self.named) ?? "\(memoryCgroupID) (gone)")")
        }

        /// Whom its memory is charged to: the owner of the memory cgroup, else
        /// of the cgroup (see `CgroupOwner`); nil for a path of no one in particular.
        public var owner: CgroupOwner? {
            (memoryCgroup ?? cgroup).flatMap(CgroupOwner.of)
        }

        private static func named(_ path: String) -> String {
            guard let owner = CgroupOwner.of(path), owner.kind != .unit else { return path }
            return owner.phrase
        }
    }

    /// The BPF session's bounded maps: how often each had no room (never silent).
    public struct Limits: Sendable, Equatable, Codable {
        /// Allocations counted but not followed to their free: the live-object map was full.
        public var notFollowed: UInt64 = 0
        /// Sampled allocations whose stack the stack map could not keep.
        public var stacksLost: UInt64 = 0
        /// Allocations at call sites the site map had no room for (not counted at all).
        public var sitesFull: UInt64 = 0
        /// Allocations whose (site, process, cgroup) the owner map had no room for.
        public var ownersFull: UInt64 = 0
        /// Frees the tracepoints did not show (bulk and RCU-batched frees fire
        /// none), found when their address was allocated again. Objects freed so
        /// and not reused in the window still count as net: net is an upper bound
        /// when this is not 0. Optional: attributions saved before it decode.
        public var freesUnseen: UInt64? = nil

        public init(notFollowed: UInt64 = 0, stacksLost: UInt64 = 0, sitesFull: UInt64 = 0, ownersFull: UInt64 = 0,
                    freesUnseen: UInt64? = nil) {
            self.notFollowed = notFollowed
            self.stacksLost = stacksLost
            self.sitesFull = sitesFull
            self.ownersFull = ownersFull
            self.freesUnseen = freesUnseen
        }

        /// Whether a map had no room for something (what the "maps full" line says).
        var anyFull: Bool { notFollowed + stacksLost + sitesFull + ownersFull > 0 }
    }

    public struct CallSite: Sendable, Equatable, Codable {
        /// `foo_attach_inode+0x2a` (the allocation's return address).
        public var function: String
        /// The module, from `[mod]`; nil for code built into the kernel.
        public var module: String?
        public var allocations: UInt64
        public var frees: UInt64
        /// allocations − frees (of objects allocated within the window).
        public var netCount: Int64
        public var netBytes: Int64
        /// This site's part of all sites' positive net bytes, 0…1.
        public var share: Double
        /// At most three, most net first.
        public var stacks: [Stack]
        /// The processes and cgroups behind it, most net bytes first (at most
        /// five; BPF sessions only, nil from the other sources).
        public var processes: [AllocatingProcess]? = nil

        /// `foo_attach_inode+0x2a [foo]`, as the kernel prints it.
        public var symbol: String { module.map { "\(function) [\($0)]" } ?? function }
    }

    public var cache: String
    public var source: Source
    public var callSites: [CallSite]
    /// Events read (allocations, frees and stacks of the traced cache).
    public var events: UInt64
    /// Events the kernel lost (ring buffer overruns, `[LOST n EVENTS]`).
    public var dropped: UInt64
    public var windowSeconds: Double
    public var stopReason: StopReason
    /// Trace lines that could not be read (truncated or unknown), skipped.
    public var malformedLines: UInt64
    /// When the window ended (Unix milliseconds).
    public var endedMilliseconds: Int64
    /// Why a better source did not run, in one line ("bpf unavailable: … ;
    /// traced with tracefs"); nil when the best one this kernel allows ran.
    public var fallback: String? = nil
    /// The BPF session's map limits; nil from the other sources.
    public var limits: Limits? = nil
    /// A large-allocation session's bound: it counted the kmallocs of more
    /// than this many bytes (the largest kmalloc cache's size), which SLUB
    /// takes from the page allocator; nil for a cache's session.
    public var largerThanBytes: UInt64? = nil

    /// The name a large-allocation session goes by, on the command line and
    /// in its result: the derived series of unreclaimable slab outside every
    /// cache, whose growth those allocations are. It holds a space and
    /// parentheses, which no name /proc/slabinfo lists can (its parser splits
    /// on whitespace): it can never be a cache's.
    public static let outsideCaches = "(outside caches, unreclaimable)"

    public init(cache: String, source: Source, callSites: [CallSite], events: UInt64, dropped: UInt64, windowSeconds: Double,
                stopReason: StopReason, malformedLines: UInt64 = 0, endedMilliseconds: Int64 = 0) {
        self.cache = cache
        self.source = source
        self.callSites = callSites
        self.events = events
        self.dropped = dropped
        self.windowSeconds = windowSeconds
        self.stopReason = stopReason
        self.malformedLines = malformedLines
        self.endedMilliseconds = endedMilliseconds
    }

    /// "Allocated mostly by foo_attach_inode+0x2a [foo] (99 % of net bytes)."
    /// allocinfo counts every allocation site, not one cache's: its sentence
    /// says what grew meanwhile, not who allocated the cache. Read by people
    /// (the finding's message, the journal): no control character in it.
    public var sentence: String? {
        guard let top = callSites.first, top.netBytes > 0 else { return nil }
        return TerminalText.printable(sentence(top))
    }

    private func sentence(_ top: CallSite) -> String {
        let percent = Int((top.share * 100).rounded())
        switch source {
        case .bpf:
            let owner = top.processes?.first { $0.netBytes > 0 }
            return "Allocated mostly by \(top.symbol) (\(percent) % of net bytes)" + (owner.map { ", from \($0.phrase)." } ?? ".")
        case .trace: return "Allocated mostly by \(top.symbol) (\(percent) % of net bytes)."
        case .hist: return "Allocated mostly by \(top.symbol) (\(percent) % of the bytes allocated while traced)."
        case .allocinfo: return "Meanwhile /proc/allocinfo grew most at \(top.symbol) (\(percent) % of the growth)."
        }
    }

    /// Splits `foo+0x2a/0x60` (and a following `[mod]`) into `foo+0x2a` and the module.
    public static func symbol(_ text: Substring, module: Substring?) -> (function: String, module: String?) {
        var function = text
        if let slash = function.lastIndex(of: "/"), function[function.index(after: slash)...].hasPrefix("0x") {
            function = function[..<slash]
        }
        let name = module.map { $0.dropFirst().dropLast() }.flatMap { $0.isEmpty ? nil : String($0) }
        return (String(function), name)
    }

    /// Ranks sites by net bytes (then allocations, then name) and fills in shares.
    static func ranked(_ sites: [CallSite]) -> [CallSite] {
        let total = sites.reduce(0.0) { $0 + Double(max(0, $1.netBytes)) }
        return sites.map { site in
            var site = site
            site.share = total > 0 ? Double(max(0, site.netBytes)) / total : 0
            return site
        }.sorted {
            if $0.netBytes != $1.netBytes { return $0.netBytes > $1.netBytes }
            if $0.allocations != $1.allocations { return $0.allocations > $1.allocations }
            return $0.symbol < $1.symbol
        }
    }
}
