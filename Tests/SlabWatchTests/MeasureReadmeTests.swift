import SlabWatchCore
import Testing

/// README's "Measuring a change" says what measure's code holds.
struct MeasureReadmeTests {
    @Test func samplesKeptPerPhase() {
        let count = Human.grouped(Double(MeasurementSamples.maximumPerPhase))
        #expect(ReadmeTruthTests.readme.contains("each keep at most \(count) samples"), "README should say: each keep at most \(count) samples")
    }
}
