/// Byte-level scanning shared by the /proc parsers.
///
/// /proc files are ASCII; parsing bytes directly (instead of `String` splitting)
/// keeps a sample allocation-light. Every function here is total: bad input gives
/// `nil` or an empty result, never a trap.

@usableFromInline let asciiNewline: UInt8 = 0x0A
@usableFromInline let asciiColon: UInt8 = 0x3A

@inlinable func isBlank(_ byte: UInt8) -> Bool {
    byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0x0B || byte == 0x0C
}

/// Iterates the lines of a byte buffer (without their newlines) and allocates
/// nothing. A final line without a newline is still returned: a truncated file
/// yields its partial last line, which the parser then rejects on its own merits.
struct LineCursor {
    private let bytes: ArraySlice<UInt8>
    private var position: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.position = bytes.startIndex
    }

    mutating func next() -> ArraySlice<UInt8>? {
        guard position < bytes.endIndex else { return nil }
        let end = bytes[position...].firstIndex(of: asciiNewline) ?? bytes.endIndex
        defer { position = end + 1 }
        return bytes[position..<end]
    }
}

/// Splits a line on runs of any whitespace (spaces and tabs both occur in /proc).
/// `fields` is cleared and refilled so its storage is reused across lines.
@inlinable func splitFields(
    _ line: ArraySlice<UInt8>, into fields: inout [ArraySlice<UInt8>]
) {
    fields.removeAll(keepingCapacity: true)
    var index = line.startIndex
    while index < line.endIndex {
        while index < line.endIndex, isBlank(line[index]) { index += 1 }
        let start = index
        while index < line.endIndex, !isBlank(line[index]) { index += 1 }
        if start < index { fields.append(line[start..<index]) }
    }
}

/// Parses an unsigned decimal that must fill `field` entirely; nil on any other
/// character, on an empty field and on overflow past `UInt64.max`.
@inlinable func parseUInt64(_ field: ArraySlice<UInt8>) -> UInt64? {
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

/// Parses the leading unsigned decimal of a field and ignores what follows, for
/// sysfs values such as `1057 N0=1057`.
@inlinable func parseLeadingUInt64(_ bytes: ArraySlice<UInt8>) -> UInt64? {
    var fields: [ArraySlice<UInt8>] = []
    splitFields(bytes.prefix(64), into: &fields)
    return fields.first.flatMap(parseUInt64)
}

/// `true` when `field` spells exactly `text` (ASCII).
@inlinable func fieldEquals(_ field: ArraySlice<UInt8>, _ text: StaticString) -> Bool {
    guard field.count == text.utf8CodeUnitCount else { return false }
    return text.withUTF8Buffer { expected in
        var index = field.startIndex
        for byte in expected {
            if field[index] != byte { return false }
            index += 1
        }
        return true
    }
}

/// Decodes bytes as UTF-8, replacing invalid sequences, so a garbage name can
/// still be shown (escaped) instead of dropping the whole line.
@inlinable func decodeName(_ bytes: ArraySlice<UInt8>) -> String {
    String(decoding: bytes, as: UTF8.self)
}

/// Whether any UTF-8 byte of `text` satisfies `test`; scans contiguous storage
/// directly (the renderers ask this for every label value, every tick).
@inline(__always) func containsByte(_ text: String, where test: (UInt8) -> Bool) -> Bool {
    if let found = text.utf8.withContiguousStorageIfAvailable({ bytes in
        for byte in bytes where test(byte) { return true }
        return false
    }) {
        return found
    }
    return text.utf8.contains(where: test)
}
