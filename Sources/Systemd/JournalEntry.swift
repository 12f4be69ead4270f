import Glibc

/// One entry in journald's native protocol (systemd's "Native Journal
/// Protocol", what `sd_journal_sendv` writes): `NAME=value\n` for each field,
/// and for a value that holds a newline the binary-safe
/// `NAME\n<length as 64-bit little-endian><value>\n`. Pure bytes; `Journal` sends them.
struct JournalEntry {
    /// The whole entry, ready for one datagram or one sealed memfd.
    let bytes: [UInt8]

    /// - Throws: `SystemdError` (EINVAL) for no fields at all, or a name journald
    ///   would drop without a word (see `isValidFieldName`).
    init(_ fields: [(name: String, value: String)]) throws(SystemdError) {
        guard !fields.isEmpty else { throw SystemdError(call: "a journal entry with no fields", errno: EINVAL) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 10 })
        for field in fields {
            guard Self.isValidFieldName(field.name) else {
                throw SystemdError(call: "journal field name '\(field.name)' (A-Z, 0-9 and _, at most 64)", errno: EINVAL)
            }
            bytes += field.name.utf8
            if field.value.utf8.contains(UInt8(ascii: "\n")) {
                bytes.append(UInt8(ascii: "\n"))
                withUnsafeBytes(of: UInt64(field.value.utf8.count).littleEndian) { bytes += $0 }
            } else {
                bytes.append(UInt8(ascii: "="))
            }
            bytes += field.value.utf8
            bytes.append(UInt8(ascii: "\n"))
        }
        self.bytes = bytes
    }

    /// journald keeps a field only when its name is 1 to 64 of `A-Z`, `0-9`
    /// and `_`, starts with neither a digit nor `_` (those are the fields
    /// journald itself vouches for): `journal_field_valid` in systemd.
    static func isValidFieldName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...64).contains(bytes.count), bytes[0] != UInt8(ascii: "_"), !isDigit(bytes[0]) else { return false }
        return bytes.allSatisfy { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) || isDigit($0) || $0 == UInt8(ascii: "_") }
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }
}
