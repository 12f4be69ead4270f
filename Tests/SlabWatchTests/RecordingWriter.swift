import Foundation
@testable import SlabWatch

/// Writes a recording in the documented layout, as a customer's `cp` loop would.
struct RecordingWriter {
    let root: URL
    var interval = 5.0
    var start: Int64 = 1_795_600_000_000
    private(set) var count = 0
    var noise: UInt64 = 11
    var wroteSysfs = false

    init(root: URL) { self.root = root }

    mutating func jitter(_ amplitude: Double) -> Double {
        noise = noise &* 6364136223846793005 &+ 1442695040888963407
        return amplitude * (Double(noise >> 11) / Double(1 << 53) * 2 - 1)
    }

    /// One sample; `caches` are (name, footprint bytes, reclaimable).
    mutating func add(inodes: Double, dentries: Double? = nil, caches: [(String, Double, Bool)],
                      memTotalKiB: UInt64 = 256 << 20) throws {
        let ms = start + Int64(Double(count) * interval * 1000)
        let dir = root.appendingPathComponent("\(ms)")
        var slabinfo = "slabinfo - version: 2.1\n# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n"
        var unreclaimable = 0.0, reclaimable = 0.0
        for (name, bytes, isReclaimable) in caches {
            let slabs = UInt64(max(0, bytes) / 4096)
            slabinfo += "\(name) \(slabs * 128) \(slabs * 128) 32 128 1 : tunables 0 0 0 : slabdata \(slabs) \(slabs) 0\n"
            if isReclaimable { reclaimable += Double(slabs * 4096) } else { unreclaimable += Double(slabs * 4096) }
        }
        let kib = { (bytes: Double) in UInt64(bytes / 1024) }
        try write(dir, "proc/slabinfo", slabinfo)
        try write(dir, "proc/meminfo", """
            MemTotal:       \(memTotalKiB) kB
            MemAvailable:   \(memTotalKiB * 3 / 4) kB
            Slab:           \(kib(unreclaimable + reclaimable)) kB
            SReclaimable:   \(kib(reclaimable)) kB
            SUnreclaim:     \(kib(unreclaimable)) kB

            """)
        try write(dir, "proc/sys/fs/inode-nr", "\(UInt64(max(0, inodes)))\t0\n")
        try write(dir, "proc/sys/fs/dentry-state", "\(UInt64(max(0, dentries ?? inodes * 1.2)))\t0\t45\t0\t0\t0\n")
        try write(dir, "proc/sys/fs/file-nr", "\(UInt64(1000 + jitter(50)))\t0\t1000000\n")
        if !wroteSysfs {
            for (name, _, isReclaimable) in caches {
                try write(dir, "sys/kernel/slab/\(name)/reclaim_account", isReclaimable ? "1\n" : "0\n")
            }
            wroteSysfs = true
        }
        count += 1
    }

    private func write(_ dir: URL, _ relative: String, _ text: String) throws {
        let file = dir.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: file)
    }

    mutating func background() -> [(String, Double, Bool)] {
        (0..<10).map { ("cache\($0)", 40e6 + jitter(1e6), $0 % 2 == 0) }
    }

    /// One stretch of a growth story: the driver moves linearly to `inodes`
    /// over `seconds`; the cache's attached memory follows it up always, and
    /// down only when `cacheFollows` (a per-inode cache) — not for a leak.
    struct Leg {
        var inodes: Double
        var seconds: Double
        var cacheFollows = true

        static func ramp(to inodes: Double, over seconds: Double, cacheFollows: Bool = true) -> Leg {
            Leg(inodes: inodes, seconds: seconds, cacheFollows: cacheFollows)
        }
    }

    /// Writes a story for one cache: `perUnit` bytes attached per inode above
    /// `startInodes`, on top of `base` bytes; `hold` legs are ramps to the
    /// current value. Returns the sample time at which each leg ended.
    @discardableResult
    mutating func story(_ legs: [Leg], cache: String = "kmalloc-32", perUnit: Double, startInodes: Double = 40_000,
                        base: Double = 200e6, reclaimable: Bool = false, noise: Double = 1e6,
                        memTotalKiB: UInt64 = 256 << 20) throws -> [Int64] {
        var inodes = startInodes, attached = 0.0
        var ends: [Int64] = []
        for leg in legs {
            let steps = max(1, Int((leg.seconds / interval).rounded()))
            let from = inodes
            for step in 1...steps {
                let next = from + (leg.inodes - from) * Double(step) / Double(steps)
                if next > inodes || leg.cacheFollows { attached = max(0, attached + next - inodes) }
                inodes = next
                let footprint = base + perUnit * attached + jitter(noise)
                try add(inodes: inodes + jitter(inodes * 0.001), dentries: inodes * 1.1,
                        caches: [(cache, footprint, reclaimable)] + background(), memTotalKiB: memTotalKiB)
            }
            ends.append(start + Int64(Double(count - 1) * interval * 1000))
        }
        return ends
    }

    static func hold(_ seconds: Double, at inodes: Double) -> Leg { .ramp(to: inodes, over: seconds) }

    /// The seed story as a recording: kmalloc-32 rises 32 KiB per inode over
    /// 1 M inodes in 10 minutes, inodes are evicted, it falls (or not).
    static func seed(at root: URL, cacheFalls: Bool = true) throws {
        var w = RecordingWriter(root: root)
        let perInode = 32.0 * 1024
        var inodes = 40_000.0
        for _ in 0..<24 {
            try w.add(inodes: inodes + w.jitter(300), caches: [("kmalloc-32", 200e6 + w.jitter(1e6), false)] + w.background())
        }
        for _ in 0..<120 {
            inodes += 1_000_000 / 120
            try w.add(inodes: inodes + w.jitter(2000), dentries: inodes * 1.1 + w.jitter(60_000),
                      caches: [("kmalloc-32", 200e6 + perInode * (inodes - 40_000) + w.jitter(64e6), false)] + w.background())
        }
        let peak = 200e6 + perInode * (inodes - 40_000)
        for step in 0..<160 {
            let fallen = cacheFalls ? min(1, Double(step) / 36) : 0
            try w.add(inodes: 60_000 + w.jitter(300),
                      caches: [("kmalloc-32", peak - fallen * perInode * 980_000 + w.jitter(1e6), false)] + w.background())
        }
    }
}
