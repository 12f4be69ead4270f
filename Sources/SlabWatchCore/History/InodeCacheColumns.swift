/// Which inode caches hold the tiers' 32 columns, decided at every append by
/// three rules (docs/detector.md's "Per-filesystem inode drivers" says the same):
///
/// 1. **A column is freed once the newest slot of each tier lacks its
///    cache**: every window the detector fits ends at its tier's newest slot
///    and needs the count in all of its slots, so no window can use it any
///    more. A freed column is cleared, so its next cache starts with no past.
/// 2. **Free columns go to waiting inode caches, those whose count has moved
///    by `inodeCacheMinimumMove` while they waited first, then the longest
///    waiting** (then in the sample's order): a cache that vanished gives its
///    column to one that was there before the newcomers.
/// 3. **With none free, a waiting cache whose count moved that much takes the
///    column of the followed cache whose count moved least over the fine tier,
///    if that one moved less over at least as many samples as the other
///    waited (or the whole tier)**: a count that stands still can drive no
///    finding, and one only just followed has not yet had the time to move.
///
/// A restored state brings back no waiting cache (each is decided again at
/// its next append), and its columns of vanished caches are freed by rule 1.
extension SampleRing {
    /// The tiers' column holding `name`'s object count, if it is a followed inode cache.
    public func inodeCacheColumn(named name: String) -> Int? { inodeCacheIndex[name] }

    /// Whether `name` counts inodes: an inode cache the selector chose, with
    /// a column or waiting for one.
    public func isInodeCache(named name: String) -> Bool {
        guard let series = seriesIndex[name] else { return false }
        return inodeColumn[series] >= 0 || inodeColumn[series] == Self.waiting
    }

    /// An inode cache without a column: since which append it waits, and the
    /// lowest and highest count it had since.
    struct WaitingInodeCache: Sendable {
        var since: Int
        var low: UInt64
        var high: UInt64

        init(since: Int, count: UInt64) {
            self.since = since
            low = count
            high = count
        }

        var moved: UInt64 { high - low }
    }

    /// A waiting cache present in the sample being appended, and its count there.
    struct WaitingCandidate: Sendable {
        var name: String
        var series: Int
        var count: UInt64
        var since: Int
        var moved: Bool
    }

    /// The column for `cache`'s object count when it has one; `waiting` for
    /// an inode cache without (`giveColumnsToWaiting` decides), else `notInodeCache`.
    mutating func decideInodeColumn(_ cache: SlabCache) -> Int {
        if let column = inodeCacheIndex[cache.name] { return column }
        guard inodeCaches.selects(cache) else { return Self.notInodeCache }
        waitingInodeCaches[cache.name] = WaitingInodeCache(since: appended, count: cache.activeObjects)
        return Self.waiting
    }

    mutating func noteWaiting(_ cache: SlabCache, series: Int) {
        var waiting = waitingInodeCaches[cache.name] ?? WaitingInodeCache(since: appended, count: cache.activeObjects)
        waiting.low = min(waiting.low, cache.activeObjects)
        waiting.high = max(waiting.high, cache.activeObjects)
        waitingInodeCaches[cache.name] = waiting
        waitingNow.append(WaitingCandidate(name: cache.name, series: series, count: cache.activeObjects, since: waiting.since,
                                           moved: Double(waiting.moved) >= inodeCacheMinimumMove))
    }

    /// Rule 1, after the sample's counts are in the fine tier's newest slot
    /// (and, when `toCoarse`, about to be the coarse tier's).
    mutating func freeVanishedColumns(toCoarse: Bool) {
        for column in inodeCacheNames.indices where inodeCacheNames[column] != nil {
            guard fine.inodeObjects(column: column, at: fine.count - 1) == nil,
                  toCoarse || coarse.count == 0 || coarse.inodeObjects(column: column, at: coarse.count - 1) == nil
            else { continue }
            release(column)
        }
    }

    /// Rules 2 and 3 for the waiting caches present in this sample.
    mutating func giveColumnsToWaiting(row: Int) {
        if waitingNow.count < waitingInodeCaches.count {
            let present = Set(waitingNow.map(\.name))
            waitingInodeCaches = waitingInodeCaches.filter { present.contains($0.key) }
        }
        let room = InodeCacheSelector.maximumCaches - inodeCacheNames.count
        let anyFree = room > 0 || inodeCacheNames.contains(nil)
        guard anyFree || waitingNow.contains(where: \.moved) else { return }
        // Movers first, then the longest waiting; the sort is stable, so then the sample's order.
        let ordered = waitingNow.enumerated().sorted { a, b in
            if a.element.moved != b.element.moved { return a.element.moved }
            if a.element.since != b.element.since { return a.element.since < b.element.since }
            return a.offset < b.offset
        }.map(\.element)
        var taken: Set<Int> = []
        for candidate in ordered where inodeCacheIndex[candidate.name] == nil {  // a name listed twice takes one
            var column = freeColumn()
            if column == nil, candidate.moved {
                column = stillestColumn(waited: appended - candidate.since, sparing: taken)
                if let column { release(column) }
            }
            guard let column else { if candidate.moved { continue } else { break } }
            taken.insert(column)
            inodeCacheNames[column] = candidate.name
            inodeCacheIndex[candidate.name] = column
            inodeColumn[candidate.series] = column
            waitingInodeCaches[candidate.name] = nil
            fine.setObjects(row: row, column: column, value: candidate.count)
        }
    }

    /// A free column, widening the tiers while there are fewer than 32.
    private mutating func freeColumn() -> Int? {
        if let free = inodeCacheNames.firstIndex(of: nil) { return free }
        guard inodeCacheNames.count < InodeCacheSelector.maximumCaches else { return nil }
        inodeCacheNames.append(nil)
        fine.widenObjects(to: inodeCacheNames.count)
        coarse.widenObjects(to: inodeCacheNames.count)
        return inodeCacheNames.count - 1
    }

    /// Rule 3's column: the followed cache whose count moved least over the
    /// fine tier, among those that moved less than `inodeCacheMinimumMove`
    /// over at least `waited` samples (or the whole tier); nil when none did.
    private func stillestColumn(waited: Int, sparing: Set<Int>) -> Int? {
        let needed = min(waited, fine.count)
        var stillest: (column: Int, moved: UInt64)?
        for column in inodeCacheNames.indices where inodeCacheNames[column] != nil && !sparing.contains(column) {
            guard let movement = fine.objectMovement(column: column), movement.slots >= needed,
                  Double(movement.range) < inodeCacheMinimumMove, movement.range < stillest?.moved ?? .max
            else { continue }
            stillest = (column, movement.range)
        }
        return stillest?.column
    }

    /// Frees `column`: its cache is decided again when next appended, and
    /// its counts so far are forgotten.
    private mutating func release(_ column: Int) {
        guard let name = inodeCacheNames[column] else { return }
        inodeCacheNames[column] = nil
        inodeCacheIndex[name] = nil
        if let series = seriesIndex[name], inodeColumn[series] == column { inodeColumn[series] = Self.undecided }
        fine.clearObjects(column: column)
        coarse.clearObjects(column: column)
    }
}
