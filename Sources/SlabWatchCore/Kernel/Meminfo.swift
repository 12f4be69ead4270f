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
    public static func parse(_ bytes: ArraySlice<UInt8>, previous: Meminfo? = nil) -> Result {
        var lines = LineCursor(bytes)
        var fields: [ArraySlice<UInt8>] = []
        fields.reserveCapacity(8)
        var parsed: [Meminfo.Field] = []
        parsed.reserveCapacity(previous?.fields.count ?? 64)
        var malformed = 0
        while let line = lines.next() {
            guard let colon = line.firstIndex(of: asciiColon), colon > line.startIndex else {
                if line.contains(where: { !isBlank($0) }) { malformed += 1 }
                continue
            }
            splitFields(line[(colon + 1)...], into: &fields)
            if isLegacyTableRow(fields) { continue }
            guard let field = field(key: line[..<colon], values: fields, reusing: previous, at: parsed.count)
            else { malformed += 1; continue }
            parsed.append(field)
        }
        return Result(meminfo: Meminfo(fields: parsed), malformedLines: malformed)
    }

    private static func field(
        key: ArraySlice<UInt8>, values: [ArraySlice<UInt8>], reusing previous: Meminfo?, at index: Int
    ) -> Meminfo.Field? {
        guard let number = values.first.flatMap(parseUInt64) else { return nil }
        let name: String
        if let previous, index < previous.fields.count,
           previous.fields[index].name.utf8.elementsEqual(key) {
            name = previous.fields[index].name
        } else {
            guard !key.contains(where: isBlank) else { return nil }
            name = decodeName(key)
        }
        switch values.count {
        case 1: return .init(name: name, value: number, isBytes: false)
        case 2 where fieldEquals(values[1], "kB"):
            let (bytes, overflow) = number.multipliedReportingOverflow(by: 1024)
            return overflow ? nil : .init(name: name, value: bytes, isBytes: true)
        default: return nil
        }
    }

    /// 2.4 kernels start meminfo with a byte table (`Mem:  3423940608 …`) whose
    /// rows carry several numbers and no unit; the same data follows as fields.
    private static func isLegacyTableRow(_ values: [ArraySlice<UInt8>]) -> Bool {
        values.count > 2
            && (values.allSatisfy { parseUInt64($0) != nil }
                || values.allSatisfy { $0.last == asciiColon })
    }
}
