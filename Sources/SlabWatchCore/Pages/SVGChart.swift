/// A small, self-contained SVG chart: axes with ticks in human units, points
/// and lines. No script, no external fonts or styles, so it renders the same
/// inline in the page, alone as `image/svg+xml`, and pasted into a ticket.
public struct SVGChart: Sendable {
    public enum Scale: Sendable {
        case bytes
        /// A count with its unit (`inodes`): 250k, 1.5M.
        case count(String)
        /// Unix milliseconds, labelled as UTC clock times.
        case time
    }

    public struct Series: Sendable {
        public enum Style: Sendable { case points, line, dashedLine }
        public var name: String
        public var color: String
        public var style: Style
        public var points: [(x: Double, y: Double)]

        public init(name: String, color: String, style: Style, points: [(x: Double, y: Double)]) {
            self.name = name
            self.color = color
            self.style = style
            self.points = points
        }
    }

    public var title: String
    public var x: Scale
    public var y: Scale
    public var series: [Series]
    public var width = 640.0
    public var height = 300.0

    public init(title: String, x: Scale, y: Scale, series: [Series]) {
        self.title = title
        self.x = x
        self.y = y
        self.series = series
    }

    // The plot area inside the margins that hold the axes' labels.
    private var left: Double { 78 }
    private var right: Double { width - 30 }  // room for half of the last time label
    private var top: Double { 44 }  // title, then the legend
    private var bottom: Double { height - 42 }

    public func render() -> String {
        let all = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(n(width))\" height=\"\(n(height))\" viewBox=\"0 0 \(n(width)) \(n(height))\" "
        svg += "font-family=\"sans-serif\" font-size=\"11\" role=\"img\" aria-label=\"\(Markup.escape(title))\">\n"
        svg += "<title>\(Markup.escape(title))</title>\n"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
        svg += "<text x=\"\(n(left))\" y=\"18\" font-size=\"13\" font-weight=\"bold\" fill=\"#222\">\(Markup.escape(title))</text>\n"
        guard !all.isEmpty else {
            return svg + "<text x=\"\(n(width / 2))\" y=\"\(n(height / 2))\" text-anchor=\"middle\" fill=\"#777\">no data yet</text>\n</svg>\n"
        }
        let xRange = Self.range(all.map(\.x), scale: x, fromZero: false)
        let yRange = Self.range(all.map(\.y), scale: y, fromZero: false)
        svg += axes(xRange, yRange)
        for item in series { svg += draw(item, xRange, yRange) }
        svg += legend()
        return svg + "</svg>\n"
    }

    // MARK: drawing

    private func px(_ value: Double, _ range: Ticks) -> Double { left + (value - range.low) / (range.high - range.low) * (right - left) }
    private func py(_ value: Double, _ range: Ticks) -> Double { bottom - (value - range.low) / (range.high - range.low) * (bottom - top) }

    private func axes(_ xr: Ticks, _ yr: Ticks) -> String {
        var out = "<g stroke=\"#ddd\" stroke-width=\"1\">\n"
        for value in yr.values { out += "<line x1=\"\(n(left))\" x2=\"\(n(right))\" y1=\"\(n(py(value, yr)))\" y2=\"\(n(py(value, yr)))\"/>\n" }
        for value in xr.values { out += "<line x1=\"\(n(px(value, xr)))\" x2=\"\(n(px(value, xr)))\" y1=\"\(n(top))\" y2=\"\(n(bottom))\"/>\n" }
        out += "</g>\n<rect x=\"\(n(left))\" y=\"\(n(top))\" width=\"\(n(right - left))\" height=\"\(n(bottom - top))\" fill=\"none\" stroke=\"#888\"/>\n"
        out += "<g fill=\"#444\">\n"
        for value in yr.values {
            out += "<text x=\"\(n(left - 6))\" y=\"\(n(py(value, yr) + 4))\" text-anchor=\"end\">\(Markup.escape(Self.label(value, y, step: yr.step)))</text>\n"
        }
        for value in xr.values {
            out += "<text x=\"\(n(px(value, xr)))\" y=\"\(n(bottom + 16))\" text-anchor=\"middle\">\(Markup.escape(Self.label(value, x, step: xr.step)))</text>\n"
        }
        out += "<text x=\"\(n((left + right) / 2))\" y=\"\(n(height - 6))\" text-anchor=\"middle\">\(Markup.escape(Self.axisName(x)))</text>\n"
        return out + "</g>\n"
    }

    private func draw(_ item: Series, _ xr: Ticks, _ yr: Ticks) -> String {
        let points = item.points.filter { $0.x.isFinite && $0.y.isFinite }
        let color = Markup.escape(item.color), name = Markup.escape(item.name)
        switch item.style {
        case .points:
            var out = "<g class=\"series\" data-series=\"\(name)\" fill=\"\(color)\" fill-opacity=\"0.85\">\n"
            for p in points { out += "<circle cx=\"\(n(px(p.x, xr)))\" cy=\"\(n(py(p.y, yr)))\" r=\"3\"/>\n" }
            return out + "</g>\n"
        case .line, .dashedLine:
            guard points.count >= 2 else { return "" }
            let path = points.enumerated().map { "\($0.offset == 0 ? "M" : "L")\(n(px($0.element.x, xr))),\(n(py($0.element.y, yr)))" }.joined(separator: " ")
            let dash = item.style == .dashedLine ? " stroke-dasharray=\"6 4\"" : ""
            return "<path class=\"series\" data-series=\"\(name)\" d=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>\n"
        }
    }

    private func legend() -> String {
        var out = "<g font-size=\"11\">\n"
        var cursor = right
        for item in series.reversed() {
            let text = Markup.escape(item.name)
            let textWidth = Double(item.name.count) * 6.2
            cursor -= textWidth
            out += "<text x=\"\(n(cursor))\" y=\"35\" fill=\"#333\">\(text)</text>\n"
            cursor -= 16
            switch item.style {
            case .points: out += "<circle cx=\"\(n(cursor + 6))\" cy=\"31\" r=\"4\" fill=\"\(Markup.escape(item.color))\"/>\n"
            case .line, .dashedLine:
                out += "<line x1=\"\(n(cursor))\" x2=\"\(n(cursor + 12))\" y1=\"31\" y2=\"31\" stroke=\"\(Markup.escape(item.color))\" stroke-width=\"2\"\(item.style == .dashedLine ? " stroke-dasharray=\"4 2\"" : "")/>\n"
            }
            cursor -= 12
        }
        return out + "</g>\n"
    }

    /// Coordinates with one decimal, no exponent: SVG parsers want plain numbers.
    private func n(_ value: Double) -> String { Human.decimal(value, 1) }

    // MARK: ticks

    struct Ticks: Equatable {
        var low: Double
        var high: Double
        var step: Double
        var values: [Double] {
            var out: [Double] = []
            var value = (low / step).rounded(.up) * step
            while value <= high + step * 1e-9 && out.count < 20 { out.append(value); value += step }
            return out
        }
    }

    /// Bounds widened to whole ticks: about five of them, at 1, 2 or 5 × a
    /// power of ten (of 1024 for bytes, so labels read 2.0 GiB, not 2.1 GB;
    /// clock-friendly steps for time).
    static func range(_ values: [Double], scale: Scale, fromZero: Bool) -> Ticks {
        var low = values.min()!, high = values.max()!
        if fromZero { low = min(low, 0) }
        if high - low <= 0 {
            let pad = max(abs(high) * 0.05, scale.isTime ? 60_000 : 1)
            low -= pad
            high += pad
        }
        let step = niceStep((high - low) / 5, scale: scale)
        return Ticks(low: (low / step).rounded(.down) * step, high: (high / step).rounded(.up) * step, step: step)
    }

    static func niceStep(_ raw: Double, scale: Scale) -> Double {
        switch scale {
        case .time:
            let steps: [Double] = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]
            return (steps.first { $0 * 1000 >= raw } ?? 86400) * 1000
        case .bytes:
            var unit = 1.0
            while raw >= unit * 1024 { unit *= 1024 }
            return decimalStep(raw / unit) * unit
        case .count: return decimalStep(raw)
        }
    }

    private static func decimalStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        var power = 1.0
        while power * 10 <= raw { power *= 10 }
        while power > raw { power /= 10 }
        for factor in [1.0, 2, 5, 10] where factor * power >= raw { return factor * power }
        return 10 * power
    }

    static func label(_ value: Double, _ scale: Scale, step: Double) -> String {
        switch scale {
        case .bytes: return value == 0 ? "0" : Human.bytes(value)
        case .count: return value == 0 ? "0" : compactCount(value, step: step)
        case .time:
            let text = RFC3339.format(unixMilliseconds: Int64(value))  // 2026-11-26T05:40:00.000Z
            let clock = String(text.dropFirst(11).prefix(step < 60_000 ? 8 : 5))
            return clock == "00:00" ? String(text.dropFirst(5).prefix(5)) : clock  // midnight shows the date
        }
    }

    /// 250000 → 250k, 1500000 → 1.5M; as many decimals as the step needs.
    static func compactCount(_ value: Double, step: Double) -> String {
        let (divisor, suffix): (Double, String) = abs(value) >= 1e6 || step >= 1e6 ? (1e6, "M") : abs(value) >= 1e3 || step >= 1e3 ? (1e3, "k") : (1, "")
        let scaledStep = step / divisor
        let places = scaledStep >= 1 ? 0 : scaledStep >= 0.1 ? 1 : 2
        return Human.decimal(value / divisor, places) + suffix
    }

    static func axisName(_ scale: Scale) -> String {
        switch scale {
        case .bytes: "bytes"
        case .count(let unit): unit
        case .time: "time (UTC)"
        }
    }
}

private extension SVGChart.Scale {
    var isTime: Bool { if case .time = self { true } else { false } }
}
