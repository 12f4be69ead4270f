import Testing
@testable import SlabWatch

/// Durations and sizes as flags and config values spell them.
struct UnitsTests {
    @Test(arguments: [("500ms", 0.5), ("5s", 5.0), ("1m", 60.0), ("2h", 7200.0), ("7", 7.0), ("1.5s", 1.5), ("0", 0.0), ("10ms", 0.01)])
    func durations(_ text: String, _ seconds: Double) {
        #expect(Units.seconds(text) == seconds)
    }

    /// Swift's Double parser reads all of these; none is a duration anyone writes.
    @Test(arguments: ["0x10ms", "0x10", "0x1p4s", "1e3ms", "1E3", "inf", "infs", "nan", "nanms", ".5s", "5.s", "+5s", "-1s",
                      "1..5s", "", "ms", "s", " 5s", "5 s", "５s", "1_000ms"])
    func refusesWhatIsNotADuration(_ text: String) {
        #expect(Units.seconds(text) == nil, "\(text)")
    }

    @Test(arguments: [(0.01, "10ms"), (0.1, "100ms"), (1.5, "1500ms"), (0, "0s"), (1, "1s"), (60, "1m"), (600, "10m"),
                      (90, "90s"), (3600, "1h"), (5400, "90m")])
    func durationsAreSpelledAsAFlagTakesThem(_ seconds: Double, _ text: String) {
        #expect(Units.durationText(seconds) == text)
        #expect(Units.seconds(text) == seconds, "what is said reads back")
    }
}
