/// Findings waiting for an attribution session: one session runs at a time,
/// so a finding that becomes due while another is traced waits here and is
/// attributed when that session ends. Each finding once (by cache), in the
/// order it became due, with its newest state; a finding that resolved or
/// left the report meanwhile is dropped; at most `capacity` of them.
public struct AttributionQueue: Sendable, Equatable {
    /// Findings waiting at most. A session takes `attribution.duration`
    /// (10 s by default), so 32 drain in minutes; a machine with more
    /// unreclaimable caches flagged at once than that has a bigger problem
    /// than who allocates the 33rd, and a finding refused here is said so.
    public static let capacity = 32

    /// Oldest first.
    public private(set) var waiting: [Finding] = []

    public init() {}

    public var isEmpty: Bool { waiting.isEmpty }

    /// Queues `finding`, or updates its state where its cache already waits
    /// (keeping its place). Returns false when the queue is full and it was not taken.
    public mutating func add(_ finding: Finding) -> Bool {
        if let index = waiting.firstIndex(where: { $0.slab == finding.slab }) {
            waiting[index] = finding
            return true
        }
        guard waiting.count < Self.capacity else { return false }
        waiting.append(finding)
        return true
    }

    /// Takes the newest state of every waiting finding from an evaluation's
    /// findings, and drops those that resolved or are no longer reported.
    public mutating func refresh(from findings: [Finding]) {
        waiting = waiting.compactMap { finding in
            guard let newest = findings.first(where: { $0.slab == finding.slab }), newest.state == .open else { return nil }
            return newest
        }
    }

    /// Removes and returns the oldest finding that `isEligible` accepts; those
    /// it refuses on the way (attributed too recently, reclaimable now) are dropped.
    public mutating func next(where isEligible: (Finding) -> Bool) -> Finding? {
        while !waiting.isEmpty {
            let finding = waiting.removeFirst()
            if isEligible(finding) { return finding }
        }
        return nil
    }
}
