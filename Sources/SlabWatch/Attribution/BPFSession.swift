import CBPF
import Glibc
import SlabWatchCore

/// One BPF attribution session for one cache (or for the kmallocs too large
/// for any): the embedded program attached to the kmem BTF tracepoints,
/// filtered in the kernel to the cache (and, for `kmalloc-N`, its size and
/// gfp class; for large ones, their size), counting every allocation per call
/// site and following each object to its free; its maps read once when the
/// session ends. Every BPF object lives in this process's descriptors, so
/// nothing outlives it, however it ends.
enum BPFSession {
    /// The kernel's own BTF: CO-RE and BTF tracepoints need it.
    static let kernelBTF = "/sys/kernel/btf/vmlinux"

    /// The kmem tracepoints pass the `struct kmem_cache *` the program reads
    /// since Linux 6.1; before it `kmem_cache_alloc` passed sizes and
    /// `kmem_cache_free` a name, and the program would load and count nothing.
    static let oldestRelease = (major: 6, minor: 1)

    /// Whether a kernel release (`uname -r`, "6.1.0-18-amd64") is `oldestRelease` or later.
    static func tracepointsFit(release: String) -> Bool {
        let numbers = release.split(separator: ".", maxSplits: 2).prefix(2).map { Int($0.prefix { $0.isNumber }) }
        guard numbers.count == 2, let major = numbers[0], let minor = numbers[1] else { return false }
        return (major, minor) >= oldestRelease
    }

    static func run(target: AttributionTarget, settings: AttributionSettings, say: (String) -> Void,
                    cancelled: () -> Bool) throws(Tracefs.Failure) -> Attribution {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard tracepointsFit(release: release) else {
            throw .unavailable("Linux \(release) is older than \(oldestRelease.major).\(oldestRelease.minor), whose kmem tracepoints the program reads")
        }
        guard faccessat(AT_FDCWD, settings.btfPath, R_OK, AT_EACCESS) == 0 else {
            let code = errno
            throw .unavailable("\(settings.btfPath) \(code == ENOENT ? "missing (a kernel without CONFIG_DEBUG_INFO_BTF)" : "unreadable: \(String(cString: strerror(code)))")")
        }
        var config = try filter(target)
        let session = try start(&config, settings: settings)
        defer { slabwatch_bpf_close(session) }
        let started = Clock.monotonicNanoseconds()
        while !cancelled(), Double(Clock.monotonicNanoseconds() - started) / 1e9 < settings.durationSeconds { usleep(50_000) }
        slabwatch_bpf_detach(session)
        let window = Double(Clock.monotonicNanoseconds() - started) / 1e9
        let counts = read(session)
        let symbols = KernelSymbolReader.resolve(counts.addresses, say: say)
        let cgroups = CgroupPaths.resolve(cgroupIDs: counts.cgroupIDs, memoryCgroupIDs: counts.memoryCgroupIDs)
        return counts.attribution(cache: target.name, symbol: { symbols[$0] }, cgroupPaths: cgroups.cgroups, memoryCgroupPaths: cgroups.memoryCgroups,
                                  windowSeconds: window, stopReason: cancelled() ? .interrupted : .duration,
                                  endedMilliseconds: Clock.wallMilliseconds())
    }

    /// The in-kernel filter: the cache by name (its `struct kmem_cache` pointer
    /// once the first allocation shows it), for a kmalloc cache also the size
    /// class and the gfp class the kernel's kmalloc_type() picks it by; for a
    /// large session every kmalloc above the largest cache, and no cache.
    static func filter(_ target: AttributionTarget) throws(Tracefs.Failure) -> slabwatch_bpf_config {
        var config = slabwatch_bpf_config()
        config.stack_limit = UInt32(AttributionSession.stackLimit)
        let cache: String
        switch target {
        case .cache(let name): cache = name
        case .large(let largest):
            config.large_min = UInt32(clamping: largest + 1)
            return config
        }
        let name = Array(cache.utf8)
        guard name.count < Int(SLABWATCH_BPF_NAME_MAX) else { throw .failed("cache name longer than \(SLABWATCH_BPF_NAME_MAX - 1) bytes") }
        withUnsafeMutableBytes(of: &config.cache_name) { bytes in
            for (index, byte) in name.enumerated() { bytes[index] = byte }
        }
        config.cache_name_length = UInt32(name.count)
        if let kmalloc = KmallocCache(name: cache) {
            let bits = AttributionSession.gfpBits(kmallocFormat: Tracefs.candidates.lazy.compactMap { readText("\($0)/events/kmem/kmalloc/format") }.first ?? "")
            let account = UInt32(1) << (bits["__GFP_ACCOUNT"] ?? 22), reclaimable = UInt32(1) << (bits["__GFP_RECLAIMABLE"] ?? 4)
            let dma = UInt32(1) << (bits["__GFP_DMA"] ?? 0)
            config.kmalloc_size = UInt32(kmalloc.size)
            switch kmalloc.kind {
            case .dma: (config.gfp_mask, config.gfp_value) = (dma, dma)
            case .reclaimable: (config.gfp_mask, config.gfp_value) = (dma | reclaimable, reclaimable)
            case .accounted: (config.gfp_mask, config.gfp_value) = (dma | reclaimable | account, account)
            case .normal, .random: (config.gfp_mask, config.gfp_value) = (dma | reclaimable | account, 0)
            }
        }
        return config
    }

    private static func start(_ config: inout slabwatch_bpf_config, settings: AttributionSettings) throws(Tracefs.Failure) -> OpaquePointer {
        var why = [CChar](repeating: 0, count: 512)
        guard slabwatch_bpf_load(&why, why.count) == 1 else { throw .unavailable(String(nulTerminated: why)) }
        var code: Int32 = 0
        let custom = settings.btfPath == kernelBTF ? nil : settings.btfPath
        let session = custom.withOptionalCString { btf in
            slabwatch_bpf_start(&config, UInt32(clamping: settings.maxLiveObjects), btf, &code, &why, why.count)
        }
        guard let session else {
            let reason = String(nulTerminated: why)
            if code == EPERM || code == EACCES { throw .permission("\(reason): needs CAP_BPF and CAP_PERFMON (or root)") }
            throw .unavailable(reason)
        }
        return session
    }

    private static func read(_ session: OpaquePointer) -> AttributionCounts {
        var counts = AttributionCounts()
        var counters = [UInt64](repeating: 0, count: Int(SLABWATCH_BPF_COUNTERS.rawValue))
        slabwatch_bpf_counters(session, &counters)
        func counter(_ which: slabwatch_bpf_counter) -> UInt64 { counters[Int(which.rawValue)] }
        counts.frees = counter(SLABWATCH_BPF_FREES)
        counts.limits = .init(notFollowed: counter(SLABWATCH_BPF_LIVE_FULL), stacksLost: counter(SLABWATCH_BPF_STACKS_LOST),
                              sitesFull: counter(SLABWATCH_BPF_SITES_FULL), ownersFull: counter(SLABWATCH_BPF_OWNERS_FULL),
                              freesUnseen: counter(SLABWATCH_BPF_REUSED))

        var siteKeys = [UInt64](repeating: 0, count: 4096), sites = [slabwatch_bpf_site](repeating: .init(), count: 4096)
        let siteCount = Int(slabwatch_bpf_sites(session, &siteKeys, &sites, Int32(sites.count)))
        counts.sites = (0..<siteCount).map {
            .init(callSite: siteKeys[$0], allocations: sites[$0].allocations, frees: sites[$0].frees,
                  netCount: sites[$0].net_count, netBytes: sites[$0].net_bytes)
        }

        var ownerKeys = [slabwatch_bpf_owner_key](repeating: .init(), count: 16384), owners = [slabwatch_bpf_owner](repeating: .init(), count: 16384)
        let ownerCount = Int(slabwatch_bpf_owners(session, &ownerKeys, &owners, Int32(owners.count)))
        counts.owners = (0..<ownerCount).map {
            .init(callSite: ownerKeys[$0].call_site, tgid: ownerKeys[$0].tgid, cgroupID: ownerKeys[$0].cgroup, memoryCgroupID: ownerKeys[$0].memcg,
                  allocations: owners[$0].allocations, netCount: owners[$0].net_count, netBytes: owners[$0].net_bytes)
        }
        var comm = [CChar](repeating: 0, count: 16)
        for tgid in Set(counts.owners.map(\.tgid)) where slabwatch_bpf_comm(session, tgid, &comm) == 1 {
            counts.comms[tgid] = String(nulTerminated: comm)
        }

        var stackKeys = [slabwatch_bpf_stack_key](repeating: .init(), count: 4096), stacks = [slabwatch_bpf_stack](repeating: .init(), count: 4096)
        let stackCount = Int(slabwatch_bpf_stack_counts(session, &stackKeys, &stacks, Int32(stacks.count)))
        var frames = [UInt64](repeating: 0, count: Int(SLABWATCH_BPF_STACK_DEPTH))
        counts.stacks = (0..<stackCount).map { index in
            let depth = Int(slabwatch_bpf_stack_frames(session, stackKeys[index].stack_id, &frames))
            return .init(callSite: stackKeys[index].call_site, frames: Array(frames[0..<depth]), allocations: stacks[index].allocations,
                         net: stacks[index].net)
        }
        return counts
    }

    /// A tracepoint's format or this process's mountinfo (which runs to
    /// megabytes on a node with thousands of container mounts).
    static func readText(_ path: String) -> String? {
        guard let bytes = try? FileReader(initialCapacity: 16 << 10, maximumSize: 64 << 20).read(path) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Names the session's addresses from /proc/kallsyms, read in chunks (it is
/// megabytes; only the addresses asked for are kept).
enum KernelSymbolReader {
    static func resolve(_ addresses: Set<UInt64>, say: (String) -> Void) -> [UInt64: (function: String, module: String?)] {
        var symbols = KernelSymbols(resolving: addresses)
        let fd = open("/proc/kallsyms", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { say("cannot read /proc/kallsyms (\(String(cString: strerror(errno)))): call sites are shown as addresses"); return [:] }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var pending: [UInt8] = []
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            pending += buffer[0..<n]
            guard let lastNewline = pending.lastIndex(of: 0x0A) else { continue }
            let text = String(decoding: pending[...lastNewline], as: UTF8.self)
            pending.removeSubrange(...lastNewline)
            for line in text.split(separator: "\n") { symbols.take(line) }
        }
        if symbols.addressesHidden {
            say("/proc/kallsyms shows no addresses to this process (it needs CAP_SYSLOG): call sites are shown as addresses")
        }
        return symbols.resolved()
    }
}

/// Turns the cgroup ids a session read into paths, by walking the
/// hierarchies they are inodes of: the cgroup2 one for
/// `bpf_get_current_cgroup_id`, the memory controller's for memory cgroup ids
/// (v1's memory hierarchy beside a cgroup2 mount, or the cgroup2 one; see
/// `AttributionCounts.memoryCgroupMountPoint`). Each hierarchy is walked once.
enum CgroupPaths {
    /// Directories visited at most per hierarchy: a machine with more cgroups gets ids for the rest.
    static let walkLimit = 50_000

    static func resolve(cgroupIDs: Set<UInt64>, memoryCgroupIDs: Set<UInt64>) -> (cgroups: [UInt64: String], memoryCgroups: [UInt64: String]) {
        guard !(cgroupIDs.isEmpty && memoryCgroupIDs.isEmpty), let mountinfo = BPFSession.readText("/proc/self/mountinfo") else { return ([:], [:]) }
        let cgroup2 = AttributionCounts.cgroup2MountPoint(mountinfo: Substring(mountinfo))
        let memory = memoryCgroupIDs.isEmpty ? nil
            : AttributionCounts.memoryCgroupMountPoint(mountinfo: Substring(mountinfo), procCgroups: BPFSession.readText("/proc/cgroups").map { Substring($0) })
        if let cgroup2, memory == cgroup2 {
            let paths = walk(cgroup2, for: cgroupIDs.union(memoryCgroupIDs))
            return (paths.filter { cgroupIDs.contains($0.key) }, paths.filter { memoryCgroupIDs.contains($0.key) })
        }
        return (cgroup2.map { walk($0, for: cgroupIDs) } ?? [:], memory.map { walk($0, for: memoryCgroupIDs) } ?? [:])
    }

    /// The paths (relative to `root`, `/` for itself) of the directories under
    /// `root` whose inodes are `ids`.
    static func walk(_ root: String, for ids: Set<UInt64>) -> [UInt64: String] {
        guard !ids.isEmpty else { return [:] }
        var paths: [UInt64: String] = [:]
        var pending = [""], visited = 0
        while let relative = pending.popLast(), visited < walkLimit, paths.count < ids.count {
            visited += 1
            var status = stat()
            guard stat(root + relative, &status) == 0 else { continue }
            if ids.contains(UInt64(status.st_ino)) { paths[UInt64(status.st_ino)] = relative.isEmpty ? "/" : relative }
            guard let directory = opendir(root + (relative.isEmpty ? "/" : relative)) else { continue }
            while let entry = readdir(directory) {
                guard entry.pointee.d_type == UInt8(DT_DIR) else { continue }
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { pending.append(relative + "/" + name) }
            }
            closedir(directory)
        }
        return paths
    }
}

extension String {
    /// The text of a C buffer up to its first NUL (a process's comm, libbpf's
    /// message); bytes that are not UTF-8 become U+FFFD.
    init(nulTerminated buffer: [CChar]) {
        self.init(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension Optional where Wrapped == String {
    func withOptionalCString<Result>(_ body: (UnsafePointer<CChar>?) -> Result) -> Result {
        switch self {
        case .some(let text): text.withCString { body($0) }
        case .none: body(nil)
        }
    }
}
