import Foundation
import Testing
@testable import SlabWatchCore

/// The one-pass parsers (slabinfo, meminfo, the fs counters) read exactly
/// what the field-splitting parsers they replaced read: the old ones are kept
/// here, as they were, as the oracle, and both are run on every real
/// capture and on thousands of generated hostile lines. They also allocate
/// nothing when handed a previous sample and its storage: the names and arrays
/// come back reused.
struct OnePassParserTests {
    static let slabinfoCaptures = [
        "chromeos-syslogs-6.6.119-x86_64", "coreos-sosreport-4.18.0-80.11.2.el8_0.x86_64", "d2000-2.6.16-arm720t-slab",
        "innofirmware-4.4.0-xilinx-armv7-slab", "lkml-2.2.19-6.2.7-slab-v1.0", "lkml-2.4.15-pre1-smp-slab-v1.1",
        "lkml-2.4.19-pre9-ac3-slab-v1.1-statistics", "lkml-2.6.12-rc6-mm1-x86_64-slab-v2.1-statistics",
        "lkml-2.6.5-x86_64-slab-v2.0-statistics", "local-6.18-firecracker", "pcp-qa-meminfo-root-001",
        "pcp-qa-meminfo-root-007", "prometheus-procfs-fixtures-5.8-era",
    ]

    @Test(arguments: slabinfoCaptures)
    func slabinfoOfEveryCaptureAsBefore(_ folder: String) throws {
        let bytes = try Fixtures.capture(folder, "proc/slabinfo")
        #expect(outcome { try SlabInfoParser.parse(bytes, pageSize: 4096) }
                == outcome { try FieldSplittingSlabInfoParser.parse(bytes, pageSize: 4096) })
    }

    @Test(arguments: slabinfoCaptures.filter { FileManager.default.fileExists(atPath: Fixtures.captures.appendingPathComponent($0).appendingPathComponent("proc/meminfo").path) })
    func meminfoOfEveryCaptureAsBefore(_ folder: String) throws {
        let bytes = try Fixtures.capture(folder, "proc/meminfo")
        #expect(MeminfoParser.parse(bytes) == FieldSplittingMeminfoParser.parse(bytes))
    }

    /// Lines made of the tokens real and broken files hold (names, numbers,
    /// `:`, `slabdata`, `tunables`, tabs, CR, NUL, bytes beyond ASCII, numbers
    /// past UInt64), under each version line, parse as before: same caches,
    /// names, counts, malformed lines and failures. Seeded: the same lines every run.
    @Test(arguments: ["2.1", "2.0", "1.1 (SMP)", "1.0", "3.0", ""])
    func generatedSlabinfoAsBefore(_ version: String) {
        var generator = HostileLines(seed: UInt64(version.utf8.reduce(7) { $0 &* 31 &+ UInt64($1) }))
        for _ in 0..<3_000 {
            var text = version.isEmpty ? generator.line() : "slabinfo - version: \(version)\n"
            for _ in 0..<Int.random(in: 0...6, using: &generator) { text += generator.line() }
            let bytes = ArraySlice(Array(text.utf8))
            #expect(outcome { try SlabInfoParser.parse(bytes, pageSize: 4096) }
                    == outcome { try FieldSplittingSlabInfoParser.parse(bytes, pageSize: 4096) }, "\(text.debugDescription)")
        }
    }

    @Test func generatedMeminfoAndCountersAsBefore() {
        var generator = HostileLines(seed: 42)
        for _ in 0..<5_000 {
            var text = ""
            for _ in 0..<Int.random(in: 0...4, using: &generator) { text += generator.meminfoLine() }
            let bytes = ArraySlice(Array(text.utf8))
            #expect(MeminfoParser.parse(bytes) == FieldSplittingMeminfoParser.parse(bytes), "\(text.debugDescription)")
            #expect(outcome { try FSCountersParser.inodeNr(bytes) } == outcome { try FieldSplittingCounters.inodeNr(bytes) })
            #expect(outcome { try FSCountersParser.dentryState(bytes) } == outcome { try FieldSplittingCounters.dentryState(bytes) })
            #expect(outcome { try FSCountersParser.fileNr(bytes) } == outcome { try FieldSplittingCounters.fileNr(bytes) })
        }
    }

    /// A sample parsed with the previous one and an old sample's storage
    /// reuses that storage and every unchanged name; the previous sample and
    /// a holder of the old storage see their values unchanged.
    @Test func storageAndNamesAreReusedAndHoldersKeepTheirValues() throws {
        let bytes = try Fixtures.capture("local-6.18-firecracker", "proc/slabinfo")
        let first = try SlabInfoParser.parse(bytes, pageSize: 4096)
        let second = try SlabInfoParser.parse(bytes, pageSize: 4096, previous: first.caches)
        var old = try SlabInfoParser.parse(bytes, pageSize: 4096)
        let oldStorage = old.caches.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        var handedBack: [SlabCache] = []
        swap(&handedBack, &old.caches)
        let third = try SlabInfoParser.parse(bytes, pageSize: 4096, previous: second.caches, reusing: consume handedBack)
        #expect(third.caches.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) } == oldStorage)
        #expect(third == first && second == first)
        for (name, before) in zip(third.caches.map(\.name), second.caches.map(\.name)) {
            #expect(name.utf8.withContiguousStorageIfAvailable { UInt(bitPattern: $0.baseAddress) }
                    == before.utf8.withContiguousStorageIfAvailable { UInt(bitPattern: $0.baseAddress) }
                    || name.utf8.count <= 15, "\(name) not reused (names of 15 bytes or fewer are stored inline)")
        }
        // Storage still held by someone is copied, never written under them.
        let held = second.caches
        let fourth = try SlabInfoParser.parse(ArraySlice(text: "slabinfo - version: 2.1\n"), pageSize: 4096, reusing: held)
        #expect(fourth.caches.isEmpty && held == second.caches && held.count == 235)
    }

    /// The generated file's lines stay apart when their names repeat: the
    /// previous sample's names are only trusted to be distinct where every one
    /// was reused at its own position.
    @Test func aDuplicateArrivingBesideReusedNamesIsStillNumbered() throws {
        let header = "slabinfo - version: 2.1\n"
        let line = { (name: String) in "\(name) 1 1 8 1 1 : tunables 0 0 0 : slabdata 1 1 0\n" }
        let first = try SlabInfoParser.parse(ArraySlice(text: header + line("a") + line("b")), pageSize: 4096)
        let second = try SlabInfoParser.parse(ArraySlice(text: header + line("a") + line("b") + line("a")),
                                              pageSize: 4096, previous: first.caches)
        #expect(second.caches.map(\.name) == ["a", "b", "a#2"])
        let third = try SlabInfoParser.parse(ArraySlice(text: header + line("a") + line("a")), pageSize: 4096,
                                             previous: first.caches)
        #expect(third.caches.map(\.name) == ["a", "a#2"])
    }
}

// MARK: comparing outcomes

/// A parse's outcome, comparable: its value, or what it threw.
private enum Outcome<Value: Equatable>: Equatable {
    case value(Value)
    case failure(String)
}

private func outcome<Value: Equatable>(_ parse: () throws -> Value) -> Outcome<Value> {
    do { return .value(try parse()) } catch { return .failure("\(error)") }
}

/// Lines from the pieces /proc files are made of, good and broken, from a
/// seeded generator (SplitMix64).
private struct HostileLines: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    static let names = ["dentry", "kmalloc-32", "a", "file lock cache", "size-4096(DMA)", "#2", "#", "slabdata", "tunables",
                        ":", ":x", "x:", "::", "slabdata:", "é", "\u{FF}", "dup", "dup#2", "x\u{00}y", "1.1", "2.1", ""]
    static let numbers = ["0", "1", "7", "42", "4096", "18446744073709551615", "18446744073709551616",
                          "99999999999999999999", "-1", "+1", "1O", "0x10", "00012"]
    static let separators = [" ", " ", " ", "  ", "\t", " \t ", "\r", "\u{0B}", "\u{0C}"]

    mutating func pick(_ choices: [String]) -> String { choices.randomElement(using: &self)! }

    /// A slabinfo line: mostly the shape of a real one, each part sometimes
    /// dropped, doubled, swapped for another token or broken.
    mutating func line() -> String {
        var tokens: [String] = []
        tokens.append(pick(Self.names))
        if Bool.random(using: &self) { tokens.append(pick(Self.names)) }
        for _ in 0..<Int.random(in: 3...7, using: &self) { tokens.append(pick(Self.numbers)) }
        if Int.random(in: 0..<10, using: &self) > 0 { tokens += [":", "tunables", pick(Self.numbers), pick(Self.numbers), pick(Self.numbers)] }
        if Int.random(in: 0..<10, using: &self) > 0 { tokens += [":", "slabdata", pick(Self.numbers), pick(Self.numbers), pick(Self.numbers)] }
        if Int.random(in: 0..<4, using: &self) == 0 { tokens += [":", "globalstat", pick(Self.numbers)] }
        for _ in 0..<Int.random(in: 0...2, using: &self) {
            let index = Int.random(in: 0..<tokens.count, using: &self)
            switch Int.random(in: 0..<3, using: &self) {
            case 0: tokens.remove(at: index)
            case 1: tokens.insert(pick(Self.names + Self.numbers), at: index)
            default: tokens[index] = pick(Self.names + Self.numbers)
            }
            if tokens.isEmpty { break }
        }
        var text = Int.random(in: 0..<8, using: &self) == 0 ? pick(Self.separators) : ""
        for token in tokens { text += token + pick(Self.separators) }
        return text + (Int.random(in: 0..<20, using: &self) == 0 ? "" : "\n")
    }

    /// A meminfo (or fs counter) line: `Key: value [kB]`, broken in the same ways.
    mutating func meminfoLine() -> String {
        let keys = ["MemTotal", "Active(anon)", "HugePages_Total", "Mem", "Slab", "", "Two words", "é", "Key:x"]
        var text = Int.random(in: 0..<6, using: &self) == 0 ? "" : pick(keys) + ":"
        for _ in 0..<Int.random(in: 0...4, using: &self) {
            text += pick(Self.separators) + (Int.random(in: 0..<4, using: &self) == 0 ? pick(["kB", "MB", "x:", ":"]) : pick(Self.numbers))
        }
        return text + (Int.random(in: 0..<10, using: &self) == 0 ? "" : "\n")
    }
}

// MARK: the field-splitting parsers, as they were (the oracle)

/// Splits each line into an array of slices, then takes columns by index.
private enum FieldSplitting {
    static func isBlank(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0x0B || byte == 0x0C
    }

    struct LineCursor {
        private let bytes: ArraySlice<UInt8>
        private var position: Int

        init(_ bytes: ArraySlice<UInt8>) {
            self.bytes = bytes
            self.position = bytes.startIndex
        }

        mutating func next() -> ArraySlice<UInt8>? {
            guard position < bytes.endIndex else { return nil }
            let end = bytes[position...].firstIndex(of: 0x0A) ?? bytes.endIndex
            defer { position = end + 1 }
            return bytes[position..<end]
        }
    }

    static func splitFields(_ line: ArraySlice<UInt8>, into fields: inout [ArraySlice<UInt8>]) {
        fields.removeAll(keepingCapacity: true)
        var index = line.startIndex
        while index < line.endIndex {
            while index < line.endIndex, isBlank(line[index]) { index += 1 }
            let start = index
            while index < line.endIndex, !isBlank(line[index]) { index += 1 }
            if start < index { fields.append(line[start..<index]) }
        }
    }

    static func parseUInt64(_ field: ArraySlice<UInt8>) -> UInt64? {
        guard !field.isEmpty else { return nil }
        var value: UInt64 = 0
        for byte in field {
            let digit = byte &- 0x30
            guard digit < 10 else { return nil }
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times10.addingReportingOverflow(UInt64(digit))
            if o1 || o2 { return nil }
            value = sum
        }
        return value
    }

    static func fieldEquals(_ field: ArraySlice<UInt8>, _ text: String) -> Bool { field.elementsEqual(text.utf8) }

    static func decodeName(_ bytes: ArraySlice<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }
}

private enum FieldSplittingSlabInfoParser {
    typealias F = FieldSplitting
    private enum Layout { case v1, v2 }

    static func parse(_ bytes: ArraySlice<UInt8>, pageSize: UInt64) throws(SlabInfoParser.Failure) -> SlabInfoParser.Result {
        var lines = F.LineCursor(bytes)
        guard let first = lines.next() else { throw .empty }
        let (layout, version) = try versionLine(first)
        var fields: [ArraySlice<UInt8>] = []
        var caches: [SlabCache] = []
        var malformed = 0
        while let line = lines.next() {
            F.splitFields(line, into: &fields)
            if fields.isEmpty { continue }
            let cache = switch layout {
            case .v2: cacheV2(fields, pageSize: pageSize)
            case .v1: cacheV1(fields, pageSize: pageSize)
            }
            if let cache { caches.append(cache) } else if fields[0].first != UInt8(ascii: "#") { malformed += 1 }
        }
        SlabInfoParser.disambiguateDuplicates(&caches)
        return SlabInfoParser.Result(version: version, caches: caches, malformedLines: malformed)
    }

    private static func versionLine(_ line: ArraySlice<UInt8>) throws(SlabInfoParser.Failure) -> (Layout, String) {
        let prefix = "slabinfo - version:".utf8
        guard line.starts(with: prefix) else { throw .missingVersionLine }
        var fields: [ArraySlice<UInt8>] = []
        F.splitFields(line.dropFirst(prefix.count), into: &fields)
        let version = fields.count == 1 ? F.decodeName(fields[0]) : fields.map { F.decodeName($0) }.joined(separator: " ")
        guard let number = fields.first else { throw .unsupportedVersion(version) }
        if number.starts(with: "2.".utf8) { return (.v2, version) }
        if F.fieldEquals(number, "1.1") { return (.v1, version) }
        throw .unsupportedVersion(version)
    }

    private static func cacheV2(_ fields: [ArraySlice<UInt8>], pageSize: UInt64) -> SlabCache? {
        let colon = fields.firstIndex { F.fieldEquals($0, ":") } ?? fields.count
        guard colon >= 6,
              let slabdata = fields.firstIndex(where: { F.fieldEquals($0, "slabdata") }),
              slabdata + 2 < fields.count,
              let active = F.parseUInt64(fields[colon - 5]),
              let total = F.parseUInt64(fields[colon - 4]),
              let size = F.parseUInt64(fields[colon - 3]),
              let perSlab = F.parseUInt64(fields[colon - 2]),
              let pages = F.parseUInt64(fields[colon - 1]),
              let activeSlabs = F.parseUInt64(fields[slabdata + 1]),
              let slabs = F.parseUInt64(fields[slabdata + 2])
        else { return nil }
        return SlabCache(
            name: fields[0..<(colon - 5)].map { F.decodeName($0) }.joined(separator: " "),
            activeObjects: active, objects: total, objectSize: size, objectsPerSlab: perSlab, pagesPerSlab: pages,
            activeSlabs: activeSlabs, slabs: slabs, pageSize: pageSize)
    }

    private static func cacheV1(_ fields: [ArraySlice<UInt8>], pageSize: UInt64) -> SlabCache? {
        let colon = fields.firstIndex { F.fieldEquals($0, ":") } ?? fields.count
        guard colon >= 7,
              let active = F.parseUInt64(fields[colon - 6]),
              let total = F.parseUInt64(fields[colon - 5]),
              let size = F.parseUInt64(fields[colon - 4]),
              let activeSlabs = F.parseUInt64(fields[colon - 3]),
              let slabs = F.parseUInt64(fields[colon - 2]),
              let pages = F.parseUInt64(fields[colon - 1])
        else { return nil }
        return SlabCache(
            name: fields[0..<(colon - 6)].map { F.decodeName($0) }.joined(separator: " "),
            activeObjects: active, objects: total, objectSize: size,
            objectsPerSlab: slabs > 0 ? total / slabs : 0, pagesPerSlab: pages,
            activeSlabs: activeSlabs, slabs: slabs, pageSize: pageSize)
    }
}

private enum FieldSplittingMeminfoParser {
    typealias F = FieldSplitting

    static func parse(_ bytes: ArraySlice<UInt8>) -> MeminfoParser.Result {
        var lines = F.LineCursor(bytes)
        var fields: [ArraySlice<UInt8>] = []
        var parsed: [Meminfo.Field] = []
        var malformed = 0
        while let line = lines.next() {
            guard let colon = line.firstIndex(of: 0x3A), colon > line.startIndex else {
                if line.contains(where: { !F.isBlank($0) }) { malformed += 1 }
                continue
            }
            F.splitFields(line[(colon + 1)...], into: &fields)
            if isLegacyTableRow(fields) { continue }
            guard let field = field(key: line[..<colon], values: fields) else { malformed += 1; continue }
            parsed.append(field)
        }
        return MeminfoParser.Result(meminfo: Meminfo(fields: parsed), malformedLines: malformed)
    }

    private static func field(key: ArraySlice<UInt8>, values: [ArraySlice<UInt8>]) -> Meminfo.Field? {
        guard let number = values.first.flatMap(F.parseUInt64) else { return nil }
        guard !key.contains(where: F.isBlank) else { return nil }
        let name = F.decodeName(key)
        switch values.count {
        case 1: return .init(name: name, value: number, isBytes: false)
        case 2 where F.fieldEquals(values[1], "kB"):
            let (bytes, overflow) = number.multipliedReportingOverflow(by: 1024)
            return overflow ? nil : .init(name: name, value: bytes, isBytes: true)
        default: return nil
        }
    }

    private static func isLegacyTableRow(_ values: [ArraySlice<UInt8>]) -> Bool {
        values.count > 2 && (values.allSatisfy { F.parseUInt64($0) != nil } || values.allSatisfy { $0.last == 0x3A })
    }
}

private enum FieldSplittingCounters {
    typealias F = FieldSplitting

    static func inodeNr(_ bytes: ArraySlice<UInt8>) throws(FSCountersParser.Failure) -> InodeCounts {
        let n = try numbers(bytes, atLeast: 2)
        return InodeCounts(inodes: n[0], freeInodes: n[1])
    }

    static func dentryState(_ bytes: ArraySlice<UInt8>) throws(FSCountersParser.Failure) -> DentryCounts {
        let n = try numbers(bytes, atLeast: 2)
        return DentryCounts(dentries: n[0], unusedDentries: n[1], negativeDentries: n.count > 4 ? n[4] : nil)
    }

    static func fileNr(_ bytes: ArraySlice<UInt8>) throws(FSCountersParser.Failure) -> FileHandleCounts {
        let n = try numbers(bytes, atLeast: 3)
        return FileHandleCounts(allocated: n[0], maximum: n[2])
    }

    private static func numbers(_ bytes: ArraySlice<UInt8>, atLeast: Int) throws(FSCountersParser.Failure) -> [UInt64] {
        var lines = F.LineCursor(bytes)
        let line = lines.next() ?? []
        var values: [UInt64] = []
        var fields: [ArraySlice<UInt8>] = []
        F.splitFields(line, into: &fields)
        var firstBadField: Int?
        for (index, field) in fields.enumerated() {
            if let value = F.parseUInt64(field) { values.append(value) } else if firstBadField == nil { firstBadField = index + 1 }
        }
        guard fields.count >= atLeast else { throw .wrongFieldCount(expected: atLeast, found: fields.count) }
        if let firstBadField { throw .notANumber(field: firstBadField) }
        return values
    }
}
