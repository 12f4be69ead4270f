import Glibc
public import SlabWatchCore

/// Walks the memory controller's hierarchy and reads each leaf's kernel
/// memory (see `CgroupMemory`). Bounded: at most `maxDirectories` are
/// visited and `depth` levels descended, symlinks are never followed, and a
/// leaf that vanishes or cannot be read mid-walk is counted, not fatal.
public final class CgroupMemoryReader {
    let root: String
    let version: CgroupMemory.Version
    let limit: Int
    let maxDirectories: Int
    static let depth = 32
    private let files: FileReader
    /// Directories the last `read()` walked, and whether that was the whole
    /// hierarchy (its root mounted, and no bound cut the walk): only then is
    /// `/proc/cgroups`' count less these the dying cgroups.
    private(set) var lastWalk: (directories: Int, whole: Bool)?

    public init(root: String, version: CgroupMemory.Version, limit: Int, maxDirectories: Int = 20_000) {
        self.root = root
        self.version = version
        self.limit = limit
        self.maxDirectories = maxDirectories
        files = FileReader(initialCapacity: 8 << 10, maximumSize: 1 << 20)
    }

    /// The hierarchy the memory controller is on: under `cgroupfs` where it
    /// is given (the node's /sys/fs/cgroup mounted elsewhere: v2 there, or
    /// v1's `memory` below it), else from /proc's mountinfo, with a path
    /// under /sys read under `sysfs` (a recorded root); nil where no memory
    /// cgroup hierarchy is visible.
    static func locate(procfs: String, sysfs: String, cgroupfs: String = "", limit: Int) -> CgroupMemoryReader? {
        let reader = FileReader(initialCapacity: 64 << 10, maximumSize: 64 << 20)
        if !cgroupfs.isEmpty {
            return probe(cgroupfs, reader: reader, limit: limit) ?? probe(cgroupfs + "/memory", reader: reader, limit: limit)
        }
        guard let mountinfo = try? reader.read("\(procfs)/self/mountinfo") else { return nil }
        let cgroups = (try? reader.read("\(procfs)/cgroups")).map { Substring(String(decoding: $0, as: UTF8.self)) }
        guard var mount = AttributionCounts.memoryCgroupMountPoint(mountinfo: Substring(String(decoding: mountinfo, as: UTF8.self)),
                                                                   procCgroups: cgroups)
        else { return nil }
        if sysfs != "/sys", mount.hasPrefix("/sys/") { mount = sysfs + mount.dropFirst(4) }
        return probe(mount, reader: reader, limit: limit)
    }

    /// The memory hierarchy whose root is `mount`, by the files only its root has.
    private static func probe(_ mount: String, reader: FileReader, limit: Int) -> CgroupMemoryReader? {
        if access("\(mount)/memory.kmem.usage_in_bytes", F_OK) == 0 {
            return CgroupMemoryReader(root: mount, version: .v1, limit: limit)
        }
        // cgroup2: a hierarchy without the memory controller has no memory.stat below it.
        guard (try? reader.read("\(mount)/cgroup.controllers")).map({ String(decoding: $0, as: UTF8.self).split(separator: " ")
            .contains { $0.hasPrefix("memory") } }) == true else { return nil }
        return CgroupMemoryReader(root: mount, version: .v2, limit: limit)
    }

    /// Whether the mount is the hierarchy's root, not a pod's cgroup
    /// namespace or a bound subdirectory: only the root has v1's
    /// `release_agent`, and only the root lacks v2's `cgroup.type`.
    var isHierarchyRoot: Bool {
        switch version {
        case .v1: access("\(root)/release_agent", F_OK) == 0
        case .v2: access("\(root)/cgroup.type", F_OK) != 0 && access("\(root)/cgroup.stat", F_OK) == 0
        }
    }

    public func read() -> CgroupMemory {
        var walk = Walk(root: root)
        _ = self.walk(depth: 0, &walk)
        lastWalk = (walk.visited, walk.visited < maxDirectories && isHierarchyRoot)
        return .largest(walk.entries, limit: limit, version: version, unreadable: walk.unreadable,
                        truncated: walk.visited >= maxDirectories)
    }

    /// An interior cgroup's own part is kept only from this size up: the
    /// parent and its children are read moments apart, so a few pages of
    /// difference are the reads' skew, not memory of the parent's own.
    static let ownPartFloor: UInt64 = 1 << 20

    /// What one walk gathers, and the buffers it walks with: the directory's
    /// path (the root's, then the relative one) and the names of the
    /// children still to walk at every level, as bytes. A path becomes a
    /// string only for a cgroup read, and a name never: at thousands of
    /// cgroups, strings for each path and name were most of a walk's heap
    /// allocations.
    private struct Walk {
        var visited = 0
        var entries: [CgroupMemory.Entry] = []
        var unreadable = 0
        var path: [UInt8]
        let rootLength: Int
        var names: [UInt8] = []
        /// Each child's name in `names`, level after level.
        var children: [Range<Int>] = []

        init(root: String) {
            path = Array(root.utf8)
            rootLength = path.count
            path.reserveCapacity(rootLength + 256)
            names.reserveCapacity(4096)
        }

        /// The path relative to the root ("" for the root itself).
        var relativePath: String { String(decoding: path[rootLength...], as: UTF8.self) }

        /// Calls `body` with the path and `file` appended, NUL-terminated.
        mutating func withPath<Result>(_ file: StaticString?, _ body: (UnsafePointer<CChar>) -> Result) -> Result {
            let length = path.count
            if let file {
                path.append(UInt8(ascii: "/"))
                path.append(contentsOf: UnsafeBufferPointer(start: file.utf8Start, count: file.utf8CodeUnitCount))
            }
            path.append(0)
            defer { path.removeSubrange(length...) }
            return path.withUnsafeBytes { body($0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
        }
    }

    private func entry(_ walk: inout Walk) -> CgroupMemory.Entry? {
        switch version {
        case .v1:
            guard let read = walk.withPath("memory.kmem.usage_in_bytes", { try? files.read(cPath: $0, readSize: FileReader.sysctlReadSize) })
            else { return nil }
            return CgroupMemory.entry(path: walk.relativePath, kmemUsage: read)
        case .v2:
            guard let read = walk.withPath("memory.stat", { try? files.read(cPath: $0) }) else { return nil }
            return CgroupMemory.entry(path: walk.relativePath, memoryStat: read)
        }
    }

    /// Reads the cgroups under `walk.path` and returns its own reading, which
    /// counts its whole subtree (both versions' files are hierarchical); nil
    /// where unread. A leaf (no directory below it) is an entry. So is an
    /// interior cgroup's **own part** — its reading less its children's —
    /// when every child was read and it comes to `ownPartFloor`: memory
    /// charged to the cgroup itself, by a process in it (v1 allows that) or
    /// moved up by the kernel from a child that was removed (a container
    /// restarted in its pod keeps its slab charged to the pod). Reading
    /// leaves only, that memory was in no entry and no "other". The root is
    /// neither: its reading is the whole machine.
    private func walk(depth: Int, _ walk: inout Walk) -> CgroupMemory.Entry? {
        guard walk.visited < maxDirectories, let directory = walk.withPath(nil, { opendir($0) }) else { return nil }
        walk.visited += 1
        let (firstName, firstChild) = (walk.names.count, walk.children.count)
        defer {
            walk.names.removeSubrange(firstName...)
            walk.children.removeSubrange(firstChild...)
        }
        while let entry = readdir(directory) {
            guard entry.pointee.d_type == UInt8(DT_DIR) else { continue }
            let start = walk.names.count
            withUnsafeBytes(of: entry.pointee.d_name) { walk.names.append(contentsOf: $0.prefix { $0 != 0 }) }
            let name = walk.names[start...]
            if name.elementsEqual(".".utf8) || name.elementsEqual("..".utf8) {
                walk.names.removeSubrange(start...)
            } else {
                walk.children.append(start..<walk.names.count)
            }
        }
        closedir(directory)
        let isRoot = walk.path.count == walk.rootLength
        if walk.children.count == firstChild {
            guard !isRoot else { return nil }
            let read = entry(&walk)
            if let read { walk.entries.append(read) } else { walk.unreadable += 1 }
            return read
        }
        guard depth < Self.depth else { return nil }
        do {
            // In byte order: the order of the names as strings, for the names cgroups have. `names`
            // goes out of scope before the children's names are appended, which then write in place.
            let names = walk.names
            walk.children[firstChild...].sort { names[$0].lexicographicallyPrecedes(names[$1]) }
        }
        var childrenRead: [CgroupMemory.Entry] = []
        var everyChildRead = true
        for child in firstChild..<walk.children.count {
            // A name that is not UTF-8 would read as another name once decoded
            // (two such names as one: a history column twice, a state file
            // refused): not read, counted as unreadable, as before byte paths.
            guard Self.isUTF8(walk.names[walk.children[child]]) else {
                walk.unreadable += 1
                everyChildRead = false
                continue
            }
            let length = walk.path.count
            walk.path.append(UInt8(ascii: "/"))
            walk.path.append(contentsOf: walk.names[walk.children[child]])
            if let read = self.walk(depth: depth + 1, &walk) { childrenRead.append(read) } else { everyChildRead = false }
            walk.path.removeSubrange(length...)
        }
        guard !isRoot, let itself = entry(&walk) else { return nil }
        let own = itself.less(childrenRead)
        if everyChildRead, own.kernelBytes >= Self.ownPartFloor { walk.entries.append(own) }
        return itself
    }
}

extension CgroupMemoryReader {
    /// Whether a directory name is UTF-8; without a string for the ASCII
    /// names cgroups have.
    static func isUTF8(_ name: ArraySlice<UInt8>) -> Bool {
        name.allSatisfy { $0 < 0x80 } || String(validating: name, as: UTF8.self) != nil
    }
}

/// One owner (the sample reader, or the bench): its file buffer is not shared.
@available(*, unavailable)
extension CgroupMemoryReader: Sendable {}
