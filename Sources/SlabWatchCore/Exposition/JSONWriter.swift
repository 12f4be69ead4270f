/// A minimal streaming JSON writer: commas are placed automatically, strings
/// escaped per RFC 8259. Compact output, one document per buffer.
public struct JSONWriter: Sendable {
    private var text: TextBuffer
    private var needsComma = false

    public init(reservingCapacity capacity: Int = 0) {
        text = TextBuffer(reservingCapacity: capacity)
    }

    public var bytes: [UInt8] { text.bytes }

    private mutating func separate() {
        if needsComma { text.append(byte: 0x2C) }
        needsComma = true
    }

    public mutating func beginObject() { separate(); text.append(byte: 0x7B); needsComma = false }
    public mutating func endObject() { text.append(byte: 0x7D); needsComma = true }
    public mutating func beginArray() { separate(); text.append(byte: 0x5B); needsComma = false }
    public mutating func endArray() { text.append(byte: 0x5D); needsComma = true }
    public mutating func newline() { text.append(byte: 0x0A) }

    public mutating func key(_ name: StaticString) {
        separate()
        text.append(byte: 0x22); text.append(name); text.append("\":")
        needsComma = false
    }

    public mutating func key(_ name: String) {
        separate()
        escaped(name)
        text.append(byte: 0x3A)
        needsComma = false
    }

    public mutating func string(_ value: String?) {
        separate()
        guard let value else { text.append("null"); return }
        escaped(value)
    }

    public mutating func number(_ value: UInt64?) {
        separate()
        guard let value else { text.append("null"); return }
        text.append(value)
    }

    public mutating func number(_ value: Double?) {
        separate()
        guard let value, value.isFinite else { text.append("null"); return }
        text.append(value)
    }

    public mutating func bool(_ value: Bool?) {
        separate()
        guard let value else { text.append("null"); return }
        text.append(value ? "true" : "false")
    }

    /// RFC 8259's escapes, and `\u00XX` for DEL and the C1 controls too,
    /// which JSON may carry raw: a document printed on a terminal (`curl
    /// /snapshot`, `attribute --json`) must not start an escape sequence
    /// (U+009B is CSI) with a process's or a module's name.
    private mutating func escaped(_ value: String) {
        text.append(byte: 0x22)
        defer { text.append(byte: 0x22) }
        // 0xC2 leads the UTF-8 of U+0080–U+00BF, the C1 controls among them.
        if !containsByte(value, where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C || $0 == 0x7F || $0 == 0xC2 }) {
            text.append(value)  // the common case: one bulk copy
            return
        }
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        for scalar in value.unicodeScalars {
            switch scalar.value {
            case 0x22: text.append("\\\"")
            case 0x5C: text.append("\\\\")
            case 0x0A: text.append("\\n")
            case 0x0D: text.append("\\r")
            case 0x09: text.append("\\t")
            case 0..<0x20, 0x7F...0x9F:
                text.append("\\u00")
                text.append(byte: hex[Int(scalar.value >> 4)]); text.append(byte: hex[Int(scalar.value & 0xF)])
            default:
                UTF8.encode(scalar) { text.append(byte: $0) }
            }
        }
    }
}
