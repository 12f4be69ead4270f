/// Reproducible random numbers for property tests: SplitMix64, so a failing
/// seed printed by a test gives the same inputs again.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Text an attacker would put in a cache name or a server's answer: mostly
/// controls (C0, ESC, DEL, C1 such as CSI U+009B and OSC U+009D), escape
/// sequences, CRLF, combining marks and other scripts, with plain ASCII between.
public enum HostileText: Sendable {
    public static func make(length: Int, using generator: inout SeededGenerator) -> String {
        var scalars = String.UnicodeScalarView()
        while scalars.count < length {
            switch Int.random(in: 0..<8, using: &generator) {
            case 0: scalars.append(Unicode.Scalar(UInt8.random(in: 0x00...0x1F, using: &generator)))
            case 1: scalars.append(Unicode.Scalar(UInt32.random(in: 0x7F...0x9F, using: &generator))!)
            case 2: scalars.append(contentsOf: ["\u{1b}]0;title\u{7}", "\u{1b}[31m", "\u{9b}2J", "\u{9d}0;t\u{9c}", "\r\n"]
                .randomElement(using: &generator)!.unicodeScalars)
            case 3: scalars.append(contentsOf: "\u{301}é漢🙂\u{200d}\u{a0}".unicodeScalars.randomElement(using: &generator).map { [$0] } ?? [])
            case 4: scalars.append(Unicode.Scalar(UInt32.random(in: 0xA0...0xD7FF, using: &generator)) ?? "x")
            default: scalars.append(Unicode.Scalar(UInt8.random(in: 0x20...0x7E, using: &generator)))
            }
        }
        return String(scalars)
    }

    /// The controls a terminal acts on: C0, DEL and C1.
    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }
}
