import Testing
@testable import SlabWatchCore

/// Findings waiting for an attribution session: each once, oldest first,
/// in its newest state, bounded; resolved ones dropped.
struct AttributionQueueTests {
    static func finding(_ slab: String, growth: Double = 64e6, resolved: Bool = false) -> Finding {
        let fit = Finding.RiseFit(
            bytesPerUnit: 512, rSquared: 0.998, windowSeconds: 60, growthBytes: growth, driverChange: 125_000,
            fits: [], points: [], footprintFloor: 1_000_000, driverFloor: 40_000, driverPeak: 165_000,
            driverPeakAt: 0, footprintAtDriverPeak: 65_000_000)
        let cache = SlabCache(name: slab, activeObjects: 1, objects: 1, objectSize: 512, objectsPerSlab: 8,
                              pagesPerSlab: 1, activeSlabs: 1, slabs: 65_000_000 / 4096, pageSize: 4096, reclaimable: false)
        var finding = Finding(slab: slab, driver: .inodes, fit: fit, cache: cache, now: 0, settings: .init())
        if resolved { finding.resolve(.memoryReturned, now: 1) }
        return finding
    }

    @Test func eachFindingOnceInItsPlaceWithItsNewestState() {
        var queue = AttributionQueue()
        let added = [queue.add(Self.finding("a")), queue.add(Self.finding("b")), queue.add(Self.finding("a", growth: 99e6))]
        #expect(added == [true, true, true])
        #expect(queue.waiting.map(\.slab) == ["a", "b"])
        #expect(queue.waiting[0].growthBytes == 99e6)
        queue.refresh(from: [Self.finding("b", growth: 7e6), Self.finding("a", resolved: true)])
        #expect(queue.waiting.map(\.slab) == ["b"] && queue.waiting[0].growthBytes == 7e6, "a resolved; b's newest state")
        queue.refresh(from: [])
        #expect(queue.isEmpty, "a finding no longer reported is dropped")
    }

    @Test func boundedAndTakenOldestFirst() {
        var queue = AttributionQueue()
        let added = (0..<AttributionQueue.capacity).map { queue.add(Self.finding("c\($0)")) }
        #expect(added.allSatisfy { $0 })
        let tooMany = queue.add(Self.finding("one too many")), updated = queue.add(Self.finding("c3", growth: 1))
        #expect(!tooMany && updated, "full: a new finding is refused, one already waiting still updated")
        #expect(!queue.waiting.contains { $0.slab == "one too many" } && queue.waiting[3].growthBytes == 1)
        let next = queue.next { $0.slab != "c0" }
        #expect(next?.slab == "c1", "c0 is refused on the way, and dropped")
        #expect(queue.waiting.count == AttributionQueue.capacity - 2)
    }
}
