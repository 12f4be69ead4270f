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
            let plain = TopView.render(sample: sample, history: .empty, report: .init(), options: options).joined(separator: "\n")
            if plain.unicodeScalars.contains(where: { HostileText.isControl($0) && $0 != "\n" }) { failures.append(plain.debugDescription) }
            options.color = true
            let colored = TopView.render(sample: sample, history: .empty, report: .init(), options: options).joined()
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

/// Every report a person reads, with each name from elsewhere — a cache, a
/// process's `comm`, a cgroup, a symbol, a command line, a report given to
/// `diff` — generated hostile: no control but the line breaks reaches the
/// text, and no name starts a line of its own (the same report with plain
/// names has as many lines).
struct HostileReportTests {
    /// Names from `next`: hostile ones, or plain ones to count lines against.
    /// Numbered, so two names never collide (the reports match caches by name).
    struct Names {
        var generator: SeededGenerator?
        var count = 0

        mutating func next() -> String {
            count += 1
            guard var random = generator else { return "x\(count)" }
            defer { generator = random }
            return HostileText.make(length: Int.random(in: 1...24, using: &random), using: &random) + "\(count)"
        }
    }

    static func attribution(_ names: inout Names) -> Attribution {
        var a = Attribution(cache: names.next(), source: .bpf, callSites: [], events: 10, dropped: 1, windowSeconds: 5, stopReason: .duration)
        a.fallback = names.next()
        a.limits = .init(notFollowed: 1, freesUnseen: 2)
        a.callSites = (0..<3).map { index in
            Attribution.CallSite(function: names.next(), module: names.next(), allocations: 10, frees: 1, netCount: 9,
                                 netBytes: Int64(900 - index), share: 0.3,
                                 stacks: [.init(frames: [names.next(), names.next()], allocations: 5, net: 4)],
                                 processes: [.init(pid: 7, comm: names.next(), cgroup: names.next(), cgroupID: 1, allocations: 5,
                                                   netCount: 4, netBytes: 400)])
        }
        return a
    }

    static func measurement(_ base: Measurement, _ names: inout Names) -> Measurement {
        var m = base
        m.command.arguments = [names.next(), names.next()]
        for index in m.caches.indices {
            m.caches[index].slab = names.next()
            m.caches[index].notJudged = names.next()
            if m.caches[index].cost != nil { m.caches[index].cost?.inodeCache = names.next() }
        }
        for index in m.drivers.indices where m.drivers[index].inodeCache != nil { m.drivers[index].inodeCache = names.next() }
        return m
    }

    /// The reports, for one set of names.
    static func reports(_ base: Measurement, _ names: inout Names) throws -> [(renderer: String, text: String)] {
        let attribution = attribution(&names)
        let measurement = measurement(base, &names)
        // diff reads what anyone wrote: through the reader, as `slabwatch diff` does.
        let read = try MeasurementReader.read(MeasurementRenderer.json(measurement))
        return [("attribute", AttributionRenderer.text(attribution)), ("sentence", (attribution.sentence ?? "") + "\n"),
                ("measure", MeasurementRenderer.text(measurement, attributions: [attribution])),
                ("diff", MeasurementDiff.text(before: read, after: measurement))]
    }

    @Test func noNameReachesATerminalRaw() throws {
        let base = try #require(WorkloadRun.measured { $0.step(to: 40_000, samples: 15) })
        var failures: [String] = []
        for seed in 0..<300 as Range<UInt64> {
            var hostile = Names(generator: SeededGenerator(seed: seed)), plain = Names()
            for (shown, expected) in zip(try Self.reports(base, &hostile), try Self.reports(base, &plain)) {
                if shown.text.unicodeScalars.contains(where: { HostileText.isControl($0) && $0 != "\n" })
                    || Self.lineCount(shown.text) != Self.lineCount(expected.text) {
                    failures.append("\(shown.renderer), seed \(seed): \(shown.text.debugDescription)")
                }
            }
        }
        #expect(failures.isEmpty, "\(failures.count) of 1,200 reports, first: \(failures.first ?? "")")
    }

    /// Lines as a terminal starts them: at each "\n" scalar ("\r\n" is one Character).
    static func lineCount(_ text: String) -> Int { text.unicodeScalars.filter { $0 == "\n" }.count }

    /// JSON may carry DEL and the C1 controls raw; ours escapes them, so a
    /// document printed on a terminal starts no escape sequence either.
    @Test func jsonEscapesEveryControl() throws {
        var generator = SeededGenerator(seed: 4)
        for _ in 0..<500 {
            let text = HostileText.make(length: Int.random(in: 0...40, using: &generator), using: &generator)
            var json = JSONWriter()
            json.string(text)
            let document = String(decoding: json.bytes, as: UTF8.self)
            #expect(!document.unicodeScalars.contains(where: HostileText.isControl), "\(document.debugDescription)")
            #expect(try JSONValue.parse(json.bytes).string == text, "read back as written")
        }
    }
}
