import CLinux
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
    /// The walk's buffers, kept from one `read()` to the next with the
    /// paths it read (see `Walk`), and the one `getdents64` reads directories into.
    private var buffers: Walk
    private var directoryBuffer = [UInt8](repeating: 0, count: 32 << 10)
    /// The entries of the last two readings returned: the older one's storage
    /// is refilled by the next walk, a new array only where something still
    /// holds that reading.
    private var lastEntries: [CgroupMemory.Entry] = [], olderEntries: [CgroupMemory.Entry] = []
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
        buffers = Walk(root: root)
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
    /// (Its paths are made in the walk's buffer, which holds the root's
    /// between walks: a string a walk was two heap allocations.)
    var isHierarchyRoot: Bool {
        func exists(_ file: StaticString) -> Bool { buffers.withPath(file) { access($0, F_OK) } == 0 }
        return switch version {
        case .v1: exists("release_agent")
        case .v2: !exists("cgroup.type") && exists("cgroup.stat")
        }
    }

    public func read() -> CgroupMemory {
        buffers.start()
        // The root by its path, a symlink followed (a distribution may link `memory` to a joint mount).
        let root = buffers.withPath(nil) { open($0, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        if root >= 0 {
            _ = walk(depth: 0, &buffers, in: root)
            close(root)
        }
        lastWalk = (buffers.visited, buffers.visited < maxDirectories && isHierarchyRoot)
        // The entries of two readings back: by now no sample holds that reading (a sample holds the last one).
        var kept = olderEntries
        olderEntries = []
        let memory = CgroupMemory.largest(sorting: &buffers.entries, into: &kept, limit: limit, version: version,
                                          unreadable: buffers.unreadable, truncated: buffers.visited >= maxDirectories)
        olderEntries = lastEntries
        lastEntries = memory.entries
        return memory
    }

    /// An interior cgroup's own part is kept only from this size up: the
    /// parent and its children are read moments apart, so a few pages of
    /// difference are the reads' skew, not memory of the parent's own.
    static let ownPartFloor: UInt64 = 1 << 20

    /// What one walk gathers, and the buffers it walks with, kept from one
    /// walk to the next so that a walk of an unchanged tree allocates only
    /// its reading: the directory's path (the root's, then the relative
    /// one), the names of the children still to walk at every level, and
    /// the children read at every level, as bytes and entries. A path
    /// becomes a string only for a cgroup read, and a name never; the string
    /// is the last walk's where it read the same path (`relativePath`). At
    /// thousands of cgroups, strings for each path and name were most of a
    /// walk's heap allocations.
    private struct Walk {
        var visited = 0
        var entries: [CgroupMemory.Entry] = []
        var unreadable = 0
        var path: [UInt8]
        let rootLength: Int
        var names: [UInt8] = []
        /// Each child's name in `names`, level after level.
        var children: [Range<Int>] = []
        /// The readings of an interior cgroup's children, one array a level.
        var childrenRead: [[CgroupMemory.Entry]] = []
        /// The paths of the cgroups read, in the order read: this walk's,
        /// the last walk's, and where in the last walk's the next is looked for.
        var paths: [String] = []
        var lastPaths: [String] = []
        var lastPathsNext = 0

        /// How far past the last match a path is looked for in the last walk's:
        /// as many cgroups as may go between two walks (a pod's few) and still
        /// find the rest; a path not found is a string of its own.
        static let pathLookahead = 16

        init(root: String) {
            path = Array(root.utf8)
            rootLength = path.count
            path.reserveCapacity(rootLength + 256)
            names.reserveCapacity(4096)
        }

        /// Empties what the last walk gathered, keeping the storage, and
        /// keeps its paths to find this walk's in.
        mutating func start() {
            visited = 0
            unreadable = 0
            entries.removeAll(keepingCapacity: true)
            swap(&paths, &lastPaths)
            paths.removeAll(keepingCapacity: true)
            lastPathsNext = 0
        }

        /// The path relative to the root ("" for the root itself) of a cgroup
        /// read: the last walk's string where it read the same path at about
        /// the same place (walks read in the names' order, so an unchanged
        /// tree reads every path at the same place), else a new one.
        mutating func relativePath() -> String {
            let bytes = path[rootLength...]
            let nearby = lastPathsNext..<min(lastPathsNext + Self.pathLookahead, lastPaths.count)
            let string: String
            if let found = nearby.first(where: { lastPaths[$0].utf8.elementsEqual(bytes) }) {
                string = lastPaths[found]
                lastPathsNext = found + 1
            } else {
                string = String(decoding: bytes, as: UTF8.self)
            }
            paths.append(string)
            return string
        }

        /// Adds a child directory's name to the names still to walk; `.` and
        /// `..` are none. Kept NUL-terminated (the range leaves the NUL out)
        /// for `openat`.
        mutating func addChild(_ name: UnsafeRawBufferPointer) {
            if name.elementsEqual(".".utf8) || name.elementsEqual("..".utf8) { return }
            let start = names.count
            names.append(contentsOf: name)
            children.append(start..<names.count)
            names.append(0)
        }

        /// Opens the child directory `child` of the directory open as `parent`; -1 where it cannot.
        func openChild(_ child: Int, in parent: Int32) -> Int32 {
            names.withUnsafeBufferPointer { names in
                let name = UnsafeRawPointer(names.baseAddress! + children[child].lowerBound)
                return openat(parent, name.assumingMemoryBound(to: CChar.self), CgroupMemoryReader.directoryFlags)
            }
        }

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

    /// Directories below the root are opened only as directories, and a
    /// symlink put in a directory's place after it was listed is refused, not followed.
    static let directoryFlags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW

    /// Reads the cgroup open as `directory`, its file named relative to it:
    /// opened by its full path, the kernel looked up every directory from
    /// the root again for each cgroup, and a path longer than PATH_MAX could
    /// not be read at all.
    private func entry(_ walk: inout Walk, in directory: Int32) -> CgroupMemory.Entry? {
        switch version {
        case .v1:
            guard let read = files.readIfPossible(in: directory, "memory.kmem.usage_in_bytes", readSize: FileReader.sysctlReadSize)
            else { return nil }
            return CgroupMemory.entry(path: walk.relativePath(), kmemUsage: read)
        case .v2:
            guard let read = files.readIfPossible(in: directory, "memory.stat") else { return nil }
            return CgroupMemory.entry(path: walk.relativePath(), memoryStat: read)
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
    private func walk(depth: Int, _ walk: inout Walk, in directory: Int32) -> CgroupMemory.Entry? {
        guard walk.visited < maxDirectories else { return nil }
        let (firstName, firstChild) = (walk.names.count, walk.children.count)
        defer {
            walk.names.removeSubrange(firstName...)
            walk.children.removeSubrange(firstChild...)
        }
        listSubdirectories(directory, &walk)
        walk.visited += 1
        let isRoot = walk.path.count == walk.rootLength
        if walk.children.count == firstChild {
            guard !isRoot else { return nil }
            let read = entry(&walk, in: directory)
            if let read { walk.entries.append(read) } else { walk.unreadable += 1 }
            return read
        }
        guard depth < Self.depth else { return nil }
        do {
            // In byte order: the order of the names as strings, for the names cgroups have. `names`
            // goes out of scope before the children's names are appended, which then write in place.
            // Sorted through a pointer: a slice of the array sorted in place is a copy of it.
            let names = walk.names
            walk.children.withUnsafeMutableBufferPointer { children in
                var level = UnsafeMutableBufferPointer(rebasing: children[firstChild...])
                level.sort { names[$0].lexicographicallyPrecedes(names[$1]) }
            }
        }
        if walk.childrenRead.count <= depth { walk.childrenRead.append([]) }
        defer { walk.childrenRead[depth].removeAll(keepingCapacity: true) }
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
            guard walk.visited < maxDirectories else {  // the bound: the rest are not opened
                everyChildRead = false
                break
            }
            let childDirectory = walk.openChild(child, in: directory)
            guard childDirectory >= 0 else {
                everyChildRead = false  // gone since it was listed, as before it was opened by name
                continue
            }
            let length = walk.path.count
            walk.path.append(UInt8(ascii: "/"))
            walk.path.append(contentsOf: walk.names[walk.children[child]])
            if let read = self.walk(depth: depth + 1, &walk, in: childDirectory) { walk.childrenRead[depth].append(read) } else { everyChildRead = false }
            walk.path.removeSubrange(length...)
            close(childDirectory)
        }
        guard !isRoot, let itself = entry(&walk, in: directory) else { return nil }
        let own = itself.less(walk.childrenRead[depth])
        if everyChildRead, own.kernelBytes >= Self.ownPartFloor { walk.entries.append(own) }
        return itself
    }
}

extension CgroupMemoryReader {
    /// Appends the names of the directories in the directory open as `fd`
    /// to the names still to walk (symlinks and files are none). An error
    /// while listing ends the list, as readdir's does.
    private func listSubdirectories(_ fd: Int32, _ walk: inout Walk) {
        while true {
            let count = directoryBuffer.withUnsafeMutableBytes { slabwatch_getdents64(fd, $0.baseAddress, UInt($0.count)) }
            guard count > 0 else { return }
            directoryBuffer.withUnsafeBytes { buffer in
                // Records of struct linux_dirent64: d_ino (8 bytes), d_off (8),
                // d_reclen (2), d_type (1), d_name (NUL-terminated), padding.
                var record = 0
                while record + 19 < count {
                    let length = Int(buffer.loadUnaligned(fromByteOffset: record + 16, as: UInt16.self))
                    guard length > 19, record + length <= count else { return }  // never from a kernel
                    if buffer[record + 18] == UInt8(DT_DIR) {
                        let name = UnsafeRawBufferPointer(rebasing: buffer[(record + 19)..<(record + length)])
                        walk.addChild(UnsafeRawBufferPointer(rebasing: name.prefix { $0 != 0 }))
                    }
                    record += length
                }
            }
        }
    }

    /// Whether a directory name is UTF-8; without a string for the ASCII
    /// names cgroups have.
    static func isUTF8(_ name: ArraySlice<UInt8>) -> Bool {
        name.allSatisfy { $0 < 0x80 } || String(validating: name, as: UTF8.self) != nil
    }
}

/// One owner (the sample reader, or the bench): its file buffer is not shared.
@available(*, unavailable)
extension CgroupMemoryReader: Sendable {}
