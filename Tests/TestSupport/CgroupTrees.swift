import Foundation

/// cgroup v2 trees as a Kubernetes node has them, written into a directory
/// of the test's own (never committed), for the reader at the scale of a busy
/// node. A fixture, because this machine's memory controller is on cgroup v1.
///
/// Names follow the kubelet's systemd cgroup driver (pkg/kubelet/cm:
/// `kubepods.slice`, a QoS slice `kubepods-burstable.slice` or
/// `kubepods-besteffort.slice`, guaranteed pods directly under
/// `kubepods.slice`, the pod as `kubepods[-<qos>]-pod<UID with _ for ->.slice`)
/// and containerd's CRI plugin with the systemd driver (`cri-containerd-<64
/// hex digits>.scope`); services are `system.slice/<name>.service`.
/// `memory.stat` has every key the kernel's Documentation/admin-guide/cgroup-v2.rst
/// lists, in its order (the kernel prints them so), amounts in bytes; an
/// interior cgroup's values are the sums of its children's, as the kernel's
/// are hierarchical.
public enum CgroupTrees: Sendable {
    /// `memory.stat`'s keys on a 6.x kernel, in the documented order.
    public static let memoryStatKeys = [
        "anon", "file", "kernel", "kernel_stack", "pagetables", "sec_pagetables", "percpu", "sock", "vmalloc", "shmem",
        "zswap", "zswapped", "file_mapped", "file_dirty", "file_writeback", "swapcached", "anon_thp", "file_thp", "shmem_thp",
        "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable", "slab_reclaimable", "slab_unreclaimable",
        "slab", "workingset_refault_anon", "workingset_refault_file", "workingset_activate_anon", "workingset_activate_file",
        "workingset_restore_anon", "workingset_restore_file", "workingset_nodereclaim", "pgscan", "pgsteal", "pgscan_kswapd",
        "pgscan_direct", "pgscan_khugepaged", "pgsteal_kswapd", "pgsteal_direct", "pgsteal_khugepaged", "pgfault", "pgmajfault",
        "pgrefill", "pgactivate", "pgdeactivate", "pglazyfree", "pglazyfreed", "zswpin", "zswpout", "zswpwb", "thp_fault_alloc",
        "thp_collapse_alloc", "thp_swpout", "thp_swpout_fallback",
    ]

    /// One cgroup's figures: its kernel memory and the slab part of it.
    public struct Charge: Sendable, Equatable {
        public var slabReclaimable: UInt64
        public var slabUnreclaimable: UInt64
        /// Kernel memory that is not slab: stacks, page tables, per-CPU.
        public var notSlab: UInt64 = 3 * 4096
        /// `kernel`: slab plus the rest.
        public var kernel: UInt64 { slabReclaimable + slabUnreclaimable + notSlab }

        public init(slabReclaimable: UInt64, slabUnreclaimable: UInt64, notSlab: UInt64 = 3 * 4096) {
            self.slabReclaimable = slabReclaimable
            self.slabUnreclaimable = slabUnreclaimable
            self.notSlab = notSlab
        }

        static func + (a: Charge, b: Charge) -> Charge {
            Charge(slabReclaimable: a.slabReclaimable + b.slabReclaimable, slabUnreclaimable: a.slabUnreclaimable + b.slabUnreclaimable,
                   notSlab: a.notSlab + b.notSlab)
        }

        static let zero = Charge(slabReclaimable: 0, slabUnreclaimable: 0, notSlab: 0)
    }

    /// A leaf written: its path from the hierarchy's root and its figures.
    public struct Leaf: Sendable {
        public let path: String
        public let charge: Charge
        public let podUID: String?
        public let containerID: String?
        public let unit: String?
    }

    /// The whole `memory.stat` of a cgroup with `charge`; the keys that are not
    /// kernel memory get plausible figures that the reader must ignore.
    public static func memoryStat(_ charge: Charge) -> String {
        memoryStatKeys.map { key -> String in
            let value: UInt64 = switch key {
            case "kernel": charge.kernel
            case "slab_reclaimable": charge.slabReclaimable
            case "slab_unreclaimable": charge.slabUnreclaimable
            case "slab": charge.slabReclaimable + charge.slabUnreclaimable
            case "kernel_stack", "percpu": 4096
            // The rest of what is not slab, so `kernel` stays the sum of its parts.
            case "pagetables": charge.notSlab > 2 * 4096 ? charge.notSlab - 2 * 4096 : 4096
            default: 7 * 4096
            }
            return "\(key) \(value)\n"
        }.joined()
    }

    /// A node of `pods` pods with `containers` containers each, a third each
    /// guaranteed, burstable and besteffort, and `services` systemd services;
    /// every leaf's charge distinct (so the largest are known), the interior
    /// cgroups (slices, pods) holding their children's sums. Returns the leaves.
    @discardableResult
    public static func kubeletNode(at root: String, pods: Int = 110, containers: Int = 3, services: Int = 60) throws -> [Leaf] {
        var leaves: [Leaf] = []
        var serial: UInt64 = 0
        // Distinct sizes, pods and services mixed: 263 × n mod 4093 (a prime) repeats no value below 4093 leaves.
        func next() -> Charge {
            serial += 1
            let rank = serial * 263 % 4093
            return Charge(slabReclaimable: rank * 4096, slabUnreclaimable: rank * 8192 + 1)
        }
        for pod in 0..<pods {
            let uid = uuid(pod)
            let qos = ["guaranteed", "burstable", "besteffort"][pod % 3]
            let podSlice = qos == "guaranteed" ? "kubepods-pod\(uid.underscored).slice" : "kubepods-\(qos)-pod\(uid.underscored).slice"
            let podPath = qos == "guaranteed" ? "/kubepods.slice/\(podSlice)" : "/kubepods.slice/kubepods-\(qos).slice/\(podSlice)"
            for container in 0..<containers {
                let id = containerID(pod * containers + container)
                leaves.append(Leaf(path: "\(podPath)/cri-containerd-\(id).scope", charge: next(), podUID: uid, containerID: id, unit: nil))
            }
        }
        for service in 0..<services {
            let unit = "service-\(service).service"
            leaves.append(Leaf(path: "/system.slice/\(unit)", charge: next(), podUID: nil, containerID: nil, unit: unit))
        }
        try write(leaves, at: root)
        return leaves
    }

    /// `count` services directly under `system.slice` (a node with thousands of cgroups).
    @discardableResult
    public static func flatNode(at root: String, count: Int) throws -> [Leaf] {
        let leaves = (0..<count).map { index in
            Leaf(path: "/system.slice/unit-\(index).service",
                 charge: Charge(slabReclaimable: UInt64(index) * 4096, slabUnreclaimable: UInt64(count - index) * 4096),
                 podUID: nil, containerID: nil, unit: "unit-\(index).service")
        }
        try write(leaves, at: root)
        return leaves
    }

    /// A node of the leaves at `charges`' paths (written again over an earlier
    /// writing: the same tree at a later reading).
    public static func node(at root: String, charges: [(path: String, charge: Charge)]) throws {
        try write(charges.map { Leaf(path: $0.path, charge: $0.charge, podUID: nil, containerID: nil, unit: nil) }, at: root)
    }

    /// The leaves' directories and files, every interior cgroup's `memory.stat`
    /// the sum of its leaves', and the root's `cgroup.controllers`.
    static func write(_ leaves: [Leaf], at root: String) throws {
        var interior: [String: Charge] = [:]
        for leaf in leaves {
            var parent = (leaf.path as NSString).deletingLastPathComponent
            while parent != "/" {
                interior[parent, default: .zero] = interior[parent, default: .zero] + leaf.charge
                parent = (parent as NSString).deletingLastPathComponent
            }
        }
        let files = FileManager.default
        try files.createDirectory(atPath: root, withIntermediateDirectories: true)
        try "cpuset cpu io memory hugetlb pids rdma misc\n".write(toFile: root + "/cgroup.controllers", atomically: false, encoding: .utf8)
        for (path, charge) in interior.sorted(by: { $0.key < $1.key }) + leaves.map({ ($0.path, $0.charge) }) {
            try files.createDirectory(atPath: root + path, withIntermediateDirectories: true)
            try memoryStat(charge).write(toFile: root + path + "/memory.stat", atomically: false, encoding: .utf8)
        }
    }

    /// A pod UID as the API server makes them (version 4), from `index`.
    static func uuid(_ index: Int) -> String {
        let hex = String(format: "%08x", index)
        return "\(hex)-5b6f-4c7d-9e0a-2f4b6c8d0e1f"
    }

    /// A container id: 64 hex digits, from `index`.
    static func containerID(_ index: Int) -> String {
        String(format: "%08x", index) + String(repeating: "3f2a1b9c", count: 7)
    }
}

private extension String {
    /// The systemd driver writes a pod UID's dashes as `_`.
    var underscored: String { replacingOccurrences(of: "-", with: "_") }
}
