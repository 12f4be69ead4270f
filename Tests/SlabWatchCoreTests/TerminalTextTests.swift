import Testing
import TestSupport
@testable import SlabWatchCore

/// Text from outside shown on a terminal: no control character (C0, ESC,
/// DEL, C1) survives, whatever the input; everything else is kept.
struct TerminalTextTests {
    @Test(arguments: [
        ("plain kmalloc-32", "plain kmalloc-32"),
        ("\u{1b}]0;pwned\u{7}", "?]0;pwned?"),
        ("a\u{9b}31mb", "a?31mb"),  // C1 CSI: one scalar starts a sequence
        ("\u{9d}0;title\u{9c}", "?0;title?"),  // C1 OSC … ST
        ("line\r\nnext\u{7f}", "line??next?"),
        ("é漢🙂\u{a0}", "é漢🙂\u{a0}"),  // U+00A0 is the first scalar after C1: kept
    ])
    func controlsBecomeQuestionMarks(_ text: String, _ shown: String) {
        #expect(TerminalText.printable(text) == shown)
    }

    /// 2,000 generated strings, mostly controls and escape sequences.
    @Test func noControlSurvivesGeneratedText() {
        var generator = SeededGenerator(seed: 20)
        var failures: [String] = []
        for _ in 0..<2000 {
            let text = HostileText.make(length: Int.random(in: 0...40, using: &generator), using: &generator)
            let shown = TerminalText.printable(text)
            // No control left, and one scalar for one: nothing else is lost, nothing shifts.
            if shown.unicodeScalars.contains(where: HostileText.isControl)
                || Array(shown.unicodeScalars) != text.unicodeScalars.map({ HostileText.isControl($0) ? "?" : $0 }) {
                failures.append(text.debugDescription)
            }
        }
        #expect(failures.isEmpty, "\(failures.count) of 2000, first: \(failures.first ?? "")")
    }

    /// Generated cache names through the whole top screen: without colour no
    /// control at all reaches a line; with colour only top's own SGR codes.
    @Test func noControlFromANameReachesAScreenLine() {
        var generator = SeededGenerator(seed: 13)
        var failures: [String] = []
        for _ in 0..<200 {
            let caches = (0..<5).map { index in
                SlabCache(name: HostileText.make(length: Int.random(in: 1...30, using: &generator), using: &generator) + "\(index)",
                          activeObjects: 1, objects: 1, objectSize: 8, objectsPerSlab: 1, pagesPerSlab: 1,
                          activeSlabs: 1, slabs: UInt64(index + 1), pageSize: 4096, reclaimable: nil)
            }
            let sample = Sample(timestampMilliseconds: 0, caches: caches)
            var options = TopView.Options()
            options.width = 120
            options.source = HostileText.make(length: 20, using: &generator)
            options.filterText = ""
            let plain = TopView.render(sample: sample, ring: SampleRing(), report: .init(), options: options).joined(separator: "\n")
            if plain.unicodeScalars.contains(where: { HostileText.isControl($0) && $0 != "\n" }) { failures.append(plain.debugDescription) }
            options.color = true
            let colored = TopView.render(sample: sample, ring: SampleRing(), report: .init(), options: options).joined()
            if Self.withoutStyle(colored).contains(where: HostileText.isControl) { failures.append(colored.debugDescription) }
        }
        #expect(failures.isEmpty, "\(failures.count) of 400 screens, first: \(failures.first ?? "")")
    }

    /// The scalars of `text` without SGR sequences (ESC [ digits/; m). By
    /// scalar, not Character: a name starting with a combining mark joins
    /// the `m` before it into one Character.
    static func withoutStyle(_ text: String) -> [Unicode.Scalar] {
        var scalars = Array(text.unicodeScalars)[...]
        var kept: [Unicode.Scalar] = []
        while let scalar = scalars.popFirst() {
            if scalar == "\u{1b}", scalars.first == "[" {
                let end = scalars.dropFirst().firstIndex { !("0"..."9").contains($0) && $0 != ";" }
                if let end, scalars[end] == "m" { scalars = scalars[(end + 1)...]; continue }
            }
            kept.append(scalar)
        }
        return kept
    }
}
