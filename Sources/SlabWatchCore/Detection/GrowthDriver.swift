/// What a cache's footprint may grow with (the x of the regression).
public enum GrowthDriver: String, CaseIterable, Sendable, Comparable, Codable {
    case inodes
    case dentries
    /// Dentries of names that do not exist (`nr_negative`): every lookup of a
    /// missing name leaves one, so their count says someone looks up missing
    /// files where the dentries' count says only that dentries exist.
    case negativeDentries = "negative_dentries"
    case openFiles = "open_files"
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
        case .time: nil
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
    var countedCache: String? { self == .dentries ? "dentry" : nil }

    /// What frees this driver's units whatever filesystem the finding's cache
    /// belongs to; nil when that filesystem decides. Negative dentries are no
    /// file's: the kernel evicts them (drop_caches, memory pressure), and
    /// tmpfs keeps none.
    var unitsKind: FilesystemKind? { self == .negativeDentries ? .evictable : nil }

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
        case .time:
            Description(
                perUnit: "per second", singular: "second", plural: "time",
                went: [:], heldBy: [:],
                decides: Dictionary(uniqueKeysWithValues: FilesystemKind.allCases.map { ($0, "It does not follow inodes, dentries or open files: check for a leak.") }))
        }
    }

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
