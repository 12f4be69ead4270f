import SlabWatchCore
import Testing

/// docs/measure.md says what measure's code holds.
struct MeasureDocumentTests {
    @Test func samplesKeptPerPhase() {
        let count = Human.grouped(Double(MeasurementSamples.maximumPerPhase))
        #expect(TestPaths.document("docs/measure.md").contains("each keep at most \(count) samples"),
                "docs/measure.md should say: each keep at most \(count) samples")
    }
}
