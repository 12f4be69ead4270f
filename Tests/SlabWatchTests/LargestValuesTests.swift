import Testing
@testable import SlabWatch

/// The selection behind `sampler.max-caches`, against a sort.
struct LargestValuesTests {
    @Test(arguments: [1, 2, 7, 64, 500])
    func theKthLargestIsTheSortsKth(count: Int) {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15 &* UInt64(count)
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        // Distinct values, many repeated ones, all equal, already sorted either way.
        let inputs: [[UInt64]] = [
            (0..<count).map { _ in next() },
            (0..<count).map { _ in next() % 4 },
            Array(repeating: 7, count: count),
            (0..<count).map { UInt64($0) },
            (0..<count).map { UInt64(count - $0) },
        ]
        for input in inputs {
            let sorted = input.sorted(by: >)
            for k in Set([1, count, (count + 1) / 2, min(count, 3)]) {
                var values = input
                #expect(LargestValues.kthLargest(&values, k) == sorted[k - 1], "k \(k) of \(input.prefix(8))…")
                #expect(values.sorted() == input.sorted(), "the same values, reordered")
            }
        }
    }
}
