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

    private enum Layout {
        case v1, v2

        /// The numeric columns just before the first `:` (or the line's end),
        /// taken by position; the name is every field before them.
        var numericColumns: Int { self == .v2 ? 5 : 6 }
    }

    /// - Parameters:
    ///   - pageSize: bytes per page, to turn slab counts into footprints.
    ///   - previous: the last sample's caches (whose names are distinct, as in
    ///     every result); a name whose bytes are unchanged at its position is
    ///     reused instead of allocated again (most ticks see the same caches).
    ///   - storage: an array whose storage the result's caches reuse (emptied
    ///     first): the sampler hands back an old sample's, so that a steady
    ///     tick allocates nothing.
    /// - Throws: `Failure` when the file as a whole is unusable. Bad lines do not throw.
    public static func parse(
        _ bytes: ArraySlice<UInt8>, pageSize: UInt64, previous: [SlabCache] = [], reusing storage: consuming [SlabCache] = []
    ) throws(Failure) -> Result {
        try parse(bytes, pageSize: pageSize, previousCount: previous.count, previousName: { previous[$0].name }, reusing: storage)
    }

    /// The same with the last file's names, in its order, given apart: a
    /// reader that cuts its samples to the largest caches keeps the whole
    /// file's names, since the cut sample's are at other positions.
    public static func parse(
        _ bytes: ArraySlice<UInt8>, pageSize: UInt64, previousNames: [String], reusing storage: consuming [SlabCache] = []
    ) throws(Failure) -> Result {
        try parse(bytes, pageSize: pageSize, previousCount: previousNames.count, previousName: { previousNames[$0] }, reusing: storage)
    }

    private static func parse(
        _ bytes: ArraySlice<UInt8>, pageSize: UInt64, previousCount: Int, previousName: (Int) -> String,
        reusing storage: consuming [SlabCache]
    ) throws(Failure) -> Result {
        var caches = consume storage
        caches.removeAll(keepingCapacity: true)
        caches.reserveCapacity(max(previousCount, 64))
        let (version, malformed, namesAsBefore) = try bytes.withUnsafeBufferPointer { buffer throws(Failure) in
            try parse(buffer, pageSize: pageSize, previousCount: previousCount, previousName: previousName, into: &caches)
        }
        // Names that are the previous sample's, each at its own position, are
        // distinct already: only a changed cache set can hold a duplicate.
        if !namesAsBefore { disambiguateDuplicates(&caches) }
        return Result(version: version, caches: caches, malformedLines: malformed)
    }

    /// One pass over the file: each line's fields are scanned once, their
    /// numbers taken as the digits go by.
    private static func parse(
        _ bytes: UnsafeBufferPointer<UInt8>, pageSize: UInt64, previousCount: Int, previousName: (Int) -> String,
        into caches: inout [SlabCache]
    ) throws(Failure) -> (version: String, malformed: Int, namesAsBefore: Bool) {
        var lines = Lines(bytes)
        guard let first = lines.next() else { throw .empty }
        let (layout, version) = try versionLine(bytes, first)
        var malformed = 0
        var namesAsBefore = true
        // The fields before a line's first `:`: a ring of the last eight (the
        // numeric columns and the name's last field), on the stack.
        withUnsafeTemporaryAllocation(of: Field.self, capacity: LineFields.ringCapacity) { ring in
            while let line = lines.next() {
                let fields = LineFields(bytes, line, ring: ring.baseAddress!, needsSlabdata: layout == .v2)
                if fields.count == 0 { continue }
                let reuse = caches.count < previousCount ? previousName(caches.count) : nil
                if let cache = cache(fields, layout, bytes, pageSize: pageSize, reusing: reuse) {
                    namesAsBefore = namesAsBefore && reuse == cache.name
                    caches.append(cache)
                } else if bytes[fields.first.lowerBound] != UInt8(ascii: "#") {
                    // The header (`# name <active_objs> …`) is the only comment, and
                    // its columns are not numbers; a cache may well be named `#2`.
                    malformed += 1
                }
            }
        }
        return (version, malformed, namesAsBefore)
    }

    private static func versionLine(_ bytes: UnsafeBufferPointer<UInt8>, _ line: Range<Int>) throws(Failure) -> (Layout, String) {
        let prefix: StaticString = "slabinfo - version:"
        let prefixEnd = line.lowerBound + prefix.utf8CodeUnitCount
        guard prefixEnd <= line.upperBound, bytes.spells(prefix, at: line.lowerBound..<prefixEnd) else {
            throw .missingVersionLine
        }
        var fields = Fields(bytes, in: prefixEnd..<line.upperBound)
        guard let number = fields.next() else { throw .unsupportedVersion("") }
        // Usually one short field ("2.1"): a small string, no allocation.
        var version = bytes.decoded(number.range)
        while let more = fields.next() { version += " " + bytes.decoded(more.range) }
        if number.range.count >= 2, bytes.spells("2.", at: number.range.lowerBound..<number.range.lowerBound + 2) {
            return (.v2, version)
        }
        if bytes.spells("1.1", at: number.range) { return (.v1, version) }
        throw .unsupportedVersion(version)
    }

    /// The cache a line describes, or nil when its columns are not all there
    /// or not all numbers.
    /// - 2.x: the five columns before the first `:` are active, num, objsize,
    ///   objperslab, pagesperslab; the two after the first `slabdata` are
    ///   active_slabs and num_slabs.
    /// - 1.1: the six columns before the first `:` (or the line's end) are
    ///   active, num, objsize, active_slabs, num_slabs, pagesperslab.
    private static func cache(
        _ fields: LineFields, _ layout: Layout, _ bytes: UnsafeBufferPointer<UInt8>, pageSize: UInt64, reusing: String?
    ) -> SlabCache? {
        let end = fields.colon ?? fields.count
        let columns = layout.numericColumns
        guard end > columns,
              let c1 = fields.recent(end - columns).number, let c2 = fields.recent(end - columns + 1).number,
              let c3 = fields.recent(end - columns + 2).number, let c4 = fields.recent(end - columns + 3).number,
              let c5 = fields.recent(end - columns + 4).number
        else { return nil }
        let nameFields = end - columns
        switch layout {
        case .v2:
            guard let activeSlabs = fields.afterSlabdata.0?.number, let slabs = fields.afterSlabdata.1?.number else { return nil }
            return SlabCache(
                name: name(fields, nameFields, bytes, reusing: reusing),
                activeObjects: c1, objects: c2, objectSize: c3, objectsPerSlab: c4, pagesPerSlab: c5,
                activeSlabs: activeSlabs, slabs: slabs, pageSize: pageSize)
        case .v1:
            guard let pages = fields.recent(end - 1).number else { return nil }
            return SlabCache(
                name: name(fields, nameFields, bytes, reusing: reusing),
                activeObjects: c1, objects: c2, objectSize: c3,
                objectsPerSlab: c5 > 0 ? c2 / c5 : 0, pagesPerSlab: pages,
                activeSlabs: c4, slabs: c5, pageSize: pageSize)
        }
    }

    /// The name is every field before the numeric columns (2.4 names hold
    /// spaces), joined by one space.
    private static func name(
        _ fields: LineFields, _ count: Int, _ bytes: UnsafeBufferPointer<UInt8>, reusing: String?
    ) -> String {
        guard count > 1 else {
            if let reusing, bytes.spells(reusing, at: fields.first) { return reusing }
            return bytes.decoded(fields.first)
        }
        var parts = Fields(bytes, in: fields.first.lowerBound..<fields.recent(count - 1).range.upperBound)
        var name = parts.next().map { bytes.decoded($0.range) } ?? ""
        while let part = parts.next() { name += " " + bytes.decoded(part.range) }
        return name
    }

    /// What one pass over a line keeps: the first field, the index of the
    /// first `:` field and the fields before it (in a ring of the last eight:
    /// the numeric columns and the name's last field), and the two fields after
    /// the first `slabdata`. The pass stops once it has all of these.
    private struct LineFields {
        static let ringCapacity = 8
        private(set) var count = 0
        private(set) var first: Range<Int> = 0..<0
        private(set) var colon: Int?
        private(set) var afterSlabdata: (Field?, Field?) = (nil, nil)
        private let ring: UnsafeMutablePointer<Field>

        init(_ bytes: UnsafeBufferPointer<UInt8>, _ line: Range<Int>, ring: UnsafeMutablePointer<Field>, needsSlabdata: Bool) {
            self.ring = ring
            var slabdata: Int?
            var fields = Fields(bytes, in: line)
            while let field = fields.next() {
                defer { count += 1 }
                if count == 0 { first = field.range }
                if colon == nil {
                    (ring + count & (Self.ringCapacity - 1)).initialize(to: field)
                    if field.range.count == 1, bytes[field.range.lowerBound] == asciiColon { colon = count }
                }
                guard needsSlabdata else {
                    if colon != nil { break } else { continue }
                }
                if let index = slabdata {
                    if count == index + 1 { afterSlabdata.0 = field }
                    if count == index + 2 { afterSlabdata.1 = field }
                } else if field.number == nil, bytes.spells("slabdata" as StaticString, at: field.range) {
                    slabdata = count
                }
                if colon != nil, afterSlabdata.1 != nil { break }
            }
        }

        /// Field `index`, one of the last eight before the first `:` (or the line's end).
        func recent(_ index: Int) -> Field { ring[index & (Self.ringCapacity - 1)] }
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
