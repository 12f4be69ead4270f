/// What /sys/kernel/slab says about caches: which names the kernel merged into
/// one cache (SLUB aliases are symlinks to one directory) and whether each
/// directory's cache is accounted as reclaimable.
///
/// Built from a directory listing the reader made; pure so it can be tested on
/// recorded trees.
public struct SysfsSlabIndex: Sendable, Equatable {
    /// One entry of /sys/kernel/slab: a directory (`target == nil`) or a symlink.
    public struct Entry: Sendable, Equatable {
        public var name: String
        /// The symlink's target directory name (last path component), or nil.
        public var target: String?

        public init(name: String, target: String?) {
            self.name = name
            self.target = target
        }
    }

    /// Directory name → names (directory and symlinks) that resolve to it, sorted.
    public private(set) var namesByDirectory: [String: [String]] = [:]
    /// Name (directory or symlink) → directory.
    public private(set) var directoryByName: [String: String] = [:]
    /// Directory → reclaim_account.
    public var reclaimable: [String: Bool] = [:]
    /// Name → its other names, made once per index so that annotating a
    /// sample shares these arrays instead of allocating new ones every tick.
    private var aliasesByName: [String: [String]] = [:]

    public init(entries: [Entry] = [], reclaimable: [String: Bool] = [:]) {
        for entry in entries {
            let directory = entry.target ?? entry.name
            directoryByName[entry.name] = directory
            if !Self.isMergedDirectoryName(entry.name) || entry.target != nil {
                namesByDirectory[directory, default: []].append(entry.name)
            }
        }
        for key in namesByDirectory.keys { namesByDirectory[key]!.sort() }
        for (name, directory) in directoryByName {
            let others = namesByDirectory[directory]?.filter { $0 != name } ?? []
            if !others.isEmpty { aliasesByName[name] = others }
        }
        self.reclaimable = reclaimable
    }

    /// SLUB names merged caches' directories `:<flags>-<size>`, e.g. `:0000024`.
    public static func isMergedDirectoryName(_ name: String) -> Bool { name.hasPrefix(":") }

    /// Directories, i.e. distinct kernel caches.
    public var directories: [String] { Array(Set(directoryByName.values)).sorted() }

    /// Reclaimability of the cache called `name` (directly or via an alias).
    public func isReclaimable(_ name: String) -> Bool? {
        directoryByName[name].flatMap { reclaimable[$0] }
    }

    /// The other names of the cache called `name`, sorted; empty when unmerged or unknown.
    public func aliases(of name: String) -> [String] { aliasesByName[name] ?? [] }

    /// The name to show for a directory when /proc/slabinfo is unavailable.
    /// sysfs does not say which alias the kernel calls a merged cache, so a
    /// `:`-named directory shows as its alphabetically first alias.
    /// Spaces and control characters become `_`: /proc/slabinfo cannot show
    /// such a name (its fields are split at spaces), the derived series take
    /// names with a space so that no cache can have them, and a module's
    /// cache named `(outside caches, unreclaimable)` must not become one.
    public func displayName(ofDirectory directory: String) -> String {
        let name = Self.isMergedDirectoryName(directory) ? namesByDirectory[directory]?.first ?? directory : directory
        return Self.cacheName(name)
    }

    /// `name` with every space or control character as `_`.
    static func cacheName(_ name: String) -> String {
        guard name.utf8.contains(where: isSpaceOrControl) else { return name }
        return String(decoding: name.utf8.map { isSpaceOrControl($0) ? UInt8(ascii: "_") : $0 }, as: UTF8.self)
    }

    private static func isSpaceOrControl(_ byte: UInt8) -> Bool { byte <= 0x20 || byte == 0x7f }

    /// Adds reclaimability and aliases to caches parsed from /proc/slabinfo.
    public func annotate(_ caches: inout [SlabCache]) {
        for index in caches.indices {
            let name = caches[index].name
            caches[index].reclaimable = isReclaimable(name)
            let aliases = aliases(of: name)
            if caches[index].aliases != aliases { caches[index].aliases = aliases }
        }
    }

    /// Parses a sysfs flag file such as `reclaim_account` (`0` or `1`).
    public static func parseFlag(_ bytes: ArraySlice<UInt8>) -> Bool? {
        parseLeadingUInt64(bytes).map { $0 != 0 }
    }

    /// Parses a sysfs count such as `objects` (`1057 N0=1057`, or a bare `0`).
    public static func parseCount(_ bytes: ArraySlice<UInt8>) -> UInt64? {
        parseLeadingUInt64(bytes)
    }
}
