/// What a cache's footprint may grow with (the x of the regression).
public enum GrowthDriver: String, CaseIterable, Sendable, Comparable, Codable {
    case inodes
    case dentries
    /// Dentries of names that do not exist (`nr_negative`): every lookup of a
    /// missing name leaves one, so their count says someone looks up missing
    /// files where the dentries' count says only that dentries exist.
    case negativeDentries = "negative_dentries"
    case openFiles = "open_files"
    /// Sockets: every network namespace's (`sock_inode_cache`'s objects),
    /// or this one's (`sockets: used`) where that cache is merged.
    case sockets
    /// Threads (`/proc/loadavg`'s total): the kernel's `nr_threads`.
    case tasks
    /// Memory cgroups, live or dying (`/proc/cgroups`' memory `num_cgroups`).
    case memoryCgroups = "memory_cgroups"
    /// Removed memory cgroups the kernel still holds (v1: `num_cgroups` less
    /// the hierarchy's directories; v2: the root's `cgroup.stat`).
    case dyingMemoryCgroups = "dying_memory_cgroups"
    case time

    public static func < (a: GrowthDriver, b: GrowthDriver) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// The ring column holding this driver (time is the slot's timestamp).
    var ringCounter: SampleRing.Counter? {
        switch self {
        case .inodes: .inodes
        case .dentries: .dentries
        case .negativeDentries: .negativeDentries
        case .openFiles: .openFiles
        case .sockets: .sockets
        case .tasks: .tasks
        case .memoryCgroups: .memoryCgroups
        case .dyingMemoryCgroups: .dyingMemoryCgroups
        case .time: nil
        }
    }

    /// Where the driver stands in a near tie with another (lower first;
    /// `allCases` stays the JSON order): the counts that say *why* before the
    /// file counts, because the stories tie by construction (a socket is also
    /// an inode, a dentry and an open file; a charged dying cgroup came with
    /// the inode of the file it wrote), and dying memory cgroups before all
    /// of them, of which they are a part.
    var tiePreference: Int {
        switch self {
        case .dyingMemoryCgroups: 0
        case .memoryCgroups: 1
        case .sockets: 2
        case .tasks: 3
        case .inodes: 4
        case .dentries, .negativeDentries: 5
        case .openFiles: 6
        case .time: 7
        }
    }

    /// Whether the driver's column enters a window only when it moved there
    /// by its minimum change (`FittedWindow`): the drivers beyond the file
    /// counts, so a quiet machine fits exactly what it fitted before them.
    var entersWhenMoved: Bool {
        switch self {
        case .sockets, .tasks, .memoryCgroups, .dyingMemoryCgroups: true
        default: false
        }
    }

    /// The driver's value in one sample; nil when its source was down. Read
    /// through its ring column, so a sample and the ring cannot disagree.
    func value(in sample: Sample) -> Double? {
        guard let counter = ringCounter else { return Double(sample.timestampMilliseconds) / 1000 }
        return counter.value(in: sample).map { Double($0) }
    }

    /// The driver whose units this one's are a part of (negative dentries are
    /// dentries): in a near tie the part wins, as an inode cache wins over
    /// the global inode count (`GrowthDetector.bestDriver`). Itself otherwise.
    var whole: GrowthDriver { self == .negativeDentries ? .dentries : self }

    /// The cache whose objects this driver counts: `dentry`'s footprint is
    /// its dentries, so "dentry grows 192 B per dentry" fits any rise of it
    /// perfectly and says nothing of why (`GrowthDetector.bestDriver`).
    ///
    /// One table of every count that is a cache's own object count. A fit of
    /// such a cache against its count is true by construction and says
    /// nothing of why: `sock_inode_cache` holds one `socket_alloc` per socket,
    /// `task_struct` one per thread, `mem_cgroup` one per memory cgroup, live
    /// or dying. (A merged cache listed under another name is not caught.)
    func countsObjects(of cache: String?) -> Bool {
        guard let cache else { return false }
        return switch self {
        case .dentries: cache == "dentry"
        case .sockets: cache == SampleRing.Counter.socketCache
        case .tasks: cache == "task_struct"
        case .memoryCgroups, .dyingMemoryCgroups: cache == "mem_cgroup"
        default: false
        }
    }

    /// Whether a fit against the cache this driver counts is never flagged.
    /// The dentries keep theirs until a part of them says why
    /// (`GrowthDetector.countsItselfOut`): "dentry grows per dentry" is
    /// still the best a `find` can be told. The newer drivers never do: a
    /// `task_struct` finding opens through time or another driver, and its
    /// sentence names the count it was not fitted against.
    var neverFitsItsOwnCache: Bool { entersWhenMoved }

    /// What frees this driver's units whatever filesystem the finding's cache
    /// belongs to; nil when that filesystem decides. Negative dentries are no
    /// file's: the kernel evicts them (drop_caches, memory pressure), and
    /// tmpfs keeps none. Sockets, threads and memory cgroups are no
    /// filesystem's either: their words are the same for every kind.
    var unitsKind: FilesystemKind? {
        switch self {
        case .negativeDentries: .evictable
        case .sockets, .tasks, .memoryCgroups, .dyingMemoryCgroups: .unknown
        default: nil
        }
    }

    /// "per cached inode", for the sentence.
    var perUnit: String { description.perUnit }
    /// "inodes".
    var plural: String { description.plural }
    /// "inode".
    var singular: String { description.singular }

    /// How a finding's sentence speaks of this driver (`FindingSentence`):
    /// one row per driver, every filesystem kind answered, so the phase, the
    /// verb and the next step of a sentence cannot disagree with each other.
    var description: Description {
        switch self {
        case .inodes:
            Description(
                perUnit: "per cached inode", singular: "inode", plural: "inodes",
                went: [.tmpfs: "their files were deleted", .evictable: "inodes were evicted", .unknown: "inodes were evicted"],
                heldBy: [.tmpfs: "tmpfs inodes", .evictable: "cached inodes", .unknown: "cached inodes"],
                decides: [
                    .tmpfs: "tmpfs inodes go only when their files are deleted (drop_caches frees none), and a per-inode \(Description.holder) falls with them where a leak does not.",
                    .evictable: "evicting them (echo 2 > /proc/sys/vm/drop_caches) tells a per-inode \(Description.holder) from a leak.",
                    .unknown: "evicting them (echo 2 > /proc/sys/vm/drop_caches), or deleting the files of an in-memory filesystem such as tmpfs, tells a per-inode \(Description.holder) from a leak.",
                ])
        case .dentries:
            Description(
                perUnit: "per dentry", singular: "dentry", plural: "dentries",
                went: [.tmpfs: "their files were deleted", .evictable: "dentries were evicted", .unknown: "dentries were evicted"],
                heldBy: [.tmpfs: "tmpfs dentries", .evictable: "cached dentries", .unknown: "cached dentries"],
                decides: [
                    .tmpfs: "tmpfs dentries go only when their files are deleted (drop_caches frees none), and a per-dentry \(Description.holder) falls with them where a leak does not.",
                    .evictable: Self.dentryStep,
                    .unknown: Self.dentryStep,
                ])
        case .negativeDentries:
            Description(
                perUnit: "per negative dentry", singular: "negative dentry", plural: "negative dentries",
                went: Dictionary(uniqueKeysWithValues: FilesystemKind.allCases.map { ($0, "negative dentries were evicted") }),
                heldBy: Dictionary(uniqueKeysWithValues: FilesystemKind.allCases.map { ($0, "negative dentries") }),
                decides: Dictionary(uniqueKeysWithValues: FilesystemKind.allCases.map { ($0, Self.negativeDentryStep) }))
        case .openFiles:
            Description(
                perUnit: "per open file", singular: "open file", plural: "open files",
                went: Dictionary(uniqueKeysWithValues: FilesystemKind.allCases.map { ($0, "open files were closed") }),
                heldBy: Dictionary(uniqueKeysWithValues: FilesystemKind.allCases.map { ($0, "open files") }),
                decides: Dictionary(uniqueKeysWithValues: FilesystemKind.allCases.map {
                    ($0, "find the process holding them (count the entries of /proc/*/fd); when it closes them, a per-file \(Description.holder) falls and a leak does not.")
                }))
        case .sockets:
            Self.uniform(perUnit: "per socket", singular: "socket", plural: "sockets", went: "sockets were closed",
                         heldBy: "open sockets", decides: Self.socketStep)
        case .tasks:
            Self.uniform(perUnit: "per thread", singular: "thread", plural: "threads", went: "threads exited",
                         heldBy: "threads", decides: Self.taskStep)
        case .memoryCgroups:
            Self.uniform(perUnit: "per memory cgroup", singular: "memory cgroup", plural: "memory cgroups",
                         went: "memory cgroups were removed", heldBy: "memory cgroups", decides: Self.memoryCgroupStep)
        case .dyingMemoryCgroups:
            Self.uniform(perUnit: "per dying memory cgroup", singular: "dying memory cgroup", plural: "dying memory cgroups",
                         went: "dying memory cgroups were released", heldBy: "dying memory cgroups", decides: Self.dyingMemoryCgroupStep)
        case .time:
            Description(
                perUnit: "per second", singular: "second", plural: "time",
                went: [:], heldBy: [:],
                decides: Dictionary(uniqueKeysWithValues: FilesystemKind.allCases.map { ($0, "It does not follow inodes, dentries, open files, sockets, threads or memory cgroups: check for a leak.") }))
        }
    }

    /// A row whose words do not depend on a filesystem (the counts beyond files).
    private static func uniform(perUnit: String, singular: String, plural: String, went: String, heldBy: String,
                                decides: String) -> Description {
        Description(
            perUnit: perUnit, singular: singular, plural: plural,
            went: Dictionary(uniqueKeysWithValues: FilesystemKind.allCases.map { ($0, went) }),
            heldBy: Dictionary(uniqueKeysWithValues: FilesystemKind.allCases.map { ($0, heldBy) }),
            decides: Dictionary(uniqueKeysWithValues: FilesystemKind.allCases.map { ($0, decides) }))
    }

    /// Who holds the sockets: `ss` sees one network namespace, the fds every process's.
    private static let socketStep = "every socket holds one (the count is every network namespace's, from sock_inode_cache); "
        + "find the holder with 'ss -s' (one namespace) or by counting socket entries of /proc/*/fd; "
        + "when they close, a per-socket \(Description.holder) falls and a leak does not."

    private static let taskStep = "every thread holds one; find the process with the most threads "
        + "(ps -eLo pid= | sort | uniq -c | sort -n | tail); when they exit, a per-thread \(Description.holder) falls and a leak does not."

    private static let memoryCgroupStep = "each memory cgroup, live or dying, holds one; compare the live and the dying "
        + "(/proc/cgroups against the hierarchy's directories on v1, cgroup.stat on v2): when they are removed and released, "
        + "a per-cgroup \(Description.holder) falls and a leak does not."

    /// The Pinterest and Twitter story: removed cgroups pinned by the page
    /// cache (or kernel objects) charged to them, each holding its per-cgroup
    /// structures; what releases them depends on what pins them.
    private static let dyingMemoryCgroupStep = "removed memory cgroups stay while page cache or kernel objects charged to them remain, "
        + "each holding its per-cgroup structures; deleting or evicting the files they charged releases them "
        + "(clean page cache goes with echo 1 > /proc/sys/vm/drop_caches; on v1 write memory.force_empty before removing a cgroup, "
        + "on v2 memory.reclaim on the parent), and a per-cgroup \(Description.holder) falls with them where a leak does not."

    private static let dentryStep = "a large unused count in /proc/sys/fs/dentry-state means negative or unused dentries; evicting them (echo 2 > /proc/sys/vm/drop_caches) tells a per-dentry \(Description.holder) from a leak."

    /// Says why negative dentries pile up, since the count alone does not, and
    /// who can say whose lookups they are: attribution names the processes
    /// that allocate them (the curl/NSS story: a health check's stat() of a
    /// file that does not exist, every few milliseconds, for weeks).
    private static let negativeDentryStep = "lookups of names that do not exist leave them (a stat() or open() of a missing file, a search along a path); "
        + "evicting them (echo 2 > /proc/sys/vm/drop_caches) tells a per-dentry \(Description.holder) from a leak, "
        + "and 'slabwatch attribute' names the processes that look them up."

    /// A driver's words. `went`, `heldBy` and `decides` answer every
    /// `FilesystemKind` for a driver whose units come and go; time, which
    /// never falls, has no `went` or `heldBy`.
    struct Description: Sendable {
        /// "per cached inode": the unit of a slope.
        let perUnit: String
        let singular: String
        let plural: String
        /// How its units went when it fell: "inodes were evicted", "their files were deleted".
        let went: [FilesystemKind: String]
        /// What memory that follows the driver hangs off: "cached inodes", "tmpfs inodes".
        let heldBy: [FilesystemKind: String]
        /// While its units have only risen: what would tell a per-unit cache
        /// from a leak (a clause after "… so far: ", or, for time, a sentence).
        /// `holder` stands where the sentence names the memory ("a per-inode
        /// cache"), so a derived series, which is no cache, gets its own word.
        let decides: [FilesystemKind: String]

        /// Where `decides` names what holds the memory: "cache", or for a
        /// derived series "allocation".
        static let holder = "{holder}"
    }
}

/// What frees the units a finding grows with, as far as its sentence needs to
/// know: the filesystem of the driver's inode cache, or of the finding's own
/// cache when that is an inode cache.
public enum FilesystemKind: Sendable, CaseIterable, Hashable {
    /// tmpfs: an inode lives until its file is deleted; drop_caches frees none.
    case tmpfs
    /// A filesystem whose cached inodes the kernel evicts (ext4, xfs, nfs, a
    /// module's own): drop_caches frees them.
    case evictable
    /// The global counts, which mix every filesystem.
    case unknown

    /// The kind of a filesystem named as `InodeCacheSelector.filesystem(of:)` names it.
    public init(filesystem: String?) {
        switch filesystem {
        case nil: self = .unknown
        case "tmpfs": self = .tmpfs
        default: self = .evictable
        }
    }
}
