/// Ordinary least squares `y = intercept + slope · x`, computed on centred data.
///
/// Centring first (subtracting the means) keeps the sums small: footprints of
/// 10^11 bytes against inode counts of 10^7 give the same slope as small
/// numbers, where raw sums of squares in Double would cancel to noise.
public struct LinearFit: Sendable, Equatable {
    public var slope: Double
    public var intercept: Double
    /// Coefficient of determination, 0…1.
    public var rSquared: Double
    public var count: Int

    /// Fits `points`; nil when there are fewer than two points, when x never
    /// moved, or when y is constant (nothing to explain). Never NaN or infinite.
    public static func fit(_ x: [Double], _ y: [Double]) -> LinearFit? {
        guard x.count == y.count, x.count >= 2 else { return nil }
        let n = Double(x.count)
        let meanX = x.reduce(0, +) / n
        let meanY = y.reduce(0, +) / n
        var sxx = 0.0, sxy = 0.0, syy = 0.0
        for i in x.indices {
            let dx = x[i] - meanX, dy = y[i] - meanY
            sxx += dx * dx
            sxy += dx * dy
            syy += dy * dy
        }
        return make(sxx: sxx, sxy: sxy, syy: syy, meanX: meanX, meanY: meanY, count: x.count)
    }

    /// From centred sums (the detector accumulates these itself to share the
    /// driver's work across caches).
    static func make(sxx: Double, sxy: Double, syy: Double, meanX: Double, meanY: Double, count: Int) -> LinearFit? {
        guard count >= 2, sxx > 0, syy > 0, sxx.isFinite, syy.isFinite, sxy.isFinite else { return nil }
        let slope = sxy / sxx
        let r2 = min(1, max(0, (sxy / sxx) * (sxy / syy)))
        let fit = LinearFit(slope: slope, intercept: meanY - slope * meanX, rSquared: r2, count: count)
        return fit.slope.isFinite && fit.intercept.isFinite ? fit : nil
    }
}
