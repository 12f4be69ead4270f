/// Parses /proc/slabinfo as written by SLAB and SLUB, versions 1.1, 2.0 and 2.1.
///
/// Layouts are told apart by the version line, and columns are taken by
/// position, never from the `# name` header (2.0's header lies about the order
/// of its tunables). Columns after the ones slabwatch uses (tunables values,
/// `globalstat`, `cpustat`, anything a future kernel appends) are ignored.
///
/// - 2.x: `name active num objsize objperslab pagesperslab : tunables … : slabdata active_slabs num_slabs …`
/// - 1.1: `name active num objsize active_slabs num_slabs pagesperslab [: …]`; names may hold spaces.
/// - 1.0 has no object size, so no footprint can be derived: it is refused.
public enum SlabInfoParser: Sendable {
    public struct Result: Sendable, Equatable {
        /// The version as printed, e.g. `2.1` or `1.1 (SMP)`.
        public var version: String
        /// Caches in the kernel's order; duplicate names disambiguated.
        public var caches: [SlabCache]
        /// Lines that could not be parsed and were skipped.
        public var malformedLines: Int
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case empty
        case missingVersionLine
        case unsupportedVersion(String)

        public var description: String {
            switch self {
            case .empty: "file is empty"
            case .missingVersionLine: "first line is not 'slabinfo - version: …'"
            case .unsupportedVersion(let v):
                "slabinfo version \(v) is not supported (1.1, 2.0 and 2.1 are)"
            }
        }
    }

    private enum Layout { case v1, v2 }

    /// - Parameters:
    ///   - pageSize: bytes per page, to turn slab counts into footprints.
    ///   - previous: the last sample's caches; names whose bytes are unchanged are
    ///     reused instead of allocated again (most ticks see the same caches).
    /// - Throws: `Failure` when the file as a whole is unusable. Bad lines do not throw.
    public static func parse(
        _ bytes: ArraySlice<UInt8>, pageSize: UInt64, previous: [SlabCache] = []
    ) throws(Failure) -> Result {
        var lines = LineCursor(bytes)
        guard let first = lines.next() else { throw .empty }
        let (layout, version) = try versionLine(first)
        var fields: [ArraySlice<UInt8>] = []
        fields.reserveCapacity(32)
        var caches: [SlabCache] = []
        caches.reserveCapacity(max(previous.count, 64))
        var malformed = 0
        while let line = lines.next() {
            splitFields(line, into: &fields)
            if fields.isEmpty { continue }
            let reuse = caches.count < previous.count ? previous[caches.count].name : nil
            let cache = switch layout {
            case .v2: cacheV2(fields, pageSize: pageSize, reusing: reuse)
            case .v1: cacheV1(fields, pageSize: pageSize, reusing: reuse)
            }
            // The header (`# name <active_objs> …`) is the only comment, and
            // its columns are not numbers; a cache may well be named `#2`.
            if let cache { caches.append(cache) } else if fields[0].first != UInt8(ascii: "#") { malformed += 1 }
        }
        disambiguateDuplicates(&caches)
        return Result(version: version, caches: caches, malformedLines: malformed)
    }

    private static func versionLine(
        _ line: ArraySlice<UInt8>
    ) throws(Failure) -> (Layout, String) {
        let prefix = "slabinfo - version:".utf8
        guard line.starts(with: prefix) else { throw .missingVersionLine }
        var fields: [ArraySlice<UInt8>] = []
        fields.reserveCapacity(4)
        splitFields(line.dropFirst(prefix.count), into: &fields)
        // Usually one short field ("2.1"): a small string, no allocation.
        let version = fields.count == 1 ? decodeName(fields[0]) : fields.map { decodeName($0) }.joined(separator: " ")
        guard let number = fields.first else { throw .unsupportedVersion(version) }
        if number.starts(with: "2.".utf8) { return (.v2, version) }
        if fieldEquals(number, "1.1") { return (.v1, version) }
        throw .unsupportedVersion(version)
    }

    private static func cacheV2(
        _ fields: [ArraySlice<UInt8>], pageSize: UInt64, reusing: String?
    ) -> SlabCache? {
        let colon = fields.firstIndex { fieldEquals($0, ":") } ?? fields.count
        guard colon >= 6,
              let slabdata = fields.firstIndex(where: { fieldEquals($0, "slabdata") }),
              slabdata + 2 < fields.count,
              let active = parseUInt64(fields[colon - 5]),
              let total = parseUInt64(fields[colon - 4]),
              let size = parseUInt64(fields[colon - 3]),
              let perSlab = parseUInt64(fields[colon - 2]),
              let pages = parseUInt64(fields[colon - 1]),
              let activeSlabs = parseUInt64(fields[slabdata + 1]),
              let slabs = parseUInt64(fields[slabdata + 2])
        else { return nil }
        return SlabCache(
            name: name(fields[0..<(colon - 5)], reusing: reusing),
            activeObjects: active, objects: total, objectSize: size,
            objectsPerSlab: perSlab, pagesPerSlab: pages,
            activeSlabs: activeSlabs, slabs: slabs, pageSize: pageSize)
    }

    private static func cacheV1(
        _ fields: [ArraySlice<UInt8>], pageSize: UInt64, reusing: String?
    ) -> SlabCache? {
        let colon = fields.firstIndex { fieldEquals($0, ":") } ?? fields.count
        guard colon >= 7,
              let active = parseUInt64(fields[colon - 6]),
              let total = parseUInt64(fields[colon - 5]),
              let size = parseUInt64(fields[colon - 4]),
              let activeSlabs = parseUInt64(fields[colon - 3]),
              let slabs = parseUInt64(fields[colon - 2]),
              let pages = parseUInt64(fields[colon - 1])
        else { return nil }
        return SlabCache(
            name: name(fields[0..<(colon - 6)], reusing: reusing),
            activeObjects: active, objects: total, objectSize: size,
            objectsPerSlab: slabs > 0 ? total / slabs : 0, pagesPerSlab: pages,
            activeSlabs: activeSlabs, slabs: slabs, pageSize: pageSize)
    }

    /// The name is every field before the numeric columns (2.4 names hold spaces).
    private static func name(
        _ parts: ArraySlice<ArraySlice<UInt8>>, reusing: String?
    ) -> String {
        if parts.count == 1, let reusing, reusing.utf8.elementsEqual(parts[parts.startIndex]) {
            return reusing
        }
        return parts.map { decodeName($0) }.joined(separator: " ")
    }

    /// Two lines with one name must neither break a scrape nor merge silently:
    /// the second becomes `name#2`, the third `name#3`, in file order (a
    /// number a real cache already has is skipped).
    ///
    /// Linear in the lines: each name remembers the next number to try, so
    /// 32,000 copies of one name do not test 1 + 2 + … + 32,000 candidates.
    static func disambiguateDuplicates(_ caches: inout [SlabCache]) {
        var taken = Set<String>(minimumCapacity: caches.count)
        var hasDuplicates = false
        for cache in caches where !taken.insert(cache.name).inserted { hasDuplicates = true }
        guard hasDuplicates else { return }
        var kept = Set<String>()
        var nextNumber: [String: Int] = [:]
        for index in caches.indices {
            let base = caches[index].name
            if kept.insert(base).inserted { continue }
            // The numbers before `nextNumber` are taken already: taken only grows.
            var n = nextNumber[base, default: 2]
            while taken.contains("\(base)#\(n)") { n += 1 }
            caches[index].name = "\(base)#\(n)"
            taken.insert(caches[index].name)
            nextNumber[base] = n + 1
        }
    }
}
