/// The sentence a person reads (snapshot, journal MESSAGE, replay): what grows
/// per what, where its memory stands, and the next step that fits the driver.
extension Finding {
    public var message: String {
        ([fitSentence, reclaimSentence, memorySentence, classificationSentence] + [attribution?.sentence].compactMap { $0 })
            .joined(separator: " ")
    }

    private var fitSentence: String {
        var text = "\(slab) grows \(Human.bytes(bytesPerUnit)) \(driver.perUnit)"
        if let inodeCache { text += " of \(inodeCache)" }
        text += " (R² \(Human.decimal(rSquared, 3)) over \(Human.duration(windowSeconds)), "
        text += "\(growthBytes >= 0 ? "+" : "−")\(Human.bytes(abs(growthBytes)))"
        text += driver == .time ? ")." : " while \(driverNoun) rose by \(Human.grouped(driverChange)))."
        return text
    }

    /// "inodes", or "shmem_inode_cache inodes" for an inode cache.
    private var driverNoun: String {
        inodeCache.map { "\($0) inodes" } ?? driver.plural
    }

    /// "inode count", or "inode count of shmem_inode_cache".
    private var countNoun: String {
        "\(driver.singular) count" + (inodeCache.map { " of \($0)" } ?? "")
    }

    private var reclaimSentence: String {
        switch reclaimable {
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

    private var classificationSentence: String {
        let noun = driver.plural
        switch classification {
        case .tracksEviction:
            let attached = driver == .openFiles ? noun : "cached \(noun)"
            return "It fell with the \(countNoun) when \(noun) were \(driver.fallVerb): memory attached to \(attached), not a leak."
        case .leakLike:
            return "The \(countNoun) fell but it did not: leak-like. Its allocating code can be named by tracing kmem:kmem_cache_alloc (or kmem:kmalloc) with stack traces."
        case .undetermined:
            return othersMayHaveGone ?? nextStep
        }
    }

    /// Once the driver fell without taking enough of the finding's own units
    /// to tell (`DetectorSettings.leakEvidenceShare`): what was seen, and what
    /// would decide it.
    private var othersMayHaveGone: String? {
        guard driverFellAt != nil, leakEvidenceAt == nil, let below = leakEvidenceBelow,
              let now = fallTrail.latest?.driver else { return nil }
        let own = Human.grouped(ownUnitsAtPeak)
        let attached = driver == .openFiles ? driver.plural : "cached \(driver.plural)"
        return "The \(countNoun) fell by \(Human.grouped(driverPeak - now)) to \(Human.grouped(now)) and it did not follow; "
            + "that leaves too many to be sure any of the \(own) \(driver.plural) it grew with went. "
            + "A fall below \(Human.grouped(max(0, below))) that it does not follow would be leak-like; "
            + "one it follows, memory attached to \(attached)."
    }

    /// What tells a per-object cache from a leak, for each driver.
    private var nextStep: String {
        switch driver {
        case .inodes where filesystem == "tmpfs":
            "Inodes of \(inodeCache ?? "") have only risen so far: tmpfs inodes go only when their files are deleted, and a per-inode cache falls with them where a leak does not."
        case .inodes where inodeCache != nil:
            "Inodes of \(inodeCache ?? "") have only risen so far: evicting them (echo 2 > /proc/sys/vm/drop_caches) tells a per-inode cache from a leak."
        case .inodes:
            "Inodes have only risen so far: evicting them (echo 2 > /proc/sys/vm/drop_caches) tells a per-inode cache from a leak."
        case .dentries:
            "Dentries have only risen so far: a large unused count in /proc/sys/fs/dentry-state means negative or unused dentries; evicting them (echo 2 > /proc/sys/vm/drop_caches) tells a per-dentry cache from a leak."
        case .openFiles:
            "Open files have only risen so far: find the process holding them (count the entries of /proc/*/fd); when it closes them, a per-file cache falls and a leak does not."
        case .time:
            "It does not follow inodes, dentries or open files: check for a leak."
        }
    }
}
