/// The sentence a person reads (snapshot, journal MESSAGE, replay): what grows
/// per what, where its memory stands, and the next step that fits the driver.
///
/// Every word that depends on the driver comes from its row of
/// `GrowthDriver.Description`, chosen by the filesystem kind that frees its
/// units (`filesystemKind`), and every next step from where the driver stands
/// (only risen, fallen, fallen and followed): a sentence never says the driver
/// has only risen once it fell, "evicted" of deleted tmpfs files, or
/// drop_caches for memory drop_caches cannot free (`FindingSentenceTests`
/// holds this over every phase, driver, kind and classification).
extension Finding {
    public var message: String {
        ([fitSentence, ownCountSentence, reclaimSentence, memorySentence, classificationSentence, seriesStep].compactMap { $0 }
            + [attribution?.sentence, charged?.sentence(slab: slab)].compactMap { $0 }.filter { !$0.isEmpty })
            .joined(separator: " ")
    }

    /// What frees the units of the finding's driver: the filesystem of its
    /// inode cache, or of the finding's own cache when that is an inode cache
    /// (`shmem_inode_cache` grows with the global inode count, and only
    /// deleting tmpfs files frees it); for a driver whose units belong to no
    /// filesystem (negative dentries), what frees those.
    public var filesystemKind: FilesystemKind {
        driver.unitsKind ?? FilesystemKind(filesystem: filesystem ?? InodeCacheSelector.filesystem(of: slab))
    }

    /// "evicted", "deleted", "closed": how the driver's units went when it fell.
    public var fallVerb: String {
        switch (driver, filesystemKind) {
        case (.openFiles, _), (.sockets, _): "closed"
        case (.tasks, _): "exited"
        case (.memoryCgroups, _): "removed"
        case (.dyingMemoryCgroups, _): "released"
        case (.inodes, .tmpfs), (.dentries, .tmpfs): "deleted"
        default: "evicted"
        }
    }

    private var words: GrowthDriver.Description { driver.description }

    /// The derived series the finding is on (memory outside the caches,
    /// Percpu); nil for a kernel cache. Its sentence says what the memory is
    /// in place of the name, and never calls it a cache.
    private var series: DerivedSeries? { DerivedSeries.named(slab) }

    /// What a per-unit memory is called in a next step: "a per-inode cache",
    /// or, for a derived series, "a per-inode allocation".
    private var holder: String { series == nil ? "cache" : "allocation" }

    /// A random kmalloc copy's name changes at every boot and from node to
    /// node (`CONFIG_RANDOM_KMALLOC_CACHES`): the sentence names its size
    /// class too, the name that stays.
    private var subject: String {
        if let series { return series.subject }
        guard let sizeClass = KmallocCache.sizeClass(ofRandomCopy: slab) else { return slab }
        return "\(slab) (a random copy of \(sizeClass): which copy a call site uses is drawn at every boot)"
    }

    private var fitSentence: String {
        var text = "\(subject) grows \(Human.bytes(bytesPerUnit)) \(words.perUnit)"
        if let inodeCache { text += " of \(inodeCache)" }
        text += " (R² \(Human.decimal(rSquared, 3)) over \(Human.duration(windowSeconds)), "
        text += "\(growthBytes >= 0 ? "+" : "−")\(Human.bytes(abs(growthBytes)))"
        text += driver == .time ? ")." : " while \(driverNoun) rose by \(Human.grouped(driverChange)))."
        return text
    }

    /// "inodes", or "shmem_inode_cache inodes" for an inode cache.
    private var driverNoun: String {
        inodeCache.map { "\($0) inodes" } ?? words.plural
    }

    /// "inode count", or "inode count of shmem_inode_cache".
    private var countNoun: String {
        "\(words.singular) count" + (inodeCache.map { " of \($0)" } ?? "")
    }

    /// "Inodes", or "Inodes of shmem_inode_cache": the subject of a next step.
    private var unitsNoun: String {
        words.plural.prefix(1).uppercased() + words.plural.dropFirst() + (inodeCache.map { " of \($0)" } ?? "")
    }

    /// "cached inodes", "tmpfs inodes", "open files".
    private var heldBy: String { words.heldBy[filesystemKind] ?? words.plural }

    /// Nothing for a derived series: its subject already says which memory it is.
    private var reclaimSentence: String? {
        guard series == nil else { return nil }
        return switch reclaimable {
        case true: "Reclaimable (counted in SReclaimable)."
        case false: "Unreclaimable."
        default: "Reclaimability unknown."
        }
    }

    private var memorySentence: String {
        let held = Human.bytes(Double(heldBytes))
        let gained = Human.bytes(Double(gainedBytes))
        switch (state, resolution) {
        case (.resolved, .memoryReturned?): return "Its memory came back: \(held) of the \(gained) it gained is still held."
        case (.resolved, .cacheGone?) where series != nil: return "Its series is gone: a source it is derived from stopped answering."
        case (.resolved, .cacheGone?): return "Its cache is gone (module unloaded or cache destroyed)."
        case (.resolved, .reboot?): return "The machine rebooted while slabwatch was stopped: the \(held) it held then is gone."
        case (.resolved, .stoppedGrowing?):
            return "It stopped growing \(Human.elapsed(secondsSinceLastRise)) before this and holds \(held); the kernel reclaims it under memory pressure."
        default: break
        }
        switch phase {
        case .rising: return "Still growing: holds \(held) more than before the rise."
        case .holding:
            let since = Human.elapsed(secondsSinceLastRise)
            return "Stopped growing \(since) ago and still holds \(held)."
        case .falling: return "Falling: still holds \(held) of the \(gained) it gained."
        }
    }

    /// Restored times may be anything: the difference saturates.
    private var secondsSinceLastRise: Double {
        Double(elapsedMilliseconds(lastSeenMilliseconds, since: lastRiseMilliseconds)) / 1000
    }

    /// What the driver's fall said, or, while it has not fallen, what would
    /// decide. Nothing for a resolved finding that was never classified: its
    /// memory is gone, and advice about it would be moot.
    private var classificationSentence: String? {
        // Time never falls, so a finding against it is never classified.
        // Time's step says it follows no count; a cache that holds one object per unit of a count was not fitted against it.
        guard driver != .time else { return state == .open && ownCountSentence == nil ? nextStep : nil }
        switch classification {
        case .tracksEviction:
            return "It fell with the \(countNoun) when \(words.went[filesystemKind] ?? ""): memory attached to \(heldBy), not a leak."
        case .leakLike:
            let next = attribution == nil && series == nil ? " Run 'slabwatch attribute \(slab)' to name the code that allocates it." : ""
            return "The \(countNoun) fell but it did not: leak-like.\(next)"
        case .undetermined:
            guard state == .open else { return nil }
            guard driverFellAt != nil else { return nextStep }
            return othersMayHaveGone ?? notFollowedYet
        }
    }

    /// Once the driver fell without taking enough of the finding's own units
    /// to tell (`DetectorSettings.leakEvidenceShare`): what was seen, and what
    /// would decide it.
    private var othersMayHaveGone: String? {
        guard leakEvidenceAt == nil, let below = leakEvidenceBelow, let now = fallTrail.latest?.driver else { return nil }
        let own = Human.grouped(ownUnitsAtPeak)
        return "The \(countNoun) fell by \(Human.grouped(driverPeak - now)) to \(Human.grouped(now)) and it did not follow; "
            + "that leaves too many to be sure any of the \(own) \(words.plural) it grew with went. "
            + "A fall below \(Human.grouped(max(0, below))) that it does not follow would be leak-like; "
            + "one it follows, memory attached to \(heldBy)."
    }

    /// The driver fell far enough to tell, and the cache has not followed yet
    /// (the leak grace runs).
    private var notFollowedYet: String {
        "The \(countNoun) fell and it has not followed yet: if it does not, it is leak-like; if it does, memory attached to \(heldBy)."
    }

    /// A derived series' own next step (its attribution, or that none can
    /// name its callers), while its finding is open and unattributed.
    private var seriesStep: String? {
        guard let series, state == .open, attribution == nil else { return nil }
        return series.nextStep
    }

    /// A cache whose own objects a driver counts (`task_struct`, one per
    /// thread; `mem_cgroup`, one per memory cgroup) is never fitted against
    /// that count (`GrowthDriver.neverFitsItsOwnCache`): a fit true by
    /// construction says nothing of why. When the count rose over the
    /// finding's window, the sentence says by how much and gives that
    /// driver's next step, so the reader still learns what to look at.
    private var ownCountSentence: String? {
        guard state == .open,
              let own = fits.filter({ $0.driver != driver && $0.driver.neverFitsItsOwnCache && $0.driver.countsObjects(of: slab) && $0.driverChange > 0 })
                  .min(by: { $0.driver.tiePreference < $1.driver.tiePreference })
        else { return nil }
        let words = own.driver.description
        let step = (words.decides[.unknown] ?? "").replacing(GrowthDriver.Description.holder, with: holder)
        return "It holds one object per \(words.singular), so it is not fitted against their count: "
            + "\(words.plural) rose by \(Human.grouped(own.driverChange)) over the window; \(step)"
    }

    /// While the driver has not fallen: where it stands, and what tells a
    /// per-unit cache from a leak, for this driver and filesystem kind.
    private var nextStep: String {
        let decides = (words.decides[filesystemKind] ?? "").replacing(GrowthDriver.Description.holder, with: holder)
        guard driver != .time else { return decides }
        let standing = phase == .falling ? "have not fallen far enough to tell yet" : "have only risen so far"
        return "\(unitsNoun) \(standing): \(decides)"
    }
}
