import Testing
import TestSupport
@testable import SlabWatchCore

struct LinearFitTests {
    @Test(arguments: [(1.0, 0.0, 1.0), (32768.0, 1e11, 1e7), (0.001, 5.0, 1e-3), (4096.0, 1.5e11, 2.5e7)])
    func exactSlopeOnNoiseFreeLinesAtAnyMagnitude(slope: Double, intercept: Double, base: Double) throws {
        let x = (0..<1000).map { base + Double($0) * 997 }
        let y = x.map { intercept + slope * $0 }
        let fit = try #require(LinearFit.fit(x, y))
        #expect(abs(fit.slope - slope) / slope < 1e-9)
        #expect(fit.rSquared > 0.999999)
    }

    @Test func shiftingTheDriverChangesNothingButTheIntercept() throws {
        let x = (0..<500).map { Double($0) * 2000 }
        var seed: UInt64 = 42
        let y = x.map { 1e10 + 32 * $0 + Double(nextNoise(&seed)) * 1e6 }
        let a = try #require(LinearFit.fit(x, y))
        let b = try #require(LinearFit.fit(x.map { $0 + 1e7 }, y))
        #expect(abs(a.slope - b.slope) < 1e-9 * abs(a.slope))
        #expect(abs(a.rSquared - b.rSquared) < 1e-12)
    }

    @Test func degenerateInputsGiveNoFitAndNoNaN() {
        #expect(LinearFit.fit([], []) == nil)
        #expect(LinearFit.fit([1], [5]) == nil)
        #expect(LinearFit.fit([3, 3, 3], [1, 2, 3]) == nil)  // driver never moved
        #expect(LinearFit.fit([1, 2, 3], [7, 7, 7]) == nil)  // constant series
        #expect(LinearFit.fit([1, 2], [1, .infinity]) == nil)
    }
}
