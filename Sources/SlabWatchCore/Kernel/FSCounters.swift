/// The VFS counters slab growth is measured against (the detector's drivers).
///
/// - `/proc/sys/fs/inode-nr`: `nr_inodes nr_free_inodes`
/// - `/proc/sys/fs/dentry-state`: `nr_dentry nr_unused age_limit want_pages nr_negative dummy`
/// - `/proc/sys/fs/file-nr`: `allocated free max`
public struct InodeCounts: Sendable, Equatable {
    public var inodes: UInt64
    public var freeInodes: UInt64

    public init(inodes: UInt64, freeInodes: UInt64) {
        self.inodes = inodes
        self.freeInodes = freeInodes
    }
}

public struct DentryCounts: Sendable, Equatable {
    public var dentries: UInt64
    public var unusedDentries: UInt64
    /// Only non-zero on kernels that count negative dentries (4.19 and later).
    public var negativeDentries: UInt64?

    public init(dentries: UInt64, unusedDentries: UInt64, negativeDentries: UInt64? = nil) {
        self.dentries = dentries
        self.unusedDentries = unusedDentries
        self.negativeDentries = negativeDentries
    }
}

public struct FileHandleCounts: Sendable, Equatable {
    public var allocated: UInt64
    public var maximum: UInt64

    public init(allocated: UInt64, maximum: UInt64) {
        self.allocated = allocated
        self.maximum = maximum
    }
}

public enum FSCountersParser: Sendable {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case wrongFieldCount(expected: Int, found: Int)
        case notANumber(field: Int)

        public var description: String {
            switch self {
            case .wrongFieldCount(let expected, let found):
                "expected at least \(expected) numbers, found \(found) fields"
            case .notANumber(let field): "field \(field) is not an unsigned number"
            }
        }
    }

    public static func inodeNr(_ bytes: ArraySlice<UInt8>) throws(Failure) -> InodeCounts {
        let n = try numbers(bytes, atLeast: 2)
        return InodeCounts(inodes: n[0], freeInodes: n[1])
    }

    public static func dentryState(_ bytes: ArraySlice<UInt8>) throws(Failure) -> DentryCounts {
        let n = try numbers(bytes, atLeast: 2)
        return DentryCounts(
            dentries: n[0], unusedDentries: n[1], negativeDentries: n.count > 4 ? n[4] : nil)
    }

    public static func fileNr(_ bytes: ArraySlice<UInt8>) throws(Failure) -> FileHandleCounts {
        let n = try numbers(bytes, atLeast: 3)
        return FileHandleCounts(allocated: n[0], maximum: n[2])
    }

    /// The first line's fields, all of which must be numbers (extra fields a
    /// newer kernel adds are accepted; fewer than `atLeast` is an error).
    private static func numbers(_ bytes: ArraySlice<UInt8>, atLeast: Int) throws(Failure) -> [UInt64] {
        var lines = LineCursor(bytes)
        let line = lines.next() ?? []
        // One pass, no array of fields: these files are read every tick.
        var values: [UInt64] = []
        values.reserveCapacity(8)
        var fieldCount = 0
        var firstBadField: Int?
        var index = line.startIndex
        while index < line.endIndex {
            while index < line.endIndex, isBlank(line[index]) { index += 1 }
            let start = index
            while index < line.endIndex, !isBlank(line[index]) { index += 1 }
            guard start < index else { break }
            fieldCount += 1
            if let value = parseUInt64(line[start..<index]) { values.append(value) } else if firstBadField == nil { firstBadField = fieldCount }
        }
        guard fieldCount >= atLeast else { throw .wrongFieldCount(expected: atLeast, found: fieldCount) }
        if let firstBadField { throw .notANumber(field: firstBadField) }
        return values
    }
}
