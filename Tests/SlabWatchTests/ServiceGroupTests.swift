import Dispatch
import Synchronization
import Testing
@testable import SlabWatch

/// The group's rules with parts that record what happens to them. Every
/// outcome is read from the record, never from how long a call took.
struct ServiceGroupTests {
    /// What every part did, in order: "start a", "stop b", ….
    final class Record: Sendable {
        let lines = Mutex<[String]>([])
        func add(_ line: String) { lines.withLock { $0.append(line) } }
        var all: [String] { lines.withLock { $0 } }
    }

    /// A part that records its start and stop; it can fail to start, or
    /// block in its stop until the test opens `gate` (a stuck tick).
    final class Part: Service {
        let name: String
        let record: Record
        let failsToStart: Bool
        let gate: DispatchSemaphore?

        init(_ name: String, _ record: Record, failsToStart: Bool = false, gate: DispatchSemaphore? = nil) {
            self.name = name
            self.record = record
            self.failsToStart = failsToStart
            self.gate = gate
        }

        func start() throws(ServiceError) {
            if failsToStart { throw ServiceError(.cannotListen, "cannot listen") }
            record.add("start \(name)")
        }

        func stop(deadline: UInt64) -> Bool {
            record.add("stop \(name)")
            guard let gate else { return true }
            return gate.wait(timeout: .now() + Clock.seconds(until: deadline)) == .success
        }
    }

    @Test func startsInOrderAndStopsInReverse() throws {
        let record = Record()
        let group = ServiceGroup(["a", "b", "c"].map { Part($0, record) }, logger: quietLogger)
        try group.start()
        #expect(group.stop(within: 1).isEmpty)
        #expect(record.all == ["start a", "start b", "start c", "stop c", "stop b", "stop a"])
    }

    @Test func aFailedStartStopsExactlyThePartsStartedAndRethrows() {
        let record = Record()
        let group = ServiceGroup([Part("a", record), Part("b", record), Part("server", record, failsToStart: true), Part("d", record)],
                                 logger: quietLogger)
        #expect { try group.start() } throws: { ($0 as? ServiceError)?.status == .cannotListen }
        #expect(record.all == ["start a", "start b", "stop b", "stop a"])
        // Nothing is left to stop afterwards.
        #expect(group.stop(within: 1).isEmpty)
        #expect(record.all.count == 4)
    }

    @Test func aPartBlockedPastTheDeadlineIsAbandonedAndTheEarlierPartsStillStop() throws {
        let record = Record()
        let stuck = DispatchSemaphore(value: 0)
        let group = ServiceGroup([Part("persistence", record), Part("sampler", record, gate: stuck), Part("signals", record)],
                                 logger: quietLogger)
        try group.start()
        let abandoned = group.stop(within: 0.2)
        stuck.signal()  // the stuck read returns, after the group gave up on it
        #expect(abandoned == ["sampler"])
        #expect(record.all.suffix(3) == ["stop signals", "stop sampler", "stop persistence"])
    }

    @Test func stoppingTwiceStopsEachPartOnce() throws {
        let record = Record()
        let group = ServiceGroup([Part("a", record), Part("b", record)], logger: quietLogger)
        try group.start()
        #expect(group.stop(within: 1).isEmpty)
        #expect(group.stop(within: 1).isEmpty)
        #expect(record.all == ["start a", "start b", "stop b", "stop a"])
    }
}
