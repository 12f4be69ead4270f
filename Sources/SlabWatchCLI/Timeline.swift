import SlabWatch
import SlabWatchCore

/// How `slabwatch replay` tells people what happened, one line per transition.
enum Timeline {
    static func line(_ event: GrowthDetector.Event) -> String {
        let f = event.finding
        let when = RFC3339.format(unixMilliseconds: event.timestampMilliseconds)
        let kind = event.kind.rawValue.padded(12)
        return "\(when)  \(kind) \(f.severity.rawValue.padded(8)) \(f.classification.rawValue.padded(15)) \(f.message)"
    }

    static func summary(_ outcome: SlabWatch.Replay.Outcome) -> String {
        var text = "\(outcome.samplesUsed) samples replayed, \(outcome.skipped.count) skipped; "
        let open = outcome.findings.filter { $0.state == .open }.count
        text += "\(outcome.findings.count) findings (\(open) still open)"
        for finding in outcome.findings {
            text += "\n  [\(finding.state.rawValue), \(finding.severity.rawValue), \(finding.phase.rawValue), \(finding.classification.rawValue)] \(finding.message)"
        }
        return text
    }
}
