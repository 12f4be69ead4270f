/// Every field of /proc/meminfo, in file order, with `kB` values converted to bytes.
///
/// Fields without a unit (`HugePages_Total`) are counts and kept as they are.
/// The fields slabwatch reasons about have named accessors; a field the running
/// kernel does not have reads as nil.
public struct Meminfo: Sendable, Equatable {
    public struct Field: Sendable, Equatable {
        public var name: String
        /// Bytes when `isBytes`, otherwise the kernel's plain count.
        public var value: UInt64
        public var isBytes: Bool

        public init(name: String, value: UInt64, isBytes: Bool) {
            self.name = name
            self.value = value
            self.isBytes = isBytes
        }
    }

    public var fields: [Field]

    public init(fields: [Field]) { self.fields = fields }

    public subscript(name: String) -> UInt64? {
        fields.first { $0.name == name }?.value
    }

    public var totalBytes: UInt64? { self["MemTotal"] }
    public var availableBytes: UInt64? { self["MemAvailable"] }
    public var slabBytes: UInt64? { self["Slab"] }
    public var slabReclaimableBytes: UInt64? { self["SReclaimable"] }
    public var slabUnreclaimableBytes: UInt64? { self["SUnreclaim"] }
    public var kernelReclaimableBytes: UInt64? { self["KReclaimable"] }
    /// The per-CPU allocator's pages (`pcpu_nr_pages()`: exact, no vmstat lag).
    public var percpuBytes: UInt64? { self["Percpu"] }
}

public enum MeminfoParser: Sendable {
    public struct Result: Sendable, Equatable {
        public var meminfo: Meminfo
        public var malformedLines: Int
    }

    /// Parses `Key:   value [kB]` lines. Linux 2.4's leading `total: used: …`
    /// table rows are recognised and skipped; any other line that does not fit
    /// is skipped and counted. Never throws: an empty file is an empty result.
    /// - Parameters:
    ///   - previous: the last sample's meminfo; a name whose bytes are unchanged
    ///     at its position is reused instead of allocated again.
    ///   - storage: an array whose storage the result's fields reuse (emptied
    ///     first), so that a steady tick allocates nothing.
    public static func parse(
        _ bytes: ArraySlice<UInt8>, previous: Meminfo? = nil, reusing storage: consuming [Meminfo.Field] = []
    ) -> Result {
        var parsed = consume storage
        parsed.removeAll(keepingCapacity: true)
        parsed.reserveCapacity(previous?.fields.count ?? 64)
        var malformed = 0
        bytes.withUnsafeBufferPointer { buffer in
            var lines = Lines(buffer)
            while let line = lines.next() {
                var colon = line.lowerBound
                while colon < line.upperBound, buffer[colon] != asciiColon { colon += 1 }
                guard colon < line.upperBound, colon > line.lowerBound else {
                    if line.contains(where: { !isBlank(buffer[$0]) }) { malformed += 1 }
                    continue
                }
                let values = Values(buffer, colon + 1..<line.upperBound)
                if values.isLegacyTableRow { continue }
                let reuse = previous.flatMap { parsed.count < $0.fields.count ? $0.fields[parsed.count].name : nil }
                guard let field = field(buffer, key: line.lowerBound..<colon, values, reusing: reuse)
                else { malformed += 1; continue }
                parsed.append(field)
            }
        }
        return Result(meminfo: Meminfo(fields: parsed), malformedLines: malformed)
    }

    /// What the fields after a key's colon say, from one pass over them.
    private struct Values {
        var count = 0
        var first: Field?
        var second: Field?
        var allNumbers = true
        var allEndInColon = true

        init(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) {
            var fields = Fields(bytes, in: range)
            while let field = fields.next() {
                if count == 0 { first = field } else if count == 1 { second = field }
                count += 1
                allNumbers = allNumbers && field.number != nil
                allEndInColon = allEndInColon && bytes[field.range.upperBound - 1] == asciiColon
            }
        }

        /// 2.4 kernels start meminfo with a byte table (`Mem:  3423940608 …`) whose
        /// rows carry several numbers and no unit; the same data follows as fields.
        var isLegacyTableRow: Bool { count > 2 && (allNumbers || allEndInColon) }
    }

    private static func field(
        _ bytes: UnsafeBufferPointer<UInt8>, key: Range<Int>, _ values: Values, reusing previousName: String?
    ) -> Meminfo.Field? {
        guard let number = values.first?.number else { return nil }
        let name: String
        if let previousName, bytes.spells(previousName, at: key) {
            name = previousName
        } else {
            guard !key.contains(where: { isBlank(bytes[$0]) }) else { return nil }
            name = bytes.decoded(key)
        }
        switch values.count {
        case 1: return .init(name: name, value: number, isBytes: false)
        case 2 where bytes.spells("kB", at: values.second!.range):
            let (bytes, overflow) = number.multipliedReportingOverflow(by: 1024)
            return overflow ? nil : .init(name: name, value: bytes, isBytes: true)
        default: return nil
        }
    }
}
