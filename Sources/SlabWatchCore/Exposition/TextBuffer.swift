/// An append-only byte buffer for rendering text without intermediate Strings.
///
/// Shared by the Prometheus and JSON renderers; numbers are written digit by
/// digit so rendering a scrape body allocates only the buffer itself.
public struct TextBuffer: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(reservingCapacity capacity: Int = 0) {
        bytes.reserveCapacity(capacity)
    }

    public mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    public mutating func append(_ text: String) {
        bytes.append(contentsOf: text.utf8)
    }

    public mutating func append(byte: UInt8) {
        bytes.append(byte)
    }

    public mutating func append(_ value: UInt64) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var remaining = value
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[19 - count] = UInt8(remaining % 10) + 0x30
                remaining /= 10
                count += 1
            } while remaining > 0
            bytes.append(contentsOf: buffer[(20 - count)...])
        }
    }

    public mutating func append(_ value: Int) {
        if value < 0 { append(byte: UInt8(ascii: "-")) }
        append(UInt64(value.magnitude))
    }

    /// Shortest round-tripping decimal; `NaN`/`+Inf`/`-Inf` spelled as Prometheus does.
    public mutating func append(_ value: Double) {
        if value.isNaN { append("NaN" as StaticString); return }
        if value.isInfinite { append(value > 0 ? "+Inf" as StaticString : "-Inf"); return }
        if value == value.rounded(), abs(value) < 1e15 {
            append(Int(value))
            return
        }
        append(value.description)
    }
}
