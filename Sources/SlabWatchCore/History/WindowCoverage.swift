/// How much of a window history must span before a figure over that window
/// is given at all. A rate taken over a second and scaled to "per minute",
/// or over a minute and called "the last 5 minutes", is noise shown as a
/// fact: such figures are left out instead (`nil`, shown as `-`).
public enum WindowCoverage: Sendable {
    /// At least half of the window. The detector fits a window on the widest
    /// tier that spans this share of it (`WindowSet`); top's and the web
    /// page's growth columns stay empty until the samples they use do
    /// (`SampleRing.footprintPerMinute`).
    public static let minimumShare = 0.5

    /// Whether `spanSeconds` of history is enough for a figure over a window of `windowSeconds`.
    public static func covers(spanSeconds: Double, windowSeconds: Double) -> Bool {
        spanSeconds >= minimumShare * windowSeconds
    }
}
