/// Byte-level scanning shared by the /proc parsers.
///
/// /proc files are ASCII; the parsers walk the file's bytes once, through an
/// `UnsafeBufferPointer`, and take each field's number as its digits go by:
/// no `String` splitting and no array of slices, so parsing a sample
/// allocates nothing but the names it has not seen before. Every function here
/// is total: bad input gives `nil` or an empty result, never a trap.

@usableFromInline let asciiNewline: UInt8 = 0x0A
@usableFromInline let asciiColon: UInt8 = 0x3A

@inlinable func isBlank(_ byte: UInt8) -> Bool {
    byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0x0B || byte == 0x0C
}

/// Iterates the lines of a buffer as index ranges, without their newlines. A
/// final line without a newline is still returned: a truncated file yields
/// its partial last line, which the parser then rejects on its own merits.
struct Lines: IteratorProtocol {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var position: Int

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
        position = 0
    }

    mutating func next() -> Range<Int>? {
        guard position < bytes.count else { return nil }
        var end = position
        while end < bytes.count, bytes[end] != asciiNewline { end += 1 }
        defer { position = end + 1 }
        return position..<end
    }
}

/// A field of a line: a run of non-blank bytes (spaces and tabs both separate
/// fields in /proc), where it lies in the buffer, and its value when it is an
/// unsigned decimal.
struct Field {
    var range: Range<Int>
    /// The field as an unsigned decimal; nil when it holds anything but digits
    /// or exceeds `UInt64.max`.
    var number: UInt64?
}

/// Iterates the fields of one line, parsing each as a number as its bytes go by.
struct Fields: IteratorProtocol {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var position: Int
    private let end: Int

    init(_ bytes: UnsafeBufferPointer<UInt8>, in line: Range<Int>) {
        self.bytes = bytes
        position = line.lowerBound
        end = line.upperBound
    }

    mutating func next() -> Field? {
        while position < end, isBlank(bytes[position]) { position += 1 }
        guard position < end else { return nil }
        let start = position
        var value: UInt64? = 0
        while position < end, !isBlank(bytes[position]) {
            let digit = bytes[position] &- 0x30
            if let current = value {
                if digit < 10 {
                    let (times10, o1) = current.multipliedReportingOverflow(by: 10)
                    let (sum, o2) = times10.addingReportingOverflow(UInt64(digit))
                    value = o1 || o2 ? nil : sum
                } else {
                    value = nil
                }
            }
            position += 1
        }
        return Field(range: start..<position, number: value)
    }
}

extension UnsafeBufferPointer<UInt8> {
    /// `true` when the bytes in `range` spell exactly `text` (ASCII).
    func spells(_ text: StaticString, at range: Range<Int>) -> Bool {
        guard range.count == text.utf8CodeUnitCount else { return false }
        return text.withUTF8Buffer { expected in
            var index = range.lowerBound
            for byte in expected {
                if self[index] != byte { return false }
                index += 1
            }
            return true
        }
    }

    /// `true` when the bytes in `range` are exactly `name`'s UTF-8.
    func spells(_ name: String, at range: Range<Int>) -> Bool {
        let bytes = UnsafeBufferPointer(rebasing: self[range])
        // A native string (every name a parser made) is contiguous: no copy.
        return name.utf8.withContiguousStorageIfAvailable { expected in
            // Lengths first, then a plain loop: most names differ in length or
            // early, and `elementsEqual`'s iterators cost more than the bytes.
            guard expected.count == bytes.count else { return false }
            for index in 0..<bytes.count where expected[index] != bytes[index] { return false }
            return true
        } ?? name.utf8.elementsEqual(bytes)
    }

    /// The bytes in `range` decoded as UTF-8, invalid sequences replaced, so a
    /// garbage name can still be shown (escaped) instead of dropping its line.
    func decoded(_ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: self[range]), as: UTF8.self)
    }
}

/// Parses the leading unsigned decimal of a file and ignores what follows, for
/// sysfs values such as `1057 N0=1057`.
func parseLeadingUInt64(_ bytes: ArraySlice<UInt8>) -> UInt64? {
    bytes.prefix(64).withUnsafeBufferPointer { buffer in
        var fields = Fields(buffer, in: 0..<buffer.count)
        return fields.next()?.number
    }
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
