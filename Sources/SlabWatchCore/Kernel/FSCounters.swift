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

    /// The first numbers of a line: as many as the parsers above read, kept
    /// in place (these files are read every tick: no array).
    private struct LeadingNumbers {
        static let capacity = 5
        private(set) var count = 0
        private var values: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)

        mutating func append(_ value: UInt64) {
            switch count {
            case 0: values.0 = value
            case 1: values.1 = value
            case 2: values.2 = value
            case 3: values.3 = value
            case 4: values.4 = value
            default: break
            }
            count += 1
        }

        /// Number `index`, below `capacity` and `count`.
        subscript(index: Int) -> UInt64 {
            switch index {
            case 0: values.0
            case 1: values.1
            case 2: values.2
            case 3: values.3
            default: values.4
            }
        }
    }

    /// The first line's fields, all of which must be numbers (extra fields a
    /// newer kernel adds are accepted; fewer than `atLeast` is an error).
    private static func numbers(_ bytes: ArraySlice<UInt8>, atLeast: Int) throws(Failure) -> LeadingNumbers {
        let (numbers, fieldCount, firstBadField) = bytes.withUnsafeBufferPointer { buffer in
            var lines = Lines(buffer)
            var numbers = LeadingNumbers()
            var fieldCount = 0
            var firstBadField: Int?
            var fields = Fields(buffer, in: lines.next() ?? 0..<0)
            while let field = fields.next() {
                fieldCount += 1
                if let value = field.number { numbers.append(value) } else if firstBadField == nil { firstBadField = fieldCount }
            }
            return (numbers, fieldCount, firstBadField)
        }
        guard fieldCount >= atLeast else { throw .wrongFieldCount(expected: atLeast, found: fieldCount) }
        if let firstBadField { throw .notANumber(field: firstBadField) }
        return numbers
    }
}
