public import SlabWatchCore

/// Machines as a state file keeps them, made through the pipeline as the
/// daemon makes them: the generators of the state fixtures in
/// Tests/Fixtures/state, which their tests hold the committed files to.
public enum StateStories: Sendable {
    /// When the busy machine's story starts (2026-11-26T06:13:20Z) and its last sample.
    public static let busyMachineStart: Int64 = 1_795_600_000_000
    public static let busyMachineEnd: Int64 = busyMachineStart + 119 * 5000

    /// Ten minutes of a machine where kmalloc-32 holds 512 bytes per tmpfs
    /// inode while ext4's inodes come and go: the ring has inode-cache
    /// columns, the detector an open finding driven by shmem_inode_cache with
    /// `attribution` (which ends at `busyMachineEnd`), and the alert policy
    /// remembers the alerts it sent. Nil if the story ends without that finding open.
    public static func busyMachine(attributedBy attribution: Attribution) -> SavedState? {
        var pipeline = Pipeline(settings: .init(ring: .init(fineCapacity: 180, coarseCapacity: 60, coarseEvery: 12)))
        var policy = AlertPolicy()
        var noise: UInt64 = 5
        for step in 0..<120 {
            let tmpfsInodes = 2_000 + Double(max(0, step - 20)) * 2_000
            let ext4Inodes = 60_000 + 15_000 * nextNoise(&noise)
            let kmalloc32 = 100e6 + 512 * tmpfsInodes + 1e6 * nextNoise(&noise)
            let caches = [
                cache("ext4_inode_cache", objects: ext4Inodes, objectSize: 1128, perSlab: 29, pages: 8, reclaimable: true),
                cache("shmem_inode_cache", objects: tmpfsInodes, objectSize: 752, perSlab: 21, pages: 4, reclaimable: false),
                cache("kmalloc-32", objects: kmalloc32 / 32, objectSize: 32, perSlab: 128, pages: 1, reclaimable: false),
                cache("dentry", objects: 1.1 * (ext4Inodes + tmpfsInodes), objectSize: 192, perSlab: 21, pages: 1, reclaimable: true),
            ]
            let inodes = ext4Inodes + tmpfsInodes + 20_000
            let sample = Sample(
                timestampMilliseconds: busyMachineStart + Int64(step) * 5000, caches: caches,
                inodes: InodeCounts(inodes: UInt64(inodes), freeInodes: 0),
                dentries: DentryCounts(dentries: UInt64(1.1 * inodes), unusedDentries: 0),
                fileHandles: FileHandleCounts(allocated: 2000, maximum: 1 << 20))
            _ = policy.alerts(for: pipeline.step(sample).report, now: sample.timestampMilliseconds)
        }
        let now = busyMachineEnd
        guard let attributed = pipeline.attach(attribution, now: now), let latest = pipeline.latest
        else { return nil }
        _ = policy.alerts(for: [attributed], now: now)
        return SavedState(latest, pageSize: 4096, bootID: "6f1c9a52-3d0e-4b8f-9a7e-2c5d8e1f4a30", procfs: "/proc",
                          version: "0.1.0", alerts: policy.memory)
    }

    static func cache(_ name: String, objects: Double, objectSize: UInt64, perSlab: UInt64, pages: UInt64, reclaimable: Bool) -> SlabCache {
        let active = UInt64(max(0, objects).rounded())
        let slabs = (active + perSlab - 1) / perSlab
        return SlabCache(name: name, activeObjects: active, objects: slabs * perSlab, objectSize: objectSize, objectsPerSlab: perSlab,
                         pagesPerSlab: pages, activeSlabs: slabs, slabs: slabs, pageSize: 4096, reclaimable: reclaimable)
    }
}
