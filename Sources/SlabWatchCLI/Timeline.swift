import SlabWatch
import SlabWatchCore

/// How `slabwatch replay` tells people what happened, one line per
/// transition. A recording is anyone's files: its cache names reach the
/// terminal only through `TerminalText`.
enum Timeline {
    static func line(_ event: GrowthDetector.Event) -> String {
        let f = event.finding
        let when = RFC3339.format(unixMilliseconds: event.timestampMilliseconds)
        let kind = event.kind.rawValue.padded(12)
        return TerminalText.printable("\(when)  \(kind) \(f.severity.rawValue.padded(8)) \(f.classification.rawValue.padded(15)) \(f.message)")
    }

    /// Lines, each ending in a newline.
    static func summary(_ outcome: SlabWatch.Replay.Outcome) -> String {
        let open = outcome.findings.filter { $0.state == .open }.count
        var lines = ["\(outcome.samplesUsed) samples replayed, \(outcome.skipped.count) skipped; "
                     + "\(outcome.findings.count) findings (\(open) still open)"]
        for finding in outcome.findings {
            lines.append("  [\(finding.state.rawValue), \(finding.severity.rawValue), \(finding.phase.rawValue), \(finding.classification.rawValue)] \(finding.message)")
        }
        return TerminalText.printable(lines: lines)
    }
}

extension String {
    /// The text with spaces after it up to `width` characters: a column of the timeline.
    fileprivate func padded(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
