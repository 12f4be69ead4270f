public import LinearRegex

/// Which caches hold one filesystem's inodes, so their object counts can be
/// drivers of their own (`detector.inode-caches`).
///
/// Every filesystem allocates its inodes from a cache of its own
/// (`ext4_inode_cache`, `xfs_inode`, `shmem_inode_cache`, a module's
/// `mystor_inode_cache`, …). The global inode count mixes them all, so a
/// `find` over ext4 dilutes the slope of a cache that grows with tmpfs
/// inodes, and evicting ext4 inodes looks like a fall of its driver. The
/// count of one inode cache moves only with that filesystem's inodes.
///
/// A cache qualifies when its name fully matches `pattern`, does not fully
/// match `excludePattern`, and the kernel has not merged other caches into it
/// (SLUB aliases): a merged cache's object count includes its aliases'
/// objects, so it does not count inodes. Inode caches have constructors, which
/// SLUB never merges, so this only ever rules out look-alikes such as
/// `lsm_inode_cache` (a per-inode blob merged with `kmalloc-32`-sized caches).
/// Immutable and thread-safe once made.
public struct InodeCacheSelector: Sendable, Equatable {
    /// The kernel's and common modules' inode caches, and the generic
    /// `inode_cache` (pipes, anonymous inodes, filesystems without their own).
    public static let defaultPattern = ".*_inode_cache|.*_inode|.*_inode_info|inode_cache"
    /// Per-inode structures whose names look like inode caches but count
    /// something else (LSM blobs, fscrypt keys, journal heads).
    public static let defaultExcludePattern = "lsm_inode_cache|fscrypt_inode_info|jbd2_inode|.*_inode_mark"
    /// At most this many inode caches are followed (the ring keeps a column each).
    public static let maximumCaches = 32

    public let pattern: String
    public let excludePattern: String
    private let include: LinearRegex?
    private let exclude: LinearRegex?

    /// - Throws: `LinearRegex.SyntaxError` when a pattern does not compile.
    ///   An empty `pattern` selects no cache (only the global count drives).
    public init(pattern: String = Self.defaultPattern, excludePattern: String = Self.defaultExcludePattern)
        throws(LinearRegex.SyntaxError)
    {
        self.pattern = pattern
        self.excludePattern = excludePattern
        include = pattern.isEmpty ? nil : try LinearRegex(pattern)
        exclude = excludePattern.isEmpty ? nil : try LinearRegex(excludePattern)
    }

    public static func == (a: InodeCacheSelector, b: InodeCacheSelector) -> Bool {
        a.pattern == b.pattern && a.excludePattern == b.excludePattern
    }

    /// The defaults (cannot throw: the patterns are constants that compile).
    public static let standard: InodeCacheSelector = try! InodeCacheSelector()

    /// Whether `cache`'s active objects count one filesystem's inodes.
    public func selects(_ cache: SlabCache) -> Bool {
        guard cache.aliases.isEmpty, let include, include.wholeMatch(cache.name) else { return false }
        return !(exclude?.wholeMatch(cache.name) ?? false)
    }

    /// The filesystem whose inodes `cache` holds, where its name says:
    /// a table of the kernel's names, else the name before `_inode…`
    /// (`mystor_inode_cache` → `mystor`, the module's own name). Nil for the
    /// generic `inode_cache`, which many filesystems share.
    public static func filesystem(of cache: String) -> String? {
        if let known = knownFilesystems[cache] { return known }
        guard let range = cache.firstRange(of: "_inode"), range.lowerBound != cache.startIndex else { return nil }
        return String(cache[..<range.lowerBound])
    }

    private static let knownFilesystems: [String: String] = [
        "shmem_inode_cache": "tmpfs", "ext4_inode_cache": "ext4", "xfs_inode": "xfs", "btrfs_inode": "btrfs",
        "nfs_inode_cache": "nfs", "fuse_inode": "fuse", "ceph_inode_info": "ceph", "ovl_inode": "overlay",
        "proc_inode_cache": "proc", "sock_inode_cache": "sockfs", "hugetlbfs_inode_cache": "hugetlbfs",
        "mqueue_inode_cache": "mqueue", "f2fs_inode_cache": "f2fs", "fat_inode_cache": "vfat",
        "isofs_inode_cache": "iso9660", "cifs_inode_cache": "cifs", "gfs2_inode": "gfs2", "erofs_inode": "erofs",
        "squashfs_inode_cache": "squashfs", "debugfs_inode_cache": "debugfs", "tracefs_inode_cache": "tracefs",
    ]
}
